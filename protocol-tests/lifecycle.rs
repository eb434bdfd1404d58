//! Data lifecycle end to end: an organization whose contract ended is
//! erased by the running server `erase_after_days` later. Its live session
//! is cut, its key leaves keys.db, its data and audit log directories are
//! deleted, its users can no longer log on, its name is free again, another
//! organization is untouched, and the server log records the erasure.

mod common;

use std::time::{Duration, Instant};

use common::*;

fn options() -> Options {
    Options {
        extra: vec!["[backup]\nerase_after_days = 30\nerase_check_interval_secs = 1".into()],
        ..Options::default()
    }
}

/// Data directories of organizations (`orgs/<id as 16 hex digits>`).
fn org_dirs(s: &TestServer) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(s.data_dir().join("store").join("orgs"))
        .map(|rd| rd.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

/// Audit log directories of organizations (`audit/org-<id>`).
fn org_logs(s: &TestServer) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(s.data_dir().join("audit"))
        .map(|rd| rd.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    v.retain(|n| n.starts_with("org-"));
    v.sort();
    v
}

fn org_names(s: &TestServer) -> Vec<String> {
    let v: serde_json::Value = serde_json::from_str(&s.admin(&["--json", "org", "list"])).expect("org list JSON");
    let list = v.as_array().cloned().or_else(|| v["orgs"].as_array().cloned()).unwrap_or_default();
    list.iter().filter_map(|o| o["name"].as_str().map(str::to_string)).collect()
}

#[test]
fn ended_contract_erases_the_organization() {
    let s = TestServer::start_with(options());
    s.admin(&["org", "add", "ACME"]);
    s.admin(&["org", "add", "BETA"]);
    s.add_user("ACME\\alice", PASS);
    s.add_user("BETA\\bob", PASS);
    s.admin(&["share", "add", "acme-docs", "--org", "ACME"]);
    s.admin(&["share", "add", "beta-docs", "--org", "BETA"]);
    let work = tempfile::tempdir().unwrap();
    let (a, b) = (work.path().join("a.bin"), work.path().join("b.bin"));
    random_file(&a, 300_000, 1);
    random_file(&b, 300_000, 2);
    for (share, user, f) in [("acme-docs", "ACME\\alice", &a), ("beta-docs", "BETA\\bob", &b)] {
        let o = s.smbclient(share, user, PASS, &[], &format!("put {} keep.bin", f.display()));
        assert!(o.status.success(), "put to {share}: {}", text(&o));
    }
    let dirs_before = org_dirs(&s);
    assert!(dirs_before.len() >= 2, "org data dirs: {dirs_before:?}");
    let audit_before = org_logs(&s);

    // A session of ACME that is open when the erasure comes.
    let mut held = std::process::Command::new("smbclient")
        .args(["//127.0.0.1/acme-docs", "-p", &s.port.to_string(), "-U", &format!("ACME\\alice%{PASS}")])
        .args(["-m", "SMB3_11", "--client-protection=encrypt"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(2));

    // The contract ended long ago: more than 30 days have passed.
    let out = s.admin(&["org", "end-contract", "ACME", "2000-01-31"]);
    assert!(out.contains("erased"), "{out}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while org_names(&s).contains(&"ACME".to_string()) {
        assert!(Instant::now() < deadline, "ACME not erased; log:\n{}", s.log_text());
        std::thread::sleep(Duration::from_millis(300));
    }

    // The held session is cut within the revalidation tick (about 1 s;
    // meanwhile its requests fail, the key being gone): its next command fails.
    std::thread::sleep(Duration::from_millis(2500));
    {
        use std::io::Write;
        let mut stdin = held.stdin.take().unwrap();
        let _ = writeln!(stdin, "put {} after.bin\nls\nexit", a.display());
    }
    let out = held.wait_with_output().unwrap();
    let held_text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(
        ["SESSION_EXPIRED", "USER_SESSION_DELETED", "CONNECTION_DISCONNECTED"].iter().any(|s| held_text.contains(s)),
        "the erased organization's session still works: {held_text}"
    );

    // Key, data and log gone; BETA intact.
    let dirs_after = org_dirs(&s);
    assert_eq!(dirs_after.len(), dirs_before.len() - 1, "{dirs_before:?} -> {dirs_after:?}");
    let db = rusqlite::Connection::open_with_flags(
        s.data_dir().join("store").join("keys.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    let keys: i64 = db.query_row("SELECT count(*) FROM org_keys", [], |r| r.get(0)).unwrap();
    assert_eq!(keys as usize, dirs_after.len(), "org_keys rows vs org data dirs {dirs_after:?}");
    let audit_after = org_logs(&s);
    assert_eq!(audit_after.len(), audit_before.len() - 1, "{audit_before:?} -> {audit_after:?}");
    let o = s.smbclient("acme-docs", "ACME\\alice", PASS, &[], "ls");
    assert!(!o.status.success(), "ACME user still logs on: {}", text(&o));
    let o =
        s.smbclient("beta-docs", "BETA\\bob", PASS, &[], &format!("get keep.bin {}", work.path().join("b2").display()));
    assert!(o.status.success(), "BETA after erasure: {}", text(&o));
    assert_eq!(sha256_file(&b), sha256_file(&work.path().join("b2")));

    // The erasure is in the server log; the name ACME is free again.
    let o = s.cli(&["logs", "operations", "--org", "server", "--format", "jsonl"], None, &[]);
    let log = text(&o);
    assert!(log.contains("org.erase") && log.contains("ACME"), "server log: {log}");
    s.admin(&["org", "add", "ACME"]);
    assert!(org_names(&s).contains(&"ACME".to_string()));
    assert_eq!(org_dirs(&s).len(), dirs_after.len(), "a new ACME gets no data before first use");
}
