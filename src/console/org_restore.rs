//! `/org/{org}/restore`: an organization's remote backup generations, and
//! restoring a file or folder of one into its share under a new name, by
//! the organization's administrator (or the operator). The same operation
//! as `smbvault backup restore-files` (`backup::remote::ops::prepare` and
//! `restore_files`: the generation verified object by object, nothing ever
//! overwritten), run on the console's blocking thread while the server
//! keeps serving, and recorded in the organization's operation log as
//! `backup.restore_files` under the signed-in user, as the CLI's is.

use std::sync::atomic::Ordering;
use std::time::SystemTime;

use maud::html;

use super::Ctx;
use super::http::{Resp, seg};
use super::views::{self, Notice, bytes, csrf, jst};
use crate::accounts::OrgRecord;
use crate::audit::{Event, EventKind, EventResult};
use crate::backup::remote::{Meter, ops};

/// `/org/{org}/restore`.
pub fn route(ctx: &Ctx<'_>, org: &OrgRecord) -> Resp {
    match ctx.req.method.as_str() {
        "POST" => restore(ctx, org),
        _ => show(ctx, org, &Notice::default(), 200),
    }
}

fn show(ctx: &Ctx<'_>, org: &OrgRecord, notice: &Notice, status: u16) -> Resp {
    let l = ctx.lang;
    let title = l.t("Restore from backup", "バックアップから復元");
    let setting = ctx.c.accounts.org_backup(org.id).ok().flatten();
    let (Some(remote), Some(ob)) = (ctx.c.remote.as_ref(), setting) else {
        let body = html! { p.muted id="no-backups" { (l.t("This organization has no backup target.", "この組織にはバックアップ先がありません。")) } };
        return views::page(ctx, title, notice, body).status(status);
    };
    let gens = remote.list(org.id, &ob).unwrap_or_default();
    let usable: Vec<_> = gens.iter().rev().filter_map(|(n, m)| m.as_ref().ok().map(|m| (n, m))).collect();
    let shares = ctx.c.accounts.list_shares(Some(org.id)).unwrap_or_default();
    let base = format!("/org/{}/restore", seg(&org.name));
    let body = html! {
        p.muted { (l.t(
            "A file or folder of a generation is copied into its share under a new name (by default the folder 復元 YYYY-MM-DD); nothing is overwritten.",
            "世代のファイルまたはフォルダーを共有内に新しい名前で復元します（既定は「復元 YYYY-MM-DD」フォルダー）。既存のファイルは上書きしません。")) }
        table id="generations" {
            tr { th { (l.t("Generation", "世代")) } th { (l.t("Taken", "取得日時")) } th { (l.t("Size", "サイズ")) } th { (l.t("Target", "保存先")) } }
            @for (n, m) in &usable { tr { td { (n) } td { (jst(m.time())) } td { (bytes(m.size())) } td { (ob.target) } } }
        }
        @if usable.is_empty() {
            p.muted { (l.t("No backup generations yet.", "バックアップはまだありません。")) }
        } @else {
            form.box method="post" action=(base) {
                (csrf(ctx))
                label { (l.t("Generation", "世代")) " " select id="restore-generation" name="generation" {
                    @for (n, _) in &usable { option value=(n) { (n) } }
                } }
                label { (l.t("File or folder", "ファイル／フォルダー")) " " input id="restore-path" name="path" required size="30"
                    placeholder=(shares.first().map_or("share/folder".to_string(), |s| format!("{}/…", s.name))); }
                label { (l.t("Restore as (optional)", "復元先（省略可）")) " " input id="restore-to" name="to" size="24"; }
                button id="restore-go" type="submit" { (l.t("Restore", "復元")) }
            }
        }
    };
    views::page(ctx, title, notice, body).status(status)
}

fn restore(ctx: &Ctx<'_>, org: &OrgRecord) -> Resp {
    let l = ctx.lang;
    let Some(remote) = ctx.c.remote.as_ref() else { return show(ctx, org, &Notice::err("no backup targets"), 400) };
    let req = &ctx.req;
    let (generation, path) = (req.field("generation").trim(), req.field("path").trim());
    let to = Some(req.field("to").trim()).filter(|t| !t.is_empty()).map(str::to_string);
    let meter = Meter::default();
    let store = &ctx.c.server.store;
    let result = ops::prepare(remote, &ctx.c.accounts, store.as_ref(), org.id, generation, path, to, &meter)
        .and_then(|r| ops::restore_files(store, &r, &meter).map(|done| (r, done)));
    let target = path.replace('\\', "/");
    let detail = match &result {
        Ok((r, done)) => {
            serde_json::json!({ "restored": done, "generation": r.generation, "via": "console" }).to_string()
        }
        Err(e) => e.clone(),
    };
    let mut e =
        Event::new(SystemTime::now(), EventKind::Admin { action: "backup.restore_files".into(), target, detail })
            .user(ctx.me.qualified())
            .org(org.id);
    if let Some(p) = req.peer {
        e = e.client(p);
    }
    if result.is_err() {
        // The reason (it may name files) is in the detail, which is sealed.
        e = e.result(EventResult::Failed("failed".into()));
    }
    ctx.c.audit.record(e);
    match result {
        Ok((r, done)) => {
            let msg = format!(
                "{} {} → {} ({} {}, {})",
                l.t("Restored", "復元しました："),
                r.generation,
                done.to,
                done.files,
                l.t("files", "ファイル"),
                bytes(meter.done.load(Ordering::Relaxed).max(done.bytes))
            );
            show(ctx, org, &Notice::ok(msg), 200)
        }
        Err(e) => show(ctx, org, &Notice::err(e), 400),
    }
}
