//! The two servers under test, each started privately on loopback with a
//! fresh data directory: the smbvault release binary and a Samba smbd
//! (`protocol-tests/bench/samba.sh`). Also process memory and CPU time
//! from /proc.

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::client::Config;
use smbvault::wire::negotiate::Dialect;

use crate::mode::Mode;

/// Password of the benchmark user on both servers (meets smbvault's policy).
pub const PASSWORD: &str = "Bench-Passw0rd!";

/// How a workload reaches one server.
#[derive(Debug, Clone)]
pub struct Target {
    /// "smbvault" or "Samba".
    pub name: &'static str,
    /// Where it listens.
    pub addr: SocketAddr,
    /// NTLM domain the user logs on with.
    pub domain: &'static str,
    /// Share that requires signing only.
    pub share: &'static str,
    /// Share that requires encryption.
    pub enc_share: &'static str,
    /// The server's main process; its descendants count for memory.
    pub pid: u32,
    /// Another process whose CPU is the server's too (gocryptfs under
    /// Samba); it does not count for memory per connection.
    pub helper: Option<u32>,
}

impl Target {
    /// Client config: SMB 3.1.1 only; in an encrypt mode the mode's cipher
    /// is the only one offered, and every request is sealed.
    pub fn config(&self, mode: Mode) -> Config {
        let mut c = Config::new(self.addr, "alice", self.domain, PASSWORD);
        c.dialects = vec![Dialect::SMB311];
        if let Some(cipher) = mode.cipher() {
            c.ciphers = vec![cipher];
        }
        c.encrypt = mode.encrypts();
        c
    }

    /// The share for a mode.
    pub fn share_for(&self, mode: Mode) -> &'static str {
        if mode.encrypts() { self.enc_share } else { self.share }
    }

    /// Server CPU so far, ms: the process tree plus the helper's.
    pub fn cpu_ms(&self) -> f64 {
        cpu_ms(self.pid) + self.helper.map_or(0.0, cpu_ms)
    }

    /// `-U` argument for smbclient.
    pub fn smbclient_user(&self) -> String {
        format!("{}\\alice%{PASSWORD}", self.domain)
    }
}

/// A running smbvault.
pub struct Smbvault {
    child: Child,
    pub target: Target,
}

impl Smbvault {
    /// Starts `bin` with a config and data directory under `dir`, adds the
    /// user `DEFAULT\alice` and a share `enc` that requires encryption.
    pub fn start(bin: &Path, dir: &Path) -> Result<Self, String> {
        std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
        let config = dir.join("smbvault.toml");
        // Every benchmark client comes from 127.0.0.1: the per-address cap
        // (512 by default) would refuse the memory workload's 1,000 idle
        // connections, which Samba, without such a cap, accepts.
        let text = format!(
            "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = {:?}\nmax_connections = 8192\n\
             max_connections_per_ip = 8192\n\n\
             [security]\nencryption = \"off\"\nlogon_failure_delay_ms = 200\n",
            dir.join("data")
        );
        // SMBBENCH_SMBVAULT_TOML appends sections for an A/B run of a
        // setting, e.g. $'[storage]\ncompact_dead_ratio = 0.95\n'.
        let text = text + &std::env::var("SMBBENCH_SMBVAULT_TOML").unwrap_or_default();
        std::fs::write(&config, text).map_err(|e| e.to_string())?;
        let log = std::fs::File::create(dir.join("server.log")).map_err(|e| e.to_string())?;
        let mut child = Command::new(bin)
            .arg("--config")
            .arg(&config)
            .arg("serve")
            .env("RUST_LOG", std::env::var("SMBBENCH_SERVER_LOG").unwrap_or_else(|_| "warn".into()))
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("{}: {e}", bin.display()))?;
        let addr = wait_listening(&mut child, dir)?;
        let s = Self {
            target: Target {
                name: "smbvault",
                addr,
                domain: "DEFAULT",
                share: "share",
                enc_share: "enc",
                pid: child.id(),
                helper: None,
            },
            child,
        };
        cli(bin, &config, &["user", "add", "DEFAULT\\alice", "--password-stdin"], Some(PASSWORD))?;
        cli(bin, &config, &["share", "add", "enc", "--encryption", "required"], None)?;
        Ok(s)
    }
}

impl Drop for Smbvault {
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        for _ in 0..300 {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads the server's stdout until "smbvault listening on ADDR"; keeps
/// draining it into `dir/stdout.log` afterwards.
fn wait_listening(child: &mut Child, dir: &Path) -> Result<SocketAddr, String> {
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let (tx, rx) = mpsc::channel();
    let log_path = dir.join("stdout.log");
    std::thread::spawn(move || {
        let mut log = std::fs::File::create(log_path).ok();
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(f) = log.as_mut() {
                let _ = writeln!(f, "{line}");
            }
            let _ = tx.send(line);
        }
    });
    loop {
        let line = rx
            .recv_timeout(Duration::from_secs(120))
            .map_err(|_| format!("smbvault did not start; see {}", dir.join("server.log").display()))?;
        if let Some(a) = line.strip_prefix("smbvault listening on ") {
            std::thread::spawn(move || while rx.recv().is_ok() {});
            return a.trim().parse().map_err(|e| format!("listen address {a}: {e}"));
        }
    }
}

fn cli(bin: &Path, config: &Path, args: &[&str], stdin: Option<&str>) -> Result<(), String> {
    let mut c = Command::new(bin)
        .arg("--config")
        .arg(config)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?;
    if let (Some(s), Some(mut w)) = (stdin, c.stdin.take()) {
        let _ = writeln!(w, "{s}");
    }
    let out = c.wait_with_output().map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("smbvault {args:?}: {}", String::from_utf8_lossy(&out.stderr)))
    }
}

/// Name of the Samba-on-gocryptfs peer in reports.
pub const GOCRYPTFS: &str = "Samba+gocryptfs";

/// A running private Samba.
pub struct Samba {
    script: PathBuf,
    dir: PathBuf,
    pub target: Target,
}

impl Samba {
    /// `samba.sh up DIR PORT PASSWORD [gocryptfs]` on a free loopback port;
    /// with `gocryptfs` the share lives on a gocryptfs mount.
    pub fn start(script: &Path, dir: &Path, gocryptfs: bool) -> Result<Self, String> {
        let port =
            std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map_err(|e| e.to_string())?.port();
        let out = Command::new(script)
            .arg("up")
            .arg(dir)
            .arg(port.to_string())
            .arg(PASSWORD)
            .args(gocryptfs.then_some("gocryptfs"))
            .output()
            .map_err(|e| format!("{}: {e}", script.display()))?;
        let text = String::from_utf8_lossy(&out.stdout);
        let pid = text
            .lines()
            .find_map(|l| l.strip_prefix("SMBD_PID="))
            .and_then(|p| p.trim().parse().ok())
            .ok_or_else(|| format!("samba did not start: {text}{}", String::from_utf8_lossy(&out.stderr)))?;
        let helper = text.lines().find_map(|l| l.strip_prefix("GOCRYPTFS_PID=")).and_then(|p| p.trim().parse().ok());
        if gocryptfs && helper.is_none() {
            return Err(format!("gocryptfs did not start: {text}{}", String::from_utf8_lossy(&out.stderr)));
        }
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let name = if gocryptfs { GOCRYPTFS } else { "Samba" };
        Ok(Self {
            script: script.to_path_buf(),
            dir: dir.to_path_buf(),
            target: Target { name, addr, domain: "WORKGROUP", share: "data", enc_share: "enc", pid, helper },
        })
    }
}

impl Drop for Samba {
    fn drop(&mut self) {
        let _ = Command::new(&self.script).arg("down").arg(&self.dir).output();
    }
}

/// Memory of a process and all its descendants (Samba forks one smbd per
/// connection), in KiB: resident (RSS, shared pages counted in each
/// process) and proportional (PSS, shared pages split among sharers).
#[derive(Debug, Clone, Copy, Default)]
pub struct Memory {
    pub rss_kib: u64,
    pub pss_kib: u64,
    pub processes: usize,
}

/// Sums RSS and PSS over `root` and its descendants.
pub fn memory(root: u32) -> Memory {
    let mut m = Memory::default();
    for pid in descendants(root) {
        let field = |file: &str, key: &str| -> u64 {
            std::fs::read_to_string(format!("/proc/{pid}/{file}"))
                .ok()
                .and_then(|s| {
                    s.lines().find_map(|l| l.strip_prefix(key)).and_then(|v| v.split_whitespace().next()?.parse().ok())
                })
                .unwrap_or(0)
        };
        m.rss_kib += field("status", "VmRSS:");
        m.pss_kib += field("smaps_rollup", "Pss:");
        m.processes += 1;
    }
    m
}

/// CPU time (user + system, in clock ticks) that `root` and its
/// descendants have used so far, including children they have already
/// reaped (cutime, cstime: Samba's per-connection smbd exits when
/// smbclient disconnects, possibly before the sample after the command).
/// A live or zombie process counts its own time; once reaped its time moves
/// to its parent's cutime, so the sum only grows and differences of two
/// samples are the tree's CPU between them. Threads count in their process.
pub fn cpu_ticks(root: u32) -> u64 {
    let procs = processes();
    tree(root, &procs).iter().filter_map(|p| procs.iter().find(|q| q.pid == *p)).map(|p| p.ticks).sum()
}

/// `cpu_ticks` in milliseconds.
pub fn cpu_ms(root: u32) -> f64 {
    cpu_ticks(root) as f64 * 1000.0 / ticks_per_sec()
}

/// USER_HZ, the unit of /proc/PID/stat times (proc(5)): `getconf CLK_TCK`,
/// asked once; 100 (its value on every Linux architecture we run on) if
/// that fails. No libc call: the crate forbids unsafe code.
fn ticks_per_sec() -> f64 {
    static HZ: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *HZ.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse::<f64>().ok())
            .filter(|&hz| hz > 0.0)
            .unwrap_or(100.0)
    })
}

/// One line of /proc/PID/stat: parent and CPU ticks.
struct Proc {
    pid: u32,
    ppid: u32,
    /// utime + stime + cutime + cstime (fields 14–17).
    ticks: u64,
}

/// Every process in /proc, read in one pass so that the tree and its
/// times come from (nearly) the same instant.
fn processes() -> Vec<Proc> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir("/proc") else { return out };
    for e in rd.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else { continue };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { continue };
        // Fields after the parenthesised command name (which may contain
        // spaces and ')'): state (field 3), ppid (4), …, utime (14),
        // stime (15), cutime (16), cstime (17).
        let Some((_, rest)) = stat.rsplit_once(')') else { continue };
        let f: Vec<&str> = rest.split_whitespace().collect();
        let num = |field: usize| f.get(field - 3).and_then(|v| v.parse::<u64>().ok());
        let Some(ppid) = num(4).and_then(|p| u32::try_from(p).ok()) else { continue };
        let ticks = (14..=17).filter_map(num).sum();
        out.push(Proc { pid, ppid, ticks });
    }
    out
}

/// `root` and every process whose parent chain leads to it.
fn descendants(root: u32) -> Vec<u32> {
    tree(root, &processes())
}

fn tree(root: u32, procs: &[Proc]) -> Vec<u32> {
    let mut out = vec![root];
    let mut k = 0;
    while k < out.len() {
        let p = out[k];
        out.extend(procs.iter().filter(|q| q.ppid == p).map(|q| q.pid));
        k += 1;
    }
    out
}
