//! The authenticated engine: `engine::Connection::handle_frame` on a
//! connection that negotiated SMB 3.1.1 and logged on with NTLMv2 (signing
//! and encryption on, the defaults) and is connected to a disk share and
//! IPC$, so that every request reaches its handler.
//!
//! Set up once per process: a data directory in a temporary directory (on
//! /dev/shm when there is one), created as `smbvault serve` does on first
//! start (master key, store, accounts database, the default organization,
//! its administrator and share). Each input then is:
//!
//! - byte 0, the control byte (see `ctl`): how to send the messages
//!   (sealed, signed or plain) and which header fields the harness fixes;
//! - the rest: one or more plaintext SMB2 messages, a compound chained by
//!   their NextCommand fields.
//!
//! With the fix-ups on (control byte 0), the harness sets ProtocolId,
//! SessionId, TreeId, MessageId (the next in the credit window),
//! CreditCharge (at most 64) and CreditRequest, replaces FileIds with those
//! of opens the server handed out (the input's FileId picks which), and
//! re-chains the messages with 8-byte aligned NextCommand, so most inputs
//! are structurally valid requests; then it seals the chain with the
//! session's key. Responses are opened with the client's keys: a sealed
//! response that does not decrypt, or a signed one that does not verify,
//! is a bug. The connection is renewed (opens closed, a new logon) after
//! `RENEW` inputs or when the engine closes it, so state stays bounded.
#![no_main]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use libfuzzer_sys::fuzz_target;
use smbvault::accounts::Accounts;
use smbvault::app;
use smbvault::audit::NullSink;
use smbvault::auth::initiator::{ClientRandom, Credentials, NtlmClient};
use smbvault::config::Config;
use smbvault::crypto::{CipherId, Decryptor, Encryptor, KeyDerivation, PreauthHash, SessionKeys, Signer, SigningAlg};
use smbvault::engine::{Connection, Outgoing, Server};
use smbvault::types::FileTime;
use smbvault::wire::header::{Command, Header, flags};
use smbvault::wire::negotiate::{
    self, Dialect, NegContext, NegotiateRequest, NegotiateResponse, caps, ctx, security_mode,
};
use smbvault::wire::session_setup::{SessionSetupRequest, SessionSetupResponse, session_flags};
use smbvault::wire::tree_connect::TreeConnectRequest;
use smbvault::wire::{Guid, HEADER_LEN, NtStatus};
use zeroize::Zeroizing;

/// Inputs per connection before it is closed and a new one logs on.
const RENEW: u32 = 1000;
/// Most messages of one compound the harness chains.
const MAX_CHAIN: usize = 32;
/// Opens remembered for FileId fix-ups.
const MAX_FILES: usize = 8;

/// Bits of the control byte.
mod ctl {
    /// Bits 0-1: 0 or 1 sealed, 2 signed, 3 plain (unsigned, unsealed).
    pub const MODE: u8 = 0x03;
    /// Send the bytes after the control byte as they are (no fix-ups at
    /// all, not even chaining): the engine's own framing checks.
    pub const RAW: u8 = 0x04;
    /// Use the IPC$ tree rather than the disk share.
    pub const IPC: u8 = 0x08;
    /// Keep the input's TreeId.
    pub const KEEP_TREE: u8 = 0x10;
    /// Keep the input's MessageId and CreditCharge.
    pub const KEEP_MID: u8 = 0x20;
    /// Keep the input's SessionId.
    pub const KEEP_SESSION: u8 = 0x40;
    /// Keep the input's FileIds.
    pub const KEEP_FILE: u8 = 0x80;
}

/// A deterministic source for the server's random values (challenges,
/// salts, nonce seeds), so that a crash reproduces.
fn entropy() -> smbvault::engine::services::Entropy {
    let state = AtomicU64::new(0x9e37_79b9_7f4a_7c15);
    Arc::new(move |buf: &mut [u8]| {
        for chunk in buf.chunks_mut(8) {
            let mut z = state.fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::Relaxed);
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^= z >> 31;
            chunk.copy_from_slice(&z.to_le_bytes()[..chunk.len()]);
        }
    })
}

/// The server, its data directory and the account the client logs on with.
struct World {
    _dir: tempfile::TempDir,
    server: Arc<Server>,
    host: String,
    share: String,
    creds: Credentials,
    clock: SystemTime,
    client: Option<Client>,
}

/// One logged-on connection.
struct Client {
    conn: Connection,
    session_id: u64,
    trees: [u32; 2],
    signer: Signer,
    /// Client to server (the server's `decrypt` key).
    sealer: Encryptor,
    /// Server to client.
    opener: Decryptor,
    next_mid: u64,
    files: Vec<[u8; 16]>,
    inputs: u32,
    /// The server said the session is gone (its signed answers then echo
    /// the request's signature).
    lost: bool,
}

impl World {
    fn new() -> Self {
        let base = if std::path::Path::new("/dev/shm").is_dir() { "/dev/shm" } else { "/tmp" };
        let dir = tempfile::Builder::new().prefix("smbvault-fuzz-").tempdir_in(base).expect("temp dir");
        let mut config = Config::default();
        config.server.data_dir = dir.path().join("data");
        config.security.logon_failure_delay_ms = 0;
        // A fuzzed SESSION_SETUP must not lock the harness's own account.
        config.accounts.lockout_threshold = u32::MAX;
        std::fs::create_dir_all(&config.server.data_dir).expect("data dir");
        let (mk, _) = app::open_master_key_forced(&config, true, false, false).expect("master key");
        let store = app::open_store(&config, &mk, false).expect("store");
        let accounts = Arc::new(
            Accounts::open(&config.server.data_dir.join("accounts.db"), &mk, &config.accounts).expect("accounts"),
        );
        let prov = app::StoreProvisioner::new(store.clone(), SystemTime::now());
        let admin = smbvault::accounts::bootstrap(&accounts, &prov, &config).expect("bootstrap").expect("first start");
        let directory = Arc::new(app::AccountsDirectory::new(accounts, &config));
        let clock = SystemTime::now();
        let host = config.server.name.clone();
        let server = Arc::new(Server::new(
            config,
            directory,
            store,
            Arc::new(NullSink),
            [7; 16],
            0x1234_5678,
            FileTime::from_system(clock),
            entropy(),
        ));
        let creds = Credentials { user: admin.user, domain: admin.org, password: admin.password };
        Self { _dir: dir, server, host, share: admin.share, creds, clock, client: None }
    }

    fn tick(&mut self) -> SystemTime {
        self.clock += Duration::from_millis(1);
        self.clock
    }

    /// The logged-on client, logging on first if there is none.
    fn client(&mut self) -> &mut Client {
        if self.client.is_none() {
            let now = self.tick();
            self.client = Some(Client::logon(self, now));
        }
        self.client.as_mut().expect("client")
    }

    fn renew(&mut self) {
        let now = self.tick();
        if let Some(mut c) = self.client.take() {
            c.conn.close(now);
        }
        // The durable commit `smbvault serve`'s background thread makes
        // every few seconds; it also checkpoints the SQLite WAL, which
        // otherwise grows without end (600 MiB in 13 minutes).
        self.server.store.flush_all().expect("flush");
    }
}

/// A request message with its header.
fn message(h: &Header, encode: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut msg = Vec::with_capacity(256);
    h.encode(&mut msg);
    encode(&mut msg);
    msg
}

/// Every message of the frames `out` holds, opened or verified with the
/// client's keys when it has them; and whether the engine closed.
fn responses(out: Vec<Outgoing>, keys: Option<(&Decryptor, &Signer, u64)>, gone: &mut bool) -> (Vec<Vec<u8>>, bool) {
    let mut msgs = Vec::new();
    let mut closed = false;
    let mut queue: Vec<Outgoing> = out;
    queue.reverse();
    while let Some(o) = queue.pop() {
        let frame = match o {
            Outgoing::Frame(f) => f,
            Outgoing::Protect(job) => {
                let w = job.run().expect("the server could not protect its own response");
                match w.transform {
                    Some(head) => {
                        let mut f = head.to_vec();
                        f.extend_from_slice(&w.body);
                        f
                    }
                    None => w.body,
                }
            }
            Outgoing::Delayed(_, inner) => {
                queue.push(*inner);
                continue;
            }
            Outgoing::Close => {
                closed = true;
                continue;
            }
        };
        let plain = if frame.starts_with(b"\xfdSMB") {
            let Some((opener, _, _)) = keys else { continue };
            opener.open(&frame).expect("a sealed response does not decrypt with the session's key")
        } else {
            frame
        };
        let mut at = 0;
        while plain.len() >= at + HEADER_LEN {
            let next = u32::from_le_bytes(plain[at + 20..at + 24].try_into().expect("4 bytes")) as usize;
            let end = if next == 0 { plain.len() } else { (at + next).min(plain.len()) };
            let m = plain[at..end].to_vec();
            if let Some((_, signer, sid)) = keys {
                let h = Header::decode(&m).expect("the server's own header");
                if std::env::var_os("SMBVAULT_FUZZ_DEBUG").is_some() {
                    let ok = signer.verify(&m).is_ok();
                    eprintln!(
                        "response {} {:?} flags {:#x} mid {} session {:#x} (ours {sid:#x}) verifies: {ok}",
                        h.command.name(),
                        h.status,
                        h.flags,
                        h.message_id,
                        h.session_id
                    );
                }
                // Once the session is gone (a failed re-authentication
                // removes it, MS-SMB2 3.3.5.5.3), signed requests naming it
                // are answered with their own signature echoed, as Samba
                // does: no key signs them.
                *gone |= h.session_id == sid
                    && matches!(h.status, NtStatus::USER_SESSION_DELETED | NtStatus::NETWORK_SESSION_EXPIRED);
                // A SESSION_SETUP on the session that fails is a failed
                // re-authentication, which ends the session too (found by
                // this target: the next signed request's answer echoed its
                // signature, rightly). Refusals that leave the session alone
                // (a bind) only cost a new connection here.
                *gone |= h.session_id == sid
                    && h.command == Command::SESSION_SETUP
                    && !matches!(h.status, NtStatus::SUCCESS | NtStatus::MORE_PROCESSING_REQUIRED);
                if h.is_signed() && h.session_id == sid && !*gone {
                    signer.verify(&m).expect("a signed response does not verify with the session's key");
                }
            }
            msgs.push(m);
            if next == 0 {
                break;
            }
            at = end;
        }
    }
    (msgs, closed)
}

impl Client {
    /// NEGOTIATE 3.1.1 (AES-128-GCM, AES-GMAC), SESSION_SETUP with
    /// NTLMv2, the client's key schedule (MS-SMB2 3.2.5.3.1), TREE_CONNECT
    /// to the share and to IPC$ (sealed).
    fn logon(w: &World, now: SystemTime) -> Self {
        let peer: SocketAddr = "127.0.0.1:50000".parse().expect("address");
        let mut conn = Connection::new(w.server.clone(), peer);
        let mut preauth = PreauthHash::new();
        let req = NegotiateRequest {
            security_mode: security_mode::SIGNING_ENABLED,
            capabilities: caps::LARGE_MTU | caps::ENCRYPTION,
            client_guid: Guid([9; 16]),
            dialects: vec![Dialect::SMB311],
            contexts: vec![
                NegContext { context_type: ctx::PREAUTH_INTEGRITY, data: negotiate::encode_preauth(&[3; 32]) },
                NegContext {
                    context_type: ctx::ENCRYPTION,
                    data: negotiate::encode_u16_list(&[CipherId::Aes128Gcm.wire_id()]),
                },
                NegContext {
                    context_type: ctx::SIGNING,
                    data: negotiate::encode_u16_list(&[SigningAlg::AesGmac.wire_id()]),
                },
            ],
        };
        let h = Header { command: Command::NEGOTIATE, credits: 64, ..Header::default() };
        let mut sent = message(&h, |o| req.encode(o));
        preauth.update(&sent);
        let (r, _) = responses(conn.handle_frame(now, &mut sent), None, &mut false);
        let resp = r.into_iter().next().expect("negotiate response");
        preauth.update(&resp);
        let neg = NegotiateResponse::decode(&resp).expect("negotiate response decodes");
        assert_eq!(neg.dialect, Dialect::SMB311);

        let rand = ClientRandom { client_challenge: [5; 8], session_key: Zeroizing::new([6; 16]) };
        let mut ntlm = NtlmClient::new(w.creds.clone(), "FUZZ", &w.host, rand, FileTime::from_system(now));
        let setup = |mid: u64, sid: u64, token: Vec<u8>| {
            let h = Header {
                command: Command::SESSION_SETUP,
                credits: 64,
                message_id: mid,
                session_id: sid,
                ..Header::default()
            };
            let req = SessionSetupRequest {
                flags: 0,
                security_mode: security_mode::SIGNING_ENABLED as u8,
                capabilities: 0,
                previous_session_id: 0,
                security_buffer: token,
            };
            message(&h, |o| req.encode(o))
        };
        let mut sent = setup(1, 0, ntlm.initial_token());
        preauth.update(&sent);
        let (r, _) = responses(conn.handle_frame(now, &mut sent), None, &mut false);
        let resp = r.into_iter().next().expect("session setup response");
        let h = Header::decode(&resp).expect("header");
        assert_eq!(h.status, NtStatus::MORE_PROCESSING_REQUIRED);
        preauth.update(&resp);
        let session_id = h.session_id;
        let ss = SessionSetupResponse::decode(&resp).expect("session setup response decodes");
        let token = ntlm.respond(&ss.security_buffer).expect("challenge");
        let mut sent = setup(2, session_id, token);
        preauth.update(&sent);
        let (r, _) = responses(conn.handle_frame(now, &mut sent), None, &mut false);
        let resp = r.into_iter().next().expect("session setup response");
        let h = Header::decode(&resp).expect("header");
        assert_eq!(h.status, NtStatus::SUCCESS, "the harness's logon failed");
        let ss = SessionSetupResponse::decode(&resp).expect("session setup response decodes");
        assert!(ss.session_flags & session_flags::ENCRYPT_DATA != 0, "encryption is on by default");
        let key = ntlm.session_key().expect("session key");
        let keys = SessionKeys::derive(key, KeyDerivation::Smb311(&preauth), Some(CipherId::Aes128Gcm));
        let signer = keys.signer(SigningAlg::AesGmac);
        signer.verify(&resp).expect("final SESSION_SETUP response signed with the session key");
        let sealer = Encryptor::new(keys.decrypt.as_ref().expect("c2s key"), [1; 16]);
        let opener = Decryptor::new(keys.encrypt.as_ref().expect("s2c key"));
        let mut c = Client {
            conn,
            session_id,
            trees: [0; 2],
            signer,
            sealer,
            opener,
            next_mid: 3,
            files: Vec::new(),
            inputs: 0,
            lost: false,
        };
        for (k, share) in [w.share.as_str(), "IPC$"].into_iter().enumerate() {
            let path = format!("\\\\{}\\{}", w.host, share);
            let h = Header {
                command: Command::TREE_CONNECT,
                credits: 64,
                message_id: c.next_mid,
                session_id,
                ..Header::default()
            };
            c.next_mid += 1;
            let msg = message(&h, |o| TreeConnectRequest { flags: 0, path }.encode(o));
            let mut frame = c.sealer.seal(session_id, &msg).expect("seal");
            let out = c.conn.handle_frame(now, &mut frame);
            let (r, _) = responses(out, Some((&c.opener, &c.signer, session_id)), &mut false);
            let h = Header::decode(r.first().expect("tree connect response")).expect("header");
            assert_eq!(h.status, NtStatus::SUCCESS, "tree connect to {share}");
            c.trees[k] = h.tree_id;
        }
        c
    }

    /// Fixes up, chains, protects and sends one input; remembers the
    /// FileIds of successful CREATEs. False when the engine closed or the
    /// session or a tree is gone (a LOGOFF, a TREE_DISCONNECT, a failed
    /// re-authentication): the next input gets a new connection.
    fn send(&mut self, now: SystemTime, control: u8, body: &[u8]) -> bool {
        let mode = control & ctl::MODE;
        let mut setups: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        let mut chain = if control & ctl::RAW != 0 {
            body.to_vec()
        } else {
            let msgs = split(body);
            let n = msgs.len();
            let mut chain = Vec::with_capacity(body.len() + 8 * n);
            for (k, m) in msgs.into_iter().enumerate() {
                let mut m = m.to_vec();
                self.fix(control, &mut m);
                // SESSION_SETUP requests naming a session, by MessageId, for the check below.
                let f = u32::from_le_bytes(m[16..20].try_into().expect("4 bytes"));
                if m[12..14] == [1, 0] && f & flags::RELATED_OPERATIONS == 0 && m[40..48] != [0; 8] {
                    setups.push((m[24..32].to_vec(), m[40..48].to_vec()));
                }
                if k + 1 < n {
                    while m.len() % 8 != 0 {
                        m.push(0);
                    }
                    let next = m.len() as u32;
                    m[20..24].copy_from_slice(&next.to_le_bytes());
                } else {
                    m[20..24].copy_from_slice(&[0; 4]);
                }
                if mode == 2 {
                    let f = u32::from_le_bytes(m[16..20].try_into().expect("4 bytes")) | flags::SIGNED;
                    m[16..20].copy_from_slice(&f.to_le_bytes());
                    let _ = self.signer.sign(&mut m);
                }
                chain.extend_from_slice(&m);
            }
            chain
        };
        let mut frame = match mode {
            0 | 1 => self.sealer.seal(self.session_id, &chain).expect("seal"),
            _ => std::mem::take(&mut chain),
        };
        if std::env::var_os("SMBVAULT_FUZZ_DEBUG").is_some() {
            eprintln!("input: mode {mode}, {} bytes, session {:#x}", chain.len().max(frame.len()), self.session_id);
        }
        let out = self.conn.handle_frame(now, &mut frame);
        let (msgs, closed) = responses(out, Some((&self.opener, &self.signer, self.session_id)), &mut self.lost);
        let mut gone = false;
        for m in msgs {
            // A SESSION_SETUP for a session answers for that session, not
            // another one of the connection (the bug fixed in
            // engine/connection/mod.rs `one`; fuzz/regressions/engine_frame).
            if m.len() >= HEADER_LEN && m[12..14] == [1, 0] && control & ctl::KEEP_MID == 0 {
                for (mid, sid) in &setups {
                    if m[24..32] == mid[..] {
                        assert_eq!(&m[40..48], &sid[..], "a SESSION_SETUP response names another session");
                    }
                }
            }
            // A successful CREATE response: FileId at body offset 64 (MS-SMB2 2.2.14).
            let Ok(h) = Header::decode(&m) else { continue };
            gone |= matches!(h.status, NtStatus::USER_SESSION_DELETED | NtStatus::NETWORK_SESSION_EXPIRED)
                || (h.command == Command::SESSION_SETUP
                    && h.session_id == self.session_id
                    && !matches!(h.status, NtStatus::SUCCESS | NtStatus::MORE_PROCESSING_REQUIRED))
                || (matches!(h.command, Command::LOGOFF | Command::TREE_DISCONNECT) && h.status == NtStatus::SUCCESS);
            if h.command == Command::CREATE && h.status == NtStatus::SUCCESS && m.len() >= HEADER_LEN + 80 {
                let id: [u8; 16] = m[HEADER_LEN + 64..HEADER_LEN + 80].try_into().expect("16 bytes");
                if self.files.len() == MAX_FILES {
                    self.files.remove(0);
                }
                self.files.push(id);
            }
        }
        !closed && !gone
    }

    /// The header fix-ups the control byte leaves on.
    fn fix(&mut self, control: u8, m: &mut [u8]) {
        m[..4].copy_from_slice(b"\xfeSMB");
        m[4..6].copy_from_slice(&64u16.to_le_bytes());
        let mut f = u32::from_le_bytes(m[16..20].try_into().expect("4 bytes"));
        f &= !(flags::SERVER_TO_REDIR | flags::SIGNED);
        m[16..20].copy_from_slice(&f.to_le_bytes());
        m[48..64].copy_from_slice(&[0; 16]);
        if control & ctl::KEEP_MID == 0 {
            let charge = u16::from_le_bytes([m[6], m[7]]).min(64);
            m[6..8].copy_from_slice(&charge.to_le_bytes());
            m[14..16].copy_from_slice(&64u16.to_le_bytes());
            m[24..32].copy_from_slice(&self.next_mid.to_le_bytes());
            self.next_mid += u64::from(charge.max(1));
        }
        if control & ctl::KEEP_SESSION == 0 {
            m[40..48].copy_from_slice(&self.session_id.to_le_bytes());
        }
        if control & ctl::KEEP_TREE == 0 && f & flags::ASYNC_COMMAND == 0 {
            let tree = self.trees[usize::from(control & ctl::IPC != 0)];
            m[36..40].copy_from_slice(&tree.to_le_bytes());
        }
        if control & ctl::KEEP_FILE == 0 && !self.files.is_empty() {
            let command = u16::from_le_bytes([m[12], m[13]]);
            // FileId's offset in each request body (MS-SMB2 2.2.15-2.2.39).
            let at = match command {
                6 | 7 | 10 | 11 | 14 | 15 | 18 => Some(8),
                8 | 9 | 17 => Some(16),
                16 => Some(24),
                _ => None,
            };
            if let Some(at) = at.map(|a| HEADER_LEN + a)
                && let Some(field) = m.get_mut(at..at + 16)
                && field.iter().any(|b| *b != 0xff)
            {
                // The input's FileId picks one of the opens; all-ones means
                // "the previous request's file" in a related compound.
                let pick = usize::from(field[0]) % self.files.len();
                field.copy_from_slice(&self.files[pick]);
            }
        }
    }
}

/// The messages of a compound by their NextCommand (each at least a
/// header; a shorter tail is padded with zeros).
fn split(body: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut rest = body;
    while out.len() < MAX_CHAIN {
        let next = rest.get(20..24).map_or(0, |b| u32::from_le_bytes(b.try_into().expect("4 bytes")) as usize);
        let take = if next >= HEADER_LEN && next < rest.len() { next } else { rest.len() };
        let mut m = rest[..take].to_vec();
        if m.len() < HEADER_LEN {
            m.resize(HEADER_LEN, 0);
        }
        out.push(m);
        rest = &rest[take..];
        if rest.is_empty() {
            break;
        }
    }
    out
}

static WORLD: Mutex<Option<World>> = Mutex::new(None);

/// The inputs the current connection has had, oldest first: a failure
/// depends on the state they left, so with `SMBVAULT_FUZZ_SEQUENCE=DIR` a
/// panic writes them to DIR as 00000, 00001, ... (replayed in that order
/// from `fuzz/regressions/engine_frame/`).
static HISTORY: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());

fn dump_history_on_panic() {
    let Some(dir) = std::env::var_os("SMBVAULT_FUZZ_SEQUENCE") else { return };
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let history = HISTORY.try_lock().map(|h| h.clone()).unwrap_or_default();
        let dir = std::path::PathBuf::from(&dir);
        let _ = std::fs::create_dir_all(&dir);
        for (k, input) in history.iter().enumerate() {
            let _ = std::fs::write(dir.join(format!("{k:05}")), input);
        }
        eprintln!("wrote the {} inputs of this connection to {}", history.len(), dir.display());
        previous(info);
    }));
}

fuzz_target!(
    // Set up before libFuzzer's per-input timeout starts counting (the
    // first logon hashes the administrator's password with Argon2).
    init: {
        dump_history_on_panic();
        let mut w = World::new();
        w.client();
        *WORLD.lock().unwrap_or_else(|e| e.into_inner()) = Some(w);
    },
    |data: &[u8]| {
    let Some((&control, body)) = data.split_first() else { return };
    let mut guard = WORLD.lock().unwrap_or_else(|e| e.into_inner());
    let w = guard.get_or_insert_with(World::new);
    let now = w.tick();
    let c = w.client();
    c.inputs += 1;
    if c.inputs == 1 {
        HISTORY.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }
    HISTORY.lock().unwrap_or_else(|e| e.into_inner()).push(data.to_vec());
    let alive = c.send(now, control, body);
    let out = if c.inputs % 64 == 0 { c.conn.tick(now) } else { Vec::new() };
    let keys = (&c.opener, &c.signer, c.session_id);
    let (_, closed) = responses(out, Some(keys), &mut c.lost);
    if !alive || closed || c.inputs >= RENEW {
        w.renew();
    }
});
