//! meta.db tampering fails closed (issue 15, docs/storage-format.md §4):
//! with write access to the disk one edits `meta.db` directly, as an
//! attacker would, to point a file at another file's content, set a
//! security descriptor to NULL (which would read as the permissive
//! default), corrupt a descriptor, move a file under another directory,
//! point a named stream at another file's content, or change a content's
//! size. Each read or open of the edited object fails with an integrity
//! error; every other file reads as before, and listings still show them.
//! A database of format 1 (no row MACs) is upgraded on open.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, params};
use smbvault::keys::{Key32, MasterKey};
use smbvault::storage::{NodeKind, OrgStore, StorageError, Store, StoreOptions};
use smbvault::types::{FileTime, NodeId, OrgId};

const ORG: OrgId = OrgId(1);

struct Tree {
    root: NodeId,
    dir: NodeId,
    files: Vec<NodeId>,
}

/// Six files of distinct sizes in `dir`, each with a descriptor and a
/// named stream; file 0 also has EAs.
fn populate(o: &OrgStore) -> Tree {
    let root = o.create_root(FileTime(1)).unwrap();
    let dir = o.create(root, "経理", NodeKind::Directory, 0x10, FileTime(1)).unwrap();
    let other = o.create(root, "other", NodeKind::Directory, 0x10, FileTime(1)).unwrap();
    let _ = other;
    let mut files = Vec::new();
    for i in 0..6usize {
        let f = o.create(dir, &format!("請求書 {i}.txt"), NodeKind::File, 0x20, FileTime(2)).unwrap();
        o.open_content(f, None, false).unwrap().write(0, &data(i)).unwrap();
        o.open_content(f, Some("Zone.Identifier"), true).unwrap().write(0, &data(100 + i)).unwrap();
        o.set_security(f, format!("descriptor {i}").as_bytes()).unwrap();
        files.push(f);
    }
    o.set_eas(files[0], &[("USER.TAG".into(), b"x".to_vec())]).unwrap();
    Tree { root, dir, files }
}

fn data(i: usize) -> Vec<u8> {
    (0..1000 + 37 * i).map(|b| (b * 7 + i) as u8).collect()
}

fn read_all(o: &OrgStore, f: NodeId, stream: Option<&str>) -> Result<Vec<u8>, StorageError> {
    let c = o.open_content(f, stream, false)?;
    let mut buf = vec![0; c.len() as usize];
    c.read(0, &mut buf)?;
    Ok(buf)
}

fn meta_db(dir: &Path) -> PathBuf {
    dir.join("orgs").join(format!("{:016x}", ORG.0)).join("meta.db")
}

fn open_store(dir: &Path, mk: &MasterKey) -> std::sync::Arc<Store> {
    Store::open(dir, mk, StoreOptions::default()).unwrap()
}

/// Builds a store, closes it, lets `edit` change meta.db, and reopens.
fn tampered(edit: impl FnOnce(&Connection, &Tree)) -> (tempfile::TempDir, std::sync::Arc<Store>, Tree) {
    let tmp = tempfile::tempdir().unwrap();
    let mk = MasterKey::from_key(Key32::random());
    let s = open_store(tmp.path(), &mk);
    s.create_org(ORG).unwrap();
    let o = s.org(ORG).unwrap();
    let t = populate(&o);
    o.flush().unwrap();
    drop(o);
    s.close().unwrap();
    drop(s);
    let c = Connection::open(meta_db(tmp.path())).unwrap();
    edit(&c, &t);
    drop(c);
    let s = open_store(tmp.path(), &mk);
    (tmp, s, t)
}

fn content_of(c: &Connection, node: NodeId) -> i64 {
    c.query_row("SELECT content FROM nodes WHERE id=?1", [node.0 as i64], |r| r.get(0)).unwrap()
}

fn integrity<T: std::fmt::Debug>(r: Result<T, StorageError>, what: &str) {
    assert!(matches!(r, Err(StorageError::Integrity)), "{what}: {r:?}");
}

/// Every file but `except` reads its own bytes, stream and descriptor,
/// and the directory lists all of them.
fn others_intact(o: &OrgStore, t: &Tree, except: &[usize]) {
    for (i, &f) in t.files.iter().enumerate().filter(|(i, _)| !except.contains(i)) {
        assert_eq!(read_all(o, f, None).unwrap(), data(i), "file {i}");
        assert_eq!(read_all(o, f, Some("Zone.Identifier")).unwrap(), data(100 + i), "stream of file {i}");
        assert_eq!(o.get_security(f).unwrap().unwrap(), format!("descriptor {i}").as_bytes(), "descriptor {i}");
    }
    let listed = o.list(t.dir).unwrap();
    for i in (0..t.files.len()).filter(|i| !except.contains(i)) {
        assert!(listed.iter().any(|e| e.name == format!("請求書 {i}.txt")), "file {i} missing from the listing");
    }
}

#[test]
fn untampered_store_reads_everything() {
    let (_tmp, s, t) = tampered(|_, _| {});
    let o = s.org(ORG).unwrap();
    others_intact(&o, &t, &[]);
    assert_eq!(o.get_eas(t.files[0]).unwrap().len(), 1);
}

#[test]
fn content_pointer_swap_fails_closed() {
    let (_tmp, s, t) = tampered(|c, t| {
        let victim = content_of(c, t.files[1]);
        c.execute("UPDATE nodes SET content=?1 WHERE id=?2", params![victim, t.files[0].0 as i64]).unwrap();
    });
    let o = s.org(ORG).unwrap();
    integrity(read_all(&o, t.files[0], None), "read through the swapped pointer");
    integrity(o.stat(t.files[0]), "stat of the swapped node");
    integrity(o.remove(t.files[0]), "deleting the swapped node (it would delete file 1's content)");
    others_intact(&o, &t, &[0]);
    assert!(!o.list(t.dir).unwrap().iter().any(|e| e.name == "請求書 0.txt"), "a tampered entry is not listed");
}

#[test]
fn descriptor_set_to_null_fails_closed() {
    let (_tmp, s, t) = tampered(|c, t| {
        c.execute("UPDATE nodes SET sd=NULL WHERE id=?1", [t.files[2].0 as i64]).unwrap();
    });
    let o = s.org(ORG).unwrap();
    integrity(o.get_security(t.files[2]), "descriptor removed behind our back");
    others_intact(&o, &t, &[2]);
}

#[test]
fn corrupted_descriptor_fails_closed() {
    let (_tmp, s, t) = tampered(|c, t| {
        let id = t.files[3].0 as i64;
        let mut sd: Vec<u8> = c.query_row("SELECT sd FROM nodes WHERE id=?1", [id], |r| r.get(0)).unwrap();
        let mid = sd.len() / 2;
        sd[mid] ^= 0x40;
        c.execute("UPDATE nodes SET sd=?1 WHERE id=?2", params![sd, id]).unwrap();
    });
    let o = s.org(ORG).unwrap();
    integrity(o.get_security(t.files[3]), "corrupted descriptor");
    others_intact(&o, &t, &[3]);
}

#[test]
fn eas_removed_fail_closed() {
    let (_tmp, s, t) = tampered(|c, t| {
        c.execute("UPDATE nodes SET eas=NULL WHERE id=?1", [t.files[0].0 as i64]).unwrap();
    });
    let o = s.org(ORG).unwrap();
    integrity(o.get_eas(t.files[0]), "EAs removed behind our back");
    others_intact(&o, &t, &[0]);
}

#[test]
fn moving_a_row_to_another_directory_fails_closed() {
    let (_tmp, s, t) = tampered(|c, t| {
        c.execute("UPDATE nodes SET parent=?1 WHERE id=?2", params![t.root.0 as i64, t.files[4].0 as i64]).unwrap();
    });
    let o = s.org(ORG).unwrap();
    integrity(o.stat(t.files[4]), "stat of the moved node");
    assert!(o.list(t.root).unwrap().iter().all(|e| e.name != "請求書 4.txt"), "the moved row is listed");
    others_intact(&o, &t, &[4]);
}

#[test]
fn stream_pointer_swap_and_size_change_fail_closed() {
    let (_tmp, s, t) = tampered(|c, t| {
        let victim = content_of(c, t.files[1]);
        c.execute("UPDATE streams SET content=?1 WHERE node=?2", params![victim, t.files[5].0 as i64]).unwrap();
        let grown = content_of(c, t.files[3]);
        c.execute("UPDATE contents SET size=size+4096 WHERE id=?1", [grown]).unwrap();
    });
    let o = s.org(ORG).unwrap();
    integrity(read_all(&o, t.files[5], Some("Zone.Identifier")), "stream read through the swapped pointer");
    integrity(o.list_streams(t.files[5]), "stream list with the swapped row");
    integrity(read_all(&o, t.files[3], None), "content with a changed size");
    assert_eq!(read_all(&o, t.files[5], None).unwrap(), data(5), "the main data of file 5 is untouched");
    others_intact(&o, &t, &[3, 5]);
}

#[test]
fn a_format_1_database_gets_its_macs_on_open() {
    let (tmp, s, t) = tampered(|c, _| {
        for (table, col) in [("nodes", "mac"), ("nodes", "meta_mac"), ("streams", "mac"), ("contents", "mac")] {
            c.execute_batch(&format!("ALTER TABLE {table} DROP COLUMN {col}")).unwrap();
        }
        c.execute("UPDATE meta SET v=1 WHERE k='format'", []).unwrap();
    });
    let o = s.org(ORG).unwrap();
    others_intact(&o, &t, &[]);
    drop(o);
    s.close().unwrap();
    let c = Connection::open(meta_db(tmp.path())).unwrap();
    let v: i64 = c.query_row("SELECT v FROM meta WHERE k='format'", [], |r| r.get(0)).unwrap();
    assert_eq!(v, 2);
    let missing: i64 =
        c.query_row("SELECT COUNT(*) FROM nodes WHERE mac IS NULL OR meta_mac IS NULL", [], |r| r.get(0)).unwrap();
    assert_eq!(missing, 0);
}
