//! smbtorture `smb2.oplock.*` (source4/torture/smb2/oplock.c).

use super::harness::*;
use crate::engine::fsa::access::*;
use crate::engine::fsa::lease::*;
use crate::engine::fsa::sharing::{FILE_SHARE_READ, FILE_SHARE_WRITE};
use crate::engine::fsa::stream::*;
use crate::wire::NtStatus;
use std::time::Duration;

// ---- oplocks --------------------------------------------------------------

/// smb2.oplock.exclusive1: share none + exclusive: SHARING_VIOLATION, no break.
#[test]
fn exclusive1() {
    let mut t = T::new();
    let r = Req { share: 0, ..req(oplock(level::EXCLUSIVE)) };
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
        t.open(Req { share: 0, ..req(oplock(held)) });
        let (_, o) = t.open(Req { access: STAT, share: 0, ..req(oplock(level::EXCLUSIVE)) });
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
    let r = Req { access: STAT, overwrite: true, ..req(oplock(level::II)) };
    let (_, res, breaks) = t.open_acked(r);
    assert_eq!(granted(&res), CacheGrant::Oplock(level::II));
    assert_eq!(oplock_breaks(&breaks), vec![(h1, level::NONE)]);
}

/// smb2.oplock.batch5: a batch holder is broken to Level II first, then the
/// open fails with SHARING_VIOLATION.
#[test]
fn batch5() {
    let mut t = T::new();
    let r = Req { share: 0, ..req(oplock(level::BATCH)) };
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
    let r = Req { share: 0, ..req(oplock(level::BATCH)) };
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
    assert_eq!(granted(&o.result), CacheGrant::Oplock(level::II), "third open: no break");
    assert!(o.breaks.is_empty());
    let b = t.s.before_write(h1, 0, 1, t.now).expect("no locks");
    assert_eq!(oplock_breaks(&b), vec![(h1, level::NONE), (h2, level::NONE), (h3, level::NONE)]);
    assert!(b.iter().all(|b| matches!(b, Break::Oplock { ack_required: false, .. })));
    assert!(t.s.before_write(h1, 0, 1, t.now).expect("no locks").is_empty());
}

/// smb2.oplock.batch9: an attribute-only CREATE that creates the file may
/// get a batch oplock.
#[test]
fn batch9_stat_create() {
    let mut t = T::new();
    let (_, o) = t.open(Req { access: STAT, created: true, share: 0, ..req(oplock(level::BATCH)) });
    assert_eq!(granted(&o.result), CacheGrant::Oplock(level::BATCH));
    let (_, o) = t.open(Req { access: STAT, ..req(oplock(level::BATCH)) });
    assert_eq!(granted(&o.result), CacheGrant::None, "batch9a: attribute open, no break");
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
    let (_, res, b) = t.open_acked(Req { access: STAT, overwrite: true, ..req(oplock(level::BATCH)) });
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
    let (_, o) = t.open(Req { access: FILE_READ_DATA, ..req(CacheRequest::None) });
    assert_eq!(o.result, OpenResult::Failed(NtStatus::DELETE_PENDING));
    assert!(o.breaks.is_empty());
}

/// smb2.oplock.brl1/brl3: a byte-range lock breaks the locker's own Level
/// II; smb2.oplock.brl2: not a batch oplock.
#[test]
fn byte_range_lock_breaks_level_two() {
    let mut t = T::new();
    let (h1, _) = t.open(Req { share: FILE_SHARE_READ | FILE_SHARE_WRITE, ..req(oplock(level::BATCH)) });
    assert!(lock_one(&mut t, h1, 0).is_empty(), "brl2");
    let mut t = T::new();
    let (h1, _) = t.open(req(oplock(level::BATCH)));
    t.open_acked(req(CacheRequest::None));
    assert_eq!(oplock_breaks(&lock_one(&mut t, h1, 0)), vec![(h1, level::NONE)]);
}

/// smb2.oplock.levelii500: acknowledging a Level II to none break is a
/// protocol error.
#[test]
fn levelii500() {
    let mut t = T::new();
    let (h1, _) = t.open(req(oplock(level::II)));
    let b = t.s.before_write(h1, 0, 1, t.now).expect("no locks");
    assert_eq!(oplock_breaks(&b), vec![(h1, level::NONE)]);
    assert_eq!(t.s.oplock_ack(h1, level::NONE), Err(NtStatus::INVALID_OPLOCK_PROTOCOL));
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
        let (_, o) = t.open(Req { access, ..req(CacheRequest::None) });
        assert_eq!(o.breaks.is_empty(), stat, "access {access:#x}");
    }
}

/// smb2.oplock.exclusive9: overwriting dispositions break an exclusive
/// oplock to none, the others to Level II; the new open gets Level II.
#[test]
fn exclusive9() {
    for (overwrite, want) in [(true, level::NONE), (false, level::II), (true, level::NONE), (false, level::II)] {
        let mut t = T::new();
        let (h1, o) = t.open(req(oplock(level::EXCLUSIVE)));
        assert_eq!(granted(&o.result), CacheGrant::Oplock(level::EXCLUSIVE));
        let (_, res, b) = t.open_acked(Req { overwrite, ..req(oplock(level::EXCLUSIVE)) });
        assert_eq!(granted(&res), CacheGrant::Oplock(level::II));
        assert_eq!(oplock_breaks(&b), vec![(h1, want)]);
    }
}
