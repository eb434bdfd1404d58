//! Tampering with the files at rest fails closed with `Integrity`: bit
//! flips anywhere in a record, records swapped within a file, between files
//! and between organizations, an old record replayed, a truncated segment,
//! a zeroed record, and index/key/name rows edited in meta.db; each in
//! both record versions.

use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::*;
use crate::storage::RecordVersion;
use crate::storage::{Content, StorageError};

const FULL: usize = 65536;

struct Rec {
    path: PathBuf,
    off: u64,
    len: usize,
}

fn rec(c: &Content, idx: u64) -> Rec {
    let (path, off, plen, _) = c.debug_location(idx).unwrap().unwrap();
    Rec { path, off, len: plen as usize + crate::storage::debug::OVERHEAD }
}

fn get(r: &Rec) -> Vec<u8> {
    let mut b = vec![0; r.len];
    std::fs::File::open(&r.path).unwrap().read_exact_at(&mut b, r.off).unwrap();
    b
}

fn put(r: &Rec, bytes: &[u8]) {
    std::fs::OpenOptions::new().write(true).open(&r.path).unwrap().write_all_at(bytes, r.off).unwrap();
}

/// Chunk `idx` read both ways (`read` and `read_append`), which must agree.
fn read_chunk(c: &Content, idx: u64) -> Result<Vec<u8>, StorageError> {
    let mut b = vec![0; FULL];
    let got = c.read(idx * FULL as u64, &mut b).map(|n| b[..n].to_vec());
    assert_eq!(read_append_both(c, idx * FULL as u64, FULL), got);
    got
}

/// An org store with file "a" of three full chunks and file "b" of one.
fn fixture(dir: &Path) -> (Arc<Store>, Arc<OrgStore>, Arc<Content>, Arc<Content>) {
    let (s, o, root) = setup(dir);
    let a = o.open_content(file(&o, root, "a"), None, false).unwrap();
    let b = o.open_content(file(&o, root, "b"), None, false).unwrap();
    a.write(0, &pattern(1, 3 * FULL)).unwrap();
    b.write(0, &pattern(2, FULL)).unwrap();
    a.flush().unwrap();
    (s, o, a, b)
}

#[test]
fn any_flipped_bit_fails() {
    in_both_versions(|| {
        let d = tempfile::tempdir().unwrap();
        let (_s, _o, a, _b) = fixture(d.path());
        let r = rec(&a, 1);
        let orig = get(&r);
        // Magic, version, plen, reserved, index, seq, IV, ciphertext, tag.
        let spots =
            [0, 4, 5, 6, 9, 12, 17, 25, 32, 40, 47, 48, 56, 63, 64, 1000, 48 + FULL - 1, 48 + FULL, orig.len() - 1];
        for &at in &spots {
            for bit in [0, 7] {
                let mut t = orig.clone();
                t[at] ^= 1 << bit;
                put(&r, &t);
                assert_eq!(read_chunk(&a, 1), Err(StorageError::Integrity), "byte {at} bit {bit}");
                // Its neighbours authenticate; the READ still fails whole.
                assert_eq!(read_append_both(&a, 0, 3 * FULL), Err(StorageError::Integrity), "byte {at} bit {bit}");
            }
        }
        put(&r, &orig);
        assert_eq!(read_chunk(&a, 1).unwrap(), pattern(1, 3 * FULL)[FULL..2 * FULL]);
        // A partial read of the chunk also verifies the whole record first.
        let mut t = orig.clone();
        t[orig.len() - 40] ^= 1;
        put(&r, &t);
        let mut small = [0u8; 10];
        assert_eq!(a.read(FULL as u64, &mut small), Err(StorageError::Integrity));
        assert_eq!(read_append_both(&a, FULL as u64 + 7, 10), Err(StorageError::Integrity));
        // So does a write that has to read-modify-write the chunk.
        assert_eq!(a.write(FULL as u64 + 5, b"x"), Err(StorageError::Integrity));
    });
}

#[test]
fn swapped_records_fail_within_between_files_and_orgs() {
    in_both_versions(|| {
        let d = tempfile::tempdir().unwrap();
        let (s, _o, a, b) = fixture(d.path());
        let (r0, r1, rb) = (rec(&a, 0), rec(&a, 1), rec(&b, 0));
        let (v0, v1, vb) = (get(&r0), get(&r1), get(&rb));
        // Within the file: chunk 0 <-> chunk 1.
        put(&r0, &v1);
        put(&r1, &v0);
        assert_eq!(read_chunk(&a, 0), Err(StorageError::Integrity));
        assert_eq!(read_chunk(&a, 1), Err(StorageError::Integrity));
        put(&r0, &v0);
        put(&r1, &v1);
        // Between files: b's only chunk in place of a's chunk 0.
        put(&r0, &vb);
        assert_eq!(read_chunk(&a, 0), Err(StorageError::Integrity));
        put(&r0, &v0);
        // Between organizations.
        s.create_org(OrgId(2)).unwrap();
        let o2 = s.org(OrgId(2)).unwrap();
        let root2 = o2.create_root(FileTime(1)).unwrap();
        let x = o2.open_content(file(&o2, root2, "a"), None, false).unwrap();
        x.write(0, &pattern(1, FULL)).unwrap();
        x.flush().unwrap();
        put(&r0, &get(&rec(&x, 0)));
        assert_eq!(read_chunk(&a, 0), Err(StorageError::Integrity));
        put(&r0, &v0);
        assert_eq!(read_chunk(&a, 0).unwrap(), pattern(1, FULL));
    });
}

#[test]
fn replayed_old_record_fails() {
    in_both_versions(|| {
        let d = tempfile::tempdir().unwrap();
        let (_s, _o, a, _b) = fixture(d.path());
        let old = get(&rec(&a, 2));
        a.write(2 * FULL as u64, &pattern(7, FULL)).unwrap();
        a.flush().unwrap();
        let now = rec(&a, 2);
        put(&now, &old);
        assert_eq!(read_chunk(&a, 2), Err(StorageError::Integrity));
    });
}

#[test]
fn zeroed_record_and_truncated_segment_fail() {
    in_both_versions(|| {
        let d = tempfile::tempdir().unwrap();
        let (_s, _o, a, b) = fixture(d.path());
        let r = rec(&a, 0);
        let orig = get(&r);
        put(&r, &vec![0; r.len]);
        assert_eq!(read_chunk(&a, 0), Err(StorageError::Integrity));
        put(&r, &orig);
        // b's chunk is the last record of the segment: cut the file inside it.
        let rb = rec(&b, 0);
        let f = std::fs::OpenOptions::new().write(true).open(&rb.path).unwrap();
        f.set_len(rb.off + rb.len as u64 - 1).unwrap();
        assert_eq!(read_chunk(&b, 0), Err(StorageError::Integrity));
        f.set_len(rb.off).unwrap();
        assert_eq!(read_chunk(&b, 0), Err(StorageError::Integrity));
        assert_eq!(read_chunk(&a, 0).unwrap(), pattern(1, FULL));
    });
}

/// Edits meta.db while the store is closed, then reopens.
fn edit_db(dir: &Path, sql: &str) -> Arc<OrgStore> {
    let db = dir.join("orgs").join(format!("{:016x}", 1)).join("meta.db");
    rusqlite::Connection::open(db).unwrap().execute_batch(sql).unwrap();
    open(dir).org(OrgId(1)).unwrap()
}

#[test]
fn edited_index_key_and_name_rows_fail() {
    in_both_versions(|| {
        let d = tempfile::tempdir().unwrap();
        let (s, o, a, b) = fixture(d.path());
        let (ida, idb) = (a.debug_id(), b.debug_id());
        let root = o.stat(o.lookup(NodeId(1), "a").unwrap().unwrap()).unwrap().parent.unwrap();
        let (na, nb) = (o.lookup(root, "a").unwrap().unwrap(), o.lookup(root, "b").unwrap().unwrap());
        drop((a, b, o));
        s.close().unwrap();
        drop(s);
        // Point a's chunk 0 at b's record, with b's sequence number.
        let o = edit_db(
            d.path(),
            &format!(
                "UPDATE chunks SET (seg, off, plen, seq) = (SELECT seg, off, plen, seq FROM chunks \
                 WHERE content={idb} AND idx=0) WHERE content={ida} AND idx=0;"
            ),
        );
        let a = o.open_content(na, None, false).unwrap();
        assert_eq!(read_chunk(&a, 0), Err(StorageError::Integrity));
        assert_eq!(read_chunk(&a, 1).unwrap(), pattern(1, 3 * FULL)[FULL..2 * FULL]);
        drop((a, o));
        // Give a the wrapped file key of b: the wrap is bound to the content id.
        let o = edit_db(
            d.path(),
            &format!(
                "UPDATE contents SET wrapped_key=(SELECT wrapped_key FROM contents WHERE id={idb}) WHERE id={ida};"
            ),
        );
        assert_eq!(o.open_content(na, None, false).err(), Some(StorageError::Integrity));
        drop(o);
        // Swap the sealed names of a and b: bound to node id and lookup key.
        let o = edit_db(
            d.path(),
            &format!(
                "UPDATE nodes SET name_ct=(SELECT name_ct FROM nodes WHERE id={nb}) WHERE id={na};",
                na = na.0,
                nb = nb.0
            ),
        );
        assert_eq!(o.stat(na).err(), Some(StorageError::Integrity));
        // The listing leaves the bad entry out and keeps the good one.
        let listed = o.list(root).unwrap();
        assert!(listed.iter().all(|e| e.meta.id != na), "{listed:?}");
        assert!(listed.iter().any(|e| e.meta.id == nb && e.name == "b"), "{listed:?}");
    });
}

/// A store written in record version 1, migrated by the new code: good
/// records become version 2 and read the same; a damaged one stays where it
/// is and still fails closed; a migrated record fails closed when damaged.
#[test]
fn migration_rewrites_good_records_and_keeps_damaged_ones_failing() {
    let d = tempfile::tempdir().unwrap();
    WRITE_VERSION.set(RecordVersion::CtrHmac);
    let (s, o, a, b) = fixture(d.path());
    WRITE_VERSION.set(RecordVersion::Gcm);
    let r1 = rec(&a, 1);
    let mut bad = get(&r1);
    assert_eq!(crate::storage::debug::record_version(&bad), Some(1));
    bad[500] ^= 0x10;
    put(&r1, &bad);
    let root = o.stat(o.lookup(NodeId(1), "a").unwrap().unwrap()).unwrap().parent.unwrap();
    let (la, lb) = (o.lookup(root, "a").unwrap().unwrap(), o.lookup(root, "b").unwrap().unwrap());
    drop((a, b, o));
    s.close().unwrap();
    drop(s);
    // The new code opens it and migrates.
    let s = open(d.path());
    let o = s.org(OrgId(1)).unwrap();
    assert_eq!(o.v1_records().unwrap(), 4);
    let rep = o.migrate().unwrap();
    assert_eq!((rep.rewritten, rep.unreadable), (3, 1), "{rep:?}");
    assert_eq!(o.v1_records().unwrap(), 1, "the damaged record stays");
    let a = o.open_content(la, None, false).unwrap();
    let b = o.open_content(lb, None, false).unwrap();
    let want = pattern(1, 3 * FULL);
    assert_eq!(read_chunk(&a, 0).unwrap(), want[..FULL]);
    assert_eq!(read_chunk(&a, 1), Err(StorageError::Integrity));
    assert_eq!(read_chunk(&a, 2).unwrap(), want[2 * FULL..]);
    assert_eq!(read_chunk(&b, 0).unwrap(), pattern(2, FULL));
    let r0 = rec(&a, 0);
    let mut v2 = get(&r0);
    assert_eq!(crate::storage::debug::record_version(&v2), Some(2));
    v2[64 + 7] ^= 1;
    put(&r0, &v2);
    assert_eq!(read_chunk(&a, 0), Err(StorageError::Integrity));
    // Migrating again finds nothing it can rewrite.
    let rep = o.migrate().unwrap();
    assert_eq!((rep.rewritten, rep.unreadable), (0, 1), "{rep:?}");
}
