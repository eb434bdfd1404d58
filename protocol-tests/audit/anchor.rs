//! Audit anchors (`logs anchor`, `logs verify --anchor`): the hash chain
//! alone cannot tell an older copy of a log directory, or no directory at
//! all, from the real thing; an anchor kept off the machine can.

use super::*;

/// Copies a directory tree (files and directories only).
fn copy_tree(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let dst = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &dst);
        } else {
            std::fs::copy(e.path(), &dst).unwrap();
        }
    }
}

fn some_traffic(s: &TestServer, tag: &str) {
    for i in 0..3 {
        let o = s.smbclient("docs", "ACME\\alice", PASS, &[], &format!("mkdir {tag}{i}"));
        assert!(o.status.success(), "{}", text(&o));
    }
    let _ = s.smbclient("docs", "ACME\\alice", "wrong-password", &[], "ls");
}

#[test]
fn anchor_catches_an_older_audit_directory_and_a_deleted_one() {
    let mut s = TestServer::start();
    s.admin(&["org", "add", "ACME"]);
    s.add_user("ACME\\alice", PASS);
    s.admin(&["share", "add", "docs", "--org", "ACME"]);
    some_traffic(&s, "early");
    s.stop();
    let audit = s.data_dir().join("audit");
    let old = tempfile::tempdir().unwrap();
    copy_tree(&audit, old.path());

    s.spawn();
    some_traffic(&s, "late");
    s.stop();
    let anchor = s.dir.path().join("anchor.json");
    let o = logs(&s, &["anchor", "--out", anchor.to_str().unwrap()], &[]);
    assert!(o.status.success(), "{}", text(&o));
    let v: Value = serde_json::from_slice(&std::fs::read(&anchor).unwrap()).unwrap();
    assert!(v["logs"].as_array().unwrap().iter().any(|l| l["org"] == "ACME" && l["seq"].as_u64() > Some(0)), "{v}");
    // Printed to standard output without --out.
    let printed = logs(&s, &["anchor"], &[]);
    assert!(String::from_utf8_lossy(&printed.stdout).contains("smbvault-audit-anchor-1"), "{}", text(&printed));
    // An organization administrator may not make one.
    let pw = s.admin_password.clone().unwrap();
    let o = logs(&s, &["anchor", "--as", "DEFAULT\\admin"], &[("SMBVAULT_ADMIN_PASSWORD", &pw)]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));

    let o = logs(&s, &["verify", "--anchor", anchor.to_str().unwrap()], &[]);
    assert!(o.status.success(), "the intact logs pass: {}", text(&o));
    assert!(text(&o).contains("anchor of") && text(&o).contains(": OK"), "{}", text(&o));

    // An edited anchor is refused.
    let forged = s.dir.path().join("forged.json");
    std::fs::write(&forged, std::fs::read_to_string(&anchor).unwrap().replacen("\"seq\": ", "\"seq\": 1", 1)).unwrap();
    let o = logs(&s, &["verify", "--anchor", forged.to_str().unwrap()], &[]);
    assert!(!o.status.success() && text(&o).contains("fails authentication"), "{}", text(&o));

    // 1. The older copy of the audit directory is put back: on its own it
    //    verifies, against the anchor it is a rollback.
    std::fs::remove_dir_all(&audit).unwrap();
    copy_tree(old.path(), &audit);
    let (ok, out) = verify(&s);
    assert!(ok, "the old copy is a consistent log by itself: {out}");
    let o = logs(&s, &["verify", "--anchor", anchor.to_str().unwrap()], &[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("rolled back") && text(&o).contains("ACME"), "{}", text(&o));

    // 2. The whole audit directory is deleted.
    std::fs::remove_dir_all(&audit).unwrap();
    let o = logs(&s, &["verify", "--anchor", anchor.to_str().unwrap()], &[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("the log is missing") && text(&o).contains("deleted"), "{}", text(&o));
}
