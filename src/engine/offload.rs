//! Transport cryptography that runs beside the engine instead of inside it.
//!
//! The engine handles one connection's requests one at a time. With the
//! per-message cryptography inside that loop, a 1 MiB READ cost the
//! storage read *plus* sealing the response, and a WRITE decrypting the
//! request *plus* the storage write, on one thread. Both halves are pure
//! functions of the message and the session's keys, so they move out and a
//! connection's transport crypto runs beside its storage work, on another
//! core where there is one (on the 2-core benchmark machine both cores were
//! already busy, so throughput did not change: docs/benchmarks.md,
//! "Encrypted throughput"):
//!
//! - responses leave the engine as a [`ProtectJob`] (MS-SMB2 3.3.4.1.1
//!   signing, 3.3.4.1.4 encryption) that the connection's writer runs while
//!   the engine works on the next request;
//! - requests are decrypted (3.3.5.2.1.1) by the connection's reader with
//!   the keys in the [`KeyTable`], while the engine works on the previous one.
//!
//! Everything the spec asks the engine to check still happens in the engine:
//! a pre-opened frame is only accepted if its session still exists and still
//! has the keys that opened it ([`Inbound::Opened`]); anything else is
//! decrypted, or refused, by the engine as before. Sans-IO: `net` calls
//! these functions but never looks inside.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::{Arc, Mutex, Weak};

use crate::crypto::CryptoError;
use crate::engine::crypto_state::SessionCrypto;
use crate::wire::header::{self, flags};
use crate::wire::transform::{self, TRANSFORM_HEADER_LEN};

/// A response whose signing or sealing is still to be done.
pub struct ProtectJob {
    msg: Vec<u8>,
    how: How,
}

enum How {
    /// Encrypt the whole chain for this session (3.3.4.1.4).
    Seal(u64, Arc<SessionCrypto>),
    /// Sign each range (one message of a compound) with its session's key (3.3.4.1.1).
    Sign(Vec<(Range<usize>, Arc<SessionCrypto>)>),
}

impl std::fmt::Debug for ProtectJob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let how = match &self.how {
            How::Seal(sid, _) => format!("seal for session {sid:#x}"),
            How::Sign(r) => format!("sign {} message(s)", r.len()),
        };
        write!(f, "ProtectJob({} bytes, {how})", self.msg.len())
    }
}

/// A protected message as it goes on the wire: the transform header of a
/// sealed one, then the message.
pub struct WireMessage {
    /// SMB2 TRANSFORM_HEADER, for a sealed message.
    pub transform: Option<[u8; TRANSFORM_HEADER_LEN]>,
    /// The message (ciphertext when sealed).
    pub body: Vec<u8>,
}

impl ProtectJob {
    /// Seal `msg` for `session_id`; the caller checked the keys can encrypt.
    pub(crate) fn seal(msg: Vec<u8>, session_id: u64, crypto: Arc<SessionCrypto>) -> Self {
        Self { msg, how: How::Seal(session_id, crypto) }
    }

    /// Sign these messages of `msg` (ranges in order, each one message).
    pub(crate) fn sign(msg: Vec<u8>, ranges: Vec<(Range<usize>, Arc<SessionCrypto>)>) -> Self {
        Self { msg, how: How::Sign(ranges) }
    }

    /// Bytes of the message(s) to protect (for the send-queue budget).
    pub fn len(&self) -> usize {
        self.msg.len()
    }

    /// True for an empty message (never made; for clippy's `len` rule).
    pub fn is_empty(&self) -> bool {
        self.msg.is_empty()
    }

    /// Signs or seals in place. Fails only when the session's nonce
    /// counter is used up, and then the connection must not go on.
    pub fn run(self) -> Result<WireMessage, CryptoError> {
        let mut msg = self.msg;
        match self.how {
            How::Seal(sid, crypto) => {
                let enc = crypto.encryptor().ok_or(CryptoError::Malformed)?;
                let head = enc.seal_detached(sid, &mut msg)?;
                Ok(WireMessage { transform: Some(head), body: msg })
            }
            How::Sign(ranges) => {
                for (r, crypto) in ranges {
                    if let Some(m) = msg.get_mut(r) {
                        sign_message(&crypto, m);
                    }
                }
                Ok(WireMessage { transform: None, body: msg })
            }
        }
    }
}

/// Sets SIGNED in one message's header, then signs it. The flag is in the
/// first byte of Flags (0x00000008), and the signature covers it.
pub(crate) fn sign_message(crypto: &SessionCrypto, msg: &mut [u8]) {
    let Some(f) = msg.get_mut(header::offsets::FLAGS) else {
        return;
    };
    *f |= flags::SIGNED as u8;
    if crypto.signer().sign(msg).is_err() {
        tracing::error!("signing a response failed");
    }
}

/// A frame as the connection's reader hands it to the engine.
pub enum Inbound {
    /// As it came off the wire.
    Raw(Vec<u8>),
    /// A transform message the reader decrypted in place with the keys of
    /// its header's session; the plaintext is `frame[52..]`.
    Opened {
        /// The transform header's SessionId.
        session_id: u64,
        /// The keys that opened it (the engine checks they are still the session's).
        crypto: Arc<SessionCrypto>,
        /// Transform header, then plaintext.
        frame: Vec<u8>,
    },
    /// A transform message of a known session that did not decrypt: forged,
    /// corrupted or replayed. Its body is garbage now.
    Failed {
        /// The transform header's SessionId.
        session_id: u64,
        /// Why it did not open.
        error: CryptoError,
    },
}

/// The largest READ [`Inbound::runs_on_worker`] takes: one record
/// (storage::record::CHUNK), which is opened on the calling thread anyway.
const SMALL_READ: u32 = 64 * 1024;

impl Inbound {
    /// The frame's buffer, for [`crate::buffers::give`] once the engine
    /// is done with it.
    pub fn into_frame(self) -> Option<Vec<u8>> {
        match self {
            Inbound::Raw(f) | Inbound::Opened { frame: f, .. } => Some(f),
            Inbound::Failed { .. } => None,
        }
    }

    /// True if every request of the frame is one that takes a few hundred
    /// microseconds of CPU at most and never waits on the disk or the
    /// network by its own asking, so that the connection runs it on its
    /// async worker (`net::connection`) instead of handing the worker's
    /// queue to another thread first. That hand-off cost 20-30 % of the
    /// server CPU of a small-file operation and 10-15 % of a sequential
    /// write (docs/benchmarks.md, "Requests on the async worker").
    ///
    /// Kept off the worker: NEGOTIATE, SESSION_SETUP and TREE_CONNECT
    /// (accounts database writes, a share's first root); FLUSH and WRITEs
    /// with WRITE_THROUGH (MS-SMB2 2.2.21: an fsync); IOCTL (server-side
    /// copies, Previous Versions listings from the remote backups); CREATEs
    /// naming a backup generation (a TWrp context, 2.2.13.2.7, or a `@GMT-`
    /// token: the generation may be fetched first); SET_INFO (a truncation
    /// frees every record past the new end); READs of more than 64 KiB,
    /// whose hand-off lets their records' decryption overlap the transport
    /// sealing of the previous response. An open created with
    /// FILE_WRITE_THROUGH still syncs on each WRITE, and a CLOSE that
    /// deletes a file frees its records: both are the client's own asking.
    pub fn runs_on_worker(&self) -> bool {
        let plain = match self {
            Inbound::Raw(f) => f.as_slice(),
            Inbound::Opened { frame, .. } => frame.get(TRANSFORM_HEADER_LEN..).unwrap_or_default(),
            Inbound::Failed { .. } => return false,
        };
        let Some(msgs) = header::chain_messages(plain) else { return false };
        msgs.iter().all(|m| quick(m))
    }
}

/// See [`Inbound::runs_on_worker`].
fn quick(m: &[u8]) -> bool {
    use crate::wire::create::CreateRequest;
    use crate::wire::create_context as cc;
    use header::Command;
    match header::command_of(m) {
        Some(Command::WRITE) => crate::wire::write::WriteRequest::decode(m)
            .is_ok_and(|w| w.flags & crate::wire::write::flags::WRITE_THROUGH == 0),
        Some(Command::READ) => crate::wire::read::ReadRequest::decode(m).is_ok_and(|r| r.length <= SMALL_READ),
        Some(Command::CREATE) => CreateRequest::decode(m)
            .is_ok_and(|c| cc::find(&c.contexts, cc::names::TWRP).is_none() && !c.name.contains("@GMT-")),
        Some(
            Command::CLOSE
            | Command::QUERY_INFO
            | Command::QUERY_DIRECTORY
            | Command::ECHO
            | Command::CANCEL
            | Command::LOCK
            | Command::CHANGE_NOTIFY
            | Command::OPLOCK_BREAK
            | Command::TREE_DISCONNECT
            | Command::LOGOFF,
        ) => true,
        _ => false,
    }
}

/// The decryption keys of a connection's sessions, for its reader.
/// Sessions register when their keys are derived; an entry dies with its
/// session (a weak reference), so a frame of a session that is gone goes to
/// the engine as it came.
#[derive(Default)]
pub struct KeyTable(Mutex<HashMap<u64, Weak<SessionCrypto>>>);

impl KeyTable {
    /// Makes `crypto` the keys of `session_id`; forgets dead sessions.
    pub fn register(&self, session_id: u64, crypto: &Arc<SessionCrypto>) {
        let mut t = self.0.lock().unwrap_or_else(|e| e.into_inner());
        t.retain(|_, w| w.strong_count() > 0);
        t.insert(session_id, Arc::downgrade(crypto));
    }

    /// Decrypts `frame` in place if it is a transform message of a session
    /// with keys; returns it unchanged otherwise.
    pub fn open(&self, mut frame: Vec<u8>) -> Inbound {
        if header::protocol_id(&frame) != Some(header::TRANSFORM_ID) {
            return Inbound::Raw(frame);
        }
        let Ok(sid) = transform::session_id(&frame) else {
            return Inbound::Raw(frame);
        };
        let crypto = {
            let t = self.0.lock().unwrap_or_else(|e| e.into_inner());
            t.get(&sid).and_then(Weak::upgrade)
        };
        let Some(crypto) = crypto else {
            return Inbound::Raw(frame);
        };
        let Some(dec) = crypto.decryptor() else {
            return Inbound::Raw(frame);
        };
        match dec.open_in_place(&mut frame) {
            Ok(_) => Inbound::Opened { session_id: sid, crypto, frame },
            Err(error) => Inbound::Failed { session_id: sid, error },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Requests smbclient sent to Samba (captures/smbclient-SMB3_11-signed.pcap,
    /// the frames the wire tests decode).
    macro_rules! captured {
        ($name:literal) => {
            include_bytes!(concat!("../../protocol-tests/fixtures/smbclient-SMB3_11-signed/", $name)).to_vec()
        };
    }

    /// `msgs` as one compound chain: each but the last padded to 8 bytes
    /// and pointing at the next (MS-SMB2 3.2.4.1.4).
    fn chain(msgs: &[Vec<u8>]) -> Inbound {
        let mut out = Vec::new();
        for (k, m) in msgs.iter().enumerate() {
            let mut m = m.clone();
            if k + 1 < msgs.len() {
                m.resize(m.len().next_multiple_of(8), 0);
                let n = m.len() as u32;
                header::set_next_command(&mut m, n);
            } else {
                header::set_next_command(&mut m, 0);
            }
            out.extend(m);
        }
        Inbound::Raw(out)
    }

    /// The captured WRITE with its Flags (MS-SMB2 2.2.21: body offset 44) set.
    fn write_with_flags(flags: u32) -> Vec<u8> {
        let mut m = captured!("40-write-req.bin");
        m[64 + 44..64 + 48].copy_from_slice(&flags.to_le_bytes());
        m
    }

    /// The captured READ with its Length (MS-SMB2 2.2.19: body offset 4) set.
    fn read_of(length: u32) -> Vec<u8> {
        let mut m = captured!("48-read-req.bin");
        m[64 + 4..64 + 8].copy_from_slice(&length.to_le_bytes());
        m
    }

    /// The captured CREATE (of `d1\a.txt`) under another name, with a TWrp
    /// context if `twrp`.
    fn create_of(name: &str, twrp: bool) -> Vec<u8> {
        use crate::wire::create::CreateRequest;
        use crate::wire::create_context as cc;
        let raw = captured!("38-create-req.bin");
        let mut req = CreateRequest::decode(&raw).expect("captured CREATE");
        req.name = name.into();
        let stamp = [0u8; 8];
        if twrp {
            req.contexts.push(cc::CreateContext { name: cc::names::TWRP, data: &stamp });
        }
        let mut m = raw[..64].to_vec();
        req.encode(&mut m);
        m
    }

    #[test]
    fn captured_quick_requests_run_on_the_worker() {
        let create = captured!("38-create-req.bin");
        let (write, read) = (captured!("40-write-req.bin"), captured!("48-read-req.bin"));
        let (query, close) = (captured!("30-query_info-req.bin"), captured!("26-close-req.bin"));
        for one in [&create, &write, &read, &query, &close, &captured!("22-query_directory-req.bin")] {
            assert!(chain(std::slice::from_ref(one)).runs_on_worker());
        }
        // smbclient's stat: CREATE + QUERY_INFO + CLOSE in one chain.
        assert!(chain(&[create.clone(), query.clone(), close.clone()]).runs_on_worker());
        assert!(chain(&[write.clone(), write.clone(), read.clone()]).runs_on_worker());
        assert!(chain(&[read_of(64 * 1024)]).runs_on_worker());
        // Decrypted: the chain starts after the transform header.
        let mut frame = vec![0u8; TRANSFORM_HEADER_LEN];
        frame.extend(&write);
        let (crypto, _) = session();
        assert!(Inbound::Opened { session_id: SID, crypto, frame }.runs_on_worker());
    }

    #[test]
    fn requests_that_may_wait_keep_their_thread() {
        use crate::wire::write::flags::WRITE_THROUGH;
        let write = captured!("40-write-req.bin");
        let slow = [
            captured!("18-tree_connect-req.bin"),
            captured!("14-ioctl-req.bin"),
            write_with_flags(WRITE_THROUGH),
            read_of(64 * 1024 + 1),
            read_of(1 << 20),
            // A backup generation may have to be fetched first.
            create_of("a.txt", true),
            create_of("@GMT-2026.12.01-00.00.00\\a.txt", false),
        ];
        for m in &slow {
            assert!(!chain(std::slice::from_ref(m)).runs_on_worker(), "{:?}", header::command_of(m));
            // One such request makes the whole chain wait.
            assert!(!chain(&[write.clone(), m.clone()]).runs_on_worker());
        }
        // The same CREATE re-encoded without the TWrp context is quick: the
        // two above wait for their generation, not for the re-encoding.
        assert!(chain(&[create_of("a.txt", false)]).runs_on_worker());
        for c in [header::Command::FLUSH, header::Command::SET_INFO, header::Command::SESSION_SETUP] {
            let mut m = captured!("26-close-req.bin");
            m[header::offsets::COMMAND..header::offsets::COMMAND + 2].copy_from_slice(&c.0.to_le_bytes());
            assert!(!chain(&[m]).runs_on_worker(), "{}", c.name());
        }
        // A NextCommand past the end, a short frame, a frame that did not decrypt.
        let mut bad = write.clone();
        header::set_next_command(&mut bad, 4096);
        assert!(!Inbound::Raw(bad).runs_on_worker());
        assert!(!Inbound::Raw(write[..40].to_vec()).runs_on_worker());
        assert!(!Inbound::Failed { session_id: 1, error: CryptoError::Integrity }.runs_on_worker());
    }

    use crate::crypto::{CipherId, Encryptor, KeyDerivation, PreauthHash, SessionKeys, SigningAlg};
    use crate::wire::negotiate::Dialect;

    const SID: u64 = 0x1122_3344_5566_7788;

    fn session() -> (Arc<SessionCrypto>, Encryptor) {
        let mut h = PreauthHash::new();
        h.update(b"offload test");
        let key = [5u8; 16];
        let server = SessionCrypto::derive(
            Dialect::SMB311,
            &key,
            Some(&h),
            Some(CipherId::Aes128Gcm),
            SigningAlg::AesGmac,
            [7; 16],
        );
        // The client seals with the client-to-server key (the server's `decrypt`).
        let keys = SessionKeys::derive(&key, KeyDerivation::Smb311(&h), Some(CipherId::Aes128Gcm));
        let client = Encryptor::new(keys.decrypt.as_ref().expect("cipher"), [3; 16]);
        (Arc::new(server), client)
    }

    fn request() -> Vec<u8> {
        let mut m = vec![0u8; 80];
        m[..4].copy_from_slice(&header::PROTOCOL_ID);
        m[70] = 0xab;
        m
    }

    #[test]
    fn opens_requests_of_registered_sessions_only() {
        let (crypto, client) = session();
        let table = KeyTable::default();
        let sealed = client.seal(SID, &request()).expect("seal");
        // Not registered yet: handed on untouched for the engine to decrypt.
        assert!(matches!(table.open(sealed.clone()), Inbound::Raw(f) if f == sealed));
        table.register(SID, &crypto);
        match table.open(sealed.clone()) {
            Inbound::Opened { session_id, frame, crypto: c } => {
                assert_eq!(session_id, SID);
                assert!(Arc::ptr_eq(&c, &crypto));
                assert_eq!(&frame[TRANSFORM_HEADER_LEN..], &request()[..]);
            }
            _ => panic!("a registered session's request must open"),
        }
        // A flipped ciphertext bit: refused, never handed on as plaintext.
        let mut bad = sealed.clone();
        bad[TRANSFORM_HEADER_LEN + 10] ^= 1;
        assert!(matches!(table.open(bad), Inbound::Failed { session_id: SID, .. }));
        // Plain SMB2 frames pass through.
        assert!(matches!(table.open(request()), Inbound::Raw(_)));
        // Once the session (its last strong reference) is gone, so are its keys.
        drop(crypto);
        assert!(matches!(table.open(sealed), Inbound::Raw(_)));
    }

    #[test]
    fn sealed_jobs_open_with_the_client_key_and_signed_jobs_verify() {
        let (crypto, _) = session();
        let mut h = PreauthHash::new();
        h.update(b"offload test");
        let keys = SessionKeys::derive(&[5u8; 16], KeyDerivation::Smb311(&h), Some(CipherId::Aes128Gcm));
        let job = ProtectJob::seal(request(), SID, crypto.clone());
        let wire = job.run().expect("seal");
        let frame = [&wire.transform.expect("transform header")[..], &wire.body].concat();
        let client_open = crate::crypto::Decryptor::new(keys.encrypt.as_ref().expect("cipher"));
        assert_eq!(client_open.open(&frame).expect("opens"), request());

        let two = [request(), request()].concat();
        let job = ProtectJob::sign(two, vec![(0..80, crypto.clone()), (80..160, crypto)]);
        let body = job.run().expect("sign").body;
        let signer = keys.signer(SigningAlg::AesGmac);
        for m in body.chunks(80) {
            assert_ne!(m[header::offsets::FLAGS] & flags::SIGNED as u8, 0);
            signer.verify(m).expect("each message verifies");
        }
    }
}
