//! Data lifecycle end to end: an organization whose contract ended is
//! erased by the running server `erase_after_days` later. Its live session
//! is cut, its key leaves keys.db, its data and audit log directories are
//! deleted, its users can no longer log on, its name is free again, another
//! organization is untouched, no database or data backup generation keeps its
//! key or data (and they all still verify), and the server log records the
//! erasure.

mod common;

use std::time::{Duration, Instant};

use common::*;

fn options(data_target: &std::path::Path) -> Options {
    Options {
        extra: vec![format!(
            "[backup]\nerase_after_days = 30\nerase_check_interval_secs = 1\ndata_target = {data_target:?}"
        )],
        ..Options::default()
    }
}

/// Every `keys.db` copy under `dir` (database and data backup generations)
/// and the organizations whose wrapped key it holds.
fn backup_key_rows(dir: &std::path::Path) -> Vec<(std::path::PathBuf, Vec<i64>)> {
    let open = |p: &std::path::Path| {
        let db = rusqlite::Connection::open_with_flags(p, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
        let mut st = db.prepare("SELECT org FROM org_keys ORDER BY org").unwrap();
        st.query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect()
    };
    walk(dir)
        .into_iter()
        .filter(|p| p.file_name().is_some_and(|n| n == "keys.db"))
        .map(|p| (p.clone(), open(&p)))
        .collect()
}

/// Paths under `dir` with a component named `name`.
fn grep_names(dir: &std::path::Path, name: &str) -> Vec<std::path::PathBuf> {
    walk(dir).into_iter().filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy() == name)).collect()
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
    let target = tempfile::tempdir().unwrap();
    let s = TestServer::start_with(options(target.path()));
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
    // A database and a data backup generation that hold ACME's key and data.
    std::thread::sleep(Duration::from_secs(3));
    s.admin(&["backup", "now"]);
    s.admin(&["backup", "data-now"]);
    let acme_id: i64 = {
        let db = rusqlite::Connection::open_with_flags(
            s.data_dir().join("accounts.db"),
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .unwrap();
        db.query_row("SELECT id FROM orgs WHERE name = 'ACME'", [], |r| r.get(0)).unwrap()
    };
    // (The generation the server made at start may predate ACME.)
    for dir in [s.data_dir().join("backups"), target.path().to_path_buf()] {
        let rows = backup_key_rows(&dir);
        assert!(rows.iter().any(|(_, o)| o.contains(&acme_id)), "no backup of ACME's key in {dir:?}: {rows:?}");
    }
    let acme_dir = format!("{acme_id:016x}");
    assert!(!grep_names(target.path(), &acme_dir).is_empty(), "ACME's data is in the data backup");
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
    let out = s.admin(&["org", "end-contract", "ACME", "2000-01-31", "--allow-past", "--yes"]);
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

    // No backup generation holds ACME's key or data any more, and they all still verify.
    let rows = [backup_key_rows(&s.data_dir().join("backups")), backup_key_rows(target.path())].concat();
    assert!(rows.len() >= 2 && rows.iter().all(|(_, o)| !o.contains(&acme_id)), "{rows:?}");
    assert!(grep_names(target.path(), &acme_dir).is_empty(), "ACME's data left in the data backups");
    for args in [&["backup", "verify"][..], &["backup", "verify", "--data"][..]] {
        let o = s.cli(args, None, &[]);
        assert!(o.status.success(), "{args:?}: {}", text(&o));
    }

    // The erasure is in the server log; the name ACME is free again.
    let o = s.cli(&["logs", "operations", "--org", "server", "--format", "jsonl"], None, &[]);
    let log = text(&o);
    assert!(log.contains("org.erase") && log.contains("ACME"), "server log: {log}");
    s.admin(&["org", "add", "ACME"]);
    assert!(org_names(&s).contains(&"ACME".to_string()));
    assert_eq!(org_dirs(&s).len(), dirs_after.len(), "a new ACME gets no data before first use");
}
