//! Disaster recovery exactly as README "Disaster recovery" tells it: make
//! data, take a data backup, export the recovery file; lose the machine
//! (data directory AND key file deleted); on a new, empty directory restore
//! from nothing but the backup target and the recovery file; every file
//! reads back over SMB byte-identical and the audit chains verify.

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;

const RECOVERY_PASS: &str = "correct horse battery staple";

fn backup_target_opts(target: &Path) -> Options {
    Options { extra: vec![format!("[backup]\ndata_target = {target:?}\ndata_generations = 3")], ..Options::default() }
}

fn ok(o: &std::process::Output, what: &str) -> String {
    assert!(o.status.success(), "{what}: {}", text(o));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn restore_on_a_new_machine_from_the_backup_target_and_the_recovery_file() {
    let offsite = tempfile::tempdir().unwrap(); // another machine's disk
    let target = offsite.path().join("backups");
    let recovery = offsite.path().join("smbvault-recovery.json");
    let work = tempfile::tempdir().unwrap();

    // 1. The old machine: data in two organizations.
    let mut old = TestServer::start_with(backup_target_opts(&target));
    let admin_pw = old.admin_password.clone().expect("first administrator password");
    old.admin(&["org", "add", "ACME"]);
    old.add_user("ACME\\alice", PASS);
    old.admin(&["share", "add", "docs", "--org", "ACME"]);
    let files: Vec<(&str, &str, &str, String, usize)> = vec![
        ("docs", "ACME\\alice", PASS, "big.bin".into(), 3_000_000),
        ("docs", "ACME\\alice", PASS, "見積書_2026年11月.xlsx".into(), 70_000),
        ("docs", "ACME\\alice", PASS, "empty.txt".into(), 0),
        ("share", "DEFAULT\\admin", admin_pw.as_str(), "readme.txt".into(), 1_234),
    ];
    let mut sums = Vec::new();
    for (i, (share, user, pw, name, len)) in files.iter().enumerate() {
        let local = work.path().join(format!("src{i}"));
        sums.push(random_file(&local, *len, i as u64 + 1));
        let o = old.smbclient(share, user, pw, &[], &format!("put \"{}\" \"{name}\"", local.display()));
        ok(&o, &format!("put {name}"));
    }
    // The CLI's snapshot sees the server's last commit (commit_interval_secs, 2 s).
    std::thread::sleep(Duration::from_secs(3));

    // 2. What README says to do once the server runs: a data backup (the
    //    server also makes one daily) and the recovery file, both kept off
    //    the machine.
    let env = [("SMBVAULT_RECOVERY_PASSPHRASE", RECOVERY_PASS)];
    ok(&old.cli(&["backup", "data-now"], None, &[]), "backup data-now");
    let out = ok(&old.cli(&["key", "export-recovery", recovery.to_str().unwrap()], None, &env), "export-recovery");
    assert!(out.contains("wrote the recovery file"), "{out}");
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&recovery).unwrap().permissions().mode() & 0o777, 0o600);
    }
    let before = ok(&old.cli(&["logs", "verify"], None, &[]), "verify before");
    assert!(before.contains("server: OK") && before.contains("ACME"), "{before}");

    // 3. The machine is lost: data directory and key file.
    old.stop();
    std::fs::remove_dir_all(old.data_dir()).unwrap();
    std::fs::remove_dir_all(old.key_file().parent().unwrap()).unwrap();
    drop(old);

    // 4. A new machine: a config naming the same backup target, an empty
    //    data directory, no key file. Restore from the recovery file.
    let mut new = TestServer::unstarted(backup_target_opts(&target));
    assert!(!new.data_dir().exists() && !new.key_file().exists());
    let o = new.cli(&["backup", "restore", "latest", "--data", "--recovery", recovery.to_str().unwrap()], None, &env);
    assert_eq!(o.status.code(), Some(4), "asks first: {}", text(&o));
    let wrong = [("SMBVAULT_RECOVERY_PASSPHRASE", "not the recovery phrase")];
    let o = new.cli(
        &["backup", "restore", "latest", "--data", "--recovery", recovery.to_str().unwrap(), "--yes"],
        None,
        &wrong,
    );
    assert!(!o.status.success() && text(&o).contains("does not open the recovery file"), "{}", text(&o));
    let out = ok(
        &new.cli(
            &["backup", "restore", "latest", "--data", "--recovery", recovery.to_str().unwrap(), "--yes"],
            None,
            &env,
        ),
        "restore",
    );
    assert!(out.contains("restored") && out.contains("recovered"), "{out}");
    assert!(new.key_file().is_file(), "a key file for the new machine");
    new.spawn();
    assert!(new.admin_password.is_none(), "restored, not a fresh server: {}", new.log_text());

    // 5. Every file byte-identical over SMB; the audit chains verify.
    for (i, (share, user, pw, name, _)) in files.iter().enumerate() {
        let local = work.path().join(format!("back{i}"));
        let o = new.smbclient(share, user, pw, &[], &format!("get \"{name}\" \"{}\"", local.display()));
        ok(&o, &format!("get {name}"));
        assert_eq!(sha256_file(&local), sums[i], "{name} differs after recovery");
    }
    let after = ok(&new.cli(&["logs", "verify"], None, &[]), "verify after");
    assert!(after.contains("server: OK") && after.contains("ACME"), "{after}");
    assert!(!after.contains("FAILED"), "{after}");
    // The old events are there: alice's upload before the disaster.
    let ops = ok(&new.cli(&["logs", "operations", "--org", "ACME", "--format", "jsonl"], None, &[]), "ops");
    assert!(ops.contains("big.bin"), "{ops}");
    let key_events = ok(&new.cli(&["logs", "operations", "--org", "server", "--format", "jsonl"], None, &[]), "srv");
    assert!(key_events.contains("\"key.recover\""), "the recovery is audited: {key_events}");
}

/// The data disk alone is lost; the key file (kept elsewhere) survives.
/// The generation's own slot file, opened with that key file, is enough:
/// no recovery file needed (the "every backup is unreadable").
#[test]
fn restore_with_the_surviving_key_file_and_no_recovery_file() {
    let offsite = tempfile::tempdir().unwrap();
    let target = offsite.path().join("backups");
    let work = tempfile::tempdir().unwrap();
    let mut s = TestServer::start_with(backup_target_opts(&target));
    s.admin(&["org", "add", "ACME"]);
    s.add_user("ACME\\alice", PASS);
    s.admin(&["share", "add", "docs", "--org", "ACME"]);
    let src = work.path().join("src");
    let sum = random_file(&src, 500_000, 9);
    ok(&s.smbclient("docs", "ACME\\alice", PASS, &[], &format!("put {} a.bin", src.display())), "put");
    std::thread::sleep(Duration::from_secs(3));
    ok(&s.cli(&["backup", "data-now"], None, &[]), "data-now");
    s.stop();
    std::fs::remove_dir_all(s.data_dir()).unwrap();
    assert!(s.key_file().is_file());

    // Listing and restoring need no master key in the (empty) data directory.
    let o = s.cli(&["backup", "restore", "latest", "--data", "--dry-run"], None, &[]);
    assert!(ok(&o, "dry run").contains("it verifies"), "{}", text(&o));
    assert!(!s.data_dir().join("accounts.db").exists(), "a dry run changes nothing");
    let out = ok(&s.cli(&["backup", "restore", "latest", "--data", "--yes"], None, &[]), "restore");
    assert!(out.contains("restored") && out.contains("recovered"), "{out}");
    s.spawn();
    let back = work.path().join("back");
    ok(&s.smbclient("docs", "ACME\\alice", PASS, &[], &format!("get a.bin {}", back.display())), "get");
    assert_eq!(sha256_file(&back), sum);
    let v = ok(&s.cli(&["logs", "verify"], None, &[]), "verify");
    assert!(!v.contains("FAILED"), "{v}");
}
