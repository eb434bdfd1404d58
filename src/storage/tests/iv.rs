//! Nonce uniqueness: rewriting one chunk many times never repeats an IV.

use std::collections::HashSet;
use std::path::Path;

use super::*;
use crate::storage::debug::{OVERHEAD, SEG_HEADER_LEN, record_iv, record_plen};

/// Every record IV in every segment file under `seg_dir`.
pub(crate) fn scan_ivs(seg_dir: &Path) -> Vec<Vec<u8>> {
    let mut ivs = Vec::new();
    for e in std::fs::read_dir(seg_dir).unwrap() {
        let bytes = std::fs::read(e.unwrap().path()).unwrap();
        let mut pos = SEG_HEADER_LEN as usize;
        while pos + OVERHEAD <= bytes.len() {
            let plen = record_plen(&bytes[pos..]).expect("record header") as usize;
            ivs.push(record_iv(&bytes[pos..]).unwrap());
            pos += plen + OVERHEAD;
        }
        assert_eq!(pos, bytes.len(), "segment ends inside a record");
    }
    ivs
}

fn rewrite_one_chunk(n: usize) {
    let d = tempfile::tempdir().unwrap();
    // Without the write-back tail every write seals a record at once.
    let s = Store::open(d.path(), &master(), StoreOptions { tail_cache: false, ..quiet() }).unwrap();
    s.create_org(OrgId(1)).unwrap();
    let o = s.org(OrgId(1)).unwrap();
    let root = o.create_root(FileTime(1)).unwrap();
    let c = o.open_content(file(&o, root, "f"), None, false).unwrap();
    let mut data = [0u8; 16];
    for i in 0..n {
        data[..8].copy_from_slice(&(i as u64).to_le_bytes());
        c.write(0, &data).unwrap();
        if i % 4096 == 0 {
            c.flush().unwrap();
        }
    }
    // Also a read-modify-write rewrite and a truncation rewrite.
    c.write(3, b"rmw").unwrap();
    c.set_len(10).unwrap();
    c.flush().unwrap();
    drop((c, o, s));
    let ivs = scan_ivs(&d.path().join("orgs").join(format!("{:016x}", 1)).join("seg"));
    assert_eq!(ivs.len(), n + 2);
    let unique: HashSet<_> = ivs.iter().collect();
    assert_eq!(unique.len(), ivs.len(), "an IV repeated");
}

#[test]
fn no_iv_repeats_in_100k_rewrites() {
    rewrite_one_chunk(100_000);
}

/// Run in release: `cargo test --release --lib iv::no_iv_repeats_in_a_million -- --ignored`.
#[test]
#[ignore]
fn no_iv_repeats_in_a_million_rewrites() {
    rewrite_one_chunk(1_000_000);
}
