//! One client connection: frames in, responses out (MS-SMB2 3.3.5).
//!
//! Sans-IO: `net` hands in whole Direct-TCP frames and the current time, and
//! writes back whatever [`Outgoing`] values come out. Decryption, compound
//! splitting, credit and signature checks happen here, in the order the spec
//! gives (3.3.5.2), before any handler sees a request.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::SystemTime;

use crate::engine::context::{ConnState, Ctx, Negotiated, Outgoing, Reply, error_body, put_header};
use crate::engine::credits::{self, Credits};
use crate::engine::crypto_state::{ConnCrypto, PreauthTarget};
use crate::engine::files::{Mailbox, Notice};
use crate::engine::handlers;
use crate::engine::offload::{Inbound, KeyTable};
use crate::engine::pending::PendingKind;
use crate::engine::security;
use crate::engine::server::Server;
use crate::engine::status::Error;
use crate::wire::header::{self, Command, Header, flags};
use crate::wire::{NtStatus, prefix};

mod background;
mod channel;
mod report;

pub use report::{LockReport, OpenReport, SessionReport};

/// The most one frame of responses may carry: the largest READ we
/// negotiate (MaxReadSize = MaxTransactSize) plus room for the small
/// responses around it in a compound (CREATE, QUERY_INFO, CLOSE).
const COMPOUND_BUDGET: usize = crate::engine::server::MAX_IO as usize + 64 * 1024;
/// What a response reserves from the budget beyond the output its request
/// asks for (a CREATE response with all its contexts stays below it).
const PER_RESPONSE: usize = 1024;

/// The largest chain of responses that still fits a Direct-TCP frame
/// (24-bit length, MS-SMB2 2.1) with a transform header in front.
const MAX_RESPONSE_FRAME: usize = (1 << 24) - 1 - 52;

/// One client connection.
pub struct Connection {
    server: Arc<Server>,
    peer: SocketAddr,
    state: ConnState,
    /// The session group this connection is a channel of (`engine::group`).
    group: Arc<crate::engine::group::Group>,
    /// A session has been established here at least once.
    logged_on_once: bool,
}

/// What an idle connection holds, for `net`'s idle timeouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Holding {
    /// No session was ever established (`server.handshake_timeout_secs`).
    Nothing,
    /// Logged on, no open files, no waiting requests (`server.idle_timeout_secs`).
    Logon,
    /// Open files or waiting requests: idle is normal, no timeout.
    Files,
}

/// One message's answer: response header, body (None: no response) and the
/// session whose key signs it.
type Answer = (Header, Option<Vec<u8>>, Option<u64>);

/// What we remember about the previous message of a compound.
#[derive(Clone, Copy, Default)]
struct Related {
    session_id: u64,
    tree_id: u32,
    file_id: Option<(u64, u64)>,
    /// A failed CREATE fails the related requests after it with its status
    /// (3.3.5.2.7.2; other failures do not propagate, smbtorture `smb2.compound.related6`).
    create_error: Option<NtStatus>,
}

impl Connection {
    /// A new connection from `peer`.
    pub fn new(server: Arc<Server>, peer: SocketAddr) -> Self {
        let mailbox = Arc::new(Mailbox::default());
        let group = crate::engine::group::Group::new(mailbox.clone());
        Self {
            server,
            peer,
            state: ConnState {
                neg: Negotiated::default(),
                credits: Credits::new(),
                crypto: ConnCrypto::default(),
                sessions: HashMap::new(),
                opens: HashMap::new(),
                pending: HashMap::new(),
                mailbox,
                extra: Vec::new(),
                delay: None,
                reply_tree_id: None,
                retire: Vec::new(),
                seen_revision: None,
                aapl: crate::engine::aapl::Negotiated::default(),
                replay: crate::engine::replay::Cache::default(),
                orphaned: Default::default(),
                keys: Arc::default(),
                group: Arc::downgrade(&group),
                channel_sessions: Default::default(),
                pending_here: Default::default(),
                binding: None,
                join: None,
            },
            group,
            logged_on_once: false,
        }
    }

    /// What the connection holds (see [`Holding`]).
    pub fn holding(&mut self) -> Holding {
        if self.with_group(|c| !c.state.opens.is_empty() || !c.state.pending.is_empty()) {
            Holding::Files
        } else if self.logged_on_once {
            Holding::Logon
        } else {
            Holding::Nothing
        }
    }

    /// The table the connection's reader decrypts requests with
    /// ([`KeyTable::open`]) before handing them to [`Self::handle_inbound`].
    pub fn key_table(&self) -> Arc<KeyTable> {
        self.state.keys.clone()
    }

    /// Handles one Direct-TCP frame. The frame is mutable so that an
    /// encrypted request can be decrypted where it lies.
    pub fn handle_frame(&mut self, now: SystemTime, frame: &mut [u8]) -> Vec<Outgoing> {
        self.handle(now, |c| match header::protocol_id(frame) {
            Some(header::SMB1_ID) => c.smb1(now, frame),
            Some(header::TRANSFORM_ID) => c.encrypted(now, frame),
            Some(header::PROTOCOL_ID) => c.messages(now, frame, None),
            _ => Err(Error::Disconnect("unknown protocol id")),
        })
    }

    /// Handles a frame as the reader passed it on, perhaps already decrypted.
    pub fn handle_inbound(&mut self, now: SystemTime, inbound: &mut Inbound) -> Vec<Outgoing> {
        match inbound {
            Inbound::Raw(frame) => self.handle_frame(now, frame),
            Inbound::Opened { session_id, crypto, frame } => self.handle(now, |c| {
                let plain = security::accept_opened(&c.state, *session_id, crypto, frame)?;
                c.messages(now, plain, Some(*session_id))
            }),
            Inbound::Failed { session_id, error } => {
                self.handle(now, |_| Err(security::undecryptable(*session_id, error)))
            }
        }
    }

    /// Runs `f` on a frame between the notices that arrived before it and
    /// the completions it caused.
    fn handle(
        &mut self,
        now: SystemTime,
        f: impl FnOnce(&mut Self) -> Result<Option<Outgoing>, Error>,
    ) -> Vec<Outgoing> {
        self.with_group(|c| c.handle_in_group(now, f))
    }

    /// [`Self::handle`] with the group's state in place.
    fn handle_in_group(
        &mut self,
        now: SystemTime,
        f: impl FnOnce(&mut Self) -> Result<Option<Outgoing>, Error>,
    ) -> Vec<Outgoing> {
        // Notices that arrived meanwhile come first: a session another
        // connection ended must not serve this request.
        let early = self.poll_in_group(now);
        let out = f(self);
        let mut v = early;
        v.append(&mut self.state.extra);
        match out {
            Ok(Some(frame)) => match self.state.delay.take() {
                Some(d) => v.push(Outgoing::Delayed(d, Box::new(frame))),
                None => v.push(frame),
            },
            Ok(None) => {}
            Err(e) => {
                tracing::debug!(peer = %self.peer, reason = ?e, "closing connection");
                v.push(Outgoing::Close);
                return v;
            }
        }
        // Completions this request caused for our own pending requests
        // (an unlock, a close, a CANCEL), then sessions a LOGOFF retired:
        // their final responses are signed while the session still exists.
        // `poll` settles before it returns: what this request changed is
        // in the kernel before `net` sends the response.
        v.extend(self.poll_in_group(now));
        v
    }
}

impl Connection {
    /// SMB1 NEGOTIATE: the only SMB1 message we accept, and only first (3.3.5.3).
    fn smb1(&mut self, now: SystemTime, frame: &[u8]) -> Result<Option<Outgoing>, Error> {
        if self.state.neg.dialect.is_some() || self.state.neg.smb1_upgraded {
            return Err(Error::Disconnect("SMB1 after negotiate"));
        }
        handlers::dispatch_smb1(&self.server, &mut self.state, now, frame).map(|f| Some(Outgoing::Frame(f)))
    }

    /// A transform header: decrypt in place, then process the plaintext (3.3.5.2.1.1).
    fn encrypted(&mut self, now: SystemTime, frame: &mut [u8]) -> Result<Option<Outgoing>, Error> {
        let (session_id, plain) = security::decrypt_request(&self.state, frame)?;
        self.messages(now, plain, Some(session_id))
    }

    /// Processes a (possibly compound) SMB2 message chain (3.3.5.2.7).
    fn messages(&mut self, now: SystemTime, buf: &mut [u8], encrypted: Option<u64>) -> Result<Option<Outgoing>, Error> {
        self.chain(now, buf, encrypted, None)
    }

    /// The requests of a compound from `buf` on; `prev` is what the
    /// request before them left (when a chain resumes after a CREATE that
    /// went asynchronous).
    fn chain(
        &mut self,
        now: SystemTime,
        buf: &mut [u8],
        encrypted: Option<u64>,
        mut prev: Option<Related>,
    ) -> Result<Option<Outgoing>, Error> {
        self.state.crypto.bind_key = None;
        let mut out: Vec<u8> = Vec::new();
        let mut sign_ranges: Vec<(usize, usize, u64)> = Vec::new();
        let mut offset = 0usize;
        let mut encrypt_session = encrypted;
        loop {
            let rest = buf.get_mut(offset..).ok_or(Error::Disconnect("compound offset"))?;
            let hdr = Header::decode(rest).map_err(|_| Error::Disconnect("bad SMB2 header"))?;
            let len = crate::wire::header::chained_len(hdr.next_command, rest.len())
                .ok_or(Error::Disconnect("bad NextCommand"))?;
            let msg = &mut rest[..len];
            let is_last = hdr.next_command == 0;
            let start = out.len();
            let fits = start + prefix::max_response_size(hdr.command, msg) + PER_RESPONSE <= COMPOUND_BUDGET;
            let (resp_hdr, body, sign) = self.one(now, hdr, msg, &mut prev, encrypted, fits)?;
            let Some(body) = body else {
                if is_last {
                    break;
                }
                offset += len;
                continue;
            };
            let mut body = body;
            put_header(&resp_hdr, &mut body);
            if out.is_empty() {
                // The common single-message case: no copy of a large READ body.
                out = body;
            } else {
                out.extend_from_slice(&body);
            }
            if out.len() > MAX_RESPONSE_FRAME {
                // Unreachable with the budget above and the credit window
                // (at most 8192 requests, each answered in a few dozen bytes
                // once over budget); a frame past 2^24 bytes cannot be sent.
                return Err(Error::Disconnect("response chain over the 24-bit frame length"));
            }
            let mut sign = sign;
            if let Some(target) = self.state.crypto.hash_response.take() {
                if target == PreauthTarget::Binding
                    && let Some(key) = sign.and_then(|sid| security::signing_key(&self.state, sid))
                {
                    // A bind's interim response is signed with the session's
                    // key and the client hashes it as received, signature
                    // and all (as Samba signs, then hashes): sign it here.
                    crate::engine::offload::sign_message(&key.clone(), &mut out[start..]);
                    sign = None;
                }
                security::hash_response(&mut self.state, target, &out[start..]);
            }
            if !is_last || start > 0 {
                // Responses in a compound are 8-byte aligned (3.3.4.1.3), the
                // last one too (smbtorture `smb2.compound.compound-padding`).
                crate::wire::pad_to(&mut out, 8);
            }
            if !is_last {
                let next = (out.len() - start) as u32;
                header::set_next_command(&mut out[start..], next);
            }
            if let Some(sid) = sign {
                sign_ranges.push((start, out.len(), sid));
            }
            if encrypt_session.is_none() {
                encrypt_session = security::response_encryption(&self.state, &resp_hdr);
            }
            if is_last {
                break;
            }
            if resp_hdr.command == Command::CREATE && resp_hdr.status == NtStatus::PENDING && resp_hdr.is_async() {
                // A CREATE waiting for an oplock break holds up the rest of
                // its compound, which runs when it completes (as Samba does;
                // smbtorture `smb2.compound.compound-break`).
                if let Some(op) = self.state.pending.get_mut(&resp_hdr.async_id)
                    && let PendingKind::Rerun(r) = &mut op.kind
                {
                    r.rest = buf.get(offset + len..).map(|b| (b.to_vec(), encrypted));
                }
                break;
            }
            offset += len;
        }
        if out.is_empty() {
            return Ok(None);
        }
        // If the last response in a chain was skipped, the previous one must not point on.
        header::end_compound(&mut out);
        // Sealed responses are not signed (3.3.4.1.1); the chain is
        // encrypted in place, its transform header sent in front.
        let frame = match encrypt_session {
            Some(sid) => security::seal_response(&self.state, sid, out).map(Outgoing::Protect),
            None if sign_ranges.is_empty() => Ok(Outgoing::Frame(out)),
            None => Ok(Outgoing::Protect(security::sign_responses(&self.state, out, &sign_ranges))),
        };
        // Sessions a LOGOFF retired are dropped by `poll`, after the final
        // responses of their pending requests were signed with their keys.
        frame.map(Some)
    }

    /// Validates and dispatches one message; returns the response header,
    /// body (None: no response) and the session to sign with.
    fn one(
        &mut self,
        now: SystemTime,
        mut hdr: Header,
        msg: &mut [u8],
        prev: &mut Option<Related>,
        encrypted: Option<u64>,
        fits: bool,
    ) -> Result<Answer, Error> {
        // Request latency for the metrics endpoint (the only clock read
        // here: handlers still get `now` from the caller).
        let started = std::time::Instant::now();
        // Only this message's SESSION_SETUP may name another session in its
        // response: one refused before its handler ran (an unknown session)
        // must not be answered with the id an earlier SESSION_SETUP left
        // here, next to the signature echoed from the request (found by
        // fuzz/engine_frame: a signed response of a live session that did
        // not verify).
        self.state.crypto.last_session_id = None;
        let charge = self.check_credits(&hdr, msg)?;
        // Related compound (3.3.5.2.7.2): ids come from the previous message.
        let mut related_file_id = None;
        if hdr.is_related() {
            let Some(p) = *prev else {
                return Ok(self.error_reply(&hdr, charge, NtStatus::INVALID_PARAMETER, None));
            };
            hdr.session_id = p.session_id;
            hdr.tree_id = p.tree_id;
            related_file_id = p.file_id;
            if let Some(status) = p.create_error {
                let r = self.error_reply(&hdr, charge, status, Some(p.session_id));
                return Ok(r);
            }
        }
        if !fits {
            // The responses of a compound go out as one frame (3.3.4.1.3),
            // which SHOULD NOT exceed MaxTransactSize (+256): a request whose
            // response could take the chain past its budget is not run.
            // Without this a chain of 64 READs of 8 MiB would make one
            // 512 MiB frame, which the 24-bit length cannot even express.
            tracing::debug!(cmd = ?hdr.command, "compound response budget exceeded");
            let sid = if hdr.is_related() { Some(hdr.session_id) } else { None };
            return Ok(self.error_reply(&hdr, charge, NtStatus::INSUFFICIENT_RESOURCES, sid));
        }
        let mut checked = security::check_request(&self.state, &self.server, &hdr, msg, encrypted);
        if hdr.is_related()
            && matches!(&checked, Err(Error::Status(s)) if *s == NtStatus::USER_SESSION_DELETED || *s == NtStatus::NETWORK_SESSION_EXPIRED)
        {
            // A related request inherits a session that does not exist (as
            // Samba answers it; smbtorture `smb2.compound.invalid2`).
            checked = Err(NtStatus::INVALID_PARAMETER.into());
        }
        let result = checked.and_then(|()| {
            let file = request_file_id(&hdr, msg).or(related_file_id);
            crate::engine::limits::admit(&self.server, &self.state, &hdr, msg, related_file_id)?;
            let st = &mut self.state;
            crate::engine::replay::check_channel_sequence(&mut st.replay, st.neg.dialect, &st.opens, &hdr, file)?;
            // Everything before the handler has read the message (signature
            // included): a WRITE's data may now be handed over to be sealed
            // in place.
            let cut = if hdr.command == Command::WRITE { crate::wire::write::detachable_data(msg) } else { None };
            let (msg, write_data) = match cut {
                Some(r) => {
                    let (head, rest) = msg.split_at_mut(r.start);
                    (&*head, Some(&mut rest[..r.len()]))
                }
                None => (&*msg, None),
            };
            let mut ctx = Ctx {
                server: &self.server,
                now,
                hdr: &hdr,
                msg,
                write_data,
                peer: self.peer,
                conn: &mut self.state,
                related_file_id,
                encrypted: encrypted.is_some(),
                resume: None,
            };
            handlers::dispatch(&mut ctx)
        });
        let mut async_id = None;
        let (status, body) = match result {
            Ok(Reply::Body(s, b)) => (s, Some(b)),
            Ok(Reply::None) => (NtStatus::SUCCESS, None),
            Ok(Reply::Pending(id)) => {
                async_id = Some(id);
                self.state.pending_here.insert(id);
                (NtStatus::PENDING, Some(error_body()))
            }
            Err(Error::Disconnect(why)) => return Err(Error::Disconnect(why)),
            Err(e) => {
                tracing::debug!(cmd = ?hdr.command, error = ?e, "request failed");
                (e.status(), Some(error_body()))
            }
        };
        self.server.metrics.request(hdr.command.0, status.0, started.elapsed());
        if hdr.command == Command::SESSION_SETUP && status == NtStatus::SUCCESS {
            self.logged_on(&hdr, msg);
        }
        let file_id = created_file_id(&hdr, status, body.as_deref()).or_else(|| request_file_id(&hdr, msg));
        *prev = Some(Related {
            session_id: self.response_session_id(&hdr, status),
            tree_id: hdr.tree_id,
            file_id: if hdr.is_related() { file_id.or(related_file_id) } else { file_id },
            create_error: (hdr.command == Command::CREATE && status.is_error()).then_some(status),
        });
        let Some(body) = body else {
            return Ok((hdr, None, None));
        };
        let granted = self.state.credits.grant(hdr.credits, charge, boost(hdr.command));
        let mut resp = response_header(&hdr, status, granted, self.response_session_id(&hdr, status));
        if let Some(id) = async_id {
            // Interim response (MS-SMB2 3.3.4.2): async header, credits granted now.
            resp.flags |= flags::ASYNC_COMMAND;
            resp.async_id = id;
        }
        if let Some(t) = self.state.reply_tree_id.take() {
            // TREE_CONNECT answers with the new TreeId in its header (2.2.10).
            resp.tree_id = t;
            if let Some(p) = prev.as_mut() {
                p.tree_id = t;
            }
        }
        let sign = security::should_sign(&self.state, &resp, status);
        echo_signature(&hdr, &mut resp, status, sign);
        Ok((resp, Some(body), sign))
    }

    /// A session was established: it joins the server-wide session list,
    /// and the session named by PreviousSessionId, if it belongs to the
    /// same user, ends wherever it is (MS-SMB2 3.3.5.5.3: its opens close,
    /// durable ones stay for a reconnect).
    fn logged_on(&mut self, hdr: &Header, msg: &[u8]) {
        let sid = self.response_session_id(hdr, NtStatus::SUCCESS);
        self.logged_on_once = true;
        let Some(p) = self.state.sessions.get(&sid).and_then(|s| s.principal.clone()) else {
            return;
        };
        let previous =
            crate::wire::session_setup::SessionSetupRequest::decode(msg).map(|r| r.previous_session_id).unwrap_or(0);
        let mailbox = self.state.mailbox.clone();
        self.server.files.with(|t| {
            t.sessions.insert(sid, (mailbox, p.org_id, p.user_id));
            if previous != 0
                && previous != sid
                && t.sessions.get(&previous).is_some_and(|o| o.1 == p.org_id && o.2 == p.user_id)
                && let Some((mb, _, _)) = t.sessions.remove(&previous)
            {
                mb.post(Notice::EndSession(previous));
            }
        });
    }

    /// Ends one of this connection's sessions on behalf of a reconnect.
    fn end_session(&mut self, now: SystemTime, sid: u64) {
        if !self.state.sessions.contains_key(&sid) {
            return;
        }
        crate::engine::teardown::close_session_opens(&self.server, &mut self.state, sid, now, self.peer);
        self.state.retire.push(sid);
    }

    /// The session id in a response: SESSION_SETUP may have created one.
    fn response_session_id(&self, hdr: &Header, _status: NtStatus) -> u64 {
        if hdr.command == Command::SESSION_SETUP {
            self.state.crypto.last_session_id.unwrap_or(hdr.session_id)
        } else {
            hdr.session_id
        }
    }

    /// Credit and message-id checks (3.3.5.2.3, 3.3.5.2.5). Returns the charge.
    fn check_credits(&mut self, hdr: &Header, msg: &[u8]) -> Result<u16, Error> {
        if hdr.command == Command::CANCEL {
            return Ok(0);
        }
        let large = self.state.neg.large_mtu;
        let charge = if large { hdr.credit_charge.max(1) } else { 1 };
        if large {
            let needed = credits::charge_for(prefix::payload_size(hdr.command, msg));
            if hdr.credit_charge.max(1) < needed {
                return Err(Error::Disconnect("credit charge too small for payload"));
            }
        }
        if !self.state.credits.consume(hdr.message_id, charge) {
            return Err(Error::Disconnect("message id outside the credit window"));
        }
        Ok(charge)
    }

    fn error_reply(&mut self, hdr: &Header, charge: u16, status: NtStatus, session: Option<u64>) -> Answer {
        let granted = self.state.credits.grant(hdr.credits, charge, boost(hdr.command));
        let mut resp = response_header(hdr, status, granted, session.unwrap_or(hdr.session_id));
        let sign = security::should_sign(&self.state, &resp, status);
        echo_signature(hdr, &mut resp, status, sign);
        (resp, Some(error_body()), sign)
    }
}

/// A signed request for a session we do not know (logged off, expired
/// elsewhere, never existed, or the all-ones id of a related compound)
/// cannot be answered with a real signature. Like Samba, set SIGNED and echo
/// the request's signature, which clients that require signing accept.
fn echo_signature(req: &Header, resp: &mut Header, _status: NtStatus, sign: Option<u64>) {
    if sign.is_none() && req.is_signed() && !(_status == NtStatus::PENDING && resp.is_async()) {
        resp.flags |= flags::SIGNED;
        resp.signature = req.signature;
    }
}

/// Top up credits only once the client is past negotiation and logon, so
/// that those exchanges grant exactly what was asked (smbtorture checks it).
fn boost(cmd: Command) -> bool {
    cmd != Command::NEGOTIATE && cmd != Command::SESSION_SETUP
}

/// The FileId a request names (not the all-ones value of a related
/// compound), for the request after it (3.3.5.2.7.2) and the channel
/// sequence check (3.3.5.2.10).
fn request_file_id(hdr: &Header, msg: &[u8]) -> Option<(u64, u64)> {
    prefix::request_file_id(hdr.command, msg).map(|f| (f.persistent, f.volatile))
}

/// The FileId of a successful CREATE's response message, remembered for
/// the related requests after it.
pub(crate) fn created_file_id(hdr: &Header, status: NtStatus, msg: Option<&[u8]>) -> Option<(u64, u64)> {
    if hdr.command != Command::CREATE || status.is_error() {
        return None;
    }
    prefix::create_response_file_id(msg?).map(|f| (f.persistent, f.volatile))
}

/// Builds a response header mirroring the request (3.3.4.1).
pub(crate) fn response_header(req: &Header, status: NtStatus, credits: u16, session_id: u64) -> Header {
    Header {
        credit_charge: req.credit_charge,
        status,
        command: req.command,
        credits,
        flags: flags::SERVER_TO_REDIR
            | (req.flags & (flags::RELATED_OPERATIONS | flags::PRIORITY_MASK | flags::ASYNC_COMMAND)),
        next_command: 0,
        message_id: req.message_id,
        async_id: req.async_id,
        tree_id: req.tree_id,
        session_id,
        signature: [0; 16],
    }
}
