//! Oplocks and leases against smbtorture `smb2.oplock.*` (oplock.c) and
//! `smb2.lease.*` (lease.c), driven through `StreamState` as the engine
//! would drive it. "The client acks" means what smbtorture's break
//! handlers do: acknowledge to the level the break offered.

use std::time::{Duration, Instant};

use crate::engine::fsa::access::*;
use crate::engine::fsa::lease::*;
use crate::engine::fsa::locks::{
    LOCKFLAG_EXCLUSIVE, LOCKFLAG_FAIL_IMMEDIATELY, LockElement, LockRequest,
};
use crate::engine::fsa::sharing::{FILE_SHARE_DELETE, FILE_SHARE_READ, FILE_SHARE_WRITE};
use crate::engine::fsa::stream::*;
use crate::engine::fsa::{FileKey, OpenId};
use crate::types::{NodeId, OrgId};
use crate::wire::{Guid, NtStatus};

const SHARE_ALL: u32 = FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE;
const STAT: u32 = FILE_READ_ATTRIBUTES | FILE_WRITE_ATTRIBUTES | SYNCHRONIZE;
const CLIENT: Guid = Guid([7; 16]);

#[derive(Clone, Copy)]
struct Req {
    access: u32,
    share: u32,
    overwrite: bool,
    created: bool,
    dir: bool,
    request: CacheRequest,
}

fn req(request: CacheRequest) -> Req {
    Req {
        access: FILE_ALL_ACCESS,
        share: SHARE_ALL,
        overwrite: false,
        created: false,
        dir: false,
        request,
    }
}

fn oplock(level: u8) -> CacheRequest {
    CacheRequest::Oplock(level)
}

fn st(s: &str) -> Caching {
    s.chars().fold(Caching::NONE, |a, c| match c {
        'R' => a.or(Caching::R),
        'W' => a.or(Caching::W),
        'H' => a.or(Caching::H),
        _ => a,
    })
}

fn lid(key: u8) -> LeaseId {
    LeaseId {
        client: CLIENT,
        key: LeaseKey([key; 16]),
    }
}

fn lease(key: u8, state: &str) -> CacheRequest {
    CacheRequest::Lease(LeaseRequest {
        id: lid(key),
        state: st(state),
        v2: None,
    })
}

fn lease_v2(key: u8, state: &str, epoch: u16) -> CacheRequest {
    CacheRequest::Lease(LeaseRequest {
        id: lid(key),
        state: st(state),
        v2: Some((None, epoch)),
    })
}

struct T {
    s: StreamState,
    now: Instant,
    next: u64,
}

impl T {
    fn new() -> Self {
        Self {
            s: StreamState::new(),
            now: Instant::now(),
            next: 1,
        }
    }

    fn attempt(&mut self, open: OpenId, r: &Req, first: bool) -> OpenOutcome {
        let or = OpenRequest {
            open,
            access: r.access,
            share: r.share,
            overwrite: r.overwrite,
            created: r.created,
            is_directory: r.dir,
            delete_on_close: false,
            allocation_size: 4096,
            request: r.request,
            token: open.0,
            first_attempt: first,
        };
        self.s.begin_open(&or, self.now)
    }

    /// A CREATE without any acknowledgment.
    fn open(&mut self, r: Req) -> (OpenId, OpenOutcome) {
        let id = OpenId(self.next);
        self.next += 1;
        (id, self.attempt(id, &r, true))
    }

    /// A CREATE whose breaks the holders acknowledge at once; returns the
    /// final result and every break sent on the way.
    fn open_acked(&mut self, r: Req) -> (OpenId, OpenResult, Vec<Break>) {
        let (id, mut out) = self.open(r);
        let mut all = Vec::new();
        loop {
            let mut retry = Vec::new();
            for b in &out.breaks {
                retry.extend(self.ack(b));
            }
            all.extend(out.breaks.clone());
            if out.result != OpenResult::Wait {
                return (id, out.result, all);
            }
            assert!(
                retry.contains(&id.0),
                "parked open must be retried after acks"
            );
            out = self.attempt(id, &r, false);
        }
    }

    fn ack(&mut self, b: &Break) -> Vec<u64> {
        match b {
            Break::Oplock {
                open,
                level,
                ack_required: true,
            } => self.s.oplock_ack(*open, *level).expect("ack").1,
            Break::Lease {
                id,
                to,
                ack_required: true,
                ..
            } => self.s.lease_ack(id, *to, self.now).expect("ack").retry,
            _ => Vec::new(),
        }
    }

    fn lease_state(&self, key: u8) -> Option<Caching> {
        self.s.cache.lease_state(&lid(key))
    }
}

fn granted(r: &OpenResult) -> CacheGrant {
    match r {
        OpenResult::Granted(g) => *g,
        other => panic!("not granted: {other:?}"),
    }
}

fn lease_of(r: &OpenResult) -> LeaseGrant {
    match granted(r) {
        CacheGrant::Lease(l) => l,
        other => panic!("no lease: {other:?}"),
    }
}

fn oplock_breaks(b: &[Break]) -> Vec<(OpenId, u8)> {
    b.iter()
        .filter_map(|b| match b {
            Break::Oplock { open, level, .. } => Some((*open, *level)),
            _ => None,
        })
        .collect()
}

fn lease_breaks(b: &[Break]) -> Vec<(u8, Caching, Caching)> {
    b.iter()
        .filter_map(|b| match b {
            Break::Lease { id, from, to, .. } => Some((id.key.0[0], *from, *to)),
            _ => None,
        })
        .collect()
}

// ---- oplocks --------------------------------------------------------------

/// smb2.oplock.exclusive1: share none + exclusive: SHARING_VIOLATION, no break.
#[test]
fn exclusive1() {
    let mut t = T::new();
    let r = Req {
        share: 0,
        ..req(oplock(level::EXCLUSIVE))
    };
    let (_, o) = t.open(r);
    assert_eq!(granted(&o.result), CacheGrant::Oplock(level::EXCLUSIVE));
    let (_, o) = t.open(r);
    assert_eq!(o.result, OpenResult::Failed(NtStatus::SHARING_VIOLATION));
    assert!(o.breaks.is_empty());
}

/// smb2.oplock.exclusive2: a second open breaks exclusive to Level II
/// and gets Level II.
#[test]
fn exclusive2() {
    let mut t = T::new();
    let (h1, o) = t.open(req(oplock(level::EXCLUSIVE)));
    assert_eq!(granted(&o.result), CacheGrant::Oplock(level::EXCLUSIVE));
    let (_, res, breaks) = t.open_acked(req(oplock(level::EXCLUSIVE)));
    assert_eq!(granted(&res), CacheGrant::Oplock(level::II));
    assert_eq!(oplock_breaks(&breaks), vec![(h1, level::II)]);
}

/// smb2.oplock.exclusive4 and batch8: attribute-only opens break nothing
/// and get nothing.
#[test]
fn stat_open_no_break() {
    for held in [level::EXCLUSIVE, level::BATCH] {
        let mut t = T::new();
        t.open(Req {
            share: 0,
            ..req(oplock(held))
        });
        let (_, o) = t.open(Req {
            access: STAT,
            share: 0,
            ..req(oplock(level::EXCLUSIVE))
        });
        assert_eq!(granted(&o.result), CacheGrant::None);
        assert!(o.breaks.is_empty());
    }
}

/// smb2.oplock.exclusive5: an attribute-only OVERWRITE_IF breaks and then
/// gets Level II.
#[test]
fn exclusive5() {
    let mut t = T::new();
    let (h1, _) = t.open(req(oplock(level::EXCLUSIVE)));
    let r = Req {
        access: STAT,
        overwrite: true,
        ..req(oplock(level::II))
    };
    let (_, res, breaks) = t.open_acked(r);
    assert_eq!(granted(&res), CacheGrant::Oplock(level::II));
    assert_eq!(oplock_breaks(&breaks), vec![(h1, level::NONE)]);
}

/// smb2.oplock.batch5: a batch holder is broken to Level II first, then the
/// open fails with SHARING_VIOLATION.
#[test]
fn batch5() {
    let mut t = T::new();
    let r = Req {
        share: 0,
        ..req(oplock(level::BATCH))
    };
    let (h1, o) = t.open(r);
    assert_eq!(granted(&o.result), CacheGrant::Oplock(level::BATCH));
    let (h2, o) = t.open(req(oplock(level::NONE)).with_share(0));
    assert_eq!(o.result, OpenResult::Wait);
    assert_eq!(oplock_breaks(&o.breaks), vec![(h1, level::II)]);
    let (lvl, retry) = t.s.oplock_ack(h1, level::II).expect("ack");
    assert_eq!((lvl, retry), (level::II, vec![h2.0]));
    let o = t.attempt(h2, &req(oplock(level::NONE)).with_share(0), false);
    assert_eq!(o.result, OpenResult::Failed(NtStatus::SHARING_VIOLATION));
}

/// smb2.oplock.batch3/batch7: if the holder closes instead of acking, the
/// waiting open gets the file (and a batch oplock).
#[test]
fn close_on_break() {
    let mut t = T::new();
    let r = Req {
        share: 0,
        ..req(oplock(level::BATCH))
    };
    let (h1, _) = t.open(r);
    let (h2, o) = t.open(r);
    assert_eq!(o.result, OpenResult::Wait);
    let c = t.s.close(h1);
    assert_eq!(c.retry, vec![h2.0]);
    let o = t.attempt(h2, &r, false);
    assert_eq!(granted(&o.result), CacheGrant::Oplock(level::BATCH));
}

/// smb2.oplock.batch6 and batch9: Level II for the second open; a write
/// breaks both Level II holders to none, the writer's own included.
#[test]
fn write_breaks_all_level_two() {
    let mut t = T::new();
    let (h1, _) = t.open(req(oplock(level::BATCH)));
    let (h2, res, b) = t.open_acked(req(oplock(level::BATCH)));
    assert_eq!(granted(&res), CacheGrant::Oplock(level::II));
    assert_eq!(oplock_breaks(&b), vec![(h1, level::II)]);
    let (h3, o) = t.open(req(oplock(level::BATCH)));
    assert_eq!(
        granted(&o.result),
        CacheGrant::Oplock(level::II),
        "third open: no break"
    );
    assert!(o.breaks.is_empty());
    let b = t.s.before_write(h1, 0, 1, t.now).expect("no locks");
    assert_eq!(
        oplock_breaks(&b),
        vec![(h1, level::NONE), (h2, level::NONE), (h3, level::NONE)]
    );
    assert!(b.iter().all(|b| matches!(
        b,
        Break::Oplock {
            ack_required: false,
            ..
        }
    )));
    assert!(
        t.s.before_write(h1, 0, 1, t.now)
            .expect("no locks")
            .is_empty()
    );
}

/// smb2.oplock.batch9: an attribute-only CREATE that creates the file may
/// get a batch oplock.
#[test]
fn batch9_stat_create() {
    let mut t = T::new();
    let (_, o) = t.open(Req {
        access: STAT,
        created: true,
        share: 0,
        ..req(oplock(level::BATCH))
    });
    assert_eq!(granted(&o.result), CacheGrant::Oplock(level::BATCH));
    let (_, o) = t.open(Req {
        access: STAT,
        ..req(oplock(level::BATCH))
    });
    assert_eq!(
        granted(&o.result),
        CacheGrant::None,
        "batch9a: attribute open, no break"
    );
    assert!(o.breaks.is_empty());
}

/// smb2.oplock.batch10: after a plain open a batch request gets Level II
/// without a break; a write by the plain open breaks it.
#[test]
fn batch10() {
    let mut t = T::new();
    let (h1, _) = t.open(req(CacheRequest::None));
    let (h2, o) = t.open(req(oplock(level::BATCH)));
    assert_eq!(granted(&o.result), CacheGrant::Oplock(level::II));
    assert!(o.breaks.is_empty());
    let b = t.s.before_write(h1, 0, 1, t.now).expect("no locks");
    assert_eq!(oplock_breaks(&b), vec![(h2, level::NONE)]);
}

/// smb2.oplock.batch13/14: an attribute-only OVERWRITE breaks a batch
/// oplock and gets Level II.
#[test]
fn batch13_overwrite() {
    let mut t = T::new();
    let (h1, _) = t.open(req(oplock(level::BATCH)));
    let (_, res, b) = t.open_acked(Req {
        access: STAT,
        overwrite: true,
        ..req(oplock(level::BATCH))
    });
    assert_eq!(granted(&res), CacheGrant::Oplock(level::II));
    assert_eq!(oplock_breaks(&b), vec![(h1, level::NONE)]);
}

/// smb2.oplock.batch22a: an unacknowledged break times out after 35 s and
/// the waiting open then gets Level II.
#[test]
fn break_timeout() {
    let mut t = T::new();
    let (h1, _) = t.open(req(oplock(level::BATCH)));
    let (h2, o) = t.open(req(oplock(level::BATCH)));
    assert_eq!(o.result, OpenResult::Wait);
    let deadline = t.s.next_deadline().expect("timer");
    assert_eq!(deadline, t.now + BREAK_TIMEOUT);
    assert!(t.s.on_timer(t.now + Duration::from_secs(34)).is_empty());
    assert_eq!(t.s.on_timer(deadline), vec![h2.0]);
    let o = t.attempt(h2, &req(oplock(level::BATCH)), false);
    assert_eq!(granted(&o.result), CacheGrant::Oplock(level::II));
    assert_eq!(t.s.cache.grant_of(h1), CacheGrant::None);
    assert_eq!(t.s.next_deadline(), None);
}

/// smb2.oplock.doc: delete pending fails new opens before any break.
#[test]
fn doc_no_break() {
    let mut t = T::new();
    t.open(req(oplock(level::BATCH)));
    t.s.shares.set_delete_pending(true);
    let (_, o) = t.open(Req {
        access: FILE_READ_DATA,
        ..req(CacheRequest::None)
    });
    assert_eq!(o.result, OpenResult::Failed(NtStatus::DELETE_PENDING));
    assert!(o.breaks.is_empty());
}

fn lock_one(t: &mut T, open: OpenId, offset: u64) -> Vec<Break> {
    let els = [LockElement {
        offset,
        length: 1,
        flags: LOCKFLAG_EXCLUSIVE | LOCKFLAG_FAIL_IMMEDIATELY,
    }];
    let r = LockRequest {
        elements: &els,
        lock_sequence: 0,
        check_sequence: false,
        token: 0,
    };
    let (reply, breaks) = t.s.lock(open, &r, 4096, t.now);
    assert_eq!(reply.status, Some(NtStatus::SUCCESS));
    breaks
}

/// smb2.oplock.brl1/brl3: a byte-range lock breaks the locker's own Level
/// II; smb2.oplock.brl2: not a batch oplock.
#[test]
fn byte_range_lock_breaks_level_two() {
    let mut t = T::new();
    let (h1, _) = t.open(Req {
        share: FILE_SHARE_READ | FILE_SHARE_WRITE,
        ..req(oplock(level::BATCH))
    });
    assert!(lock_one(&mut t, h1, 0).is_empty(), "brl2");
    let mut t = T::new();
    let (h1, _) = t.open(req(oplock(level::BATCH)));
    t.open_acked(req(CacheRequest::None));
    assert_eq!(
        oplock_breaks(&lock_one(&mut t, h1, 0)),
        vec![(h1, level::NONE)]
    );
}

/// smb2.oplock.levelii500: acknowledging a Level II to none break is a
/// protocol error.
#[test]
fn levelii500() {
    let mut t = T::new();
    let (h1, _) = t.open(req(oplock(level::II)));
    let b = t.s.before_write(h1, 0, 1, t.now).expect("no locks");
    assert_eq!(oplock_breaks(&b), vec![(h1, level::NONE)]);
    assert_eq!(
        t.s.oplock_ack(h1, level::NONE),
        Err(NtStatus::INVALID_OPLOCK_PROTOCOL)
    );
}

/// smb2.oplock.statopen1: which access masks count as stat opens.
#[test]
fn statopen1_table() {
    let table = [
        (FILE_READ_DATA, false),
        (FILE_WRITE_DATA, false),
        (FILE_READ_EA, false),
        (FILE_WRITE_EA, false),
        (FILE_EXECUTE, false),
        (FILE_READ_ATTRIBUTES, true),
        (FILE_WRITE_ATTRIBUTES, true),
        (DELETE, false),
        (READ_CONTROL, false),
        (WRITE_DAC, false),
        (WRITE_OWNER, false),
        (SYNCHRONIZE, true),
    ];
    for (access, stat) in table {
        let mut t = T::new();
        t.open(req(oplock(level::BATCH)));
        let (_, o) = t.open(Req {
            access,
            ..req(CacheRequest::None)
        });
        assert_eq!(o.breaks.is_empty(), stat, "access {access:#x}");
    }
}

// ---- leases ---------------------------------------------------------------

/// smb2.lease.request: which requested states are granted.
#[test]
fn lease_request_table() {
    for (asked, want) in [
        ("", ""),
        ("R", "R"),
        ("H", ""),
        ("W", ""),
        ("RH", "RH"),
        ("RW", "RW"),
        ("HW", ""),
        ("RHW", "RHW"),
    ] {
        let mut t = T::new();
        let (_, o) = t.open(req(lease(1, asked)));
        let g = lease_of(&o.result);
        assert_eq!(g.state, st(want), "asked {asked}");
        assert_eq!(granted(&o.result).oplock_level(), level::LEASE);
        assert_eq!((g.flags, g.epoch, g.v2), (0, 0, false));
    }
}

/// smb2.lease.request: directories get no W and no oplocks; a lease key
/// belongs to one file.
#[test]
fn lease_request_directory_and_key_reuse() {
    let mut t = T::new();
    let (_, o) = t.open(Req {
        dir: true,
        ..req(lease(1, "RWH"))
    });
    assert_eq!(lease_of(&o.result).state, st("RH"));
    let mut t = T::new();
    let (_, o) = t.open(Req {
        dir: true,
        ..req(oplock(level::BATCH))
    });
    assert_eq!(granted(&o.result), CacheGrant::None);
    let mut dir = LeaseDirectory::new();
    let f1 = FileKey::new(OrgId(1), NodeId(10), "");
    let f2 = FileKey::new(OrgId(1), NodeId(11), "");
    let s1 = FileKey::new(OrgId(1), NodeId(10), ":stream:$DATA");
    dir.insert(lid(1), f1.clone());
    assert_eq!(dir.check(&lid(1), &f1), Ok(()));
    assert_eq!(dir.check(&lid(1), &f2), Err(NtStatus::INVALID_PARAMETER));
    assert_eq!(dir.check(&lid(2), &s1), Ok(()));
    assert_eq!(dir.lookup(&lid(1)), Some(&f1));
    dir.remove(&lid(1));
    assert_eq!(dir.check(&lid(1), &f2), Ok(()));
    assert_eq!(FileKey::new(OrgId(1), NodeId(10), "::$DATA"), f1);
    assert_eq!(s1, FileKey::new(OrgId(1), NodeId(10), "STREAM"));
}

/// smb2.lease.upgrade and upgrade2 (uncontended): a lease changes only to a
/// strict superset.
#[test]
fn lease_upgrade2_table() {
    let table = "//  /R/R /RH/RH /RW/RW /RWH/RWH R//R R/R/R R/RH/RH R/RW/RW R/RWH/RWH \
                 RH//RH RH/R/RH RH/RH/RH RH/RW/RH RH/RWH/RWH RW//RW RW/R/RW RW/RH/RW RW/RW/RW \
                 RW/RWH/RWH RWH//RWH RWH/R/RWH RWH/RH/RWH RWH/RW/RWH RWH/RWH/RWH";
    for row in table.split_whitespace() {
        let f: Vec<&str> = row.split('/').collect();
        let mut t = T::new();
        let (_, o) = t.open(req(lease(1, f[0])));
        assert_eq!(lease_of(&o.result).state, st(f[0]));
        let (_, o) = t.open(req(lease(1, f[1])));
        assert_eq!(lease_of(&o.result).state, st(f[2]), "{row}");
        assert!(o.breaks.is_empty());
    }
}

/// smb2.lease.upgrade3 (contended): an upgrade must be grantable in full
/// next to the other lease, and breaks nothing.
#[test]
fn lease_upgrade3_table() {
    let table = "R/R//R R/R/R/R R/R/RW/R R/R/RH/RH R/R/RHW/R R/RH//R R/RH/R/R R/RH/RW/R \
                 R/RH/RH/RH R/RH/RHW/R RH/R//RH RH/R/R/RH RH/R/RW/RH RH/R/RH/RH RH/R/RHW/RH \
                 RH/RH//RH RH/RH/R/RH RH/RH/RW/RH RH/RH/RH/RH RH/RH/RHW/RH";
    for row in table.split_whitespace() {
        let f: Vec<&str> = row.split('/').collect();
        let mut t = T::new();
        t.open(req(lease(1, f[0])));
        let (_, o) = t.open(req(lease(2, f[1])));
        assert_eq!(lease_of(&o.result).state, st(f[1]));
        let (_, o) = t.open(req(lease(1, f[2])));
        assert_eq!(lease_of(&o.result).state, st(f[3]), "{row}");
        assert!(o.breaks.is_empty(), "{row}");
    }
}

/// smb2.lease.break: held, requested, held broken to, granted.
#[test]
fn lease_break_table() {
    let table = "R/R/R/R R/RH/R/RH R/RW/R/R R/RHW/R/RH RH/R/RH/R RH/RH/RH/RH RH/RW/RH/R RH/RHW/RH/RH \
                 RW/R/R/R RW/RH/R/RH RW/RW/R/R RW/RHW/R/RH RHW/R/RH/R RHW/RH/RH/RH RHW/RW/RH/R RHW/RHW/RH/RH";
    for row in table.split_whitespace() {
        let f: Vec<&str> = row.split('/').collect();
        let mut t = T::new();
        t.open(req(lease(1, f[0])));
        let (_, res, breaks) = t.open_acked(req(lease(2, f[1])));
        assert_eq!(lease_of(&res).state, st(f[3]), "{row}");
        let want: Vec<_> = if f[0] == f[2] {
            vec![]
        } else {
            vec![(1, st(f[0]), st(f[2]))]
        };
        assert_eq!(lease_breaks(&breaks), want, "{row}");
        // Asking for RHW again leaves the broken state, without a break.
        let (_, o) = t.open(req(lease(1, "RHW")));
        assert_eq!(lease_of(&o.result).state, st(f[2]), "{row}");
        assert!(o.breaks.is_empty());
    }
}

/// smb2.lease.oplock: leases held against oplock requests, and the
/// reverse (`oplock_results`, `oplock_results_2`).
#[test]
fn lease_oplock_tables() {
    let ol = |c: &str| match c {
        "s" => level::II,
        "x" => level::EXCLUSIVE,
        "b" => level::BATCH,
        _ => level::NONE,
    };
    let held_lease = "R/s/R/s R/x/R/s R/b/R/s RH/s/RH/- RH/x/RH/- RH/b/RH/- RW/s/R/s RW/x/R/s RW/b/R/s \
                      RHW/s/RH/- RHW/x/RH/- RHW/b/RH/-";
    for row in held_lease.split_whitespace() {
        let f: Vec<&str> = row.split('/').collect();
        let mut t = T::new();
        t.open(req(lease(1, f[0])));
        let (_, res, b) = t.open_acked(req(oplock(ol(f[1]))));
        assert_eq!(granted(&res).oplock_level(), ol(f[3]), "{row}");
        let want: Vec<_> = if f[0] == f[2] {
            vec![]
        } else {
            vec![(1, st(f[0]), st(f[2]))]
        };
        assert_eq!(lease_breaks(&b), want, "{row}");
    }
    for held in ["s", "x", "b"] {
        for asked in ["R", "RH", "RW", "RHW"] {
            let mut t = T::new();
            let (h1, _) = t.open(req(oplock(ol(held))));
            let (_, res, b) = t.open_acked(req(lease(1, asked)));
            assert_eq!(lease_of(&res).state, Caching::R, "{held}/{asked}");
            let want: Vec<_> = if held == "s" {
                vec![]
            } else {
                vec![(h1, level::II)]
            };
            assert_eq!(oplock_breaks(&b), want, "{held}/{asked}");
        }
    }
}

/// smb2.lease.nobreakself: a write does not break the writer's own lease.
#[test]
fn nobreakself() {
    let mut t = T::new();
    let (h1, o) = t.open(req(lease(1, "R")));
    assert_eq!(lease_of(&o.result).state, st("R"));
    let (h2, o) = t.open(req(lease(2, "R")));
    assert_eq!(lease_of(&o.result).state, st("R"));
    let b = t.s.before_write(h1, 0, 1, t.now).expect("no locks");
    assert_eq!(lease_breaks(&b), vec![(2, st("R"), st(""))]);
    assert!(matches!(
        b[0],
        Break::Lease {
            ack_required: false,
            ..
        }
    ));
    t.open(req(lease(2, "R")));
    let b = t.s.before_write(h2, 0, 1, t.now).expect("no locks");
    assert_eq!(lease_breaks(&b), vec![(1, st("R"), st(""))]);
}

/// smb2.lease.statopen: stat opens keep the lease, a conflicting lease
/// breaks RWH to RH.
#[test]
fn lease_statopen() {
    let mut t = T::new();
    t.open(Req {
        access: STAT,
        ..req(lease(1, "RWH"))
    });
    let (_, o) = t.open(req(lease(1, "")));
    assert_eq!(lease_of(&o.result).state, st("RWH"));
    assert!(o.breaks.is_empty());
    let (_, res, b) = t.open_acked(req(lease(2, "RWH")));
    assert_eq!(lease_of(&res).state, st("RH"));
    assert_eq!(lease_breaks(&b), vec![(1, st("RWH"), st("RH"))]);
    // statopen3: a plain stat open does not stop an RWH lease.
    let mut t = T::new();
    t.open(Req {
        access: FILE_READ_ATTRIBUTES,
        ..req(CacheRequest::None)
    });
    let (_, o) = t.open(Req {
        access: FILE_WRITE_DATA,
        ..req(lease(1, "RWH"))
    });
    assert_eq!(lease_of(&o.result).state, st("RWH"));
}

/// smb2.lease.multibreak: one break per lease, however many opens use it.
#[test]
fn multibreak() {
    let mut t = T::new();
    t.open(req(lease(1, "RH")));
    let (_, o) = t.open(req(lease(1, "RHW")));
    assert_eq!(lease_of(&o.result).state, st("RHW"));
    let (_, res, b) = t.open_acked(req(lease(2, "RHW")));
    assert_eq!(lease_of(&res).state, st("RH"));
    assert_eq!(lease_breaks(&b), vec![(1, st("RHW"), st("RH"))]);
    if let Break::Lease { opens, .. } = &b[0] {
        assert_eq!(opens.len(), 2);
    }
}

/// smb2.lease.breaking1: the conflicting open waits; the lease owner may
/// still open (BREAK_IN_PROGRESS); the ack releases the waiter.
#[test]
fn breaking1() {
    let mut t = T::new();
    t.open(req(lease(1, "RWH")));
    let (h2, o) = t.open(req(CacheRequest::None));
    assert_eq!(o.result, OpenResult::Wait);
    assert_eq!(lease_breaks(&o.breaks), vec![(1, st("RWH"), st("RH"))]);
    let (_, o) = t.open(req(lease(1, "RWH")));
    let g = lease_of(&o.result);
    assert_eq!(
        (g.state, g.flags),
        (st("RWH"), LEASE_FLAG_BREAK_IN_PROGRESS)
    );
    assert!(o.breaks.is_empty());
    let ack = t.s.lease_ack(&lid(1), st("RH"), t.now).expect("ack");
    assert_eq!(
        (ack.state, ack.breaks.len(), ack.retry),
        (st("RH"), 0, vec![h2.0])
    );
    let o = t.attempt(h2, &req(CacheRequest::None), false);
    assert_eq!(granted(&o.result), CacheGrant::None);
}

/// smb2.lease.breaking2: an overwrite breaks to none; acks with more than
/// offered are REQUEST_NOT_ACCEPTED, a second ack UNSUCCESSFUL.
#[test]
fn breaking2() {
    let mut t = T::new();
    t.open(req(lease(1, "RWH")));
    let (h2, o) = t.open(Req {
        overwrite: true,
        ..req(CacheRequest::None)
    });
    assert_eq!(o.result, OpenResult::Wait);
    assert_eq!(lease_breaks(&o.breaks), vec![(1, st("RWH"), st(""))]);
    for bad in ["RWH", "RW", "WH", "RH", "W", "H", "R"] {
        assert_eq!(
            t.s.lease_ack(&lid(1), st(bad), t.now),
            Err(NtStatus::REQUEST_NOT_ACCEPTED),
            "{bad}"
        );
    }
    let ack = t.s.lease_ack(&lid(1), st(""), t.now).expect("ack");
    assert_eq!(ack.retry, vec![h2.0]);
    assert_eq!(
        t.s.lease_ack(&lid(1), st(""), t.now),
        Err(NtStatus::UNSUCCESSFUL)
    );
    let o = t.attempt(
        h2,
        &Req {
            overwrite: true,
            ..req(CacheRequest::None)
        },
        false,
    );
    assert_eq!(granted(&o.result), CacheGrant::None);
    assert_eq!(t.lease_state(1), Some(st("")));
}

/// smb2.lease.breaking3: a second conflicting open during a break lowers
/// the target without a new break; the client is then walked down RH, R,
/// none, and both waiters proceed.
#[test]
fn breaking3() {
    let mut t = T::new();
    t.open(req(lease(1, "RWH")));
    let (h2, o) = t.open(req(CacheRequest::None));
    assert_eq!(lease_breaks(&o.breaks), vec![(1, st("RWH"), st("RH"))]);
    let (h3, o) = t.open(Req {
        overwrite: true,
        ..req(CacheRequest::None)
    });
    assert_eq!(o.result, OpenResult::Wait);
    assert!(o.breaks.is_empty());
    let ack = t.s.lease_ack(&lid(1), st("RH"), t.now).expect("ack");
    assert_eq!(lease_breaks(&ack.breaks), vec![(1, st("RH"), st("R"))]);
    let mut retry = ack.retry;
    retry.sort_unstable();
    assert_eq!(retry, vec![h2.0, h3.0]);
    assert_eq!(
        t.attempt(h2, &req(CacheRequest::None), false).result,
        OpenResult::Wait
    );
    let r3 = Req {
        overwrite: true,
        ..req(CacheRequest::None)
    };
    assert_eq!(t.attempt(h3, &r3, false).result, OpenResult::Wait);
    let (_, o) = t.open(req(lease(1, "RWH")));
    let g = lease_of(&o.result);
    assert_eq!((g.state, g.flags), (st("RH"), LEASE_FLAG_BREAK_IN_PROGRESS));
    let ack = t.s.lease_ack(&lid(1), st("R"), t.now).expect("ack");
    assert_eq!(lease_breaks(&ack.breaks), vec![(1, st("R"), st(""))]);
    assert!(matches!(
        ack.breaks[0],
        Break::Lease {
            ack_required: false,
            ..
        }
    ));
    assert_eq!(
        granted(&t.attempt(h2, &req(CacheRequest::None), false).result),
        CacheGrant::None
    );
    assert_eq!(granted(&t.attempt(h3, &r3, false).result), CacheGrant::None);
}

/// smb2.lease.breaking4/5: breaking RH or R leases does not block opens.
#[test]
fn breaking4_and_5() {
    let mut t = T::new();
    t.open(req(lease(1, "RH")));
    let ow = Req {
        overwrite: true,
        ..req(CacheRequest::None)
    };
    let (_, o) = t.open(ow);
    assert_eq!(granted(&o.result), CacheGrant::None);
    assert_eq!(lease_breaks(&o.breaks), vec![(1, st("RH"), st(""))]);
    let (_, o) = t.open(ow);
    assert_eq!(
        granted(&o.result),
        CacheGrant::None,
        "not blocked while breaking"
    );
    assert!(o.breaks.is_empty());
    let (_, o) = t.open(req(lease(1, "")));
    let g = lease_of(&o.result);
    assert_eq!((g.state, g.flags), (st("RH"), LEASE_FLAG_BREAK_IN_PROGRESS));
    assert_eq!(
        t.s.lease_ack(&lid(1), st(""), t.now).map(|a| a.state),
        Ok(st(""))
    );

    let mut t = T::new();
    t.open(req(lease(1, "R")));
    let (_, o) = t.open(ow);
    assert_eq!(granted(&o.result), CacheGrant::None);
    assert_eq!(lease_breaks(&o.breaks), vec![(1, st("R"), st(""))]);
    let (_, o) = t.open(req(lease(1, "")));
    assert_eq!(lease_of(&o.result).flags, 0);
    assert_eq!(
        t.s.lease_ack(&lid(1), st(""), t.now),
        Err(NtStatus::UNSUCCESSFUL)
    );
}

/// smb2.lease.breaking6: asked to go to RH, the client may go to none.
#[test]
fn breaking6() {
    let mut t = T::new();
    t.open(req(lease(1, "RWH")));
    let (h2, _) = t.open(req(CacheRequest::None));
    let ack = t.s.lease_ack(&lid(1), st(""), t.now).expect("ack");
    assert_eq!((ack.state, ack.retry), (st(""), vec![h2.0]));
    assert!(ack.breaks.is_empty());
}

/// smb2.lease.v2_epoch1/2/3: epochs, and the version chosen at creation.
#[test]
fn v2_epochs() {
    let mut t = T::new();
    let (h, o) = t.open(req(lease_v2(1, "RHW", 0x4711)));
    let g = lease_of(&o.result);
    assert_eq!((g.state, g.epoch, g.v2), (st("RWH"), 0x4712, true));
    t.s.close(h);
    let (_, o) = t.open(req(lease_v2(1, "RHW", 0x11)));
    assert_eq!(
        lease_of(&o.result).epoch,
        0x12,
        "a new lease after the last close"
    );

    let mut t = T::new();
    let (_, o) = t.open(req(lease_v2(1, "R", 0x4711)));
    assert_eq!(lease_of(&o.result).epoch, 0x4712);
    let (_, o) = t.open(req(lease(1, "RH")));
    let g = lease_of(&o.result);
    assert_eq!((g.state, g.v2, g.epoch), (st("RH"), true, 0x4713));
    let (_, o) = t.open(req(lease_v2(1, "RHW", 0x11)));
    assert_eq!(lease_of(&o.result).epoch, 0x4714);
    let (_, o) = t.open(req(CacheRequest::None));
    match &o.breaks[..] {
        [
            Break::Lease {
                from, to, epoch, ..
            },
        ] => assert_eq!((*from, *to, *epoch), (st("RWH"), st("RH"), 0x4715)),
        other => panic!("{other:?}"),
    }

    let mut t = T::new();
    t.open(req(lease(1, "R")));
    let (_, o) = t.open(req(lease_v2(1, "RW", 0x4711)));
    let g = lease_of(&o.result);
    assert_eq!((g.state, g.v2, g.epoch), (st("RW"), false, 0));
}

/// smb2.lease.lock1: a byte-range lock breaks other leases' read caching
/// to none but keeps the locker's.
#[test]
fn lease_lock1() {
    let mut t = T::new();
    let (h1, _) = t.open(req(lease(1, "RWH")));
    let (_, res, b) = t.open_acked(req(lease(2, "RWH")));
    assert_eq!(lease_of(&res).state, st("RH"));
    assert_eq!(lease_breaks(&b), vec![(1, st("RWH"), st("RH"))]);
    let (h3, o) = t.open(req(lease(3, "RWH")));
    assert_eq!(lease_of(&o.result).state, st("RH"));
    assert!(o.breaks.is_empty());
    let b = lock_one(&mut t, h1, 0);
    assert_eq!(
        lease_breaks(&b),
        vec![(2, st("RH"), st("")), (3, st("RH"), st(""))]
    );
    for x in &b {
        t.ack(x);
    }
    assert_eq!(
        (t.lease_state(1), t.lease_state(2), t.lease_state(3)),
        (Some(st("RH")), Some(st("")), Some(st("")))
    );
    let b = lock_one(&mut t, h3, 100);
    assert_eq!(lease_breaks(&b), vec![(1, st("RH"), st(""))]);
}

/// smb2.lease.lock2: locks beyond the allocation size don't matter.
#[test]
fn locks_beyond_allocation() {
    let mut t = T::new();
    let (h1, _) = t.open(req(lease(1, "RWH")));
    let els = [LockElement {
        offset: 0,
        length: 1,
        flags: LOCKFLAG_EXCLUSIVE | LOCKFLAG_FAIL_IMMEDIATELY,
    }];
    let r = LockRequest {
        elements: &els,
        lock_sequence: 0,
        check_sequence: false,
        token: 0,
    };
    let (reply, b) = t.s.lock(h1, &r, 0, t.now);
    assert_eq!((reply.status, b.len()), (Some(NtStatus::SUCCESS), 0));
    let or = OpenRequest {
        open: OpenId(50),
        access: FILE_ALL_ACCESS,
        share: SHARE_ALL,
        overwrite: false,
        created: false,
        is_directory: false,
        delete_on_close: false,
        allocation_size: 0,
        request: lease(2, "RWH"),
        token: 50,
        first_attempt: true,
    };
    let o = t.s.begin_open(&or, t.now);
    assert_eq!(o.result, OpenResult::Wait);
    t.ack(&o.breaks[0]);
    let o = t.s.begin_open(
        &OpenRequest {
            first_attempt: false,
            ..or
        },
        t.now,
    );
    assert_eq!(lease_of(&o.result).state, st("RH"));
    // With the lock inside the allocation, no read caching is granted.
    let o = t.s.begin_open(
        &OpenRequest {
            open: OpenId(51),
            allocation_size: 4096,
            request: lease(3, "RH"),
            ..or
        },
        t.now,
    );
    assert_eq!(lease_of(&o.result).state, st(""));
}

/// A lease break nobody acknowledges times out to none.
#[test]
fn lease_timeout() {
    let mut t = T::new();
    t.open(req(lease(1, "RWH")));
    let (h2, o) = t.open(req(CacheRequest::None));
    assert_eq!(o.result, OpenResult::Wait);
    assert_eq!(t.s.on_timer(t.now + BREAK_TIMEOUT), vec![h2.0]);
    assert_eq!(t.lease_state(1), Some(st("")));
    assert_eq!(
        granted(&t.attempt(h2, &req(CacheRequest::None), false).result),
        CacheGrant::None
    );
}

/// Closing the last open of a lease releases it for the LeaseDirectory.
#[test]
fn close_releases_lease() {
    let mut t = T::new();
    let (a, _) = t.open(req(lease(1, "RH")));
    let (b, _) = t.open(req(lease(1, "RH")));
    assert_eq!(t.s.close(a).released_lease, None);
    assert_eq!(t.s.close(b).released_lease, Some(lid(1)));
    assert!(t.s.is_idle());
}

/// Directory leases: changes inside the directory break them to none,
/// except the lease named as parent key by the open that made the change.
#[test]
fn parent_directory_leases() {
    let mut t = T::new();
    t.open(Req {
        dir: true,
        ..req(lease(1, "RH"))
    });
    t.open(Req {
        dir: true,
        ..req(lease(2, "RH"))
    });
    let b =
        t.s.cache
            .break_parent_leases(Some(LeaseKey([1; 16])), t.now);
    assert_eq!(lease_breaks(&b), vec![(2, st("RH"), st(""))]);
}

/// Rename/delete of a file: other clients lose handle caching and the
/// operation waits for them.
#[test]
fn rename_breaks_handle_caching() {
    let mut t = T::new();
    t.open(req(lease(1, "RH")));
    t.open(req(lease(2, "RH")));
    let (b, wait) = t.s.cache.break_handle_caching(Some(lid(1)), t.now);
    assert!(wait);
    assert_eq!(lease_breaks(&b), vec![(2, st("RH"), st("R"))]);
}

/// A cancelled CREATE leaves the park.
#[test]
fn unpark() {
    let mut t = T::new();
    t.open(req(oplock(level::BATCH)));
    let (h2, o) = t.open(req(CacheRequest::None));
    assert_eq!(o.result, OpenResult::Wait);
    assert!(t.s.unpark(h2.0));
    assert!(!t.s.unpark(h2.0));
}

impl Req {
    fn with_share(self, share: u32) -> Self {
        Req { share, ..self }
    }
}

// ---- model-free invariants under random traffic ----------------------------

use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Op {
    Open {
        access: u8,
        request: u8,
        overwrite: bool,
        share_all: bool,
    },
    Close(usize),
    AckAll,
    Write(usize),
    Timeout,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u8..3, 0u8..10, any::<bool>(), any::<bool>())
            .prop_map(|(access, request, overwrite, share_all)| Op::Open { access, request, overwrite, share_all }),
        2 => (0usize..8).prop_map(Op::Close),
        2 => Just(Op::AckAll),
        1 => (0usize..8).prop_map(Op::Write),
        1 => Just(Op::Timeout),
    ]
}

fn caching_of(g: CacheGrant) -> Caching {
    match g {
        CacheGrant::None => Caching::NONE,
        CacheGrant::Oplock(l) => Caching::from_oplock(l),
        CacheGrant::Lease(l) => l.state,
    }
}

proptest! {
    /// Write caching is exclusive: a holder with W that is not breaking
    /// shares the stream only with stat opens and opens of its own lease.
    /// Every parked CREATE is released once everything is closed.
    #[test]
    fn write_caching_is_exclusive(ops in proptest::collection::vec(op(), 1..60)) {
        let mut t = T::new();
        let mut open: Vec<(OpenId, u32, Option<LeaseId>)> = Vec::new();
        let mut parked: Vec<(OpenId, Req)> = Vec::new();
        let mut pending_breaks: Vec<Break> = Vec::new();
        for op in ops {
            let mut retry = Vec::new();
            match op {
                Op::Open { access, request, overwrite, share_all } => {
                    let access = [STAT, FILE_READ_DATA, FILE_ALL_ACCESS][usize::from(access)];
                    let request = match request {
                        0 => CacheRequest::None,
                        1 => oplock(level::II),
                        2 => oplock(level::EXCLUSIVE),
                        3 => oplock(level::BATCH),
                        n => lease(n % 3, ["R", "RH", "RW", "RWH"][usize::from(n % 4)]),
                    };
                    let r = Req { access, overwrite, share: if share_all { SHARE_ALL } else { FILE_SHARE_READ }, ..req(request) };
                    let (id, o) = t.open(r);
                    pending_breaks.extend(o.breaks);
                    match o.result {
                        OpenResult::Granted(_) => {
                            let l = match request { CacheRequest::Lease(l) => Some(l.id), _ => None };
                            open.push((id, access, l));
                        }
                        OpenResult::Wait => parked.push((id, r)),
                        OpenResult::Failed(_) => {}
                    }
                }
                Op::Close(i) => {
                    if i < open.len() {
                        let (id, _, _) = open.remove(i);
                        retry.extend(t.s.close(id).retry);
                    }
                }
                Op::AckAll => {
                    for b in std::mem::take(&mut pending_breaks) {
                        if let Break::Oplock { open: o, level, ack_required: true } = b
                            && let Ok((_, r)) = t.s.oplock_ack(o, level)
                        {
                            retry.extend(r);
                        }
                        if let Break::Lease { id, to, ack_required: true, .. } = b
                            && let Ok(a) = t.s.lease_ack(&id, to, t.now)
                        {
                            retry.extend(a.retry);
                            pending_breaks.extend(a.breaks);
                        }
                    }
                }
                Op::Write(i) => {
                    if let Some(&(id, access, _)) = open.get(i)
                        && access & FILE_WRITE_DATA != 0
                    {
                        pending_breaks.extend(t.s.before_write(id, 0, 1, t.now).expect("no locks"));
                    }
                }
                Op::Timeout => {
                    t.now += BREAK_TIMEOUT;
                    retry.extend(t.s.on_timer(t.now));
                }
            }
            for tok in retry {
                if let Some(pos) = parked.iter().position(|p| p.0 .0 == tok) {
                    let (id, r) = parked.remove(pos);
                    let o = t.attempt(id, &r, false);
                    pending_breaks.extend(o.breaks);
                    match o.result {
                        OpenResult::Granted(_) => {
                            let l = match r.request { CacheRequest::Lease(l) => Some(l.id), _ => None };
                            open.push((id, r.access, l));
                        }
                        OpenResult::Wait => parked.push((id, r)),
                        OpenResult::Failed(_) => {}
                    }
                }
            }
            for &(id, _, lease_id) in &open {
                let c = caching_of(t.s.cache.grant_of(id));
                if c.contains(Caching::W) && !t.s.cache.is_breaking(id) {
                    for &(other, access, l2) in &open {
                        let same = other == id || (lease_id.is_some() && l2 == lease_id);
                        prop_assert!(same || crate::engine::fsa::oplock::is_oplock_stat_open(access),
                            "{id:?} caches writes next to {other:?}");
                    }
                }
            }
        }
        // Once every granted open is closed nothing is left to wait for.
        for (id, _, _) in open {
            t.s.close(id);
        }
        for (pid, r) in parked {
            let o = t.attempt(pid, &r, false);
            prop_assert!(o.result != OpenResult::Wait, "{pid:?} still waits");
            t.s.close(pid);
        }
        prop_assert!(t.s.is_idle());
    }
}
