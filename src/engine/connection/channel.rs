//! The connection as a channel of its session group (`engine::group`):
//! the group's state is swapped in around each piece of work, a bind that
//! succeeded joins the bound session's group, and a channel that goes
//! leaves the group's sessions to the channels that remain (MS-SMB2
//! 3.3.7.1: a session ends only with its last channel).

use std::sync::Arc;
use std::time::SystemTime;

use super::Connection;
use crate::engine::files::Notice;
use crate::engine::group::Group;
use crate::engine::pending::PendingKind;

impl Connection {
    /// Runs `f` with the group's shared state in `self.state`; joins the
    /// group of a session a bind just bound here, once `f` is done.
    pub(super) fn with_group<R>(&mut self, f: impl FnOnce(&mut Self) -> R) -> R {
        let group = self.current_group();
        let mut inner = group.inner.lock();
        if group.is_merged() {
            // Merged between `current_group` and the lock: go again.
            drop(inner);
            return self.with_group(f);
        }
        self.state.swap_parts(&mut inner.parts);
        let r = f(self);
        self.state.swap_parts(&mut inner.parts);
        drop(inner);
        if let Some((target, sid)) = self.state.join.take() {
            self.join(&target, sid);
        }
        r
    }

    /// The group this connection belongs to now (a bind elsewhere may
    /// have merged it into another).
    fn current_group(&mut self) -> Arc<Group> {
        let g = Group::current(&self.group);
        if !Arc::ptr_eq(&g, &self.group) {
            self.state.group = Arc::downgrade(&g);
            self.group = g.clone();
        }
        g
    }

    /// A bind succeeded on this connection: it becomes a channel of
    /// `target`, the bound session's group, with everything it had.
    fn join(&mut self, target: &Arc<Group>, sid: u64) {
        let from = self.current_group();
        let target = Group::current(target);
        if Group::merge(&from, &target) {
            // The sessions `from` brought are bound into `target` from now on.
            let (f, t): (Arc<dyn std::any::Any + Send + Sync>, Arc<dyn std::any::Any + Send + Sync>) =
                (from.clone(), target.clone());
            self.server.bindable.regroup(&Arc::downgrade(&f), &Arc::downgrade(&t));
            if let Some(s) = target.inner.lock().parts.sessions.get_mut(&sid) {
                s.channels += 1;
            }
            self.state.group = Arc::downgrade(&target);
            self.group = target;
            return;
        }
        // The session's last channel went meanwhile (or the group is full):
        // the session is not reachable from here after all.
        tracing::info!(peer = %self.peer, "bound session's group is gone or full; channel not added");
        let st = &mut self.state;
        let bound: Vec<u64> = st.crypto.channel_keys.keys().copied().filter(|s| !st.sessions.contains_key(s)).collect();
        for sid in bound {
            st.crypto.channel_keys.remove(&sid);
            st.channel_sessions.remove(&sid);
        }
    }

    /// Called when the connection ends. The last channel of a group tears
    /// it down; any other leaves the group's sessions to the channels that
    /// remain.
    pub fn close(&mut self, now: SystemTime) {
        let group = self.current_group();
        let mut inner = group.inner.lock();
        if group.is_merged() {
            drop(inner);
            return self.close(now);
        }
        let me = self.state.mailbox.clone();
        inner.channels.retain(|m| !Arc::ptr_eq(m, &me));
        group.channel_left(inner.channels.len());
        self.state.swap_parts(&mut inner.parts);
        match inner.channels.first().cloned() {
            None => {
                inner.closed = true;
                self.close_group(now);
            }
            Some(survivor) => {
                tracing::info!(peer = %self.peer, channels = inner.channels.len(), "channel closed; its sessions go on on the other channels");
                self.leave(now, &survivor)
            }
        }
        self.state.swap_parts(&mut inner.parts);
    }

    /// This channel goes, others remain (3.3.7.1): requests that arrived
    /// here are forgotten (their answers could go nowhere, as on Samba),
    /// breaks and session notices go to `survivor` from now on, and the
    /// sessions that no other channel carries end as at a disconnect.
    fn leave(&mut self, now: SystemTime, survivor: &Arc<crate::engine::mailbox::Mailbox>) {
        let st = &mut self.state;
        let me = st.mailbox.clone();
        let mut ids: Vec<u64> = std::mem::take(&mut st.pending_here).into_iter().collect();
        // Orphans parked here by a channel that went before.
        ids.extend(st.orphaned.iter().copied());
        for id in ids {
            let Some(op) = st.pending.remove(&id) else { continue };
            if matches!(op.kind, PendingKind::Rerun(_)) && self.server.files.with(|t| t.repark(id, survivor.clone())) {
                // A CREATE waiting for breaks goes on (as on Samba): a
                // replay of it on another channel is told it is still
                // pending, then finds the open it made.
                st.pending.insert(id, op);
                st.orphaned.insert(id);
                continue;
            }
            crate::engine::pending::forget(&self.server, id, &op);
        }
        let opens: Vec<crate::engine::fsa::OpenId> =
            st.opens.values().map(|o| crate::engine::files::open_id(o.file_id.persistent)).collect();
        self.server.files.with(|t| {
            for id in opens {
                if t.owner_is(id, &me) {
                    t.set_owner(id, survivor.clone());
                }
            }
            for entry in t.sessions.values_mut() {
                if Arc::ptr_eq(&entry.0, &me) {
                    entry.0 = survivor.clone();
                }
            }
        });
        for n in me.take() {
            match n {
                Notice::Break(_) | Notice::EndSession(_) => survivor.post(n),
                Notice::Retry(id) if st.orphaned.contains(&id) => survivor.post(n),
                // Completions of requests that arrived here, forgotten above.
                _ => {}
            }
        }
        let mut orphaned = Vec::new();
        for sid in std::mem::take(&mut st.channel_sessions) {
            if let Some(s) = st.sessions.get_mut(&sid) {
                s.channels = s.channels.saturating_sub(1);
                if s.channels == 0 {
                    orphaned.push(sid);
                }
            }
        }
        for sid in orphaned {
            // No channel carries it any more: its opens close (durable ones
            // are kept for a reconnect) and it is gone.
            crate::engine::teardown::close_session_opens(&self.server, &mut self.state, sid, now, self.peer);
            self.state.sessions.remove(&sid);
            self.server.files.with(|t| t.sessions.remove(&sid));
        }
        self.server.settle();
    }
}
