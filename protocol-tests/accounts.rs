//! Issue 6 end to end: organizations, accounts and share permissions, driven
//! through the admin CLI while the real server runs, checked with smbclient
//! and Python smbprotocol.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::*;

/// Policy for the lockout test: three failures lock for three seconds.
fn lockout_options() -> Options {
    Options {
        accounts: vec![
            "lockout_threshold = 3".into(),
            // All from 127.0.0.1: the per-address and the account-wide
            // lockout together.
            "lockout_threshold_all_sources = 3".into(),
            "lockout_window_secs = 60".into(),
            "lockout_duration_secs = 3".into(),
        ],
        // A burst of failures is one record and a summary after 1 s of quiet.
        security: vec!["logon_failure_audit_burst_secs = 1".into()],
        ..Options::default()
    }
}

/// Two organizations with a user `alice` each (same password) and one share each.
fn two_tenants(s: &TestServer) {
    s.admin(&["org", "add", "ACME"]);
    s.admin(&["org", "add", "BETA"]);
    s.add_user("ACME\\alice", PASS);
    s.add_user("BETA\\alice", PASS);
    s.admin(&["share", "add", "acme-docs", "--org", "ACME"]);
    s.admin(&["share", "add", "beta-docs", "--org", "BETA"]);
}

fn assert_has(o: &std::process::Output, needle: &str, what: &str) {
    let t = text(o);
    assert!(t.contains(needle), "{what}: expected {needle}\n{t}");
}

fn assert_clean(o: &std::process::Output, what: &str) {
    let t = text(o);
    assert!(o.status.success() && !t.contains("NT_STATUS_"), "{what}:\n{t}");
}

/// A user of organization A cannot reach B's share even by its exact name:
/// the answer is BAD_NETWORK_NAME, exactly as for a share that does not
/// exist. The NTLM domain (or `user@org`) picks the organization.
#[test]
fn tenants_are_isolated_and_the_domain_selects_the_organization() {
    let s = TestServer::start();
    two_tenants(&s);
    let src = s.dir.path().join("a.txt");
    std::fs::write(&src, b"acme only").unwrap();

    let own = s.smbclient("acme-docs", "ACME\\alice", PASS, &[], &format!("put {} a.txt; ls", src.display()));
    assert_clean(&own, "ACME\\alice on acme-docs");
    let guessed = s.smbclient("beta-docs", "ACME\\alice", PASS, &[], "ls");
    assert_has(&guessed, "NT_STATUS_BAD_NETWORK_NAME", "ACME\\alice on beta-docs");
    let missing = s.smbclient("gamma-docs", "ACME\\alice", PASS, &[], "ls");
    assert_has(&missing, "NT_STATUS_BAD_NETWORK_NAME", "missing share");

    // Same name and password in BETA: the domain decides, in both spellings.
    for user in ["BETA\\alice", "alice@BETA", "alice@beta"] {
        let o = s.smbclient("beta-docs", user, PASS, &[], "ls");
        assert_clean(&o, user);
        assert!(!text(&o).contains("a.txt"), "{user} sees ACME's file: {}", text(&o));
        assert_has(&s.smbclient("acme-docs", user, PASS, &[], "ls"), "NT_STATUS_BAD_NETWORK_NAME", user);
    }
    assert_clean(&s.smbclient("acme-docs", "alice@ACME", PASS, &[], "ls"), "alice@ACME");
    // Without a domain, only `[accounts] domainless_org` (here the default,
    // DEFAULT) is searched: refused like a wrong password.
    let ambiguous = s.smbclient("acme-docs", "alice", PASS, &["-W", "WORKGROUP"], "ls");
    assert_has(&ambiguous, "NT_STATUS_LOGON_FAILURE", "domainless alice");
    // Even a name unique on the server is not found by searching every
    // tenant, nor through another organization's domain.
    s.add_user("BETA\\bea", PASS);
    assert_has(&s.smbclient("beta-docs", "bea", PASS, &["-W", "WORKGROUP"], "ls"), "NT_STATUS_LOGON_FAILURE", "bea");
    assert_has(&s.smbclient("beta-docs", "ACME\\bea", PASS, &[], "ls"), "NT_STATUS_LOGON_FAILURE", "ACME\\bea");

    // Share lists (srvsvc) show only the caller's organization.
    let mut cmd = Command::new("smbclient");
    cmd.args(["-L", "//127.0.0.1", "-p", &s.port.to_string(), "-U", &format!("BETA\\alice%{PASS}")]);
    let list = text(&timed_output(cmd, Duration::from_secs(60)));
    assert!(list.contains("beta-docs") && !list.contains("acme-docs"), "{list}");
}

/// Issue 15: share names are per organization. ACME and BETA each have a
/// `docs`; each tenant's users reach only their own, and nothing (share
/// add, tree connect, the srvsvc listing and NetShareGetInfo) tells one
/// tenant that the other's exists. Domainless logons resolve only in
/// `[accounts] domainless_org`, UPN suffixes select their organization.
#[test]
fn each_organization_has_its_own_docs_and_learns_nothing_of_the_other() {
    let s =
        TestServer::start_with(Options { accounts: vec!["domainless_org = \"BETA\"".into()], ..Options::default() });
    s.admin(&["org", "add", "ACME"]);
    s.admin(&["org", "add", "BETA"]);
    s.add_user("ACME\\alice", PASS);
    s.add_user("BETA\\bob", PASS);
    s.add_user("BETA\\alice", PASS);
    let o = s.cli(
        &["user", "add", "ACME\\boss", "--role", "org_admin", "--password-stdin"],
        Some(&format!("{PASS}\n")),
        &[],
    );
    assert!(o.status.success(), "{}", text(&o));
    let env = [("SMBVAULT_ADMIN_PASSWORD", PASS)];
    let boss = |args: &[&str]| {
        let mut a = vec!["--as", "ACME\\boss"];
        a.extend_from_slice(args);
        s.cli(&a, None, &env)
    };

    // The operator creates BETA's docs first; ACME's administrator then
    // adds a docs of their own, and the CLI says nothing about BETA.
    s.admin(&["share", "add", "docs", "--org", "BETA", "--comment", "beta-secret-comment"]);
    let o = boss(&["share", "add", "docs", "--comment", "acme docs"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(!text(&o).contains("BETA"), "{}", text(&o));
    // A second docs in ACME is refused as existing; a name only BETA uses
    // is "not found" for ACME's administrator, like any unknown name.
    let dup = boss(&["share", "add", "DOCS"]);
    assert!(!dup.status.success() && text(&dup).contains("exists"), "{}", text(&dup));
    s.admin(&["share", "add", "beta-only", "--org", "BETA"]);
    let answers: Vec<String> = ["beta-only", "no-such-share"]
        .iter()
        .map(|name| {
            let o = boss(&["share", "access", name]);
            assert!(!o.status.success() && !text(&o).contains("BETA"), "{name}: {}", text(&o));
            text(&o).replace(name, "NAME")
        })
        .collect();
    assert_eq!(answers[0], answers[1], "another tenant's name answers like a missing one");
    let list = boss(&["share", "list"]);
    assert!(text(&list).contains("acme docs") && !text(&list).contains("beta"), "{}", text(&list));
    // The operator must say which docs when two exist.
    let o = s.cli(&["share", "set", "docs", "--comment", "x"], None, &[]);
    assert!(!o.status.success() && text(&o).contains("--org"), "{}", text(&o));

    // Each tenant's docs holds its own files.
    let a = s.dir.path().join("a.txt");
    std::fs::write(&a, b"acme").unwrap();
    assert_clean(&s.smbclient("docs", "ACME\\alice", PASS, &[], &format!("put {} acme.txt", a.display())), "acme put");
    assert_clean(&s.smbclient("docs", "BETA\\bob", PASS, &[], &format!("put {} beta.txt", a.display())), "beta put");
    let ls_a = text(&s.smbclient("docs", "ACME\\alice", PASS, &[], "ls"));
    assert!(ls_a.contains("acme.txt") && !ls_a.contains("beta.txt"), "{ls_a}");
    let ls_b = text(&s.smbclient("docs", "BETA\\bob", PASS, &[], "ls"));
    assert!(ls_b.contains("beta.txt") && !ls_b.contains("acme.txt"), "{ls_b}");
    // BETA's other share is a missing name for ACME, not a denied one.
    assert_has(&s.smbclient("beta-only", "ACME\\alice", PASS, &[], "ls"), "NT_STATUS_BAD_NETWORK_NAME", "beta-only");

    // srvsvc: the listing and NetShareGetInfo answer from the caller's
    // organization only.
    let rpc = |user: &str, cmd: &str| {
        let mut c = Command::new("rpcclient");
        c.args(["127.0.0.1", "-p", &s.port.to_string(), "-U", &format!("{user}%{PASS}"), "-c", cmd]);
        text(&timed_output(c, Duration::from_secs(60)))
    };
    let enum_a = rpc("ACME\\alice", "netshareenumall");
    assert!(enum_a.contains("acme docs") && !enum_a.contains("beta"), "{enum_a}");
    let info_a = rpc("ACME\\alice", "netsharegetinfo docs");
    assert!(info_a.contains("acme docs") && !info_a.contains("beta-secret-comment"), "{info_a}");
    let info_a2 = rpc("ACME\\alice", "netsharegetinfo beta-only");
    let info_none = rpc("ACME\\alice", "netsharegetinfo no-such-share");
    assert!(!info_a2.contains("beta-only") || info_a2.contains("NET_NAME_NOT_FOUND"), "{info_a2}");
    assert_eq!(
        info_a2.replace("beta-only", "NAME"),
        info_none.replace("no-such-share", "NAME"),
        "another tenant's name answers like a missing one"
    );
    let info_b = rpc("BETA\\bob", "netsharegetinfo docs");
    assert!(info_b.contains("beta-secret-comment"), "{info_b}");

    // Domainless logons: only BETA (domainless_org) is searched.
    let ls = text(&s.smbclient("docs", "bob", PASS, &["-W", "WORKGROUP"], "ls"));
    assert!(ls.contains("beta.txt"), "domainless bob: {ls}");
    let ls = text(&s.smbclient("docs", "alice", PASS, &["-W", "WORKGROUP"], "ls"));
    assert!(ls.contains("beta.txt") && !ls.contains("acme.txt"), "domainless alice is BETA's: {ls}");
    // ACME's users log on with ACME's UPN suffix once it has one.
    assert_has(&s.smbclient("docs", "alice@acme.example", PASS, &[], "ls"), "NT_STATUS_LOGON_FAILURE", "no suffix yet");
    s.admin(&["org", "set-upn-suffix", "ACME", "acme.example"]);
    let o = boss(&["org", "set-upn-suffix", "ACME", "evil.example"]);
    assert!(!o.status.success(), "only the operator sets UPN suffixes: {}", text(&o));
    let ls = text(&s.smbclient("docs", "alice@ACME.example", PASS, &[], "ls"));
    assert!(ls.contains("acme.txt") && !ls.contains("beta.txt"), "alice@acme.example: {ls}");
}

/// smbclient operations that change something, each on its own object so
/// one refusal cannot hide another.
fn write_ops(src: &std::path::Path) -> Vec<(&'static str, String)> {
    let src = src.display();
    vec![
        ("put (new file)", format!("put {src} new.txt")),
        ("put (overwrite)", format!("put {src} existing.txt")),
        ("mkdir", "mkdir newdir".into()),
        ("rename", "rename existing.txt renamed.txt".into()),
        ("del", "del existing.txt".into()),
        ("rmdir", "rmdir olddir".into()),
        ("setmode", "setmode existing.txt +r".into()),
        ("utimes", "utimes existing.txt 2020:01:01-00:00:00 -1 -1 -1".into()),
        ("hardlink", "hardlink existing.txt link.txt".into()),
    ]
}

/// Read-only holds for every operation (reads work, every change is
/// ACCESS_DENIED); `none` refuses the tree connect; groups count too.
#[test]
fn read_only_and_no_access_hold_for_every_operation() {
    let s = TestServer::start();
    s.admin(&["org", "add", "ACME"]);
    for u in ["owner", "reader", "nobody", "grouped"] {
        s.add_user(&format!("ACME\\{u}"), PASS);
    }
    s.admin(&["share", "add", "docs", "--org", "ACME", "--default-access", "none"]);
    s.admin(&["share", "grant", "docs", "--user", "ACME\\owner", "read_write"]);
    s.admin(&["share", "grant", "docs", "--user", "ACME\\reader", "read"]);
    s.admin(&["group", "add", "readers", "--org", "ACME"]);
    s.admin(&["group", "add-member", "readers", "grouped", "--org", "ACME"]);
    s.admin(&["share", "grant", "docs", "--group", "readers", "read"]);
    let src = s.dir.path().join("src.txt");
    std::fs::write(&src, b"original").unwrap();
    let setup = format!("put {} existing.txt; mkdir olddir", src.display());
    assert_clean(&s.smbclient("docs", "ACME\\owner", PASS, &[], &setup), "owner setup");

    std::fs::write(&src, b"changed!").unwrap();
    for user in ["ACME\\reader", "ACME\\grouped"] {
        let back = s.dir.path().join("back.txt");
        let read = s.smbclient("docs", user, PASS, &[], &format!("ls; get existing.txt {}", back.display()));
        assert_clean(&read, &format!("{user} reads"));
        assert_eq!(std::fs::read(&back).unwrap(), b"original");
        for (what, cmd) in write_ops(&src) {
            let o = s.smbclient("docs", user, PASS, &[], cmd.as_str());
            assert_has(&o, "NT_STATUS_ACCESS_DENIED", &format!("{user}: {what}"));
        }
    }
    // Nothing changed: same listing, same content, same attributes.
    let back = s.dir.path().join("after.txt");
    let after = s.smbclient("docs", "ACME\\owner", PASS, &[], &format!("ls; get existing.txt {}", back.display()));
    let listing = text(&after);
    assert!(listing.contains("existing.txt") && listing.contains("olddir"), "{listing}");
    for gone in ["new.txt", "newdir", "renamed.txt", "link.txt"] {
        assert!(!listing.contains(gone), "{gone} was created:\n{listing}");
    }
    let attrs = listing.lines().find(|l| l.contains("existing.txt")).and_then(|l| l.split_whitespace().nth(1));
    assert_eq!(attrs, Some("A"), "setmode +r took effect:\n{listing}");
    assert_eq!(std::fs::read(&back).unwrap(), b"original");

    let none = s.smbclient("docs", "ACME\\nobody", PASS, &[], "ls");
    assert_has(&none, "tree connect failed: NT_STATUS_ACCESS_DENIED", "none");
    // The owner can do all of it (hard links are not supported at all).
    for (what, cmd) in write_ops(&src) {
        if !matches!(what, "del" | "rename" | "hardlink") {
            assert_clean(&s.smbclient("docs", "ACME\\owner", PASS, &[], cmd.as_str()), what);
        }
    }
}

/// A child process whose output lines arrive on a channel while it runs.
struct Interactive {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Interactive {
    fn spawn(mut cmd: Command) -> Self {
        let mut child = cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn");
        let (tx, lines) = mpsc::channel();
        let out = child.stdout.take().unwrap();
        let err = child.stderr.take().unwrap();
        let tx2 = tx.clone();
        std::thread::spawn(move || BufReader::new(out).lines().map_while(Result::ok).for_each(|l| drop(tx.send(l))));
        std::thread::spawn(move || BufReader::new(err).lines().map_while(Result::ok).for_each(|l| drop(tx2.send(l))));
        Self { child, lines }
    }

    /// An interactive smbclient (line-buffered through stdbuf so that each
    /// answer can be read as soon as it is printed).
    fn smbclient(s: &TestServer, share: &str, user: &str) -> Self {
        let mut cmd = Command::new("stdbuf");
        cmd.args(["-oL", "-eL", "smbclient", &format!("//127.0.0.1/{share}"), "-p", &s.port.to_string()])
            .args(["-U", &format!("{user}%{PASS}")]);
        Self::spawn(cmd)
    }

    /// Python smbprotocol holding a session, a tree and an open file.
    fn python_hold(s: &TestServer, share: &str, user: &str, file: &str) -> Self {
        let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("protocol-tests/python/accounts_hold.py");
        let mut cmd = Command::new("python3");
        cmd.arg(script).args(["127.0.0.1", &s.port.to_string(), share, user, PASS, file]);
        let mut p = Self::spawn(cmd);
        p.until(|l| l == "READY", Duration::from_secs(30)).expect("python session ready");
        p
    }

    fn send(&mut self, line: &str) {
        let stdin = self.child.stdin.as_mut().unwrap();
        writeln!(stdin, "{line}").unwrap();
        stdin.flush().unwrap();
    }

    /// Lines until one matches; that line, or None on timeout.
    fn until(&mut self, done: impl Fn(&str) -> bool, limit: Duration) -> Option<String> {
        let end = Instant::now() + limit;
        loop {
            let line = self.lines.recv_timeout(end.saturating_duration_since(Instant::now())).ok()?;
            if done(&line) {
                return Some(line);
            }
        }
    }

    /// smbclient `ls`: Ok after a listing, Err(line) for an NT_STATUS error.
    fn ls(&mut self) -> Result<(), String> {
        self.send("ls");
        let l = self.until(|l| l.contains("blocks available") || l.contains("NT_STATUS_"), Duration::from_secs(10));
        match l {
            Some(l) if l.contains("NT_STATUS_") => Err(l),
            Some(_) => Ok(()),
            None => Err("no answer".into()),
        }
    }

    /// One command of the Python holder: "ok" or "err 0x...".
    fn cmd(&mut self, c: &str) -> String {
        self.send(c);
        self.until(|l| l == "ok" || l.starts_with("err"), Duration::from_secs(10)).unwrap_or_default()
    }
}

impl Drop for Interactive {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `ls` every 100 ms until it fails; returns the error and how long
/// after `since` it came. Panics if the session still works after 5 s.
fn cut_after(c: &mut Interactive, since: Instant, what: &str) -> (String, Duration) {
    loop {
        if let Err(e) = c.ls() {
            return (e, since.elapsed());
        }
        assert!(since.elapsed() < Duration::from_secs(5), "{what}: the session still works after 5 s");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The issue's bound: the next command fails within about 2 s.
const CUT_LIMIT: Duration = Duration::from_millis(2500);

/// Disabling or deleting a user cuts their running smbclient session at
/// once and refuses the next logon; revoking share access cuts that tree.
#[test]
fn disable_delete_and_revoke_cut_running_sessions() {
    let s = TestServer::start();
    s.admin(&["org", "add", "ACME"]);
    for u in ["alice", "bob", "carol"] {
        s.add_user(&format!("ACME\\{u}"), PASS);
    }
    s.admin(&["share", "add", "docs", "--org", "ACME"]);
    s.admin(&["share", "add", "private", "--org", "ACME", "--default-access", "none"]);
    s.admin(&["share", "grant", "private", "--user", "ACME\\carol", "read_write"]);

    let cases: [(&str, &str, &[&str], &str); 3] = [
        ("ACME\\alice", "docs", &["user", "disable", "ACME\\alice"], "NT_STATUS_NETWORK_SESSION_EXPIRED"),
        ("ACME\\bob", "docs", &["user", "delete", "ACME\\bob", "--yes"], "NT_STATUS_NETWORK_SESSION_EXPIRED"),
        (
            "ACME\\carol",
            "private",
            &["share", "revoke", "private", "--user", "ACME\\carol"],
            "NT_STATUS_NETWORK_NAME_DELETED",
        ),
    ];
    for (user, share, change, status) in cases {
        let mut c = Interactive::smbclient(&s, share, user);
        c.ls().unwrap_or_else(|e| panic!("{user} before the change: {e}"));
        s.admin(change);
        let t0 = Instant::now();
        let (err, took) = cut_after(&mut c, t0, user);
        eprintln!("{change:?}: {user}'s running smbclient got {err:?} after {took:?}");
        assert!(err.contains(status), "{user}: {err}");
        assert!(took <= CUT_LIMIT, "{user}: cut only after {took:?}");
        let again = s.smbclient(share, user, PASS, &[], "ls");
        let want = if share == "private" { "NT_STATUS_ACCESS_DENIED" } else { "NT_STATUS_LOGON_FAILURE" };
        assert_has(&again, want, &format!("{user} connecting again"));
    }
    // Carol lost only that share.
    assert_clean(&s.smbclient("docs", "ACME\\carol", PASS, &[], "ls"), "carol on docs");
    // A disabled user enabled again can log on again.
    s.admin(&["user", "enable", "ACME\\alice"]);
    assert_clean(&s.smbclient("docs", "ACME\\alice", PASS, &[], "ls"), "alice enabled again");
}

/// Open handles do not outlive a permission cut: a downgrade from
/// read_write to read closes the opens granted under the old level, and
/// disabling the user expires the session (Python smbprotocol holds them).
#[test]
fn held_opens_close_when_access_changes_or_the_user_is_disabled() {
    let s = TestServer::start();
    s.admin(&["org", "add", "ACME"]);
    s.add_user("ACME\\dave", PASS);
    s.admin(&["share", "add", "docs", "--org", "ACME"]);
    let mut p = Interactive::python_hold(&s, "docs", "ACME\\dave", "held.txt");
    assert_eq!(p.cmd("write"), "ok");
    assert_eq!(p.cmd("read"), "ok");
    assert_eq!(p.cmd("ls"), "ok");

    // More access keeps the handles.
    s.admin(&["share", "grant", "docs", "--user", "ACME\\dave", "admin"]);
    std::thread::sleep(Duration::from_millis(1600));
    assert_eq!(p.cmd("write"), "ok", "an upgrade must not close opens");

    s.admin(&["share", "grant", "docs", "--user", "ACME\\dave", "read"]);
    let t0 = Instant::now();
    let mut last = String::new();
    while t0.elapsed() < Duration::from_secs(5) {
        last = p.cmd("write");
        if last != "ok" {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    eprintln!("downgrade to read: held write handle got {last:?} after {:?}", t0.elapsed());
    assert_eq!(last, "err 0xc0000128", "STATUS_FILE_CLOSED");
    assert!(t0.elapsed() <= CUT_LIMIT);
    assert_eq!(p.cmd("read"), "err 0xc0000128", "the handle is gone, not just its write right");

    s.admin(&["user", "disable", "ACME\\dave"]);
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(5) {
        last = p.cmd("open");
        // The tree can go one check before the session does (seen once in
        // a clean-clone CI run: NETWORK_NAME_DELETED, 0xc00000c9); what
        // must hold is that the session itself expires within the bound.
        if last != "ok" && last != "err 0xc00000c9" {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    eprintln!("disable: held session got {last:?} after {:?}", t0.elapsed());
    assert_eq!(last, "err 0xc000035c", "STATUS_NETWORK_SESSION_EXPIRED");
    assert!(t0.elapsed() <= CUT_LIMIT);
}

/// Suspending an organization cuts its sessions and refuses logons;
/// resuming lets them in again; renaming changes the NTLM domain.
#[test]
fn suspend_resume_and_rename_organizations() {
    let s = TestServer::start();
    two_tenants(&s);
    let mut c = Interactive::smbclient(&s, "beta-docs", "BETA\\alice");
    c.ls().expect("before suspend");
    let acme = Interactive::smbclient(&s, "acme-docs", "ACME\\alice");
    s.admin(&["org", "suspend", "BETA"]);
    let (err, took) = cut_after(&mut c, Instant::now(), "suspend");
    eprintln!("org suspend: running session got {err:?} after {took:?}");
    assert!(err.contains("NT_STATUS_NETWORK_SESSION_EXPIRED") && took <= CUT_LIMIT, "{err} after {took:?}");
    assert_has(&s.smbclient("beta-docs", "BETA\\alice", PASS, &[], "ls"), "NT_STATUS_LOGON_FAILURE", "suspended");
    let mut acme = acme;
    acme.ls().expect("another organization is not affected");
    let list: serde_json::Value = serde_json::from_str(&s.admin(&["org", "list", "--json"])).unwrap();
    let beta = list.as_array().unwrap().iter().find(|o| o["name"] == "BETA").unwrap();
    assert_eq!(beta["suspended"], true);

    s.admin(&["org", "resume", "BETA"]);
    assert_clean(&s.smbclient("beta-docs", "BETA\\alice", PASS, &[], "ls"), "resumed");
    s.admin(&["org", "rename", "BETA", "GAMMA"]);
    assert_clean(&s.smbclient("beta-docs", "GAMMA\\alice", PASS, &[], "ls"), "renamed org as domain");
    assert_clean(&s.smbclient("beta-docs", "alice@GAMMA", PASS, &[], "ls"), "renamed org, user@org");
    assert_has(&s.smbclient("beta-docs", "BETA\\alice", PASS, &[], "ls"), "NT_STATUS_LOGON_FAILURE", "old name");
}

/// `user list --json` entry of `ORG\user`.
fn user_json(s: &TestServer, org: &str, name: &str) -> serde_json::Value {
    let v: serde_json::Value = serde_json::from_str(&s.admin(&["user", "list", "--org", org, "--json"])).unwrap();
    v.as_array().unwrap().iter().find(|u| u["name"] == name).cloned().expect("user listed")
}

/// Audit events of one organization (`logs access|operations --format jsonl`),
/// waiting until `want` shows up (the server flushes every 200 ms).
fn audit_events(
    s: &TestServer,
    log: &str,
    org: &str,
    want: impl Fn(&[serde_json::Value]) -> bool,
) -> Vec<serde_json::Value> {
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        let out = s.admin(&["logs", log, "--org", org, "--format", "jsonl"]);
        let evs: Vec<serde_json::Value> = out.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
        if want(&evs) || Instant::now() > end {
            return evs;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn count(evs: &[serde_json::Value], event: &str) -> usize {
    evs.iter().filter(|e| e["event"] == event).count()
}

/// N failures within the window lock the account (even the right password
/// is then refused), the lock lifts by itself after the period, and an
/// administrator can lift it at once. Failures are delayed and audited.
#[test]
fn lockout_after_n_failures_lifts_after_the_period_and_by_unlock() {
    let s = TestServer::start_with(lockout_options());
    s.admin(&["org", "add", "ACME"]);
    s.add_user("ACME\\alice", PASS);
    let o = s.cli(&["user", "add", "ACME\\boss", "--admin", "--password-stdin"], Some(&format!("{PASS}\n")), &[]);
    assert!(o.status.success(), "{}", text(&o));
    s.admin(&["share", "add", "docs", "--org", "ACME"]);

    let lock = || {
        for i in 0..3 {
            let t = Instant::now();
            let o = s.smbclient("docs", "ACME\\alice", "Wrong-Passw0rd", &[], "ls");
            assert_has(&o, "NT_STATUS_LOGON_FAILURE", &format!("failure {i}"));
            // [security] logon_failure_delay_ms = 200 in the test config.
            assert!(t.elapsed() >= Duration::from_millis(200), "failure {i} answered after {:?}", t.elapsed());
        }
        let locked = s.smbclient("docs", "ACME\\alice", PASS, &[], "ls");
        assert_has(&locked, "NT_STATUS_LOGON_FAILURE", "right password while locked");
        assert_eq!(user_json(&s, "ACME", "alice")["locked"], true);
    };

    // A session opened before the lockout survives it, even when another
    // change makes the server re-check every session: guessing passwords
    // must not disconnect the account's owner.
    let mut owner = Interactive::smbclient(&s, "docs", "ACME\\alice");
    owner.ls().expect("owner's session");
    lock();
    let locked_at = Instant::now();
    s.admin(&["share", "set", "docs", "--comment", "revision bump"]);
    std::thread::sleep(Duration::from_millis(1500));
    owner.ls().expect("the owner's session outlives a lockout");
    let early = s.smbclient("docs", "ACME\\alice", PASS, &[], "ls");
    assert_has(&early, "NT_STATUS_LOGON_FAILURE", "1.5 s into a 3 s lockout");
    std::thread::sleep(Duration::from_millis(3000).saturating_sub(locked_at.elapsed()));
    // The lock is stored in whole seconds (rounded up): allow for that.
    let end = Instant::now() + Duration::from_secs(3);
    loop {
        let o = s.smbclient("docs", "ACME\\alice", PASS, &[], "ls");
        if o.status.success() {
            break;
        }
        assert!(Instant::now() < end, "still locked {:?} after locking: {}", locked_at.elapsed(), text(&o));
        std::thread::sleep(Duration::from_millis(300));
    }
    eprintln!("lockout lifted by itself {:?} after it began (period 3 s)", locked_at.elapsed());
    assert_eq!(user_json(&s, "ACME", "alice")["locked"], false);

    // Manual unlock, by the organization's administrator.
    lock();
    let env = [("SMBVAULT_ADMIN_PASSWORD", PASS)];
    let o = s.cli(&["--as", "ACME\\boss", "user", "unlock", "alice", "--json"], None, &env);
    assert!(o.status.success(), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["locked"], false);
    assert_clean(&s.smbclient("docs", "ACME\\alice", PASS, &[], "ls"), "after unlock");

    // Every failure and both lockouts are in ACME's access log; the
    // unlock in its operations log.
    // Failures come in bursts (issue 14): the first of each is recorded at
    // once, the rest as one summary when the burst has been quiet for
    // `logon_failure_audit_burst_secs`.
    let summary = |e: &[serde_json::Value]| e.iter().any(|x| x.to_string().contains("more failed logons"));
    let evs = audit_events(&s, "access", "ACME", |e| count(e, "lockout") >= 2 && summary(e));
    assert_eq!(count(&evs, "lockout"), 2, "{evs:#?}");
    assert!(count(&evs, "logon-failure") >= 3, "a record per burst: {evs:#?}");
    assert!(summary(&evs), "a burst's summary: {evs:#?}");
    let ops = audit_events(&s, "operations", "ACME", |e| e.iter().any(|x| x["action"] == "UserUnlocked"));
    let unlock = ops.iter().find(|x| x["action"] == "UserUnlocked").expect("unlock audited");
    assert_eq!(unlock["user"], "ACME\\boss");
}

/// The quota set on an organization is the size smbclient's `du`
/// (FileFsFullSizeInformation) reports, live, and usage counts against it.
#[test]
fn quota_is_what_du_reports() {
    let s = TestServer::start();
    two_tenants(&s);
    s.admin(&["org", "set-quota", "ACME", "64M"]);
    let blocks = |share: &str, user: &str| -> (u64, u64) {
        let o = s.smbclient(share, user, PASS, &[], "du");
        let t = text(&o);
        // "\t\t16384 blocks of size 4096. 16384 blocks available"
        let line = t.lines().find(|l| l.contains("blocks of size")).unwrap_or_else(|| panic!("{t}"));
        let w: Vec<&str> = line.split_whitespace().collect();
        let size: u64 = w[4].trim_end_matches('.').parse().unwrap();
        (w[0].parse::<u64>().unwrap() * size, w[5].parse::<u64>().unwrap() * size)
    };
    assert_eq!(blocks("acme-docs", "ACME\\alice"), (64 << 20, 64 << 20));
    let src = s.dir.path().join("four.bin");
    random_file(&src, 4 << 20, 1);
    assert_clean(
        &s.smbclient("acme-docs", "ACME\\alice", PASS, &[], &format!("put {} four.bin", src.display())),
        "put",
    );
    let (total, free) = blocks("acme-docs", "ACME\\alice");
    assert_eq!(total, 64 << 20);
    assert!(((59 << 20)..=(60 << 20)).contains(&free), "4 MiB used of 64 MiB, free {free}");
    // The quota is enforced: 64 MiB more does not fit (STATUS_DISK_FULL).
    let big = s.dir.path().join("sixtyfour.bin");
    random_file(&big, 64 << 20, 2);
    let over = s.smbclient("acme-docs", "ACME\\alice", PASS, &[], &format!("put {} big.bin", big.display()));
    assert!(text(&over).contains("NT_STATUS_DISK_FULL"), "write past quota: {}", text(&over));
    // Changed while the server runs: the next query sees it.
    s.admin(&["org", "set-quota", "ACME", "1G"]);
    assert_eq!(blocks("acme-docs", "ACME\\alice").0, 1 << 30);
    // …and a raised quota takes effect for writes at once.
    let ok = s.smbclient("acme-docs", "ACME\\alice", PASS, &[], &format!("put {} big.bin", big.display()));
    assert_clean(&ok, "put under the raised quota");
    // BETA has no quota: it gets the disk's size, not ACME's numbers.
    assert_ne!(blocks("beta-docs", "BETA\\alice").0, 1 << 30);
    let v: serde_json::Value = serde_json::from_str(&s.admin(&["org", "list", "--json"])).unwrap();
    assert_eq!(v.as_array().unwrap().iter().find(|o| o["name"] == "ACME").unwrap()["quota_bytes"], 1u64 << 30);
}

/// Organization administrators manage their own organization only, through
/// the CLI with --as; every change and every refusal is audited; `--json`
/// output is machine-readable; the password policy applies.
#[test]
fn org_admins_are_scoped_to_their_organization() {
    let s = TestServer::start();
    two_tenants(&s);
    let o = s.cli(
        &["user", "add", "ACME\\boss", "--role", "org_admin", "--password-stdin"],
        Some(&format!("{PASS}\n")),
        &[],
    );
    assert!(o.status.success(), "{}", text(&o));
    let env = [("SMBVAULT_ADMIN_PASSWORD", PASS)];
    let boss = |args: &[&str], stdin: Option<&str>| {
        let mut a = vec!["--as", "ACME\\boss", "--json"];
        a.extend_from_slice(args);
        s.cli(&a, stdin, &env)
    };
    let pw = format!("{PASS}\n");
    let ok = |o: std::process::Output| -> serde_json::Value {
        assert!(o.status.success(), "{}", text(&o));
        serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&o)))
    };
    let denied = |o: std::process::Output, what: &str| {
        assert_eq!(o.status.code(), Some(3), "{what}: {}", text(&o));
        let e: serde_json::Value = serde_json::from_slice(&o.stderr).unwrap();
        assert!(e["error"].as_str().unwrap().contains("permission denied"), "{what}: {e}");
    };

    // Own organization: users, admins, shares, permissions.
    let carl = ok(boss(&["user", "add", "carl", "--password-stdin"], Some(&pw)));
    assert_eq!(carl["qualified"], "ACME\\carl");
    assert_eq!(ok(boss(&["user", "grant-admin", "carl"], None))["role"], "org_admin");
    assert_eq!(ok(boss(&["user", "revoke-admin", "carl"], None))["role"], "member");
    ok(boss(&["user", "passwd", "carl", "--password-stdin"], Some("Fresh-Passw0rd-9\n")));
    ok(boss(&["share", "add", "acme-hr", "--default-access", "none"], None));
    ok(boss(&["share", "grant", "acme-hr", "--user", "carl", "read"], None));
    assert_clean(&s.smbclient("acme-hr", "ACME\\carl", "Fresh-Passw0rd-9", &[], "ls"), "carl after passwd");
    let users = ok(boss(&["user", "list"], None));
    assert!(users.as_array().unwrap().iter().all(|u| u["org"] == "ACME"), "{users}");
    let shares = ok(boss(&["share", "list"], None));
    assert!(shares.as_array().unwrap().iter().all(|s| s["org"] == "ACME"), "{shares}");

    // Another organization, or the operator's business: exit code 3.
    denied(boss(&["user", "disable", "BETA\\alice"], None), "disable in BETA");
    denied(boss(&["user", "add", "BETA\\mallory", "--password-stdin"], Some(&pw)), "add to BETA");
    denied(boss(&["--org", "BETA", "share", "grant", "beta-docs", "--user", "alice", "read"], None), "grant in BETA");
    denied(boss(&["--org", "BETA", "share", "remove", "beta-docs"], None), "remove in BETA");
    // Unqualified, BETA's share name is just not there (names are per
    // organization): no hint that another tenant uses it.
    let o = boss(&["share", "remove", "beta-docs"], None);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("does not exist") && !text(&o).contains("BETA"), "{}", text(&o));
    denied(boss(&["user", "list", "--org", "BETA"], None), "list BETA");
    denied(boss(&["org", "suspend", "BETA"], None), "suspend");
    denied(boss(&["org", "add", "EVIL"], None), "org add");
    denied(boss(&["org", "set-quota", "ACME", "1T"], None), "own quota");
    denied(boss(&["user", "add", "root", "--role", "operator", "--password-stdin"], Some(&pw)), "operator");
    assert_clean(&s.smbclient("beta-docs", "BETA\\alice", PASS, &[], "ls"), "BETA untouched");

    // An operator account (server-wide role) is above organizations.
    let o = s.cli(&["user", "add", "ACME\\root", "--role", "operator", "--password-stdin"], Some(&pw), &[]);
    assert!(o.status.success(), "{}", text(&o));
    let root = |args: &[&str]| {
        let mut a = vec!["--as", "root@ACME", "--json"];
        a.extend_from_slice(args);
        s.cli(&a, None, &env)
    };
    assert_eq!(ok(root(&["org", "add", "DELTA"]))["name"], "DELTA");
    ok(root(&["share", "set", "beta-docs", "--comment", "set by an operator account"]));
    assert_eq!(ok(root(&["user", "list"])).as_array().unwrap().len(), 6, "every organization's users");
    denied(boss(&["user", "disable", "root"], None), "org admin vs operator account");

    // A member's or a wrong password's --as is refused.
    let env_bad = [("SMBVAULT_ADMIN_PASSWORD", "Wrong-Passw0rd")];
    assert_eq!(s.cli(&["--as", "ACME\\boss", "user", "list"], None, &env_bad).status.code(), Some(3));
    assert_eq!(
        s.cli(&["--as", "ACME\\carl", "user", "list"], None, &[("SMBVAULT_ADMIN_PASSWORD", "Fresh-Passw0rd-9")])
            .status
            .code(),
        Some(3)
    );

    // Password policy, for the operator too.
    let weak = s.cli(&["user", "add", "ACME\\weak", "--password-stdin", "--json"], Some("password\n"), &[]);
    assert_eq!(weak.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&weak.stderr).contains("password rejected"), "{}", text(&weak));

    // Deleting a user and the admin's changes are in ACME's audit log.
    ok(boss(&["user", "delete", "carl", "--yes"], None));
    let ops = audit_events(&s, "operations", "ACME", |e| e.iter().any(|x| x["action"] == "UserDeleted"));
    for action in ["UserAdded", "RoleChanged", "PasswordReset", "ShareAdded", "AccessSet", "UserDeleted", "Denied"] {
        let by_boss = ops.iter().any(|x| x["action"] == action && x["user"] == "ACME\\boss");
        assert!(by_boss, "{action} by ACME\\boss not audited: {ops:#?}");
    }
    assert!(ops.iter().any(|x| x["action"] == "AdminLogin" && x["result"] == "denied"), "failed --as audited");
    // The organization's own log has its history from the start (its key
    // exists from `org add` on, before the server first used it).
    for action in ["OrgCreated", "ShareAdded"] {
        assert!(ops.iter().any(|x| x["action"] == action && x["user"] == "operator"), "{action} in ACME's log");
    }
    let all = serde_json::to_string(&ops).unwrap();
    assert!(!all.contains("Fresh-Passw0rd-9") && !all.contains(PASS), "a password in the audit log");
}

/// After users were created and changed through the CLI and the server ran
/// logons, no file of the data directory (the SQLite database and its WAL
/// included) holds a password or an NT hash in clear; neither does the
/// server log or the CLI's output.
#[test]
fn data_directory_holds_no_password_or_nt_hash() {
    use smbvault::accounts::password::nt_hash;
    let s = TestServer::start();
    s.admin(&["org", "add", "ACME"]);
    let pws = ["Sekrit-Passw0rd-One", "Zweites-Geheimnis-22", "パスワードSecret9", "Replaced-Passw0rd-X"];
    let mut printed = String::new();
    for (i, pw) in pws[..3].iter().enumerate() {
        let o = s.cli(
            &["user", "add", &format!("ACME\\user{i}"), "--password-stdin", "--json"],
            Some(&format!("{pw}\n")),
            &[],
        );
        assert!(o.status.success(), "{}", text(&o));
        printed.push_str(&text(&o));
    }
    s.admin(&["share", "add", "docs", "--org", "ACME"]);
    for (i, pw) in pws[..3].iter().enumerate() {
        assert_clean(&s.smbclient("docs", &format!("ACME\\user{i}"), pw, &[], "ls"), "logon");
    }
    // A reset must not leave the old secrets in freed pages or the WAL.
    let o =
        s.cli(&["user", "passwd", "ACME\\user0", "--password-stdin", "--json"], Some(&format!("{}\n", pws[3])), &[]);
    printed.push_str(&text(&o));
    assert_clean(&s.smbclient("docs", "ACME\\user0", pws[3], &[], "ls"), "logon after reset");
    let _ = s.smbclient("docs", "ACME\\user1", "Wrong-Passw0rd-1", &[], "ls");
    let mut s = s;
    s.stop();

    let data = s.data_dir();
    assert!(data.join("accounts.db").exists());
    let log = s.log_text();
    for pw in pws {
        let nt = nt_hash(pw);
        let hex = hex::encode(*nt);
        let needles: [(&str, Vec<u8>); 5] = [
            ("password", pw.as_bytes().to_vec()),
            ("UTF-16 password", utf16(pw)),
            ("raw NT hash", nt.to_vec()),
            ("hex NT hash", hex.clone().into_bytes()),
            ("HEX NT hash", hex.to_uppercase().into_bytes()),
        ];
        for (what, needle) in &needles {
            let hits = grep_tree(&data, needle);
            assert!(hits.is_empty(), "{what} of {pw:?} in {hits:?}");
            assert!(!log.as_bytes().windows(needle.len()).any(|w| w == &needle[..]), "{what} in the server log");
            assert!(!printed.as_bytes().windows(needle.len()).any(|w| w == &needle[..]), "{what} in CLI output");
        }
    }
}

/// Listing names of `ls` in `share` as `user`.
fn listing(s: &TestServer, share: &str, user: &str) -> String {
    let o = s.smbclient(share, user, PASS, &[], "ls");
    assert_clean(&o, &format!("{user}: ls on {share}"));
    text(&o)
}

/// Access-based enumeration (`share set --access-based-enumeration`): a
/// file whose DACL denies bob read is left out of bob's listings while it
/// is on, and listed again when it is off; alice sees it throughout.
#[test]
fn access_based_enumeration_hides_what_the_user_cannot_read() {
    let s = TestServer::start();
    s.admin(&["org", "add", "ACME"]);
    s.add_user("ACME\\alice", PASS);
    s.add_user("ACME\\bob", PASS);
    s.admin(&["share", "add", "docs", "--org", "ACME"]);
    // Setting a DACL takes WRITE_DAC, which only share administrators hold.
    s.admin(&["share", "grant", "--user", "alice", "docs", "admin"]);
    let src = s.dir.path().join("x.txt");
    std::fs::write(&src, b"payroll").unwrap();
    let put = format!("put {0} secret.txt; put {0} open.txt", src.display());
    assert_clean(&s.smbclient("docs", "ACME\\alice", PASS, &[], &put), "alice puts");

    // bob's SID (the scheme of engine/fsa/sid.rs): deny him read, allow everyone.
    let bob = user_json(&s, "ACME", "bob");
    let (org, uid) = (bob["org_id"].as_u64().unwrap(), bob["id"].as_u64().unwrap());
    let bob_sid = format!("S-1-5-21-1397572182-{}-{}-{}", org >> 32, org & 0xffff_ffff, 1000 + uid);
    let port = s.port.to_string();
    let o = python("set_dacl.py", &["127.0.0.1", &port, "docs", "ACME\\alice", PASS, "secret.txt", &bob_sid]);
    assert!(o.status.success() && text(&o).contains("done"), "set_dacl.py: {}", text(&o));
    assert_has(
        &s.smbclient("docs", "ACME\\bob", PASS, &[], "get secret.txt /dev/null"),
        "NT_STATUS_ACCESS_DENIED",
        "bob reads",
    );

    // Off (the default): both see both files.
    for u in ["ACME\\alice", "ACME\\bob"] {
        let l = listing(&s, "docs", u);
        assert!(l.contains("secret.txt") && l.contains("open.txt"), "{u}, ABE off:\n{l}");
    }

    s.admin(&["share", "set", "docs", "--access-based-enumeration", "on"]);
    let list = s.admin(&["share", "list", "--org", "ACME"]);
    assert!(
        list.contains("ABE")
            && list
                .lines()
                .any(|l| l.split_whitespace().collect::<Vec<_>>()
                    == ["docs", "ACME", "inherit", "read_write", "on", "on"]),
        "{list}"
    );
    let l = listing(&s, "docs", "ACME\\bob");
    assert!(!l.contains("secret.txt") && l.contains("open.txt"), "bob, ABE on:\n{l}");
    // Asking for the name itself does not find it either.
    assert_has(
        &s.smbclient("docs", "ACME\\bob", PASS, &[], "ls secret.txt"),
        "NT_STATUS_NO_SUCH_FILE",
        "bob, ls secret.txt",
    );
    let l = listing(&s, "docs", "ACME\\alice");
    assert!(l.contains("secret.txt") && l.contains("open.txt"), "alice, ABE on:\n{l}");

    s.admin(&["share", "set", "docs", "--access-based-enumeration", "off"]);
    let l = listing(&s, "docs", "ACME\\bob");
    assert!(l.contains("secret.txt") && l.contains("open.txt"), "bob, ABE off again:\n{l}");
}
