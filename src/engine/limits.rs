//! Per-connection budgets (`[limits]` in the configuration): what one
//! client may make the server hold. Checked before a request's handler
//! runs, so a request over a limit changes nothing and fails with the
//! status Windows uses; the connection goes on.
//!
//! - Sessions and logons under way: STATUS_INSUFFICIENT_RESOURCES, and a
//!   logon not finished in `session_setup_timeout_secs` is dropped (each
//!   holds an NTLM exchange before anyone has authenticated).
//! - Tree connects: STATUS_INSUFFICIENT_RESOURCES (MS-SMB2 3.3.5.7).
//! - Opens: STATUS_TOO_MANY_OPENED_FILES, as Windows and Samba answer
//!   when their open table is full (smbtorture `smb2.maxfid` stops there).
//! - Requests that would wait (CHANGE_NOTIFY, a blocking LOCK):
//!   STATUS_INSUFFICIENT_RESOURCES, as MS-SMB2 3.3.4.2 allows when "an
//!   operation would require asynchronous processing but resources are
//!   constrained".
//! - Change-notify watches: STATUS_INSUFFICIENT_RESOURCES for a handle
//!   that has none yet.

use std::time::{Duration, SystemTime};

use crate::config::LimitsConfig;
use crate::engine::context::ConnState;
use crate::engine::fsa::OpenId;
use crate::engine::server::Server;
use crate::engine::session::SessionState;
use crate::engine::status::Error;
use crate::wire::header::{Command, Header};
use crate::wire::session_setup::{FLAG_BINDING, SessionSetupRequest};
use crate::wire::{NtStatus, prefix};

/// Fails `hdr` (already validated, ids of a related compound filled in)
/// when it would take the connection over one of its budgets.
pub fn admit(
    server: &Server,
    state: &ConnState,
    hdr: &Header,
    msg: &[u8],
    related_file_id: Option<(u64, u64)>,
) -> Result<(), Error> {
    let l = &server.config.limits;
    let over = |s: NtStatus| {
        tracing::debug!(cmd = ?hdr.command, status = ?s, "connection limit reached");
        Err(Error::Status(s))
    };
    match hdr.command {
        Command::SESSION_SETUP if hdr.session_id == 0 => {
            let binding = SessionSetupRequest::decode(msg).is_ok_and(|r| r.flags & FLAG_BINDING != 0);
            if !binding && !session_admitted(l, state) {
                return over(NtStatus::INSUFFICIENT_RESOURCES);
            }
        }
        Command::TREE_CONNECT
            if state.sessions.get(&hdr.session_id).is_some_and(|s| s.trees.len() >= l.trees_per_session) =>
        {
            return over(NtStatus::INSUFFICIENT_RESOURCES);
        }
        Command::CREATE if !open_admitted(l, state, hdr.session_id) => {
            return over(NtStatus::TOO_MANY_OPENED_FILES);
        }
        Command::LOCK if prefix::lock_may_wait(msg) && state.pending.len() >= l.pending_per_connection => {
            return over(NtStatus::INSUFFICIENT_RESOURCES);
        }
        Command::CHANGE_NOTIFY => {
            if state.pending.len() >= l.pending_per_connection {
                return over(NtStatus::INSUFFICIENT_RESOURCES);
            }
            let volatile =
                prefix::request_file_id(hdr.command, msg).map(|f| f.volatile).or(related_file_id.map(|f| f.1));
            let watched = |v: &u64| state.opens.get(v).map(|o| OpenId(o.file_id.persistent));
            if let Some(id) = volatile.as_ref().and_then(watched)
                && !server.files.with(|t| t.watches.contains(id))
            {
                // A new watch: count this connection's.
                let n = server.files.with(|t| {
                    state.opens.values().filter(|o| t.watches.contains(OpenId(o.file_id.persistent))).count()
                });
                if n >= l.notify_watches_per_connection {
                    return over(NtStatus::INSUFFICIENT_RESOURCES);
                }
            }
        }
        _ => {}
    }
    Ok(())
}

/// A new session may start: under both the session and the logon budget.
fn session_admitted(l: &LimitsConfig, state: &ConnState) -> bool {
    let in_progress = state.sessions.values().filter(|s| matches!(s.state, SessionState::InProgress(_))).count();
    state.sessions.len() < l.sessions_per_connection && in_progress < l.sessions_in_progress
}

/// A new open may be made on `session_id`. The session's count is only
/// taken when the connection as a whole is near the limit.
fn open_admitted(l: &LimitsConfig, state: &ConnState, session_id: u64) -> bool {
    let all = state.opens.len();
    if all >= l.opens_per_connection {
        return false;
    }
    all < l.opens_per_session
        || state.opens.values().filter(|o| o.session_id == session_id).count() < l.opens_per_session
}

/// Drops logons that began more than `session_setup_timeout_secs` ago and
/// have not finished (the tick calls this).
pub fn expire_logons(server: &Server, state: &mut ConnState, now: SystemTime) {
    let max = Duration::from_secs(server.config.limits.session_setup_timeout_secs);
    let stale = |created: SystemTime| now.duration_since(created).is_ok_and(|d| d > max);
    state.sessions.retain(|id, s| {
        let drop = matches!(s.state, SessionState::InProgress(_)) && stale(s.created);
        if drop {
            tracing::debug!(session = format_args!("{id:#x}"), "unfinished logon expired");
        }
        !drop
    });
}
