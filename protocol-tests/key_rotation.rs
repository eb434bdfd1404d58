//! `smbvault key rotate` end to end: files (one with a Japanese name) put
//! over SMB, the server stopped, the master key rotated, the server started
//! again: every file reads back byte-identical, the same users log on with
//! the same passwords (the sealed NT hashes still open), the audit chains
//! and an anchor made before the rotation still verify, the rotation is in
//! the server audit log, and the old master key's bytes are nowhere in the
//! data directory. Then a backup generation taken before the rotation is
//! restored (its keys.db re-wrapped under the new key).

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;
use smbvault::keys::{MasterKey, Unlock};

fn ok(o: &std::process::Output, what: &str) -> String {
    assert!(o.status.success(), "{what}: {}", text(o));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn master_key(s: &TestServer) -> [u8; 32] {
    let mk = MasterKey::open(&s.data_dir().join("keys/master.slots"), &Unlock::KeyFile(s.key_file())).unwrap();
    *mk.key().expose()
}

fn read_back(s: &TestServer, files: &[(&str, &str, &str, String, String)], work: &Path, tag: &str) {
    for (i, (share, user, pw, name, sum)) in files.iter().enumerate() {
        let local = work.join(format!("{tag}{i}"));
        let o = s.smbclient(share, user, pw, &[], &format!("get \"{name}\" \"{}\"", local.display()));
        ok(&o, &format!("{tag}: get {name} as {user}"));
        assert_eq!(&sha256_file(&local), sum, "{tag}: {name} differs");
    }
}

#[test]
fn rotate_keeps_every_file_password_and_log_and_drops_the_old_key() {
    let offsite = tempfile::tempdir().unwrap();
    let target = offsite.path().join("backups");
    let work = tempfile::tempdir().unwrap();
    let opts = Options {
        extra: vec![format!("[backup]\ndata_target = {target:?}\ndata_generations = 3")],
        ..Options::default()
    };
    let mut s = TestServer::start_with(opts);
    let admin_pw = s.admin_password.clone().expect("first administrator password");
    s.admin(&["org", "add", "ACME"]);
    s.add_user("ACME\\alice", PASS);
    s.admin(&["share", "add", "docs", "--org", "ACME"]);
    let mut files = Vec::new();
    for (i, (share, user, pw, name, len)) in [
        ("docs", "ACME\\alice", PASS, "見積書_2026年11月.xlsx", 70_000usize),
        ("docs", "ACME\\alice", PASS, "big.bin", 2_500_000),
        ("share", "DEFAULT\\admin", admin_pw.as_str(), "readme.txt", 1_234),
    ]
    .into_iter()
    .enumerate()
    {
        let local = work.path().join(format!("src{i}"));
        let sum = random_file(&local, len, i as u64 + 11);
        ok(&s.smbclient(share, user, pw, &[], &format!("put \"{}\" \"{name}\"", local.display())), "put");
        files.push((share, user, pw, name.to_string(), sum));
    }
    std::thread::sleep(Duration::from_secs(3));
    let made = ok(&s.cli(&["backup", "data-now"], None, &[]), "backup before the rotation");
    let old_gen = made.split_whitespace().nth(1).expect("generation name").to_string();
    let rec_env = [("SMBVAULT_RECOVERY_PASSPHRASE", "correct horse battery staple")];
    let old_recovery = offsite.path().join("recovery-before.json");
    ok(&s.cli(&["key", "export-recovery", old_recovery.to_str().unwrap()], None, &rec_env), "recovery before");
    let anchor = work.path().join("anchor.json");
    ok(&s.cli(&["logs", "anchor", "--out", anchor.to_str().unwrap()], None, &[]), "anchor");

    // Refused while the server runs.
    let o = s.cli(&["key", "rotate", "--yes"], None, &[]);
    assert!(!o.status.success() && text(&o).contains("stop it first"), "{}", text(&o));
    s.stop();
    let old_mk = master_key(&s);
    let slots = s.data_dir().join("keys/master.slots");
    let slots_before = std::fs::read(&slots).unwrap();

    // Asks first (no terminal here), and --dry-run changes nothing.
    let o = s.cli(&["key", "rotate"], None, &[]);
    assert_eq!(o.status.code(), Some(4), "not confirmed: {}", text(&o));
    let out = ok(&s.cli(&["key", "rotate", "--dry-run"], None, &[]), "dry run");
    assert!(out.contains("dry run, nothing changed") && out.contains("2 organization key"), "{out}");
    assert_eq!(std::fs::read(&slots).unwrap(), slots_before);
    assert_eq!(master_key(&s), old_mk);

    let out = ok(&s.cli(&["key", "rotate", "--yes"], None, &[]), "rotate");
    assert!(out.contains("rotated the master key") && out.contains("export-recovery"), "{out}");
    let new_mk = master_key(&s);
    assert_ne!(new_mk, old_mk, "a new master key");
    let pending = s.data_dir().join("keys/master.rotating");
    assert!(!pending.exists());
    // A kill after keys.db was re-wrapped, before the new slot file was
    // renamed into place, leaves this state; the server completes it.
    std::fs::rename(&slots, &pending).unwrap();
    std::fs::write(&slots, &slots_before).unwrap();
    assert_eq!(master_key(&s), old_mk);

    // The server starts on the rotated key; everything is there.
    s.admin_password = None;
    s.spawn();
    assert!(s.admin_password.is_none(), "no new server: {}", s.log_text());
    assert!(s.log_text().contains("completed an interrupted key rotation"), "{}", s.log_text());
    assert!(!pending.exists());
    assert_eq!(master_key(&s), new_mk);
    // The old key's bytes (raw or hex) are in no file of the data directory.
    for needle in [old_mk.to_vec(), hex::encode(old_mk).into_bytes()] {
        let found = grep_tree(&s.data_dir(), &needle);
        assert!(found.is_empty(), "old master key found in {found:?}");
    }
    let old_slot = MasterKey::open(&slots, &Unlock::KeyFile(s.key_file())).unwrap();
    assert!(old_slot.key().expose() != &old_mk, "the slot file opens only the new key");
    read_back(&s, &files, work.path(), "rotated");
    let o = s.smbclient("docs", "ACME\\alice", "not her password", &[], "ls");
    assert!(!o.status.success(), "a wrong password still fails: {}", text(&o));
    ok(&s.smbclient("docs", "ACME\\alice", PASS, &[], "mkdir after-rotation"), "new write");
    std::thread::sleep(Duration::from_secs(3));
    let v = ok(&s.cli(&["logs", "verify"], None, &[]), "verify");
    assert!(v.contains("server: OK") && v.contains("ACME") && !v.contains("FAILED"), "{v}");
    let v = ok(&s.cli(&["logs", "verify", "--anchor", anchor.to_str().unwrap()], None, &[]), "verify anchor");
    assert!(v.contains(": OK") && !v.contains("FAILED"), "{v}");
    let new_recovery = offsite.path().join("recovery-after.json");
    ok(&s.cli(&["key", "export-recovery", new_recovery.to_str().unwrap()], None, &rec_env), "recovery after");
    let srv = ok(&s.cli(&["logs", "operations", "--org", "server", "--format", "jsonl"], None, &[]), "server log");
    assert!(srv.contains("\"key.rotate\""), "the rotation is audited: {srv}");
    let ops = ok(&s.cli(&["logs", "operations", "--org", "ACME", "--format", "jsonl"], None, &[]), "org log");
    assert!(ops.contains("big.bin") && ops.contains("after-rotation"), "old and new records: {ops}");

    // A generation taken before the rotation still verifies and restores:
    // its slot file opens with the (unchanged) key file, and its keys.db is
    // re-wrapped under the current key.
    s.stop();
    ok(&s.cli(&["backup", "verify", "--data"], None, &[]), "old generation verifies");
    let dry = ok(&s.cli(&["backup", "restore", &old_gen, "--data", "--dry-run"], None, &[]), "dry run");
    assert!(dry.contains("it verifies"), "{dry}");
    let out = ok(&s.cli(&["backup", "restore", &old_gen, "--data", "--yes"], None, &[]), "restore old generation");
    assert!(out.contains("restored") && out.contains(&old_gen), "{out}");
    assert_eq!(master_key(&s), new_mk, "the restore keeps the current master key");
    s.spawn();
    read_back(&s, &files, work.path(), "restored");
    let v = ok(&s.cli(&["logs", "verify"], None, &[]), "verify after restore");
    assert!(!v.contains("FAILED"), "{v}");
    std::thread::sleep(Duration::from_millis(1100));
    let made = ok(&s.cli(&["backup", "data-now"], None, &[]), "backup after the rotation");
    let new_gen = made.split_whitespace().nth(1).expect("generation name").to_string();
    s.stop();

    // A new machine: the pre-rotation generation needs the recovery file of
    // its time; the one exported after the rotation is refused, clearly.
    let mut m = TestServer::unstarted(Options {
        extra: vec![format!("[backup]\ndata_target = {target:?}\ndata_generations = 3")],
        ..Options::default()
    });
    let restore = |m: &TestServer, rec: &Path| {
        m.cli(&["backup", "restore", &old_gen, "--data", "--recovery", rec.to_str().unwrap(), "--yes"], None, &rec_env)
    };
    let o = restore(&m, &new_recovery);
    assert!(!o.status.success() && text(&o).contains("rotated"), "{}", text(&o));
    assert!(!m.data_dir().join("accounts.db").exists(), "nothing restored");
    let out = ok(&restore(&m, &old_recovery), "restore with the old recovery file");
    assert!(out.contains("recovered"), "{out}");
    m.spawn();
    read_back(&m, &files, work.path(), "new-machine");

    // And a generation taken after the rotation: only the new recovery file.
    let n = TestServer::unstarted(Options {
        extra: vec![format!("[backup]\ndata_target = {target:?}\ndata_generations = 3")],
        ..Options::default()
    });
    let restore_new = |m: &TestServer, rec: &Path| {
        m.cli(&["backup", "restore", &new_gen, "--data", "--recovery", rec.to_str().unwrap(), "--yes"], None, &rec_env)
    };
    let o = restore_new(&n, &old_recovery);
    assert!(!o.status.success() && text(&o).contains("rotated"), "{}", text(&o));
    ok(&restore_new(&n, &new_recovery), "restore a post-rotation generation with the new recovery file");
    let mut n = n;
    n.spawn();
    read_back(&n, &files, work.path(), "new-machine-2");
    let v = ok(&n.cli(&["logs", "verify"], None, &[]), "verify on the new machine");
    assert!(v.contains("server: OK") && !v.contains("FAILED"), "{v}");
}
