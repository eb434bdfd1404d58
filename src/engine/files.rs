//! The server-wide table of open streams (MS-SMB2 3.3.1.5 GlobalOpenTable;
//! MS-FSA 2.1.1 Stream and File objects): share modes, delete-pending state,
//! byte-range locks and caching state of every stream any connection has
//! open, keyed by [`FileKey`], and the connections' mailboxes
//! ([`crate::engine::mailbox`]) through which one connection finishes
//! another connection's pending request (a blocking LOCK released by an
//! unlock or close elsewhere).
//!
//! The rules themselves live in [`crate::engine::fsa`]; this file only
//! keeps the state and routes completions. Everything here is in memory
//! and short: callers hold the table lock for a handful of map operations
//! (and, at the last close of a delete-pending file, one storage removal,
//! so that nobody can open the name in between).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Instant, SystemTime};

use parking_lot::Mutex;

use crate::engine::fsa::lease::{Break, LeaseDirectory};
use crate::engine::fsa::locks::Completion;
use crate::engine::fsa::stream::StreamState;
use crate::engine::fsa::{FileKey, OpenId};
use crate::types::{FileTime, NodeId, OrgId};

pub use crate::engine::mailbox::{Mailbox, Notice, Waker};

/// The table itself (reached through [`Files::with`]).
#[derive(Default)]
pub struct Table {
    streams: HashMap<FileKey, StreamState>,
    /// Blocked LOCK requests and parked CREATEs: token (= AsyncId) → the
    /// mailbox of the connection that waits.
    waiters: HashMap<u64, Arc<Mailbox>>,
    /// The connection of every open (where its breaks go). Durable opens
    /// whose connection went away have none.
    owners: HashMap<OpenId, Arc<Mailbox>>,
    /// Lease keys and the stream each belongs to (MS-SMB2 3.3.1.4).
    pub leases: LeaseDirectory,
    /// Streams with a break awaiting acknowledgment, by deadline.
    timers: Vec<(Instant, FileKey)>,
    /// Requests other than CREATE waiting for breaks on a stream to be
    /// acknowledged (a rename held up by handle leases): rerun when the
    /// stream's caching state changes.
    stream_waiters: HashMap<FileKey, Vec<u64>>,
    /// Change notify watches and their buffered changes.
    pub watches: crate::engine::watches::Watches,
    /// Established sessions of every connection: where to tell one it
    /// ended (a reconnect naming it as PreviousSessionId), and its user.
    pub sessions: HashMap<u64, (Arc<Mailbox>, OrgId, crate::types::UserId)>,
    /// Durable opens whose connection went away (MS-SMB2 3.3.1.10
    /// Open.Connection is NULL), waiting to be reconnected.
    pub durable: crate::engine::durable::Preserved,
    /// Files whose default stream became delete-pending at its last close
    /// while named streams of the file were still open: removed when the
    /// last of those closes (MS-FSA 2.1.5.4: the file goes with its last handle).
    doomed: HashSet<(OrgId, NodeId)>,
    /// Delayed write-time updates and forced write times of open files.
    times: HashMap<(OrgId, NodeId), WriteTimes>,
    /// Names that recently left a directory (name tunneling).
    tunnels: crate::engine::tunnels::Tunnels,
}

/// LastWriteTime bookkeeping of an open file, the way Windows (and Samba)
/// update it: the first write through a handle moves LastWriteTime about
/// two seconds later (or at the next flush, size change, SET_INFO basic or
/// close, whichever comes first), further writes only at close; a handle
/// that sets LastWriteTime explicitly stops automatic updates for every
/// handle of the file until it is closed (smbtorture `smb2.timestamps`).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct WriteTimes {
    /// A delayed update is due at this time.
    pub due: Option<FileTime>,
    /// LastWriteTime was set explicitly while the file is open.
    pub forced: bool,
}

impl Table {
    /// The stream's state, created empty on first use.
    pub fn stream(&mut self, key: &FileKey) -> &mut StreamState {
        self.streams.entry(key.clone()).or_default()
    }

    /// The stream's state if anyone has it open.
    pub fn get(&self, key: &FileKey) -> Option<&StreamState> {
        self.streams.get(key)
    }

    /// Drops the entry when nothing refers to it any more.
    pub fn drop_if_idle(&mut self, key: &FileKey) {
        if self.streams.get(key).is_some_and(StreamState::is_idle) {
            self.streams.remove(key);
        }
    }

    /// Open streams of one node other than `except` (MS-FSA: deleting or
    /// renaming a file looks at the opens of all its streams).
    pub fn other_streams<'a>(&'a self, key: &'a FileKey) -> impl Iterator<Item = (&'a FileKey, &'a StreamState)> + 'a {
        self.streams.iter().filter(move |(k, s)| {
            k.org == key.org && k.node == key.node && k.view == key.view && *k != key && !s.shares.is_empty()
        })
    }

    /// True if any stream of the (live) node is open.
    pub fn node_open(&self, org: OrgId, node: NodeId) -> bool {
        self.streams.iter().any(|(k, s)| k.org == org && k.node == node && k.view == 0 && !s.shares.is_empty())
    }

    /// Live nodes of the organization with any open stream.
    pub fn open_nodes(&self, org: OrgId) -> Vec<NodeId> {
        self.streams
            .iter()
            .filter(|(k, s)| k.org == org && k.view == 0 && !s.shares.is_empty())
            .map(|(k, _)| k.node)
            .collect()
    }

    /// A named stream was renamed: its state follows it.
    pub fn move_stream(&mut self, from: &FileKey, to: &FileKey) {
        if let Some(s) = self.streams.remove(from) {
            self.streams.insert(to.clone(), s);
        }
    }

    /// The file is waiting for its last stream handle to be deleted.
    pub fn is_doomed(&self, org: OrgId, node: NodeId) -> bool {
        self.doomed.contains(&(org, node))
    }

    /// Marks or clears a deferred file delete.
    pub fn set_doomed(&mut self, org: OrgId, node: NodeId, doomed: bool) {
        if doomed {
            self.doomed.insert((org, node));
        } else {
            self.doomed.remove(&(org, node));
        }
    }

    /// The file's write-time state.
    pub fn write_times(&mut self, org: OrgId, node: NodeId) -> &mut WriteTimes {
        self.times.entry((org, node)).or_default()
    }

    /// The file's write-time state, if any.
    pub fn peek_write_times(&self, org: OrgId, node: NodeId) -> Option<WriteTimes> {
        self.times.get(&(org, node)).copied()
    }

    /// Forgets the write-time state of a file nobody has open any more.
    pub fn forget_times_if_closed(&mut self, org: OrgId, node: NodeId) {
        if self.times.contains_key(&(org, node)) && !self.node_open(org, node) {
            self.times.remove(&(org, node));
        }
    }

    /// Remembers a name that left `dir` at `now` (see `engine::tunnels`).
    pub fn tunnel_leave(&mut self, dir: (OrgId, NodeId), name: &str, created: FileTime, now: FileTime) {
        self.tunnels.leave(dir, name, created, now);
    }

    /// A name arriving in `dir`: the tunneled long name and creation time
    /// if it matches a recent one by long or 8.3 name (consumed).
    pub fn tunnel_arrive(&mut self, dir: (OrgId, NodeId), name: &str, now: FileTime) -> Option<(String, FileTime)> {
        self.tunnels.arrive(dir, name, now)
    }

    /// Remembers who waits for a blocked LOCK.
    pub fn park(&mut self, token: u64, mailbox: Arc<Mailbox>) {
        self.waiters.insert(token, mailbox);
    }

    /// Moves a parked request to another connection's mailbox (its own
    /// went away, `engine::group`); false if it is not parked.
    pub fn repark(&mut self, token: u64, mailbox: Arc<Mailbox>) -> bool {
        match self.waiters.get_mut(&token) {
            Some(m) => {
                *m = mailbox;
                true
            }
            None => false,
        }
    }

    /// Delivers finished LOCK requests to the connections that wait for them.
    pub fn complete(&mut self, done: Vec<Completion>) {
        for c in done {
            if let Some(mb) = self.waiters.remove(&c.token) {
                mb.post(Notice::Completed { async_id: c.token, status: c.status });
            }
        }
    }

    /// Forgets a waiter whose request was answered otherwise.
    pub fn unpark(&mut self, token: u64) {
        self.waiters.remove(&token);
        for v in self.stream_waiters.values_mut() {
            v.retain(|&t| t != token);
        }
        self.stream_waiters.retain(|_, v| !v.is_empty());
    }

    /// Records the connection an open belongs to (its breaks go there).
    pub fn set_owner(&mut self, open: OpenId, mailbox: Arc<Mailbox>) {
        self.owners.insert(open, mailbox);
    }

    /// The open closed or lost its connection.
    pub fn clear_owner(&mut self, open: OpenId) {
        self.owners.remove(&open);
    }

    /// True if the open is attached to the connection of `mailbox`.
    pub fn owner_is(&self, open: OpenId, mailbox: &Arc<Mailbox>) -> bool {
        self.owners.get(&open).is_some_and(|m| Arc::ptr_eq(m, mailbox))
    }

    /// True if the open is attached to a connection.
    pub fn has_owner(&self, open: OpenId) -> bool {
        self.owners.contains_key(&open)
    }

    /// Sends break notifications to the connections of the opens they
    /// name (a lease break once, to the first open still connected), and
    /// arms the stream's acknowledgment timer (MS-SMB2 3.3.4.6, 3.3.4.7,
    /// 3.3.2.1). A break aimed at a durable open whose connection went
    /// away closes that open instead (as Windows and Samba do: it moves to
    /// [`crate::engine::durable::Preserved::take_reaped`] for its closing);
    /// returns true if that happened, so that the caller can look again.
    pub fn send_breaks(&mut self, key: &FileKey, breaks: Vec<Break>) -> bool {
        if breaks.is_empty() {
            return false;
        }
        let mut purged = false;
        for b in breaks {
            tracing::debug!(break_ = ?b, "sending break");
            let opens: Vec<OpenId> = match &b {
                Break::Oplock { open, .. } => vec![*open],
                Break::Lease { opens, .. } => opens.clone(),
            };
            if let Some(mb) = opens.iter().find_map(|o| self.owners.get(o)) {
                mb.post(Notice::Break(b));
                continue;
            }
            for o in opens {
                purged |= self.durable.purge(o);
            }
        }
        self.arm_timer(key);
        purged
    }

    fn arm_timer(&mut self, key: &FileKey) {
        if let Some(d) = self.streams.get(key).and_then(StreamState::next_deadline)
            && !self.timers.iter().any(|(t, k)| *t == d && k == key)
        {
            self.timers.push((d, key.clone()));
        }
    }

    /// Wakes parked requests: each token's connection reruns it.
    pub fn retry(&mut self, tokens: Vec<u64>) {
        for t in tokens {
            if let Some(mb) = self.waiters.get(&t) {
                mb.post(Notice::Retry(t));
            }
        }
    }

    /// Parks a request (other than a CREATE, which the stream parks
    /// itself) until the caching state of `key` changes.
    pub fn wait_on(&mut self, key: &FileKey, token: u64, mailbox: Arc<Mailbox>) {
        self.waiters.insert(token, mailbox);
        let v = self.stream_waiters.entry(key.clone()).or_default();
        if !v.contains(&token) {
            v.push(token);
        }
    }

    /// The caching state of `key` changed (acknowledgment, close, timeout):
    /// rerun the requests of [`Table::wait_on`] and the CREATEs in `retry`.
    pub fn state_changed(&mut self, key: &FileKey, retry: Vec<u64>) {
        let mut all = retry;
        if let Some(v) = self.stream_waiters.remove(key) {
            all.extend(v);
        }
        self.retry(all);
    }

    /// Break acknowledgment timers that are due (MS-SMB2 3.3.2.1): the
    /// holder loses its caching as if it had acknowledged to none, and the
    /// requests waiting on the stream run again.
    pub fn run_timers(&mut self, now: Instant) {
        if !self.timers.iter().any(|(d, _)| *d <= now) {
            return;
        }
        let (due, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.timers).into_iter().partition(|(d, _)| *d <= now);
        self.timers = later;
        for (_, key) in due {
            let retry = match self.streams.get_mut(&key) {
                Some(s) => s.on_timer(now),
                None => continue,
            };
            self.state_changed(&key, retry);
            self.arm_timer(&key);
            self.drop_if_idle(&key);
        }
    }

    /// Number of streams with state (tests, diagnostics).
    pub fn len(&self) -> usize {
        self.streams.len()
    }

    /// No stream has state.
    pub fn is_empty(&self) -> bool {
        self.streams.is_empty()
    }
}

/// The shared open-file table and id allocator.
pub struct Files {
    table: Mutex<Table>,
    next_id: AtomicU64,
    /// Monotonic base for the fsa deadlines (oplock break timeouts),
    /// matched to `start` so that handlers can keep passing `SystemTime`.
    epoch: Instant,
    start: SystemTime,
}

impl Files {
    /// An empty table. `start` is the server's start time.
    pub fn new(start: FileTime) -> Self {
        Self {
            table: Mutex::new(Table::default()),
            next_id: AtomicU64::new(1),
            // The one clock read of the table: the base of fsa's `Instant`s.
            epoch: Instant::now(),
            start: start.to_system(),
        }
    }

    /// Runs `f` with the table locked.
    pub fn with<R>(&self, f: impl FnOnce(&mut Table) -> R) -> R {
        f(&mut self.table.lock())
    }

    /// A fresh server-wide id: persistent FileIds (also the fsa `OpenId`)
    /// and AsyncIds / lock tokens. Never 0 or all ones.
    pub fn new_id(&self) -> u64 {
        loop {
            let id = self.next_id.fetch_add(1, Ordering::Relaxed);
            if id != 0 && id != u64::MAX {
                return id;
            }
        }
    }

    /// `now` on fsa's monotonic scale.
    pub fn instant(&self, now: SystemTime) -> Instant {
        self.epoch + now.duration_since(self.start).unwrap_or_default()
    }
}

/// The fsa id of an open with this persistent FileId.
pub fn open_id(persistent: u64) -> OpenId {
    OpenId(persistent)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::NtStatus;

    const ORG: OrgId = OrgId(1);
    const DIR: NodeId = NodeId(7);

    #[test]
    fn completions_reach_the_waiting_mailbox_once() {
        let mut t = Table::default();
        let mb = Arc::new(Mailbox::default());
        let woken = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let w = woken.clone();
        mb.set_waker(Arc::new(move || {
            w.fetch_add(1, Ordering::Relaxed);
        }));
        t.park(42, mb.clone());
        let done = Completion { token: 42, owner: OpenId(1), status: NtStatus::SUCCESS };
        t.complete(vec![done, done]);
        assert_eq!(mb.take(), vec![Notice::Completed { async_id: 42, status: NtStatus::SUCCESS }]);
        assert_eq!(woken.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn idle_streams_are_dropped_and_node_state_tracked() {
        let mut t = Table::default();
        let key = FileKey::new(ORG, DIR, "");
        t.stream(&key);
        assert!(!t.node_open(ORG, DIR));
        t.drop_if_idle(&key);
        assert!(t.is_empty());
        t.set_doomed(ORG, DIR, true);
        assert!(t.is_doomed(ORG, DIR));
        t.set_doomed(ORG, DIR, false);
        assert!(!t.is_doomed(ORG, DIR));
    }
}
