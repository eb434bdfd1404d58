//! `/org/{org}/logs`: the organization's access and operation log, newest
//! first, with filters (user, path prefix, JST time range, event type,
//! result) and paging, and the same selection exported as CSV (UTF-8 with
//! a BOM, the CLI's columns) or JSON lines. Reads the live audit log with
//! the CLI's query and output code; only this organization's log is ever
//! opened, whoever asks.

use std::collections::VecDeque;

use maud::html;

use super::Ctx;
use super::http::{Resp, seg};
use super::views::{self, Notice};
use crate::accounts::OrgRecord;
use crate::app::AccountsOrgs;
use crate::audit::{Category, LogId, Query, ResultClass, StoredEvent, kind_names, parse_time, render};

/// Rows per page.
const PAGE: usize = 50;
/// Newest events the viewer pages through (bounded memory per request).
const MAX_VIEW: usize = 10_000;
/// Newest events one export holds (in memory: a few hundred bytes each).
const MAX_EXPORT: usize = 100_000;
/// Exports built at once, server-wide; more are asked to retry.
const MAX_EXPORTS_AT_ONCE: usize = 2;

static EXPORTS_RUNNING: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// One running export; the count drops with it.
struct ExportSlot;

impl ExportSlot {
    fn take() -> Option<Self> {
        use std::sync::atomic::Ordering;
        let n = EXPORTS_RUNNING.fetch_add(1, Ordering::SeqCst);
        if n >= MAX_EXPORTS_AT_ONCE {
            EXPORTS_RUNNING.fetch_sub(1, Ordering::SeqCst);
            return None;
        }
        Some(ExportSlot)
    }
}

impl Drop for ExportSlot {
    fn drop(&mut self) {
        EXPORTS_RUNNING.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// Export formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Export {
    /// RFC 4180 CSV with a BOM.
    Csv,
    /// One JSON object per line.
    Jsonl,
}

/// The filters of a request's query string.
fn query_of(ctx: &Ctx<'_>) -> Result<Query, String> {
    let p = |k| ctx.req.param(k).trim().to_string();
    let some = |s: String| (!s.is_empty()).then_some(s);
    let time = |k| some(p(k)).map(|s| parse_time(&s)).transpose();
    let kinds: Vec<String> = some(p("type")).into_iter().collect();
    if let Some(k) = kinds.first()
        && !kind_names().any(|n| n == k)
    {
        return Err(format!("unknown event type {k:?}"));
    }
    Ok(Query {
        category: match ctx.req.param("log") {
            "access" => Some(Category::Access),
            "operations" => Some(Category::Operation),
            _ => None,
        },
        user: some(p("user")),
        since: time("since")?,
        until: time("until")?,
        path_prefix: some(p("path")),
        kinds,
        result: ResultClass::parse(ctx.req.param("result")),
        limit: None,
    })
}

/// The newest `keep` matching events of the organization's log, newest
/// first, and whether there were more.
fn newest(ctx: &Ctx<'_>, org: &OrgRecord, q: &Query, keep: usize) -> Result<(Vec<StoredEvent>, bool), String> {
    let Some(log) = &ctx.c.audit_log else {
        return Err(ctx
            .lang
            .t("Auditing is off on this server ([audit] enabled = false).", "このサーバーでは監査ログが無効です。")
            .into());
    };
    // Events recorded a moment ago (this page's own sign-in) are shown too.
    let _ = log.flush();
    let mut ring = VecDeque::new();
    let mut more = false;
    log.query(LogId::Org(org.id), q, &mut |e| {
        if ring.len() == keep {
            ring.pop_front();
            more = true;
        }
        ring.push_back(e);
        true
    })
    .map_err(|e| e.to_string())?;
    let mut v: Vec<StoredEvent> = ring.into();
    v.sort_by_key(|e| std::cmp::Reverse((e.event.time, e.seq)));
    Ok((v, more))
}

/// `GET /org/{org}/logs`.
pub fn view(ctx: &Ctx<'_>, org: &OrgRecord) -> Resp {
    let l = ctx.lang;
    let q = match query_of(ctx) {
        Ok(q) => q,
        Err(e) => return views::page(ctx, l.t("Logs", "ログ"), &Notice::err(e), html! {}).status(400),
    };
    let page: usize = ctx.req.param("page").parse().unwrap_or(0).min(MAX_VIEW / PAGE);
    let (events, more) = match newest(ctx, org, &q, ((page + 1) * PAGE + 1).min(MAX_VIEW)) {
        Ok(r) => r,
        Err(e) => return views::page(ctx, l.t("Logs", "ログ"), &Notice::err(e), html! {}).status(500),
    };
    let shown: Vec<&StoredEvent> = events.iter().skip(page * PAGE).take(PAGE).collect();
    let has_next = events.len() > (page + 1) * PAGE || (more && events.len() >= MAX_VIEW);
    let base = format!("/org/{}/logs", seg(&org.name));
    // The current filters, for paging and export links.
    let filters: Vec<(&str, &str)> = ["log", "user", "path", "since", "until", "type", "result"]
        .into_iter()
        .map(|k| (k, ctx.req.param(k)))
        .filter(|(_, v)| !v.is_empty())
        .collect();
    let qs = |extra: Option<(&str, String)>| {
        let mut s = form_urlencoded::Serializer::new(String::new());
        for (k, v) in &filters {
            s.append_pair(k, v);
        }
        if let Some((k, v)) = extra {
            s.append_pair(k, &v);
        }
        s.finish()
    };
    let (next, prev) =
        (qs(Some(("page", (page + 1).to_string()))), qs(Some(("page", page.saturating_sub(1).to_string()))));
    let export = qs(None);
    let p = |k| ctx.req.param(k);
    let body = html! {
        form.box method="get" action=(base) id="filters" {
            label { (l.t("Log", "ログ")) " " select id="f-log" name="log" {
                option value="" selected[p("log").is_empty()] { (l.t("all", "すべて")) }
                option value="access" selected[p("log") == "access"] { (l.t("access", "アクセス")) }
                option value="operations" selected[p("log") == "operations"] { (l.t("operations", "操作")) }
            } }
            label { (l.t("User", "ユーザー")) " " input id="f-user" name="user" value=(p("user")) size="14"; }
            label { (l.t("Path starts with", "パス（前方一致）")) " " input id="f-path" name="path" value=(p("path")) size="20"; }
            label { (l.t("From (JST)", "開始（JST）")) " " input id="f-since" type="datetime-local" name="since" value=(p("since")); }
            label { (l.t("Until (JST)", "終了（JST）")) " " input id="f-until" type="datetime-local" name="until" value=(p("until")); }
            label { (l.t("Type", "種類")) " " select id="f-type" name="type" {
                option value="" { (l.t("all", "すべて")) }
                @for k in kind_names() { option value=(k) selected[p("type") == k] { (k) } }
            } }
            label { (l.t("Result", "結果")) " " select id="f-result" name="result" {
                option value="" { (l.t("all", "すべて")) }
                @for r in ["ok", "denied", "failed"] { option value=(r) selected[p("result") == r] { (r) } }
            } }
            button id="f-apply" type="submit" { (l.t("Filter", "絞り込み")) }
        }
        p {
            a id="export-csv" href=(format!("{base}.csv?{export}")) { (l.t("Export CSV", "CSV で出力")) } " · "
            a id="export-jsonl" href=(format!("{base}.jsonl?{export}")) { (l.t("Export JSON lines", "JSONL で出力")) }
        }
        table id="events" {
            tr {
                th { (l.t("Time (JST)", "日時（JST）")) } th { (l.t("User", "ユーザー")) } th { (l.t("Client", "クライアント")) }
                th { (l.t("Event", "種類")) } th { (l.t("Result", "結果")) } th { (l.t("Target", "対象")) } th { (l.t("Detail", "詳細")) }
            }
            @for e in &shown {
                @let r = render::row(e, &org.name);
                tr.event {
                    td { (r.time.get(..19).unwrap_or(&r.time).replace('T', " ")) }
                    td.user { (r.user) }
                    td { (r.client) }
                    td.kind { (r.event) }
                    td.result { (r.result) @if !r.status.is_empty() { " (" (r.status) ")" } }
                    td.target { (crate::cli::logs::target(&r)) }
                    td.detail { (r.detail) }
                }
            }
        }
        @if shown.is_empty() { p.muted id="no-events" { (l.t("No matching events.", "該当するイベントはありません。")) } }
        div.pager {
            @if page > 0 { a id="prev" href=(format!("{base}?{prev}")) { (l.t("Newer", "新しい方へ")) } }
            @if has_next { a id="next" href=(format!("{base}?{next}")) { (l.t("Older", "古い方へ")) } }
        }
    };
    views::page(ctx, l.t("Logs", "ログ"), &Notice::default(), body)
}

/// `GET /org/{org}/logs.csv|jsonl`: the filtered events, oldest first.
pub fn export(ctx: &Ctx<'_>, org: &OrgRecord, fmt: Export) -> Resp {
    // Each export holds up to MAX_EXPORT events in memory: a tenant must
    // not be able to multiply that by opening many at once.
    let Some(_slot) = ExportSlot::take() else {
        return views::error(
            ctx,
            503,
            ctx.lang.t(
                "Other exports are running; try again in a moment.",
                "他の出力を処理中です。少し待ってからやり直してください。",
            ),
        );
    };
    let q = match query_of(ctx) {
        Ok(q) => q,
        Err(e) => return views::error(ctx, 400, &e),
    };
    let mut events = match newest(ctx, org, &q, MAX_EXPORT) {
        Ok((v, _)) => v,
        Err(e) => return views::error(ctx, 500, &e),
    };
    events.reverse();
    let orgs = AccountsOrgs(&ctx.c.accounts);
    let mut out = Vec::new();
    let r = match fmt {
        Export::Csv => crate::cli::logs::csv(&orgs, &events, &mut out),
        Export::Jsonl => crate::cli::logs::jsonl(&orgs, &events, &mut out),
    };
    if let Err(e) = r {
        return views::error(ctx, 500, &e.to_string());
    }
    let stamp: String =
        crate::audit::format_jst(std::time::SystemTime::now()).chars().filter(char::is_ascii_digit).take(12).collect();
    let which = match ctx.req.param("log") {
        "access" => "access",
        "operations" => "operations",
        _ => "all",
    };
    let (ctype, ext) = match fmt {
        Export::Csv => ("text/csv; charset=utf-8", "csv"),
        Export::Jsonl => ("application/x-ndjson; charset=utf-8", "jsonl"),
    };
    Resp::file(ctype, &format!("smbvault-org{}-{which}-{stamp}.{ext}", org.id.0), out)
}
