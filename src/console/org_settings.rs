//! `/org/{org}/settings`: usage against the quota, the log retention
//! (1, 3, 6, 12 months or unlimited), the two-factor policy, and, read
//! only, the contract end, the erasure date and the backup generations.

use maud::html;

use super::Ctx;
use super::http::{Resp, seg};
use super::org_pages::status_of;
use super::views::{self, Notice, bytes, csrf, jst};
use crate::accounts::{Admin, OrgRecord, parse_retention, retention_str};

/// `/org/{org}/settings…`.
pub fn route(ctx: &Ctx<'_>, admin: &Admin<'_>, org: &OrgRecord, rest: &[&str]) -> Resp {
    let l = ctx.lang;
    let saved = |r: Result<(), crate::accounts::AccountsError>| match r {
        Ok(()) => show(ctx, admin, &org.name, &Notice::ok(l.t("Saved.", "保存しました。")), 200),
        Err(e) => show(ctx, admin, &org.name, &Notice::err(e.to_string()), status_of(&e)),
    };
    match (ctx.req.method.as_str(), rest) {
        ("GET", []) => show(ctx, admin, &org.name, &Notice::default(), 200),
        ("POST", ["retention"]) => {
            let r = match ctx.req.field("retention") {
                "default" => Ok(None),
                s => parse_retention(s).map(Some),
            };
            saved(r.and_then(|r| admin.org_set_retention(&org.name, r)))
        }
        ("POST", ["totp"]) => saved(admin.org_set_require_totp(&org.name, ctx.req.field("require") == "on")),
        _ => views::error(ctx, 404, l.t("No such page.", "ページが見つかりません。")),
    }
}

fn show(ctx: &Ctx<'_>, admin: &Admin<'_>, name: &str, notice: &Notice, status: u16) -> Resp {
    let l = ctx.lang;
    // Read again: the page shows the state after the change just made.
    let Ok(org) = admin.org(Some(name), "view settings") else {
        return views::error(ctx, 404, l.t("No such organization.", "その組織はありません。"));
    };
    let base = format!("/org/{}/settings", seg(&org.name));
    let usage = ctx.c.server.store.org(org.id).ok().and_then(|o| o.usage().ok());
    let default = ctx.c.server.live().audit.default_retention;
    let current = org.retention.map_or("default", retention_str);
    let require = ctx.c.accounts.org_requires_totp(org.id).unwrap_or(false);
    let erasure = ctx.c.accounts.erasure_time(&org);
    let choices = [
        ("default", l.t("server default", "サーバー既定")),
        ("1m", l.t("1 month", "1 か月")),
        ("3m", l.t("3 months", "3 か月")),
        ("6m", l.t("6 months", "6 か月")),
        ("12m", l.t("12 months", "12 か月")),
        ("unlimited", l.t("unlimited", "無期限")),
    ];
    let body = html! {
        h2 { (l.t("Storage", "容量")) }
        p id="usage" {
            (usage.map_or("?".to_string(), bytes)) " / "
            (org.quota_bytes.map_or(l.t("no quota", "上限なし").to_string(), bytes))
        }
        h2 { (l.t("Log retention", "ログの保存期間")) }
        form.box method="post" action=(format!("{base}/retention")) {
            (csrf(ctx))
            select id="retention" name="retention" {
                @for (v, label) in choices {
                    option value=(v) selected[v == current] {
                        (label) @if v == "default" { " (" (retention_str(default)) ")" }
                    }
                }
            }
            " "
            button id="save-retention" type="submit" { (l.t("Save", "保存")) }
        }
        h2 { (l.t("Two-factor sign-in", "2 段階認証")) }
        form.box method="post" action=(format!("{base}/totp")) {
            (csrf(ctx))
            label { input id="require-totp" type="checkbox" name="require" value="on" checked[require];
                " " (l.t("Require it of administrators", "管理者に必須とする")) }
            " "
            button id="save-totp" type="submit" { (l.t("Save", "保存")) }
        }
        h2 { (l.t("Contract", "契約")) }
        table {
            tr { th { (l.t("Last contract day", "契約最終日")) } td id="contract-end" { (org.contract_end.map_or("-".to_string(), |d| d.to_string())) } }
            tr { th { (l.t("Data erased at", "データ消去日時")) } td id="erasure" { (erasure.map_or("-".to_string(), jst)) } }
        }
        h2 { (l.t("Backups", "バックアップ")) }
        (backups(ctx))
    };
    views::page(ctx, l.t("Organization settings", "組織設定"), notice, body).status(status)
}

/// The backup generations (read only; restores are the operator's, on the
/// server). Database generations are verified as `smbvault backup list`
/// does (manifest MAC and every file's SHA-256), once per generation per
/// process: they are small and never change. Data generations hold copies
/// of every organization's segments, too much to hash on a page view:
/// `smbvault backup verify --data` checks them.
pub fn backups(ctx: &Ctx<'_>) -> maud::Markup {
    let l = ctx.lang;
    let kinds = [l.t("Database", "データベース"), l.t("Data", "データ")];
    let state = |b: &crate::backup::db::DbBackups, g: &crate::backup::db::Generation| -> &'static str {
        if b.includes_segments() {
            return l.t(
                "not checked here (smbvault backup verify --data)",
                "ここでは未検査（smbvault backup verify --data）",
            );
        }
        let ok = *ctx.c.backup_checks.lock().entry(g.dir.clone()).or_insert_with(|| b.verify(g).is_empty());
        if ok {
            l.t("verified", "検証済み")
        } else {
            l.t("DAMAGED: do not restore", "破損：復元しないでください")
        }
    };
    html! {
        table id="backups" {
            tr { th { (l.t("Kind", "種類")) } th { (l.t("Generation", "世代")) } th { (l.t("Taken", "取得日時")) } th { (l.t("State", "状態")) } }
            @for (kind, b) in kinds.iter().zip(ctx.c.backups.iter()) {
                @if let Some(b) = b {
                    @for g in b.list().iter().rev() { tr { td { (kind) } td { (g.name) } td { (jst(g.time)) } td.state { (state(b, g)) } } }
                }
            }
        }
        @if ctx.c.backups.iter().all(|b| b.as_ref().is_none_or(|b| b.list().is_empty())) {
            p.muted { (l.t("No backup generations yet.", "バックアップはまだありません。")) }
        }
    }
}
