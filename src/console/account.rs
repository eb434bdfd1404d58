//! `/account`: what every user may do to their own account: change the
//! password (old one required, policy enforced: this is how Windows and
//! macOS staff change it, as SAMR is not served) and set up TOTP.

use std::time::{SystemTime, UNIX_EPOCH};

use maud::html;
use rand::RngCore;

use super::Ctx;
use super::http::{Resp, SESSION_COOKIE};
use super::session::Stage;
use super::views::{self, Notice, csrf};
use crate::accounts::{AccountsError, Role, SelfService};
use crate::auth::totp;

/// `/account…`.
pub fn route(ctx: &Ctx<'_>, rest: &[&str]) -> Resp {
    match (ctx.req.method.as_str(), rest) {
        ("GET", []) => show(ctx, &Notice::default(), 200),
        ("POST", ["password"]) => change_password(ctx),
        ("GET", ["totp"]) => totp_start(ctx),
        ("POST", ["totp"]) => totp_confirm(ctx),
        ("POST", ["totp", "remove"]) => totp_remove(ctx),
        _ => views::error(ctx, 404, ctx.lang.t("No such page.", "ページが見つかりません。")),
    }
}

fn show(ctx: &Ctx<'_>, notice: &Notice, status: u16) -> Resp {
    let l = ctx.lang;
    let has_totp = matches!(ctx.c.accounts.totp_secret(ctx.me.id), Ok(Some(_)));
    let policy = ctx.c.accounts.config();
    let body = html! {
        h2 { (l.t("Change password", "パスワードの変更")) }
        form.box method="post" action="/account/password" {
            (csrf(ctx))
            p { label for="old" { (l.t("Current password", "現在のパスワード")) } br;
                input id="old" type="password" name="old" autocomplete="current-password" required; }
            p { label for="new" { (l.t("New password", "新しいパスワード")) } br;
                input id="new" type="password" name="new" autocomplete="new-password" required; }
            p { label for="new2" { (l.t("New password again", "新しいパスワード（確認）")) } br;
                input id="new2" type="password" name="new2" autocomplete="new-password" required; }
            p.muted { (l.t("At least", "最低")) " " (policy.password_min_length) " " (l.t("characters; it also becomes your password for the file shares.", "文字。ファイル共有のパスワードも同時に変わります。")) }
            button id="change-password" type="submit" { (l.t("Change password", "パスワードを変更")) }
        }
        h2 { (l.t("Two-factor sign-in", "2 段階認証")) }
        @if has_totp {
            p { (l.t("Set up: the console asks for a code from your authenticator app.", "設定済み：サインイン時に認証アプリのコードを確認します。")) }
            form.box method="post" action="/account/totp/remove" {
                (csrf(ctx))
                button type="submit" { (l.t("Remove two-factor sign-in", "2 段階認証を解除")) }
            }
        } @else {
            p { a id="totp-setup" href="/account/totp" { (l.t("Set up two-factor sign-in", "2 段階認証を設定")) } }
        }
    };
    views::page(ctx, ctx.lang.t("My account", "アカウント"), notice, body).status(status)
}

fn change_password(ctx: &Ctx<'_>) -> Resp {
    let l = ctx.lang;
    let (old, new, new2) = (ctx.req.field("old"), ctx.req.field("new"), ctx.req.field("new2"));
    if new != new2 {
        return show(ctx, &Notice::err(l.t("The two new passwords differ.", "新しいパスワードが一致しません。")), 400);
    }
    let me = SelfService::new(&ctx.c.accounts, ctx.me.clone(), ctx.admin_audit());
    match me.change_password(old, new, SystemTime::now()) {
        Ok(()) => {
            // Other browsers signed in with the old password are signed out.
            ctx.c.sessions.remove_user(ctx.me.id, Some(&ctx.token));
            show(ctx, &Notice::ok(l.t("Password changed.", "パスワードを変更しました。")), 200)
        }
        Err(AccountsError::Denied(_)) => {
            let mut r =
                show(ctx, &Notice::err(l.t("The current password is wrong.", "現在のパスワードが違います。")), 403);
            r.delay = true;
            r
        }
        Err(e) => show(ctx, &Notice::err(e.to_string()), 400),
    }
}

fn totp_start(ctx: &Ctx<'_>) -> Resp {
    let l = ctx.lang;
    let mut secret = vec![0u8; totp::SECRET_LEN];
    rand::rngs::OsRng.fill_bytes(&mut secret);
    let b32 = totp::base32(&secret);
    ctx.c.sessions.update(&ctx.token, |s| s.pending_totp = Some(secret));
    let label =
        form_urlencoded::byte_serialize(format!("smbvault:{}", ctx.me.qualified()).as_bytes()).collect::<String>();
    let uri = format!("otpauth://totp/{label}?secret={b32}&issuer=smbvault&algorithm=SHA1&digits=6&period=30");
    let must = ctx.session.stage == Stage::MustEnrol;
    let body = html! {
        @if must { p.err { (l.t("Your organization requires two-factor sign-in for administrators. Set it up to continue.", "この組織では管理者に 2 段階認証が必須です。続けるには設定してください。")) } }
        p { (l.t("Add this key to your authenticator app (time-based, 6 digits, 30 seconds):", "認証アプリにこのキーを登録してください（時間ベース、6 桁、30 秒）：")) }
        p { code id="totp-secret" { (b32) } }
        p.muted { (l.t("Or as a URI:", "URI：")) " " code id="totp-uri" { (uri) } }
        form.box method="post" action="/account/totp" {
            (csrf(ctx))
            p { label for="code" { (l.t("Code shown by the app", "アプリに表示されたコード")) } br;
                input id="code" name="code" inputmode="numeric" autocomplete="one-time-code" required size="8"; }
            button id="totp-confirm" type="submit" { (l.t("Turn on", "有効にする")) }
        }
    };
    views::page(ctx, l.t("Set up two-factor sign-in", "2 段階認証の設定"), &Notice::default(), body)
}

fn totp_confirm(ctx: &Ctx<'_>) -> Resp {
    let l = ctx.lang;
    let Some(secret) = ctx.session.pending_totp.clone() else { return Resp::redirect("/account/totp") };
    let unix = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let Some(step) = totp::matching_step(&secret, ctx.req.field("code"), unix) else {
        let r = views::page(
            ctx,
            l.t("Set up two-factor sign-in", "2 段階認証の設定"),
            &Notice::err(l.t("Wrong code; start again.", "コードが違います。最初からやり直してください。")),
            html! { p { a href="/account/totp" { (l.t("Start again", "やり直す")) } } },
        );
        return r.status(400);
    };
    let me = SelfService::new(&ctx.c.accounts, ctx.me.clone(), ctx.admin_audit());
    if let Err(e) = me.set_totp(&secret) {
        return views::error(ctx, 500, &e.to_string());
    }
    // The confirming code is spent: it cannot sign anyone in again.
    let _ = ctx.c.accounts.use_totp_step(ctx.me.id, step);
    ctx.c.sessions.update(&ctx.token, |s| s.pending_totp = None);
    if ctx.session.stage == Stage::MustEnrol {
        ctx.c.sessions.remove(&ctx.token);
        let fresh = ctx.c.sessions.create(ctx.me.id, Stage::Full, "password+totp");
        return Resp::redirect("/").cookie(SESSION_COOKIE, &fresh, None);
    }
    show(ctx, &Notice::ok(l.t("Two-factor sign-in is on.", "2 段階認証を有効にしました。")), 200)
}

fn totp_remove(ctx: &Ctx<'_>) -> Resp {
    let l = ctx.lang;
    if ctx.me.role >= Role::OrgAdmin && ctx.c.accounts.org_requires_totp(ctx.me.org_id).unwrap_or(true) {
        return show(
            ctx,
            &Notice::err(l.t(
                "Your organization requires two-factor sign-in for administrators.",
                "この組織では管理者に 2 段階認証が必須です。",
            )),
            403,
        );
    }
    let me = SelfService::new(&ctx.c.accounts, ctx.me.clone(), ctx.admin_audit());
    match me.remove_totp() {
        Ok(()) => show(ctx, &Notice::ok(l.t("Two-factor sign-in removed.", "2 段階認証を解除しました。")), 200),
        Err(e) => show(ctx, &Notice::err(e.to_string()), 500),
    }
}
