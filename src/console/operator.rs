//! `/operator/…`: the server operator's pages (accounts with the operator
//! role): organizations (create, suspend/resume, quota, end contract),
//! server status and the backups overview. Irreversible or disruptive
//! actions ask first, as the CLI does: type the organization's name.

use std::time::SystemTime;

use maud::html;

use super::Ctx;
use super::http::{Resp, seg};
use super::org_pages::status_of;
use super::views::{self, Notice, bytes, csrf, jst};
use crate::accounts::{Admin, Role};

/// `/operator/…`.
pub fn route(ctx: &Ctx<'_>, rest: &[&str]) -> Resp {
    let l = ctx.lang;
    let (Some(admin), Role::Operator) = (ctx.admin(), ctx.me.role) else {
        return views::error(
            ctx,
            403,
            l.t("Only the server operator may open this page.", "このページは運用者のみ利用できます。"),
        );
    };
    match (ctx.req.method.as_str(), rest) {
        ("GET", ["orgs"]) => orgs(ctx, &admin, &Notice::default(), 200),
        ("POST", ["orgs"]) => {
            let prov = crate::app::StoreProvisioner::new(ctx.c.server.store.clone(), SystemTime::now());
            let r = admin.org_add(ctx.req.field("name").trim(), &prov).map(|_| ());
            saved(ctx, &admin, r)
        }
        ("POST", ["orgs", org, action]) => org_action(ctx, &admin, org, action),
        ("GET", ["status"]) => status(ctx),
        _ => views::error(ctx, 404, l.t("No such page.", "ページが見つかりません。")),
    }
}

fn saved(ctx: &Ctx<'_>, admin: &Admin<'_>, r: Result<(), crate::accounts::AccountsError>) -> Resp {
    match r {
        Ok(()) => orgs(ctx, admin, &Notice::ok(ctx.lang.t("Saved.", "保存しました。")), 200),
        Err(e) => orgs(ctx, admin, &Notice::err(e.to_string()), status_of(&e)),
    }
}

fn orgs(ctx: &Ctx<'_>, admin: &Admin<'_>, notice: &Notice, status: u16) -> Resp {
    let l = ctx.lang;
    let list = admin.org_list().unwrap_or_default();
    let body = html! {
        form.box method="post" action="/operator/orgs" {
            (csrf(ctx))
            label { (l.t("New organization", "新しい組織")) " " input id="new-org" name="name" required; }
            button id="add-org" type="submit" { (l.t("Create", "作成")) }
        }
        table id="orgs" {
            tr { th { (l.t("Organization", "組織")) } th { (l.t("State", "状態")) } th { (l.t("Used / quota", "使用量／上限")) }
                 th { (l.t("Contract ends", "契約終了")) } th { (l.t("Actions", "操作")) } }
            @for o in &list {
                @let act = format!("/operator/orgs/{}", seg(&o.name));
                @let used = ctx.c.server.store.org(o.id).ok().and_then(|s| s.usage().ok());
                tr {
                    td { a href=(format!("/org/{}/users", seg(&o.name))) { (o.name) } }
                    td { @if o.suspended { (l.t("suspended", "停止中")) } @else { (l.t("active", "稼働中")) } }
                    td { (used.map_or("?".into(), bytes)) " / " (o.quota_bytes.map_or(l.t("unlimited", "無制限").to_string(), bytes)) }
                    td { (o.contract_end.map_or("-".to_string(), |d| d.to_string())) }
                    td {
                        form.inline method="post" action=(format!("{act}/{}", if o.suspended { "resume" } else { "suspend" })) {
                            (csrf(ctx)) button type="submit" { @if o.suspended { (l.t("Resume", "再開")) } @else { (l.t("Suspend…", "停止…")) } }
                        }
                        form.inline method="post" action=(format!("{act}/quota")) {
                            (csrf(ctx)) input name="quota" size="8" placeholder="500G"; button type="submit" { (l.t("Set quota", "上限設定")) }
                        }
                        form.inline method="post" action=(format!("{act}/end-contract")) {
                            (csrf(ctx)) input type="date" name="date"; button.danger type="submit" { (l.t("End contract…", "契約終了…")) }
                        }
                    }
                }
            }
        }
    };
    views::page(ctx, l.t("Organizations", "組織一覧"), notice, body).status(status)
}

/// Asks to type the organization's name before `action` goes ahead.
fn confirm_page(ctx: &Ctx<'_>, org: &str, action: &str, what: &str, keep: &[(&str, &str)]) -> Resp {
    let l = ctx.lang;
    let body = html! {
        p.err { (what) }
        form.box method="post" action=(format!("/operator/orgs/{}/{action}", seg(org))) {
            (csrf(ctx))
            @for (k, v) in keep { input type="hidden" name=(k) value=(v); }
            label { (l.t("Type the organization's name to confirm:", "確認のため組織名を入力してください：")) " "
                input id="confirm" name="confirm" required; }
            button.danger id="confirm-go" type="submit" { (l.t("Confirm", "実行")) }
        }
        p { a href="/operator/orgs" { (l.t("Cancel", "キャンセル")) } }
    };
    views::page(ctx, l.t("Confirm", "確認"), &Notice::default(), body)
}

fn org_action(ctx: &Ctx<'_>, admin: &Admin<'_>, org: &str, action: &str) -> Resp {
    let l = ctx.lang;
    let o = match admin.org(Some(org), action) {
        Ok(o) => o,
        Err(e) => return orgs(ctx, admin, &Notice::err(e.to_string()), status_of(&e)),
    };
    let confirmed = ctx.req.field("confirm") == o.name;
    match action {
        "resume" => saved(ctx, admin, admin.org_suspend(&o.name, false)),
        "suspend" if !confirmed => {
            let what = format!(
                "{} {}",
                o.name,
                l.t(
                    "will be suspended: its users cannot sign in or reach their files until it is resumed.",
                    "を停止します。再開するまで、この組織のユーザーはサインインもファイルの利用もできません。"
                )
            );
            confirm_page(ctx, &o.name, action, &what, &[])
        }
        "suspend" => saved(ctx, admin, admin.org_suspend(&o.name, true)),
        "quota" => match crate::cli::org::parse_size(ctx.req.field("quota").trim()) {
            Ok(q) => saved(ctx, admin, admin.org_set_quota(&o.name, q)),
            Err(e) => orgs(ctx, admin, &Notice::err(e.message), 400),
        },
        "end-contract" => {
            let date = ctx.req.field("date");
            let day = match crate::cli::org::contract_day(date, false) {
                Ok(d) => d,
                Err(e) => return orgs(ctx, admin, &Notice::err(e.message), 400),
            };
            let mut at = o.clone();
            at.contract_end = Some(day);
            let Some(erase) = ctx.c.accounts.erasure_time(&at) else {
                return orgs(ctx, admin, &Notice::err("cannot compute the erasure time"), 400);
            };
            if !confirmed {
                let what = format!(
                    "{} {day}: {} {} {}",
                    o.name,
                    l.t("contract ends on", "の契約を終了します（最終日"),
                    crate::cli::org::exact_jst(erase),
                    l.t("the server destroys its key and erases all its files, audit log, users and shares, in every backup too. This cannot be undone.", "に鍵を破棄し、全ファイル・監査ログ・ユーザー・共有をバックアップを含めて消去します。元に戻せません。）")
                );
                return confirm_page(ctx, &o.name, action, &what, &[("date", date)]);
            }
            saved(ctx, admin, admin.org_end_contract(&o.name, Some(day)).map(|_| ()))
        }
        _ => views::error(ctx, 404, l.t("No such action.", "その操作はありません。")),
    }
}

fn status(ctx: &Ctx<'_>) -> Resp {
    let l = ctx.lang;
    let m = &ctx.c.server.metrics;
    let open = m.connections_open.load(std::sync::atomic::Ordering::Relaxed);
    let audit = ctx.c.audit_log.as_ref().map(|a| a.stats());
    let body = html! {
        table id="status" {
            tr { th { (l.t("Server", "サーバー")) } td { (ctx.c.server.live().server.name) } }
            tr { th { (l.t("Time", "時刻")) } td { (jst(SystemTime::now())) } }
            tr { th { (l.t("SMB connections open", "SMB 接続数")) } td id="connections" { (open) } }
            @if let Some(a) = audit {
                tr { th { (l.t("Audit events recorded / written / lost", "監査イベント 記録／書込／欠落")) } td { (a.recorded) " / " (a.written) " / " (a.lost) } }
            }
        }
        h2 { (l.t("Sessions", "セッション")) }
        (sessions(ctx))
        h2 { (l.t("Backups", "バックアップ")) }
        (super::org_settings::backups(ctx))
    };
    views::page(ctx, l.t("Server status", "サーバーの状態"), &Notice::default(), body)
}

/// The SMB sessions, as `smbvault status` lists them: the same
/// `net::Registry::report` the control socket answers from, asked
/// in-process (this runs on a blocking thread of the server's runtime).
fn sessions(ctx: &Ctx<'_>) -> maud::Markup {
    let l = ctx.lang;
    let list = match tokio::runtime::Handle::try_current() {
        Ok(h) => h.block_on(ctx.c.registry.report()),
        Err(_) => Vec::new(),
    };
    html! {
        @if list.is_empty() {
            p.muted id="no-sessions" { (l.t("No sessions.", "セッションはありません。")) }
        } @else {
            table id="sessions" {
                tr {
                    th { (l.t("Session", "セッション")) } th { (l.t("User", "ユーザー")) } th { (l.t("Organization", "組織")) }
                    th { (l.t("Client", "クライアント")) } th { (l.t("Dialect", "ダイアレクト")) } th { (l.t("Signing", "署名")) }
                    th { (l.t("Encryption", "暗号化")) } th { (l.t("Idle", "アイドル")) } th { (l.t("Logged on", "ログオン")) }
                    th { (l.t("Shares", "共有")) } th { (l.t("Open files", "開いているファイル")) }
                }
                @for s in &list {
                    tr {
                        td { (format!("{:#x}", s.id)) }
                        td { (s.user) }
                        td { (s.org) }
                        td { (s.client) }
                        td { (s.dialect) }
                        td { @if s.signing { (l.t("yes", "あり")) } @else { (l.t("no", "なし")) } }
                        td { @if s.encryption { (s.cipher.as_deref().unwrap_or(l.t("yes", "あり"))) } @else { (l.t("no", "なし")) } }
                        td { (s.idle_secs) " s" }
                        td { (s.logged_on) }
                        td { (s.shares.join(", ")) }
                        td { @for o in &s.opens { div { (o.share) "\\" (o.path) } } }
                    }
                }
            }
        }
        p.muted { (l.t("Ending a session: `smbvault session kick ID` on the server.", "セッションの切断はサーバーで `smbvault session kick ID` を実行してください。")) }
    }
}
