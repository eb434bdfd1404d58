//! One SMB2 connection over Direct TCP (MS-SMB2 2.1): message ids and
//! credits (3.2.4.1.5, 3.2.5.1.4), request signing (3.2.4.1.1) and sealing
//! (3.2.4.1.8), and a reader task that decrypts and verifies responses and
//! hands each to whoever waits for its MessageId, so that any number of
//! requests can be in flight.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{Semaphore, oneshot};

use super::Error;
use smbvault::crypto::{Decryptor, Encryptor, Signer};
use smbvault::wire::framing::{self, Prefix};
use smbvault::wire::header::{Command, Header, TRANSFORM_ID, flags};
use smbvault::wire::transform::{self, TRANSFORM_HEADER_LEN};
use smbvault::wire::{HEADER_LEN, NtStatus};

/// Credits we ask for on top of a request's charge until we hold this many
/// (so a few 8 MiB requests fit in flight, MS-SMB2 3.2.4.1.5).
const CREDIT_TARGET: usize = 1024;
/// Frames smaller than this are written with one copy into a single buffer
/// (prefix and message in one segment); larger ones with two writes.
const COALESCE: usize = 16 * 1024;

/// A request under construction: the whole message with a 64-byte header
/// placeholder, so that `wire` encoders compute header-relative offsets.
pub struct Request {
    command: Command,
    tree_id: u32,
    /// Bytes the response is expected to carry (READ length, output buffer
    /// size): it enters the credit charge (3.2.4.1.5).
    expect: u32,
    /// Payload sent, if not the whole body (WRITE: the data only).
    payload: Option<u32>,
    msg: Vec<u8>,
}

impl Request {
    /// A request whose body `encode` appends after the header placeholder.
    pub fn new(command: Command, tree_id: u32, encode: impl FnOnce(&mut Vec<u8>)) -> Self {
        let mut msg = vec![0u8; HEADER_LEN];
        encode(&mut msg);
        Self { command, tree_id, expect: 0, payload: None, msg }
    }

    /// Declares the payload sent when it is less than the body (WRITE data).
    pub fn payload(mut self, bytes: u32) -> Self {
        self.payload = Some(bytes);
        self
    }

    /// Declares the expected response payload (READ, QUERY_* output).
    pub fn expect(mut self, bytes: u32) -> Self {
        self.expect = bytes;
        self
    }

    /// CreditCharge: (max(send, expected) - 1) / 64 KiB + 1 (MS-SMB2 3.2.4.1.5).
    fn charge(&self) -> u16 {
        let send = self.payload.map_or((self.msg.len() - HEADER_LEN) as u64, u64::from);
        let payload = send.max(u64::from(self.expect)).max(1);
        ((payload - 1) / 65536 + 1).min(u64::from(u16::MAX)) as u16
    }
}

/// A response: the whole message (header at `msg()[0]`), borrowed from the
/// frame it arrived in, so large READ data is never copied.
pub struct Response {
    buf: Vec<u8>,
    range: Range<usize>,
    header: Header,
}

impl Response {
    /// The decoded header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The status.
    pub fn status(&self) -> NtStatus {
        self.header.status
    }

    /// The message, header included (what `wire` decoders take).
    pub fn msg(&self) -> &[u8] {
        &self.buf[self.range.clone()]
    }

    /// `Ok(self)` for STATUS_SUCCESS, else [`Error::Status`].
    pub fn ok(self) -> Result<Self, Error> {
        self.expect(NtStatus::SUCCESS)
    }

    /// `Ok(self)` if the status is `status`, else [`Error::Status`].
    pub fn expect(self, status: NtStatus) -> Result<Self, Error> {
        if self.header.status == status {
            Ok(self)
        } else {
            Err(Error::Status { command: self.header.command, status: self.header.status })
        }
    }
}

/// A request in flight; [`Pending::wait`] yields its response.
pub struct Pending {
    rx: oneshot::Receiver<Result<Response, Error>>,
    timeout: Duration,
}

impl Pending {
    /// Waits for the final response (interim STATUS_PENDING ones are skipped).
    pub async fn wait(self) -> Result<Response, Error> {
        match tokio::time::timeout(self.timeout, self.rx).await {
            Ok(Ok(r)) => r,
            Ok(Err(_)) => Err(Error::Closed("reader ended".into())),
            Err(_) => Err(Error::Timeout),
        }
    }
}

/// Per-session keys once logged on (client view: sign and seal with the
/// client-to-server keys, open with the server-to-client one).
pub(crate) struct Security {
    pub session_id: u64,
    pub signer: Option<Signer>,
    pub encryptor: Option<Encryptor>,
    pub decryptor: Option<Decryptor>,
    /// Seal every request (session or share requires it, or we asked).
    pub encrypt: AtomicBool,
    /// A bind under way: SESSION_SETUP responses are not checked here (the
    /// last one is signed with the channel key, which the caller derives
    /// and checks).
    pub binding: bool,
}

struct State {
    next_mid: u64,
    session_id: u64,
    /// Dialect 2.1 or later: CreditCharge is meaningful (LARGE_MTU).
    multi_credit: bool,
    pending: HashMap<u64, oneshot::Sender<Result<Response, Error>>>,
    /// Set when the reader ended; new requests fail at once.
    closed: Option<String>,
}

struct Shared {
    /// Credits asked for until held (default [`CREDIT_TARGET`]).
    credit_target: std::sync::atomic::AtomicUsize,
    /// The reader stops taking frames off the socket (a hostile client
    /// that never reads its responses).
    stalled: AtomicBool,
    writer: tokio::sync::Mutex<OwnedWriteHalf>,
    credits: Semaphore,
    state: parking_lot::Mutex<State>,
    security: parking_lot::RwLock<Option<Arc<Security>>>,
}

/// One TCP connection to a server.
pub struct Connection {
    shared: Arc<Shared>,
    timeout: Duration,
    reader: tokio::task::JoinHandle<()>,
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

impl Connection {
    /// Wraps a connected stream and starts its reader task (needs a tokio
    /// runtime). `timeout` bounds the wait for each response.
    pub fn new(stream: TcpStream, timeout: Duration) -> Self {
        let _ = stream.set_nodelay(true);
        let (rd, wr) = stream.into_split();
        let shared = Arc::new(Shared {
            credit_target: std::sync::atomic::AtomicUsize::new(CREDIT_TARGET),
            stalled: AtomicBool::new(false),
            writer: tokio::sync::Mutex::new(wr),
            // A new connection may send MessageId 0 only (MS-SMB2 3.3.1.1).
            credits: Semaphore::new(1),
            state: parking_lot::Mutex::new(State {
                next_mid: 0,
                session_id: 0,
                multi_credit: false,
                pending: HashMap::new(),
                closed: None,
            }),
            security: parking_lot::RwLock::new(None),
        });
        let reader = tokio::spawn(read_loop(shared.clone(), rd));
        Self { shared, timeout, reader }
    }

    /// Sends one request; returns at once with a handle on its response.
    pub async fn send(&self, req: Request) -> Result<Pending, Error> {
        Ok(self.send_chain(vec![req], false, false).await?.0.remove(0))
    }

    /// Sends one request and waits for its response (any status).
    pub async fn call(&self, req: Request) -> Result<Response, Error> {
        self.send(req).await?.wait().await
    }

    /// Sends a compound (MS-SMB2 3.2.4.1.4): one frame, each message 8-byte
    /// aligned and signed on its own; `related` chains them so later ones
    /// reuse the first's session, tree and FileId (pass `FileId::ANY`).
    pub async fn compound(&self, reqs: Vec<Request>, related: bool) -> Result<Vec<Response>, Error> {
        let (pending, _) = self.send_chain(reqs, related, false).await?;
        let mut out = Vec::with_capacity(pending.len());
        for p in pending {
            out.push(p.wait().await?);
        }
        Ok(out)
    }

    /// Sends a compound without waiting for its responses (see [`Self::compound`]).
    pub async fn send_compound(&self, reqs: Vec<Request>, related: bool) -> Result<Vec<Pending>, Error> {
        Ok(self.send_chain(reqs, related, false).await?.0)
    }

    /// Stops reading responses off the socket for good: the server's
    /// answers pile up in TCP (hostile-client tests).
    pub fn stall_reading(&self) {
        self.shared.stalled.store(true, Ordering::Relaxed);
    }

    /// Asks for credits until `n` are held (default 1024; the server grants
    /// at most 8192).
    pub fn set_credit_target(&self, n: usize) {
        self.shared.credit_target.store(n, Ordering::Relaxed);
    }

    /// Credits held now.
    pub fn credits(&self) -> usize {
        self.shared.credits.available_permits()
    }

    /// NEGOTIATE and SESSION_SETUP: sends unsigned, returns the exact bytes
    /// sent for the preauthentication hash (MS-SMB2 3.2.5.2).
    pub(crate) async fn call_logged(&self, req: Request) -> Result<(Vec<u8>, Response), Error> {
        let (mut p, sent) = self.send_chain(vec![req], false, true).await?;
        let sent = sent.ok_or(Error::Protocol("no copy of the request"))?;
        Ok((sent, p.remove(0).wait().await?))
    }

    /// After NEGOTIATE: whether CreditCharge applies (dialect ≥ 2.1).
    pub(crate) fn set_multi_credit(&self, on: bool) {
        self.shared.state.lock().multi_credit = on;
    }

    /// The SessionId later requests carry (from the first SESSION_SETUP response).
    pub(crate) fn set_session_id(&self, id: u64) {
        self.shared.state.lock().session_id = id;
    }

    /// Installs the session's keys once logged on.
    pub(crate) fn set_security(&self, sec: Security) {
        *self.shared.security.write() = Some(Arc::new(sec));
    }

    /// Turns sealing on for every later request (a share that requires it).
    pub(crate) fn require_encryption(&self) -> Result<(), Error> {
        let sec = self.shared.security.read().clone();
        match sec {
            Some(s) if s.encryptor.is_some() => {
                s.encrypt.store(true, Ordering::Relaxed);
                Ok(())
            }
            _ => Err(Error::Protocol("share requires encryption but none was negotiated")),
        }
    }

    /// True once requests are sealed.
    pub fn encrypting(&self) -> bool {
        self.shared.security.read().as_ref().is_some_and(|s| s.encrypt.load(Ordering::Relaxed))
    }

    async fn send_chain(
        &self,
        mut reqs: Vec<Request>,
        related: bool,
        keep_copy: bool,
    ) -> Result<(Vec<Pending>, Option<Vec<u8>>), Error> {
        let charges: Vec<u16> = reqs.iter().map(Request::charge).collect();
        let ids: u32 = charges.iter().map(|c| u32::from((*c).max(1))).sum();
        match self.shared.credits.acquire_many(ids).await {
            Ok(p) => p.forget(),
            Err(_) => return Err(Error::Closed(self.shared.state.lock().closed.clone().unwrap_or_default())),
        }
        let sec = self.shared.security.read().clone();
        let (rxs, stamp) = self.register(&charges)?;
        // Decided once per chain: a share may turn sealing on meanwhile.
        let sealer = sec.as_deref().filter(|s| s.encrypt.load(Ordering::Relaxed));
        let sent = async {
            let target = self.shared.credit_target.load(Ordering::Relaxed);
            let stamp = Stamp { related, held: self.shared.credits.available_permits(), target, ..stamp };
            let signer = sec.as_deref().and_then(|s| s.signer.as_ref()).filter(|_| sealer.is_none());
            stamp.apply(&mut reqs, &charges, signer)?;
            let copy = keep_copy.then(|| reqs.iter().flat_map(|r| r.msg.iter().copied()).collect());
            self.write_frame(&seal(reqs, sealer)?).await?;
            Ok(copy)
        }
        .await;
        match sent {
            Ok(copy) => Ok((rxs, copy)),
            Err(e) => {
                let mut st = self.shared.state.lock();
                for k in 0..u64::from(ids) {
                    st.pending.remove(&(stamp.first_mid + k));
                }
                Err(e)
            }
        }
    }

    /// Takes the next message ids and registers a waiter for each request.
    fn register(&self, charges: &[u16]) -> Result<(Vec<Pending>, Stamp), Error> {
        let mut st = self.shared.state.lock();
        if let Some(why) = &st.closed {
            return Err(Error::Closed(why.clone()));
        }
        let first_mid = st.next_mid;
        let mut rxs = Vec::with_capacity(charges.len());
        for c in charges {
            let (tx, rx) = oneshot::channel();
            let mid = st.next_mid;
            st.pending.insert(mid, tx);
            st.next_mid += u64::from((*c).max(1));
            rxs.push(Pending { rx, timeout: self.timeout });
        }
        let stamp = Stamp {
            first_mid,
            session_id: st.session_id,
            multi_credit: st.multi_credit,
            related: false,
            held: 0,
            target: 0,
        };
        Ok((rxs, stamp))
    }

    async fn write_frame(&self, frame: &[u8]) -> Result<(), Error> {
        if frame.len() > framing::MAX_FRAME {
            return Err(Error::Protocol("request larger than a Direct TCP frame"));
        }
        let prefix = framing::prefix(frame.len()).ok_or(Error::Protocol("request larger than a Direct TCP frame"))?;
        let mut w = self.shared.writer.lock().await;
        if frame.len() < COALESCE {
            let mut one = Vec::with_capacity(4 + frame.len());
            one.extend_from_slice(&prefix);
            one.extend_from_slice(frame);
            w.write_all(&one).await?;
        } else {
            w.write_all(&prefix).await?;
            w.write_all(frame).await?;
        }
        Ok(())
    }
}

/// What the headers of one chain get (MS-SMB2 2.2.1.2, 3.2.4.1).
#[derive(Clone, Copy)]
struct Stamp {
    first_mid: u64,
    session_id: u64,
    multi_credit: bool,
    related: bool,
    /// Credits held after this chain's were taken.
    held: usize,
    /// Credits wanted.
    target: usize,
}

impl Stamp {
    /// Writes each header (ids, credits, flags, NextCommand with 8-byte
    /// padding) and signs each message with `signer` (none when sealing).
    fn apply(&self, reqs: &mut [Request], charges: &[u16], signer: Option<&Signer>) -> Result<(), Error> {
        let n = reqs.len();
        let mut mid = self.first_mid;
        for (k, (req, &charge)) in reqs.iter_mut().zip(charges).enumerate() {
            let mut h = Header {
                credit_charge: if self.multi_credit { charge } else { 0 },
                command: req.command,
                credits: if self.held < self.target { charge.saturating_add(64) } else { charge.max(1) },
                message_id: mid,
                tree_id: req.tree_id,
                session_id: self.session_id,
                ..Header::default()
            };
            mid += u64::from(charge.max(1));
            if signer.is_some() {
                h.flags |= flags::SIGNED;
            }
            if self.related && k > 0 {
                h.flags |= flags::RELATED_OPERATIONS;
            }
            if k + 1 < n {
                smbvault::wire::pad_to(&mut req.msg, 8);
                h.next_command = req.msg.len() as u32;
            }
            let mut hdr = Vec::with_capacity(HEADER_LEN);
            h.encode(&mut hdr);
            req.msg[..HEADER_LEN].copy_from_slice(&hdr);
            if let Some(s) = signer {
                s.sign(&mut req.msg)?;
            }
        }
        Ok(())
    }
}

/// The frame to send: the chain, sealed whole when `sealer` is given
/// (MS-SMB2 3.2.4.1.8: a compound is encrypted as one message).
fn seal(mut reqs: Vec<Request>, sealer: Option<&Security>) -> Result<Vec<u8>, Error> {
    let frame = if reqs.len() == 1 { reqs.pop().map(|r| r.msg).unwrap_or_default() } else { concat(reqs) };
    match sealer {
        Some(s) => match &s.encryptor {
            Some(e) => Ok(e.seal(s.session_id, &frame)?),
            None => Err(Error::Protocol("encryption required but no key")),
        },
        None => Ok(frame),
    }
}

/// Concatenation of a compound's messages (already padded).
fn concat(reqs: Vec<Request>) -> Vec<u8> {
    let mut out = Vec::with_capacity(reqs.iter().map(|r| r.msg.len()).sum());
    for r in reqs {
        out.extend_from_slice(&r.msg);
    }
    out
}

async fn read_loop(shared: Arc<Shared>, rd: OwnedReadHalf) {
    let mut rd = BufReader::with_capacity(64 * 1024, rd);
    let why = loop {
        while shared.stalled.load(Ordering::Relaxed) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        match read_frame(&mut rd).await {
            Ok(Some(frame)) => {
                if let Err(e) = dispatch(&shared, frame) {
                    break e.to_string();
                }
            }
            Ok(None) => break "server closed the connection".to_string(),
            Err(e) => break e.to_string(),
        }
    };
    let mut st = shared.state.lock();
    st.closed = Some(why.clone());
    for (_, tx) in st.pending.drain() {
        let _ = tx.send(Err(Error::Closed(why.clone())));
    }
    // Wake anyone waiting for credits that will never come.
    shared.credits.close();
}

async fn read_frame(rd: &mut BufReader<OwnedReadHalf>) -> std::io::Result<Option<Vec<u8>>> {
    let mut prefix = [0u8; 4];
    match rd.read_exact(&mut prefix).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let Prefix::Frame(len) = framing::parse_prefix(prefix) else {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, "bad frame prefix"));
    };
    // Read into spare capacity: zeroing a 1 MiB buffer first costs as much
    // as a copy, and the client shares the CPU with the server it measures.
    let mut buf = Vec::with_capacity(len);
    (&mut *rd).take(len as u64).read_to_end(&mut buf).await?;
    if buf.len() != len {
        return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "frame cut short"));
    }
    Ok(Some(buf))
}

/// Decrypts a frame if sealed, walks its compound chain, verifies
/// signatures, returns credits and completes the waiting requests. An
/// error here is fatal for the connection (bad tag, garbled chain).
fn dispatch(shared: &Shared, mut frame: Vec<u8>) -> Result<(), Error> {
    let sec = shared.security.read().clone();
    let encrypted = frame.get(..4) == Some(&TRANSFORM_ID[..]);
    let base = if encrypted {
        let s = sec.as_ref().ok_or(Error::Protocol("encrypted response before logon"))?;
        if transform::session_id(&frame)? != s.session_id {
            return Err(Error::Protocol("encrypted response for another session"));
        }
        let d = s.decryptor.as_ref().ok_or(Error::Protocol("encrypted response without keys"))?;
        d.open_in_place(&mut frame)?;
        TRANSFORM_HEADER_LEN
    } else {
        0
    };
    let msgs = split_chain(&frame, base)?;
    let signer = sec.as_ref().and_then(|s| s.signer.as_ref());
    let binding = sec.as_ref().is_some_and(|s| s.binding);
    let single = msgs.len() == 1;
    let mut out = Vec::with_capacity(msgs.len());
    for (range, header) in msgs {
        let bind_leg = binding && header.command == smbvault::wire::header::Command::SESSION_SETUP;
        let verdict = check_signature(signer.filter(|_| !bind_leg), encrypted, &header, &frame[range.clone()]);
        out.push((range, header, verdict));
    }
    let mut frame = Some(frame);
    for (range, header, verdict) in out {
        if header.credits > 0 {
            shared.credits.add_permits(usize::from(header.credits));
        }
        // Interim response (MS-SMB2 3.2.5.1.5): credits only; the final one follows.
        if header.status == NtStatus::PENDING && header.is_async() {
            continue;
        }
        let Some(tx) = shared.state.lock().pending.remove(&header.message_id) else {
            continue; // oplock break notifications (MessageId 0xFFFF…) and strays
        };
        let resp = match verdict {
            Err(e) => Err(e),
            Ok(()) => {
                let buf = if single { frame.take().unwrap_or_default() } else { frame_slice(&frame, &range) };
                let range = if single { range } else { 0..range.len() };
                Ok(Response { buf, range, header })
            }
        };
        let _ = tx.send(resp);
    }
    Ok(())
}

fn frame_slice(frame: &Option<Vec<u8>>, range: &Range<usize>) -> Vec<u8> {
    frame.as_ref().and_then(|f| f.get(range.clone())).map(<[u8]>::to_vec).unwrap_or_default()
}

/// The messages of a (possibly compound) response: header-aligned ranges.
fn split_chain(frame: &[u8], base: usize) -> Result<Vec<(Range<usize>, Header)>, Error> {
    let mut out = Vec::new();
    let mut at = base;
    loop {
        let rest = frame.get(at..).ok_or(Error::Protocol("compound offset past the frame"))?;
        let h = Header::decode(rest)?;
        let next = h.next_command as usize;
        if next == 0 {
            out.push((at..frame.len(), h));
            return Ok(out);
        }
        if next < HEADER_LEN || next > rest.len() {
            return Err(Error::Protocol("bad NextCommand"));
        }
        out.push((at..at + next, h));
        at += next;
    }
}

/// MS-SMB2 3.2.5.1.3: a signed session's responses must verify; sealed ones
/// are covered by the AEAD tag. Interim and error responses the server
/// cannot sign (no session yet) are let through.
fn check_signature(signer: Option<&Signer>, encrypted: bool, h: &Header, msg: &[u8]) -> Result<(), Error> {
    match signer {
        Some(s) if !encrypted && h.is_signed() => s.verify(msg).map_err(Error::from),
        Some(_) if !encrypted && h.status == NtStatus::SUCCESS && h.session_id != 0 => {
            Err(Error::Protocol("unsigned response in a signed session"))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use smbvault::crypto::SigningAlg;

    fn message(command: Command, next: u32, body: usize) -> Vec<u8> {
        let mut m = Vec::new();
        Header { command, next_command: next, message_id: 7, session_id: 9, ..Header::default() }.encode(&mut m);
        m.resize(HEADER_LEN + body, 0);
        m
    }

    /// MS-SMB2 3.2.4.1.5: one credit per started 64 KiB of the larger of
    /// what is sent and what is expected back.
    #[test]
    fn credit_charge() {
        assert_eq!(Request::new(Command::ECHO, 0, |_| {}).charge(), 1);
        assert_eq!(Request::new(Command::READ, 0, |o| o.resize(o.len() + 49, 0)).expect(1 << 20).charge(), 16);
        let write = |n: usize| Request::new(Command::WRITE, 0, |o| o.resize(o.len() + 48 + n, 0)).payload(n as u32);
        assert_eq!(write(65536).charge(), 1);
        assert_eq!(write(65537).charge(), 2);
        assert_eq!(write(1 << 20).charge(), 16);
    }

    #[test]
    fn compound_chains_split_and_bad_offsets_fail() {
        let mut frame = message(Command::CREATE, 72, 8);
        frame.extend(message(Command::CLOSE, 0, 4));
        let msgs = split_chain(&frame, 0).unwrap();
        assert_eq!(msgs.len(), 2);
        assert_eq!((msgs[0].0.clone(), msgs[1].0.clone()), (0..72, 72..frame.len()));
        assert_eq!(msgs[1].1.command, Command::CLOSE);
        for bad in [8u32, 4096] {
            let mut f = frame.clone();
            f[20..24].copy_from_slice(&bad.to_le_bytes());
            assert!(split_chain(&f, 0).is_err(), "NextCommand {bad}");
        }
        assert!(split_chain(&frame[..40], 0).is_err());
    }

    #[test]
    fn signed_sessions_reject_unsigned_or_forged_responses() {
        let s = Signer::new(SigningAlg::AesCmac, &[3; 16]);
        let mut m = message(Command::READ, 0, 16);
        m[16] |= flags::SIGNED as u8;
        s.sign(&mut m).unwrap();
        let h = Header::decode(&m).unwrap();
        assert!(check_signature(Some(&s), false, &h, &m).is_ok());
        m[70] ^= 1;
        assert!(check_signature(Some(&s), false, &h, &m).is_err());
        assert!(check_signature(Some(&s), true, &h, &m).is_ok(), "sealed: the AEAD tag covers it");
        let unsigned = Header { session_id: 9, ..Header::default() };
        assert!(check_signature(Some(&s), false, &unsigned, &m).is_err());
        let failed = Header { status: NtStatus::ACCESS_DENIED, ..unsigned };
        assert!(check_signature(Some(&s), false, &failed, &m).is_ok());
        assert!(check_signature(None, false, &unsigned, &m).is_ok());
    }
}
