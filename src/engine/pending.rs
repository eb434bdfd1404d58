//! Requests that went asynchronous (MS-SMB2 3.3.4.2): what each waits
//! for. Their final responses are built in `connection/background.rs`. Completions arrive
//! through the connection's [`crate::engine::files::Mailbox`], possibly
//! posted by another connection.

use crate::engine::fsa::FileKey;
use crate::wire::header::Header;

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
    Lock(FileKey),
    /// A CREATE or SET_INFO held up by oplock or lease breaks on this
    /// stream: it runs again, from the start, when the stream's caching
    /// state changes (an acknowledgment, a close, the break timeout).
    Rerun(Box<Rerun>),
    /// A CHANGE_NOTIFY on a directory handle (completed by a change, a
    /// CANCEL or the handle's close).
    Notify,
}

/// A request kept to run again.
pub struct Rerun {
    /// The stream whose breaks it waits for.
    pub key: FileKey,
    /// The whole request message (header at offset 0).
    pub msg: Vec<u8>,
    /// FileId of the previous CREATE of its related compound, if any.
    pub related_file_id: Option<(u64, u64)>,
    /// The requests of its compound after it (and the session they came
    /// encrypted with), held until it completes.
    pub rest: Option<(Vec<u8>, Option<u64>)>,
}

/// The connection of a pending request went away: it stops waiting
/// (a parked CREATE leaves its stream, a CHANGE_NOTIFY its watch).
pub fn forget(server: &crate::engine::server::Server, async_id: u64, op: &PendingOp) {
    server.files.with(|t| {
        match &op.kind {
            PendingKind::Lock(key) => {
                let _ = t.stream(key).locks.lock().cancel(async_id);
                t.drop_if_idle(key);
            }
            PendingKind::Rerun(r) => {
                t.stream(&r.key).unpark(async_id);
                t.drop_if_idle(&r.key);
            }
            PendingKind::Notify => {
                t.watches.cancel(async_id);
            }
        }
        t.unpark(async_id);
    });
}
