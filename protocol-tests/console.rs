//! The web console (issue 18) in a real browser: headless Chromium from
//! Debian's `chromium` package, driven by Selenium through
//! `chromium-driver` (protocol-tests/python/console_browser.py), against
//! the real binary, with smbclient for the SMB side. This file prepares a
//! second organization and the files, runs the browser script, and then
//! checks from the outside (CLI) that organization B is untouched and that
//! every console change is in the operation log under the signed-in user.
//!
//! `SMBVAULT_CONSOLE_SHOTS=DIR` keeps the screenshots (docs/console/ holds
//! the committed ones).

mod common;

use common::garage::Garage;
use common::*;

/// The test server locks an account after this many failures (the browser
/// script counts on it).
const THRESHOLD: &str = "lockout_threshold = 3";

fn prepare(s: &TestServer, admin_pw: &str) {
    // Organization B: an administrator, a user, a group and a share.
    s.admin(&["org", "add", "BETA"]);
    let o = s.cli(
        &["user", "add", "BETA\\badmin", "--role", "org_admin", "--password-stdin"],
        Some(&format!("{PASS}\n")),
        &[],
    );
    assert!(o.status.success(), "{}", text(&o));
    s.add_user("BETA\\bob", PASS);
    s.admin(&["group", "add", "staff", "--org", "BETA"]);
    s.admin(&["group", "add-member", "staff", "bob", "--org", "BETA"]);
    s.admin(&["share", "add", "betashare", "--org", "BETA"]);
    // An operator account (the console's operator pages).
    let o = s.cli(
        &["user", "add", "DEFAULT\\op", "--role", "operator", "--password-stdin"],
        Some(&format!("{PASS}\n")),
        &[],
    );
    assert!(o.status.success(), "{}", text(&o));
    // The file the new user reads, and a client-chosen hostile name: the
    // server refuses `<` in names (MS-FSCC 2.1.5.2), and the refused open
    // is in the operation log with the name as the client sent it.
    let local = s.dir.path().join("report.txt");
    std::fs::write(&local, "四半期報告 Q3\n").unwrap();
    let admin = "DEFAULT\\admin";
    let o = s.smbclient("share", admin, admin_pw, &[], &format!("put {} report.txt", local.display()));
    assert!(o.status.success(), "put report.txt: {}", text(&o));
    let o = s.smbclient(
        "share",
        admin,
        admin_pw,
        &[],
        &format!("put {} \"<script>document.title='pwned'</script>.txt\"", local.display()),
    );
    assert!(text(&o).contains("OBJECT_NAME_INVALID"), "the hostile name should be refused: {}", text(&o));
    // A database backup generation for the backups overview (verified there).
    s.admin(&["backup", "now"]);
    // A remote backup generation holding 見積書.txt's first text, which then
    // changes: the browser restores the first (issue 19).
    std::fs::write(&local, "見積書 第1版\n").unwrap();
    let o = s.smbclient("share", admin, admin_pw, &[], &format!("put {} 見積書.txt", local.display()));
    assert!(o.status.success(), "put 見積書.txt: {}", text(&o));
    s.admin(&["backup", "org-target", "DEFAULT", "tokyo"]);
    std::thread::sleep(std::time::Duration::from_secs(3)); // the commit interval
    s.admin(&["backup", "org-now", "DEFAULT"]);
    std::fs::write(&local, "見積書 第2版\n").unwrap();
    let o = s.smbclient("share", admin, admin_pw, &[], &format!("put {} 見積書.txt", local.display()));
    assert!(o.status.success(), "put 見積書.txt: {}", text(&o));
}

fn json_lines(s: &str) -> Vec<serde_json::Value> {
    s.lines().filter(|l| !l.trim().is_empty()).map(|l| serde_json::from_str(l).expect("json line")).collect()
}

#[test]
fn console_in_a_browser() {
    let g = Garage::start();
    g.bucket("tokyo");
    let target = format!(
        "[backup]\nremote_interval_hours = 0\n\n[backup.targets.tokyo]\nkind = \"s3\"\nendpoint = {:?}\n\
         region = \"garage\"\nbucket = \"tokyo\"\ncredentials_file = {:?}\npart_size_mib = 5\n",
        g.endpoint,
        g.credentials_file()
    );
    let s =
        TestServer::start_with(Options { accounts: vec![THRESHOLD.into()], extra: vec![target], ..Options::default() });
    assert_ne!(s.console_port, 0, "the console did not start: {}", s.log_text());
    let admin_pw = s.admin_password.clone().expect("first administrator password");
    prepare(&s, &admin_pw);
    let ca = s.data_dir().join("console/cert.pem");
    let work = s.dir.path().join("browser");
    std::fs::create_dir_all(&work).unwrap();
    let shots = std::env::var("SMBVAULT_CONSOLE_SHOTS").unwrap_or_default();
    let o = python(
        "console_browser.py",
        &[
            &format!("https://127.0.0.1:{}/", s.console_port),
            &s.port.to_string(),
            &admin_pw,
            ca.to_str().unwrap(),
            &shots,
            work.to_str().unwrap(),
            PASS,
        ],
    );
    let out = text(&o);
    println!("{out}");
    assert!(o.status.success(), "browser test failed:\n{out}\nserver log:\n{}", s.log_text());
    assert_eq!(out.lines().filter(|l| l.starts_with("ok: ")).count(), 17, "every browser check ran:\n{out}");

    // Organization B after org A's administrator tried everything on it.
    let users: serde_json::Value =
        serde_json::from_str(&s.admin(&["user", "list", "--org", "BETA", "--json"])).unwrap();
    let names: Vec<(String, bool)> = users
        .as_array()
        .unwrap()
        .iter()
        .map(|u| (u["name"].as_str().unwrap().to_string(), u["enabled"].as_bool().unwrap()))
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(names.iter().all(|(_, enabled)| *enabled), "{names:?}");
    let orgs: serde_json::Value = serde_json::from_str(&s.admin(&["org", "list", "--json"])).unwrap();
    let beta = orgs.as_array().unwrap().iter().find(|o| o["name"] == "BETA").expect("BETA").clone();
    assert_eq!(beta["suspended"], false, "{beta}");
    assert!(beta["quota_bytes"].is_null() && beta["contract_end"].is_null() && beta["retention"].is_null(), "{beta}");
    // What the operator did to GAMMA, with confirmation.
    let gamma = orgs.as_array().unwrap().iter().find(|o| o["name"] == "GAMMA").expect("GAMMA").clone();
    assert_eq!(gamma["suspended"], true, "{gamma}");
    assert_eq!(gamma["quota_bytes"], 10u64 << 30, "{gamma}");
    assert!(gamma["contract_end"].is_string() && gamma["erase_at"].is_string(), "{gamma}");
    let gops = json_lines(&s.admin(&["logs", "operations", "--org", "GAMMA", "--type", "admin", "--format", "jsonl"]));
    for action in ["OrgCreated", "OrgSuspended", "OrgQuotaSet", "OrgContractEnd"] {
        assert!(
            gops.iter().any(|e| e["user"] == "DEFAULT\\op" && e["action"] == action),
            "{action} by DEFAULT\\op: {gops:#?}"
        );
    }
    let o = s.smbclient("betashare", "BETA\\bob", PASS, &[], "ls");
    assert!(o.status.success(), "bob still reaches his share: {}", text(&o));

    // The operation log, read with the CLI: each console change under the
    // signed-in user, as the same change from the CLI is recorded.
    let ops = json_lines(&s.admin(&["logs", "operations", "--org", "DEFAULT", "--type", "admin", "--format", "jsonl"]));
    let by = |user: &str, action: &str, detail: &str| {
        ops.iter().any(|e| {
            e["user"] == user && e["action"] == action && e["detail"].as_str().is_some_and(|d| d.contains(detail))
        })
    };
    for (user, action, detail) in [
        ("DEFAULT\\admin", "TotpEnrolled", "DEFAULT\\admin"),
        ("DEFAULT\\admin", "OrgTotpRequired", "required"),
        ("DEFAULT\\admin", "UserAdded", "DEFAULT\\tanaka"),
        ("DEFAULT\\admin", "UserAdded", "DEFAULT\\suzuki"),
        ("DEFAULT\\admin", "OrgRetentionSet", "3m"),
        ("DEFAULT\\admin", "GroupAdded", "営業"),
        ("DEFAULT\\admin", "GroupMemberAdded", "DEFAULT\\tanaka"),
        ("DEFAULT\\admin", "AccessSet", "営業"),
        ("DEFAULT\\admin", "ShareAdded", "経理"),
        ("DEFAULT\\admin", "ShareRemoved", "一時"),
        ("DEFAULT\\admin", "UserUnlocked", "DEFAULT\\suzuki"),
        ("DEFAULT\\admin", "ShareChanged", "previous_versions=off"),
        ("DEFAULT\\admin", "backup.restore_files", "見積書.txt"),
        ("DEFAULT\\tanaka", "PasswordChanged", "DEFAULT\\tanaka"),
    ] {
        assert!(by(user, action, detail), "missing {action} by {user} ({detail}) in:\n{ops:#?}");
    }
    // Refused cross-organization attempts are audited as denied, under the admin.
    assert!(
        ops.iter().any(|e| e["user"] == "DEFAULT\\admin" && e["action"] == "Denied" && e["result"] == "denied"),
        "denied attempts audited"
    );
    let access = json_lines(&s.admin(&["logs", "access", "--org", "DEFAULT", "--format", "jsonl"]));
    let kinds = |k: &str| access.iter().filter(|e| e["event"] == k).count();
    assert!(kinds("console-sign-in") >= 8 && kinds("console-sign-out") >= 4 && kinds("lockout") >= 2, "{access:#?}");
}
