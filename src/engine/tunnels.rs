//! NTFS file name tunneling (MS-FSA 2.1.5.1.2 and the NTFS behaviour Samba
//! and Windows clients rely on): a name deleted or renamed away from a
//! directory is remembered for 15 seconds; a file created (or renamed in)
//! under that name, or under its 8.3 name, gets the old long name and
//! creation time back. Programs that save by delete-and-create or
//! rename-over-temp keep the file's identity that way (and smbtorture
//! `smb2.mangle` recreates files by their short names).
//!
//! Every delete and every create passes through here under the
//! server-wide file table lock, so both are O(1): the first version kept a
//! list of up to 4,096 entries that every create scanned, uppercasing each
//! name (2.6 % of the server's samples in the small-file benchmark, and a
//! cost any tenant could push onto the others by deleting in a loop).

use std::collections::{HashMap, VecDeque};

use crate::types::{FileTime, NodeId, OrgId};

/// How long tunneling remembers a name (NTFS default: 15 s).
const TTL: u64 = 15 * 10_000_000;

/// At most this many names are remembered server-wide; the oldest go first.
const CAPACITY: usize = 4096;

type Dir = (OrgId, NodeId);

/// One remembered name.
#[derive(Debug, Clone)]
struct Entry {
    /// Distinguishes this entry from an earlier one under the same key.
    seq: u64,
    /// The long name that left, as it was spelled.
    name: String,
    /// Its 8.3 name (uppercase), if it had one.
    short: Option<String>,
    created: FileTime,
    /// Checked on arrival too: the queue expires in order of leaving,
    /// which is not the order of expiry if the clock stepped back.
    expires: FileTime,
}

/// The remembered names, by directory and case-folded long name, with an
/// index by 8.3 name and a queue in the order they left (which is also
/// the order they expire, the lifetime being fixed).
#[derive(Debug, Default)]
pub struct Tunnels {
    seq: u64,
    by_name: HashMap<(Dir, String), Entry>,
    by_short: HashMap<(Dir, String), String>,
    order: VecDeque<(u64, FileTime, (Dir, String))>,
}

/// The comparison form of a name: the one case rule for names
/// (`types::fold_name`); 8.3 names are uppercase ASCII already.
fn key(name: &str) -> String {
    crate::types::fold_name(name)
}

impl Tunnels {
    /// Remembers a name that left `dir` at `now`.
    pub fn leave(&mut self, dir: Dir, name: &str, created: FileTime, now: FileTime) {
        self.expire(now);
        let k = (dir, key(name));
        self.remove(&k);
        while self.by_name.len() >= CAPACITY || self.order.len() >= 2 * CAPACITY {
            let Some((seq, _, old)) = self.order.pop_front() else { break };
            self.remove_if(&old, seq);
        }
        self.seq += 1;
        let short = crate::engine::names::short_name(name);
        if let Some(s) = &short {
            self.by_short.insert((dir, s.clone()), k.1.clone());
        }
        let expires = FileTime(now.0.saturating_add(TTL));
        self.order.push_back((self.seq, expires, k.clone()));
        self.by_name.insert(k, Entry { seq: self.seq, name: name.to_string(), short, created, expires });
    }

    /// A name arriving in `dir`: the tunneled long name and creation time
    /// if it matches a recent one by long or 8.3 name (consumed).
    pub fn arrive(&mut self, dir: Dir, name: &str, now: FileTime) -> Option<(String, FileTime)> {
        self.expire(now);
        let up = key(name);
        let long =
            if self.by_name.contains_key(&(dir, up.clone())) { up } else { self.by_short.get(&(dir, up))?.clone() };
        let e = self.remove(&(dir, long))?;
        (e.expires > now).then_some((e.name, e.created))
    }

    /// Forgets the names whose time is up.
    fn expire(&mut self, now: FileTime) {
        while let Some((seq, expires, _)) = self.order.front() {
            if *expires > now {
                break;
            }
            let seq = *seq;
            if let Some((_, _, k)) = self.order.pop_front() {
                self.remove_if(&k, seq);
            }
        }
    }

    /// Removes the entry under `k` if it is still the one queued as `seq`
    /// (a name that left twice is queued twice).
    fn remove_if(&mut self, k: &(Dir, String), seq: u64) {
        if self.by_name.get(k).is_some_and(|e| e.seq == seq) {
            self.remove(k);
        }
    }

    fn remove(&mut self, k: &(Dir, String)) -> Option<Entry> {
        let e = self.by_name.remove(k)?;
        if let Some(s) = &e.short {
            let sk = (k.0, s.clone());
            if self.by_short.get(&sk) == Some(&k.1) {
                self.by_short.remove(&sk);
            }
        }
        Some(e)
    }

    /// Names remembered now (tests and the bound check).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.by_name.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORG: OrgId = OrgId(1);
    const DIR: NodeId = NodeId(7);

    #[test]
    fn tunnel_restores_long_name_and_creation_time_for_15_seconds() {
        let mut t = Tunnels::default();
        let created = FileTime(1_000);
        t.leave((ORG, DIR), "Quarterly report.xlsx", created, FileTime(50_000_000));
        let short = crate::engine::names::short_name("Quarterly report.xlsx").unwrap();
        // Another directory, or after 15 s: nothing.
        assert_eq!(t.arrive((ORG, NodeId(8)), &short, FileTime(50_000_001)), None);
        let got = t.arrive((ORG, DIR), &short.to_lowercase(), FileTime(60_000_000));
        assert_eq!(got, Some(("Quarterly report.xlsx".to_string(), created)));
        // Consumed.
        assert_eq!(t.arrive((ORG, DIR), &short, FileTime(60_000_000)), None);
        t.leave((ORG, DIR), "a.txt", created, FileTime(0));
        assert_eq!(t.arrive((ORG, DIR), "A.TXT", FileTime(15 * 10_000_000 + 1)), None);
    }

    #[test]
    fn long_name_matches_without_case_and_the_latest_leave_wins() {
        let mut t = Tunnels::default();
        t.leave((ORG, DIR), "Report.txt", FileTime(1), FileTime(10));
        t.leave((ORG, DIR), "REPORT.TXT", FileTime(2), FileTime(20));
        assert_eq!(t.len(), 1);
        assert_eq!(t.arrive((ORG, DIR), "report.txt", FileTime(30)), Some(("REPORT.TXT".to_string(), FileTime(2))));
        assert_eq!(t.arrive((ORG, DIR), "report.txt", FileTime(30)), None);
    }

    #[test]
    fn a_requeued_name_outlives_its_first_expiry() {
        let mut t = Tunnels::default();
        t.leave((ORG, DIR), "x.txt", FileTime(1), FileTime(0));
        t.leave((ORG, DIR), "x.txt", FileTime(2), FileTime(10 * 10_000_000));
        // The first queue record expires at 15 s; the entry lives to 25 s.
        let got = t.arrive((ORG, DIR), "x.txt", FileTime(20 * 10_000_000));
        assert_eq!(got, Some(("x.txt".to_string(), FileTime(2))));
    }

    #[test]
    fn the_table_stays_bounded_and_drops_the_oldest() {
        let mut t = Tunnels::default();
        for i in 0..(3 * CAPACITY) {
            t.leave((ORG, DIR), &format!("file-{i}.dat"), FileTime(i as u64), FileTime(100));
        }
        assert_eq!(t.len(), CAPACITY);
        assert!(t.order.len() <= 2 * CAPACITY);
        assert_eq!(t.arrive((ORG, DIR), "file-0.dat", FileTime(101)), None);
        let last = format!("file-{}.dat", 3 * CAPACITY - 1);
        assert!(t.arrive((ORG, DIR), &last, FileTime(101)).is_some());
    }
}
