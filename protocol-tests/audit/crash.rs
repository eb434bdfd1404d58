//! The busy run: parallel Python clients writing small files while the
//! server is killed (SIGKILL) or stopped (SIGTERM); what they did is
//! compared with what the log holds.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use super::*;

/// One Python smbprotocol client of the busy run: it prints "ready <ms>",
/// then "<n> <ms>" after the close of each file `<prefix>-<n>.bin`.
/// A client's file prefix and the (file number, completion time in ms) of
/// each file it wrote.
type Run = (String, Vec<(u64, i64)>);

pub(crate) struct Client {
    pub(crate) prefix: String,
    pub(crate) child: std::process::Child,
    pub(crate) ready: Arc<Mutex<bool>>,
    pub(crate) done: Arc<Mutex<Vec<(u64, i64)>>>,
    pub(crate) reader: std::thread::JoinHandle<()>,
}

fn start_client(s: &TestServer, prefix: &str) -> Client {
    start_client_as(s, "DEFAULT\\alice", prefix)
}

pub(crate) fn start_client_as(s: &TestServer, user: &str, prefix: &str) -> Client {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("protocol-tests/python/smallfiles.py");
    let mut child = Command::new("python3")
        .arg(script)
        .args(["127.0.0.1", &s.port.to_string(), "share", user, PASS, prefix, "0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("python3");
    let (ready, done) = (Arc::new(Mutex::new(false)), Arc::new(Mutex::new(Vec::new())));
    let (r, d) = (ready.clone(), done.clone());
    let out = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            let mut w = line.split(' ');
            match (w.next(), w.next()) {
                (Some("ready"), _) => *r.lock().unwrap() = true,
                (Some(n), Some(ms)) if n.bytes().all(|c| c.is_ascii_digit()) => {
                    d.lock().unwrap().push((n.parse().unwrap(), ms.parse().unwrap()))
                }
                _ => {}
            }
        }
    });
    Client { prefix: prefix.to_string(), child, ready, done, reader }
}

/// Runs `clients` small-file writers for `secs` seconds, then stops the
/// server with `stop` (SIGKILL or SIGTERM). Returns the time of the signal
/// and, per client, its prefix and the completion times of its files.
fn busy_run(s: &mut TestServer, clients: usize, secs: u64, stop: impl FnOnce(&mut TestServer)) -> (i64, Vec<Run>) {
    let cs: Vec<Client> = (0..clients).map(|i| start_client(s, &format!("c{i}"))).collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !cs.iter().all(|c| *c.ready.lock().unwrap()) {
        assert!(Instant::now() < deadline, "clients did not log on");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_secs(secs));
    let signal_at = now_ms();
    stop(s);
    let mut out = Vec::new();
    for mut c in cs {
        let limit = Instant::now() + Duration::from_secs(30);
        while c.child.try_wait().unwrap().is_none() && Instant::now() < limit {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = c.child.kill();
        let _ = c.child.wait();
        let _ = c.reader.join();
        let done = c.done.lock().unwrap().clone();
        out.push((c.prefix, done));
    }
    (signal_at, out)
}

/// Paths of the files whose close was logged.
fn logged_closes(s: &TestServer) -> std::collections::HashSet<String> {
    jsonl(s, "operations", &["--org", "DEFAULT", "--type", "close"])
        .iter()
        .map(|v| v["path"].as_str().unwrap().to_string())
        .collect()
}

/// Compares what the clients did with the log: returns (operations done,
/// operations missing from the log, age in ms of the oldest missing one
/// relative to the signal).
fn compare(signal_at: i64, runs: &[Run], logged: &std::collections::HashSet<String>) -> (usize, usize, i64) {
    let (mut total, mut missing, mut oldest) = (0, 0, 0);
    for (prefix, done) in runs {
        for &(n, ms) in done {
            total += 1;
            if !logged.contains(&format!("{prefix}-{n}.bin")) {
                missing += 1;
                oldest = oldest.max(signal_at - ms);
            }
        }
        // Nothing is logged that no client did (the next file may have been
        // closed by the server without the client hearing back).
        let next = done.len() as u64;
        for p in logged.iter().filter(|p| p.starts_with(&format!("{prefix}-"))) {
            let n: u64 = p[prefix.len() + 1..p.len() - 4].parse().unwrap();
            assert!(n <= next, "{p} logged but client {prefix} only did {next} files");
        }
    }
    (total, missing, oldest)
}

/// SIGKILL during a busy run (four parallel clients writing 4 KiB files):
/// every operation a client got an answer for is in the log (the records
/// reach the kernel before the response leaves), the log verifies, and the
/// restarted server chains on.
#[test]
fn sigkill_loses_no_answered_operation() {
    let mut s = TestServer::start();
    s.add_user("DEFAULT\\alice", PASS);
    // The production default flush interval (the harness uses 200 ms).
    let cfg = std::fs::read_to_string(&s.config).unwrap().replace("flush_interval_ms = 200", "flush_interval_ms = 500");
    std::fs::write(&s.config, cfg).unwrap();
    s.stop();
    s.spawn();
    let (killed_at, runs) = busy_run(&mut s, 4, 4, |s| s.kill9());
    let logged = logged_closes(&s);
    let (total, missing, oldest) = compare(killed_at, &runs, &logged);
    eprintln!(
        "SIGKILL: {total} files written by the clients, {missing} closes missing, oldest missing {oldest} ms before the kill"
    );
    assert!(total > 100, "too little load: {total}");
    assert_eq!(missing, 0, "answered closes missing from the log, the oldest {oldest} ms before the kill");
    let (ok, out) = verify(&s);
    assert!(ok, "{out}");
    // The next server start repairs any torn tail and chains on.
    s.spawn();
    let o = s.smbclient("share", "DEFAULT\\alice", PASS, &[], "mkdir after-crash");
    assert!(o.status.success(), "{}", text(&o));
    s.stop();
    let (ok, out) = verify(&s);
    assert!(ok, "{out}");
    let after = jsonl(&s, "operations", &["--org", "DEFAULT", "--type", "mkdir", "--path", "after-crash"]);
    assert_eq!(after.len(), 1);
    assert_eq!(logged_closes(&s), logged, "records before the crash changed");
}

/// SIGTERM during a busy run loses nothing: every completed operation and
/// a disconnect for each client's session are in the log.
#[test]
fn sigterm_loses_nothing() {
    let mut s = TestServer::start();
    s.add_user("DEFAULT\\alice", PASS);
    let start = format_jst(SystemTime::now());
    let (stopped_at, runs) = busy_run(&mut s, 4, 3, |s| {
        let st = s.stop().expect("server was running");
        assert!(st.success(), "exit status {st:?}");
    });
    let logged = logged_closes(&s);
    let (total, missing, _) = compare(stopped_at, &runs, &logged);
    eprintln!("SIGTERM: {total} files written by the clients, {missing} closes missing");
    assert!(total > 100, "too little load: {total}");
    assert_eq!(missing, 0);
    let ends = jsonl(&s, "access", &["--org", "DEFAULT", "--since", &start, "--type", "disconnect,logoff"]);
    assert_eq!(ends.len(), 4, "{ends:#?}");
    let (ok, out) = verify(&s);
    assert!(ok, "{out}");
}
