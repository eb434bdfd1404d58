//! Issue 5: smbtorture's quick list against a fresh server. Fails on any
//! failing subtest that `protocol-tests/torture/known-failures.txt` does not
//! list with a reason. `SMBVAULT_TORTURE_LIST=torture-tests-semantics.txt`
//! runs the longer list of every issue-5 suite instead.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::*;

fn torture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("protocol-tests/torture")
}

/// One `known-failures.txt` entry: label, subtest ("*": all), reason.
struct Known {
    label: String,
    subtest: String,
}

fn known_failures() -> Vec<Known> {
    let text = std::fs::read_to_string(torture_dir().join("known-failures.txt")).expect("known-failures.txt");
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let mut f = l.split('\t');
            let label = f.next().unwrap_or_default().to_string();
            let subtest = f.next().unwrap_or_default().to_string();
            let reason = f.next().unwrap_or_default();
            assert!(!reason.trim().is_empty(), "known failure without a reason: {l}");
            Known { label, subtest }
        })
        .collect()
}

/// Failing subtests of a summary.tsv, as (label, subtest); a suite that
/// errored or timed out without naming a subtest counts as (label, "*").
fn failures(summary: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for line in summary.lines().skip(1) {
        let cols: Vec<&str> = line.split('\t').collect();
        let (label, result, names) = (cols[0], cols[1], cols.get(8).copied().unwrap_or("-"));
        if result == "pass" || result == "skip" {
            continue;
        }
        if names == "-" || result == "timeout" {
            out.push((label.to_string(), format!("*({result})")));
        }
        if names != "-" {
            for n in names.split(',') {
                let n = n.strip_suffix("(error)").unwrap_or(n);
                out.push((label.to_string(), n.to_string()));
            }
        }
    }
    out
}

#[test]
fn smbtorture_quick_list() {
    if Command::new("smbtorture").arg("--version").output().is_err() {
        panic!("smbtorture not found: apt-get install samba-testsuite (protocol-tests/run.sh does it)");
    }
    // Our default signing (required); encryption off as in Samba's baseline
    // (the +encrypt entries force it): smb2.connect and smb2.session-id
    // cannot pass on an encrypted session, against Samba either, because a
    // request sealed with a logged-off session's key cannot be answered.
    let s = TestServer::start_with(Options { security: vec!["encryption = \"off\"".into()], ..Options::default() });
    s.add_user("DEFAULT\\alice", PASS);
    s.add_user("DEFAULT\\bob", PASS);
    // smbtorture changes security descriptors: a share administrator.
    s.admin(&["share", "grant", "--user", "alice", "share", "admin"]);
    s.admin(&["share", "grant", "--user", "bob", "share", "admin"]);
    // smb2.acls.ACCESSBASED connects to a share named "hideunread" with
    // access-based enumeration (Samba's "hide unreadable"). Ours is a share
    // of its own (a share's root is its own directory); the test works in
    // a fresh folder of it.
    s.admin(&["share", "add", "hideunread", "--org", "DEFAULT"]);
    s.admin(&["share", "set", "hideunread", "--access-based-enumeration", "on"]);
    for u in ["alice", "bob"] {
        s.admin(&["share", "grant", "--user", u, "hideunread", "admin"]);
    }
    // smb2.ioctl.bug14788.NETWORK_INTERFACE connects to "noperm" (Samba's
    // anchor has it: a share its users reach but may not write).
    s.admin(&["share", "add", "noperm", "--org", "DEFAULT"]);
    s.admin(&["share", "grant", "--user", "alice", "noperm", "read"]);
    let list = std::env::var("SMBVAULT_TORTURE_LIST").unwrap_or_else(|_| "torture-tests-quick.txt".into());
    // SMBVAULT_TORTURE_OUT keeps summary.tsv and the logs (for compare.sh).
    let out_dir =
        std::env::var_os("SMBVAULT_TORTURE_OUT").map(PathBuf::from).unwrap_or_else(|| s.dir.path().join("torture"));
    let mut cmd = Command::new("bash");
    cmd.arg(torture_dir().join("torture.sh"))
        .args(["127.0.0.1", &s.port.to_string(), "share", "DEFAULT\\alice", PASS])
        .env("TORTURE_LIST", torture_dir().join(list))
        .env("USER2", "DEFAULT\\bob")
        .env("PASS2", PASS)
        .env("OUT_DIR", &out_dir);
    let o = timed_output(cmd, Duration::from_secs(1800));
    let report = text(&o);
    eprintln!("{report}");
    let summary = std::fs::read_to_string(out_dir.join("summary.tsv")).expect("summary.tsv");
    let known = known_failures();
    let is_known = |l: &str, t: &str| known.iter().any(|k| k.label == l && (k.subtest == "*" || k.subtest == t));
    let failed = failures(&summary);
    let unexpected: Vec<String> =
        failed.iter().filter(|(l, t)| !is_known(l, t)).map(|(l, t)| format!("{l}: {t}")).collect();
    let failed_set: BTreeSet<(String, String)> = failed.iter().cloned().collect();
    let labels: BTreeSet<&str> = summary.lines().skip(1).filter_map(|l| l.split('\t').next()).collect();
    for k in &known {
        let still = failed_set.iter().any(|(l, t)| *l == k.label && (k.subtest == "*" || *t == k.subtest));
        if labels.contains(k.label.as_str()) && !still {
            eprintln!("known failure passes now (remove it from known-failures.txt): {}: {}", k.label, k.subtest);
        }
    }
    if !unexpected.is_empty() {
        // The server's temporary directory goes away with it: keep the logs.
        let keep = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("torture-{}", std::process::id()));
        let _ = Command::new("cp").arg("-r").arg(&out_dir).arg(&keep).status();
        panic!("unexpected smbtorture failures (logs in {}):\n{}", keep.display(), unexpected.join("\n"));
    }
}
