//! File, path and share names recorded in events never appear in clear
//! (UTF-8, UTF-16LE or UTF-16BE) anywhere in the audit directory.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use smbvault::audit::testing::MemOrgKeys;
use smbvault::audit::{AuditLog, AuditSink, Event, EventKind, LogId, Query, parse_time};
use smbvault::config::{AuditConfig, Retention};
use smbvault::keys::{Key32, MasterKey};
use smbvault::types::OrgId;

const ASCII: &str = "LEAKMARKER7Q";
const JAPANESE: &str = "機密書類_見積書";

fn encodings(s: &str) -> Vec<Vec<u8>> {
    let le: Vec<u8> = s.encode_utf16().flat_map(|u| u.to_le_bytes()).collect();
    let be: Vec<u8> = s.encode_utf16().flat_map(|u| u.to_be_bytes()).collect();
    vec![s.as_bytes().to_vec(), le, be]
}

fn files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() { files(&p, out) } else { out.push(p) }
    }
}

fn events(t: std::time::SystemTime, org: Option<OrgId>) -> Vec<Event> {
    let n = |tag: &str| format!("{tag}/{ASCII}/{JAPANESE}.docx");
    let kinds = vec![
        EventKind::TreeConnect { share: format!("{ASCII}{JAPANESE}") },
        EventKind::Open {
            share: JAPANESE.into(),
            path: n("open"),
            desired_access: 1,
            granted_access: 1,
            disposition: "open".into(),
            created: true,
        },
        EventKind::Close {
            share: ASCII.into(),
            path: n("close"),
            bytes_read: 1,
            reads: 1,
            bytes_written: 0,
            writes: 0,
        },
        EventKind::Rename { share: ASCII.into(), from: n("from"), to: n("to") },
        EventKind::Delete { share: ASCII.into(), path: n("del") },
        EventKind::Mkdir { share: ASCII.into(), path: n("mkdir") },
        EventKind::SetAttributes { share: ASCII.into(), path: n("attr"), attributes: 2 },
        EventKind::SetTimes {
            share: ASCII.into(),
            path: n("t"),
            creation: None,
            last_access: None,
            last_write: None,
            change: None,
        },
        EventKind::SetSecurity { share: ASCII.into(), path: n("sd"), security_info: 4 },
        EventKind::Copy { share: ASCII.into(), from: n("c1"), to: n("c2"), bytes: 5 },
        EventKind::Admin { action: "share.create".into(), target: JAPANESE.into(), detail: n("admin") },
    ];
    kinds
        .into_iter()
        .enumerate()
        .map(|(i, k)| {
            let mut e = Event::new(t + Duration::from_millis(i as u64), k).user("alice");
            e.org = org;
            e
        })
        .collect()
}

#[test]
fn names_are_never_stored_in_clear() {
    let dir = tempfile::tempdir().unwrap();
    let keys = Arc::new(MemOrgKeys::new(Key32::from_bytes([5; 32])));
    keys.shred(OrgId(3));
    let mk = MasterKey::from_key(Key32::from_bytes([6; 32]));
    let cfg = AuditConfig::default();
    let log = AuditLog::open(dir.path(), keys.clone(), &mk, &cfg).unwrap();
    let mut n = 0;
    // Org log, server log (operator events) and a shredded org (withheld),
    // over two months and with enough records to write index entries.
    for (month, org) in [
        ("2026-10-05", Some(OrgId(1))),
        ("2026-11-05", Some(OrgId(1))),
        ("2026-11-06", None),
        ("2026-11-07", Some(OrgId(3))),
    ] {
        let t = parse_time(month).unwrap();
        for rep in 0..300u64 {
            for e in events(t + Duration::from_secs(rep), org) {
                log.record(e);
                n += 1;
            }
        }
        log.flush().unwrap();
    }
    log.purge(parse_time("2026-11-20").unwrap(), &|_| Retention::Unlimited, true).unwrap();
    // The names are really there, readable with the keys.
    let mut found = 0;
    log.query(
        LogId::Org(OrgId(1)),
        &Query { path_prefix: Some(format!("{ASCII}/open/{ASCII}")), ..Query::default() },
        &mut |_| {
            found += 1;
            true
        },
    )
    .unwrap();
    assert_eq!(found, 0); // share-qualified: the share of Open is the Japanese one
    log.query(
        LogId::Org(OrgId(1)),
        &Query { path_prefix: Some(format!("{JAPANESE}/open/{ASCII}/{JAPANESE}")), ..Query::default() },
        &mut |_| {
            found += 1;
            true
        },
    )
    .unwrap();
    assert_eq!(found, 600);
    log.shutdown().unwrap();
    assert_eq!(log.stats().written, n);

    let mut all = Vec::new();
    files(dir.path(), &mut all);
    assert!(all.iter().any(|p| p.extension().is_some_and(|e| e == "idx")), "no index written: {all:?}");
    let mut bytes_checked = 0;
    for p in &all {
        let data = std::fs::read(p).unwrap();
        bytes_checked += data.len();
        for marker in [ASCII, JAPANESE, "LEAKMARKER", "機密書類", "見積書"] {
            for enc in encodings(marker) {
                assert!(
                    !data.windows(enc.len()).any(|w| w == enc.as_slice()),
                    "{marker:?} in clear in {}",
                    p.display()
                );
            }
        }
    }
    assert!(bytes_checked > 100_000, "{bytes_checked}");
    // User names are stored in clear on purpose (see docs/audit-format.md).
    let seg = std::fs::read(dir.path().join("org-1/2026-11.seg")).unwrap();
    assert!(seg.windows(5).any(|w| w == b"alice"));
}
