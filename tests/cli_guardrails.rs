//! Irreversible operator actions ask first, and the dangerous defaults
//! refuse: a contract end in the past or years ahead, a destructive command
//! without confirmation (exit code 4, nothing changed), a new master key
//! over a data directory in use or beside an existing key file.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

struct Env {
    dir: tempfile::TempDir,
    config: PathBuf,
}

const PW: &str = "Wonder-Start-Pw1\n";

impl Env {
    /// `init`, then ACME with user alice and share docs.
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("smbvault.toml");
        let data = dir.path().join("data");
        std::fs::write(&config, format!("[server]\ndata_dir = {:?}\n", data.to_str().unwrap())).unwrap();
        let env = Self { dir, config };
        env.ok(&["init"]);
        env.ok(&["org", "add", "ACME"]);
        let o = env.run(&["user", "add", "ACME\\alice", "--password-stdin"], Some(PW));
        assert!(o.status.success(), "{}", text(&o));
        env.ok(&["share", "add", "docs", "--org", "ACME"]);
        env
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn run(&self, args: &[&str], stdin: Option<&str>) -> Output {
        run_in(&self.config, args, stdin)
    }

    fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args, None);
        assert!(o.status.success(), "{args:?}: {}", text(&o));
        String::from_utf8(o.stdout).unwrap()
    }

    fn org(&self) -> Value {
        let v: Value = serde_json::from_str(&self.ok(&["--json", "org", "list"])).unwrap();
        v.as_array().unwrap().iter().find(|o| o["name"] == "ACME").cloned().unwrap()
    }
}

fn run_in(config: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_smbvault"));
    cmd.arg("--config").arg(config).args(args).env_remove("SMBVAULT_NEW_PASSWORD");
    cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut pipe = child.stdin.take().unwrap();
    if let Some(s) = stdin {
        pipe.write_all(s.as_bytes()).unwrap();
    }
    drop(pipe);
    child.wait_with_output().unwrap()
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

fn refused(o: &Output, code: i32, words: &[&str]) {
    assert_eq!(o.status.code(), Some(code), "{}", text(o));
    let e = String::from_utf8_lossy(&o.stderr);
    for w in words {
        assert!(e.contains(w), "missing {w:?} in: {e}");
    }
}

fn jst_today_plus(days: i64) -> String {
    (chrono::Utc::now() + chrono::Duration::hours(9) + chrono::Duration::days(days)).date_naive().to_string()
}

#[test]
fn end_contract_refuses_past_and_far_dates_and_asks_first() {
    let env = Env::new();
    // A typo into the past would erase the tenant within the hour.
    let o = env.run(&["org", "end-contract", "ACME", "2020-01-01"], None);
    refused(&o, 2, &["2020-01-01 is in the past", "--allow-past"]);
    let o = env.run(&["org", "end-contract", "ACME", &jst_today_plus(-1), "--yes"], None);
    refused(&o, 2, &["in the past"]);
    let o = env.run(&["org", "end-contract", "ACME", &jst_today_plus(400), "--yes"], None);
    refused(&o, 2, &["more than a year"]);
    let o = env.run(&["org", "end-contract", "ACME", "2027-13-01"], None);
    refused(&o, 2, &["bad date"]);
    assert!(env.org()["contract_end"].is_null(), "a refused command recorded something");

    // A good date: the exact erasure time in JST, then a question that a
    // script (no terminal) cannot answer: refused with exit code 4.
    let day = jst_today_plus(10);
    let o = env.run(&["org", "end-contract", "ACME", &day], None);
    refused(&o, 4, &["not confirmed, nothing was changed", "JST", "type \"ACME\"", "--yes"]);
    assert!(env.org()["contract_end"].is_null());
    let dry = env.ok(&["org", "end-contract", "ACME", &day, "--dry-run"]);
    assert!(dry.contains("dry run, nothing changed") && dry.contains(" JST"), "{dry}");
    assert!(env.org()["contract_end"].is_null());
    // Erased 30 days after the end of the last day (JST): 00:00:00 JST 31 days later.
    let out = env.ok(&["org", "end-contract", "ACME", &day, "--yes"]);
    assert!(out.contains(&format!("{} 00:00:00 JST", jst_today_plus(41))), "{out}");
    assert_eq!(env.org()["contract_end"], day.as_str());
    let out = env.ok(&["org", "cancel-end-contract", "ACME"]);
    assert!(out.contains("cancelled"), "{out}");
    assert!(env.org()["contract_end"].is_null() && env.org()["erase_at"].is_null());
    // --allow-past is the deliberate way to record a contract that already ended.
    env.ok(&["org", "end-contract", "ACME", &jst_today_plus(-3), "--allow-past", "--yes"]);
    assert_eq!(env.org()["contract_end"], jst_today_plus(-3).as_str());
}

#[test]
fn destructive_commands_refuse_without_confirmation() {
    let env = Env::new();
    let users = || env.ok(&["--json", "user", "list", "--org", "ACME"]);
    let o = env.run(&["user", "delete", "ACME\\alice"], None);
    refused(&o, 4, &["not confirmed", "delete user ACME\\alice", "--yes"]);
    assert!(users().contains("alice"));
    let dry = env.ok(&["user", "delete", "ACME\\alice", "--dry-run"]);
    assert!(dry.contains("dry run") && users().contains("alice"), "{dry}");

    let o = env.run(&["share", "remove", "docs", "--delete-data"], None);
    refused(&o, 4, &["not confirmed", "delete every file", "\"docs\""]);
    assert!(env.ok(&["share", "list"]).contains("docs"));

    let b = env.ok(&["--json", "backup", "now"]);
    let generation = serde_json::from_str::<Value>(&b).unwrap()["generation"].as_str().unwrap().to_string();
    let o = env.run(&["backup", "restore", &generation], None);
    refused(&o, 4, &["not confirmed", "replace the databases", &generation]);
    assert!(
        !env.data()
            .join("backups")
            .read_dir()
            .unwrap()
            .flatten()
            .any(|e| { e.file_name().to_string_lossy().starts_with("replaced-") })
    );
    let dry = env.ok(&["backup", "restore", &generation, "--dry-run"]);
    assert!(dry.contains("dry run") && dry.contains("it verifies"), "{dry}");

    // With --yes they go ahead.
    env.ok(&["user", "delete", "ACME\\alice", "--yes"]);
    assert!(!users().contains("alice"));
    env.ok(&["share", "remove", "docs", "--delete-data", "--yes"]);
    assert!(!env.ok(&["share", "list"]).contains("docs"));
    let out = env.ok(&["backup", "restore", "latest", "--yes"]);
    assert!(out.contains("restored"), "{out}");
    assert!(users().contains("alice"), "the restore brought the deleted user back");
}

#[test]
fn no_new_master_key_over_a_used_directory_or_beside_an_existing_key_file() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("smbvault.toml");
    let data = dir.path().join("data");
    std::fs::write(&config, format!("[server]\ndata_dir = {:?}\nlisten = \"127.0.0.1:0\"\n", data)).unwrap();
    // A data directory with something in it but no key slots (a restore gone
    // wrong, a half-deleted directory): init and serve refuse.
    std::fs::create_dir_all(data.join("store")).unwrap();
    std::fs::write(data.join("accounts.db"), b"not empty").unwrap();
    for args in [&["init"][..], &["serve"][..]] {
        let o = run_in(&config, args, None);
        refused(&o, 1, &["refusing to create a new master key", "not empty", "--force-new-key"]);
    }
    assert!(!dir.path().join("keys/master.key").exists() && !data.join("keys").exists());

    // The key file exists (this machine was set up) and the data directory
    // is empty: the data disk is not mounted. Refused too.
    std::fs::remove_dir_all(&data).unwrap();
    let key = dir.path().join("keys/master.key");
    std::fs::create_dir_all(key.parent().unwrap()).unwrap();
    std::fs::write(&key, [7u8; 32]).unwrap();
    let o = run_in(&config, &["serve"], None);
    refused(&o, 1, &["refusing to create a new master key", "already exists", "mounted", "smbvault init"]);
    assert!(!data.join("keys").exists(), "nothing created");

    // --force-new-key is the deliberate way.
    let o = run_in(&config, &["init", "--force-new-key"], None);
    assert!(o.status.success(), "{}", text(&o));
    assert!(data.join("keys/master.slots").is_file());
    // The key file stays outside the data directory, private, as does the data directory.
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&data).unwrap().permissions().mode() & 0o777, 0o700);
    assert_eq!(std::fs::metadata(data.join("accounts.db")).unwrap().permissions().mode() & 0o777, 0o600);
}

#[test]
fn permission_problems_are_not_reported_as_uninitialized() {
    use std::os::unix::fs::PermissionsExt;
    let env = Env::new();
    // The data directory (0700) belongs to another user than the one who
    // runs the command: as root, run it as nobody; otherwise take our own
    // permissions away.
    let root = rustix::process::geteuid().is_root();
    let o = if root {
        std::fs::set_permissions(env.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(&env.config, std::fs::Permissions::from_mode(0o644)).unwrap();
        Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", env!("CARGO_BIN_EXE_smbvault")])
            .arg("--config")
            .arg(&env.config)
            .args(["user", "list"])
            .output()
            .expect("setpriv (util-linux)")
    } else {
        std::fs::set_permissions(env.data(), std::fs::Permissions::from_mode(0o000)).unwrap();
        let o = env.run(&["user", "list"], None);
        std::fs::set_permissions(env.data(), std::fs::Permissions::from_mode(0o700)).unwrap();
        o
    };
    assert_eq!(std::fs::metadata(env.data()).unwrap().permissions().mode() & 0o777, 0o700);
    refused(&o, 1, &["permission denied", "run smbvault as the user that owns the data directory"]);
    assert!(!String::from_utf8_lossy(&o.stderr).contains("smbvault init"), "{}", text(&o));
}

/// The passphrase variable is read, then gone from the running server's
/// environment (/proc/PID/environ), and the server still unlocks with it.
#[test]
fn passphrase_variable_is_not_left_in_the_server_environment() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("smbvault.toml");
    let data = dir.path().join("data");
    std::fs::write(
        &config,
        format!(
            "[server]\ndata_dir = {:?}\nlisten = \"127.0.0.1:0\"\n[keys]\npassphrase_env = \"SV_TEST_PASSPHRASE\"\n",
            data
        ),
    )
    .unwrap();
    let secret = "a passphrase nobody else may read";
    let mut child = Command::new(env!("CARGO_BIN_EXE_smbvault"))
        .arg("--config")
        .arg(&config)
        .arg("serve")
        .env("SV_TEST_PASSPHRASE", secret)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let listening = lines.by_ref().map_while(Result::ok).any(|l| l.starts_with("smbvault listening on"));
    let environ = std::fs::read(format!("/proc/{}/environ", child.id())).unwrap();
    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    child.wait().unwrap();
    assert!(listening, "the server did not start");
    let found = |needle: &[u8]| environ.windows(needle.len()).any(|w| w == needle);
    assert!(!found(secret.as_bytes()) && !found(b"SV_TEST_PASSPHRASE"), "the passphrase is in the environment");
    // The master key opens with the passphrase: a second start works, and a
    // wrong passphrase does not.
    let o = Command::new(env!("CARGO_BIN_EXE_smbvault"))
        .arg("--config")
        .arg(&config)
        .args(["user", "list", "--org", "DEFAULT"])
        .env("SV_TEST_PASSPHRASE", secret)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let o = Command::new(env!("CARGO_BIN_EXE_smbvault"))
        .arg("--config")
        .arg(&config)
        .args(["user", "list", "--org", "DEFAULT"])
        .env("SV_TEST_PASSPHRASE", "wrong")
        .output()
        .unwrap();
    assert!(!o.status.success() && text(&o).contains("passphrase does not unlock"), "{}", text(&o));
}

/// `key add-passphrase` makes a passphrase open the master key too,
/// `key remove-passphrase` takes it away again; both are audited.
#[test]
fn passphrase_slots_are_added_and_removed() {
    let env = Env::new();
    let o = env.run(&["key", "add-passphrase"], None);
    refused(&o, 1, &["SMBVAULT_NEW_PASSPHRASE"]);
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_smbvault"));
    let o = cmd
        .arg("--config")
        .arg(&env.config)
        .args(["key", "add-passphrase"])
        .env("SMBVAULT_NEW_PASSPHRASE", "a long enough passphrase")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    // A config that unlocks with the passphrase only (the key file path is wrong).
    let pp_config = env.dir.path().join("pp.toml");
    std::fs::write(
        &pp_config,
        format!(
            "[server]\ndata_dir = {:?}\n[keys]\nkey_file = \"/nonexistent/master.key\"\npassphrase_env = \"SV_PP\"\n",
            env.data()
        ),
    )
    .unwrap();
    let with_pp = |pp: &str| {
        Command::new(env!("CARGO_BIN_EXE_smbvault"))
            .arg("--config")
            .arg(&pp_config)
            .args(["org", "list"])
            .env("SV_PP", pp)
            .output()
            .unwrap()
    };
    assert!(with_pp("a long enough passphrase").status.success());
    assert!(!with_pp("another passphrase").status.success());
    let out = env.ok(&["key", "remove-passphrase"]);
    assert!(out.contains("removed 1"), "{out}");
    let o = with_pp("a long enough passphrase");
    assert!(!o.status.success() && text(&o).contains("passphrase does not unlock"), "{}", text(&o));
    let log = env.ok(&["logs", "operations", "--org", "server", "--format", "jsonl"]);
    assert!(log.contains("key.add-passphrase") && log.contains("key.remove-passphrase"), "{log}");
}

/// With systemd, the key file is the credential `master.key` in
/// $CREDENTIALS_DIRECTORY; nothing of it lands in the data directory or
/// beside the config. A key file inside the data directory (the old
/// default), or readable by others, draws a warning at every start.
#[test]
fn systemd_credential_and_key_file_warnings() {
    use std::io::BufRead;
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("smbvault.toml");
    let data = dir.path().join("data");
    std::fs::write(&config, format!("[server]\ndata_dir = {:?}\nlisten = \"127.0.0.1:0\"\n", data)).unwrap();
    let creds = dir.path().join("credentials");
    std::fs::create_dir(&creds).unwrap();
    std::fs::write(creds.join("master.key"), [0x5au8; 32]).unwrap();
    std::fs::set_permissions(creds.join("master.key"), std::fs::Permissions::from_mode(0o600)).unwrap();
    let with_creds = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_smbvault"))
            .arg("--config")
            .arg(&config)
            .args(args)
            .env("CREDENTIALS_DIRECTORY", &creds)
            .output()
            .unwrap()
    };
    let o = with_creds(&["init"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains(creds.join("master.key").to_str().unwrap()), "{}", text(&o));
    assert!(!dir.path().join("keys").exists() && !data.join("keys/master.key").exists());
    assert!(with_creds(&["org", "list"]).status.success());
    // Without the credential there is no key to open it with.
    let o = run_in(&config, &["org", "list"], None);
    assert!(!o.status.success() && text(&o).contains("cannot read key file"), "{}", text(&o));

    // The old layout: the key file inside the data directory, mode 0644.
    std::fs::copy(creds.join("master.key"), data.join("keys/master.key")).unwrap();
    std::fs::set_permissions(data.join("keys/master.key"), std::fs::Permissions::from_mode(0o644)).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_smbvault"))
        .arg("--config")
        .arg(&config)
        .arg("serve")
        .env("RUST_LOG", "error")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let listening = lines.by_ref().map_while(Result::ok).any(|l| l.starts_with("smbvault listening on"));
    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let out = child.wait_with_output().unwrap();
    assert!(listening, "the old layout still starts");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("lies inside the data directory") && err.contains("chmod 600"), "{err}");
}
