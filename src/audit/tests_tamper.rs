//! Tampering and crash tests: every edit, deletion, reordering or
//! truncation is reported with its place; a crash-torn tail is not.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::segment::{HDR_LEN, SegReader, TRL_LEN, parse_block};
use super::tests::{Fixture, ORG, open_ev, t};
use super::*;

/// 3 months (2026-09..11), 4 blocks of 5 records each per month.
fn build() -> Fixture {
    let f = Fixture::new();
    let log = f.open();
    for m in ["2026-09-10", "2026-10-10", "2026-11-10"] {
        for b in 0..4u64 {
            for r in 0..5u64 {
                log.record(open_ev(t(m) + Duration::from_secs(b * 60 + r), &format!("{m}/b{b}r{r}")));
            }
            log.flush().unwrap();
        }
    }
    log.shutdown().unwrap();
    assert!(verify(&f).ok());
    f
}

fn verify(f: &Fixture) -> VerifyReport {
    let log = f.open();
    let r = log.verify(Some(LogId::Org(ORG))).unwrap();
    log.shutdown().unwrap();
    r
}

fn seg(f: &Fixture, m: &str) -> PathBuf {
    f.org_dir().join(format!("{m}.seg"))
}

/// (offset, length) of every block of a segment.
fn blocks(p: &Path) -> Vec<(usize, usize)> {
    let (mut r, _) = SegReader::open(p).unwrap();
    let mut out = Vec::new();
    while let Some(Ok((off, b))) = r.next_block().unwrap() {
        out.push((off as usize, b.len()));
    }
    out
}

/// (offset in block, length) of each clear record (its u16 length first).
fn records(block: &[u8]) -> Vec<(usize, usize)> {
    let b = parse_block(block).unwrap();
    let mut out = Vec::new();
    let mut pos = HDR_LEN;
    for r in b.records().unwrap() {
        let len = 2 + r.clear.len() + 32;
        out.push((pos, len));
        pos += len;
    }
    out
}

fn expect_problem(f: &Fixture, seg: &str, seq: Option<u64>, words: &str) {
    let rep = verify(f);
    assert!(!rep.ok(), "tampering not detected");
    let p = &rep.logs[0].problems;
    let hit = p.iter().any(|p| {
        p.segment.map(|m| m.to_string()).as_deref() == Some(seg)
            && (seq.is_none() || p.seq == seq)
            && p.message.contains(words)
    });
    assert!(hit, "expected {seg} #{seq:?} '{words}', got {:#?}", p);
}

#[test]
fn flipped_byte_in_a_record_is_found() {
    let f = build();
    let p = seg(&f, "2026-10");
    let mut data = fs::read(&p).unwrap();
    let (off, len) = blocks(&p)[1];
    let (roff, _) = records(&data[off..off + len])[2];
    data[off + roff + 2 + 20] ^= 0x01; // inside record #28's clear part (client address)
    fs::write(&p, data).unwrap();
    expect_problem(&f, "2026-10", Some(28), "does not match its chain hash");
}

#[test]
fn edited_user_field_is_found() {
    let f = build();
    let p = seg(&f, "2026-11");
    let mut data = fs::read(&p).unwrap();
    let at = data.windows(5).position(|w| w == b"alice").unwrap();
    data[at..at + 5].copy_from_slice(b"mallo");
    fs::write(&p, data).unwrap();
    expect_problem(&f, "2026-11", Some(41), "does not match its chain hash");
}

#[test]
fn edited_encrypted_name_is_found() {
    let f = build();
    let p = seg(&f, "2026-09");
    let mut data = fs::read(&p).unwrap();
    let (off, len) = blocks(&p)[0];
    data[off + len - TRL_LEN - 3] ^= 0x80; // last record's names ciphertext
    fs::write(&p, data).unwrap();
    expect_problem(&f, "2026-09", Some(5), "does not match its chain hash");
}

/// Removes record `idx` of block `blk` and rewrites the block's lengths so
/// that it still parses (the attacker has no key to fix the hashes).
fn delete_record(f: &Fixture, m: &str, blk: usize, idx: usize) {
    let p = seg(f, m);
    let data = fs::read(&p).unwrap();
    let (off, len) = blocks(&p)[blk];
    let block = &data[off..off + len];
    let (roff, rlen) = records(block)[idx];
    let mut nb = block[..roff].to_vec();
    nb.extend_from_slice(&block[roff + rlen..]);
    let total = nb.len() as u32;
    let count = u32::from_le_bytes(nb[16..20].try_into().unwrap()) - 1;
    nb[4..8].copy_from_slice(&total.to_le_bytes());
    nb[16..20].copy_from_slice(&count.to_le_bytes());
    let cl_at = HDR_LEN - 4 - 16 - 4;
    let cl = u32::from_le_bytes(nb[cl_at..cl_at + 4].try_into().unwrap()) - rlen as u32;
    nb[cl_at..cl_at + 4].copy_from_slice(&cl.to_le_bytes());
    let n = nb.len();
    nb[n - 8..n - 4].copy_from_slice(&total.to_le_bytes());
    let mut out = data[..off].to_vec();
    out.extend_from_slice(&nb);
    out.extend_from_slice(&data[off + len..]);
    fs::write(&p, out).unwrap();
}

#[test]
fn deleted_record_is_found() {
    let f = build();
    delete_record(&f, "2026-10", 2, 1);
    // Block 2 of October starts at record #31.
    expect_problem(&f, "2026-10", Some(31), "block with malformed records starting at record #31");
}

#[test]
fn swapped_records_are_found() {
    let f = build();
    let p = seg(&f, "2026-11");
    let mut data = fs::read(&p).unwrap();
    let (off, len) = blocks(&p)[3];
    let recs = records(&data[off..off + len]);
    let ((a, al), (b, bl)) = (recs[1], recs[2]);
    let (ra, rb) = (data[off + a..off + a + al].to_vec(), data[off + b..off + b + bl].to_vec());
    let mut mid = rb.clone();
    mid.extend_from_slice(&ra);
    data.splice(off + a..off + b + bl, mid);
    fs::write(&p, data).unwrap();
    expect_problem(&f, "2026-11", Some(57), "does not match its chain hash");
    expect_problem(&f, "2026-11", Some(58), "does not match its chain hash");
}

#[test]
fn deleted_block_is_found() {
    let f = build();
    let p = seg(&f, "2026-09");
    let mut data = fs::read(&p).unwrap();
    let (off, len) = blocks(&p)[1];
    data.drain(off..off + len);
    fs::write(&p, data).unwrap();
    expect_problem(&f, "2026-09", Some(6), "records #6..#10 are missing");
}

#[test]
fn swapped_blocks_are_found() {
    let f = build();
    let p = seg(&f, "2026-09");
    let data = fs::read(&p).unwrap();
    let bl = blocks(&p);
    let ((a, al), (b, bll)) = (bl[1], bl[2]);
    let mut out = data[..a].to_vec();
    out.extend_from_slice(&data[b..b + bll]);
    out.extend_from_slice(&data[a..a + al]);
    out.extend_from_slice(&data[b + bll..]);
    fs::write(&p, out).unwrap();
    expect_problem(&f, "2026-09", Some(6), "records #6..#10 are missing");
    expect_problem(&f, "2026-09", Some(6), "out of order");
}

#[test]
fn truncated_tail_of_newest_segment_is_found() {
    let f = build();
    let p = seg(&f, "2026-11");
    let (off, _) = blocks(&p)[3];
    fs::OpenOptions::new().write(true).open(&p).unwrap().set_len(off as u64).unwrap();
    expect_problem(&f, "2026-11", Some(60), "log truncated");
}

#[test]
fn truncated_tail_inside_a_block_is_found() {
    let f = build();
    let p = seg(&f, "2026-11");
    let (off, len) = blocks(&p)[2];
    fs::OpenOptions::new().write(true).open(&p).unwrap().set_len((off + len / 2) as u64).unwrap();
    let rep = verify(&f);
    assert!(!rep.ok());
    assert!(
        rep.logs[0].problems.iter().any(|p| p.message.contains("truncated block starting at record #51")),
        "{rep:?}"
    );
}

#[test]
fn truncated_older_segment_is_found() {
    let f = build();
    let p = seg(&f, "2026-09");
    let (off, _) = blocks(&p)[3];
    fs::OpenOptions::new().write(true).open(&p).unwrap().set_len(off as u64).unwrap();
    expect_problem(&f, "2026-10", None, "does not continue segment 2026-09");
}

#[test]
fn deleted_middle_segment_is_found() {
    let f = build();
    fs::remove_file(seg(&f, "2026-10")).unwrap();
    expect_problem(
        &f,
        "2026-11",
        None,
        "does not continue segment 2026-09: expected first record #21, anchor says #41",
    );
}

#[test]
fn deleted_newest_segment_is_found() {
    let f = build();
    fs::remove_file(seg(&f, "2026-11")).unwrap();
    expect_problem(&f, "2026-11", Some(60), "log truncated");
}

#[test]
fn deleted_oldest_segment_is_found() {
    let f = build();
    fs::remove_file(seg(&f, "2026-09")).unwrap();
    expect_problem(&f, "2026-10", None, "does not continue the start of the log");
}

#[test]
fn forged_head_and_checkpoint_are_found() {
    let f = build();
    let h = f.org_dir().join("head");
    let mut data = fs::read(&h).unwrap();
    for b in data.iter_mut() {
        *b ^= 1;
    }
    fs::write(&h, data).unwrap();
    let rep = verify(&f);
    assert!(rep.logs[0].problems.iter().any(|p| p.message.contains("head file fails")), "{rep:?}");
    fs::remove_file(&h).unwrap();
    let rep = verify(&f);
    assert!(rep.logs[0].problems.iter().any(|p| p.message.contains("head file missing")), "{rep:?}");
}

#[test]
fn removed_checkpoint_is_found() {
    let f = build();
    let log = f.open();
    log.purge(t("2026-11-20"), &|_| crate::config::Retention::M1, true).unwrap();
    log.shutdown().unwrap();
    assert!(verify(&f).ok());
    fs::remove_file(f.org_dir().join("checkpoint")).unwrap();
    expect_problem(&f, "2026-10", None, "does not continue the start of the log");
}

#[test]
fn torn_tail_is_tolerated_and_repaired() {
    let f = build();
    let p = seg(&f, "2026-11");
    let data = fs::read(&p).unwrap();
    let (off, len) = blocks(&p)[3];
    // A crash in the middle of writing a fifth block: half of a copy of
    // block 3 lands after the head's durable end.
    let mut torn = data.clone();
    torn.extend_from_slice(&data[off..off + len / 2]);
    fs::write(&p, &torn).unwrap();
    let rep = verify(&f);
    assert!(rep.ok(), "{rep:?}");
    assert!(rep.logs[0].notes.iter().any(|n| n.contains("torn tail")), "{rep:?}");
    // Also a complete but garbage block (zeros: unwritten pages after a crash).
    let mut zeros = data.clone();
    zeros.extend_from_slice(&vec![0u8; 4096]);
    fs::write(&p, &zeros).unwrap();
    assert!(verify(&f).ok());
    // Reopening and writing repairs the tail and continues the chain.
    let log = f.open();
    log.record(open_ev(t("2026-11-20"), "after crash"));
    log.shutdown().unwrap();
    let rep = verify(&f);
    assert!(rep.ok() && rep.logs[0].notes.is_empty(), "{rep:?}");
    assert_eq!(rep.logs[0].records, 61);
}

#[test]
fn damage_before_the_head_is_not_a_torn_tail() {
    let f = build();
    let p = seg(&f, "2026-11");
    let mut data = fs::read(&p).unwrap();
    let (off, _) = blocks(&p)[3];
    data[off] ^= 0xff; // magic of the last durable block
    fs::write(&p, &data).unwrap();
    expect_problem(&f, "2026-11", Some(56), "records were cut, inserted or overwritten");
    // The writer appends after the head without rewriting the damaged
    // block: the evidence stays where it is and verification still fails.
    let log = f.open();
    log.record(open_ev(t("2026-11-20"), "x"));
    log.shutdown().unwrap();
    expect_problem(&f, "2026-11", Some(56), "records were cut, inserted or overwritten");
}
