//! Logon latency with 1 organization x 1 user vs 100 organizations x 100
//! users: real NTLMv2 logons over SMB against the running server binary.
//!
//! Each logon is what a client does before it can touch a share: TCP
//! connect, NEGOTIATE (SMB 3.0.2), SESSION_SETUP with an NTLMSSP NEGOTIATE,
//! SESSION_SETUP with the AUTHENTICATE (NTLMv2 response, MS-NLMP 3.3.2).
//! The client below is just enough NTLM for that (raw NTLMSSP tokens, which
//! the server accepts without SPNEGO). Users are picked at random over all
//! organizations; every organization has the same user names, so names
//! only resolve through the domain.
//!
//! Run: `cargo build --release --bin smbvault --example logon_bench &&
//! target/release/examples/logon_bench [LOGONS]`. The binary is found next
//! to the example's directory, or at `$SMBVAULT_BIN`. Data directories go to
//! `$LOGON_BENCH_DIR`, else /dev/shm (creating 10,000 users is one fsync'd
//! transaction each; logons themselves write nothing synchronously).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use md5::Md5;
use rand::{Rng, RngCore};
use smbvault::accounts::{Access, Accounts, HashCost, NewShare, Role};
use smbvault::wire::Guid;
use smbvault::wire::header::{Command as Cmd, Header};
use smbvault::wire::negotiate::{Dialect, NegotiateRequest};
use smbvault::wire::session_setup::{SessionSetupRequest, SessionSetupResponse};

const PW: &str = "Bench-Passw0rd-1";
type BoxErr = Box<dyn std::error::Error>;

fn main() -> Result<(), BoxErr> {
    let logons: usize = std::env::args().nth(1).map(|a| a.parse()).transpose()?.unwrap_or(2000);
    let setups = [Setup::new(1, 1)?, Setup::new(100, 100)?];
    println!("{logons} timed logons per setup and name form, after 100 warm-up logons each;");
    println!("the two servers run side by side and take turns, so load on the machine hits both alike");
    let forms: [(&str, NameForm); 2] = [
        ("ORG\\user", |o, u| (format!("ORG{o}"), format!("u{u}"))),
        ("user@org", |o, u| (String::new(), format!("u{u}@ORG{o}"))),
    ];
    let mut rng = rand::thread_rng();
    for (name, form) in forms {
        let mut times = [Vec::with_capacity(logons), Vec::with_capacity(logons)];
        for i in 0..logons + 100 {
            for (s, t) in setups.iter().zip(times.iter_mut()) {
                let (domain, user) = form(rng.gen_range(0..s.orgs), rng.gen_range(0..s.users));
                let start = Instant::now();
                logon(s.server.addr, &domain, &user, PW)?;
                if i >= 100 {
                    t.push(start.elapsed());
                }
            }
        }
        for (s, t) in setups.iter().zip(times.iter_mut()) {
            t.sort();
            let pct = |p: f64| t[((t.len() - 1) as f64 * p).round() as usize];
            println!(
                "  {:>3} org(s) x {:>3} user(s)  {name:<9} median {:>8.2?}  p90 {:>8.2?}  p99 {:>8.2?}  max {:>8.2?}",
                s.orgs,
                s.users,
                pct(0.5),
                pct(0.9),
                pct(0.99),
                pct(1.0)
            );
        }
    }
    Ok(())
}

/// Builds (domain, user) for organization `o`, user `u`.
type NameForm = fn(usize, usize) -> (String, String);

/// A data directory with `orgs` x `users` and its running server.
struct Setup {
    orgs: usize,
    users: usize,
    server: Server,
    _dir: tempfile::TempDir,
}

impl Setup {
    fn new(orgs: usize, users: usize) -> Result<Self, BoxErr> {
        let base = std::env::var_os("LOGON_BENCH_DIR").map(PathBuf::from).unwrap_or_else(|| {
            let shm = Path::new("/dev/shm");
            if shm.is_dir() { shm.to_path_buf() } else { std::env::temp_dir() }
        });
        let dir = tempfile::tempdir_in(base)?;
        let config = write_config(dir.path())?;
        let t = Instant::now();
        populate(&config, orgs, users)?;
        println!("{orgs} org(s) x {users} user(s): built in {:.1?}", t.elapsed());
        let server = Server::start(&config)?;
        Ok(Self { orgs, users, server, _dir: dir })
    }
}

fn write_config(dir: &Path) -> Result<PathBuf, BoxErr> {
    let path = dir.join("smbvault.toml");
    let data = dir.join("data");
    std::fs::write(
        &path,
        format!("[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = {data:?}\n\n[audit]\nflush_interval_ms = 200\n"),
    )?;
    Ok(path)
}

fn bin() -> PathBuf {
    if let Some(p) = std::env::var_os("SMBVAULT_BIN") {
        return PathBuf::from(p);
    }
    // target/<profile>/examples/logon_bench -> target/<profile>/smbvault
    let exe = std::env::current_exe().unwrap_or_default();
    exe.parent().and_then(Path::parent).map(|d| d.join("smbvault")).unwrap_or_default()
}

/// `smbvault init`, then organizations, users and one share each through
/// the library (cheap Argon2: the admin hash plays no part in NTLM logons).
fn populate(config: &Path, orgs: usize, users: usize) -> Result<(), BoxErr> {
    let st = Command::new(bin()).arg("--config").arg(config).arg("init").stdout(Stdio::null()).status()?;
    if !st.success() {
        return Err(format!("{} init failed (build it: cargo build --release --bin smbvault)", bin().display()).into());
    }
    let cfg = smbvault::config::Config::load(config)?;
    let (mk, _) = smbvault::app::open_master_key(&cfg, false)?;
    let store = smbvault::app::open_store(&cfg, &mk, false)?;
    let prov = smbvault::app::DeferredProvisioner { keys: Some(store) };
    let acc = Accounts::open(&cfg.server.data_dir.join("accounts.db"), &mk, &cfg.accounts)?
        .with_hash_cost(HashCost::InsecureFast);
    for o in 0..orgs {
        let org = acc.create_org(&format!("ORG{o}"), &prov)?;
        for u in 0..users {
            acc.add_user(org.id, &format!("u{u}"), Role::Member, PW)?;
        }
        let share = NewShare {
            org: org.id,
            name: format!("share{o}"),
            comment: String::new(),
            encryption: None,
            default_access: Access::ReadWrite,
        };
        acc.add_share(&share, &prov)?;
    }
    Ok(())
}

/// The server process.
struct Server {
    child: Child,
    addr: SocketAddr,
}

impl Server {
    fn start(config: &Path) -> Result<Self, BoxErr> {
        let mut child = Command::new(bin())
            .arg("--config")
            .arg(config)
            .arg("serve")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        let out = child.stdout.take().ok_or("no stdout")?;
        let mut lines = BufReader::new(out).lines();
        let addr = loop {
            let line = lines.next().ok_or("server exited before listening")??;
            if let Some(a) = line.strip_prefix("smbvault listening on ") {
                break a.trim().parse()?;
            }
        };
        // Keep draining stdout so the server never blocks on it.
        std::thread::spawn(move || lines.for_each(drop));
        Ok(Self { child, addr })
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let _ = self.child.wait();
    }
}

/// One SMB connection, just enough for NEGOTIATE and SESSION_SETUP.
struct Client {
    tcp: TcpStream,
    message_id: u64,
    session_id: u64,
}

impl Client {
    /// Sends one request and returns the whole response message.
    fn call(&mut self, command: Cmd, body: impl FnOnce(&mut Vec<u8>)) -> Result<(Header, Vec<u8>), BoxErr> {
        let mut msg = Vec::with_capacity(512);
        let hdr = Header {
            command,
            credits: 32,
            credit_charge: 1,
            message_id: self.message_id,
            session_id: self.session_id,
            ..Header::default()
        };
        hdr.encode(&mut msg);
        body(&mut msg);
        self.message_id += 1;
        // Direct TCP transport (MS-SMB2 2.1): a zero byte and a 24-bit length.
        let len = u32::try_from(msg.len())?;
        self.tcp.write_all(&len.to_be_bytes())?;
        self.tcp.write_all(&msg)?;
        let mut len = [0u8; 4];
        self.tcp.read_exact(&mut len)?;
        let mut resp = vec![0u8; u32::from_be_bytes(len) as usize & 0x00ff_ffff];
        self.tcp.read_exact(&mut resp)?;
        Ok((Header::decode(&resp)?, resp))
    }
}

/// A complete logon; an error unless the server says STATUS_SUCCESS.
fn logon(addr: SocketAddr, domain: &str, user: &str, password: &str) -> Result<(), BoxErr> {
    let tcp = TcpStream::connect(addr)?;
    tcp.set_nodelay(true)?;
    let mut c = Client { tcp, message_id: 0, session_id: 0 };
    let mut guid = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut guid);
    let neg = NegotiateRequest {
        security_mode: 1,   // signing enabled
        capabilities: 0x40, // SMB2_GLOBAL_CAP_ENCRYPTION: the default policy requires it
        client_guid: Guid(guid),
        dialects: vec![Dialect::SMB202, Dialect::SMB21, Dialect::SMB30, Dialect::SMB302],
        contexts: Vec::new(),
    };
    let (h, _) = c.call(Cmd::NEGOTIATE, |m| neg.encode(m))?;
    check(&h, 0)?;
    let (h, resp) = c.call(Cmd::SESSION_SETUP, |m| setup(ntlm_negotiate()).encode(m))?;
    check(&h, 0xC000_0016)?; // STATUS_MORE_PROCESSING_REQUIRED
    c.session_id = h.session_id;
    let challenge = SessionSetupResponse::decode(&resp)?.security_buffer;
    let auth = ntlm_authenticate(&challenge, domain, user, password)?;
    let (h, _) = c.call(Cmd::SESSION_SETUP, |m| setup(auth).encode(m))?;
    check(&h, 0)
}

fn check(h: &Header, want: u32) -> Result<(), BoxErr> {
    if h.status.0 != want {
        return Err(format!("{:?}: status {:#010x}, expected {want:#010x}", h.command, h.status.0).into());
    }
    Ok(())
}

fn setup(token: Vec<u8>) -> SessionSetupRequest {
    SessionSetupRequest { security_mode: 1, security_buffer: token, ..SessionSetupRequest::default() }
}

/// NegotiateFlags (MS-NLMP 2.2.2.5): UNICODE, REQUEST_TARGET, NTLM,
/// ALWAYS_SIGN, EXTENDED_SESSIONSECURITY, TARGET_INFO, 128, 56.
const NTLM_FLAGS: u32 = 0x1 | 0x4 | 0x200 | 0x8000 | 0x8_0000 | 0x80_0000 | 0x2000_0000 | 0x8000_0000;

/// NEGOTIATE_MESSAGE (MS-NLMP 2.2.1.1) without domain or workstation.
fn ntlm_negotiate() -> Vec<u8> {
    let mut m = b"NTLMSSP\0".to_vec();
    m.extend_from_slice(&1u32.to_le_bytes());
    m.extend_from_slice(&NTLM_FLAGS.to_le_bytes());
    m.extend_from_slice(&[0u8; 16]);
    m
}

fn utf16(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(u16::to_le_bytes).collect()
}

fn hmac_md5(key: &[u8], parts: &[&[u8]]) -> [u8; 16] {
    let mut m = <Hmac<Md5> as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!("HMAC takes any key"));
    for p in parts {
        m.update(p);
    }
    m.finalize().into_bytes().into()
}

/// AUTHENTICATE_MESSAGE (MS-NLMP 2.2.1.3) with an NTLMv2 response (3.3.2)
/// to the server's CHALLENGE_MESSAGE (2.2.1.2).
fn ntlm_authenticate(challenge: &[u8], domain: &str, user: &str, password: &str) -> Result<Vec<u8>, BoxErr> {
    let field = |at: usize| -> Result<&[u8], BoxErr> {
        let b = challenge.get(at..at + 8).ok_or("short CHALLENGE")?;
        let (len, off) = (usize::from(u16::from_le_bytes([b[0], b[1]])), u32::from_le_bytes([b[4], b[5], b[6], b[7]]));
        Ok(challenge.get(off as usize..off as usize + len).ok_or("bad CHALLENGE field")?)
    };
    let server_challenge = challenge.get(24..32).ok_or("short CHALLENGE")?;
    let target_info = field(40)?;
    let nt = smbvault::accounts::password::nt_hash(password);
    let owf = hmac_md5(&nt[..], &[&utf16(&(user.to_uppercase() + domain))]);
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?;
    let filetime = (now.as_secs() + 11_644_473_600) * 10_000_000 + u64::from(now.subsec_nanos() / 100);
    let mut blob = vec![1, 1, 0, 0, 0, 0, 0, 0];
    blob.extend_from_slice(&filetime.to_le_bytes());
    let mut client_challenge = [0u8; 8];
    rand::thread_rng().fill_bytes(&mut client_challenge);
    blob.extend_from_slice(&client_challenge);
    blob.extend_from_slice(&[0u8; 4]);
    blob.extend_from_slice(target_info);
    blob.extend_from_slice(&[0u8; 4]);
    let proof = hmac_md5(&owf, &[server_challenge, &blob]);
    let nt_response = [&proof[..], &blob].concat();
    let payloads = [vec![0u8; 24], nt_response, utf16(domain), utf16(user), utf16("BENCH"), Vec::new()];
    let mut m = b"NTLMSSP\0".to_vec();
    m.extend_from_slice(&3u32.to_le_bytes());
    let mut off = 64u32;
    for p in &payloads {
        let len = u16::try_from(p.len())?;
        m.extend_from_slice(&len.to_le_bytes());
        m.extend_from_slice(&len.to_le_bytes());
        m.extend_from_slice(&off.to_le_bytes());
        off += u32::from(len);
    }
    m.extend_from_slice(&NTLM_FLAGS.to_le_bytes());
    for p in &payloads {
        m.extend_from_slice(p);
    }
    Ok(m)
}
