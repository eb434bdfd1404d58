//! Audit events from the engine (issue: access and operation logs). Every
//! event carries the session's organization, user, client address and
//! session id; the audit log encrypts paths and share names at rest.

use std::net::SocketAddr;
use std::time::SystemTime;

use crate::audit::{Event, EventKind, EventResult};
use crate::engine::context::Ctx;
use crate::engine::server::Server;
use crate::engine::session::Session;
use crate::types::FileTime;
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

/// A SET_INFO that failed or was refused: records the change that was
/// attempted (denied attempts belong in the operation log). Only the
/// classes the log covers when they succeed: rename, delete disposition,
/// basic information (attributes, times) and security (MS-SMB2 2.2.39).
pub fn set_info_failed(ctx: &Ctx<'_>, status: NtStatus) {
    use crate::wire::fscc::InfoClass;
    use crate::wire::fscc::consts::info_type;
    use crate::wire::fscc::file_info::FileBasicInformation;
    use crate::wire::fscc::file_set::FileRenameInformation;

    let Ok(req) = crate::wire::set_info::SetInfoRequest::decode(ctx.msg) else { return };
    let Ok(id) = ctx.resolve_file_id(req.file_id) else { return };
    let Some(f) = ctx.conn.opens.get(&id).and_then(|o| o.file()) else { return };
    let (share, path) = (f.share.clone(), f.path.clone());
    let kind = match (req.info_type, InfoClass(req.file_info_class)) {
        (info_type::SECURITY, _) => EventKind::SetSecurity { share, path, security_info: req.additional_information },
        (info_type::FILE, InfoClass::RENAME) => {
            let to = FileRenameInformation::decode(req.data).map(|r| r.file_name).unwrap_or_default();
            EventKind::Rename { share, from: path, to }
        }
        (info_type::FILE, InfoClass::DISPOSITION | InfoClass::DISPOSITION_EX) => EventKind::Delete { share, path },
        (info_type::FILE, InfoClass::BASIC) => {
            let Ok(b) = FileBasicInformation::decode(req.data) else { return };
            // 0 and -1/-2 mean "leave unchanged" (MS-FSCC 2.4.7).
            let t = |v: u64| (v != 0 && v < u64::MAX - 1).then_some(FileTime(v));
            if b.file_attributes != 0 {
                EventKind::SetAttributes { share, path, attributes: b.file_attributes }
            } else {
                let w = &b.times;
                let (creation, last_access) = (t(w.creation), t(w.last_access));
                let (last_write, change) = (t(w.last_write), t(w.change));
                EventKind::SetTimes { share, path, creation, last_access, last_write, change }
            }
        }
        _ => return,
    };
    ctx.audit(kind, result_of(status));
}
