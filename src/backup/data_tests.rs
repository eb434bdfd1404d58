use std::os::unix::fs::MetadataExt;
use std::time::{Duration, SystemTime};

use rusqlite::Connection;

use super::*;
use crate::backup::db::{ACCOUNTS_DB, DbBackups, KEYS_DB};
use crate::backup::manifest;
use crate::backup::test_schema;

const ORG1: &str = "store/orgs/0000000000000001";
const ORG2: &str = "store/orgs/0000000000000002";
const SEALED: [u8; 16] = [0xaa; 16];
const ACTIVE: [u8; 16] = [0xbb; 16];

fn t(secs: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_564_800 + secs)
}

fn seg_rel(org: &str, name: &[u8; 16]) -> String {
    format!("{org}/seg/{}.seg", hex::encode(name))
}

/// Sets a segment's file content and its committed length in meta.db.
fn set_segment(d: &Path, org: &str, name: &[u8; 16], bytes: &[u8], committed: u64) {
    std::fs::write(d.join(seg_rel(org, name)), bytes).unwrap();
    let c = Connection::open(d.join(org).join("meta.db")).unwrap();
    c.execute("DELETE FROM segments WHERE name=?1", [&name[..]]).unwrap();
    c.execute(
        "INSERT INTO segments(name, len, live) VALUES(?1, ?2, 0)",
        rusqlite::params![&name[..], committed as i64],
    )
    .unwrap();
}

/// A data directory: accounts.db, keys.db, two organizations with a
/// sealed segment and an active one whose tail is not committed.
fn data_dir() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    Connection::open(d.path().join(ACCOUNTS_DB))
        .unwrap()
        .execute_batch(
            &[
                test_schema::ACCOUNTS,
                "INSERT INTO orgs VALUES(1, 'GONE', x'01', 0); INSERT INTO orgs VALUES(2, 'KEPT', x'02', 0);",
            ]
            .concat(),
        )
        .unwrap();
    std::fs::create_dir_all(d.path().join("store")).unwrap();
    Connection::open(d.path().join(KEYS_DB))
        .unwrap()
        .execute_batch(
            &[
                test_schema::KEYS,
                "INSERT INTO org_keys VALUES(1, x'00112233'); INSERT INTO org_keys VALUES(2, x'44556677');",
            ]
            .concat(),
        )
        .unwrap();
    for org in [ORG1, ORG2] {
        std::fs::create_dir_all(d.path().join(org).join("seg")).unwrap();
        Connection::open(d.path().join(org).join("meta.db"))
            .unwrap()
            .execute_batch(
                "PRAGMA journal_mode=WAL;
                 CREATE TABLE segments(id INTEGER PRIMARY KEY AUTOINCREMENT, name BLOB NOT NULL,
                                       len INTEGER NOT NULL, live INTEGER NOT NULL);",
            )
            .unwrap();
        set_segment(d.path(), org, &SEALED, &[1u8; 100_000], 100_000);
        set_segment(d.path(), org, &ACTIVE, &[2u8; 5_000], 3_000);
    }
    d
}

fn backups(d: &Path, generations: u32) -> DbBackups {
    DbBackups::new(d, d.join("target"), generations, Key32::random()).with_segments()
}

fn ino(p: &Path) -> u64 {
    std::fs::metadata(p).unwrap().ino()
}

#[test]
fn copies_committed_prefix_and_links_unchanged_segments() {
    let d = data_dir();
    let b = backups(d.path(), 7);
    let g1 = b.create(t(0)).unwrap();
    assert!(b.verify(&g1).is_empty(), "{:?}", b.verify(&g1));
    // Only the committed part of the active segment is copied.
    assert_eq!(std::fs::metadata(g1.dir.join(seg_rel(ORG1, &ACTIVE))).unwrap().len(), 3_000);
    let m = Manifest::read(&g1.dir).unwrap();
    assert_eq!(m.files.iter().filter(|f| is_segment(&f.path)).count(), 4);

    // The active segment grows and commits more; the sealed one is unchanged.
    set_segment(d.path(), ORG1, &ACTIVE, &[2u8; 8_000], 8_000);
    let g2 = b.create(t(86_400)).unwrap();
    assert!(b.verify(&g2).is_empty(), "{:?}", b.verify(&g2));
    let (s1, s2) = (g1.dir.join(seg_rel(ORG1, &SEALED)), g2.dir.join(seg_rel(ORG1, &SEALED)));
    assert_eq!(ino(&s1), ino(&s2), "sealed segment hard-linked");
    let (a1, a2) = (g1.dir.join(seg_rel(ORG1, &ACTIVE)), g2.dir.join(seg_rel(ORG1, &ACTIVE)));
    assert_ne!(ino(&a1), ino(&a2), "grown active segment copied");
    assert_eq!(std::fs::metadata(&a2).unwrap().len(), 8_000);
    // ORG2's active segment did not change: its copy is shared too.
    assert_eq!(ino(&g1.dir.join(seg_rel(ORG2, &ACTIVE))), ino(&g2.dir.join(seg_rel(ORG2, &ACTIVE))));
    // Copies are private.
    assert_eq!(std::fs::metadata(&a2).unwrap().mode() & 0o777, 0o600);
}

#[test]
fn rotation_keeps_the_newest_and_shared_copies_survive() {
    let d = data_dir();
    let b = backups(d.path(), 2);
    for day in 0..4 {
        b.create(t(day * 86_400)).unwrap();
    }
    let gens = b.list();
    assert_eq!(gens.len(), 2);
    assert_eq!(gens[0].time, t(2 * 86_400));
    for g in &gens {
        assert!(b.verify(g).is_empty(), "{}: {:?}", g.name, b.verify(g));
    }
    // The oldest kept generation's links outlived the deleted ones.
    assert_eq!(std::fs::metadata(gens[0].dir.join(seg_rel(ORG1, &SEALED))).unwrap().nlink(), 2);
}

#[test]
fn verify_detects_a_flipped_byte_in_a_segment_copy() {
    let d = data_dir();
    let b = backups(d.path(), 7);
    let g = b.create(t(0)).unwrap();
    let copy = g.dir.join(seg_rel(ORG2, &ACTIVE));
    let mut bytes = std::fs::read(&copy).unwrap();
    bytes[1234] ^= 0x40;
    std::fs::write(&copy, &bytes).unwrap();
    let p = b.verify(&g);
    assert!(p.iter().any(|p| p.contains(&seg_rel(ORG2, &ACTIVE)) && p.contains("SHA-256")), "{p:?}");
    // The damaged copy is not shared into the next generation: it gets a
    // fresh copy, while the intact ones are linked.
    let g2 = b.create(t(60)).unwrap();
    assert!(b.verify(&g2).is_empty(), "{:?}", b.verify(&g2));
    assert_ne!(ino(&copy), ino(&g2.dir.join(seg_rel(ORG2, &ACTIVE))));
    assert_eq!(ino(&g.dir.join(seg_rel(ORG2, &SEALED))), ino(&g2.dir.join(seg_rel(ORG2, &SEALED))));
}

#[test]
fn purge_removes_the_organization_and_its_segments() {
    let d = data_dir();
    let b = backups(d.path(), 7);
    let g = b.create(t(0)).unwrap();
    assert_eq!(b.purge_org(OrgId(1)).unwrap(), 1);
    assert!(!g.dir.join(ORG1).exists());
    assert!(b.verify(&g).is_empty(), "re-MACed: {:?}", b.verify(&g));
    let m = Manifest::read(&g.dir).unwrap();
    assert!(m.files.iter().all(|f| !f.path.starts_with(ORG1)));
    assert!(g.dir.join(seg_rel(ORG2, &SEALED)).is_file());
    let n: i64 = Connection::open(g.dir.join(KEYS_DB))
        .unwrap()
        .query_row("SELECT count(*) FROM org_keys WHERE org=1", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 0);
    assert_eq!(b.purge_org(OrgId(1)).unwrap(), 0, "idempotent");
}

#[test]
fn a_segment_compacted_away_after_the_snapshot_is_retried() {
    let d = data_dir();
    let tmp = d.path().join("tmp");
    std::fs::create_dir_all(tmp.join(ORG1)).unwrap();
    let meta = tmp.join(ORG1).join("meta.db");
    std::fs::copy(d.path().join(ORG1).join("meta.db"), &meta).unwrap();
    // The snapshot names a segment compaction deleted since; the live
    // meta.db (taken again) no longer does.
    let gone = [0xcc; 16];
    Connection::open(&meta)
        .unwrap()
        .execute("INSERT INTO segments(name, len, live) VALUES(?1, 64, 0)", [&gone[..]])
        .unwrap();
    let calls = std::cell::Cell::new(0);
    let resnap = || {
        calls.set(calls.get() + 1);
        std::fs::copy(d.path().join(ORG1).join("meta.db"), &meta).map(|_| ()).map_err(|e| e.to_string())
    };
    let mut files = Vec::new();
    copy_org_segments(d.path(), &tmp, &format!("{ORG1}/meta.db"), None, &mut files, &resnap).unwrap();
    assert_eq!(calls.get(), 1);
    assert_eq!(files.len(), 2);
}

#[test]
fn restore_puts_segments_back_and_sets_the_current_ones_aside() {
    let d = data_dir();
    let b = backups(d.path(), 7);
    let g = b.create(t(0)).unwrap();
    // The data disk is lost: every segment directory is gone.
    for org in [ORG1, ORG2] {
        std::fs::remove_dir_all(d.path().join(org).join("seg")).unwrap();
    }
    std::fs::create_dir_all(d.path().join(ORG1).join("seg")).unwrap();
    std::fs::write(d.path().join(seg_rel(ORG1, &[0xdd; 16])), b"newer").unwrap();
    let mk = crate::keys::MasterKey::from_key(Key32::random());
    let cfg = crate::config::AccountsConfig::default();
    let r = super::super::restore::restore(&b, &g, d.path(), &mk, &cfg, t(100)).unwrap();
    assert_eq!(r.files, 2 + 2 + 4);
    assert_eq!(std::fs::read(d.path().join(seg_rel(ORG1, &ACTIVE))).unwrap(), vec![2u8; 3_000]);
    assert_ne!(ino(&d.path().join(seg_rel(ORG1, &SEALED))), ino(&g.dir.join(seg_rel(ORG1, &SEALED))), "copied");
    assert!(r.replaced_dir.join(seg_rel(ORG1, &[0xdd; 16])).is_file());
    assert!(!d.path().join(seg_rel(ORG1, &[0xdd; 16])).exists());
    assert!(manifest::verify_generation(&g.dir, &g.name, b.mac_key()).0.is_empty());
}
