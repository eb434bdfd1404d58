//! `smbvault logs access|operations|verify|purge`.
//!
//! Depends only on the config, the master key, the organization keys and
//! an [`OrgDirectory`] (names and retention of organizations, implemented
//! by whoever owns the accounts database), so that the rest of the CLI can
//! call [`run`] without this file knowing about it.

use std::io::Write;
use std::sync::Arc;
use std::time::SystemTime;

use clap::{Args, Subcommand, ValueEnum};

use crate::audit::render::{self, Row};
use crate::audit::{AuditError, AuditLog, Category, LogId, Query, ResultClass, StoredEvent, audit_dir, parse_time};
use crate::config::{Config, Retention};
use crate::keys::{MasterKey, OrgKeys};
use crate::types::OrgId;

mod upkeep;

/// The `logs` subcommands.
#[derive(Debug, Clone, Subcommand)]
pub enum LogsCmd {
    /// Logons, logoffs, sessions and tree connects.
    Access(ShowArgs),
    /// File operations and administrative changes.
    Operations(ShowArgs),
    /// Check the logs' hash chains; exits non-zero and says where on tampering.
    Verify {
        /// Only this organization's log ("server" for the server log).
        #[arg(long)]
        org: Option<String>,
        /// Also check against an anchor made by `logs anchor`: fails when a
        /// log was rolled back to an older copy or deleted since.
        #[arg(long, value_name = "FILE")]
        anchor: Option<std::path::PathBuf>,
    },
    /// Print (or write to --out) a MACed statement of every log's chain
    /// head, to keep off this machine (operator only).
    Anchor {
        /// Write it to this file instead of standard output.
        #[arg(long, value_name = "FILE")]
        out: Option<std::path::PathBuf>,
    },
    /// Delete the months past each organization's retention now (asks
    /// first: type "purge", or --yes; --dry-run lists the months).
    Purge {
        /// --yes, --dry-run.
        #[command(flatten)]
        confirm: super::confirm::ConfirmArgs,
        /// Purge even though the clock is far past the newest log write
        /// (after checking that the clock is right).
        #[arg(long)]
        clock_ok: bool,
    },
}

/// Filters and output format of `logs access|operations`.
#[derive(Debug, Clone, Default, Args)]
pub struct ShowArgs {
    /// Organization name ("server" for the server-wide log); default: all logs you may see.
    #[arg(long)]
    pub org: Option<String>,
    /// User name (case-insensitive).
    #[arg(long)]
    pub user: Option<String>,
    /// From this time on: JST (2026-11-25T09:00, 2026-11-25) or RFC 3339.
    #[arg(long)]
    pub since: Option<String>,
    /// Before this time (exclusive): JST or RFC 3339.
    #[arg(long)]
    pub until: Option<String>,
    /// Path prefix: `share/dir` or `dir` (either slash, case-insensitive).
    #[arg(long)]
    pub path: Option<String>,
    /// Event types, comma-separated (open, close, rename, delete, logon-failure, …).
    #[arg(long = "type", value_delimiter = ',')]
    pub kinds: Vec<String>,
    /// Outcome.
    #[arg(long, value_enum)]
    pub result: Option<ResultArg>,
    /// Only the newest N matching events.
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
    /// Newest event first (default: oldest first).
    #[arg(long)]
    pub newest_first: bool,
    /// Keep printing new events as they are recorded (Ctrl-C ends).
    #[arg(long, short = 'f', conflicts_with = "newest_first")]
    pub follow: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

/// `--result`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ResultArg {
    /// Succeeded.
    Ok,
    /// Refused by policy.
    Denied,
    /// Failed.
    Failed,
}

/// `--format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum Format {
    /// Aligned columns.
    #[default]
    Table,
    /// RFC 4180 CSV with a header line, UTF-8 with a byte order mark (so
    /// that Excel on Japanese Windows reads Japanese names right).
    Csv,
    /// One JSON object per line.
    Jsonl,
}

/// Organization names and retention, from the accounts database.
pub trait OrgDirectory {
    /// The organization called `name`.
    fn org_id(&self, name: &str) -> Option<OrgId>;
    /// The display name of `id`.
    fn org_name(&self, id: OrgId) -> Option<String>;
    /// The organization's retention; `None` uses `audit.default_retention`.
    fn retention(&self, id: OrgId) -> Option<Retention>;
}

/// What `run` needs from the caller.
pub struct LogsContext<'a> {
    /// Loaded configuration (`server.data_dir`, `[audit]`).
    pub config: &'a Config,
    /// Unlocked master key (server log keys).
    pub master: &'a MasterKey,
    /// Organization keys (the storage engine).
    pub org_keys: Arc<dyn OrgKeys>,
    /// Organization names and retention.
    pub orgs: &'a dyn OrgDirectory,
    /// `Some(org)` for an organization administrator: only that log is visible.
    pub allowed_org: Option<OrgId>,
    /// `--json`: JSON lines for events, one JSON object for verify and purge.
    pub json: bool,
}

/// Why a `logs` command failed. `Tampered` means verification found problems.
#[derive(Debug, thiserror::Error)]
pub enum LogsError {
    /// Reading or writing the logs failed.
    #[error(transparent)]
    Audit(#[from] AuditError),
    /// Bad arguments.
    #[error("{0}")]
    Usage(String),
    /// Not allowed for this administrator.
    #[error("{0}")]
    Forbidden(String),
    /// Verification found tampering or damage (details were printed).
    #[error("audit log verification FAILED: {0} problem(s) found")]
    Tampered(usize),
    /// Writing the output failed.
    #[error("cannot write output: {0}")]
    Output(#[from] std::io::Error),
    /// An irreversible action was not confirmed (exit code 4).
    #[error("{0}")]
    NotConfirmed(String),
}

/// Runs a `logs` subcommand, printing to standard output.
pub fn run(ctx: &LogsContext<'_>, cmd: LogsCmd) -> Result<(), LogsError> {
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let r = run_to(ctx, cmd, &mut out);
    out.flush()?;
    r
}

/// [`run`] with the output going to `out`.
pub fn run_to(ctx: &LogsContext<'_>, cmd: LogsCmd, out: &mut dyn Write) -> Result<(), LogsError> {
    let dir = audit_dir(&ctx.config.server.data_dir);
    let log = AuditLog::open(&dir, ctx.org_keys.clone(), ctx.master, &ctx.config.audit)?;
    let r = match cmd {
        LogsCmd::Access(a) => show(ctx, &log, Category::Access, &a, out),
        LogsCmd::Operations(a) => show(ctx, &log, Category::Operation, &a, out),
        LogsCmd::Verify { org, anchor } => {
            let r = upkeep::verify(ctx, &log, org.as_deref(), out);
            match (anchor, r) {
                (Some(a), Ok(())) => upkeep::verify_anchor(ctx, &log, &a, out),
                (Some(a), Err(LogsError::Tampered(n))) => match upkeep::verify_anchor(ctx, &log, &a, out) {
                    Err(LogsError::Tampered(m)) => Err(LogsError::Tampered(n + m)),
                    _ => Err(LogsError::Tampered(n)),
                },
                (_, r) => r,
            }
        }
        LogsCmd::Anchor { out: file } => upkeep::anchor(ctx, &log, file.as_deref(), out),
        LogsCmd::Purge { confirm, clock_ok } => upkeep::purge(ctx, &log, &confirm, clock_ok, out),
    };
    log.shutdown()?;
    r
}

/// The logs `--org` selects, within what the caller may see.
fn scope(ctx: &LogsContext<'_>, log: &AuditLog, org: Option<&str>) -> Result<Vec<LogId>, LogsError> {
    let wanted = match org {
        None => None,
        Some("server") => Some(LogId::Server),
        Some(name) => Some(LogId::Org(resolve(ctx, name)?)),
    };
    match (ctx.allowed_org, wanted) {
        (Some(a), Some(w)) if w != LogId::Org(a) => {
            Err(LogsError::Forbidden("you may only see your own organization's logs".into()))
        }
        (Some(a), _) => Ok(vec![LogId::Org(a)]),
        (None, Some(w)) => Ok(vec![w]),
        (None, None) => Ok(log.logs()?),
    }
}

/// An organization by name, or by number (`org-12`, `12`) for one without a name any more.
fn resolve(ctx: &LogsContext<'_>, name: &str) -> Result<OrgId, LogsError> {
    if let Some(id) = ctx.orgs.org_id(name) {
        return Ok(id);
    }
    match LogId::from_dir_name(name).or_else(|| name.parse().ok().map(|n| LogId::Org(OrgId(n)))) {
        Some(LogId::Org(o)) => Ok(o),
        _ => Err(LogsError::Usage(format!("no organization named \"{name}\""))),
    }
}

fn org_label(orgs: &dyn OrgDirectory, org: Option<OrgId>) -> String {
    match org {
        None => String::new(),
        Some(o) => orgs.org_name(o).unwrap_or_else(|| format!("org-{}", o.0)),
    }
}

fn time_arg(s: &Option<String>) -> Result<Option<SystemTime>, LogsError> {
    s.as_deref().map(parse_time).transpose().map_err(LogsError::Usage)
}

fn show(
    ctx: &LogsContext<'_>,
    log: &AuditLog,
    cat: Category,
    a: &ShowArgs,
    out: &mut dyn Write,
) -> Result<(), LogsError> {
    let q = Query {
        category: Some(cat),
        user: a.user.clone(),
        since: time_arg(&a.since)?,
        until: time_arg(&a.until)?,
        path_prefix: a.path.clone(),
        kinds: a.kinds.clone(),
        result: a.result.map(|r| match r {
            ResultArg::Ok => ResultClass::Ok,
            ResultArg::Denied => ResultClass::Denied,
            ResultArg::Failed => ResultClass::Failed,
        }),
        // `--limit` keeps the newest: each log is read oldest first and
        // only its last N matches are kept (memory bounded by N per log).
        limit: None,
    };
    let keep = a.limit.unwrap_or(usize::MAX);
    let logs = scope(ctx, log, a.org.as_deref())?;
    let mut events: Vec<StoredEvent> = Vec::new();
    let mut warnings = Vec::new();
    for l in &logs {
        let mut newest = std::collections::VecDeque::new();
        let r = log.query(*l, &q, &mut |e| {
            if newest.len() == keep {
                newest.pop_front();
            }
            if keep > 0 {
                newest.push_back(e);
            }
            true
        });
        events.extend(newest);
        let st = match r {
            Ok(st) => st,
            Err(AuditError::Key(..)) if logs.len() > 1 => continue, // a shredded organization
            Err(e) => return Err(e.into()),
        };
        warnings.extend(st.warnings);
        if st.rejected > 0 {
            warnings.push(format!(
                "{l}: {} matching records failed authentication and were not shown; run `smbvault logs verify`",
                st.rejected
            ));
        }
    }
    events.sort_by_key(|e| (e.event.time, e.log, e.seq));
    let excess = events.len().saturating_sub(keep);
    events.drain(..excess);
    let last = events.last().map(|e| (e.event.time, e.log, e.seq));
    if a.newest_first {
        events.reverse();
    }
    let format = if ctx.json && a.format == Format::Table { Format::Jsonl } else { a.format };
    match format {
        Format::Table => table(ctx, &events, out)?,
        Format::Csv => csv(ctx.orgs, &events, out)?,
        Format::Jsonl => jsonl(ctx.orgs, &events, out)?,
    }
    for w in warnings {
        eprintln!("warning: {w}");
    }
    if a.follow {
        out.flush()?;
        follow(ctx, log, a.org.as_deref(), q, format, last, out)?;
    }
    Ok(())
}

/// `--follow`: polls the logs once a second and prints what is new, in
/// the order it was recorded, until interrupted.
fn follow(
    ctx: &LogsContext<'_>,
    log: &AuditLog,
    org: Option<&str>,
    mut q: Query,
    format: Format,
    mut last: Option<(SystemTime, LogId, u64)>,
    out: &mut dyn Write,
) -> Result<(), LogsError> {
    loop {
        std::thread::sleep(std::time::Duration::from_secs(1));
        if let Some((t, _, _)) = last {
            q.since = Some(q.since.map_or(t, |s| s.max(t)));
        }
        let mut fresh = Vec::new();
        // Again each time: a log appears with its organization's first event.
        for l in &scope(ctx, log, org)? {
            match log.query(*l, &q, &mut |e| {
                fresh.push(e);
                true
            }) {
                Ok(_) | Err(AuditError::Key(..)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        fresh.retain(|e| last.is_none_or(|l| (e.event.time, e.log, e.seq) > l));
        fresh.sort_by_key(|e| (e.event.time, e.log, e.seq));
        for e in &fresh {
            match format {
                Format::Jsonl => writeln!(out, "{}", render::json(e, &org_label(ctx.orgs, e.event.org)))?,
                Format::Csv => write!(out, "{}\r\n", csv_line(ctx.orgs, e))?,
                Format::Table => {
                    let r = render::row(e, &org_label(ctx.orgs, e.event.org));
                    let p = |s: &str| crate::printable::printable(s).into_owned();
                    writeln!(
                        out,
                        "{}  {}  {}  {}  {}  {}  {}",
                        r.time,
                        p(&r.org),
                        p(&r.user),
                        p(&r.client),
                        r.event,
                        r.result,
                        p(&target(&r))
                    )?
                }
            }
        }
        if let Some(e) = fresh.last() {
            last = Some((e.event.time, e.log, e.seq));
        }
        out.flush()?;
    }
}

/// `share\path`, with ` -> share\new` for renames and copies.
pub fn target(r: &Row) -> String {
    let mut t = r.share.clone();
    if !r.path.is_empty() {
        t = if t.is_empty() { r.path.clone() } else { format!("{t}\\{}", r.path) };
    }
    if !r.new_path.is_empty() {
        // Rename and copy stay within one share (MS-FSCC 2.4.42: the target
        // is relative to the share root), so show both sides qualified.
        let to = if r.share.is_empty() { r.new_path.clone() } else { format!("{}\\{}", r.share, r.new_path) };
        t = format!("{t} -> {to}");
    }
    t
}

fn table(ctx: &LogsContext<'_>, events: &[StoredEvent], out: &mut dyn Write) -> std::io::Result<()> {
    let head = ["TIME (JST)", "ORG", "USER", "CLIENT", "EVENT", "RESULT", "TARGET", "DETAIL"];
    let rows: Vec<[String; 8]> = events
        .iter()
        .map(|e| {
            let r = render::row(e, &org_label(ctx.orgs, e.event.org));
            let result = if r.status.is_empty() { r.result.clone() } else { format!("{} ({})", r.result, r.status) };
            let dash = |s: String| if s.is_empty() { "-".to_string() } else { s };
            [
                r.time.clone(),
                dash(r.org.clone()),
                dash(r.user.clone()),
                dash(r.client.clone()),
                r.event.clone(),
                result,
                target(&r),
                r.detail.clone(),
            ]
        })
        .collect();
    // User names of failed logons, paths and details come from clients.
    let rows: Vec<[String; 8]> =
        rows.into_iter().map(|r| r.map(|c| crate::printable::printable(&c).into_owned())).collect();
    let mut w = head.map(|h| h.chars().count());
    for r in &rows {
        for (i, c) in r.iter().enumerate() {
            w[i] = w[i].max(c.chars().count());
        }
    }
    let line = |cells: &[String]| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<width$}  ", width = w[i]));
            }
        }
        s.trim_end().to_string()
    };
    writeln!(out, "{}", line(&head.map(String::from)))?;
    for r in &rows {
        writeln!(out, "{}", line(r))?;
    }
    writeln!(out, "({} events)", rows.len())
}

/// RFC 4180 quoting, plus a leading `'` on cells that a spreadsheet would
/// run as a formula (`=`, `+`, `-`, `@`): file names come from clients.
fn csv_cell(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@', '\t', '\r']) { format!("'{s}") } else { s.to_string() };
    if s.contains([',', '"', '\n', '\r']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s }
}

/// Events as CSV (also the web console's export).
pub fn csv(orgs: &dyn OrgDirectory, events: &[StoredEvent], out: &mut dyn Write) -> std::io::Result<()> {
    // The BOM makes Excel read UTF-8 (it assumes Shift_JIS on Japanese Windows).
    write!(out, "\u{FEFF}time,log,seq,org,user,client,session,event,result,status,share,path,new_path,detail\r\n")?;
    for e in events {
        write!(out, "{}\r\n", csv_line(orgs, e))?;
    }
    Ok(())
}

/// Events as JSON lines (also the web console's export).
pub fn jsonl(orgs: &dyn OrgDirectory, events: &[StoredEvent], out: &mut dyn Write) -> std::io::Result<()> {
    for e in events {
        writeln!(out, "{}", render::json(e, &org_label(orgs, e.event.org)))?;
    }
    Ok(())
}

/// One event as a CSV line (without the line end).
fn csv_line(orgs: &dyn OrgDirectory, e: &StoredEvent) -> String {
    {
        let r = render::row(e, &org_label(orgs, e.event.org));
        let seq = r.seq.to_string();
        let cells = [
            &r.time,
            &r.log,
            &seq,
            &r.org,
            &r.user,
            &r.client,
            &r.session,
            &r.event,
            &r.result,
            &r.status,
            &r.share,
            &r.path,
            &r.new_path,
            &r.detail,
        ];
        let line: Vec<String> = cells.iter().map(|c| csv_cell(c)).collect();
        line.join(",")
    }
}
