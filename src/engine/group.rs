//! Session groups: what every channel of a multichannel session shares
//! (MS-SMB2 3.3.1.8 Session.ChannelList; 3.3.5.5.2 binding). A group is
//! the sessions, their trees and opens, the requests they left pending and
//! the replay cache of one or more connections. A connection that was
//! never bound is a group of one. A bind makes the binding connection a
//! channel of the session's group; when a connection already in another
//! group binds, the two groups become one ([`Group::merge`]). The group is
//! torn down (durable opens kept for a reconnect, 3.3.7.1) only when its
//! last channel goes.
//!
//! A leaf of the engine: `context` and `binding` import it.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::engine::mailbox::Mailbox;
use crate::engine::open::Open;
use crate::engine::pending::PendingOp;
use crate::engine::session::Session;

/// Most channels one group (so one session) may have; Windows allows 32.
pub const MAX_CHANNELS: usize = 32;

/// The shared half of a connection's state; the connection swaps it in
/// for the duration of each request (see `engine::connection`).
#[derive(Default)]
pub struct Parts {
    /// Sessions by SessionId.
    pub sessions: HashMap<u64, Session>,
    /// Opens by volatile FileId.
    pub opens: HashMap<u64, Open>,
    /// Requests that went asynchronous, by AsyncId.
    pub pending: HashMap<u64, PendingOp>,
    /// Sessions to drop once the current response is signed (LOGOFF).
    pub retire: Vec<u64>,
    /// Accounts revision the sessions were last checked against.
    pub seen_revision: Option<u64>,
    /// CreateGuids of durable v2 CREATEs, for replay detection.
    pub replay: crate::engine::replay::Cache,
    /// Parked requests whose channel went: they still run (a CREATE
    /// completes, its replay finds the open), their answers are dropped.
    pub orphaned: std::collections::HashSet<u64>,
}

/// What the group's lock guards.
#[derive(Default)]
pub struct Inner {
    /// The shared state (moved out while a channel runs a request).
    pub parts: Parts,
    /// The mailboxes of the live channels (breaks of an open whose channel
    /// went away go to another one).
    pub channels: Vec<Arc<Mailbox>>,
    /// The last channel went: nothing may join any more.
    pub closed: bool,
}

/// A session group (see the module comment).
#[derive(Default)]
pub struct Group {
    /// Everything, under one lock: a request of one channel runs while the
    /// others wait (per session group, not server-wide).
    pub inner: parking_lot::Mutex<Inner>,
    /// Live channels (0: closed), readable without the lock: a bind checks
    /// it while its own group is locked.
    channel_count: AtomicUsize,
    /// The group was merged into this one: its channels follow. A lock of
    /// its own, taken last and never held across anything: a bind looks
    /// the bound session's group up while its own group is locked.
    merged_into: parking_lot::Mutex<Option<Arc<Group>>>,
}

impl Group {
    /// A group of one connection, whose mailbox is `mailbox`.
    pub fn new(mailbox: Arc<Mailbox>) -> Arc<Self> {
        let g = Group::default();
        g.inner.lock().channels.push(mailbox);
        g.channel_count.store(1, Ordering::Relaxed);
        Arc::new(g)
    }

    /// True if one more channel may join (the group is live and has
    /// fewer than [`MAX_CHANNELS`]).
    pub fn has_room(&self) -> bool {
        let n = self.channel_count.load(Ordering::Relaxed);
        n > 0 && n < MAX_CHANNELS
    }

    /// True while the group has a channel.
    pub fn is_live(&self) -> bool {
        self.channel_count.load(Ordering::Relaxed) > 0
    }

    /// True once the group was merged into another.
    pub fn is_merged(&self) -> bool {
        self.merged_into.lock().is_some()
    }

    /// A channel left; `remaining` are still there.
    pub fn channel_left(&self, remaining: usize) {
        self.channel_count.store(remaining, Ordering::Relaxed);
    }

    /// Where a channel of `this` now belongs (following merges).
    pub fn current(this: &Arc<Self>) -> Arc<Self> {
        let mut g = this.clone();
        loop {
            let next = g.merged_into.lock().clone();
            match next {
                Some(n) => g = n,
                None => return g,
            }
        }
    }

    /// Moves everything of `from` (the binding connection's group, not
    /// locked by anybody) into `into` (the bound session's): the two are
    /// one group afterwards. False if `into` is closed or would get more
    /// than [`MAX_CHANNELS`] channels; nothing changes then.
    pub fn merge(from: &Arc<Self>, into: &Arc<Self>) -> bool {
        if Arc::ptr_eq(from, into) {
            return true;
        }
        // Lock order by address: two merges in opposite directions at
        // once cannot deadlock.
        let from_first = Arc::as_ptr(from) < Arc::as_ptr(into);
        let (mut a, mut b) = if from_first {
            let a = from.inner.lock();
            (a, into.inner.lock())
        } else {
            let b = into.inner.lock();
            (from.inner.lock(), b)
        };
        let (src, dst) = (&mut *a, &mut *b);
        if dst.closed || src.closed || from.is_merged() || into.is_merged() {
            return false;
        }
        if src.channels.len() + dst.channels.len() > MAX_CHANNELS {
            return false;
        }
        let p = std::mem::take(&mut src.parts);
        dst.parts.sessions.extend(p.sessions);
        dst.parts.opens.extend(p.opens);
        dst.parts.pending.extend(p.pending);
        dst.parts.retire.extend(p.retire);
        dst.parts.replay.absorb(p.replay);
        dst.parts.orphaned.extend(p.orphaned);
        // Both halves are re-checked at the next tick.
        dst.parts.seen_revision = None;
        dst.channels.append(&mut src.channels);
        into.channel_count.store(dst.channels.len(), Ordering::Relaxed);
        from.channel_count.store(0, Ordering::Relaxed);
        *from.merged_into.lock() = Some(into.clone());
        true
    }
}
