//! Sign-in (password, then TOTP when the user has it) and sign-out.
//!
//! The password check is `Accounts::check_sign_in`, the one the CLI's
//! `--as` uses: the same Argon2id hash, the same lockout counter as SMB
//! logons, and a failure is answered only after `logon_failure_delay_ms`.
//! A wrong TOTP code counts as a failed logon too. Every attempt goes to
//! the organization's access log as `console-sign-in` (and `lockout`).

use std::time::{SystemTime, UNIX_EPOCH};

use maud::html;

use super::http::{Req, Resp, SESSION_COOKIE, SIGNIN_COOKIE};
use super::session::{Stage, random_token};
use super::views::{self, Lang, Notice};
use super::{Console, Ctx};
use crate::accounts::{LockoutState, Role, SignInRefusal, UserRecord};
use crate::audit::{EventKind, EventResult};

/// `/signin…` (no session needed).
pub fn route(c: &Console, req: &Req, lang: Lang, rest: &[&str]) -> Resp {
    match (req.method.as_str(), rest) {
        ("GET", []) => form(req, lang, &Notice::default()),
        ("POST", []) => password(c, req, lang),
        ("GET", ["totp"]) => totp_form(c, req, lang, &Notice::default()),
        ("POST", ["totp"]) => totp(c, req, lang),
        _ => Resp::redirect("/signin"),
    }
}

fn form(req: &Req, l: Lang, notice: &Notice) -> Resp {
    // Double-submit CSRF token: there is no session yet to hold one. An
    // existing one is kept, so that a second tab (or the browser's own
    // favicon request landing here) does not invalidate the first form.
    let token = match req.cookies.get(SIGNIN_COOKIE) {
        Some(t) if t.len() == 64 && t.bytes().all(|b| b.is_ascii_hexdigit()) => t.clone(),
        _ => random_token(),
    };
    let body = html! {
        form.box method="post" action="/signin" {
            input type="hidden" name="csrf" value=(token);
            p { label for="user" { (l.t("User (ORG\\user or user@ORG)", "ユーザー（組織\\ユーザー名 または ユーザー名@組織）")) } br;
                input id="user" name="user" autocomplete="username" required size="32"; }
            p { label for="password" { (l.t("Password", "パスワード")) } br;
                input id="password" type="password" name="password" autocomplete="current-password" required size="32"; }
            button id="signin" type="submit" { (l.t("Sign in", "サインイン")) }
        }
    };
    views::bare(l, &req.path, l.t("Sign in", "サインイン"), notice, body).cookie(SIGNIN_COOKIE, &token, None)
}

fn signin_csrf_ok(req: &Req) -> bool {
    let (given, cookie) = (req.field("csrf"), req.cookies.get(SIGNIN_COOKIE).map_or("", String::as_str));
    !given.is_empty() && bool::from(subtle::ConstantTimeEq::ct_eq(given.as_bytes(), cookie.as_bytes()))
}

fn refused(req: &Req, l: Lang, status: u16, text: &'static str) -> Resp {
    let mut r = form(req, l, &Notice::err(text)).status(status);
    r.delay = status == 401;
    r
}

fn bad_login(l: Lang) -> &'static str {
    l.t(
        "Wrong user name or password, or the account is locked after repeated failures.",
        "ユーザー名またはパスワードが違うか、失敗が続いたためアカウントがロックされています。",
    )
}

/// The account `ORG\\user` or `user@ORG` names, if it exists.
fn named_user(c: &Console, spec: &str) -> Option<UserRecord> {
    let (Some(org), user) = crate::accounts::names::split_qualified(spec) else { return None };
    let org = c.accounts.find_org(org).ok()??;
    c.accounts.find_user(org.id, user).ok()?
}

fn password(c: &Console, req: &Req, l: Lang) -> Resp {
    if !signin_csrf_ok(req) {
        return refused(
            req,
            l,
            403,
            l.t("The form was stale; try again.", "フォームの有効期限が切れました。もう一度お試しください。"),
        );
    }
    let (name, pw) = (req.field("user").trim(), req.field("password"));
    let now = SystemTime::now();
    // Smart lockout (engine::throttle): SMB failures from this address
    // locked the account for this address, and the console is one more
    // door from the same place, so it stays shut too (the owner elsewhere
    // is not affected). Checked before the password, whose success would
    // clear the failures that keep that lock.
    if let (Some(peer), Some(u)) = (req.peer, named_user(c, name)) {
        let on_record =
            || c.accounts.has_logon_failures(u.id).unwrap_or(true) || c.accounts.is_locked(u.id, now).unwrap_or(true);
        if c.server.logons.locked_for(u.id, peer.ip(), now, on_record) {
            let kind = EventKind::ConsoleSignIn { method: "password".into() };
            let ev = c.access_event(req, Some(u.org_id), &u.qualified(), kind);
            c.audit.record(ev.result(EventResult::Denied("locked out from this address".into())));
            return refused(req, l, 401, bad_login(l));
        }
    }
    let rec = match c.accounts.check_sign_in(name, pw, now) {
        Ok(Ok(rec)) => rec,
        Ok(Err(f)) => {
            let result = match f.refusal {
                SignInRefusal::LockedOut => EventResult::Denied("locked out".into()),
                r => EventResult::Failed(r.reason().into()),
            };
            let who = f.user.as_ref().map_or_else(|| name.to_string(), UserRecord::qualified);
            let kind = EventKind::ConsoleSignIn { method: "password".into() };
            c.audit.record(c.access_event(req, f.org, &who, kind).result(result));
            if f.locked_now {
                let ev = c.access_event(req, f.org, &who, EventKind::Lockout);
                c.audit.record(ev.result(EventResult::Denied("locked out".into())));
            }
            return refused(req, l, 401, bad_login(l));
        }
        Err(e) => {
            tracing::error!(error = %e, "console sign-in could not be checked");
            return refused(
                req,
                l,
                500,
                l.t("The server could not check the sign-in.", "サインインを確認できませんでした。"),
            );
        }
    };
    let has_totp = matches!(c.accounts.totp_secret(rec.id), Ok(Some(_)));
    let must = rec.role >= Role::OrgAdmin && c.accounts.org_requires_totp(rec.org_id).unwrap_or(true);
    let stage = match (has_totp, must) {
        (true, _) => Stage::NeedTotp,
        (false, true) => Stage::MustEnrol,
        (false, false) => Stage::Full,
    };
    if stage != Stage::NeedTotp {
        let kind = EventKind::ConsoleSignIn { method: "password".into() };
        c.audit.record(c.access_event(req, Some(rec.org_id), &rec.qualified(), kind));
    }
    let token = c.sessions.create(rec.id, stage, "password");
    let to = if stage == Stage::NeedTotp { "/signin/totp" } else { "/" };
    Resp::redirect(to).cookie(SESSION_COOKIE, &token, None).clear_cookie(SIGNIN_COOKIE)
}

fn totp_form(c: &Console, req: &Req, l: Lang, notice: &Notice) -> Resp {
    let token = req.cookies.get(SESSION_COOKIE).map_or("", String::as_str);
    let Ok(s) = c.sessions.get(token) else { return Resp::redirect("/signin") };
    if s.stage != Stage::NeedTotp {
        return Resp::redirect("/");
    }
    let body = html! {
        form.box method="post" action="/signin/totp" {
            input type="hidden" name="csrf" value=(s.csrf);
            p { label for="code" { (l.t("6-digit code from your authenticator app", "認証アプリの 6 桁のコード")) } br;
                input id="code" name="code" inputmode="numeric" autocomplete="one-time-code" required size="8"; }
            button id="verify" type="submit" { (l.t("Verify", "確認")) }
        }
    };
    views::bare(l, &req.path, l.t("Two-factor sign-in", "2 段階認証"), notice, body)
}

fn totp(c: &Console, req: &Req, l: Lang) -> Resp {
    let token = req.cookies.get(SESSION_COOKIE).cloned().unwrap_or_default();
    let Ok(s) = c.sessions.get(&token) else { return Resp::redirect("/signin") };
    if s.stage != Stage::NeedTotp
        || !bool::from(subtle::ConstantTimeEq::ct_eq(req.field("csrf").as_bytes(), s.csrf.as_bytes()))
    {
        return Resp::redirect("/signin");
    }
    let Ok(Some(rec)) = c.accounts.user(s.user) else { return Resp::redirect("/signin") };
    let now = SystemTime::now();
    let unix = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let ok = match c.accounts.totp_secret(rec.id) {
        Ok(Some((secret, _))) => crate::auth::totp::matching_step(&secret, req.field("code"), unix)
            .is_some_and(|step| c.accounts.use_totp_step(rec.id, step).unwrap_or(false)),
        _ => false,
    };
    let kind = EventKind::ConsoleSignIn { method: "password+totp".into() };
    let ev = c.access_event(req, Some(rec.org_id), &rec.qualified(), kind);
    let locked = c.accounts.is_locked(rec.id, now).unwrap_or(true);
    if !ok || locked {
        c.audit.record(ev.result(EventResult::Failed("bad totp code".into())));
        if !locked && let Ok(LockoutState::LockedNow { .. }) = c.accounts.record_logon_failure(rec.id, now) {
            let ev = c.access_event(req, Some(rec.org_id), &rec.qualified(), EventKind::Lockout);
            c.audit.record(ev.result(EventResult::Denied("locked out".into())));
        }
        let mut r = totp_form(c, req, l, &Notice::err(l.t("Wrong or reused code.", "コードが違うか、使用済みです。")));
        r.status = 401;
        r.delay = true;
        return r;
    }
    c.audit.record(ev);
    // A new session id once fully signed in (no fixation of the half-way one).
    c.sessions.remove(&token);
    let fresh = c.sessions.create(rec.id, Stage::Full, "password+totp");
    Resp::redirect("/").cookie(SESSION_COOKIE, &fresh, None)
}

/// `POST /signout`.
pub fn sign_out(ctx: &Ctx<'_>) -> Resp {
    ctx.c.sessions.remove(&ctx.token);
    let kind = EventKind::ConsoleSignOut { reason: "sign-out".into() };
    ctx.c.audit.record(ctx.c.access_event(ctx.req, Some(ctx.me.org_id), &ctx.me.qualified(), kind));
    Resp::redirect("/signin").clear_cookie(SESSION_COOKIE)
}
