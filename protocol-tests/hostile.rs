//! Issue 14: hostile clients against a real server, each while a
//! well-behaved smbclient downloads a file beside it. For every attack the
//! test asserts that the server stays alive, that its resident memory
//! (VmRSS in /proc/PID/status) grows by less than [`RSS_GROWTH_MAX`], that
//! the limit answered as configured, and that the victim's throughput
//! stays at half its unattacked throughput or more, measured in the same
//! test just before (best of three downloads each). Attackers use other loopback addresses (127.0.0.2…)
//! than the victim (127.0.0.1), as other hosts would.
//!
//! The attacks are scaled to a 2-core CI machine and bounded in time; the
//! tests run one at a time (a shared lock), so that one attack's load does
//! not count against another's victim.

mod common;
// The load client (raw requests, compounds, a socket that is never read).
#[path = "client/mod.rs"]
#[allow(dead_code, unused_imports, reason = "the hostile tests use part of the client's API")]
mod client;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use client::{Config, CreateSpec, Error};
use common::*;
use smbvault::wire::NtStatus;

/// The most the server's VmRSS may grow during an attack. Each attack
/// alone would take far more without its limit (an unread-READ attacker
/// pinned 8 MiB per request: 512 MiB per connection at 8192 credits).
const RSS_GROWTH_MAX: u64 = 160 * 1024 * 1024;
/// The victim downloads this much per run.
const VICTIM_FILE: usize = 48 * 1024 * 1024;

static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// A server with `server` lines added to `[server]` and `limits` as `[limits]`,
/// user alice, and the victim's file in place.
fn start(server: &[&str], limits: &[&str]) -> TestServer {
    let opts = Options { extra: vec![format!("[limits]\n{}\n", limits.join("\n"))], ..Options::default() };
    let mut s = TestServer::unstarted(opts);
    let cfg = std::fs::read_to_string(&s.config).unwrap();
    let cfg = cfg.replacen("[server]\n", &format!("[server]\n{}\n", server.join("\n")), 1);
    std::fs::write(&s.config, cfg).unwrap();
    s.spawn();
    s.add_user("DEFAULT\\alice", PASS);
    let src = s.dir.path().join("victim.bin");
    random_file(&src, VICTIM_FILE, 14);
    let o = s.smbclient("share", "DEFAULT\\alice", PASS, &[], &format!("put {} victim.bin", src.display()));
    assert!(o.status.success(), "put: {}", text(&o));
    s
}

/// One smbclient download of the victim file: MiB/s.
fn victim_once(s: &TestServer) -> f64 {
    let t = Instant::now();
    let o = s.smbclient("share", "DEFAULT\\alice", PASS, &[], "get victim.bin /dev/null");
    assert!(o.status.success(), "victim's download failed: {}", text(&o));
    VICTIM_FILE as f64 / (1024.0 * 1024.0) / t.elapsed().as_secs_f64()
}

/// The best of three downloads (MiB/s): the machine is shared (CI, other
/// builds), and an attack that hurts slows every run, noise only some.
fn victim(s: &TestServer) -> f64 {
    (0..3).map(|_| victim_once(s)).fold(0.0, f64::max)
}

/// The server's VmRSS in bytes.
fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("server process gone");
    let kb = status.lines().find_map(|l| l.strip_prefix("VmRSS:")).expect("VmRSS");
    kb.trim().trim_end_matches("kB").trim().parse::<u64>().unwrap() * 1024
}

/// Samples the server's VmRSS every 50 ms until dropped; `peak()` is the highest.
struct RssWatch {
    peak: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl RssWatch {
    fn start(pid: u32) -> Self {
        let peak = Arc::new(AtomicU64::new(rss(pid)));
        let stop = Arc::new(AtomicBool::new(false));
        let (p, st) = (peak.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !st.load(Ordering::Relaxed) {
                p.fetch_max(rss(pid), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        Self { peak, stop, thread: Some(thread) }
    }

    fn peak(&self) -> u64 {
        self.peak.load(Ordering::Relaxed)
    }
}

impl Drop for RssWatch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Runs `attack` on its own runtime thread while the victim downloads,
/// and checks the three figures. `attack` gets a flag that says stop.
fn under_attack<F>(s: &TestServer, name: &str, attack: F)
where
    F: FnOnce(Arc<AtomicBool>) + Send + 'static,
{
    let pid = s.pid().expect("server pid");
    let calm = victim(s);
    let before = rss(pid);
    let watch = RssWatch::start(pid);
    let stop = Arc::new(AtomicBool::new(false));
    let st = stop.clone();
    let attacker = std::thread::spawn(move || attack(st));
    // Let the attack build up before the victim starts.
    std::thread::sleep(Duration::from_secs(3));
    let attacked = victim(s);
    let peak = watch.peak();
    stop.store(true, Ordering::Relaxed);
    attacker.join().expect("attacker panicked");
    drop(watch);
    let growth = peak.saturating_sub(before);
    eprintln!(
        "{name}: victim {calm:.0} MiB/s alone, {attacked:.0} MiB/s under attack ({:.0} %); server RSS {} MiB -> peak {} MiB",
        100.0 * attacked / calm,
        before >> 20,
        peak >> 20
    );
    assert!(s.pid().is_some_and(|p| std::path::Path::new(&format!("/proc/{p}")).exists()), "{name}: server died");
    assert!(
        growth < RSS_GROWTH_MAX,
        "{name}: server RSS grew by {} MiB (limit {} MiB)",
        growth >> 20,
        RSS_GROWTH_MAX >> 20
    );
    assert!(attacked >= calm * 0.5, "{name}: victim at {attacked:.1} MiB/s, under half of {calm:.1} MiB/s");
    // And the server still serves a new client.
    let o = s.smbclient("share", "DEFAULT\\alice", PASS, &[], "ls");
    assert!(o.status.success(), "{name}: server no longer serves: {}", text(&o));
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

fn client_config(s: &TestServer) -> Config {
    let mut c = Config::new(SocketAddr::from(([127, 0, 0, 1], s.port)), "alice", "DEFAULT", PASS);
    c.timeout = Duration::from_secs(30);
    c
}

/// A TCP connection to the server from `from` (another loopback address).
fn connect_from(from: [u8; 4], port: u16) -> std::io::Result<TcpStream> {
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
    sock.bind(&SocketAddr::from((from, 0)).into())?;
    sock.connect(&SocketAddr::from(([127, 0, 0, 1], port)).into())?;
    Ok(sock.into())
}

/// True once the server has closed `c` (end of stream or reset).
fn closed_by_server(c: &mut TcpStream) -> bool {
    c.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
    let mut b = [0u8; 64];
    match c.read(&mut b) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => !matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut),
    }
}

/// Waits until every connection is closed by the server, at most `limit`.
fn all_closed_within(conns: &mut [TcpStream], limit: Duration) -> (usize, Duration) {
    let t = Instant::now();
    let mut open: Vec<usize> = (0..conns.len()).collect();
    while !open.is_empty() && t.elapsed() < limit {
        open.retain(|&i| !closed_by_server(&mut conns[i]));
        std::thread::sleep(Duration::from_millis(100));
    }
    (open.len(), t.elapsed())
}

/// 1,000 silent sockets from one address: at most `max_connections_per_ip`
/// are kept, and those go at the handshake timeout.
#[test]
fn idle_sockets() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let s = start(&["max_connections_per_ip = 100", "handshake_timeout_secs = 8"], &[]);
    let port = s.port;
    let kept = Arc::new(AtomicU64::new(u64::MAX));
    let k = kept.clone();
    under_attack(&s, "1000 idle sockets", move |stop| {
        let mut conns: Vec<TcpStream> = (0..1000).filter_map(|_| connect_from([127, 0, 0, 2], port).ok()).collect();
        assert_eq!(conns.len(), 1000, "the kernel refused some connections");
        std::thread::sleep(Duration::from_millis(500));
        let mut open = 0;
        for c in conns.iter_mut() {
            if !closed_by_server(c) {
                open += 1;
            }
        }
        k.store(open, Ordering::Relaxed);
        while !stop.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(50));
        }
        // The ones kept go when the handshake timeout strikes.
        let (left, took) = all_closed_within(&mut conns, Duration::from_secs(15));
        assert_eq!(left, 0, "{left} silent connections still open after {took:?}");
    });
    let kept = kept.load(Ordering::Relaxed);
    assert!(kept <= 100, "{kept} connections from one address kept (limit 100)");
    assert!(kept >= 90, "only {kept} connections kept: the cap should admit 100");
}

/// Half-sent frames: a length prefix and then a byte now and then, or a
/// whole header and a trickle of body. The frame deadlines close them.
#[test]
fn slowloris() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let s = start(&["header_timeout_secs = 2", "frame_timeout_secs = 4", "handshake_timeout_secs = 60"], &[]);
    let port = s.port;
    under_attack(&s, "slowloris", move |stop| {
        // Round after round of 200 slow senders while the victim downloads.
        while !stop.load(Ordering::Relaxed) {
            slow_senders(port);
        }
    });
}

/// 200 slow senders; all must be closed by the server within 12 s.
fn slow_senders(port: u16) {
    {
        let mut conns: Vec<TcpStream> = (0..200).map(|_| connect_from([127, 0, 0, 3], port).unwrap()).collect();
        let began = Instant::now();
        // Even connections: an 8 MiB frame announced, then one byte a second.
        // Odd: the prefix and a whole 64-byte header at once, then the same trickle.
        for (i, c) in conns.iter_mut().enumerate() {
            c.write_all(&[0, 0x80, 0, 0]).unwrap();
            if i % 2 == 1 {
                let mut hdr = vec![0u8; 64];
                hdr[..4].copy_from_slice(b"\xfeSMB");
                c.write_all(&hdr).unwrap();
            }
        }
        let mut open: Vec<usize> = (0..conns.len()).collect();
        while !open.is_empty() && began.elapsed() < Duration::from_secs(12) {
            for &i in &open {
                let _ = conns[i].write_all(&[0]);
            }
            std::thread::sleep(Duration::from_millis(500));
            open.retain(|&i| !closed_by_server(&mut conns[i]));
        }
        assert!(open.is_empty(), "{} slow senders still connected after {:?}", open.len(), began.elapsed());
        eprintln!("slowloris: all 200 slow senders closed after {:?}", began.elapsed());
    }
}

/// Two logged-on clients that ask for 8 MiB READs, alone and in compounds
/// of four, with every credit they can get, and never read their socket.
/// The server stops reading them once `send_queue_bytes` of answers wait.
#[test]
fn unread_responses() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let s = start(&[], &[]);
    let cfg = client_config(&s);
    // The compound budget: one frame of answers carries one 8 MiB READ;
    // the others in the chain fail with STATUS_INSUFFICIENT_RESOURCES.
    let statuses = rt().block_on(async {
        let session = client::connect(&cfg).await?;
        let tree = session.tree_connect("share").await?;
        let f = tree.create("sparse.bin", &CreateSpec::overwrite()).await?;
        tree.write(f.file_id, (1 << 30) - 1, b"x").await?;
        let reads = (0..4).map(|k| tree.read_request(f.file_id, k << 23, 8 << 20)).collect();
        let out = session.connection().compound(reads, false).await?;
        Ok::<_, Error>(out.iter().map(|r| r.status()).collect::<Vec<_>>())
    });
    let statuses = statuses.expect("compound of READs");
    assert_eq!(
        statuses,
        [
            NtStatus::SUCCESS,
            NtStatus::INSUFFICIENT_RESOURCES,
            NtStatus::INSUFFICIENT_RESOURCES,
            NtStatus::INSUFFICIENT_RESOURCES
        ]
    );
    under_attack(&s, "unread 8 MiB READs", move |stop| {
        let rt = rt();
        rt.block_on(async move {
            let mut tasks = Vec::new();
            for k in 0..2u64 {
                let cfg = cfg.clone();
                tasks.push(tokio::spawn(async move {
                    let session = client::connect(&cfg).await?;
                    let tree = session.tree_connect("share").await?;
                    let f = tree.create("sparse.bin", &CreateSpec::read()).await?;
                    let conn = session.connection().clone();
                    conn.set_credit_target(8192);
                    while conn.credits() < 8000 {
                        tree.read(f.file_id, 0, 1).await?;
                    }
                    conn.stall_reading();
                    // As many 8 MiB READs as the credits allow (about 62
                    // per connection: 512 MiB asked for), then it waits.
                    let mut off = 0u64;
                    loop {
                        if k == 0 {
                            tree.send_read(f.file_id, off, 8 << 20).await?;
                        } else {
                            let reads =
                                (0..4).map(|j| tree.read_request(f.file_id, off + (j << 23), 8 << 20)).collect();
                            conn.send_compound(reads, false).await?;
                        }
                        off = (off + (32 << 20)) % (1 << 30);
                    }
                    #[allow(unreachable_code)]
                    Ok::<(), Error>(())
                }));
            }
            while !stop.load(Ordering::Relaxed) {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            for t in &tasks {
                assert!(!t.is_finished(), "an attacker ended early: the server closed it?");
            }
            for t in tasks {
                t.abort();
            }
        });
        rt.shutdown_background();
    });
}

/// SESSION_SETUP floods: logons started and never finished. Each
/// connection gets `sessions_in_progress` of them, then
/// STATUS_INSUFFICIENT_RESOURCES; they expire after
/// `session_setup_timeout_secs`, and then new ones are admitted again.
#[test]
fn session_setup_flood() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let s = start(&[], &["sessions_in_progress = 8", "session_setup_timeout_secs = 3"]);
    let cfg = client_config(&s);
    let rt1 = rt();
    let (conn, first) = rt1
        .block_on(async {
            let conn = client::negotiated(&cfg).await?;
            let mut out = Vec::new();
            for _ in 0..12 {
                out.push(client::start_logon(&conn, &cfg).await?);
            }
            Ok::<_, Error>((conn, out))
        })
        .expect("logons");
    let more = NtStatus::MORE_PROCESSING_REQUIRED;
    assert_eq!(first[..8], [more; 8]);
    assert_eq!(first[8..], [NtStatus::INSUFFICIENT_RESOURCES; 4]);
    std::thread::sleep(Duration::from_secs(5));
    let again = rt1.block_on(client::start_logon(&conn, &cfg)).expect("logon after expiry");
    assert_eq!(again, more, "unfinished logons should have expired");
    drop(conn);
    drop(rt1);
    under_attack(&s, "session-setup flood", move |stop| {
        let rt = rt();
        let refused = rt.block_on(async move {
            let mut refused = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let conns = (0..4).map(|_| {
                    let cfg = cfg.clone();
                    tokio::spawn(async move {
                        let conn = client::negotiated(&cfg).await?;
                        let mut n = 0u64;
                        for _ in 0..40 {
                            if client::start_logon(&conn, &cfg).await? == NtStatus::INSUFFICIENT_RESOURCES {
                                n += 1;
                            }
                        }
                        Ok::<u64, Error>(n)
                    })
                });
                for c in conns.collect::<Vec<_>>() {
                    refused += c.await.unwrap().expect("flooding connection");
                }
            }
            refused
        });
        assert!(refused > 0, "the flood was never refused");
    });
}

/// Opens and tree connects until the limits answer: exactly
/// `opens_per_session` opens, then STATUS_TOO_MANY_OPENED_FILES;
/// `trees_per_session` trees, then STATUS_INSUFFICIENT_RESOURCES; and a
/// flood of both beside the victim.
#[test]
fn opens_and_trees() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let s = start(&[], &["opens_per_session = 300", "trees_per_session = 10"]);
    let cfg = client_config(&s);
    let counts = rt().block_on(async {
        let session = client::connect(&cfg).await?;
        let tree = session.tree_connect("share").await?;
        tree.mkdir("many").await?;
        let mut opened = 0;
        let mut refusal = None;
        for i in 0..400 {
            match tree.create(&format!("many\\f{i}"), &CreateSpec::overwrite()).await {
                Ok(_) => opened += 1,
                Err(Error::Status { status, .. }) => {
                    refusal.get_or_insert(status);
                }
                Err(e) => return Err(e),
            }
        }
        let mut trees = 1;
        let mut tree_refusal = None;
        for _ in 0..15 {
            match session.tree_connect("share").await {
                Ok(_) => trees += 1,
                Err(Error::Status { status, .. }) => {
                    tree_refusal.get_or_insert(status);
                }
                Err(e) => return Err(e),
            }
        }
        Ok::<_, Error>((opened, refusal, trees, tree_refusal))
    });
    let (opened, refusal, trees, tree_refusal) = counts.expect("opens and trees");
    // The victim's file and `many` are not open: 300 opens of this session.
    assert_eq!((opened, refusal), (300, Some(NtStatus::TOO_MANY_OPENED_FILES)));
    assert_eq!((trees, tree_refusal), (10, Some(NtStatus::INSUFFICIENT_RESOURCES)));
    under_attack(&s, "opens and trees flood", move |stop| {
        let rt = rt();
        rt.block_on(async move {
            // Two flooding clients: each CREATE costs CPU like anyone's, and
            // on two cores more would measure CPU sharing, not the limits.
            let mut tasks = Vec::new();
            for k in 0..2 {
                let cfg = cfg.clone();
                let stop = stop.clone();
                tasks.push(tokio::spawn(async move {
                    while !stop.load(Ordering::Relaxed) {
                        let session = client::connect(&cfg).await?;
                        let tree = session.tree_connect("share").await?;
                        for i in 0..320 {
                            let _ = tree.create(&format!("many\\f{}", (i + k * 7) % 300), &CreateSpec::read()).await;
                        }
                        for _ in 0..12 {
                            let _ = session.tree_connect("share").await;
                        }
                    }
                    Ok::<(), Error>(())
                }));
            }
            for t in tasks {
                t.await.unwrap().expect("flooding client");
            }
        });
    });
}

/// Requests that wait (CHANGE_NOTIFY here) and change-notify watches:
/// `notify_watches_per_connection` directory handles get a watch, the next
/// gets STATUS_INSUFFICIENT_RESOURCES; once `pending_per_connection`
/// requests wait, the next is refused the same way.
#[test]
fn waiting_requests() {
    use smbvault::wire::change_notify::ChangeNotifyRequest;
    use smbvault::wire::header::Command;
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let s = start(&[], &["pending_per_connection = 8", "notify_watches_per_connection = 4"]);
    let cfg = client_config(&s);
    let (watches, waits) = rt()
        .block_on(async {
            let session = client::connect(&cfg).await?;
            let tree = session.tree_connect("share").await?;
            let conn = session.connection().clone();
            let mut dirs = Vec::new();
            for i in 0..6 {
                tree.mkdir(&format!("w{i}")).await?;
                dirs.push(tree.create(&format!("w{i}"), &CreateSpec::directory()).await?.file_id);
            }
            // A refusal comes at once; a request that waits gets only an
            // interim response (no final one within the half second).
            let notify = |file_id| {
                let req = ChangeNotifyRequest { flags: 0, output_buffer_length: 4096, file_id, completion_filter: 3 };
                client::Request::new(Command::CHANGE_NOTIFY, tree.id(), |o| req.encode(o)).expect(4096)
            };
            let outcome = |p: client::Pending| async move {
                match tokio::time::timeout(Duration::from_millis(500), p.wait()).await {
                    Err(_) => None,
                    Ok(r) => Some(r.map(|r| r.status()).map_err(|e| e.to_string())),
                }
            };
            let mut watches = Vec::new();
            for d in &dirs {
                watches.push(outcome(conn.send(notify(*d)).await?).await);
            }
            let mut waits = Vec::new();
            for _ in 0..6 {
                waits.push(outcome(conn.send(notify(dirs[0])).await?).await);
            }
            Ok::<_, Error>((watches, waits))
        })
        .expect("notify requests");
    let refused = Some(Ok(NtStatus::INSUFFICIENT_RESOURCES));
    assert_eq!(watches, [None, None, None, None, refused.clone(), refused.clone()], "one watch per directory");
    assert_eq!(waits, [None, None, None, None, refused.clone(), refused], "requests waiting");
}

/// `server.idle_timeout_secs`: a logged-on connection with nothing open
/// is closed when idle that long; one holding an open file is not (idle
/// with open handles is normal: Explorer windows, Office documents).
#[test]
fn idle_after_logon() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let s = start(&["idle_timeout_secs = 3"], &[]);
    let cfg = client_config(&s);
    let (bare, holding) = rt()
        .block_on(async {
            let bare = client::connect(&cfg).await?;
            let bare_tree = bare.tree_connect("share").await?;
            let holder = client::connect(&cfg).await?;
            let tree = holder.tree_connect("share").await?;
            let f = tree.create("victim.bin", &CreateSpec::read()).await?;
            tokio::time::sleep(Duration::from_secs(6)).await;
            let bare = bare_tree.list("").await.map(|_| ()).map_err(|e| e.to_string());
            let holding = tree.read(f.file_id, 0, 16).await.map(|_| ()).map_err(|e| e.to_string());
            Ok::<_, Error>((bare, holding))
        })
        .expect("idle clients");
    assert!(bare.is_err(), "an idle connection with nothing open outlived idle_timeout_secs");
    assert_eq!(holding, Ok(()), "a connection holding an open file was closed for idleness");
}

/// `server.send_timeout_secs`: a client that stops taking its responses
/// is disconnected (its queued answers freed), not kept forever.
#[test]
fn stuck_reader_is_dropped() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let s = start(&["send_timeout_secs = 3"], &[]);
    let cfg = client_config(&s);
    let metrics_port = s.metrics_port;
    let connections = move || {
        let mut c = TcpStream::connect(("127.0.0.1", metrics_port)).unwrap();
        c.write_all(b"GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n").unwrap();
        let mut body = String::new();
        c.read_to_string(&mut body).unwrap();
        let line = body.lines().find(|l| l.starts_with("smbvault_connections ")).expect("connections gauge");
        line.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap()
    };
    let rt = rt();
    let session = rt
        .block_on(async {
            let session = client::connect(&cfg).await?;
            let tree = session.tree_connect("share").await?;
            let f = tree.create("sparse.bin", &CreateSpec::overwrite()).await?;
            tree.write(f.file_id, (1 << 30) - 1, b"x").await?;
            // Credits for six 8 MiB READs first: a stalled client gets none back.
            let conn = session.connection();
            conn.set_credit_target(2048);
            while conn.credits() < 1024 {
                tree.read(f.file_id, 0, 1).await?;
            }
            conn.stall_reading();
            for k in 0..6 {
                tree.send_read(f.file_id, k << 23, 8 << 20).await?;
            }
            Ok::<_, Error>(session)
        })
        .expect("stalled client");
    assert!(connections() >= 1, "the stalled client is not connected");
    let t = Instant::now();
    while connections() > 0 && t.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(connections(), 0, "a client that takes nothing is still connected after {:?}", t.elapsed());
    eprintln!("stuck reader dropped after {:?}", t.elapsed());
    drop(session);
}

/// LOCK requests of the largest size MS-SMB2 2.2.26 allows: 65,535
/// elements (1.5 MiB, 24 credits). With the default `[locks]` they are
/// refused whole before anything is locked (elements_per_request 4,096);
/// with that limit raised to the maximum, the per-open cap (10,000)
/// refuses them, again with nothing held. Then two clients send them in a
/// loop beside the victim's download.
#[test]
fn full_size_lock_requests() {
    use smbvault::wire::header::Command;
    use smbvault::wire::lock::{LockElement, LockRequest, flags};
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    fn request(tree_id: u32, file_id: smbvault::wire::create::FileId, base: u64) -> client::Request {
        let locks = (0..65_535u64)
            .map(|i| LockElement {
                offset: base + i * 2,
                length: 1,
                flags: flags::EXCLUSIVE_LOCK | flags::FAIL_IMMEDIATELY,
            })
            .collect();
        let req = LockRequest { lock_sequence_number: 0, lock_sequence_index: 0, file_id, locks };
        client::Request::new(Command::LOCK, tree_id, |o| req.encode(o))
    }
    for (extra, what) in [(None, "default limits"), (Some("elements_per_request = 65535"), "per-open cap")] {
        let mut s = start(&[], &[]);
        if let Some(line) = extra {
            // `[locks]` is its own section: restart with it appended.
            s.stop();
            let cfg = std::fs::read_to_string(&s.config).unwrap();
            std::fs::write(&s.config, format!("{cfg}\n[locks]\n{line}\n")).unwrap();
            s.spawn();
        }
        let cfg = client_config(&s);
        let (first, small) = rt()
            .block_on(async {
                let session = client::connect(&cfg).await?;
                let tree = session.tree_connect("share").await?;
                let open = tree.create("locked.bin", &CreateSpec::overwrite()).await?;
                let t = Instant::now();
                let first = tree.connection().call(request(tree.id(), open.file_id, 0)).await?.status();
                eprintln!("{what}: a 65,535-element LOCK answered {first:?} in {:?}", t.elapsed());
                // Nothing was locked: a one-element lock on the first range works.
                let one = LockRequest {
                    lock_sequence_number: 0,
                    lock_sequence_index: 0,
                    file_id: open.file_id,
                    locks: vec![LockElement {
                        offset: 0,
                        length: 1,
                        flags: flags::EXCLUSIVE_LOCK | flags::FAIL_IMMEDIATELY,
                    }],
                };
                let small = tree
                    .connection()
                    .call(client::Request::new(Command::LOCK, tree.id(), |o| one.encode(o)))
                    .await?
                    .status();
                Ok::<_, Error>((first, small))
            })
            .expect("full-size LOCK");
        assert_eq!(first, NtStatus::INSUFFICIENT_RESOURCES, "{what}");
        assert_eq!(small, NtStatus::SUCCESS, "{what}: the refused request must not have locked anything");
        if extra.is_some() {
            continue;
        }
        under_attack(&s, "65,535-element LOCK requests", move |stop| {
            rt().block_on(async move {
                let mut tasks = Vec::new();
                for k in 0..2u64 {
                    let cfg = cfg.clone();
                    let stop = stop.clone();
                    tasks.push(tokio::spawn(async move {
                        let session = client::connect(&cfg).await?;
                        let tree = session.tree_connect("share").await?;
                        let open = tree.create(&format!("attack{k}.bin"), &CreateSpec::overwrite()).await?;
                        let mut sent = 0u64;
                        while !stop.load(Ordering::Relaxed) {
                            let st = tree.connection().call(request(tree.id(), open.file_id, sent)).await?.status();
                            assert_eq!(st, NtStatus::INSUFFICIENT_RESOURCES);
                            sent += 1;
                        }
                        eprintln!("attacker {k}: {sent} full-size LOCK requests refused");
                        Ok::<(), Error>(())
                    }));
                }
                for t in tasks {
                    t.await.unwrap().expect("locking client");
                }
            });
        });
    }
}
