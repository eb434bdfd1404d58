//! Audit events from the engine (issue: access and operation logs). Every
//! event carries the session's organization, user, client address and
//! session id; the audit log encrypts paths and share names at rest.

use std::net::SocketAddr;
use std::time::SystemTime;

use crate::audit::{Event, EventKind, EventResult};
use crate::engine::connection::Ctx;
use crate::engine::server::Server;
use crate::engine::session::Session;
use crate::wire::NtStatus;

/// The outcome of an operation as the log records it: access problems are
/// "denied", everything else that failed is "failed".
pub fn result_of(status: NtStatus) -> EventResult {
    if !status.is_error() {
        return EventResult::Ok;
    }
    let text = status.name().map(str::to_string).unwrap_or_else(|| format!("0x{:08x}", status.0));
    match status {
        NtStatus::ACCESS_DENIED
        | NtStatus::LOGON_FAILURE
        | NtStatus::ACCOUNT_DISABLED
        | NtStatus::ACCOUNT_LOCKED_OUT
        | NtStatus::PRIVILEGE_NOT_HELD
        | NtStatus::SHARING_VIOLATION
        | NtStatus::BAD_NETWORK_NAME
        | NtStatus::CANNOT_DELETE => EventResult::Denied(text),
        _ => EventResult::Failed(text),
    }
}

/// An event about `session` (which may be gone from the table already).
pub fn session_event(session: &Session, peer: SocketAddr, now: SystemTime, kind: EventKind) -> Event {
    let mut ev = Event::new(now, kind).client(peer).session(session.id);
    if let Some(p) = &session.principal {
        ev = ev.org(p.org_id).user(format!("{}\\{}", p.org, p.user));
    }
    ev
}

/// Records an event about a session.
pub fn record_session(server: &Server, session: &Session, peer: SocketAddr, now: SystemTime, kind: EventKind) {
    server.audit.record(session_event(session, peer, now, kind));
}

impl Ctx<'_> {
    /// Records `kind` with `result` for the request's session.
    pub fn audit(&self, kind: EventKind, result: EventResult) {
        let ev = match self.conn.sessions.get(&self.hdr.session_id) {
            Some(s) => session_event(s, self.peer, self.now, kind),
            None => Event::new(self.now, kind).client(self.peer),
        };
        self.server.audit.record(ev.result(result));
    }
}
