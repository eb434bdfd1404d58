//! End-to-end cost of the audit log: small-file throughput of the real
//! server with `[audit] enabled = true` against `enabled = false`, and the
//! log volume that load produces.
//!
//! Two servers (logging on, logging off) run side by side on fresh data
//! directories. Each run starts CLIENTS smbclient processes at once, each
//! one session that makes its own directory and puts FILES files of 4 KiB
//! (CREATE, WRITE, CLOSE per file; SMB 3.1.1, signed and encrypted). Runs
//! alternate between the servers (which goes first alternates too), and
//! the medians are compared, as well as the server's CPU time per file
//! (including what it does in the 3 s after a run). Afterwards the logging server is stopped with
//! SIGTERM and its log measured: bytes on disk per event and per million
//! file operations.
//!
//! ```text
//! cargo build --release
//! cargo run --release --example audit_e2e_bench -- [RUNS] [CLIENTS] [FILES]
//! ```
//! Defaults: 7 runs per server, 2 clients, 1500 files per client per run.
//! `SMBVAULT_BIN` overrides the server binary (default target/release/smbvault).

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const USER: &str = "DEFAULT\\bench";
/// Pause after each run: longer than the audit flush interval and the
/// storage commit interval, so one run's deferred work does not slow the next.
const SETTLE: Duration = Duration::from_secs(3);
const PASS: &str = "Smallfile-0k!";

/// One running server.
struct Server {
    name: &'static str,
    config: PathBuf,
    data: PathBuf,
    port: u16,
    child: Child,
}

fn bin() -> PathBuf {
    std::env::var_os("SMBVAULT_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/release/smbvault"))
}

impl Server {
    fn start(dir: &Path, name: &'static str, audit: bool) -> Server {
        let data = dir.join(name);
        let config = dir.join(format!("{name}.toml"));
        let toml = format!(
            "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = {data:?}\n[audit]\nenabled = {audit}\n\
             [security]\nlogon_failure_delay_ms = 100\n"
        );
        std::fs::write(&config, toml).expect("config");
        let mut child = Command::new(bin())
            .args(["--config", config.to_str().expect("utf-8 path"), "serve"])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start smbvault (run `cargo build --release` first)");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let port = loop {
            let line = lines.next().expect("server exited").expect("read");
            if let Some(a) = line.strip_prefix("smbvault listening on ") {
                break a.rsplit(':').next().and_then(|p| p.trim().parse().ok()).expect("port");
            }
        };
        std::thread::spawn(move || lines.for_each(drop));
        let s = Server { name, config, data, port, child };
        let o = s.cli(&["user", "add", USER, "--password-stdin"], Some(&format!("{PASS}\n")));
        assert!(o.status.success(), "user add: {}", String::from_utf8_lossy(&o.stderr));
        s
    }

    fn cli(&self, args: &[&str], stdin: Option<&str>) -> std::process::Output {
        let mut c = Command::new(bin())
            .arg("--config")
            .arg(&self.config)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("cli");
        if let Some(s) = stdin {
            c.stdin.take().expect("stdin").write_all(s.as_bytes()).expect("write");
        }
        drop(c.stdin.take());
        c.wait_with_output().expect("cli")
    }

    /// CPU time the server process used so far (user + system), in clock ticks.
    fn cpu_ticks(&self) -> u64 {
        stat_ticks(&format!("/proc/{}/stat", self.child.id()))
    }

    /// CPU time of the audit writer thread so far, in nanoseconds (first
    /// field of /proc/PID/task/TID/schedstat: finer than clock ticks).
    fn writer_ns(&self) -> u64 {
        let dir = format!("/proc/{}/task", self.child.id());
        let tasks = std::fs::read_dir(dir).into_iter().flatten().flatten();
        tasks
            .filter(|t| std::fs::read_to_string(t.path().join("comm")).is_ok_and(|c| c.trim() == "audit-writer"))
            .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
            .filter_map(|s| s.split_whitespace().next().and_then(|x| x.parse::<u64>().ok()))
            .sum()
    }

    /// CLIENTS parallel sessions of FILES puts each; returns (files per
    /// second, server CPU ticks per 1000 files and audit writer CPU µs per
    /// file, both including the settling time).
    fn run(&self, tag: &str, clients: usize, files: usize, src: &Path) -> (f64, f64, f64) {
        let (cpu0, w0) = (self.cpu_ticks(), self.writer_ns());
        let start = Instant::now();
        let procs: Vec<Child> = (0..clients)
            .map(|c| {
                let mut cmds = format!("mkdir {tag}-{c}; cd {tag}-{c}");
                for f in 0..files {
                    cmds.push_str(&format!("; put {} f{f}", src.display()));
                }
                Command::new("smbclient")
                    .arg("//127.0.0.1/share")
                    .args(["-p", &self.port.to_string(), "-U", &format!("{USER}%{PASS}"), "-c", &cmds])
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .expect("smbclient")
            })
            .collect();
        for p in procs {
            let o = p.wait_with_output().expect("smbclient");
            let out = String::from_utf8_lossy(&o.stdout).to_string() + &String::from_utf8_lossy(&o.stderr);
            assert!(o.status.success() && !out.contains("NT_STATUS_"), "{}: {out}", self.name);
        }
        let n = (clients * files) as f64;
        let rate = n / start.elapsed().as_secs_f64();
        // Let deferred work finish (audit flush after 0.5 s, storage commit
        // every 2 s) before the other server runs, and charge it to this run.
        std::thread::sleep(SETTLE);
        let cpu = (self.cpu_ticks() - cpu0) as f64 * 1000.0 / n;
        (rate, cpu, (self.writer_ns() - w0) as f64 / 1000.0 / n)
    }

    /// SIGTERM and wait: the audit log is complete afterwards.
    fn stop(mut self) {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let _ = self.child.wait();
    }
}

/// utime + stime of a /proc stat file (fields 14 and 15, proc(5)).
fn stat_ticks(path: &str) -> u64 {
    let stat = std::fs::read_to_string(path).unwrap_or_default();
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<u64> = rest.split_whitespace().map(|x| x.parse().unwrap_or(0)).collect();
    f.get(11).copied().unwrap_or(0) + f.get(12).copied().unwrap_or(0)
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 }
}

/// Bytes of the audit log files (segments, indexes, heads) under `dir`.
fn log_bytes(dir: &Path) -> u64 {
    let mut total = 0;
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        total += if p.is_dir() { log_bytes(&p) } else { e.metadata().map_or(0, |m| m.len()) };
    }
    total
}

/// Clock ticks per second of /proc times (`getconf CLK_TCK`, usually 100).
fn clk_tck() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

fn arg(n: usize, default: usize) -> usize {
    std::env::args().nth(n).and_then(|a| a.parse().ok()).unwrap_or(default)
}

fn main() {
    let (runs, clients, files) = (arg(1, 7), arg(2, 2), arg(3, 1500));
    let dir = tempfile::tempdir().expect("tempdir");
    let src = dir.path().join("4k.bin");
    std::fs::write(&src, (0..4096u32).map(|i| (i * 7 % 251) as u8).collect::<Vec<_>>()).expect("4k");
    let on = Server::start(dir.path(), "on", true);
    let off = Server::start(dir.path(), "off", false);
    println!("{runs} runs per server, {clients} parallel smbclient sessions x {files} puts of 4 KiB");
    // Warm-up (page cache, lazy share creation), not counted.
    on.run("warm", clients, files / 5, &src);
    off.run("warm", clients, files / 5, &src);
    let tick_us = 1e6 / clk_tck();
    let (mut r_on, mut r_off, mut ratio, mut c_on, mut c_off) = (vec![], vec![], vec![], vec![], vec![]);
    let mut w_on = vec![];
    for r in 0..runs {
        let order = if r % 2 == 0 { [&on, &off] } else { [&off, &on] };
        let mut pair = [0.0; 2];
        for s in order {
            let (ops, cpu, writer_us) = s.run(&format!("r{r}"), clients, files, &src);
            let cpu_us = cpu * tick_us / 1000.0;
            println!(
                "run {r} {:>3}: {ops:6.0} files/s, server CPU {cpu_us:4.0} us/file (audit writer {writer_us:4.2})",
                s.name
            );
            let (i, rs, cs) = if s.name == "on" { (0, &mut r_on, &mut c_on) } else { (1, &mut r_off, &mut c_off) };
            if i == 0 {
                w_on.push(writer_us);
            }
            rs.push(ops);
            cs.push(cpu_us);
            pair[i] = ops;
        }
        ratio.push(pair[0] / pair[1]);
    }
    let (m_on, m_off) = (median(&mut r_on), median(&mut r_off));
    println!(
        "median throughput: logging on {m_on:.0} files/s, off {m_off:.0} files/s ({:+.1}%); \
         median of per-run on/off ratios {:+.1}%",
        (m_on / m_off - 1.0) * 100.0,
        (median(&mut ratio) - 1.0) * 100.0
    );
    let (cu_on, cu_off) = (median(&mut c_on), median(&mut c_off));
    println!(
        "median server CPU per file: on {cu_on:.0} us, off {cu_off:.0} us ({:+.1}%); audit writer thread {:.2} us",
        (cu_on / cu_off - 1.0) * 100.0,
        median(&mut w_on)
    );
    let files_done = (clients * files * runs + clients * (files / 5)) as f64;
    let (audit_dir, on_cfg) = (on.data.join("audit"), on.config.clone());
    on.stop();
    off.stop();
    let count = |cat: &str| {
        let o = Command::new(bin())
            .arg("--config")
            .arg(&on_cfg)
            .args(["logs", cat, "--format", "jsonl"])
            .output()
            .expect("logs");
        String::from_utf8_lossy(&o.stdout).lines().count() as f64
    };
    let events = count("access") + count("operations");
    let bytes = log_bytes(&audit_dir) as f64;
    println!(
        "log: {events:.0} events, {bytes:.0} bytes on disk = {:.0} B/event; {:.2} events per file \
         => {:.0} MB per million file operations ({:.0} MB per million events)",
        bytes / events,
        events / files_done,
        bytes / events * events / files_done,
        bytes / events,
    );
}
