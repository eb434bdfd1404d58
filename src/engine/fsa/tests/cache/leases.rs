//! smbtorture `smb2.lease.*` (source4/torture/smb2/lease.c).

use super::harness::*;
use crate::engine::fsa::access::*;
use crate::engine::fsa::lease::*;
use crate::engine::fsa::locks::{LOCKFLAG_EXCLUSIVE, LOCKFLAG_FAIL_IMMEDIATELY, LockRequest};
use crate::engine::fsa::stream::*;
use crate::engine::fsa::{FileKey, OpenId};
use crate::types::{NodeId, OrgId};
use crate::wire::NtStatus;
use crate::wire::lock::LockElement;

// ---- leases ---------------------------------------------------------------

/// smb2.lease.request: which requested states are granted.
#[test]
fn lease_request_table() {
    for (asked, want) in
        [("", ""), ("R", "R"), ("H", ""), ("W", ""), ("RH", "RH"), ("RW", "RW"), ("HW", ""), ("RHW", "RHW")]
    {
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
    let (_, o) = t.open(Req { dir: true, ..req(lease(1, "RWH")) });
    assert_eq!(lease_of(&o.result).state, st("RH"));
    let mut t = T::new();
    let (_, o) = t.open(Req { dir: true, ..req(oplock(level::BATCH)) });
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
        let want: Vec<_> = if f[0] == f[2] { vec![] } else { vec![(1, st(f[0]), st(f[2]))] };
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
        let want: Vec<_> = if f[0] == f[2] { vec![] } else { vec![(1, st(f[0]), st(f[2]))] };
        assert_eq!(lease_breaks(&b), want, "{row}");
    }
    for held in ["s", "x", "b"] {
        for asked in ["R", "RH", "RW", "RHW"] {
            let mut t = T::new();
            let (h1, _) = t.open(req(oplock(ol(held))));
            let (_, res, b) = t.open_acked(req(lease(1, asked)));
            assert_eq!(lease_of(&res).state, Caching::R, "{held}/{asked}");
            let want: Vec<_> = if held == "s" { vec![] } else { vec![(h1, level::II)] };
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
    assert!(matches!(b[0], Break::Lease { ack_required: false, .. }));
    t.open(req(lease(2, "R")));
    let b = t.s.before_write(h2, 0, 1, t.now).expect("no locks");
    assert_eq!(lease_breaks(&b), vec![(1, st("R"), st(""))]);
}

/// smb2.lease.statopen: stat opens keep the lease, a conflicting lease
/// breaks RWH to RH.
#[test]
fn lease_statopen() {
    let mut t = T::new();
    t.open(Req { access: STAT, ..req(lease(1, "RWH")) });
    let (_, o) = t.open(req(lease(1, "")));
    assert_eq!(lease_of(&o.result).state, st("RWH"));
    assert!(o.breaks.is_empty());
    let (_, res, b) = t.open_acked(req(lease(2, "RWH")));
    assert_eq!(lease_of(&res).state, st("RH"));
    assert_eq!(lease_breaks(&b), vec![(1, st("RWH"), st("RH"))]);
    // statopen3: a plain stat open does not stop an RWH lease.
    let mut t = T::new();
    t.open(Req { access: FILE_READ_ATTRIBUTES, ..req(CacheRequest::None) });
    let (_, o) = t.open(Req { access: FILE_WRITE_DATA, ..req(lease(1, "RWH")) });
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
    assert_eq!((g.state, g.flags), (st("RWH"), LEASE_FLAG_BREAK_IN_PROGRESS));
    assert!(o.breaks.is_empty());
    let ack = t.s.lease_ack(&lid(1), st("RH"), t.now).expect("ack");
    assert_eq!((ack.state, ack.breaks.len(), ack.retry), (st("RH"), 0, vec![h2.0]));
    let o = t.attempt(h2, &req(CacheRequest::None), false);
    assert_eq!(granted(&o.result), CacheGrant::None);
}

/// smb2.lease.breaking2: an overwrite breaks to none; acks with more than
/// offered are REQUEST_NOT_ACCEPTED, a second ack UNSUCCESSFUL.
#[test]
fn breaking2() {
    let mut t = T::new();
    t.open(req(lease(1, "RWH")));
    let (h2, o) = t.open(Req { overwrite: true, ..req(CacheRequest::None) });
    assert_eq!(o.result, OpenResult::Wait);
    assert_eq!(lease_breaks(&o.breaks), vec![(1, st("RWH"), st(""))]);
    for bad in ["RWH", "RW", "WH", "RH", "W", "H", "R"] {
        assert_eq!(t.s.lease_ack(&lid(1), st(bad), t.now), Err(NtStatus::REQUEST_NOT_ACCEPTED), "{bad}");
    }
    let ack = t.s.lease_ack(&lid(1), st(""), t.now).expect("ack");
    assert_eq!(ack.retry, vec![h2.0]);
    assert_eq!(t.s.lease_ack(&lid(1), st(""), t.now), Err(NtStatus::UNSUCCESSFUL));
    let o = t.attempt(h2, &Req { overwrite: true, ..req(CacheRequest::None) }, false);
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
    let (h3, o) = t.open(Req { overwrite: true, ..req(CacheRequest::None) });
    assert_eq!(o.result, OpenResult::Wait);
    assert!(o.breaks.is_empty());
    let ack = t.s.lease_ack(&lid(1), st("RH"), t.now).expect("ack");
    assert_eq!(lease_breaks(&ack.breaks), vec![(1, st("RH"), st("R"))]);
    let mut retry = ack.retry;
    retry.sort_unstable();
    assert_eq!(retry, vec![h2.0, h3.0]);
    assert_eq!(t.attempt(h2, &req(CacheRequest::None), false).result, OpenResult::Wait);
    let r3 = Req { overwrite: true, ..req(CacheRequest::None) };
    assert_eq!(t.attempt(h3, &r3, false).result, OpenResult::Wait);
    let (_, o) = t.open(req(lease(1, "RWH")));
    let g = lease_of(&o.result);
    assert_eq!((g.state, g.flags), (st("RH"), LEASE_FLAG_BREAK_IN_PROGRESS));
    let ack = t.s.lease_ack(&lid(1), st("R"), t.now).expect("ack");
    assert_eq!(lease_breaks(&ack.breaks), vec![(1, st("R"), st(""))]);
    assert!(matches!(ack.breaks[0], Break::Lease { ack_required: false, .. }));
    assert_eq!(granted(&t.attempt(h2, &req(CacheRequest::None), false).result), CacheGrant::None);
    assert_eq!(granted(&t.attempt(h3, &r3, false).result), CacheGrant::None);
}

/// smb2.lease.breaking4/5: breaking RH or R leases does not block opens.
#[test]
fn breaking4_and_5() {
    let mut t = T::new();
    t.open(req(lease(1, "RH")));
    let ow = Req { overwrite: true, ..req(CacheRequest::None) };
    let (_, o) = t.open(ow);
    assert_eq!(granted(&o.result), CacheGrant::None);
    assert_eq!(lease_breaks(&o.breaks), vec![(1, st("RH"), st(""))]);
    let (_, o) = t.open(ow);
    assert_eq!(granted(&o.result), CacheGrant::None, "not blocked while breaking");
    assert!(o.breaks.is_empty());
    let (_, o) = t.open(req(lease(1, "")));
    let g = lease_of(&o.result);
    assert_eq!((g.state, g.flags), (st("RH"), LEASE_FLAG_BREAK_IN_PROGRESS));
    assert_eq!(t.s.lease_ack(&lid(1), st(""), t.now).map(|a| a.state), Ok(st("")));

    let mut t = T::new();
    t.open(req(lease(1, "R")));
    let (_, o) = t.open(ow);
    assert_eq!(granted(&o.result), CacheGrant::None);
    assert_eq!(lease_breaks(&o.breaks), vec![(1, st("R"), st(""))]);
    let (_, o) = t.open(req(lease(1, "")));
    assert_eq!(lease_of(&o.result).flags, 0);
    assert_eq!(t.s.lease_ack(&lid(1), st(""), t.now), Err(NtStatus::UNSUCCESSFUL));
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
    assert_eq!(lease_of(&o.result).epoch, 0x12, "a new lease after the last close");

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
        [Break::Lease { from, to, epoch, .. }] => assert_eq!((*from, *to, *epoch), (st("RWH"), st("RH"), 0x4715)),
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
    assert_eq!(lease_breaks(&b), vec![(2, st("RH"), st("")), (3, st("RH"), st(""))]);
    for x in &b {
        t.ack(x);
    }
    assert_eq!((t.lease_state(1), t.lease_state(2), t.lease_state(3)), (Some(st("RH")), Some(st("")), Some(st(""))));
    let b = lock_one(&mut t, h3, 100);
    assert_eq!(lease_breaks(&b), vec![(1, st("RH"), st(""))]);
}

/// smb2.lease.lock2: locks beyond the allocation size don't matter.
#[test]
fn locks_beyond_allocation() {
    let mut t = T::new();
    let (h1, _) = t.open(req(lease(1, "RWH")));
    let els = [LockElement { offset: 0, length: 1, flags: LOCKFLAG_EXCLUSIVE | LOCKFLAG_FAIL_IMMEDIATELY }];
    let r = LockRequest { elements: &els, lock_sequence: 0, check_sequence: false, token: 0, max_held: usize::MAX };
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
    let o = t.s.begin_open(&OpenRequest { first_attempt: false, ..or }, t.now);
    assert_eq!(lease_of(&o.result).state, st("RH"));
    // With the lock inside the allocation, no read caching is granted.
    let o =
        t.s.begin_open(&OpenRequest { open: OpenId(51), allocation_size: 4096, request: lease(3, "RH"), ..or }, t.now);
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
    assert_eq!(granted(&t.attempt(h2, &req(CacheRequest::None), false).result), CacheGrant::None);
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
    t.open(Req { dir: true, ..req(lease(1, "RH")) });
    t.open(Req { dir: true, ..req(lease(2, "RH")) });
    let b = t.s.cache.break_parent_leases(Some(LeaseKey([1; 16])), t.now);
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

/// smb2.lease.break_twice: a sharing violation breaks only H (and then
/// fails), a later compatible open breaks W.
#[test]
fn break_twice() {
    let mut t = T::new();
    let (_, o) = t.open(req(lease_v2(1, "RWH", 0x11)));
    assert_eq!(lease_of(&o.result).epoch, 0x12);
    let r = Req { share: crate::engine::fsa::sharing::FILE_SHARE_READ, ..req(lease_v2(2, "RWH", 0x22)) };
    let (_, res, b) = t.open_acked(r);
    assert_eq!(res, OpenResult::Failed(NtStatus::SHARING_VIOLATION));
    match &b[..] {
        [Break::Lease { from, to, epoch, .. }] => assert_eq!((*from, *to, *epoch), (st("RWH"), st("RW"), 0x13)),
        other => panic!("{other:?}"),
    }
    let (_, res, b) = t.open_acked(req(lease_v2(2, "RWH", 0x22)));
    let g = lease_of(&res);
    assert_eq!((g.state, g.epoch), (st("RH"), 0x23));
    match &b[..] {
        [Break::Lease { from, to, epoch, .. }] => assert_eq!((*from, *to, *epoch), (st("RW"), st("R"), 0x14)),
        other => panic!("{other:?}"),
    }
}

/// smb2.lease.timeout: the waiting open proceeds after the timeout, a late
/// ack is UNSUCCESSFUL, and the timed-out lease is NONE but usable.
#[test]
fn lease_timeout_sequence() {
    let mut t = T::new();
    let (h1, _) = t.open(req(lease(1, "RWH")));
    let (h2, o) = t.open(req(lease(2, "RWH")));
    assert_eq!(o.result, OpenResult::Wait);
    assert_eq!(lease_breaks(&o.breaks), vec![(1, st("RWH"), st("RH"))]);
    t.now += BREAK_TIMEOUT;
    assert_eq!(t.s.on_timer(t.now), vec![h2.0]);
    let o = t.attempt(h2, &req(lease(2, "RWH")), false);
    assert_eq!(lease_of(&o.result).state, st("RH"));
    assert_eq!(t.s.lease_ack(&lid(1), st("RH"), t.now), Err(NtStatus::UNSUCCESSFUL));
    assert_eq!(t.lease_state(1), Some(st("")));
    let b = t.s.before_write(h1, 0, 1, t.now).expect("no locks");
    assert_eq!(lease_breaks(&b), vec![(2, st("RH"), st(""))]);
    for x in &b {
        t.ack(x);
    }
    assert!(t.s.before_write(h2, 0, 1, t.now).expect("no locks").is_empty());
    let (_, o) = t.open(req(lease(1, "R")));
    assert_eq!(lease_of(&o.result).state, st("R"));
}
