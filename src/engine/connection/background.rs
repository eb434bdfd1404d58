//! Work that does not start with a request of this connection: final
//! responses of pending requests, break notifications, parked requests run
//! again (all posted to the connection's mailbox, possibly by another
//! connection), the periodic tick, and teardown.

use std::time::SystemTime;

use super::{Connection, Related, response_header};
use crate::engine::context::{ConnState, Ctx, Outgoing, Reply, error_body, new_message, put_header};
use crate::engine::files::{Notice, Waker};
use crate::engine::handlers;
use crate::engine::pending::{PendingKind, PendingOp};
use crate::engine::security;
use crate::engine::status::Error;
use crate::wire::NtStatus;
use crate::wire::header::{Command, flags};

impl Connection {
    /// Lets `net` wake this connection when another connection completes
    /// one of its pending requests; `net` then calls [`Connection::poll`].
    pub fn set_waker(&mut self, w: Waker) {
        self.state.mailbox.set_waker(w);
    }

    /// Final responses of pending requests that completed (MS-SMB2 3.3.4.3:
    /// async header, CreditResponse 0), break notifications for our opens,
    /// parked requests run again, and sessions retired by LOGOFF.
    pub fn poll(&mut self, now: SystemTime) -> Vec<Outgoing> {
        self.with_group(|c| c.poll_in_group(now))
    }

    /// [`Self::poll`] with the group's state in place.
    pub(super) fn poll_in_group(&mut self, now: SystemTime) -> Vec<Outgoing> {
        let mut out = Vec::new();
        // A rerun may post more notices (a CREATE that breaks our own
        // oplock): loop until the mailbox stays empty.
        for _ in 0..64 {
            let notices = self.state.mailbox.take();
            if notices.is_empty() {
                break;
            }
            for n in notices {
                out.extend(self.notice(now, n));
            }
        }
        self.retire_sessions();
        // Every response leaves through here (`handle` and `tick` end with
        // a poll): the changes behind it reach the kernel first.
        self.server.settle();
        out
    }

    /// Drops the sessions LOGOFF (or a reconnect) ended, once their last
    /// responses are signed.
    fn retire_sessions(&mut self) {
        let gone = std::mem::take(&mut self.state.retire);
        if gone.is_empty() {
            return;
        }
        self.server.files.with(|t| {
            for sid in &gone {
                t.sessions.remove(sid);
            }
        });
        for sid in gone {
            self.state.sessions.remove(&sid);
        }
    }

    fn notice(&mut self, now: SystemTime, n: Notice) -> Vec<Outgoing> {
        let (async_id, status, body) = match n {
            Notice::Break(b) => return crate::engine::caching::notification(&self.state, &b).into_iter().collect(),
            Notice::Retry(token) => return self.rerun(now, token),
            Notice::EndSession(sid) => {
                self.end_session(now, sid);
                return Vec::new();
            }
            Notice::Completed { async_id, status } => (async_id, status, None),
            Notice::Notify { async_id, status, data } => {
                let body = (!status.is_error()).then(|| {
                    let mut m = new_message();
                    crate::wire::change_notify::ChangeNotifyResponse { data: &data }.encode(&mut m);
                    m
                });
                (async_id, status, body)
            }
        };
        let Some(op) = self.state.pending.remove(&async_id) else {
            return Vec::new();
        };
        if self.state.orphaned.remove(&async_id) {
            return Vec::new();
        }
        match final_response(&self.state, &op, async_id, status, body) {
            Ok(frame) => vec![frame],
            Err(e) => {
                tracing::debug!(reason = ?e, "dropping a final async response");
                Vec::new()
            }
        }
    }

    /// Runs a parked CREATE or SET_INFO again; answers it unless it has to
    /// keep waiting, then runs the rest of its compound, if any.
    fn rerun(&mut self, now: SystemTime, async_id: u64) -> Vec<Outgoing> {
        let Some(mut op) = self.state.pending.remove(&async_id) else {
            return Vec::new();
        };
        let PendingKind::Rerun(r) = &mut op.kind else {
            self.state.pending.insert(async_id, op);
            return Vec::new();
        };
        let rest = r.rest.take();
        let result = {
            let mut ctx = Ctx {
                server: &self.server,
                now,
                hdr: &op.hdr,
                msg: &r.msg,
                write_data: None,
                peer: self.peer,
                conn: &mut self.state,
                related_file_id: r.related_file_id,
                encrypted: op.encrypted,
                resume: Some(async_id),
            };
            handlers::dispatch(&mut ctx)
        };
        let (status, body) = match result {
            Ok(Reply::Pending(_)) => {
                if let PendingKind::Rerun(r) = &mut op.kind {
                    r.rest = rest;
                }
                self.state.pending.insert(async_id, op);
                return Vec::new();
            }
            Ok(Reply::Body(status, body)) => (status, Some(body)),
            Ok(Reply::None) => return Vec::new(),
            Err(e) => (e.status(), None),
        };
        self.server.files.with(|t| t.unpark(async_id));
        if self.state.orphaned.remove(&async_id) {
            // Its channel went: the CREATE ran, its answer goes nowhere.
            return Vec::new();
        }
        let file_id = super::created_file_id(&op.hdr, status, body.as_deref());
        let mut out = Vec::new();
        match final_response(&self.state, &op, async_id, status, body) {
            Ok(frame) => out.push(frame),
            Err(e) => tracing::debug!(reason = ?e, "dropping a final async response"),
        }
        if let Some((mut rest, encrypted)) = rest {
            let prev = Related {
                session_id: op.hdr.session_id,
                tree_id: op.hdr.tree_id,
                file_id,
                create_error: (op.hdr.command == Command::CREATE && status.is_error()).then_some(status),
            };
            match self.chain(now, &mut rest, encrypted, Some(prev)) {
                Ok(Some(frame)) => out.push(frame),
                Ok(None) => {}
                Err(e) => tracing::debug!(reason = ?e, "rest of a compound failed"),
            }
        }
        out
    }

    /// Periodic work (about once a second): when users, shares or
    /// permissions changed (also by the CLI in another process), re-check
    /// every session and tree of this connection at once.
    pub fn tick(&mut self, now: SystemTime) -> Vec<Outgoing> {
        self.with_group(|c| c.tick_in_group(now))
    }

    fn tick_in_group(&mut self, now: SystemTime) -> Vec<Outgoing> {
        let st = &mut self.state;
        // Forget what ended: ids of answered requests, sessions gone.
        st.pending_here.retain(|id| st.pending.contains_key(id));
        st.channel_sessions.retain(|sid| st.sessions.contains_key(sid));
        st.crypto.channel_keys.retain(|sid, _| st.sessions.contains_key(sid));
        // Break acknowledgment timers and durable handle timeouts are
        // server-wide; whichever connection ticks first runs them.
        crate::engine::teardown::tick(&self.server, now);
        crate::engine::limits::expire_logons(&self.server, &mut self.state, now);
        // Summaries of failed-logon bursts that ended (whichever connection
        // ticks first writes them).
        let policy = crate::engine::throttle::Policy::of(&self.server.live());
        for ev in self.server.logons.due(&policy, now) {
            self.server.audit.record(ev);
        }
        let rev = self.server.revision(now);
        if self.state.seen_revision != Some(rev) {
            self.state.seen_revision = Some(rev);
            crate::engine::revalidate::connection(&self.server, &mut self.state, now, self.peer);
        }
        let mut v = std::mem::take(&mut self.state.extra);
        v.extend(self.poll_in_group(now));
        v
    }

    /// The last channel of the group ended: durable opens are kept for a
    /// reconnect (MS-SMB2 3.3.7.1), parked requests forgotten, everything
    /// else closed.
    pub(super) fn close_group(&mut self, now: SystemTime) {
        let sids: Vec<u64> = self.state.sessions.keys().copied().collect();
        self.server.files.with(|t| {
            for sid in sids {
                t.sessions.remove(&sid);
            }
        });
        crate::engine::teardown::detach(&self.server, &mut self.state, now);
        for (id, op) in std::mem::take(&mut self.state.pending) {
            crate::engine::pending::forget(&self.server, id, &op);
        }
        crate::engine::teardown::close_all(&self.server, &mut self.state, now, self.peer);
        self.server.settle();
    }
}

/// Builds, signs or seals the final response of a pending request: the
/// error body for an error status, `body` (or the command's fixed success
/// body) otherwise.
fn final_response(
    state: &ConnState,
    op: &PendingOp,
    async_id: u64,
    status: NtStatus,
    body: Option<Vec<u8>>,
) -> Result<Outgoing, Error> {
    let mut hdr = response_header(&op.hdr, status, 0, op.hdr.session_id);
    // A final response travels alone, even if its request came in a compound.
    hdr.flags = (hdr.flags | flags::ASYNC_COMMAND) & !flags::RELATED_OPERATIONS;
    hdr.async_id = async_id;
    let mut msg = match body {
        Some(b) => b,
        None if status.is_error() => error_body(),
        None => pending_body(&op.kind),
    };
    put_header(&hdr, &mut msg);
    let sid = op.hdr.session_id;
    let encrypt = op.encrypted || state.sessions.get(&sid).is_some_and(|s| s.encrypt_data);
    let sign = security::should_sign(state, &hdr, status);
    security::protect(state, msg, encrypt.then_some(sid), sign)
}

/// The success body of a request that completed asynchronously.
fn pending_body(kind: &PendingKind) -> Vec<u8> {
    let mut m = new_message();
    match kind {
        PendingKind::Lock(_) => crate::wire::lock::LockResponse.encode(&mut m),
        PendingKind::Notify => crate::wire::change_notify::ChangeNotifyResponse { data: &[] }.encode(&mut m),
        // A rerun request always finishes with its own response body.
        PendingKind::Rerun(_) => return error_body(),
    }
    m
}
