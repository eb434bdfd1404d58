//! Verification: walks every segment of a log and checks the whole chain:
//! anchors continue the previous segment (or the purge checkpoint), blocks
//! continue the sequence numbers and hashes, every record's keyed hash
//! matches its content, and the head's durable end is still there.
//!
//! Torn-tail rule: damage is tolerated (reported as a note, not a problem)
//! only at the end of the newest segment and only after the head's durable
//! end, because that is the only place a crash can leave a partial write
//! (the head is rewritten after each fsync; a new month's segment is only
//! started after the previous one was synced). Everything before the head
//! must verify.

use std::path::Path;

use super::AuditError;
use super::jst::Month;
use super::keys::{LogId, LogKeys, mac_eq};
use super::record;
use super::segment::{
    ANCHOR_LEN, Hash, ReadErr, SegReader, ZERO_HASH, anchor_matches, check_block, list_segments, parse_block, seg_name,
};
use super::signed::{self, Head, HeadState};
use super::store::Store;

/// Result of verifying some logs.
#[derive(Debug, Clone, Default)]
pub struct VerifyReport {
    /// One entry per log.
    pub logs: Vec<LogReport>,
}

impl VerifyReport {
    /// True when no log has a problem.
    pub fn ok(&self) -> bool {
        self.logs.iter().all(|l| l.problems.is_empty())
    }
}

/// Result of verifying one log.
#[derive(Debug, Clone)]
pub struct LogReport {
    /// Which log.
    pub log: LogId,
    /// Segments checked.
    pub segments: usize,
    /// Records checked.
    pub records: u64,
    /// Evidence of tampering or damage, each saying where.
    pub problems: Vec<Problem>,
    /// Benign findings (a crash-torn tail, leftovers of an interrupted purge).
    pub notes: Vec<String>,
    /// Sequence number of the last record the walk reached (0: none).
    pub end_seq: u64,
    /// Chain hash after that record.
    pub end_hash: [u8; 32],
    /// Records up to this one were purged under retention (0: none).
    pub purged_seq: u64,
    /// The chain hash after record `probe` when the walk passed a block (or
    /// checkpoint) ending there ([`crate::audit::AuditLog::verify_at`]).
    pub probe_hash: Option<[u8; 32]>,
}

/// One place where the log does not verify.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Segment (JST month), if the problem is in one.
    pub segment: Option<Month>,
    /// Byte offset in the segment.
    pub offset: Option<u64>,
    /// Record sequence number.
    pub seq: Option<u64>,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(m) = self.segment {
            write!(f, "segment {m}: ")?;
        }
        if let Some(s) = self.seq {
            write!(f, "record #{s}: ")?;
        }
        if let Some(o) = self.offset {
            write!(f, "(offset {o}) ")?;
        }
        f.write_str(&self.message)
    }
}

/// The walk's position in the chain.
struct Walk<'a> {
    keys: &'a LogKeys,
    rep: LogReport,
    head: Option<Head>,
    head_seen: bool,
    purged_seq: u64,
    next_seq: u64,
    prev: Hash,
    probe: Option<u64>,
}

impl Store {
    /// Verifies one log, or every log when `only` is `None`.
    pub(crate) fn verify(&self, only: Option<LogId>) -> Result<VerifyReport, AuditError> {
        let logs = match only {
            Some(l) => vec![l],
            None => self.logs()?,
        };
        let mut out = VerifyReport::default();
        for log in logs {
            out.logs.push(self.verify_log(log)?);
        }
        Ok(out)
    }

    fn verify_log(&self, log: LogId) -> Result<LogReport, AuditError> {
        self.verify_log_at(log, None)
    }

    /// [`Store::verify`] of one log, also noting the chain hash after
    /// record `probe` (audit anchors).
    pub(crate) fn verify_log_at(&self, log: LogId, probe: Option<u64>) -> Result<LogReport, AuditError> {
        let rep = LogReport {
            log,
            segments: 0,
            records: 0,
            problems: Vec::new(),
            notes: Vec::new(),
            end_seq: 0,
            end_hash: ZERO_HASH,
            purged_seq: 0,
            probe_hash: None,
        };
        let keys = match self.keys(log) {
            Ok(k) => k,
            Err(e) => {
                let mut rep = rep;
                rep.notes.push(format!("not verified: {e}"));
                return Ok(rep);
            }
        };
        let dir = self.log_dir(log);
        let io = |e| AuditError::io(&dir, e);
        let segs = list_segments(&dir).map_err(io)?;
        let mut w =
            Walk { keys: &keys, rep, head: None, head_seen: false, purged_seq: 0, next_seq: 1, prev: ZERO_HASH, probe };
        match signed::read_head(&keys, &dir.join("head")).map_err(io)? {
            HeadState::Valid(h) => w.head = Some(h),
            HeadState::Missing if segs.is_empty() => {}
            HeadState::Missing => w.problem(None, None, None, "head file missing (deleted?)".into()),
            HeadState::Invalid => w.problem(None, None, None, "head file fails authentication".into()),
        }
        let mut floor = Month(0);
        let mut from = "the start of the log".to_string();
        match signed::read_checkpoint(&keys, &dir.join("checkpoint")).map_err(io)? {
            Some(Ok(c)) => {
                (w.next_seq, w.prev, floor) = (c.last_seq + 1, c.last_hash, c.purged_through.next());
                w.purged_seq = c.last_seq;
                w.rep.purged_seq = c.last_seq;
                w.note_probe(c.last_seq, c.last_hash);
                from = format!("the purge checkpoint (through {})", c.purged_through);
            }
            Some(Err(())) => w.problem(None, None, None, "purge checkpoint fails authentication".into()),
            None => {}
        }
        let live: Vec<Month> = segs.iter().copied().filter(|m| *m >= floor).collect();
        for m in segs.iter().filter(|m| **m < floor) {
            w.rep.notes.push(format!("segment {m} is left over from an interrupted purge"));
        }
        for (i, &month) in live.iter().enumerate() {
            let newest = i + 1 == live.len();
            w.segment(&dir, month, newest, &from)?;
            from = format!("segment {month}");
        }
        w.finish_head();
        (w.rep.end_seq, w.rep.end_hash) = (w.next_seq - 1, w.prev);
        Ok(w.rep)
    }
}

impl Walk<'_> {
    fn note_probe(&mut self, seq: u64, hash: Hash) {
        if self.probe == Some(seq) {
            self.rep.probe_hash = Some(hash);
        }
    }

    fn problem(&mut self, segment: Option<Month>, offset: Option<u64>, seq: Option<u64>, message: String) {
        self.rep.problems.push(Problem { segment, offset, seq, message });
    }

    /// Offset from which damage in `month` may be a torn tail (newest segment only).
    fn durable_end(&self, month: Month, newest: bool) -> u64 {
        let Some(h) = self.head else { return 0 };
        match (newest, h.month.cmp(&month)) {
            (false, _) | (true, std::cmp::Ordering::Greater) => u64::MAX,
            (true, std::cmp::Ordering::Equal) => h.end,
            (true, std::cmp::Ordering::Less) => 0,
        }
    }

    fn check_head_at(&mut self, month: Month, offset: u64) {
        let Some(h) = self.head else { return };
        if h.month == month && h.end == offset && h.last_seq > 0 {
            self.head_seen = true;
            if h.last_seq != self.next_seq - 1 || !mac_eq(&h.last_hash, &self.prev) {
                self.problem(
                    Some(month),
                    Some(offset),
                    Some(h.last_seq),
                    "does not match the head's durable end (edited or replaced)".into(),
                );
            }
        }
    }

    fn segment(&mut self, dir: &Path, month: Month, newest: bool, from: &str) -> Result<(), AuditError> {
        let path = dir.join(seg_name(month));
        let io = |e| AuditError::io(&path, e);
        let durable = self.durable_end(month, newest);
        let (mut r, anchor) = SegReader::open(&path).map_err(io)?;
        self.rep.segments += 1;
        let a = match anchor {
            Ok(a) => a,
            Err(_) if durable == 0 => {
                self.rep
                    .notes
                    .push(format!("segment {month}: incomplete anchor from a crash while starting the month"));
                return Ok(());
            }
            Err(_) => {
                self.problem(Some(month), Some(0), None, "anchor unreadable (file truncated or overwritten)".into());
                return Ok(());
            }
        };
        if !anchor_matches(&a, self.keys.log, month) {
            self.problem(
                Some(month),
                Some(0),
                None,
                "anchor names another log or month (file renamed or copied)".into(),
            );
        } else if !a.authentic(self.keys) {
            self.problem(Some(month), Some(0), None, "anchor fails authentication (edited)".into());
        }
        if a.first_seq != self.next_seq || !mac_eq(&a.prev_hash, &self.prev) {
            let msg = format!(
                "does not continue {from}: expected first record #{}, anchor says #{}; a segment or the end of one is missing, or a segment was replaced",
                self.next_seq, a.first_seq
            );
            self.problem(Some(month), Some(0), None, msg);
        }
        (self.next_seq, self.prev) = (a.first_seq, a.hash);
        self.check_head_at(month, ANCHOR_LEN);
        let len = r.len();
        while let Some(next) = r.next_block().map_err(io)? {
            let (off, bytes) = match next {
                Ok(x) => x,
                Err(e) => {
                    let off = r.pos();
                    let what = if e == ReadErr::Truncated { "truncated block" } else { "malformed block" };
                    self.damage(month, off, durable, len - off, what);
                    return Ok(());
                }
            };
            let end = off + bytes.len() as u64;
            if !self.block(month, off, bytes, durable, len - off) {
                return Ok(());
            }
            self.check_head_at(month, end);
        }
        Ok(())
    }

    /// A bad spot: a torn tail note when tolerated, a problem otherwise.
    fn damage(&mut self, month: Month, off: u64, durable: u64, bytes_left: u64, what: &str) {
        if off >= durable {
            self.rep.notes.push(format!(
                "segment {month}: torn tail of {bytes_left} bytes at offset {off} after record #{} ignored (crash before it was durable)",
                self.next_seq - 1
            ));
        } else {
            let msg =
                format!("{what} starting at record #{}: records were cut, inserted or overwritten here", self.next_seq);
            self.problem(Some(month), Some(off), Some(self.next_seq), msg);
        }
    }

    /// Checks one block; `false` stops the segment (unreadable from here).
    fn block(&mut self, month: Month, off: u64, bytes: &[u8], durable: u64, left: u64) -> bool {
        let Ok(b) = parse_block(bytes) else {
            self.damage(month, off, durable, left, "malformed block");
            return false;
        };
        let bad = match check_block(self.keys, &b) {
            Ok(bad) => bad,
            Err(_) => {
                self.damage(month, off, durable, left, "block with malformed records");
                return false;
            }
        };
        if off >= durable && (!bad.is_empty() || b.hdr.first_seq != self.next_seq) {
            self.damage(month, off, durable, left, "damaged block");
            return false;
        }
        let (first, last) = (b.hdr.first_seq, b.hdr.first_seq + u64::from(b.hdr.count) - 1);
        if first > self.next_seq {
            self.problem(
                Some(month),
                Some(off),
                Some(self.next_seq),
                format!("records #{}..#{} are missing (deleted)", self.next_seq, first - 1),
            );
        } else if first < self.next_seq {
            self.problem(
                Some(month),
                Some(off),
                Some(first),
                format!("block #{first}..#{last} is out of order or duplicated"),
            );
        } else if !mac_eq(&b.hdr.prev_hash, &self.prev) {
            self.problem(
                Some(month),
                Some(off),
                Some(first),
                "does not chain to the record before it (records deleted, reordered or replaced)".into(),
            );
        }
        for seq in bad {
            self.problem(
                Some(month),
                Some(off),
                Some(seq),
                "content does not match its chain hash (edited, deleted or moved)".into(),
            );
        }
        self.check_fields(month, off, &b);
        self.rep.records += u64::from(b.hdr.count);
        (self.next_seq, self.prev) = (last + 1, b.last_hash);
        self.note_probe(last, b.last_hash);
        true
    }

    /// Header and trailer fields must agree with the records they describe.
    fn check_fields(&mut self, month: Month, off: u64, b: &super::segment::BlockRef<'_>) {
        let (recs, names) = match (b.records(), b.names(self.keys)) {
            (Ok(r), Ok(n)) => (r, n),
            _ => return,
        };
        let (mut min, mut max) = (i64::MAX, i64::MIN);
        for (i, (r, (s, e))) in recs.iter().zip(&names.1).enumerate() {
            let seq = b.hdr.first_seq + i as u64;
            let nm = names.0.get(*s..*e).unwrap_or(&[]);
            match record::decode(r.clear, nm, self.keys.log.org()) {
                Ok(ev) => {
                    let t = super::jst::unix_ms(ev.time);
                    (min, max) = (min.min(t), max.max(t));
                }
                Err(_) => self.problem(Some(month), Some(off), Some(seq), "record is malformed".into()),
            }
        }
        if (min, max) != (b.hdr.min_ms, b.hdr.max_ms) {
            self.problem(Some(month), Some(off), Some(b.hdr.first_seq), "block time range altered".into());
        }
        let last = recs.last().map(|r| r.hash).unwrap_or(ZERO_HASH);
        if b.last_seq != b.hdr.first_seq + u64::from(b.hdr.count) - 1 || !mac_eq(&b.last_hash, &last) {
            self.problem(Some(month), Some(off), Some(b.last_seq), "block trailer altered".into());
        }
    }

    fn finish_head(&mut self) {
        let Some(h) = self.head else { return };
        // Nothing durable yet, found in place, or purged since.
        if h.last_seq == 0 || self.head_seen || h.last_seq <= self.purged_seq {
            return;
        }
        let msg = format!(
            "log truncated: the head says records up to #{} (segment {}, offset {}) were durable, but the log ends at #{}",
            h.last_seq,
            h.month,
            h.end,
            self.next_seq - 1
        );
        self.problem(Some(h.month), Some(h.end), Some(h.last_seq), msg);
    }
}
