//! Database backups end to end (docs/backup.md): `backup now` while the
//! server runs, restore after stopping it (the namespace and accounts come
//! back as of the backup), tamper detection by `backup verify`, and an
//! organization erasure purging its wrapped key from every generation.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::*;

fn options() -> Options {
    Options { extra: vec!["[backup]\ndb_generations = 7\nerase_check_interval_secs = 1".into()], ..Options::default() }
}

fn backup_dir(s: &TestServer) -> PathBuf {
    s.data_dir().join("backups").join("db")
}

/// `backup now --json`: the generation name; prints time and size.
fn backup_now(s: &TestServer) -> String {
    let out = s.admin(&["--json", "backup", "now"]);
    let v: serde_json::Value = serde_json::from_str(&out).expect("backup now JSON");
    eprintln!("backup now: {} bytes in {} ms", v["size_bytes"], v["ms"]);
    v["generation"].as_str().expect("generation").to_string()
}

fn org_id(s: &TestServer, name: &str) -> u64 {
    let v: serde_json::Value = serde_json::from_str(&s.admin(&["--json", "org", "list"])).unwrap();
    let list = v.as_array().cloned().or_else(|| v["orgs"].as_array().cloned()).unwrap_or_default();
    list.iter().find(|o| o["name"] == name).and_then(|o| o["id"].as_u64()).unwrap_or_else(|| panic!("no org {name}"))
}

fn user_names(s: &TestServer, org: &str) -> String {
    s.admin(&["--json", "user", "list", "--org", org])
}

#[test]
fn restore_brings_back_namespace_and_accounts() {
    let mut s = TestServer::start_with(options());
    s.admin(&["org", "add", "ACME"]);
    s.add_user("ACME\\alice", PASS);
    s.admin(&["share", "add", "docs", "--org", "ACME"]);
    let work = tempfile::tempdir().unwrap();
    let f = work.path().join("keep.bin");
    random_file(&f, 3_000_000, 7);
    let o = s.smbclient("docs", "ACME\\alice", PASS, &[], &format!("put {} keep.bin", f.display()));
    assert!(o.status.success(), "put: {}", text(&o));
    // The CLI's snapshot sees the server's last commit (at most
    // commit_interval_secs, 2 s, behind).
    std::thread::sleep(Duration::from_secs(3));
    let generation = backup_now(&s);

    // Changes after the backup: a new user, the file deleted.
    s.add_user("ACME\\bob", PASS);
    let o = s.smbclient("docs", "ACME\\alice", PASS, &[], "del keep.bin");
    assert!(o.status.success(), "del: {}", text(&o));
    assert!(user_names(&s, "ACME").contains("bob"));

    // Refused while the server runs.
    let o = s.cli(&["backup", "restore", &generation], None, &[]);
    assert!(!o.status.success() && text(&o).contains("stop it first"), "{}", text(&o));
    // Operator only.
    let o = s.cli(&["--as", "ACME\\alice", "backup", "list"], None, &[("SMBVAULT_ADMIN_PASSWORD", PASS)]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));

    s.stop();
    let started = Instant::now();
    let out = s.admin(&["backup", "restore", &generation, "--yes"]);
    eprintln!("restore: {} ms: {out}", started.elapsed().as_millis());
    assert!(out.contains("restored"), "{out}");
    assert!(s.data_dir().join("backups").read_dir().unwrap().flatten().any(|e| {
        let n = e.file_name().to_string_lossy().into_owned();
        n.starts_with("replaced-") && e.path().join("accounts.db").is_file()
    }));
    s.spawn();

    let back = work.path().join("back.bin");
    let o = s.smbclient("docs", "ACME\\alice", PASS, &[], &format!("get keep.bin {}", back.display()));
    assert!(o.status.success(), "get after restore: {}", text(&o));
    assert_eq!(sha256_file(&f), sha256_file(&back));
    assert!(!user_names(&s, "ACME").contains("bob"), "bob was created after the backup");
    let o = s.smbclient("docs", "ACME\\bob", PASS, &[], "ls");
    assert!(!o.status.success(), "bob still logs on: {}", text(&o));
}

#[test]
fn verify_detects_a_flipped_byte() {
    let s = TestServer::start_with(options());
    let generation = backup_now(&s);
    let out = s.admin(&["backup", "verify", &generation]);
    assert!(out.contains("ok"), "{out}");
    let copy = backup_dir(&s).join(&generation).join("accounts.db");
    let mut bytes = std::fs::read(&copy).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    std::fs::write(&copy, &bytes).unwrap();

    let o = s.cli(&["backup", "verify", &generation], None, &[]);
    assert!(!o.status.success(), "verify passed a damaged generation: {}", text(&o));
    assert!(text(&o).contains("accounts.db") && text(&o).contains("SHA-256"), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_str(&s.admin(&["--json", "backup", "list"])).unwrap();
    let g = v.as_array().unwrap().iter().find(|g| g["generation"] == generation.as_str()).unwrap().clone();
    assert_eq!(g["ok"], false, "{v}");
}

fn files_containing(dir: &Path, needle: &[u8]) -> Vec<PathBuf> {
    grep_tree(dir, needle)
}

#[test]
fn erasure_purges_the_key_from_every_backup() {
    let s = TestServer::start_with(options());
    s.admin(&["org", "add", "GONE"]);
    s.admin(&["org", "add", "STAY"]);
    s.add_user("GONE\\carol", PASS);
    s.admin(&["share", "add", "gone-docs", "--org", "GONE"]);
    let work = tempfile::tempdir().unwrap();
    let f = work.path().join("a.bin");
    random_file(&f, 200_000, 3);
    let o = s.smbclient("gone-docs", "GONE\\carol", PASS, &[], &format!("put {} a.bin", f.display()));
    assert!(o.status.success(), "put: {}", text(&o));
    let (gone, stay) = (org_id(&s, "GONE"), org_id(&s, "STAY"));
    let keys = rusqlite::Connection::open_with_flags(
        s.data_dir().join("store").join("keys.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    let wrapped: Vec<u8> =
        keys.query_row("SELECT wrapped FROM org_keys WHERE org=?1", [gone as i64], |r| r.get(0)).unwrap();
    drop(keys);
    std::thread::sleep(Duration::from_secs(3));
    let gens = [backup_now(&s), backup_now(&s)];
    assert!(!files_containing(&backup_dir(&s), &wrapped).is_empty(), "the backups hold the key before erasure");

    s.admin(&["org", "end-contract", "GONE", "2000-01-31", "--allow-past", "--yes"]);
    let deadline = Instant::now() + Duration::from_secs(30);
    while s.admin(&["--json", "org", "list"]).contains("\"GONE\"") {
        assert!(Instant::now() < deadline, "GONE not erased; log:\n{}", s.log_text());
        std::thread::sleep(Duration::from_millis(300));
    }

    assert_eq!(files_containing(&backup_dir(&s), &wrapped), Vec::<PathBuf>::new());
    assert_eq!(files_containing(&s.data_dir(), &wrapped), Vec::<PathBuf>::new());
    for g in &gens {
        let db = rusqlite::Connection::open_with_flags(
            backup_dir(&s).join(g).join("store").join("keys.db"),
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .unwrap();
        let n = |org: u64| -> i64 {
            db.query_row("SELECT count(*) FROM org_keys WHERE org=?1", [org as i64], |r| r.get(0)).unwrap()
        };
        assert_eq!((n(gone), n(stay)), (0, 1), "generation {g}");
        let acc = rusqlite::Connection::open_with_flags(
            backup_dir(&s).join(g).join("accounts.db"),
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .unwrap();
        let users: i64 =
            acc.query_row("SELECT count(*) FROM users WHERE org_id=?1", [gone as i64], |r| r.get(0)).unwrap();
        assert_eq!(users, 0, "generation {g} still lists the erased organization's users");
        assert!(!backup_dir(&s).join(g).join(format!("store/orgs/{gone:016x}")).exists());
    }
    // Every generation still verifies (the manifests were re-MACed).
    let out = s.admin(&["backup", "verify"]);
    assert!(!out.contains("DAMAGED"), "{out}");
}

/// Crypto-shredding is checked, not assumed: while another process holds a
/// read transaction on keys.db, the WAL cannot be truncated and pages of the
/// database it may still read cannot be overwritten, so the wrapped key
/// survives there. The erasure must then stay undone (and be retried), and
/// once the other process lets go no file of the data directory or of any
/// backup may hold the wrapped key.
#[test]
fn erasure_is_not_done_while_keys_db_is_held_open() {
    use std::io::BufRead;
    let target = tempfile::tempdir().unwrap();
    let s = TestServer::start_with(Options {
        extra: vec![format!(
            "[backup]\ndb_generations = 7\nerase_check_interval_secs = 1\ndata_target = {:?}",
            target.path()
        )],
        ..Options::default()
    });
    s.admin(&["org", "add", "GONE"]);
    s.add_user("GONE\\carol", PASS);
    s.admin(&["share", "add", "gone-docs", "--org", "GONE"]);
    let work = tempfile::tempdir().unwrap();
    let f = work.path().join("a.bin");
    random_file(&f, 100_000, 5);
    let o = s.smbclient("gone-docs", "GONE\\carol", PASS, &[], &format!("put {} a.bin", f.display()));
    assert!(o.status.success(), "put: {}", text(&o));
    let gone = org_id(&s, "GONE");
    let keys_db = s.data_dir().join("store").join("keys.db");
    let wrapped: Vec<u8> = rusqlite::Connection::open_with_flags(&keys_db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .unwrap()
        .query_row("SELECT wrapped FROM org_keys WHERE org=?1", [gone as i64], |r| r.get(0))
        .unwrap();
    std::thread::sleep(Duration::from_secs(3));
    backup_now(&s);
    s.admin(&["backup", "data-now"]);
    assert!(!files_containing(target.path(), &wrapped).is_empty(), "the data backup holds the key before erasure");
    let org_audit = format!("audit/org-{gone}");
    let audit_copies = || -> Vec<PathBuf> {
        walk(target.path()).into_iter().filter(|p| p.to_string_lossy().ends_with(&org_audit)).collect()
    };
    assert!(!audit_copies().is_empty(), "the data backup holds GONE's audit log");

    // A second process (think: a sqlite3 shell) holds a read transaction.
    let script = format!(
        "import sqlite3, sys, time\n\
         c = sqlite3.connect({:?}, isolation_level=None)\n\
         c.execute('BEGIN')\n\
         c.execute('SELECT count(*) FROM org_keys').fetchall()\n\
         print('held', flush=True)\n\
         time.sleep(20)\n\
         c.execute('COMMIT')\n",
        keys_db.to_str().unwrap()
    );
    let mut holder = std::process::Command::new("python3")
        .args(["-c", &script])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3");
    let mut line = String::new();
    std::io::BufReader::new(holder.stdout.take().unwrap()).read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "held");
    let held_since = Instant::now();

    s.admin(&["org", "end-contract", "GONE", "2000-01-31", "--allow-past", "--yes"]);
    let deadline = Instant::now() + Duration::from_secs(15);
    while !s.log_text().contains("held open by another process") {
        assert!(Instant::now() < deadline, "no failed shredding reported; log:\n{}", s.log_text());
        std::thread::sleep(Duration::from_millis(300));
    }
    assert!(holder.try_wait().unwrap().is_none(), "the holder is still there");
    assert!(
        s.admin(&["--json", "org", "list"]).contains("\"GONE\""),
        "the erasure was recorded as done while keys.db was held open"
    );

    holder.wait().unwrap();
    eprintln!("held for {} ms", held_since.elapsed().as_millis());
    let deadline = Instant::now() + Duration::from_secs(40);
    while s.admin(&["--json", "org", "list"]).contains("\"GONE\"") {
        assert!(Instant::now() < deadline, "GONE not erased after release; log:\n{}", s.log_text());
        std::thread::sleep(Duration::from_millis(300));
    }
    assert_eq!(files_containing(&s.data_dir(), &wrapped), Vec::<PathBuf>::new());
    assert_eq!(files_containing(target.path(), &wrapped), Vec::<PathBuf>::new());
    assert_eq!(audit_copies(), Vec::<PathBuf>::new(), "GONE's audit log left the data backups");
    let out = s.admin(&["backup", "verify", "--data"]);
    assert!(!out.contains("DAMAGED"), "{out}");
}
