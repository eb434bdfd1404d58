//! A real S3-compatible server for the backup tests: Garage
//! (`cargo install garage`, installed by protocol-tests/run.sh), started on
//! loopback ports with its own temporary metadata and data directories,
//! one node, a layout, an access key and buckets. Never a mock.

use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A running single-node Garage.
pub struct Garage {
    /// Temporary directory: config, metadata, data, log.
    pub dir: tempfile::TempDir,
    /// Config file.
    pub config: PathBuf,
    /// S3 endpoint, `http://127.0.0.1:PORT`.
    pub endpoint: String,
    /// Access key id.
    pub key_id: String,
    /// Secret key.
    pub secret: String,
    child: Child,
}

/// The `garage` binary: `$GARAGE_BIN`, `garage` on PATH, or ~/.cargo/bin/garage.
pub fn garage_bin() -> String {
    if let Ok(b) = std::env::var("GARAGE_BIN") {
        return b;
    }
    if Command::new("garage").arg("--version").output().is_ok_and(|o| o.status.success()) {
        return "garage".into();
    }
    let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
    format!("{home}/.cargo/bin/garage")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl Garage {
    /// Starts Garage and creates an access key; panics with its log if it fails.
    pub fn start() -> Garage {
        // Ports come from binding port 0 and letting go, so another process
        // (a parallel test's server) can take one before Garage binds it:
        // then Garage exits, and we try again with fresh ports. A CI run once
        // failed `layout assign` with "connection refused" because the RPC
        // listener was not up yet although `node id` (read from disk) worked,
        // so we also wait until both ports accept connections.
        let mut last_log = String::new();
        for _ in 0..4 {
            match Self::spawn() {
                Ok(g) => return g.configure(),
                Err(log) => last_log = log,
            }
        }
        panic!("garage did not start: {last_log}");
    }

    /// One attempt: a daemon whose S3 and RPC ports accept connections, or its log.
    fn spawn() -> Result<Garage, String> {
        let dir = tempfile::tempdir().unwrap();
        let (s3, rpc) = (free_port(), free_port());
        let config = dir.path().join("garage.toml");
        let secret: String = (0..32).map(|i| format!("{:02x}", (i * 37 + s3 as usize) % 256)).collect();
        std::fs::write(
            &config,
            format!(
                "metadata_dir = {:?}\ndata_dir = {:?}\ndb_engine = \"sqlite\"\nreplication_factor = 1\n\
                 rpc_bind_addr = \"127.0.0.1:{rpc}\"\nrpc_public_addr = \"127.0.0.1:{rpc}\"\nrpc_secret = \"{secret}\"\n\
                 [s3_api]\ns3_region = \"garage\"\napi_bind_addr = \"127.0.0.1:{s3}\"\nroot_domain = \".s3.garage.localhost\"\n",
                dir.path().join("meta"),
                dir.path().join("data"),
            ),
        )
        .unwrap();
        let log = std::fs::File::create(dir.path().join("garage.log")).unwrap();
        let child = Command::new(garage_bin())
            .args(["-c", config.to_str().unwrap(), "server"])
            .env("RUST_LOG", "garage=warn")
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("garage: run ./protocol-tests/run.sh (it installs Garage) or `cargo install garage --locked`");
        let mut g = Garage {
            dir,
            config,
            endpoint: format!("http://127.0.0.1:{s3}"),
            key_id: String::new(),
            secret: String::new(),
            child,
        };
        let started = Instant::now();
        loop {
            if let Ok(Some(status)) = g.child.try_wait() {
                return Err(format!("garage exited ({status}): {}", g.log()));
            }
            let up = |port: u16| {
                std::net::TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_secs(1)).is_ok()
            };
            if up(s3) && up(rpc) {
                return Ok(g);
            }
            if started.elapsed() > Duration::from_secs(60) {
                return Err(format!("ports {s3}/{rpc} not listening after 60 s: {}", g.log()));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Layout and access key on a started daemon.
    fn configure(mut self) -> Garage {
        let g = &mut self;
        // The node id, once the daemon answers.
        let started = Instant::now();
        let id = loop {
            let o = g.cmd(&["node", "id", "-q"]);
            if o.status.success() {
                let t = String::from_utf8_lossy(&o.stdout).trim().to_string();
                break t.split('@').next().unwrap().to_string();
            }
            assert!(started.elapsed() < Duration::from_secs(60), "garage did not start: {}", g.log());
            std::thread::sleep(Duration::from_millis(200));
        };
        // The first RPC can still be refused for a moment after the listener
        // is up; retry it, not the test.
        let started = Instant::now();
        loop {
            let o = g.cmd(&["layout", "assign", "-z", "dc1", "-c", "1G", &id]);
            if o.status.success() {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "garage layout assign: {}{}\n{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr),
                g.log()
            );
            std::thread::sleep(Duration::from_millis(300));
        }
        g.ok(&["layout", "apply", "--version", "1"]);
        let out = g.ok(&["key", "create", "smbvault-test"]);
        for line in out.lines() {
            if let Some(v) = line.split_once("Key ID:").map(|(_, v)| v.trim()) {
                g.key_id = v.to_string();
            }
            if let Some(v) = line.split_once("Secret key:").map(|(_, v)| v.trim()) {
                g.secret = v.to_string();
            }
        }
        assert!(!g.key_id.is_empty() && !g.secret.is_empty(), "key create: {out}");
        self
    }

    /// Runs `garage -c CONFIG ARGS`.
    pub fn cmd(&self, args: &[&str]) -> Output {
        Command::new(garage_bin())
            .args(["-c", self.config.to_str().unwrap()])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("garage")
    }

    /// Runs a garage command that must succeed; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let o = self.cmd(args);
        assert!(
            o.status.success(),
            "garage {args:?}: {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// Creates a bucket the test key may read and write.
    pub fn bucket(&self, name: &str) {
        self.ok(&["bucket", "create", name]);
        self.ok(&["bucket", "allow", "--read", "--write", "--owner", name, "--key", "smbvault-test"]);
    }

    /// A credentials file (mode 0600) for `credentials_file`.
    pub fn credentials_file(&self) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let p = self.dir.path().join("s3-credentials.toml");
        std::fs::write(&p, format!("access_key_id = {:?}\nsecret_access_key = {:?}\n", self.key_id, self.secret))
            .unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        p
    }

    /// Garage's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("garage.log")).unwrap_or_default()
    }
}

impl Drop for Garage {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
