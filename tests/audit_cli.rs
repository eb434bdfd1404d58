//! `smbvault logs …` through `cli::logs::run_to`: formats, filters, scoping,
//! verify's failure on tampering, purge.

use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use smbvault::audit::testing::MemOrgKeys;
use smbvault::audit::{AuditLog, AuditSink, Event, EventKind, EventResult, audit_dir, parse_time};
use smbvault::cli::logs::{LogsCmd, LogsContext, LogsError, OrgDirectory, run_to};
use smbvault::config::{Config, Retention};
use smbvault::keys::{Key32, MasterKey};
use smbvault::types::OrgId;

struct Orgs;

impl OrgDirectory for Orgs {
    fn org_id(&self, name: &str) -> Option<OrgId> {
        match name {
            "acme" => Some(OrgId(1)),
            "globex" => Some(OrgId(2)),
            _ => None,
        }
    }
    fn org_name(&self, id: OrgId) -> Option<String> {
        match id.0 {
            1 => Some("acme".into()),
            2 => Some("globex".into()),
            _ => None,
        }
    }
    fn retention(&self, id: OrgId) -> Option<Retention> {
        (id.0 == 1).then_some(Retention::M1)
    }
}

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    cmd: LogsCmd,
}

struct Env {
    _dir: tempfile::TempDir,
    config: Config,
    mk: MasterKey,
    keys: Arc<MemOrgKeys>,
}

fn env() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::default();
    config.server.data_dir = dir.path().to_path_buf();
    let env = Env {
        _dir: dir,
        config,
        mk: MasterKey::from_key(Key32::from_bytes([1; 32])),
        keys: Arc::new(MemOrgKeys::new(Key32::from_bytes([2; 32]))),
    };
    let log =
        AuditLog::open(&audit_dir(&env.config.server.data_dir), env.keys.clone(), &env.mk, &env.config.audit).unwrap();
    let t0 = parse_time("2026-11-25T17:00:00.123").unwrap();
    let c = "203.0.113.5:49152".parse().unwrap();
    let logon = EventKind::LogonSuccess { dialect: 0x0311, signing: Some("AES-128-GMAC".into()), encryption: None };
    log.record(Event::new(t0, logon).org(OrgId(1)).user("alice").client(c).session(5));
    log.record(
        Event::new(
            t0 + Duration::from_secs(1),
            EventKind::Rename { share: "営業".into(), from: "a,b.txt".into(), to: "=cmd.txt".into() },
        )
        .org(OrgId(1))
        .user("alice"),
    );
    log.record(
        Event::new(t0 + Duration::from_secs(2), EventKind::Delete { share: "hr".into(), path: "pay.xlsx".into() })
            .org(OrgId(2))
            .user("bob")
            .result(EventResult::Denied("STATUS_ACCESS_DENIED".into())),
    );
    log.record(
        Event::new(t0 + Duration::from_secs(3), EventKind::LogonFailure { reason: "unknown user".into() })
            .user("eve")
            .client(c),
    );
    log.shutdown().unwrap();
    env
}

fn run(env: &Env, allowed: Option<OrgId>, args: &[&str]) -> (Result<(), LogsError>, String) {
    run_json(env, allowed, args, false)
}

fn run_json(env: &Env, allowed: Option<OrgId>, args: &[&str], json: bool) -> (Result<(), LogsError>, String) {
    let cli = Cli::try_parse_from(std::iter::once("logs").chain(args.iter().copied())).unwrap();
    let ctx = LogsContext {
        config: &env.config,
        master: &env.mk,
        org_keys: env.keys.clone(),
        orgs: &Orgs,
        allowed_org: allowed,
        json,
    };
    let mut out = Vec::new();
    let r = run_to(&ctx, cli.cmd, &mut out);
    (r, String::from_utf8(out).unwrap())
}

#[test]
fn table_shows_jst_and_names() {
    let e = env();
    let (r, out) = run(&e, None, &["access"]);
    r.unwrap();
    assert!(out.contains("2026-11-25T17:00:00.123+09:00"), "{out}");
    assert!(out.contains("acme") && out.contains("dialect=3.1.1") && out.contains("encryption=none"), "{out}");
    assert!(out.contains("eve") && out.contains("logon-failure"), "{out}");
    assert!(out.ends_with("(2 events)\n"), "{out}");
    let (_, ops) = run(&e, None, &["operations"]);
    assert!(ops.contains("営業\\a,b.txt -> 営業\\=cmd.txt"), "{ops}");
    assert!(ops.contains("denied (STATUS_ACCESS_DENIED)"), "{ops}");
}

#[test]
fn csv_and_jsonl() {
    let e = env();
    let (r, out) = run(&e, None, &["operations", "--org", "acme", "--format", "csv"]);
    r.unwrap();
    let lines: Vec<&str> = out.split("\r\n").collect();
    assert!(lines[0].starts_with("\u{FEFF}time,log,seq,org,user"));
    assert!(lines[1].contains(",\"a,b.txt\",'=cmd.txt,"), "{out}");
    let (r, out) = run(&e, None, &["operations", "--format", "jsonl", "--result", "denied"]);
    r.unwrap();
    let v: serde_json::Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    assert_eq!(v["org"], "globex");
    assert_eq!(v["event"], "delete");
    assert_eq!(v["path"], "pay.xlsx");
    assert_eq!(v["status"], "STATUS_ACCESS_DENIED");
    assert_eq!(v["time"], "2026-11-25T17:00:02.123+09:00");
}

#[test]
fn filters_and_time_formats() {
    let e = env();
    let count = |args: &[&str]| {
        let (r, out) = run(&e, None, args);
        r.unwrap();
        out.lines().count() - 2 // header and count line
    };
    assert_eq!(count(&["operations", "--user", "ALICE"]), 1);
    assert_eq!(count(&["operations", "--path", "営業/A,B"]), 1);
    assert_eq!(count(&["operations", "--type", "delete,rename"]), 2);
    assert_eq!(count(&["access", "--since", "2026-11-25T08:00:01Z"]), 1);
    assert_eq!(count(&["access", "--until", "2026-11-25T17:00:01"]), 1);
    assert_eq!(count(&["access", "--org", "server"]), 1);
    let (r, _) = run(&e, None, &["access", "--since", "tomorrow"]);
    assert!(matches!(r, Err(LogsError::Usage(_))));
}

#[test]
fn organization_admin_sees_only_its_organization() {
    let e = env();
    let (r, out) = run(&e, Some(OrgId(2)), &["operations"]);
    r.unwrap();
    assert!(out.contains("pay.xlsx") && !out.contains("営業"), "{out}");
    let (r, _) = run(&e, Some(OrgId(2)), &["operations", "--org", "acme"]);
    assert!(matches!(r, Err(LogsError::Forbidden(_))));
    let (r, out) = run(&e, Some(OrgId(2)), &["access"]);
    r.unwrap();
    assert!(!out.contains("logon-failure"), "server log leaked: {out}");
    let (r, _) = run(&e, Some(OrgId(2)), &["purge"]);
    assert!(matches!(r, Err(LogsError::Forbidden(_))));
}

#[test]
fn verify_fails_and_says_where() {
    let e = env();
    let (r, out) = run(&e, None, &["verify"]);
    r.unwrap();
    assert_eq!(out.matches(": OK:").count(), 3, "{out}");
    let seg = audit_dir(&e.config.server.data_dir).join("org-1/2026-11.seg");
    let mut data = std::fs::read(&seg).unwrap();
    let at = data.windows(5).position(|w| w == b"alice").unwrap();
    data[at] = b'A';
    std::fs::write(&seg, data).unwrap();
    let (r, out) = run(&e, None, &["verify", "--org", "acme"]);
    assert!(matches!(r, Err(LogsError::Tampered(1))), "{r:?}");
    assert!(out.contains("acme (org-1): FAILED") && out.contains("segment 2026-11: record #1:"), "{out}");
    // --json: one object that says the same.
    let (r, out) = run_json(&e, None, &["verify", "--org", "acme"], true);
    assert!(matches!(r, Err(LogsError::Tampered(1))), "{r:?}");
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(v["ok"], false);
    assert_eq!(v["logs"][0]["log"], "org-1");
    assert!(v["logs"][0]["problems"][0].as_str().unwrap().contains("record #1"), "{v}");
}

#[test]
fn purge_json() {
    let e = env();
    let (r, out) = run_json(&e, None, &["purge"], true);
    r.unwrap();
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert!(v["purged"].is_array(), "{v}");
    // A dry run answers in JSON too, and changes nothing.
    let (r, out) = run_json(&e, None, &["purge", "--dry-run"], true);
    r.unwrap();
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(v["dry_run"], true, "{v}");
    assert!(v["would_purge"].is_array(), "{v}");
}

#[test]
fn purge_runs_now() {
    let e = env();
    let (r, out) = run(&e, None, &["purge", "--yes"]);
    r.unwrap();
    // Everything is from 2026-11-25; nothing is older than a month yet
    // unless this test runs after 2027-01.
    assert!(out.contains("nothing to purge") || out.contains("removed"), "{out}");
}
