//! Retention: whole JST months are deleted once they are too old.
//!
//! Rule: with retention N months, at time t the log keeps the month that
//! contains t (in JST) and the N months before it; older months are
//! deleted. So at 2026-11-25 with "1m" the log keeps 2026-10 and 2026-11,
//! and 2026-09 goes. This always keeps at least N full months of history
//! (N months back from any moment, plus the current partial month).
//!
//! Before deleting anything a purge writes a signed checkpoint with the last
//! deleted month and the chain hash the remaining months continue from, so
//! verification of what remains still passes.

use std::fs;
use std::sync::Arc;
use std::time::SystemTime;

use super::event::Event;
use super::index;
use super::jst::{Month, format_jst, unix_ms};
use super::keys::{LogId, LogKeys};
use super::segment::{ANCHOR_LEN, SegReader, anchor_matches, idx_name, list_segments, seg_name};
use super::signed::{self, Checkpoint};
use super::store::Store;
use super::tail;
use super::{AuditError, writer};
use crate::config::Retention;
use crate::types::OrgId;

/// A per-organization retention source shared with the writer thread.
pub type RetentionFn = Arc<dyn Fn(OrgId) -> Retention + Send + Sync>;

/// The oldest month kept under `r` at `now`; `None` keeps everything.
pub fn first_kept_month(now: SystemTime, r: Retention) -> Option<Month> {
    r.months().map(|n| Month::of(now).minus(n))
}

/// What one purge did.
#[derive(Debug, Clone, Default)]
pub struct PurgeReport {
    /// One entry per log that lost months (or could not be purged).
    pub logs: Vec<PurgedLog>,
}

/// The months removed from one log.
#[derive(Debug, Clone)]
pub struct PurgedLog {
    /// Which log.
    pub log: LogId,
    /// The retention applied.
    pub retention: Retention,
    /// Months deleted, ascending.
    pub months: Vec<Month>,
    /// Bytes freed.
    pub bytes: u64,
    /// Set when the log could not be purged (and why).
    pub error: Option<String>,
}

impl PurgeReport {
    /// The `Admin` events ("audit.purge") to record for this purge.
    pub(crate) fn events(&self, now: SystemTime) -> Vec<Event> {
        self.logs
            .iter()
            .filter(|p| !p.months.is_empty())
            .map(|p| {
                let months: Vec<String> = p.months.iter().map(|m| m.to_string()).collect();
                let detail = format!(
                    "removed {} ({} bytes) under retention {:?} at {}",
                    months.join(", "),
                    p.bytes,
                    p.retention,
                    format_jst(now)
                );
                writer::purge_event(now, p.log, detail)
            })
            .collect()
    }
}

/// How far past the newest trace of the clock (the newest write to any log
/// file, or the last purge) `now` may be before a purge refuses: a clock
/// that jumped forward would otherwise delete months that are not due.
pub const CLOCK_JUMP_MARGIN: std::time::Duration = std::time::Duration::from_secs(7 * 86_400);

/// Name of the file (in the audit directory) holding the time of the last purge.
const CLOCK_FILE: &str = "clock";

impl Store {
    /// The newest time the logs have seen: the latest modification of any
    /// log file, or the time of the last purge (`None`: an empty directory).
    pub(crate) fn last_seen(&self) -> Option<SystemTime> {
        let mut last = fs::read_to_string(self.dir.join(CLOCK_FILE))
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
            .map(|ms| SystemTime::UNIX_EPOCH + std::time::Duration::from_millis(ms));
        for log in self.logs().unwrap_or_default() {
            for e in fs::read_dir(self.log_dir(log)).into_iter().flatten().flatten() {
                if let Ok(t) = e.metadata().and_then(|m| m.modified()) {
                    last = Some(last.map_or(t, |l: SystemTime| l.max(t)));
                }
            }
        }
        last
    }

    /// Refuses a purge at `now` when the clock jumped forward beyond
    /// [`CLOCK_JUMP_MARGIN`] past [`Store::last_seen`].
    pub(crate) fn check_clock(&self, now: SystemTime) -> Result<(), AuditError> {
        let Some(last) = self.last_seen() else { return Ok(()) };
        match now.duration_since(last) {
            Ok(gap) if gap > CLOCK_JUMP_MARGIN => Err(AuditError::ClockJump(format!(
                "the clock says {} but the newest log write or purge was at {} ({} days earlier): \
                 if the clock jumped forward, a purge would delete months that are not due. \
                 Check the time (NTP); if it is right, confirm with `smbvault logs purge --clock-ok`",
                format_jst(now),
                format_jst(last),
                gap.as_secs() / 86_400
            ))),
            _ => Ok(()),
        }
    }

    /// The months a purge at `now` would delete, per log (a dry run).
    pub(crate) fn purge_plan(
        &self,
        now: SystemTime,
        retention: &dyn Fn(OrgId) -> Retention,
    ) -> Result<Vec<(LogId, Retention, Vec<Month>)>, AuditError> {
        let mut plan = Vec::new();
        for log in self.logs()? {
            let r = match log {
                LogId::Server => self.default_retention,
                LogId::Org(o) => retention(o),
            };
            let Some(keep_from) = first_kept_month(now, r) else { continue };
            let dir = self.log_dir(log);
            let old: Vec<Month> = list_segments(&dir)
                .map_err(|e| AuditError::io(&dir, e))?
                .into_iter()
                .filter(|m| *m < keep_from)
                .collect();
            if !old.is_empty() {
                plan.push((log, r, old));
            }
        }
        Ok(plan)
    }

    /// Deletes the expired months of every log (see the module docs).
    /// Refuses after a forward clock jump ([`Store::check_clock`]) unless
    /// `clock_ok` (the operator confirmed the time).
    pub(crate) fn purge(
        &self,
        now: SystemTime,
        retention: &dyn Fn(OrgId) -> Retention,
        clock_ok: bool,
    ) -> Result<PurgeReport, AuditError> {
        if !clock_ok {
            self.check_clock(now)?;
        }
        let stamp = self.dir.join(CLOCK_FILE);
        fs::write(&stamp, unix_ms(now).to_string()).map_err(|e| AuditError::io(&stamp, e))?;
        let mut report = PurgeReport::default();
        for log in self.logs()? {
            let r = match log {
                LogId::Server => self.default_retention,
                LogId::Org(o) => retention(o),
            };
            let Some(keep_from) = first_kept_month(now, r) else {
                continue;
            };
            let dir = self.log_dir(log);
            let segs = list_segments(&dir).map_err(|e| AuditError::io(&dir, e))?;
            if !segs.iter().any(|m| *m < keep_from) {
                continue;
            }
            let mut entry = PurgedLog { log, retention: r, months: Vec::new(), bytes: 0, error: None };
            let res = self.keys(log).and_then(|k| self.purge_log(&k, keep_from, now, &mut entry));
            if let Err(e) = res {
                tracing::error!(%log, error = %e, "audit purge failed");
                entry.error = Some(e.to_string());
            }
            report.logs.push(entry);
        }
        Ok(report)
    }

    fn purge_log(
        &self,
        keys: &LogKeys,
        keep_from: Month,
        now: SystemTime,
        out: &mut PurgedLog,
    ) -> Result<(), AuditError> {
        let dir = self.log_dir(keys.log);
        let io = |e| AuditError::io(&dir, e);
        let lock = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(dir.join("lock"))
            .map_err(io)?;
        lock.lock().map_err(io)?;
        let res = (|| {
            let expired: Vec<Month> = list_segments(&dir).map_err(io)?.into_iter().filter(|m| *m < keep_from).collect();
            let Some(&newest) = expired.last() else {
                return Ok(());
            };
            let ck = match signed::read_checkpoint(keys, &dir.join("checkpoint")).map_err(io)? {
                Some(Ok(c)) => Some(c),
                _ => None,
            };
            if ck.is_none_or(|c| newest > c.purged_through) {
                let c = end_of(keys, &dir, newest, now)?;
                signed::write_checkpoint(keys, &dir, &c).map_err(io)?;
            }
            for m in &expired {
                let p = dir.join(seg_name(*m));
                out.bytes += fs::metadata(&p).map(|md| md.len()).unwrap_or(0);
                fs::remove_file(&p).map_err(io)?;
                let _ = fs::remove_file(dir.join(idx_name(*m)));
                out.months.push(*m);
            }
            // Writers must not trust their cached chain end (logfile.rs).
            std::os::unix::fs::FileExt::write_all_at(&lock, &[0; 16], 0).map_err(io)?;
            signed::sync_dir(&dir).map_err(io)
        })();
        let _ = lock.unlock();
        res
    }
}

/// The checkpoint that ends with segment `month`: its last good record.
fn end_of(keys: &LogKeys, dir: &std::path::Path, month: Month, now: SystemTime) -> Result<Checkpoint, AuditError> {
    let path = dir.join(seg_name(month));
    let io = |e| AuditError::io(&path, e);
    let (r, anchor) = SegReader::open(&path).map_err(io)?;
    let anchor = match anchor {
        Ok(a) if anchor_matches(&a, keys.log, month) && a.authentic(keys) => a,
        _ => {
            return Err(AuditError::Tampered(format!(
                "{}: segment {month} has a damaged anchor; not purging it (run `smbvault logs verify`)",
                keys.log
            )));
        }
    };
    let region = index::last_end(keys, &dir.join(idx_name(month)), month, r.len()).unwrap_or(ANCHOR_LEN);
    let s = tail::scan(keys, &path, &anchor, None, region).map_err(io)?;
    Ok(Checkpoint {
        purged_through: month,
        last_seq: s.next_seq - 1,
        last_hash: s.last_hash,
        purged_at_ms: unix_ms(now),
    })
}
