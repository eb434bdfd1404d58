//! The connection-oriented DCE/RPC server state machine behind one named pipe
//! (C706 chapter 12 "Connection-oriented protocol", MS-RPCE 3.3.3).
//!
//! Bytes written by the client are framed into PDUs by frag_length; BIND
//! must come first, REQUEST fragments are reassembled per call, answers are
//! split into fragments of at most the negotiated max_xmit_frag and queued
//! as whole PDUs for the client to read. Error handling mirrors Samba's
//! `dcesrv_core.c`: protocol violations queue a BIND_NAK or FAULT and close
//! the pipe; per-call errors (unknown context, unknown opnum, bad stub)
//! queue a FAULT and keep the pipe usable.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU32, Ordering};

use super::pdu::{self, AckResult, BindAck, Header, SyntaxId};
use super::{Fault, PipeName, RpcError, ShareDirectory, bind, srvsvc, wkssvc};

/// Fragment size we accept and send at most. Samba's default; Windows and
/// smbclient offer 4280 over named pipes, which is what gets negotiated.
const SERVER_MAX_FRAG: u16 = 5840;
/// Smallest fragment size we agree to (C706 12.6.3.5 MustRecvFragSize 1432;
/// Samba and Windows 2012R2 never go below 2048).
const MIN_FRAG: u16 = 2048;
/// Largest reassembled request stub. srvsvc requests are a few hundred bytes;
/// this only bounds what a hostile client can make us buffer.
const MAX_REQUEST_STUB: usize = 256 * 1024;
/// Unread response bytes after which writes are refused.
const MAX_PENDING_OUT: usize = 4 * 1024 * 1024;

/// Fault statuses (C706 Appendix E, MS-RPCE 2.2.2.12).
const NCA_S_PROTO_ERROR: u32 = 0x1c01_000b;
const NCA_S_UNKNOWN_IF: u32 = 0x1c01_0003;
const FAULT_ACCESS_DENIED: u32 = 0x0000_0005;

/// BIND_NAK reasons (MS-RPCE 2.2.2.5).
const NAK_REASON_NOT_SPECIFIED: u16 = 0;
const NAK_PROTOCOL_VERSION_NOT_SUPPORTED: u16 = 4;
const NAK_AUTHENTICATION_TYPE_NOT_RECOGNIZED: u16 = 8;

/// Association group ids handed out to BINDs that ask for a new group. They
/// only need to differ between pipes (MS-RPCE 3.3.1.5.4); a counter does.
static NEXT_ASSOC_GROUP: AtomicU32 = AtomicU32::new(0x0000_5a00);

fn new_assoc_group() -> u32 {
    loop {
        let id = NEXT_ASSOC_GROUP.fetch_add(1, Ordering::Relaxed);
        if id != 0 {
            return id;
        }
    }
}

/// The RPC interface served on a pipe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Service {
    Srvsvc,
    Wkssvc,
}

impl Service {
    fn for_pipe(name: PipeName) -> Option<Service> {
        match name {
            PipeName::Srvsvc => Some(Service::Srvsvc),
            PipeName::Wkssvc => Some(Service::Wkssvc),
            PipeName::Lsarpc | PipeName::Samr => None,
        }
    }

    fn syntax(self) -> SyntaxId {
        match self {
            Service::Srvsvc => srvsvc::SYNTAX,
            Service::Wkssvc => wkssvc::SYNTAX,
        }
    }

    /// BIND_ACK sec_addr: the pipe's endpoint name, as Windows sends it.
    fn secondary_address(self) -> &'static str {
        match self {
            Service::Srvsvc => "\\PIPE\\srvsvc",
            Service::Wkssvc => "\\PIPE\\wkssvc",
        }
    }

    fn call(self, opnum: u16, stub: &[u8], dir: &dyn ShareDirectory) -> Result<Vec<u8>, Fault> {
        match self {
            Service::Srvsvc => srvsvc::call(opnum, stub, dir),
            Service::Wkssvc => wkssvc::call(opnum, stub, dir),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Only a BIND is acceptable (C706 12.6.4.3: the association starts with it).
    AwaitBind,
    Bound,
    /// A fatal error was answered; only queued bytes can still be read.
    Closed,
}

/// A request whose first fragments have arrived (C706 12.4.1 fragmentation).
struct Fragmented {
    call_id: u32,
    context_id: u16,
    opnum: u16,
    stub: Vec<u8>,
}

/// One open srvsvc or wkssvc pipe.
pub(crate) struct NamedPipe {
    service: Service,
    state: State,
    /// Bytes of a PDU not yet complete.
    inbuf: Vec<u8>,
    /// Whole PDUs waiting to be read; the front one may be partly read.
    out: VecDeque<Vec<u8>>,
    out_off: usize,
    out_bytes: usize,
    /// Negotiated max_xmit_frag = max_recv_frag.
    max_frag: u16,
    assoc_group_id: u32,
    /// Presentation context ids bound to our interface with NDR 2.0.
    contexts: Vec<u16>,
    fragmented: Option<Fragmented>,
}

impl NamedPipe {
    /// A fresh endpoint for `name`, or `None` if we serve no interface there.
    pub(crate) fn open(name: PipeName) -> Option<NamedPipe> {
        Some(NamedPipe {
            service: Service::for_pipe(name)?,
            state: State::AwaitBind,
            inbuf: Vec::new(),
            out: VecDeque::new(),
            out_off: 0,
            out_bytes: 0,
            max_frag: MIN_FRAG,
            assoc_group_id: 0,
            contexts: Vec::new(),
            fragmented: None,
        })
    }

    fn queue(&mut self, pdu: Vec<u8>) {
        self.out_bytes += pdu.len();
        self.out.push_back(pdu);
    }

    fn nak_close(&mut self, call_id: u32, reason: u16) {
        self.queue(pdu::encode_bind_nak(call_id, reason));
        self.state = State::Closed;
    }

    fn fault(&mut self, call_id: u32, context_id: u16, status: u32, flags: u8) {
        self.queue(pdu::encode_fault(call_id, context_id, status, flags));
    }

    fn fault_close(&mut self, call_id: u32, context_id: u16, status: u32) {
        self.fault(call_id, context_id, status, 0);
        self.state = State::Closed;
    }

    /// Handles one complete PDU (`frag` is exactly frag_length bytes).
    fn handle(&mut self, h: &Header, frag: &[u8], dir: &dyn ShareDirectory) {
        match (self.state, h.ptype) {
            (State::Closed, _) => {}
            (State::AwaitBind, pdu::PTYPE_BIND) => self.bind(h, frag),
            // Samba treats any first PDU as a BIND and rejects it so.
            (State::AwaitBind, _) => self.nak_close(h.call_id, NAK_PROTOCOL_VERSION_NOT_SUPPORTED),
            // One BIND per association (C706 12.6.4.3).
            (State::Bound, pdu::PTYPE_BIND) => self.nak_close(h.call_id, NAK_REASON_NOT_SPECIFIED),
            (State::Bound, pdu::PTYPE_ALTER_CONTEXT) => self.alter(h, frag),
            (State::Bound, pdu::PTYPE_REQUEST) => self.request(h, frag, dir),
            // Windows and Samba ignore cancels; our calls complete at once.
            (State::Bound, pdu::PTYPE_CO_CANCEL | pdu::PTYPE_ORPHANED) => {}
            (State::Bound, _) => self.fault_close(h.call_id, 0, NCA_S_PROTO_ERROR),
        }
    }

    fn ack(&mut self, ptype: u8, call_id: u32, secondary_address: &str, results: &[AckResult]) {
        let ack = pdu::encode_bind_ack(&BindAck {
            ptype,
            call_id,
            max_xmit_frag: self.max_frag,
            max_recv_frag: self.max_frag,
            assoc_group_id: self.assoc_group_id,
            secondary_address,
            results,
        });
        self.queue(ack);
    }

    /// BIND (C706 12.6.4.3, MS-RPCE 3.3.1.5.3).
    fn bind(&mut self, h: &Header, frag: &[u8]) {
        // No DCE/RPC-level security: the SMB session already authenticated
        // the caller, and srvsvc over ncacn_np needs nothing more.
        if h.auth_length != 0 {
            return self.nak_close(h.call_id, NAK_AUTHENTICATION_TYPE_NOT_RECOGNIZED);
        }
        let Ok(b) = pdu::parse_bind(frag, h) else {
            return self.nak_close(h.call_id, NAK_REASON_NOT_SPECIFIED);
        };
        if b.contexts.is_empty() {
            return self.nak_close(h.call_id, NAK_REASON_NOT_SPECIFIED);
        }
        let syntax = self.service.syntax();
        let Ok(results) = bind::negotiate(&b.contexts, &syntax, &mut self.contexts, true) else {
            return self.nak_close(h.call_id, NAK_REASON_NOT_SPECIFIED);
        };
        // Both directions get the smaller client value, clamped to our range
        // and truncated to a multiple of 8, as Samba and Windows answer.
        let offered = b.max_xmit_frag.min(b.max_recv_frag);
        self.max_frag = offered.clamp(MIN_FRAG, SERVER_MAX_FRAG) & 0xfff8;
        // A client joining an existing group keeps its id; we hold no
        // per-group state (no context handles), so any id is as good.
        self.assoc_group_id = match b.assoc_group_id {
            0 => new_assoc_group(),
            id => id,
        };
        self.state = State::Bound;
        let sec = self.service.secondary_address();
        self.ack(pdu::PTYPE_BIND_ACK, h.call_id, sec, &results);
    }

    /// ALTER_CONTEXT (C706 12.6.4.1): more contexts on the same association.
    fn alter(&mut self, h: &Header, frag: &[u8]) {
        if h.auth_length != 0 {
            return self.fault_close(h.call_id, 0, FAULT_ACCESS_DENIED);
        }
        let Ok(b) = pdu::parse_bind(frag, h) else {
            return self.fault_close(h.call_id, 0, NCA_S_PROTO_ERROR);
        };
        let syntax = self.service.syntax();
        let negotiated = match b.contexts.is_empty() {
            true => Err(bind::ProtocolError),
            false => bind::negotiate(&b.contexts, &syntax, &mut self.contexts, false),
        };
        match negotiated {
            Ok(results) => self.ack(pdu::PTYPE_ALTER_CONTEXT_RESP, h.call_id, "", &results),
            Err(_) => self.fault_close(h.call_id, 0, NCA_S_PROTO_ERROR),
        }
    }

    /// REQUEST fragment (C706 12.6.4.9), reassembled per call id.
    fn request(&mut self, h: &Header, frag: &[u8], dir: &dyn ShareDirectory) {
        if h.auth_length != 0 {
            return self.fault_close(h.call_id, 0, FAULT_ACCESS_DENIED);
        }
        let Ok(req) = pdu::parse_request(frag, h) else {
            return self.fault_close(h.call_id, 0, NCA_S_PROTO_ERROR);
        };
        let last = h.pfc_flags & pdu::PFC_LAST_FRAG != 0;
        if h.pfc_flags & pdu::PFC_FIRST_FRAG != 0 {
            // Without PFC_CONC_MPX a new call may not start mid-call.
            if let Some(f) = self.fragmented.take() {
                return self.fault_close(f.call_id, f.context_id, NCA_S_PROTO_ERROR);
            }
            if !self.contexts.contains(&req.context_id) {
                let flags = pdu::PFC_DID_NOT_EXECUTE;
                return self.fault(h.call_id, 0, NCA_S_UNKNOWN_IF, flags);
            }
            if last {
                return self.dispatch(h.call_id, req.context_id, req.opnum, req.stub, dir);
            }
            let hint = usize::try_from(req.alloc_hint).unwrap_or(usize::MAX);
            if hint > MAX_REQUEST_STUB || req.stub.len() > MAX_REQUEST_STUB {
                return self.fault_close(h.call_id, req.context_id, FAULT_ACCESS_DENIED);
            }
            let mut stub = Vec::with_capacity(hint.max(req.stub.len()));
            stub.extend_from_slice(req.stub);
            self.fragmented =
                Some(Fragmented { call_id: h.call_id, context_id: req.context_id, opnum: req.opnum, stub });
            return;
        }
        let Some(mut f) = self.fragmented.take().filter(|f| f.call_id == h.call_id) else {
            return self.fault_close(h.call_id, 0, NCA_S_PROTO_ERROR);
        };
        if f.context_id != req.context_id || f.opnum != req.opnum {
            return self.fault_close(f.call_id, f.context_id, NCA_S_PROTO_ERROR);
        }
        if f.stub.len() + req.stub.len() > MAX_REQUEST_STUB {
            return self.fault_close(f.call_id, f.context_id, FAULT_ACCESS_DENIED);
        }
        f.stub.extend_from_slice(req.stub);
        if last {
            self.dispatch(f.call_id, f.context_id, f.opnum, &f.stub, dir);
        } else {
            self.fragmented = Some(f);
        }
    }

    /// Runs a complete call and queues its RESPONSE fragments or FAULT.
    fn dispatch(&mut self, call_id: u32, ctx: u16, opnum: u16, stub: &[u8], dir: &dyn ShareDirectory) {
        match self.service.call(opnum, stub, dir) {
            Ok(out) => self.queue_response(call_id, ctx, &out),
            Err(f) => {
                let flags = if f.did_not_execute { pdu::PFC_DID_NOT_EXECUTE } else { 0 };
                self.fault(call_id, ctx, f.status, flags);
            }
        }
    }

    /// Splits a response stub into fragments of at most max_xmit_frag bytes.
    /// Like Samba, each carries a multiple of 16 stub bytes (except the last)
    /// and alloc_hint counts the bytes still to come (MS-RPCE 3.3.1.5.2.2).
    fn queue_response(&mut self, call_id: u32, ctx: u16, stub: &[u8]) {
        let chunk = (usize::from(self.max_frag) - pdu::REQUEST_HEADER_LEN) & !15;
        // Windows truncates p_cont_id to 8 bits here; Samba copies it, so do we.
        let ctx = ctx & 0xff;
        let mut off = 0;
        loop {
            let rest = stub.get(off..).unwrap_or(&[]);
            let part = rest.get(..chunk).unwrap_or(rest);
            let mut flags = 0;
            if off == 0 {
                flags |= pdu::PFC_FIRST_FRAG;
            }
            if part.len() == rest.len() {
                flags |= pdu::PFC_LAST_FRAG;
            }
            let hint = u32::try_from(rest.len()).unwrap_or(u32::MAX);
            self.queue(pdu::encode_response(call_id, ctx, flags, hint, part));
            off += part.len();
            if off >= stub.len() {
                break;
            }
        }
    }

    /// Frames and handles every complete PDU in `buf`; returns how many bytes
    /// were consumed.
    fn process(&mut self, buf: &[u8], dir: &dyn ShareDirectory) -> Result<usize, RpcError> {
        let mut at = 0;
        while self.state != State::Closed {
            let rest = buf.get(at..).unwrap_or(&[]);
            let Some(h) = pdu::header(rest).map_err(|_| RpcError::Protocol)? else {
                break;
            };
            let Some(frag) = rest.get(..usize::from(h.frag_length)) else {
                break;
            };
            self.handle(&h, frag, dir);
            at += frag.len();
            if self.out_bytes > MAX_PENDING_OUT && at < buf.len() {
                return Err(RpcError::Overflow);
            }
        }
        Ok(at)
    }
}

impl super::Pipe for NamedPipe {
    fn write(&mut self, data: &[u8], dir: &dyn ShareDirectory) -> Result<(), RpcError> {
        if self.state == State::Closed {
            return Err(RpcError::Disconnected);
        }
        if self.out_bytes > MAX_PENDING_OUT {
            return Err(RpcError::Overflow);
        }
        let mut buf = std::mem::take(&mut self.inbuf);
        buf.extend_from_slice(data);
        match self.process(&buf, dir) {
            Ok(used) if self.state != State::Closed => {
                buf.drain(..used);
                self.inbuf = buf;
                Ok(())
            }
            Ok(_) => Ok(()),
            // The byte stream cannot be resynchronised: close the pipe.
            Err(e) => {
                self.state = State::Closed;
                self.fragmented = None;
                Err(e)
            }
        }
    }

    fn read(&mut self, max: usize) -> Result<Vec<u8>, RpcError> {
        let Some(front) = self.out.front() else {
            return match self.state {
                State::Closed => Err(RpcError::Disconnected),
                _ => Ok(Vec::new()),
            };
        };
        let rest = front.get(self.out_off..).unwrap_or(&[]);
        let part = rest.get(..max).unwrap_or(rest).to_vec();
        self.out_off += part.len();
        self.out_bytes = self.out_bytes.saturating_sub(part.len());
        if self.out_off >= front.len() {
            self.out.pop_front();
            self.out_off = 0;
        }
        Ok(part)
    }

    fn transact(&mut self, data: &[u8], max_out: usize, dir: &dyn ShareDirectory) -> Result<Vec<u8>, RpcError> {
        if self.has_pending() {
            return Err(RpcError::Busy);
        }
        self.write(data, dir)?;
        self.read(max_out)
    }

    fn has_pending(&self) -> bool {
        !self.out.is_empty()
    }

    fn partial_message_pending(&self) -> bool {
        self.out_off > 0
    }
}
