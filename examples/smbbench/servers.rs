//! The two servers under test, each started privately on loopback with a
//! fresh data directory: the smbvault release binary and a Samba smbd
//! (`protocol-tests/bench/samba.sh`). Also process memory from /proc.

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use smbvault::client::Config;
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
        let text = format!(
            "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = {:?}\nmax_connections = 8192\n\n\
             [security]\nencryption = \"off\"\nlogon_failure_delay_ms = 200\n",
            dir.join("data")
        );
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

/// A running private Samba.
pub struct Samba {
    script: PathBuf,
    dir: PathBuf,
    pub target: Target,
}

impl Samba {
    /// `samba.sh up DIR PORT PASSWORD` on a free loopback port.
    pub fn start(script: &Path, dir: &Path) -> Result<Self, String> {
        let port =
            std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map_err(|e| e.to_string())?.port();
        let out = Command::new(script)
            .arg("up")
            .arg(dir)
            .arg(port.to_string())
            .arg(PASSWORD)
            .output()
            .map_err(|e| format!("{}: {e}", script.display()))?;
        let text = String::from_utf8_lossy(&out.stdout);
        let pid = text
            .lines()
            .find_map(|l| l.strip_prefix("SMBD_PID="))
            .and_then(|p| p.trim().parse().ok())
            .ok_or_else(|| format!("samba did not start: {text}{}", String::from_utf8_lossy(&out.stderr)))?;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        Ok(Self {
            script: script.to_path_buf(),
            dir: dir.to_path_buf(),
            target: Target { name: "Samba", addr, domain: "WORKGROUP", share: "data", enc_share: "enc", pid },
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

/// `root` and every process whose parent chain leads to it.
fn descendants(root: u32) -> Vec<u32> {
    let mut parent = Vec::new();
    if let Ok(rd) = std::fs::read_dir("/proc") {
        for e in rd.flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else { continue };
            let ppid = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok().and_then(|s| {
                // Fields after the parenthesised command name: state, ppid, …
                let rest = s.rsplit_once(')')?.1;
                rest.split_whitespace().nth(1)?.parse::<u32>().ok()
            });
            if let Some(pp) = ppid {
                parent.push((pid, pp));
            }
        }
    }
    let mut out = vec![root];
    let mut k = 0;
    while k < out.len() {
        let p = out[k];
        out.extend(parent.iter().filter(|(_, pp)| *pp == p).map(|(c, _)| *c));
        k += 1;
    }
    out
}
