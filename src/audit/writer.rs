//! The writer: takes events off the channel, encodes and chains them in
//! blocks per log, and makes them durable at least every
//! `flush_interval_ms` (and at once on `flush`/`shutdown`). The request
//! path only pays for a channel send; the engine's settle (`AuditLog`'s
//! `AuditSink::settle`) takes the writer's lock and writes what is pending
//! itself, so that no thread switch stands between an operation and its
//! response. The writer thread does everything else: syncs, control
//! messages, the daily purge.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use crossbeam_channel::{Receiver, Sender, TryRecvError};

use super::event::{Event, EventKind};
use super::keys::LogId;
use super::logfile::{Encoded, LogWriter};
use super::record;
use super::retention::RetentionFn;
use super::store::Store;
use super::{AuditError, jst};

/// Pending records of one log that trigger a write before the deadline.
const WRITE_BATCH: usize = 1024;
/// The request path wakes a busy writer every this many events, so that
/// the channel holds about one batch, not a whole flush interval of events.
pub(crate) const WAKE_EVERY: u64 = WRITE_BATCH as u64;
/// Longest sleep when idle (the daily purge check runs on wake-up).
const IDLE_WAKE: Duration = Duration::from_secs(60);
const DAY: Duration = Duration::from_secs(24 * 3600);

/// Control messages for the writer thread. Events travel on a channel of
/// their own, unboxed: a Box would add an allocation (and a cross-thread
/// free) to every `record` call, which measured slower.
pub(crate) enum Msg {
    Flush(Sender<Result<(), AuditError>>),
    Shutdown(Sender<Result<(), AuditError>>),
    /// Drop an erased organization's log: its pending records, open files
    /// and directory.
    Erase(crate::types::OrgId, Sender<Result<(), AuditError>>),
}

/// Counters shared with [`super::AuditLog::stats`], and the writer's
/// idle flag.
#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) recorded: AtomicU64,
    pub(crate) written: AtomicU64,
    pub(crate) lost: AtomicU64,
    pub(crate) dropped: AtomicU64,
    /// Set while the writer sleeps with nothing pending: the next event
    /// must wake it (to start the flush deadline). While events are
    /// pending, it sleeps until the deadline and events do not wake it: a
    /// wake-up per event (futex wake, two context switches) cost more than
    /// encoding and chaining the event (measured: ~15 µs vs ~2 µs).
    pub(crate) idle: AtomicBool,
}

impl Counters {
    /// Called by `record` after the send: whether to unpark the writer.
    pub(crate) fn should_wake(&self, recorded: u64) -> bool {
        recorded.is_multiple_of(WAKE_EVERY)
            || (self.idle.load(Ordering::SeqCst) && self.idle.swap(false, Ordering::SeqCst))
    }
}

pub(crate) struct Writer {
    store: Arc<Store>,
    logs: HashMap<LogId, LogWriter>,
    pending: HashMap<LogId, Vec<Encoded>>,
    deadline: Option<Instant>,
    interval: Duration,
    counters: Arc<Counters>,
    retention: Arc<parking_lot::Mutex<Option<RetentionFn>>>,
    next_purge: Instant,
}

impl Writer {
    pub(crate) fn new(
        store: Arc<Store>,
        interval: Duration,
        counters: Arc<Counters>,
        retention: Arc<parking_lot::Mutex<Option<RetentionFn>>>,
    ) -> Self {
        Self {
            store,
            logs: HashMap::new(),
            pending: HashMap::new(),
            deadline: None,
            interval,
            counters,
            retention,
            next_purge: Instant::now(),
        }
    }

    pub(crate) fn deadline_is_none(&self) -> bool {
        self.deadline.is_none()
    }

    /// Takes every event waiting in the channel.
    pub(crate) fn drain(&mut self, events: &Receiver<Event>) {
        while let Ok(ev) = events.try_recv() {
            self.push(ev);
        }
    }
}

/// The writer thread's loop. Control messages are handled in order; the
/// events sent before a message are taken first.
pub(crate) fn run(shared: Arc<Shared>, ctl: Receiver<Msg>) {
    let counters = shared.state.lock().counters.clone();
    loop {
        let deadline = {
            let mut w = shared.state.lock();
            loop {
                let msg = ctl.try_recv();
                w.drain(&shared.events);
                match msg {
                    Ok(Msg::Flush(reply)) => {
                        let _ = reply.send(w.flush_all());
                    }
                    Ok(Msg::Erase(org, reply)) => {
                        let _ = reply.send(w.erase(org));
                    }
                    Ok(Msg::Shutdown(reply)) => {
                        let _ = reply.send(w.flush_all());
                        return;
                    }
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => {
                        let _ = w.flush_all();
                        return;
                    }
                }
            }
            if w.deadline.is_some_and(|d| Instant::now() >= d)
                && let Err(e) = w.flush_all()
            {
                tracing::error!(error = %e, "audit log flush failed");
            }
            if w.deadline.is_none() {
                w.maybe_purge();
            }
            w.deadline
        };
        sleep(&shared, &ctl, &counters, deadline);
    }
}

/// Parks until the flush deadline (events pending) or until woken (idle).
/// `flush`, `shutdown`, every [`WAKE_EVERY`]th event and a settle that
/// started a deadline unpark the thread; spurious wake-ups only cost a loop.
fn sleep(shared: &Shared, ctl: &Receiver<Msg>, counters: &Counters, deadline: Option<Instant>) {
    match deadline {
        Some(d) => std::thread::park_timeout(d.saturating_duration_since(Instant::now())),
        None => {
            // SeqCst pairs with `should_wake` and with the settle: either
            // the sender sees the flag and unparks, or these checks see its
            // event (or the deadline its settle started).
            counters.idle.store(true, Ordering::SeqCst);
            let started = shared.state.lock().deadline.is_some();
            if !started && shared.events.is_empty() && ctl.is_empty() {
                std::thread::park_timeout(IDLE_WAKE);
            }
            counters.idle.store(false, Ordering::SeqCst);
        }
    }
}

/// What the writer thread and the settling request threads share.
pub(crate) struct Shared {
    pub(crate) state: parking_lot::Mutex<Writer>,
    pub(crate) events: Receiver<Event>,
}

impl Writer {
    /// Forgets an erased organization's log and deletes its directory.
    /// Records still pending for it could only have been written under a
    /// key that no longer exists: they are counted as dropped.
    fn erase(&mut self, org: crate::types::OrgId) -> Result<(), AuditError> {
        let log = LogId::Org(org);
        if let Some(recs) = self.pending.remove(&log) {
            self.counters.dropped.fetch_add(recs.len() as u64, Ordering::Relaxed);
        }
        self.logs.remove(&log);
        self.store.forget(org);
        let dir = self.store.log_dir(log);
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(AuditError::io(&dir, e)),
        }
    }

    /// Routes and encodes one event. An organization whose key is gone
    /// (shredded) gets its event in the server log, without names.
    fn push(&mut self, ev: Event) {
        let mut log = ev.org.map_or(LogId::Server, LogId::Org);
        if log != LogId::Server && self.store.keys(log).is_err() {
            log = LogId::Server;
        }
        let time = ev.time;
        let withhold = log == LogId::Server && ev.org.is_some();
        let (clear, names) = record::encode(&ev, log == LogId::Server, withhold);
        let q = self.pending.entry(log).or_default();
        q.push(Encoded { time_ms: jst::unix_ms(ev.time), clear, names });
        if q.len() >= WRITE_BATCH {
            self.write(log);
        }
        if self.deadline.is_none() {
            // Counted from when the event happened, not from when this
            // thread got to it (it may have been syncing meanwhile), so that
            // the interval bounds what a crash can lose; but at least half
            // an interval from now, so that a burst of old-dated events (a
            // clock step, a slow CLI) is still written as one block.
            let age = SystemTime::now().duration_since(time).unwrap_or_default();
            let wait = self.interval.saturating_sub(age).max(self.interval / 2);
            self.deadline = Some(Instant::now() + wait);
        }
    }

    fn writer(&mut self, log: LogId) -> Result<&mut LogWriter, AuditError> {
        if !self.logs.contains_key(&log) {
            let keys = self.store.keys(log)?;
            let dir = self.store.log_dir(log);
            let w = LogWriter::open(&dir, keys).map_err(|e| AuditError::io(&dir, e))?;
            self.logs.insert(log, w);
        }
        self.logs.get_mut(&log).ok_or(AuditError::Stopped)
    }

    /// Writes a log's pending records (without syncing). Records that
    /// cannot be written are counted as lost and the error is logged.
    fn write(&mut self, log: LogId) -> Option<AuditError> {
        let recs = self.pending.remove(&log)?;
        let n = recs.len() as u64;
        let dir = self.store.log_dir(log);
        let r = self.writer(log).and_then(|w| w.append(&recs).map_err(|e| AuditError::io(&dir, e)));
        match r {
            Ok(()) => {
                // Release: `AuditLog::settle` reads it to skip the round trip.
                self.counters.written.fetch_add(n, Ordering::Release);
                None
            }
            Err(e) => {
                self.counters.lost.fetch_add(n, Ordering::Release);
                tracing::error!(%log, error = %e, records = n, "audit records could not be written");
                Some(e)
            }
        }
    }

    /// Writes every log's pending records without syncing them; the
    /// deadline still fsyncs them.
    pub(crate) fn write_all(&mut self) {
        let logs: Vec<LogId> = self.pending.keys().copied().collect();
        for log in logs {
            let _ = self.write(log);
        }
    }

    /// Writes everything pending and fsyncs every log written to.
    fn flush_all(&mut self) -> Result<(), AuditError> {
        self.deadline = None;
        let mut first_err = None;
        let logs: Vec<LogId> = self.pending.keys().copied().collect();
        for log in logs {
            if let Some(e) = self.write(log) {
                first_err.get_or_insert(e);
            }
        }
        for (log, w) in self.logs.iter_mut().filter(|(_, w)| w.is_dirty()) {
            let dir = self.store.log_dir(*log);
            if let Err(e) = w.sync() {
                tracing::error!(%log, error = %e, "audit log sync failed");
                first_err.get_or_insert(AuditError::io(&dir, e));
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    /// Runs the daily purge when a retention source was set and a day passed.
    fn maybe_purge(&mut self) {
        if Instant::now() < self.next_purge {
            return;
        }
        let Some(f) = self.retention.lock().clone() else {
            return;
        };
        self.next_purge = Instant::now() + DAY;
        let now = SystemTime::now();
        match self.store.purge(now, &*f, false) {
            Ok(report) => {
                for ev in report.events(now) {
                    self.push(ev);
                }
            }
            Err(e) => tracing::error!(error = %e, "daily audit purge failed"),
        }
    }
}

/// An `Admin` event describing a purge of one log.
pub(crate) fn purge_event(now: SystemTime, log: LogId, detail: String) -> Event {
    let kind = EventKind::Admin { action: "audit.purge".into(), target: log.to_string(), detail };
    let mut ev = Event::new(now, kind);
    ev.org = log.org();
    ev
}
