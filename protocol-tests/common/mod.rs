//! Shared harness for the end-to-end tests: start the real `smbvault` binary on
//! a free loopback port with a temporary data directory, run real clients
//! (smbclient, smbtorture, Python smbprotocol) against it, stop it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub mod garage;

/// Path of the server binary cargo built for this test run, or
/// `SMBVAULT_TEST_BIN` (an older build, to write an old-format fixture).
pub fn bin() -> &'static str {
    static BIN: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    BIN.get_or_init(|| std::env::var("SMBVAULT_TEST_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_smbvault").into()))
}

/// A running server.
pub struct TestServer {
    /// Temporary directory holding config and data (removed on drop).
    pub dir: tempfile::TempDir,
    /// Config file path.
    pub config: PathBuf,
    /// Port the server listens on (127.0.0.1).
    pub port: u16,
    /// Port of the metrics endpoint (127.0.0.1), once started.
    pub metrics_port: u16,
    /// Port of the HTTPS console (127.0.0.1), once started.
    pub console_port: u16,
    /// The bootstrap administrator's password, as printed once at first start.
    pub admin_password: Option<String>,
    /// Lines the server printed on stdout/stderr so far are forwarded here.
    pub log: PathBuf,
    log_level: Option<String>,
    env: Vec<(String, String)>,
    child: Option<Child>,
}

/// Extra config lines appended to the generated config, per section.
#[derive(Default, Clone)]
pub struct Options {
    /// Lines for `[server]`.
    pub server: Vec<String>,
    /// Lines for `[security]`.
    pub security: Vec<String>,
    /// Lines for `[accounts]`.
    pub accounts: Vec<String>,
    /// Lines for `[audit]`.
    pub audit: Vec<String>,
    /// RUST_LOG for the server (default: `SMBVAULT_TEST_LOG` or `info`).
    pub log: Option<String>,
    /// Further config text appended as is (whole sections, e.g. `[backup]`).
    pub extra: Vec<String>,
    /// Extra environment variables for the server process.
    pub env: Vec<(String, String)>,
}

impl TestServer {
    /// Starts a server with default settings.
    pub fn start() -> Self {
        Self::start_with(Options::default())
    }

    /// Starts a server with extra config.
    pub fn start_with(opts: Options) -> Self {
        let mut s = Self::unstarted(opts);
        s.spawn();
        s
    }

    /// Writes the config of a server in a new temporary directory without
    /// starting it (the data directory does not exist yet): for commands
    /// that must run before the first start, such as a restore.
    pub fn unstarted(opts: Options) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().join("data");
        let config = dir.path().join("smbvault.toml");
        let mut f = std::fs::File::create(&config).expect("config");
        writeln!(f, "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = {:?}\n{}\n", data, opts.server.join("\n")).unwrap();
        writeln!(f, "[security]\nlogon_failure_delay_ms = 200\n{}\n", opts.security.join("\n")).unwrap();
        writeln!(f, "[accounts]\n{}\n", opts.accounts.join("\n")).unwrap();
        writeln!(f, "[audit]\nflush_interval_ms = 200\n{}\n", opts.audit.join("\n")).unwrap();
        if !opts.extra.iter().any(|e| e.contains("[metrics]")) {
            writeln!(f, "[metrics]\nlisten = \"127.0.0.1:0\"\n").unwrap();
        }
        // Tests run in parallel: never the fixed default port 8443.
        if !opts.extra.iter().any(|e| e.contains("[console]")) {
            writeln!(f, "[console]\nlisten = \"127.0.0.1:0\"\n").unwrap();
        }
        writeln!(f, "{}", opts.extra.join("\n")).unwrap();
        drop(f);
        let mut s = Self {
            dir,
            config,
            port: 0,
            metrics_port: 0,
            console_port: 0,
            admin_password: None,
            log: PathBuf::new(),
            log_level: opts.log.clone(),
            env: opts.env.clone(),
            child: None,
        };
        s.log = s.dir.path().join("server.log");
        s
    }

    /// (Re)starts the process on the same data directory; waits until it listens.
    pub fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log).unwrap();
        let mut child = Command::new(bin())
            .args(["--config", self.config.to_str().unwrap(), "serve"])
            .env(
                "RUST_LOG",
                self.log_level
                    .clone()
                    .or_else(|| std::env::var("SMBVAULT_TEST_LOG").ok())
                    .unwrap_or_else(|| "info".into()),
            )
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("spawn smbvault");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        let log_path = self.log.clone();
        std::thread::spawn(move || {
            let mut logf = std::fs::OpenOptions::new().create(true).append(true).open(log_path).unwrap();
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = writeln!(logf, "{line}");
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = rx.recv_timeout(left).unwrap_or_else(|_| {
                panic!("server did not start; log:\n{}", std::fs::read_to_string(&self.log).unwrap_or_default())
            });
            if let Some(p) = line.split("password: ").nth(1) {
                self.admin_password = Some(p.trim().to_string());
            }
            // Not on a terminal, the first password goes to a 0600 file.
            if let Some(rest) = line.split("password written to ").nth(1) {
                let path = rest.split(" (mode").next().unwrap_or(rest).trim();
                let pw = std::fs::read_to_string(path).expect("first administrator password file");
                self.admin_password = Some(pw.trim().to_string());
            }
            if let Some(url) = line.strip_prefix("smbvault metrics on http://") {
                self.metrics_port = url.split('/').next().unwrap().rsplit(':').next().unwrap().parse().unwrap();
            }
            if let Some(url) = line.strip_prefix("smbvault console on https://") {
                self.console_port = url.split('/').next().unwrap().rsplit(':').next().unwrap().parse().unwrap();
            }
            if let Some(addr) = line.strip_prefix("smbvault listening on ") {
                self.port = addr.rsplit(':').next().unwrap().trim().parse().unwrap();
                break;
            }
        }
        // Keep draining stdout into the log in the background.
        std::thread::spawn(move || while rx.recv().is_ok() {});
        self.child = Some(child);
    }

    /// Sends SIGTERM and waits for a clean exit.
    pub fn stop(&mut self) -> Option<std::process::ExitStatus> {
        let mut child = self.child.take()?;
        let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(st)) = child.try_wait() {
                return Some(st);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        child.wait().ok()
    }

    /// Kills the process with SIGKILL (crash simulation).
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The process id, if running.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Data directory.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The key file (default: `keys/master.key` beside the config file,
    /// outside the data directory).
    pub fn key_file(&self) -> PathBuf {
        self.dir.path().join("keys").join("master.key")
    }

    /// Runs `smbvault --config <cfg> ARGS...` (the admin CLI) with optional stdin.
    pub fn cli(&self, args: &[&str], stdin: Option<&str>, env: &[(&str, &str)]) -> Output {
        let mut cmd = Command::new(bin());
        cmd.arg("--config").arg(&self.config).args(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn cli");
        if let Some(s) = stdin {
            child.stdin.take().unwrap().write_all(s.as_bytes()).unwrap();
        }
        drop(child.stdin.take());
        child.wait_with_output().expect("cli output")
    }

    /// Runs smbclient against `//127.0.0.1/<share>` with `-c CMDS`.
    pub fn smbclient(&self, share: &str, user: &str, pass: &str, extra: &[&str], cmds: &str) -> Output {
        smbclient(self.port, share, user, pass, extra, cmds)
    }

    /// Server log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Runs smbclient against a port on 127.0.0.1.
pub fn smbclient(port: u16, share: &str, user: &str, pass: &str, extra: &[&str], cmds: &str) -> Output {
    let mut cmd = Command::new("smbclient");
    cmd.arg(format!("//127.0.0.1/{share}"))
        .args(["-p", &port.to_string(), "-U", &format!("{user}%{pass}")])
        .args(extra)
        .args(["-c", cmds])
        .stdin(Stdio::null());
    timed_output(cmd, Duration::from_secs(600))
}

/// Runs a command with a timeout; panics with its output if it hangs.
pub fn timed_output(mut cmd: Command, limit: Duration) -> Output {
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn");
    let start = Instant::now();
    loop {
        if let Ok(Some(_)) = child.try_wait() {
            return child.wait_with_output().unwrap();
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "command timed out: {cmd:?}\nstdout:\n{}\nstderr:\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// stdout+stderr as one string.
pub fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// Writes `len` pseudo-random bytes (seeded) to `path` and returns their SHA-256.
pub fn random_file(path: &Path, len: usize, seed: u64) -> String {
    use sha2::{Digest, Sha256};
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut h = Sha256::new();
    let mut x = seed ^ 0x9E37_79B9_7F4A_7C15;
    let mut buf = vec![0u8; 1 << 20];
    let mut left = len;
    while left > 0 {
        for b in buf.chunks_mut(8) {
            // xorshift64*: fast and good enough to defeat any compression.
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            let v = x.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes();
            b.copy_from_slice(&v[..b.len()]);
        }
        let n = left.min(buf.len());
        f.write_all(&buf[..n]).unwrap();
        h.update(&buf[..n]);
        left -= n;
    }
    f.flush().unwrap();
    hex::encode(h.finalize())
}

/// SHA-256 of a file.
pub fn sha256_file(path: &Path) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    let mut f = std::fs::File::open(path).unwrap();
    std::io::copy(&mut f, &mut h).unwrap();
    hex::encode(h.finalize())
}

/// Recursively searches every file under `dir` for `needle`; returns the paths that contain it.
pub fn grep_tree(dir: &Path, needle: &[u8]) -> Vec<PathBuf> {
    walk(dir)
        .into_iter()
        .filter(|p| std::fs::read(p).is_ok_and(|b| b.windows(needle.len()).any(|w| w == needle)))
        .collect()
}

/// Every path below `dir` (directories and files, depth first; unreadable
/// directories are skipped).
pub fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p.clone());
            }
            out.push(p);
        }
    }
    out
}

/// UTF-16LE bytes of a string (names as they travel on the wire).
pub fn utf16(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(u16::to_le_bytes).collect()
}

/// A password that satisfies the default policy.
pub const PASS: &str = "Passw0rd!-test";

impl TestServer {
    /// Adds `ORG\user` (member) with `password` through the admin CLI.
    pub fn add_user(&self, user: &str, password: &str) {
        let o = self.cli(&["user", "add", user, "--password-stdin"], Some(&format!("{password}\n")), &[]);
        assert!(o.status.success(), "user add {user}: {}", text(&o));
    }

    /// Runs an admin CLI command and asserts it succeeded; returns stdout.
    pub fn admin(&self, args: &[&str]) -> String {
        let o = self.cli(args, None, &[]);
        assert!(o.status.success(), "smbvault {args:?}: {}", text(&o));
        String::from_utf8_lossy(&o.stdout).into_owned()
    }
}

/// Options for a server whose policy lets SMB 2.x clients in (encryption
/// desired instead of required), as the dialect tests need.
pub fn encryption_desired() -> Options {
    Options { security: vec!["encryption = \"desired\"".into()], ..Options::default() }
}

/// Runs `python3 protocol-tests/python/<script>` with arguments.
pub fn python(script: &str, args: &[&str]) -> Output {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("protocol-tests/python").join(script);
    let mut cmd = Command::new("python3");
    cmd.arg(path).args(args);
    timed_output(cmd, Duration::from_secs(600))
}

impl TestServer {
    /// Stops the server (SIGTERM) but keeps the data directory for inspection.
    pub fn stop_keep(&mut self) {
        self.stop();
    }
}
