//! Requests that went asynchronous (MS-SMB2 3.3.4.2): what each waits
//! for, and its final response (3.3.4.3: async header, CreditResponse 0,
//! signed or sealed like any response of its session). Completions arrive
//! through the connection's [`crate::engine::files::Mailbox`], possibly
//! posted by another connection.

use crate::engine::connection::Outgoing;
use crate::engine::connection::{ConnState, put_header, response_header};
use crate::engine::handlers;
use crate::engine::security;
use crate::engine::status::Error;
use crate::wire::NtStatus;
use crate::wire::header::{Header, flags};

/// A request answered with an interim response, waiting for its final one
/// (MS-SMB2 3.3.1.13 Request with a nonzero AsyncId).
pub struct PendingOp {
    /// The request header (MessageId, SessionId, TreeId, command, …).
    pub hdr: Header,
    /// The request came encrypted: so must the final response.
    pub encrypted: bool,
    /// What it waits for.
    pub kind: PendingKind,
}

/// What a pending request waits for.
pub enum PendingKind {
    /// A blocking byte-range lock on this stream (token = AsyncId).
    Lock(crate::engine::fsa::FileKey),
}

/// Builds, signs or seals the final response of a pending request.
pub fn final_response(state: &ConnState, op: PendingOp, async_id: u64, status: NtStatus) -> Result<Outgoing, Error> {
    let mut hdr = response_header(&op.hdr, status, 0, op.hdr.session_id);
    // A final response travels alone, even if its request came in a compound.
    hdr.flags = (hdr.flags | flags::ASYNC_COMMAND) & !flags::RELATED_OPERATIONS;
    hdr.async_id = async_id;
    let mut msg = if status.is_error() { handlers::error_body() } else { handlers::pending_body(&op.kind) };
    put_header(&hdr, &mut msg);
    let sid = op.hdr.session_id;
    let encrypt = op.encrypted || state.sessions.get(&sid).is_some_and(|s| s.encrypt_data);
    let sign = security::should_sign(state, &hdr, status);
    security::protect(state, msg, encrypt.then_some(sid), sign)
}
