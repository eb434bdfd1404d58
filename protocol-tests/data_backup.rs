//! Data backups end to end (docs/backup.md "Data backups"): `backup
//! data-now` while the server runs, then the data disk is lost (every
//! segment directory wiped) and `backup restore GEN --data` brings the
//! databases and segments back: a file deleted after the backup reads back
//! byte-identical.

mod common;

use std::time::{Duration, Instant};

use common::*;

/// `backup data-now --json`: the generation name, its size and the bytes
/// not shared with the previous generation.
fn data_now(s: &TestServer) -> (String, u64, u64) {
    let started = Instant::now();
    let out = s.admin(&["--json", "backup", "data-now"]);
    let v: serde_json::Value = serde_json::from_str(&out).expect("data-now JSON");
    eprintln!(
        "backup data-now: {} bytes ({} new) in {} ms (CLI total {} ms)",
        v["size_bytes"],
        v["new_bytes"],
        v["ms"],
        started.elapsed().as_millis()
    );
    let n = |k: &str| v[k].as_u64().expect("number");
    (v["generation"].as_str().expect("generation").to_string(), n("size_bytes"), n("new_bytes"))
}

#[test]
fn data_restore_after_losing_the_segments() {
    let target = tempfile::tempdir().unwrap();
    let mut s = TestServer::start_with(Options {
        extra: vec![format!("[backup]\ndata_target = {:?}\ndata_generations = 3", target.path())],
        ..Options::default()
    });
    s.admin(&["org", "add", "ACME"]);
    s.add_user("ACME\\alice", PASS);
    s.admin(&["share", "add", "docs", "--org", "ACME"]);
    let work = tempfile::tempdir().unwrap();
    let f = work.path().join("keep.bin");
    random_file(&f, 3_000_000, 11);
    let o = s.smbclient("docs", "ACME\\alice", PASS, &[], &format!("put {} keep.bin", f.display()));
    assert!(o.status.success(), "put: {}", text(&o));
    // The CLI's snapshot sees the server's last commit (commit_interval_secs, 2 s).
    std::thread::sleep(Duration::from_secs(3));
    let (first, size, _) = data_now(&s);
    assert!(size > 3_000_000, "the segments are in it: {size}");
    // A second generation with nothing new shares the segment copies.
    let (second, _, new) = data_now(&s);
    assert_ne!(first, second);
    assert!(new < 1_000_000, "the 3 MB of segments are hard-linked, not copied: {new} new");

    let list = s.admin(&["backup", "list", "--data"]);
    assert!(list.contains(&first) && list.contains(&second), "{list}");
    let out = s.admin(&["backup", "verify", "--data"]);
    assert!(out.contains(&format!("{first}: ok")), "{out}");
    // Data backups are for the operator only.
    let o = s.cli(&["--as", "ACME\\alice", "backup", "data-now"], None, &[("SMBVAULT_ADMIN_PASSWORD", PASS)]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));

    // After the backup: the file is deleted and another written.
    let o = s.smbclient("docs", "ACME\\alice", PASS, &[], "del keep.bin");
    assert!(o.status.success(), "del: {}", text(&o));
    let other = work.path().join("other.bin");
    random_file(&other, 1_000_000, 12);
    let o = s.smbclient("docs", "ACME\\alice", PASS, &[], &format!("put {} other.bin", other.display()));
    assert!(o.status.success(), "put other: {}", text(&o));

    // Refused while the server runs.
    let o = s.cli(&["backup", "restore", &second, "--data"], None, &[]);
    assert!(!o.status.success() && text(&o).contains("stop it first"), "{}", text(&o));
    s.stop();

    // The data disk is lost: every organization's segments are gone.
    let orgs = s.data_dir().join("store").join("orgs");
    let mut wiped = 0;
    for e in std::fs::read_dir(&orgs).unwrap().flatten() {
        if e.path().join("seg").is_dir() {
            std::fs::remove_dir_all(e.path().join("seg")).unwrap();
            wiped += 1;
        }
    }
    assert!(wiped >= 1);

    let started = Instant::now();
    let out = s.admin(&["backup", "restore", &second, "--data", "--yes"]);
    eprintln!("restore --data: {} ms: {out}", started.elapsed().as_millis());
    assert!(out.contains("restored"), "{out}");
    s.spawn();

    let back = work.path().join("back.bin");
    let o = s.smbclient("docs", "ACME\\alice", PASS, &[], &format!("get keep.bin {}", back.display()));
    assert!(o.status.success(), "get after restore: {}", text(&o));
    assert_eq!(sha256_file(&f), sha256_file(&back));
}
