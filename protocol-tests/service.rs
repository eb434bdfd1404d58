//! Running as a service (issue 20), against the real binary: SIGHUP
//! reloads with sessions surviving, SIGTERM mid-transfer keeps what was
//! acknowledged, `status` / `session kick` through the control socket,
//! `/metrics` parsed by Python prometheus_client, `config check`, the
//! systemd unit, sd_notify, and the log format.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Options, PASS, TestServer, python, text};

/// An interactive smbclient whose commands we type one at a time.
struct Interactive {
    child: Child,
    out: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Interactive {
    fn start(s: &TestServer, share: &str, user: &str, pass: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("smbclient.out");
        let f = std::fs::File::create(&out).unwrap();
        // stdbuf: smbclient's stdout is a file here, which stdio would buffer until exit.
        let child = Command::new("stdbuf")
            .args(["-o0", "-e0", "smbclient"])
            .arg(format!("//127.0.0.1/{share}"))
            .args(["-p", &s.port.to_string(), "-U", &format!("{user}%{pass}")])
            .stdin(Stdio::piped())
            .stdout(f.try_clone().unwrap())
            .stderr(f)
            .spawn()
            .expect("smbclient");
        let mut c = Self { child, out, _dir: dir };
        c.send("pwd");
        c.wait_for("Current directory is", "smbclient did not log on");
        c
    }

    fn send(&mut self, cmd: &str) {
        let stdin = self.child.stdin.as_mut().unwrap();
        let _ = writeln!(stdin, "{cmd}");
        let _ = stdin.flush();
    }

    fn output(&self) -> String {
        std::fs::read_to_string(&self.out).unwrap_or_default()
    }

    /// Waits until the output contains `needle` (30 s).
    fn wait_for(&self, needle: &str, what: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if self.output().contains(needle) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("{what}: {needle:?} not seen; smbclient said:\n{}", self.output());
    }
}

impl Drop for Interactive {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Replaces `from` with `to` in the server's config file.
fn edit_config(s: &TestServer, from: &str, to: &str) {
    let c = std::fs::read_to_string(&s.config).unwrap();
    assert!(c.contains(from), "config has no {from:?}:\n{c}");
    std::fs::write(&s.config, c.replacen(from, to, 1)).unwrap();
}

fn signal(s: &TestServer, sig: &str) {
    let st = Command::new("kill").args([sig, &s.pid().unwrap().to_string()]).status().unwrap();
    assert!(st.success());
}

/// Waits until the server log contains `needle` (20 s).
fn wait_log(s: &TestServer, needle: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if s.log_text().contains(needle) {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("server log never said {needle:?}:\n{}", s.log_text());
}

fn logon_fails(s: &TestServer, user: &str, pass: &str) -> bool {
    let o = s.smbclient("share", user, pass, &[], "ls");
    !o.status.success()
}

#[test]
fn sighup_reloads_lockout_threshold_and_sessions_survive() {
    let s = TestServer::start();
    s.add_user("DEFAULT\\bob", PASS);
    s.add_user("DEFAULT\\carol", PASS);
    s.admin(&["share", "grant", "share", "--user", "DEFAULT\\bob", "read_write"]);
    s.admin(&["share", "grant", "share", "--user", "DEFAULT\\carol", "read_write"]);
    let admin_pw = s.admin_password.clone().unwrap();
    let mut live = Interactive::start(&s, "share", "DEFAULT\\admin", &admin_pw);

    // Default threshold 5: two failures do not lock bob.
    assert!(logon_fails(&s, "DEFAULT\\bob", "wrong-password-1"));
    assert!(logon_fails(&s, "DEFAULT\\bob", "wrong-password-2"));
    assert!(!logon_fails(&s, "DEFAULT\\bob", PASS), "bob locked out before the reload");

    edit_config(&s, "[accounts]\n", "[accounts]\nlockout_threshold = 2\n");
    edit_config(&s, "[server]\n", "[server]\nname = \"RENAMED\"\n");
    signal(&s, "-HUP");
    wait_log(&s, "accounts.lockout_threshold: 5 -> 2");
    wait_log(&s, "server.name");
    assert!(s.log_text().contains("needs a restart"), "{}", s.log_text());
    assert!(s.pid().is_some());

    // Now two failures lock carol: even her right password is refused.
    assert!(logon_fails(&s, "DEFAULT\\carol", "wrong-password-1"));
    assert!(logon_fails(&s, "DEFAULT\\carol", "wrong-password-2"));
    assert!(logon_fails(&s, "DEFAULT\\carol", PASS), "threshold 2 did not lock carol");

    // The session opened before the reload still works.
    let dir = tempfile::tempdir().unwrap();
    let local = dir.path().join("after-hup.txt");
    std::fs::write(&local, b"written after SIGHUP").unwrap();
    live.send(&format!("put {} after-hup.txt", local.display()));
    live.wait_for("putting file", "put after SIGHUP");
    live.send("ls after-hup.txt");
    let deadline = Instant::now() + Duration::from_secs(30);
    // Named once by `put`, once more by `ls`.
    while live.output().matches("after-hup.txt").count() < 3 {
        assert!(Instant::now() < deadline, "ls after SIGHUP:\n{}", live.output());
        std::thread::sleep(Duration::from_millis(50));
    }
    live.send("quit");
    let o = s.smbclient("share", "DEFAULT\\bob", PASS, &[], "ls after-hup.txt");
    assert!(o.status.success() && text(&o).contains("after-hup.txt"), "{}", text(&o));

    // A broken file is refused with line and key, and the server stays up.
    edit_config(&s, "[accounts]\n", "[accounts]\nlockout_window_secs = \"soon\"\n");
    signal(&s, "-HUP");
    wait_log(&s, "reload refused");
    assert!(s.log_text().contains("accounts.lockout_window_secs"), "{}", s.log_text());
    let o = s.smbclient("share", "DEFAULT\\bob", PASS, &[], "ls");
    assert!(o.status.success(), "server not serving after a refused reload: {}", text(&o));
}

#[test]
fn sigterm_during_transfer_exits_0_with_acknowledged_data_intact() {
    let mut s = TestServer::start();
    let pw = s.admin_password.clone().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("started");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("protocol-tests/python/sigterm_writer.py");
    let writer = Command::new("python3")
        .arg(&script)
        .args(["write", "127.0.0.1", &s.port.to_string(), "share", "DEFAULT\\admin", &pw, "big.bin"])
        .arg(&marker)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !marker.exists() {
        assert!(Instant::now() < deadline, "writer never got going");
        std::thread::sleep(Duration::from_millis(20));
    }
    let status = s.stop().expect("server was running");
    assert_eq!(status.code(), Some(0), "SIGTERM exit status; log:\n{}", s.log_text());
    let out = writer.wait_with_output().unwrap();
    let said = text(&out);
    let acked: usize = said
        .lines()
        .find_map(|l| l.strip_prefix("acked "))
        .unwrap_or_else(|| panic!("writer output: {said}"))
        .trim()
        .parse()
        .unwrap();
    assert!(acked >= 8, "{said}");
    assert!(said.contains("stopped:"), "the transfer finished before SIGTERM; {said}");
    assert!(s.log_text().contains("stopped; store and audit log flushed"), "{}", s.log_text());

    s.spawn();
    let o = python(
        "sigterm_writer.py",
        &["verify", "127.0.0.1", &s.port.to_string(), "share", "DEFAULT\\admin", &pw, "big.bin", &acked.to_string()],
    );
    assert!(o.status.success(), "acknowledged data lost: {}", text(&o));
    assert!(text(&o).contains(&format!("verified {acked}")));
}

#[test]
fn status_lists_a_live_session_and_kick_ends_it() {
    let s = TestServer::start();
    s.admin(&["org", "add", "ACME"]);
    s.add_user("ACME\\erin", PASS);
    s.admin(&["share", "add", "docs", "--org", "ACME"]);
    s.admin(&["share", "grant", "docs", "--user", "ACME\\erin", "read_write"]);
    let dir = tempfile::tempdir().unwrap();
    let local = dir.path().join("報告書.txt");
    std::fs::write(&local, "四半期の報告").unwrap();
    let mut c = Interactive::start(&s, "docs", "ACME\\erin", PASS);
    // One command at a time: smbclient reading a pipe may sit on a second
    // line it already buffered.
    c.send(&format!("put \"{}\" 報告書.txt", local.display()));
    c.wait_for("putting file", "put");
    c.send("open 報告書.txt");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !c.output().contains("open file") {
        assert!(Instant::now() < deadline, "smbclient:\n{}\nserver:\n{}", c.output(), s.log_text());
        std::thread::sleep(Duration::from_millis(50));
    }

    let o = s.cli(&["status", "--json"], None, &[]);
    assert!(o.status.success(), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let sessions = v["sessions"].as_array().unwrap();
    let me = sessions.iter().find(|x| x["user"] == "erin").unwrap_or_else(|| panic!("no erin in {v}"));
    assert_eq!(me["org"], "ACME");
    assert!(me["client"].as_str().unwrap().starts_with("127.0.0.1:"));
    assert_eq!(me["dialect"], "3.1.1");
    assert_eq!(me["signing"], true);
    assert_eq!(me["encryption"], true);
    let opens = me["opens"].as_array().unwrap();
    let f = opens.iter().find(|o| o["path"] == "報告書.txt").unwrap_or_else(|| panic!("no open file in {me}"));
    assert_eq!(f["share"], "docs");
    assert!(f["share_mode"].is_string() && f["caching"].is_string() && f["locks"].is_array());
    let id = me["id"].as_u64().unwrap();

    // The text table says the same.
    let t = s.admin(&["status"]);
    assert!(t.contains("erin") && t.contains("ACME") && t.contains("報告書.txt"), "{t}");

    // An organization administrator of another organization does not see it
    // and cannot kick it.
    s.admin(&["org", "add", "BETA"]);
    let o = s.cli(&["user", "add", "BETA\\boss", "--password-stdin", "--admin"], Some(&format!("{PASS}\n")), &[]);
    assert!(o.status.success(), "{}", text(&o));
    let o = s.cli(&["--as", "BETA\\boss", "status", "--json"], None, &[("SMBVAULT_ADMIN_PASSWORD", PASS)]);
    assert!(o.status.success(), "{}", text(&o));
    {
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert!(v["sessions"].as_array().unwrap().iter().all(|x| x["org"] != "ACME"), "{v}");
        let o = s.cli(
            &["--as", "BETA\\boss", "session", "kick", &format!("{id:#x}")],
            None,
            &[("SMBVAULT_ADMIN_PASSWORD", PASS)],
        );
        assert!(!o.status.success(), "BETA admin kicked an ACME session");
    }

    let o = s.cli(&["session", "kick", &format!("{id:#x}"), "--json"], None, &[]);
    assert!(o.status.success(), "{}", text(&o));
    let k: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(k["kicked"]["user"], "erin");

    // The client sees the disconnect on its next request.
    c.send("ls");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = c.output();
        if out.contains("NT_STATUS_CONNECTION_DISCONNECTED")
            || out.contains("NT_STATUS_CONNECTION_RESET")
            || out.contains("NT_STATUS_END_OF_FILE")
            || c.child.try_wait().unwrap().is_some()
        {
            break;
        }
        assert!(Instant::now() < deadline, "smbclient did not notice the kick:\n{out}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let v: serde_json::Value = serde_json::from_slice(&s.cli(&["status", "--json"], None, &[]).stdout).unwrap();
    assert!(v["sessions"].as_array().unwrap().iter().all(|x| x["id"].as_u64() != Some(id)), "{v}");

    // Audited, in the organization's log.
    std::thread::sleep(Duration::from_millis(600));
    let o = s.cli(&["logs", "operations", "--org", "ACME", "--json"], None, &[]);
    assert!(text(&o).contains("session.kick"), "{}", text(&o));
}

/// The metrics page as Python prometheus_client parses it.
fn scrape(s: &TestServer) -> serde_json::Value {
    let o = python("metrics_parse.py", &[&format!("http://127.0.0.1:{}/metrics", s.metrics_port)]);
    assert!(o.status.success(), "/metrics does not parse: {}", text(&o));
    serde_json::from_slice(&o.stdout).unwrap()
}

#[test]
fn metrics_parse_and_byte_counters_follow_a_transfer() {
    let s = TestServer::start();
    assert_ne!(s.metrics_port, 0, "no metrics line at start:\n{}", s.log_text());
    let pw = s.admin_password.clone().unwrap();
    let before = scrape(&s);
    assert!(before["__content_type"].as_str().unwrap().starts_with("text/plain; version=0.0.4"));
    assert_eq!(before["smbvault_up"], 1.0);

    const SIZE: f64 = 8.0 * 1024.0 * 1024.0;
    let dir = tempfile::tempdir().unwrap();
    let local = dir.path().join("up.bin");
    common::random_file(&local, SIZE as usize, 7);
    let o = s.smbclient("share", "DEFAULT\\admin", &pw, &[], &format!("put {} up.bin", local.display()));
    assert!(o.status.success(), "{}", text(&o));
    let mid = scrape(&s);
    let got = dir.path().join("down.bin");
    let o = s.smbclient("share", "DEFAULT\\admin", &pw, &[], &format!("get up.bin {}", got.display()));
    assert!(o.status.success(), "{}", text(&o));
    let after = scrape(&s);

    let delta = |a: &serde_json::Value, b: &serde_json::Value, k: &str| {
        b[k].as_f64().unwrap_or_else(|| panic!("{k} missing")) - a[k].as_f64().unwrap()
    };
    let up = delta(&before, &mid, "smbvault_received_bytes_total");
    assert!((SIZE..SIZE * 1.05).contains(&up), "received {up} bytes for an 8 MiB upload");
    let down = delta(&mid, &after, "smbvault_sent_bytes_total");
    assert!((SIZE..SIZE * 1.05).contains(&down), "sent {down} bytes for an 8 MiB download");
    assert!(delta(&before, &mid, "smbvault_requests_total{command=\"write\"}") >= 1.0);
    assert!(delta(&mid, &after, "smbvault_requests_total{command=\"read\"}") >= 1.0);
    assert!(after["smbvault_request_duration_seconds_count{command=\"read\"}"].as_f64().unwrap() >= 1.0);
    assert!(after["smbvault_connections_total"].as_f64().unwrap() >= 2.0);
    for k in [
        "smbvault_responses_total{class=\"error\"}",
        "smbvault_audit_queue_depth",
        "smbvault_audit_dropped_total",
        "smbvault_backup_last_success{kind=\"db\"}",
        "smbvault_erasures_total",
        "smbvault_erasures_pending{state=\"due\"}",
        "smbvault_limits_hit_total{limit=\"connections\"}",
    ] {
        assert!(after.get(k).is_some(), "{k} missing from /metrics");
    }

    // Sessions per organization while one is connected.
    let c = Interactive::start(&s, "share", "DEFAULT\\admin", &pw);
    let live = scrape(&s);
    assert_eq!(live["smbvault_sessions{org=\"DEFAULT\",org_id=\"1\"}"], 1.0, "{live}");
    drop(c);

    let health = Command::new("python3")
        .args(["-c", "import sys,urllib.request;print(urllib.request.urlopen(sys.argv[1]).read().decode())"])
        .arg(format!("http://127.0.0.1:{}/healthz", s.metrics_port))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&health.stdout).trim(), "ready");
}

#[test]
fn config_check_rejects_broken_files_naming_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[server]\nname = \"X\"\n\n[accounts]\nlockout_threshold = \"five\"\n").unwrap();
    let o = Command::new(common::bin()).args(["config", "check"]).arg(&bad).output().unwrap();
    assert!(!o.status.success());
    let e = text(&o);
    assert!(e.contains("line 5") && e.contains("accounts.lockout_threshold"), "{e}");

    std::fs::write(&bad, "[server]\nlisen = \"0.0.0.0:445\"\n").unwrap();
    let o = Command::new(common::bin()).args(["config", "check"]).arg(&bad).output().unwrap();
    assert!(!o.status.success());
    assert!(text(&o).contains("line 2") && text(&o).contains("server.lisen"), "{}", text(&o));

    // The shipped file is fine, prints the effective configuration, and
    // warns about SMB 2.x with encryption required.
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/smbvault.toml");
    let o = Command::new(common::bin()).args(["config", "check"]).arg(&shipped).output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("lockout_threshold = 5") && out.contains("[metrics]"), "{out}");
    assert!(String::from_utf8_lossy(&o.stderr).contains("min_dialect"), "{}", text(&o));

    // SMBVAULT_CONFIG names the file when --config does not.
    let o = Command::new(common::bin())
        .args(["config", "check", "--json"])
        .env("SMBVAULT_CONFIG", &shipped)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["ok"], true);
    assert_eq!(v["config"]["accounts"]["lockout_threshold"], 5);
}

#[test]
fn systemd_unit_verifies() {
    if Command::new("systemd-analyze").arg("--version").output().is_err() {
        eprintln!("SKIPPED: systemd-analyze is not installed and protocol-tests/run.sh could not install it");
        return;
    }
    let unit = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/systemd/smbvault.service");
    let body = std::fs::read_to_string(&unit).unwrap();
    for want in [
        "Type=notify",
        "ExecStart=/usr/local/bin/smbvault serve",
        "User=smbvault",
        "AmbientCapabilities=CAP_NET_BIND_SERVICE",
        "ProtectSystem=strict",
        "ReadWritePaths=/var/lib/smbvault",
        "NoNewPrivileges=yes",
        "ExecReload=/bin/kill -HUP $MAINPID",
    ] {
        assert!(body.contains(want), "unit lacks {want}");
    }
    // verify also checks that ExecStart exists: point it at the binary we
    // built when it is not installed where the unit expects it.
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("smbvault.service");
    let exec = if Path::new("/usr/local/bin/smbvault").exists() {
        body.clone()
    } else {
        body.replace("/usr/local/bin/smbvault", common::bin())
    };
    std::fs::write(&copy, exec).unwrap();
    let o = Command::new("systemd-analyze").arg("verify").arg(&copy).output().unwrap();
    assert!(o.status.success() && o.stderr.is_empty(), "systemd-analyze verify: {}", text(&o));
}

#[test]
fn sd_notify_ready_and_stopping() {
    let dir = tempfile::tempdir().unwrap();
    let sock_path = dir.path().join("notify.sock");
    let sock = std::os::unix::net::UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut s = TestServer::start_with(Options {
        env: vec![("NOTIFY_SOCKET".into(), sock_path.display().to_string())],
        ..Options::default()
    });
    let mut buf = [0u8; 4096];
    let n = sock.recv(&mut buf).expect("READY=1");
    let msg = String::from_utf8_lossy(&buf[..n]).to_string();
    // The first message is READY: nothing else (no child process) writes to the socket.
    assert!(msg.contains("READY=1") && msg.contains("STATUS="), "{msg}");
    signal(&s, "-HUP");
    let n = sock.recv(&mut buf).unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).contains("RELOADING=1"));
    let n = sock.recv(&mut buf).unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).contains("READY=1"));
    let _ = Command::new("kill").args(["-TERM", &s.pid().unwrap().to_string()]).status();
    let n = sock.recv(&mut buf).unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).contains("STOPPING=1"));
    assert_eq!(s.stop().and_then(|st| st.code()), Some(0));
}

/// Every server log line: no escape codes, JST timestamps; JSON lines parse.
#[test]
fn log_lines_plain_or_json_with_jst_timestamps() {
    // Text (stderr is a file here, not a terminal).
    let mut s = TestServer::start();
    let pw = s.admin_password.clone().unwrap();
    assert!(logon_fails(&s, "DEFAULT\\admin", "wrong"));
    let o = s.smbclient("share", "DEFAULT\\admin", &pw, &[], "ls");
    assert!(o.status.success());
    s.stop();
    let log = s.log_text();
    assert!(!log.contains('\u{1b}'), "escape codes in a log file:\n{log}");
    let lines: Vec<&str> = log.lines().filter(|l| l.starts_with("20")).collect();
    assert!(!lines.is_empty(), "{log}");
    for l in &lines {
        let ts = l.split_whitespace().next().unwrap();
        assert!(ts.ends_with("+09:00"), "not JST: {l}");
    }
    let ntp: Vec<_> = log.lines().filter(|l| l.contains("NTP")).collect();
    assert!(ntp.len() <= 1, "warning said twice: {ntp:?}");

    // JSON.
    let s = TestServer::start_with(Options { extra: vec!["[log]\nformat = \"json\"".into()], ..Options::default() });
    assert!(logon_fails(&s, "DEFAULT\\admin", "wrong"));
    signal(&s, "-HUP");
    wait_log(&s, "configuration reloaded");
    let log = s.log_text();
    let mut n = 0;
    for l in log.lines().filter(|l| l.starts_with('{')) {
        let v: serde_json::Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"));
        assert!(v["timestamp"].as_str().unwrap().ends_with("+09:00"), "{l}");
        assert!(v["level"].is_string() && v["message"].is_string(), "{l}");
        n += 1;
    }
    assert!(n >= 2, "{log}");
    // Every stderr line is JSON (stdout lines are the start-up messages).
    assert!(!log.contains('\u{1b}'));
}

#[test]
fn org_usage_reports_bytes_files_and_quota() {
    let mut s = TestServer::start();
    s.admin(&["org", "add", "ACME", "--quota", "1G"]);
    s.add_user("ACME\\erin", PASS);
    s.admin(&["share", "add", "docs", "--org", "ACME"]);
    s.admin(&["share", "grant", "docs", "--user", "ACME\\erin", "read_write"]);
    let dir = tempfile::tempdir().unwrap();
    let local = dir.path().join("a.bin");
    common::random_file(&local, 3 << 20, 1);
    let o = s.smbclient("docs", "ACME\\erin", PASS, &[], &format!("mkdir 経理; put {} 経理/a.bin", local.display()));
    assert!(o.status.success(), "{}", text(&o));

    let check = |s: &TestServer| {
        let o = s.cli(&["org", "usage", "ACME", "--json"], None, &[]);
        assert!(o.status.success(), "{}", text(&o));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        let u = &v[0];
        assert_eq!(u["org"], "ACME");
        assert_eq!(u["quota_bytes"], 1u64 << 30);
        let used = u["bytes_used"].as_u64().unwrap();
        assert!((3 << 20..4 << 20).contains(&used), "{u}");
        assert_eq!(u["files"], 1, "{u}");
        assert!(u["directories"].as_u64().unwrap() >= 2, "{u}");
        assert!(u["last_change"].as_str().unwrap().ends_with("+09:00"), "{u}");
        v
    };
    let live = check(&s);
    let t = s.admin(&["org", "usage"]);
    assert!(t.contains("ACME") && t.contains("1.0 GiB"), "{t}");
    // Without a running server the CLI reads the same numbers itself.
    s.stop();
    assert_eq!(check(&s), live);
}

#[test]
fn logs_follow_prints_new_events() {
    let s = TestServer::start();
    let pw = s.admin_password.clone().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("follow.out");
    let mut child = Command::new(common::bin())
        .arg("--config")
        .arg(&s.config)
        .args(["logs", "operations", "--follow", "--format", "jsonl"])
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let local = dir.path().join("追跡.txt");
    std::fs::write(&local, b"x").unwrap();
    let o = s.smbclient("share", "DEFAULT\\admin", &pw, &[], &format!("put \"{}\" 追跡.txt", local.display()));
    assert!(o.status.success(), "{}", text(&o));
    let deadline = Instant::now() + Duration::from_secs(20);
    let seen = loop {
        let t = std::fs::read_to_string(&out).unwrap_or_default();
        if t.contains("追跡.txt") {
            break t;
        }
        assert!(Instant::now() < deadline, "--follow never printed the new event:\n{t}");
        std::thread::sleep(Duration::from_millis(200));
    };
    let _ = child.kill();
    let _ = child.wait();
    for l in seen.lines() {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        assert!(v["time"].as_str().unwrap().ends_with("+09:00"));
    }
}

#[test]
fn completions_man_page_and_meaningless_globals() {
    let o = Command::new(common::bin()).args(["completions", "bash"]).output().unwrap();
    assert!(o.status.success());
    let script = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(script.contains("_smbvault") && script.contains("status"), "{script}");
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("smbvault.bash");
    std::fs::write(&f, &script).unwrap();
    let st = Command::new("bash").arg("-n").arg(&f).status().unwrap();
    assert!(st.success(), "bash completion script does not parse");

    let o = Command::new(common::bin()).args(["man"]).output().unwrap();
    assert!(o.status.success());
    let page = String::from_utf8_lossy(&o.stdout);
    assert!(page.contains(".TH smbvault 1") && page.contains("status"), "{page}");
    let o = Command::new(common::bin()).args(["man", "status"]).output().unwrap();
    assert!(String::from_utf8_lossy(&o.stdout).contains(".TH smbvault-status 1"));

    let o = Command::new(common::bin()).args(["serve", "--as", "ACME\\erin"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("--as has no meaning"), "{}", text(&o));
}

#[test]
fn status_shows_byte_range_locks_and_oplocks() {
    let s = TestServer::start();
    let pw = s.admin_password.clone().unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("protocol-tests/python/hold_lock.py");
    let mut holder = Command::new("python3")
        .arg(&script)
        .args(["127.0.0.1", &s.port.to_string(), "share", "DEFAULT\\admin", &pw, "locked.bin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(holder.stdout.as_mut().unwrap()), &mut line).unwrap();
    assert!(line.starts_with("held"), "{line}");
    let granted = match line.trim().rsplit('=').next().unwrap() {
        "9" => "batch",
        "8" => "exclusive",
        "1" => "level2",
        _ => "none",
    };
    let v: serde_json::Value = serde_json::from_slice(&s.cli(&["status", "--json"], None, &[]).stdout).unwrap();
    let open = v["sessions"][0]["opens"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["path"] == "locked.bin")
        .unwrap_or_else(|| panic!("{v}"))
        .clone();
    assert_eq!(open["locks"], serde_json::json!([{ "offset": 100, "length": 50, "exclusive": true }]), "{open}");
    assert_eq!(open["share_mode"], "RWD");
    // What the server granted in the CREATE response is what status shows.
    assert_eq!(open["caching"], granted, "{open}");
    drop(holder.stdin.take());
    let _ = holder.wait();
}

#[test]
fn sighup_lowers_the_connection_limit_and_metrics_count_refusals() {
    let s = TestServer::start();
    let pw = s.admin_password.clone().unwrap();
    let mut held = Interactive::start(&s, "share", "DEFAULT\\admin", &pw);
    edit_config(&s, "[server]\n", "[server]\nmax_connections = 1\n");
    signal(&s, "-HUP");
    wait_log(&s, "server.max_connections: 4096 -> 1");
    for _ in 0..3 {
        let o = s.smbclient("share", "DEFAULT\\admin", &pw, &[], "ls");
        assert!(!o.status.success(), "a second connection got in past max_connections = 1");
    }
    let m = scrape(&s);
    assert!(m["smbvault_limits_hit_total{limit=\"connections\"}"].as_f64().unwrap() >= 3.0, "{m}");
    assert_eq!(s.log_text().matches("connection limit reached").count(), 1, "warning repeated:\n{}", s.log_text());
    // The held session still works: a second `pwd` answers.
    held.send("pwd");
    let deadline = Instant::now() + Duration::from_secs(30);
    while held.output().matches("Current directory is").count() < 2 {
        assert!(Instant::now() < deadline, "held session dead after the limit:\n{}", held.output());
        std::thread::sleep(Duration::from_millis(50));
    }
}
