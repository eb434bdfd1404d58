//! The state one connection carries (MS-SMB2 3.3.1.7 Connection, 3.3.1.8
//! Session and 3.3.1.10 Open as this connection sees them) and what handlers
//! get to work with: [`Ctx`], [`Reply`], [`Outgoing`].
//!
//! A leaf of the engine: handlers, teardown and the connection import it;
//! it imports none of them (the check in `protocol-tests/layering.rs`).

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Weak};
use std::time::{Duration, SystemTime};

use crate::engine::credits::Credits;
use crate::engine::crypto_state::ConnCrypto;
use crate::engine::files::Mailbox;
use crate::engine::group::{Group, Parts};
use crate::engine::offload::{KeyTable, ProtectJob};
use crate::engine::open::Open;
use crate::engine::pending::PendingOp;
use crate::engine::server::Server;
use crate::engine::session::Session;
use crate::engine::status::Error;
use crate::wire::header::Header;
use crate::wire::negotiate::Dialect;
use crate::wire::{Guid, HEADER_LEN, NtStatus};

/// Something for `net` to do with the socket.
#[derive(Debug)]
pub enum Outgoing {
    /// Send this frame (without the 4-byte Direct TCP prefix).
    Frame(Vec<u8>),
    /// Sign or seal this response, then send it ([`ProtectJob::run`]): the
    /// connection's writer does the cryptography while the engine goes on
    /// with the next request (see `engine::offload`).
    Protect(ProtectJob),
    /// Send this after a delay (failed logons), without holding up reads.
    Delayed(Duration, Box<Outgoing>),
    /// Close the connection after sending what came before.
    Close,
}

impl Outgoing {
    /// Bytes this will put on the wire (about: a transform header or
    /// signature is not counted), for the connection's send-queue budget.
    pub fn size(&self) -> usize {
        match self {
            Outgoing::Frame(f) => f.len(),
            Outgoing::Protect(j) => j.len(),
            Outgoing::Delayed(_, o) => o.size(),
            Outgoing::Close => 0,
        }
    }
}

/// Negotiated connection parameters (MS-SMB2 3.3.1.7).
#[derive(Debug, Clone, Default)]
pub struct Negotiated {
    /// Connection.Dialect; `None` until NEGOTIATE succeeded.
    pub dialect: Option<Dialect>,
    /// Connection.ClientGuid.
    pub client_guid: Guid,
    /// Connection.ClientCapabilities.
    pub client_capabilities: u32,
    /// Connection.ClientSecurityMode.
    pub client_security_mode: u16,
    /// Client dialects as offered (VALIDATE_NEGOTIATE_INFO compares them).
    pub client_dialects: Vec<Dialect>,
    /// Capabilities we answered with.
    pub server_capabilities: u32,
    /// SecurityMode we answered with.
    pub server_security_mode: u16,
    /// True once an SMB1 NEGOTIATE was answered with the 2.??? wildcard.
    pub smb1_upgraded: bool,
    /// Large MTU (multi-credit) in effect: 2.1 and above.
    pub large_mtu: bool,
}

/// A new response message: 64 zero bytes where the connection writes the
/// header, then the handler appends the body (so that offsets computed by
/// the wire encoders, relative to the header, come out right).
pub fn new_message() -> Vec<u8> {
    vec![0u8; HEADER_LEN]
}

/// [`new_message`] with room for a body of `body` bytes, in a kept buffer
/// when it is large (a READ's data: `crate::buffers`).
pub fn new_message_for(body: usize) -> Vec<u8> {
    let mut m = crate::buffers::take(HEADER_LEN.saturating_add(body));
    m.resize(HEADER_LEN, 0);
    m
}

/// The ERROR response body (MS-SMB2 2.2.2): StructureSize 9, no error
/// contexts, ByteCount 0, and the one byte of ErrorData the size requires.
pub fn error_body() -> Vec<u8> {
    let mut m = new_message();
    m.extend_from_slice(&[9, 0, 0, 0, 0, 0, 0, 0, 0]);
    m
}

/// Writes `hdr` over the first 64 bytes of `msg`.
pub(crate) fn put_header(hdr: &Header, msg: &mut [u8]) {
    let mut h = Vec::with_capacity(HEADER_LEN);
    hdr.encode(&mut h);
    msg[..HEADER_LEN].copy_from_slice(&h);
}

/// Per-request context for handlers.
pub struct Ctx<'a> {
    /// Shared server state.
    pub server: &'a Server,
    /// The current time (handlers never read the clock).
    pub now: SystemTime,
    /// The request header (after related-compound substitution).
    pub hdr: &'a Header,
    /// The whole request message (header at offset 0); for a WRITE whose
    /// data was cut off into [`Ctx::write_data`], the message up to it.
    pub msg: &'a [u8],
    /// A WRITE's data, cut off the message (`wire::write::detachable_data`)
    /// so that storage may seal it where it lies instead of copying it.
    pub write_data: Option<&'a mut [u8]>,
    /// Peer address.
    pub peer: SocketAddr,
    /// The connection.
    pub conn: &'a mut ConnState,
    /// FileId of the previous CREATE in a related compound (MS-SMB2 3.3.5.2.7.2).
    pub related_file_id: Option<(u64, u64)>,
    /// The request arrived encrypted.
    pub encrypted: bool,
    /// A parked request running again (its AsyncId): see
    /// [`crate::engine::pending::Rerun`].
    pub resume: Option<u64>,
}

/// A handler's answer.
pub enum Reply {
    /// Success or warning status with a response message made by
    /// [`new_message`] (64 placeholder header bytes, then the body).
    Body(NtStatus, Vec<u8>),
    /// The response must not be sent (e.g. CANCEL).
    None,
    /// The request went asynchronous under this AsyncId (MS-SMB2 3.3.4.2):
    /// answer with an interim STATUS_PENDING now; the handler registered a
    /// [`PendingOp`] and the final response comes from [`Connection::poll`].
    Pending(u64),
}

impl Reply {
    /// A STATUS_SUCCESS body.
    pub fn ok(body: Vec<u8>) -> Self {
        Reply::Body(NtStatus::SUCCESS, body)
    }
}

/// All state of one connection except the shared server. The fields of
/// [`Parts`] (sessions, opens, pending requests, retired sessions, the
/// accounts revision and the replay cache) belong to the connection's
/// session group, shared by its channels (`engine::group`): they are here
/// only while this connection runs a request ([`ConnState::swap_parts`]).
pub struct ConnState {
    /// Negotiation results.
    pub neg: Negotiated,
    /// Credits and message-id window.
    pub credits: Credits,
    /// Connection-level crypto (preauth hash, cipher and signing choice).
    pub crypto: ConnCrypto,
    /// Sessions by SessionId.
    pub sessions: HashMap<u64, Session>,
    /// Opens by volatile FileId.
    pub opens: HashMap<u64, Open>,
    /// Requests that went asynchronous, by AsyncId.
    pub pending: HashMap<u64, PendingOp>,
    /// Where other connections post completions of our pending requests.
    pub mailbox: Arc<Mailbox>,
    /// Frames to send ahead of the current response (interim responses, breaks).
    pub extra: Vec<Outgoing>,
    /// Delay to apply to the response being built (failed logon).
    pub delay: Option<Duration>,
    /// TreeId for the TREE_CONNECT response header being built.
    pub reply_tree_id: Option<u32>,
    /// Sessions to drop once the current response is signed (LOGOFF).
    pub retire: Vec<u64>,
    /// Accounts revision this connection's sessions were last checked against.
    pub seen_revision: Option<u64>,
    /// What a macOS client negotiated with the AAPL create context.
    pub aapl: crate::engine::aapl::Negotiated,
    /// CreateGuids of durable v2 CREATEs, for replay detection.
    pub replay: crate::engine::replay::Cache,
    /// Parked requests of channels that went (see [`Parts`]).
    pub orphaned: HashSet<u64>,
    /// Decryption keys of this connection's sessions, shared with its reader.
    pub keys: Arc<KeyTable>,
    /// The session group this connection is a channel of.
    pub group: Weak<Group>,
    /// Sessions set up or bound on this connection: the only ones of the
    /// group its requests may name (MS-SMB2 3.3.5.2.9: a session of the
    /// group not bound here is USER_SESSION_DELETED on this channel).
    pub channel_sessions: HashSet<u64>,
    /// AsyncIds of the requests that arrived here: forgotten when this
    /// channel goes while the group lives on.
    pub pending_here: HashSet<u64>,
    /// A bind exchange in progress on this connection (3.3.5.5.2).
    pub binding: Option<Box<crate::engine::binding::InProgress>>,
    /// A bind just succeeded: join this group once the request is answered.
    pub join: Option<(Arc<Group>, u64)>,
}

impl ConnState {
    /// Exchanges the group's shared state with what this connection holds
    /// of it: called in pairs around each request (see `engine::group`).
    pub fn swap_parts(&mut self, p: &mut Parts) {
        std::mem::swap(&mut self.sessions, &mut p.sessions);
        std::mem::swap(&mut self.opens, &mut p.opens);
        std::mem::swap(&mut self.pending, &mut p.pending);
        std::mem::swap(&mut self.retire, &mut p.retire);
        std::mem::swap(&mut self.seen_revision, &mut p.seen_revision);
        std::mem::swap(&mut self.replay, &mut p.replay);
        std::mem::swap(&mut self.orphaned, &mut p.orphaned);
    }

    /// The session may be used on this connection: set up or bound here.
    pub fn on_channel(&self, session_id: u64) -> bool {
        self.channel_sessions.contains(&session_id)
    }
}

impl Ctx<'_> {
    /// A fresh FileId. Both halves are one server-wide number: the
    /// persistent id names the open in the shared open table (fsa `OpenId`).
    pub fn new_file_id(&self) -> crate::wire::create::FileId {
        let v = self.server.files.new_id();
        crate::wire::create::FileId { persistent: v, volatile: v }
    }

    /// The request's session (validated by `security::check_request`).
    pub fn session(&self) -> Result<&Session, Error> {
        self.conn.sessions.get(&self.hdr.session_id).ok_or(Error::Status(NtStatus::USER_SESSION_DELETED))
    }

    /// The request's session, mutably.
    pub fn session_mut(&mut self) -> Result<&mut Session, Error> {
        self.conn.sessions.get_mut(&self.hdr.session_id).ok_or(Error::Status(NtStatus::USER_SESSION_DELETED))
    }

    /// The request's tree connect.
    pub fn tree(&self) -> Result<&crate::engine::session::Tree, Error> {
        self.session()?.trees.get(&self.hdr.tree_id).ok_or(Error::Status(NtStatus::NETWORK_NAME_DELETED))
    }

    /// Maps a request FileId to the volatile id of an open of this session
    /// and tree; all-ones means the previous CREATE of a related compound
    /// (MS-SMB2 3.3.5.2.7.2). Unknown ids are STATUS_FILE_CLOSED.
    pub fn resolve_file_id(&self, id: crate::wire::create::FileId) -> Result<u64, Error> {
        let id = if id == crate::wire::create::FileId::ANY {
            let (p, v) = self.related_file_id.ok_or(Error::Status(NtStatus::FILE_CLOSED))?;
            crate::wire::create::FileId { persistent: p, volatile: v }
        } else {
            id
        };
        match self.conn.opens.get(&id.volatile) {
            Some(o) if o.file_id == id && o.owned_by(self.hdr.session_id, self.hdr.tree_id) => Ok(id.volatile),
            _ => Err(Error::Status(NtStatus::FILE_CLOSED)),
        }
    }

    /// The open for a resolved volatile id.
    pub fn open_mut(&mut self, volatile: u64) -> Result<&mut Open, Error> {
        self.conn.opens.get_mut(&volatile).ok_or(Error::Status(NtStatus::FILE_CLOSED))
    }
}
