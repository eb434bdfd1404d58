//! Access and operation logs: JST timestamps, per-organization logs with
//! per-organization retention, names encrypted at rest, and a keyed hash
//! chain that makes edits, deletions, reordering and truncation visible.
//!
//! The engine records through [`AuditSink::record`], which only sends the
//! event to a writer thread (no I/O on the request path). The writer
//! batches events into blocks, fsyncs at least every
//! `audit.flush_interval_ms`, and [`AuditLog::flush`] / [`AuditLog::shutdown`]
//! block until everything recorded before is durable. File format, torn-tail
//! rule and retention rule: docs/audit-format.md.
//!
//! Layout: `<data_dir>/audit/server/` (operator events, events without an
//! organization) and `<data_dir>/audit/org-<id>/`, each holding
//! `YYYY-MM.seg` segments (one per JST month), `YYYY-MM.idx` sparse time
//! indexes, `head`, `checkpoint` (after a purge) and `lock`.

pub mod anchor;
mod clock;
mod codec;
mod event;
mod index;
mod jst;
mod keys;
mod logfile;
mod query;
mod record;
pub mod render;
mod retention;
mod segment;
mod signed;
mod store;
mod tail;
pub mod testing;
mod verify;
mod writer;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_tamper;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use parking_lot::Mutex;

pub use clock::clock_sync_warning;
pub use event::{Category, Event, EventKind, EventResult, ResultClass, kind_code, kind_names};
pub use jst::{Month, format_jst, format_jst_ms, parse_time, unix_ms};
pub use keys::LogId;
pub use query::{Query, QueryStats, StoredEvent};
pub use retention::{CLOCK_JUMP_MARGIN, PurgeReport, PurgedLog, RetentionFn, first_kept_month};
pub use verify::{LogReport, Problem, VerifyReport};

use crate::config::{AuditConfig, Retention};
use crate::keys::{KeyError, MasterKey, OrgKeys};
use crate::types::OrgId;
use writer::{Counters, Msg, Shared, Writer};

/// Where audit events go. `record` never blocks on I/O.
pub trait AuditSink: Send + Sync {
    /// Hands an event to the log. Cheap (a channel send); never fails: an
    /// event that cannot be written is counted and reported by the writer.
    fn record(&self, ev: Event);

    /// Returns once every event recorded before the call was written to
    /// its log file (not fsynced): a crash of the process no longer loses
    /// it. The engine calls this after each pass, before it answers.
    fn settle(&self) {}
}

/// A sink that drops everything (tests, `audit.enabled = false`).
#[derive(Debug, Default, Clone, Copy)]
pub struct NullSink;

impl AuditSink for NullSink {
    fn record(&self, _ev: Event) {}
}

/// Why an audit operation failed.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// File system error, with the file or directory involved.
    #[error("audit log {path}: {source}")]
    Io {
        /// File or directory.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A log's key is unavailable (organization unknown or shredded).
    #[error("no audit key for {0}: {1}")]
    Key(LogId, KeyError),
    /// Data that should authenticate does not (details from `verify`).
    #[error("audit log tampered with: {0}")]
    Tampered(String),
    /// A query could not be run as given.
    #[error("{0}")]
    Query(String),
    /// The writer thread has stopped.
    #[error("the audit writer has stopped")]
    Stopped,
    /// A purge refused: the clock seems to have jumped forward.
    #[error("audit purge refused: {0}")]
    ClockJump(String),
}

impl AuditError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        AuditError::Io { path: path.to_path_buf(), source }
    }
}

/// Counters since [`AuditLog::open`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AuditStats {
    /// Events passed to `record`.
    pub recorded: u64,
    /// Events written to segments.
    pub written: u64,
    /// Events that could not be written (I/O error; logged).
    pub lost: u64,
    /// Events recorded after shutdown (dropped).
    pub dropped: u64,
}

/// The audit log of one server (or CLI) process.
pub struct AuditLog {
    store: Arc<store::Store>,
    /// Control messages for the writer thread.
    tx: crossbeam_channel::Sender<Msg>,
    events: crossbeam_channel::Sender<Event>,
    shared: Arc<Shared>,
    /// Set by `shutdown`: later events are dropped.
    stopped: std::sync::atomic::AtomicBool,
    thread: Mutex<Option<JoinHandle<()>>>,
    /// The writer thread, to unpark it (see `writer::Counters::idle`).
    waker: std::thread::Thread,
    counters: Arc<Counters>,
    retention: Arc<Mutex<Option<RetentionFn>>>,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog").field("dir", &self.store.dir).finish_non_exhaustive()
    }
}

/// `<data_dir>/audit`.
pub fn audit_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("audit")
}

impl AuditLog {
    /// Opens the audit directory `dir` (created if missing) and starts the
    /// writer thread. Logs are opened lazily, on their first event or query.
    /// Several processes may open the same directory (the server and the
    /// CLI); appends are serialized by a per-log file lock.
    pub fn open(
        dir: &Path,
        org_keys: Arc<dyn OrgKeys>,
        master: &MasterKey,
        cfg: &AuditConfig,
    ) -> Result<Arc<Self>, AuditError> {
        std::fs::create_dir_all(dir).map_err(|e| AuditError::io(dir, e))?;
        let store = Arc::new(store::Store::new(dir, org_keys, master, cfg.default_retention));
        let (tx, rx) = crossbeam_channel::unbounded();
        let (events, events_rx) = crossbeam_channel::unbounded();
        let counters = Arc::new(Counters::default());
        let retention = Arc::new(Mutex::new(None));
        let interval = Duration::from_millis(cfg.flush_interval_ms.clamp(1, 1000));
        let w = Writer::new(store.clone(), interval, counters.clone(), retention.clone());
        let shared = Arc::new(Shared { state: Mutex::new(w), events: events_rx });
        let sh = shared.clone();
        let thread = std::thread::Builder::new()
            .name("audit-writer".into())
            .spawn(move || writer::run(sh, rx))
            .map_err(|e| AuditError::io(dir, e))?;
        let waker = thread.thread().clone();
        Ok(Arc::new(Self {
            store,
            tx,
            events,
            shared,
            stopped: Default::default(),
            thread: Mutex::new(Some(thread)),
            waker,
            counters,
            retention,
        }))
    }

    /// Blocks until every event recorded before this call is durable.
    pub fn flush(&self) -> Result<(), AuditError> {
        let (tx, rx) = crossbeam_channel::bounded(1);
        self.tx.send(Msg::Flush(tx)).map_err(|_| AuditError::Stopped)?;
        self.waker.unpark();
        rx.recv().map_err(|_| AuditError::Stopped)?
    }

    /// Flushes, stops the writer thread and waits for it. Events recorded
    /// afterwards are dropped (and counted). Idempotent.
    pub fn shutdown(&self) -> Result<(), AuditError> {
        let Some(handle) = self.thread.lock().take() else {
            return Ok(());
        };
        self.stopped.store(true, Ordering::SeqCst);
        let (tx, rx) = crossbeam_channel::bounded(1);
        let r = match self.tx.send(Msg::Shutdown(tx)) {
            Ok(()) => {
                self.waker.unpark();
                rx.recv().unwrap_or(Err(AuditError::Stopped))
            }
            Err(_) => Err(AuditError::Stopped),
        };
        let _ = handle.join();
        r
    }

    /// Deletes expired months now (see [`first_kept_month`] for the rule):
    /// the server log uses `audit.default_retention`, each organization
    /// `retention(org)`. Records an "audit.purge" admin event per log purged.
    /// Refuses (`AuditError::ClockJump`) when `now` is far past the newest
    /// log write or purge, unless `clock_ok` (the operator checked the clock).
    pub fn purge(
        &self,
        now: SystemTime,
        retention: &dyn Fn(OrgId) -> Retention,
        clock_ok: bool,
    ) -> Result<PurgeReport, AuditError> {
        let report = self.store.purge(now, retention, clock_ok)?;
        for ev in report.events(now) {
            self.record(ev);
        }
        Ok(report)
    }

    /// The months [`AuditLog::purge`] would delete at `now`, per log.
    pub fn purge_plan(
        &self,
        now: SystemTime,
        retention: &dyn Fn(OrgId) -> Retention,
    ) -> Result<Vec<(LogId, Retention, Vec<Month>)>, AuditError> {
        self.store.purge_plan(now, retention)
    }

    /// Lets the writer thread purge once a day (first run right away).
    pub fn set_retention(&self, retention: RetentionFn) {
        *self.retention.lock() = Some(retention);
    }

    /// Runs `q` over `log`, calling `out` for each matching record until it
    /// returns `false` or `q.limit` is reached.
    pub fn query(
        &self,
        log: LogId,
        q: &Query,
        out: &mut dyn FnMut(StoredEvent) -> bool,
    ) -> Result<QueryStats, AuditError> {
        self.store.query(log, q, out)
    }

    /// Verifies one log, or all of them.
    pub fn verify(&self, log: Option<LogId>) -> Result<VerifyReport, AuditError> {
        self.store.verify(log)
    }

    /// Verifies one log, also noting the chain hash after record `probe`
    /// (audit anchors, `logs verify --anchor`).
    pub fn verify_at(&self, log: LogId, probe: Option<u64>) -> Result<LogReport, AuditError> {
        self.store.verify_log_at(log, probe)
    }

    /// Every log present: the server log, then organizations by id.
    pub fn logs(&self) -> Result<Vec<LogId>, AuditError> {
        self.store.logs()
    }

    /// After the organization was shredded: drops its cached key, its
    /// pending records and its log directory (unreadable without the key).
    /// Later events of the organization go to the server log, without names.
    pub fn erase_org(&self, org: OrgId) -> Result<(), AuditError> {
        let (tx, rx) = crossbeam_channel::bounded(1);
        self.tx.send(Msg::Erase(org, tx)).map_err(|_| AuditError::Stopped)?;
        self.waker.unpark();
        rx.recv().map_err(|_| AuditError::Stopped)?
    }

    /// Drops the cached key of a shredded organization.
    pub fn forget_org(&self, org: OrgId) {
        self.store.forget(org);
    }

    /// Events handed to `record` and not yet taken by the writer.
    pub fn queue_depth(&self) -> usize {
        self.tx.len()
    }

    /// Counters since open.
    pub fn stats(&self) -> AuditStats {
        let c = &self.counters;
        AuditStats {
            recorded: c.recorded.load(Ordering::Relaxed),
            written: c.written.load(Ordering::Relaxed),
            lost: c.lost.load(Ordering::Relaxed),
            dropped: c.dropped.load(Ordering::Relaxed),
        }
    }
}

impl AuditSink for AuditLog {
    fn settle(&self) {
        let c = &self.counters;
        let recorded = c.recorded.load(Ordering::SeqCst);
        let done = c.written.load(Ordering::SeqCst) + c.lost.load(Ordering::SeqCst) + c.dropped.load(Ordering::SeqCst);
        if done >= recorded {
            return;
        }
        // Write them here, under the writer's lock: a round trip to the
        // writer thread (futex wake, two context switches, and on a busy
        // machine the wait for a core) cost more than the write.
        let started = {
            let mut w = self.shared.state.lock();
            let idle = w.deadline_is_none();
            w.drain(&self.shared.events);
            w.write_all();
            idle && !w.deadline_is_none()
        };
        // A deadline started here: the sleeping writer must learn of it to
        // sync in time.
        if started && self.counters.idle.load(Ordering::SeqCst) {
            self.waker.unpark();
        }
    }

    fn record(&self, ev: Event) {
        let n = self.counters.recorded.fetch_add(1, Ordering::Relaxed) + 1;
        if self.stopped.load(Ordering::Relaxed) || self.events.send(ev).is_err() {
            self.counters.dropped.fetch_add(1, Ordering::Relaxed);
        } else if self.counters.should_wake(n) {
            self.waker.unpark();
        }
    }
}

impl Drop for AuditLog {
    fn drop(&mut self) {
        if let Err(e) = self.shutdown()
            && !matches!(e, AuditError::Stopped)
        {
            tracing::error!(error = %e, "audit log shutdown failed");
        }
    }
}
