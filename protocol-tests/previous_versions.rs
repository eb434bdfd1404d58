//! Previous Versions (docs/backup.md "Previous Versions"): an
//! organization's remote backup generations on a real S3-compatible server
//! (Garage, started by the test on loopback) appear as `@GMT-` snapshots of
//! its shares. smbclient's `allinfo` lists them
//! (FSCTL_SRV_ENUMERATE_SNAPSHOTS), `get @GMT-…\file` returns that
//! generation's bytes after the live file changed (smbclient sends the TWrp
//! context), Python smbprotocol lists and reads through a `@GMT-` path
//! token and sees every change refused; a user the generation's or today's
//! descriptor shuts out sees no version; the per-share switch hides them;
//! smbtorture's own `smb2.twrp` tests pass.

mod common;

use std::time::Duration;

use common::garage::Garage;
use common::*;
use serde_json::Value;

fn config(g: &Garage) -> Options {
    let cred = g.credentials_file();
    Options {
        extra: vec![
            "[backup]\nremote_interval_hours = 0\nprevious_versions_cache_mib = 64\n".into(),
            format!(
                "[backup.targets.tokyo]\nkind = \"s3\"\nendpoint = {:?}\nregion = \"garage\"\nbucket = \"tokyo\"\n\
                 prefix = \"pv/\"\ncredentials_file = {cred:?}\nparallel = 2\npart_size_mib = 5\npiece_size_mib = 8\n",
                g.endpoint
            ),
        ],
        // smbtorture below signs but does not seal.
        ..encryption_desired()
    }
}

fn org_now(s: &TestServer) -> Value {
    // Everything acknowledged is in meta.db after the commit interval.
    std::thread::sleep(Duration::from_secs(3));
    let v: Value = serde_json::from_str(&s.admin(&["--json", "backup", "org-now", "ACME"])).unwrap();
    v[0]["report"].clone()
}

fn put_text(s: &TestServer, user: &str, name: &str, body: &str) {
    let src = s.dir.path().join("upload.txt");
    std::fs::write(&src, body).unwrap();
    let o = s.smbclient("docs", user, PASS, &[], &format!("put \"{}\" \"{name}\"", src.display()));
    assert!(o.status.success() && !text(&o).contains("NT_STATUS"), "put {name}: {}", text(&o));
}

/// The `@GMT-` tokens `allinfo` reports for `name`, newest first.
fn versions(s: &TestServer, user: &str, name: &str) -> Vec<String> {
    let o = s.smbclient("docs", user, PASS, &[], &format!("allinfo \"{name}\""));
    let t = text(&o);
    eprintln!("{user} allinfo {name}:\n{t}");
    t.lines().filter(|l| l.starts_with("@GMT-") && l.len() == 24).map(str::to_string).collect()
}

/// `get` through a token: the bytes, or the NT_STATUS it failed with.
fn get(s: &TestServer, user: &str, path: &str) -> Result<String, String> {
    let dst = s.dir.path().join("download.txt");
    let _ = std::fs::remove_file(&dst);
    let o = s.smbclient("docs", user, PASS, &[], &format!("get \"{path}\" \"{}\"", dst.display()));
    let t = text(&o);
    match t.split_whitespace().find(|w| w.starts_with("NT_STATUS_")) {
        Some(st) => Err(st.to_string()),
        None => Ok(std::fs::read_to_string(&dst).unwrap_or_else(|e| panic!("get {path}: {e}: {t}"))),
    }
}

fn sid_of(s: &TestServer, name: &str) -> String {
    let v: Value = serde_json::from_str(&s.admin(&["user", "list", "--org", "ACME", "--json"])).unwrap();
    let u = v.as_array().unwrap().iter().find(|u| u["name"] == name).unwrap();
    let (org, uid) = (u["org_id"].as_u64().unwrap(), u["id"].as_u64().unwrap());
    format!("S-1-5-21-1397572182-{}-{}-{}", org >> 32, org & 0xffff_ffff, 1000 + uid)
}

/// Denies `sid` read on `name` (everyone else full access).
fn deny(s: &TestServer, name: &str, sid: &str) {
    let port = s.port.to_string();
    let o = python("set_dacl.py", &["127.0.0.1", &port, "docs", "ACME\\alice", PASS, name, sid]);
    assert!(o.status.success() && text(&o).contains("done"), "set_dacl.py {name}: {}", text(&o));
}

#[test]
fn previous_versions_from_remote_generations() {
    let g = Garage::start();
    g.bucket("tokyo");
    let s = TestServer::start_with(config(&g));
    s.admin(&["org", "add", "ACME"]);
    s.add_user("ACME\\alice", PASS);
    s.add_user("ACME\\bob", PASS);
    s.admin(&["share", "add", "docs", "--org", "ACME"]);
    // Setting a DACL takes WRITE_DAC, which only share administrators hold.
    s.admin(&["share", "grant", "--user", "alice", "docs", "admin"]);
    s.admin(&["backup", "org-target", "ACME", "tokyo"]);
    let bob = sid_of(&s, "bob");
    let nobody = "S-1-5-21-1397572182-0-0-999999";

    // Generation 1: the report's first text; bob shut out of secret.txt
    // and plan.txt, allowed memo.txt.
    let o = s.smbclient("docs", "ACME\\alice", PASS, &[], "mkdir 経理");
    assert!(o.status.success(), "{}", text(&o));
    put_text(&s, "ACME\\alice", "報告書.txt", "第1版: 売上 100万円\n");
    put_text(&s, "ACME\\alice", "経理\\明細.txt", "明細 v1\n");
    for f in ["secret.txt", "plan.txt", "memo.txt"] {
        put_text(&s, "ACME\\alice", f, &format!("{f} v1\n"));
    }
    deny(&s, "secret.txt", &bob);
    deny(&s, "plan.txt", &bob);
    let g1 = org_now(&s);
    eprintln!("generation 1: {g1}");
    // Generation 2: the second text; plan.txt opened to bob, memo.txt closed.
    put_text(&s, "ACME\\alice", "報告書.txt", "第2版: 売上 120万円\n");
    deny(&s, "plan.txt", nobody);
    deny(&s, "memo.txt", &bob);
    let g2 = org_now(&s);
    eprintln!("generation 2: {g2}");
    // Today: a third text.
    put_text(&s, "ACME\\alice", "報告書.txt", "第3版: 売上 150万円\n");

    // allinfo lists both generations, newest first; each token reads its bytes.
    let v = versions(&s, "ACME\\alice", "報告書.txt");
    assert_eq!(v.len(), 2, "{v:?}\n{}", s.log_text());
    assert!(v[0] > v[1], "newest first: {v:?}");
    let (t2, t1) = (v[0].clone(), v[1].clone());
    assert_eq!(get(&s, "ACME\\alice", &format!("{t1}\\報告書.txt")).unwrap(), "第1版: 売上 100万円\n");
    assert_eq!(get(&s, "ACME\\alice", &format!("{t2}\\報告書.txt")).unwrap(), "第2版: 売上 120万円\n");
    assert_eq!(get(&s, "ACME\\alice", "報告書.txt").unwrap(), "第3版: 売上 150万円\n");
    assert_eq!(get(&s, "ACME\\alice", &format!("{t1}\\経理\\明細.txt")).unwrap(), "明細 v1\n");
    // A time with no generation is not found.
    assert_eq!(
        get(&s, "ACME\\alice", "@GMT-2001.01.01-00.00.00\\報告書.txt").unwrap_err(),
        "NT_STATUS_OBJECT_NAME_NOT_FOUND"
    );

    // smbclient lists a folder of a snapshot.
    let o = s.smbclient("docs", "ACME\\alice", PASS, &[], &format!("ls \"{t1}\\経理\\*\""));
    assert!(o.status.success() && text(&o).contains("明細.txt"), "ls in a snapshot: {}", text(&o));

    // Python smbprotocol, through a @GMT- path token: listings, the
    // generation's bytes, every change refused with Samba's and Windows'
    // statuses (smbtorture smb2.twrp.write).
    let port = s.port.to_string();
    let o =
        python("previous_versions.py", &["127.0.0.1", &port, "docs", "ACME\\alice", PASS, &t1, "経理", "報告書.txt"]);
    assert!(o.status.success(), "previous_versions.py: {}", text(&o));
    let p: Value = serde_json::from_slice(&o.stdout).unwrap();
    eprintln!("python: {p}");
    let root: Vec<&str> = p["root"].as_array().unwrap().iter().map(|n| n.as_str().unwrap()).collect();
    for n in ["経理", "報告書.txt", "secret.txt", "plan.txt", "memo.txt"] {
        assert!(root.contains(&n), "{n} in the snapshot's root: {root:?}");
    }
    assert_eq!(p["folder"], serde_json::json!(["明細.txt"]));
    assert_eq!(p["data"], "第1版: 売上 100万円\n");
    assert_eq!(p["write"], "0xc00000a2", "WRITE: MEDIA_WRITE_PROTECTED");
    assert_eq!(p["delete"], "0xc00000a2", "delete: MEDIA_WRITE_PROTECTED");
    assert_eq!(p["rename"], "0xc00000d4", "rename: NOT_SAME_DEVICE");
    assert_eq!(p["overwrite"], "0xc00000a2", "OVERWRITE_IF: MEDIA_WRITE_PROTECTED");
    assert_eq!(p["create"], "0xc00000a2", "CREATE: MEDIA_WRITE_PROTECTED");
    // Nothing changed, in the snapshot or today.
    assert_eq!(get(&s, "ACME\\alice", &format!("{t1}\\報告書.txt")).unwrap(), "第1版: 売上 100万円\n");
    assert_eq!(get(&s, "ACME\\alice", "報告書.txt").unwrap(), "第3版: 売上 150万円\n");

    // bob: the report's versions, like alice.
    assert_eq!(versions(&s, "ACME\\bob", "報告書.txt"), vec![t2.clone(), t1.clone()]);
    assert_eq!(get(&s, "ACME\\bob", &format!("{t1}\\報告書.txt")).unwrap(), "第1版: 売上 100万円\n");
    // secret.txt: shut out then and now: no version, no read.
    assert!(versions(&s, "ACME\\bob", "secret.txt").is_empty());
    assert_eq!(get(&s, "ACME\\bob", &format!("{t1}\\secret.txt")).unwrap_err(), "NT_STATUS_ACCESS_DENIED");
    // plan.txt: readable today, but generation 1's descriptor shut bob
    // out: only generation 2 is his to see.
    assert_eq!(get(&s, "ACME\\bob", "plan.txt").unwrap(), "plan.txt v1\n");
    assert_eq!(versions(&s, "ACME\\bob", "plan.txt"), vec![t2.clone()]);
    assert_eq!(get(&s, "ACME\\bob", &format!("{t1}\\plan.txt")).unwrap_err(), "NT_STATUS_ACCESS_DENIED");
    assert_eq!(get(&s, "ACME\\bob", &format!("{t2}\\plan.txt")).unwrap(), "plan.txt v1\n");
    // memo.txt: generation 1 let bob read it, today's descriptor does not:
    // its history is closed to him too.
    assert_eq!(get(&s, "ACME\\bob", &format!("{t1}\\memo.txt")).unwrap_err(), "NT_STATUS_ACCESS_DENIED");
    assert_eq!(versions(&s, "ACME\\alice", "memo.txt").len(), 2);

    // The operation log records which version was opened.
    std::thread::sleep(Duration::from_secs(1));
    let ops = s.admin(&["logs", "operations", "--org", "ACME", "--type", "open", "--format", "jsonl"]);
    assert!(ops.contains(&format!("{t1}\\\\報告書.txt")), "an open of a version is logged: {ops}");

    // smbtorture's own Previous Versions tests (source4/torture/smb2/create.c).
    for test in ["smb2.twrp.write", "smb2.twrp.openroot"] {
        let o = std::process::Command::new("smbtorture")
            .args([
                "//127.0.0.1/docs",
                "-p",
                &port,
                "-U",
                &format!("ACME\\alice%{PASS}"),
                "--option=torture:twrp_file=報告書.txt",
                &format!("--option=torture:twrp_snapshot={t1}"),
                test,
            ])
            .output()
            .unwrap();
        let t = text(&o);
        assert!(o.status.success() && t.contains("success:"), "{test}: {t}");
    }

    // Off for the share: no versions, no reads through a token.
    s.admin(&["share", "set", "docs", "--previous-versions", "off"]);
    assert!(versions(&s, "ACME\\alice", "報告書.txt").is_empty());
    assert_eq!(get(&s, "ACME\\alice", &format!("{t1}\\報告書.txt")).unwrap_err(), "NT_STATUS_OBJECT_NAME_NOT_FOUND");
    let shares = s.admin(&["--json", "share", "list"]);
    assert!(
        shares.contains("\"previous_versions\":false") || shares.contains("\"previous_versions\": false"),
        "{shares}"
    );
    s.admin(&["share", "set", "docs", "--previous-versions", "on"]);
    assert_eq!(versions(&s, "ACME\\alice", "報告書.txt").len(), 2);
}
