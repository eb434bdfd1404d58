//! Queries: filter one log's records by time, kind, outcome, user and path.
//!
//! Cost model: the sparse index and block headers skip whole regions and
//! blocks outside the time range; clear fields are filtered before any
//! decryption; a block's names are decrypted only if one of its records
//! passed the clear filters; and a record is shown only after its chain
//! hash was checked (against the previous record's stored hash), so no
//! unauthenticated name is ever released.

use std::time::SystemTime;

use super::AuditError;
use super::codec::Dec;
use super::event::{Category, Event, ResultClass, kind_category, kind_code};
use super::index;
use super::jst::{Month, unix_ms};
use super::keys::{LogId, LogKeys, mac_eq};
use super::record;
use super::segment::{
    ANCHOR_LEN, BlockHeader, SegReader, anchor_matches, idx_name, list_segments, parse_block, record_hash, seg_name,
};
use super::store::Store;

/// Filters; every `None`/empty field matches everything.
#[derive(Debug, Clone, Default)]
pub struct Query {
    /// Access or operation events.
    pub category: Option<Category>,
    /// User name (ASCII case-insensitive, exact).
    pub user: Option<String>,
    /// Inclusive lower bound.
    pub since: Option<SystemTime>,
    /// Exclusive upper bound.
    pub until: Option<SystemTime>,
    /// Share-qualified (`share/dir/file`) or share-relative (`dir/file`)
    /// path prefix; `\` and `/` are the same, case-insensitive.
    pub path_prefix: Option<String>,
    /// Kind names ("open", "logon-failure", …); empty: all kinds.
    pub kinds: Vec<String>,
    /// Outcome class.
    pub result: Option<ResultClass>,
    /// Stop after this many matches.
    pub limit: Option<usize>,
}

/// A record returned by a query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvent {
    /// The log it came from.
    pub log: LogId,
    /// Its sequence number in that log (1-based, never reused).
    pub seq: u64,
    /// The event.
    pub event: Event,
}

/// What a query did.
#[derive(Debug, Clone, Default)]
pub struct QueryStats {
    /// Records returned.
    pub matched: u64,
    /// Records whose clear fields were examined.
    pub examined: u64,
    /// Blocks read / skipped by their time range.
    pub blocks_read: u64,
    /// Blocks skipped without reading.
    pub blocks_skipped: u64,
    /// Records that matched but failed authentication (not returned).
    pub rejected: u64,
    /// Damage met on the way (run `logs verify` for details).
    pub warnings: Vec<String>,
}

/// The compiled form of a [`Query`].
struct Filter {
    since: i64,
    until: i64,
    kinds: Vec<u8>,
    category: Option<Category>,
    result: Option<u8>,
    user: Option<String>,
    path: Option<Vec<char>>,
}

impl Filter {
    fn new(q: &Query) -> Result<Self, AuditError> {
        let mut kinds = Vec::new();
        for k in &q.kinds {
            kinds.push(kind_code(k).ok_or_else(|| {
                let all: Vec<&str> = super::event::kind_names().collect();
                AuditError::Query(format!("unknown event type {k:?}; one of: {}", all.join(", ")))
            })?);
        }
        let path = q.path_prefix.as_ref().map(|p| norm(p.trim_start_matches(['/', '\\'])).collect());
        Ok(Self {
            since: q.since.map_or(i64::MIN, unix_ms),
            until: q.until.map_or(i64::MAX, unix_ms),
            kinds,
            category: q.category,
            result: q.result.map(|r| match r {
                ResultClass::Ok => 0,
                ResultClass::Denied => 1,
                ResultClass::Failed => 2,
            }),
            user: q.user.clone(),
            path,
        })
    }

    fn overlaps(&self, min: i64, max: i64) -> bool {
        max >= self.since && min < self.until
    }

    fn clear_ok(&self, p: &record::Peek<'_>) -> bool {
        (self.since..self.until).contains(&p.time_ms)
            && (self.kinds.is_empty() || self.kinds.contains(&p.kind))
            && self.category.is_none_or(|c| kind_category(p.kind) == Some(c))
            && self.result.is_none_or(|r| r == p.result)
            && self.user.as_ref().is_none_or(|u| p.user.is_some_and(|pu| pu.eq_ignore_ascii_case(u)))
    }

    /// Whether a record's names (plaintext) match the path prefix: the
    /// admin target, the share, or any path with or without its share.
    fn names_ok(&self, kind: u8, names: &[u8]) -> bool {
        let Some(prefix) = &self.path else {
            return true;
        };
        let mut d = Dec::new(names);
        let Ok(first) = d.str() else { return false };
        if kind == 40 {
            return starts_with(&[first], prefix);
        }
        let mut any_path = false;
        while let Ok(p) = d.str() {
            any_path = true;
            let p = p.trim_start_matches(['/', '\\']);
            if starts_with(&[first, "/", p], prefix) || starts_with(&[p], prefix) {
                return true;
            }
        }
        !any_path && starts_with(&[first], prefix)
    }
}

/// A character folded for path comparison: `\` is `/`, letters lower-case
/// (single-character folding; CJK and kana have no case and skip the tables).
fn fold(c: char) -> char {
    if c.is_ascii() {
        if c == '\\' { '/' } else { c.to_ascii_lowercase() }
    } else if ('\u{3000}'..='\u{9fff}').contains(&c) {
        c
    } else {
        c.to_lowercase().next().unwrap_or(c)
    }
}

/// Folded characters of `s`.
fn norm(s: &str) -> impl Iterator<Item = char> + '_ {
    s.chars().map(fold)
}

/// Whether the concatenation of `parts`, normalized, starts with `prefix`.
fn starts_with(parts: &[&str], prefix: &[char]) -> bool {
    let mut it = parts.iter().flat_map(|p| norm(p));
    prefix.iter().all(|c| it.next() == Some(*c))
}

impl Store {
    /// Runs `q` over one log, calling `out` for each match in log order
    /// (time order, except for the rare late event); `out` returns `false`
    /// to stop.
    pub(crate) fn query(
        &self,
        log: LogId,
        q: &Query,
        out: &mut dyn FnMut(StoredEvent) -> bool,
    ) -> Result<QueryStats, AuditError> {
        let f = Filter::new(q)?;
        let keys = self.keys(log)?;
        let dir = self.log_dir(log);
        let mut st = QueryStats::default();
        let limit = q.limit.unwrap_or(usize::MAX) as u64;
        for month in list_segments(&dir).map_err(|e| AuditError::io(&dir, e))? {
            // A segment holds no record later than its month's end.
            if month.next().start_ms() <= f.since || st.matched >= limit {
                continue;
            }
            let mut run = Run { keys: &keys, f: &f, st: &mut st, out, limit, log };
            if !run.segment(&dir, month)? {
                break;
            }
        }
        Ok(st)
    }
}

struct Run<'a, 'o> {
    keys: &'a LogKeys,
    f: &'a Filter,
    st: &'a mut QueryStats,
    out: &'a mut (dyn FnMut(StoredEvent) -> bool + 'o),
    limit: u64,
    log: LogId,
}

impl Run<'_, '_> {
    /// Scans one segment; `Ok(false)` when the caller asked to stop.
    fn segment(&mut self, dir: &std::path::Path, month: Month) -> Result<bool, AuditError> {
        let path = dir.join(seg_name(month));
        let io = |e| AuditError::io(&path, e);
        let (mut r, anchor) = SegReader::open(&path).map_err(io)?;
        match anchor {
            Ok(a) if anchor_matches(&a, self.log, month) && a.authentic(self.keys) => {}
            _ => {
                self.st.warnings.push(format!("{}: segment {month} has no valid anchor; skipped", self.log));
                return Ok(true);
            }
        }
        let entries = index::load(self.keys, &dir.join(idx_name(month)), month, r.len());
        let mut cursor = ANCHOR_LEN;
        let mut ranges = Vec::new();
        for e in &entries {
            if e.start < cursor {
                continue;
            }
            if e.start > cursor {
                ranges.push((cursor, e.start));
            }
            if self.f.overlaps(e.min_ms, e.max_ms) {
                ranges.push((e.start, e.end));
            } else {
                self.st.blocks_skipped += 1;
            }
            cursor = e.end;
        }
        ranges.push((cursor, u64::MAX));
        for (start, end) in ranges {
            r.seek(start).map_err(io)?;
            while r.pos() < end {
                let hdr = match r.next_header().map_err(io)? {
                    None => break,
                    Some(Ok(h)) => h,
                    Some(Err(_)) => {
                        let pos = r.pos();
                        if pos < r.len() {
                            self.st
                                .warnings
                                .push(format!("{}: segment {month} unreadable from offset {pos}", self.log));
                        }
                        return Ok(true);
                    }
                };
                if !self.f.overlaps(hdr.min_ms, hdr.max_ms) {
                    self.st.blocks_skipped += 1;
                    r.skip(&hdr).map_err(io)?;
                    continue;
                }
                let body = r.read_body(&hdr).map_err(io)?;
                if !self.block(&hdr, body, month) {
                    return Ok(false);
                }
            }
        }
        Ok(true)
    }

    /// Filters one block; `false` when the caller asked to stop.
    fn block(&mut self, hdr: &BlockHeader, bytes: &[u8], month: Month) -> bool {
        self.st.blocks_read += 1;
        let Ok(b) = parse_block(bytes) else {
            self.st.warnings.push(format!("{}: malformed block in {month} at seq {}", self.log, hdr.first_seq));
            return true;
        };
        let Ok(recs) = b.records() else {
            self.st.warnings.push(format!("{}: malformed block in {month} at seq {}", self.log, hdr.first_seq));
            return true;
        };
        let mut names = None;
        let mut prev = b.hdr.prev_hash;
        for (i, rec) in recs.iter().enumerate() {
            let seq = b.hdr.first_seq + i as u64;
            self.st.examined += 1;
            let pass = record::peek(rec.clear).map(|p| (self.f.clear_ok(&p), p.kind));
            if let Ok((true, kind)) = pass {
                if names.is_none() {
                    names = Some(b.names(self.keys).ok());
                }
                let nm = names
                    .as_ref()
                    .and_then(|n| n.as_ref())
                    .and_then(|(pl, rg)| rg.get(i).and_then(|(s, e)| pl.get(*s..*e)));
                match nm {
                    Some(nm) if !self.f.names_ok(kind, nm) => {}
                    Some(nm) => {
                        if !self.emit(&prev, seq, rec.clear, nm, &rec.hash) {
                            return false;
                        }
                    }
                    None => self.st.rejected += 1,
                }
            }
            prev = rec.hash;
        }
        true
    }

    /// Authenticates and decodes one matching record, then hands it out.
    fn emit(&mut self, prev: &[u8; 32], seq: u64, clear: &[u8], names: &[u8], hash: &[u8; 32]) -> bool {
        if !mac_eq(&record_hash(self.keys, prev, seq, clear, names), hash) {
            self.st.rejected += 1;
            return true;
        }
        let Ok(event) = record::decode(clear, names, self.log.org()) else {
            self.st.rejected += 1;
            return true;
        };
        self.st.matched += 1;
        let go = (self.out)(StoredEvent { log: self.log, seq, event });
        go && self.st.matched < self.limit
    }
}
