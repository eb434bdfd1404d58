//! Tampering with a log the real server wrote: `smbvault logs verify`
//! must fail, saying what and where.

use std::path::PathBuf;
use std::time::Duration;

use super::*;

/// The newest segment of the DEFAULT organization's log (org 1).
fn default_segment(s: &TestServer) -> PathBuf {
    let dir = s.data_dir().join("audit").join("org-1");
    let mut segs: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "seg"))
        .collect();
    segs.sort();
    segs.pop().expect("a segment")
}

/// Segment layout (docs/audit-format.md): a 93-byte anchor, then blocks
/// whose header carries total_len at 4..8, count at 16..20 and clear_len at
/// 68..72 (header 92 bytes); the clear section is count × (len u16 | clear |
/// hash [32]); the trailer ends with total_len u32 | "ABKE".
const ANCHOR: usize = 93;
const HDR: usize = 92;

fn u32_at(b: &[u8], at: usize) -> usize {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap()) as usize
}

fn put_u32(b: &mut [u8], at: usize, v: usize) {
    b[at..at + 4].copy_from_slice(&(v as u32).to_le_bytes());
}

/// (offset, length) of each block.
fn blocks(seg: &[u8]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut at = ANCHOR;
    while at + HDR <= seg.len() {
        assert_eq!(&seg[at..at + 4], b"ABK1", "block magic at {at}");
        let len = u32_at(seg, at + 4);
        out.push((at, len));
        at += len;
    }
    out
}

/// (offset in block, length) of each record's clear entry.
fn records(block: &[u8]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut at = HDR;
    for _ in 0..u32_at(block, 16) {
        let len = 2 + u16::from_le_bytes([block[at], block[at + 1]]) as usize + 32;
        out.push((at, len));
        at += len;
    }
    out
}

/// Applies `edit` to the segment, expects `logs verify` to fail naming
/// `words`, then restores the file and expects it to pass again.
fn expect_caught(s: &TestServer, what: &str, words: &str, edit: impl FnOnce(&mut Vec<u8>)) {
    let p = default_segment(s);
    let orig = std::fs::read(&p).unwrap();
    let mut data = orig.clone();
    edit(&mut data);
    assert_ne!(data, orig, "{what}: nothing changed");
    std::fs::write(&p, &data).unwrap();
    let (ok, out) = verify(s);
    assert!(!ok, "{what}: verify passed:\n{out}");
    assert!(out.contains("PROBLEM") && out.contains(words), "{what}: expected {words:?}:\n{out}");
    std::fs::write(&p, &orig).unwrap();
    let (ok, out) = verify(s);
    assert!(ok, "{what}: restored log fails:\n{out}");
}

/// Edits, deletions, reordering and truncation of a log the real server
/// wrote are all reported by `smbvault logs verify` with a non-zero exit.
#[test]
fn tampering_with_a_server_written_log_is_caught() {
    let s = TestServer::start();
    s.add_user("DEFAULT\\alice", PASS);
    let src = s.dir.path().join("f.txt");
    std::fs::write(&src, b"hello").unwrap();
    for i in 0..4 {
        let cmds = format!("put {} f{i}.txt; rename f{i}.txt g{i}.txt; mkdir d{i}", src.display());
        let o = s.smbclient("share", "DEFAULT\\alice", PASS, &[], &cmds);
        assert!(o.status.success(), "{}", text(&o));
        // Past the flush interval, so that each session is its own block.
        std::thread::sleep(Duration::from_millis(500));
    }
    let mut s = s;
    s.stop();
    let (ok, out) = verify(&s);
    assert!(ok && out.contains("OK"), "{out}");
    let seg = std::fs::read(default_segment(&s)).unwrap();
    let bl = blocks(&seg);
    assert!(bl.len() >= 4, "{} blocks", bl.len());
    // A block of several records, one with names, and the block after it
    // (records are written per engine pass, before its responses: a block
    // holds what one pass, e.g. a compound, recorded).
    let kind = |d: &[u8], b: usize, o: usize| d[b + o + 2 + 8];
    let i = (1..bl.len() - 1)
        .find(|&i| {
            let (b, l) = bl[i];
            let recs = records(&seg[b..b + l]);
            recs.len() >= 2
                && recs.iter().any(|&(o, _)| !(1..=6).contains(&kind(&seg, b, o)))
                && seg[b..b + l].windows(5).any(|w| w == b"alice")
        })
        .expect("a block of several records, one with names");
    let (b1, l1) = bl[i];
    let (b2, l2) = bl[i + 1];

    expect_caught(&s, "edited user name", "does not match its chain hash", |d| {
        let blk = &d[b1..b1 + l1];
        let at = b1 + blk.windows(5).position(|w| w == b"alice").expect("user name in clear");
        d[at] = b'A';
    });
    expect_caught(&s, "edited encrypted name", "does not match its chain hash", |d| {
        // Kinds 1..=6 (logon … disconnect) have no names: each is an empty
        // `len u32` in the names section, so the first record with names
        // starts at 4 × its index; +4 skips its length, +1 its first varint.
        let recs = records(&d[b1..b1 + l1]);
        let k = recs.iter().position(|&(o, _)| !(1..=6).contains(&d[b1 + o + 2 + 8])).expect("a named record");
        let names = b1 + HDR + u32_at(d, b1 + 68);
        d[names + 4 * k + 4 + 1] ^= 1;
    });
    expect_caught(&s, "deleted record", "malformed records", |d| {
        let block = d[b1..b1 + l1].to_vec();
        let (roff, rlen) = records(&block)[1];
        let mut nb = block[..roff].to_vec();
        nb.extend_from_slice(&block[roff + rlen..]);
        let total = nb.len();
        put_u32(&mut nb, 4, total);
        put_u32(&mut nb, 16, u32_at(&block, 16) - 1);
        put_u32(&mut nb, 68, u32_at(&block, 68) - rlen);
        put_u32(&mut nb, total - 8, total);
        d.splice(b1..b1 + l1, nb);
    });
    expect_caught(&s, "swapped records", "does not match its chain hash", |d| {
        let recs = records(&d[b1..b1 + l1]);
        let ((a, al), (b, bll)) = (recs[0], recs[1]);
        let (ra, rb) = (d[b1 + a..b1 + a + al].to_vec(), d[b1 + b..b1 + b + bll].to_vec());
        let mut mid = rb;
        mid.extend_from_slice(&ra);
        d.splice(b1 + a..b1 + b + bll, mid);
    });
    expect_caught(&s, "deleted block", "are missing", |d| {
        d.drain(b1..b1 + l1);
    });
    expect_caught(&s, "swapped blocks", "out of order", |d| {
        let (x, y) = (d[b1..b1 + l1].to_vec(), d[b2..b2 + l2].to_vec());
        let mut mid = y;
        mid.extend_from_slice(&x);
        d.splice(b1..b2 + l2, mid);
    });
    expect_caught(&s, "truncated tail", "log truncated", |d| {
        let (last, _) = *bl.last().unwrap();
        d.truncate(last);
    });
}
