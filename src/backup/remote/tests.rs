//! Remote backups to a `path` target, end to end through the real storage
//! engine (protocol-tests/remote_backup.rs does the same against Garage).

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use super::target::{TargetConfig, TargetKind};
use super::*;
use crate::keys::MasterKey;
use crate::storage::{NodeKind, StoreOptions};
use crate::types::FileTime;

fn path_target(dir: &Path) -> TargetConfig {
    let t = format!("kind = \"path\"\npath = {:?}\npiece_size_mib = 1\nparallel = 2\n", dir);
    toml::from_str(&t).unwrap()
}

#[test]
fn generations_dedup_corruption_retention_and_erasure() {
    let d = tempfile::tempdir().unwrap();
    let data = d.path().join("data");
    let nas = d.path().join("nas");
    let mk = MasterKey::from_key(Key32::random());
    let opts = StoreOptions { background: false, ..StoreOptions::default() };
    let store = crate::storage::Store::open(&data.join("store"), &mk, opts).unwrap();
    let org = OrgId(7);
    store.create_org(org).unwrap();
    let o = store.org(org).unwrap();
    let root = o.create_root(FileTime(1)).unwrap();
    let f = o.create(root, "見積書.bin", NodeKind::File, 0x20, FileTime(2)).unwrap();
    let bytes: Vec<u8> = (0..3_000_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    o.open_content(f, None, false).unwrap().write(0, &bytes).unwrap();
    o.flush().unwrap();

    let t = path_target(&nas);
    assert_eq!(t.kind, TargetKind::Path);
    t.validate("nas").unwrap();
    let remote = Remote::new(&data, BTreeMap::from([("nas".to_string(), t)]), None, Key32::random());
    let ob = OrgBackup { org, target: "nas".into(), generations: 2, set_by: "operator".into() };
    let shares = vec![ShareEntry { name: "docs".into(), root: root.0 }];
    let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_000_000);
    let r1 = remote.backup_org(org, &ob, &*store, shares.clone(), t0, &Meter::default()).unwrap();
    assert!(r1.uploaded_bytes > 3_000_000 && r1.objects >= 4, "{r1:?}");

    // A small change: the unchanged full pieces are not sent again.
    let g = o.create(root, "small.txt", NodeKind::File, 0x20, FileTime(3)).unwrap();
    o.open_content(g, None, false).unwrap().write(0, b"hello").unwrap();
    o.flush().unwrap();
    let t1 = t0 + Duration::from_secs(60);
    let r2 = remote.backup_org(org, &ob, &*store, shares.clone(), t1, &Meter::default()).unwrap();
    assert!(r2.uploaded_bytes < 1_500_000, "only the last piece, meta.db and the manifest: {r2:?}");
    assert!(r2.bytes > 3_000_000);

    // Both generations verify; the newest restores the file.
    let list = remote.list(org, &ob).unwrap();
    assert_eq!(list.len(), 2);
    for (_, m) in &list {
        assert!(remote.verify(org, &ob, m.as_ref().unwrap(), &*store, &Meter::default()).is_empty());
    }
    let m = remote.manifest(org, &ob, "latest").unwrap();
    assert_eq!(m.generation, r2.generation);
    let cache = remote.fetch(org, &ob, &m, &*store, &Meter::default()).unwrap();
    let copy = store.open_copy(org, &cache).unwrap();
    let node = super::snapshot::resolve(&copy, root, "見積書.bin").unwrap();
    let mut back = vec![0u8; bytes.len()];
    assert_eq!(copy.open_content(node, None, false).unwrap().read(0, &mut back).unwrap(), bytes.len());
    assert_eq!(back, bytes);

    // A flipped byte in one stored piece is found.
    let piece = &m.files.iter().find(|f| f.path != "meta.db").unwrap().pieces[0];
    let p = nas.join(format!("orgs/{:016x}/objects/{}", org.0, piece.sha256));
    let mut b = std::fs::read(&p).unwrap();
    b[100] ^= 1;
    std::fs::write(&p, &b).unwrap();
    let problems = remote.verify(org, &ob, &m, &*store, &Meter::default());
    assert!(problems.iter().any(|p| p.contains("corrupted")), "{problems:?}");
    b[100] ^= 1;
    std::fs::write(&p, &b).unwrap();

    // A forged manifest fails its MAC.
    let mp = nas.join(format!("orgs/{:016x}/generations/{}.json", org.0, r2.generation));
    let text = std::fs::read_to_string(&mp).unwrap();
    std::fs::write(&mp, text.replace("\"docs\"", "\"DOCS\"")).unwrap();
    assert!(remote.manifest(org, &ob, &r2.generation).unwrap_err().contains("MAC"));
    std::fs::write(&mp, text).unwrap();

    // Retention: a third generation drops the first.
    let r3 = remote.backup_org(org, &ob, &*store, shares, t1 + Duration::from_secs(60), &Meter::default()).unwrap();
    assert_eq!(r3.deleted_generations, vec![r1.generation.clone()]);
    assert_eq!(remote.list(org, &ob).unwrap().len(), 2);

    // Erasure deletes everything of the organization on the target.
    assert!(remote.erase_everywhere(org, Some("nas")).unwrap() > 0);
    assert!(crate::backup::manifest::list_files(&nas).is_empty(), "{:?}", crate::backup::manifest::list_files(&nas));
}
