//! Byte-range locks against smbtorture `smb2.lock.*` (source4/torture/smb2/lock.c).

use proptest::prelude::*;

use crate::engine::fsa::OpenId;
use crate::engine::fsa::locks::*;
use crate::wire::NtStatus;
use crate::wire::lock::LockElement;

const H1: OpenId = OpenId(1);
const H2: OpenId = OpenId(2);
const SH: u32 = LOCKFLAG_SHARED;
const EX: u32 = LOCKFLAG_EXCLUSIVE;
const UN: u32 = LOCKFLAG_UNLOCK;
const FI: u32 = LOCKFLAG_FAIL_IMMEDIATELY;
const OK: Option<NtStatus> = Some(NtStatus::SUCCESS);
const NOT_GRANTED: Option<NtStatus> = Some(NtStatus::LOCK_NOT_GRANTED);
const NOT_LOCKED: Option<NtStatus> = Some(NtStatus::RANGE_NOT_LOCKED);
const INVALID: Option<NtStatus> = Some(NtStatus::INVALID_PARAMETER);
const BAD_RANGE: Option<NtStatus> = Some(NtStatus::INVALID_LOCK_RANGE);

fn el(offset: u64, length: u64, flags: u32) -> LockElement {
    LockElement { offset, length, flags }
}

/// One LOCK request; returns the immediate status (None: pending).
fn lock_els(t: &mut ByteRangeLocks, owner: OpenId, els: &[LockElement]) -> Option<NtStatus> {
    lock_tok(t, owner, els, 0).status
}

fn lock_tok(t: &mut ByteRangeLocks, owner: OpenId, els: &[LockElement], token: u64) -> LockReply {
    let req = LockRequest { elements: els, lock_sequence: 0, check_sequence: false, token, max_held: usize::MAX };
    t.smb2_lock(owner, &req)
}

fn lk(t: &mut ByteRangeLocks, owner: OpenId, offset: u64, length: u64, flags: u32) -> Option<NtStatus> {
    lock_els(t, owner, &[el(offset, length, flags)])
}

/// smb2.lock.valid-request
#[test]
fn valid_request() {
    let mut t = ByteRangeLocks::new();
    assert_eq!(lock_els(&mut t, H1, &[]), INVALID, "0 locks");
    assert_eq!(lk(&mut t, H1, 0, 0, 0), INVALID, "flags NONE");
    // >63-bit lock requests
    assert_eq!(lk(&mut t, H1, u64::MAX, u64::MAX, EX | FI), BAD_RANGE);
    assert_eq!(lk(&mut t, H1, u64::MAX, u64::MAX, EX | FI), BAD_RANGE);
    // basic lock stacking: exclusive, then shared twice on the same handle
    let (o, l) = (u64::from(u32::MAX), u64::from(u32::MAX));
    assert_eq!(lk(&mut t, H1, o, l, EX | FI), OK);
    assert_eq!(lk(&mut t, H1, o, l, SH), OK);
    assert_eq!(lk(&mut t, H1, o, l, SH), OK);
    for _ in 0..3 {
        assert_eq!(lk(&mut t, H1, o, l, UN), OK);
    }
    assert_eq!(lk(&mut t, H1, o, l, UN), NOT_LOCKED);
    // flags field permutations
    assert_eq!(lk(&mut t, H1, 1, 1, !0x17), INVALID);
    assert_eq!(lk(&mut t, H1, 1, 1, UN), NOT_LOCKED);
    assert_eq!(lk(&mut t, H1, 1, 1, UN | EX), INVALID);
    assert_eq!(lk(&mut t, H1, 1, 1, UN | SH), INVALID);
    assert_eq!(lk(&mut t, H1, 1, 1, UN | FI), INVALID);
    // two elements
    let two = |f0, f1| [el(9999, 1, f0), el(9999, 1, f1)];
    assert_eq!(lock_els(&mut t, H1, &two(0, UN)), INVALID);
    assert_eq!(lock_els(&mut t, H1, &two(SH | FI, SH)), INVALID);
    assert_eq!(lock_els(&mut t, H1, &two(0, 0)), INVALID);
    assert_eq!(lock_els(&mut t, H1, &two(UN, 0)), NOT_LOCKED);
    for _ in 0..3 {
        assert_eq!(lk(&mut t, H1, 9999, 1, UN), NOT_LOCKED);
    }
    assert_eq!(lk(&mut t, H1, 9999, 1, SH), OK);
    assert_eq!(lk(&mut t, H1, 9999, 1, SH), OK);
    assert_eq!(lock_els(&mut t, H1, &two(UN, UN)), OK);
    assert_eq!(lk(&mut t, H1, 9999, 1, UN), NOT_LOCKED);
}

/// smb2.lock.rw-shared and smb2.lock.rw-exclusive: I/O against locks on
/// [0,100) and [100,200) held by h1.
#[test]
fn read_write_against_locks() {
    for (flags, w1, r1, w2, r2) in [(SH, false, true, false, true), (EX, true, true, false, false)] {
        let mut t = ByteRangeLocks::new();
        assert_eq!(lk(&mut t, H1, 0, 100, flags), OK);
        assert_eq!(lk(&mut t, H1, 100, 100, flags), OK);
        let io = |t: &ByteRangeLocks, h, write| t.check_io(h, 100, 100, write).is_ok();
        assert_eq!(io(&t, H1, true), w1);
        assert_eq!(io(&t, H1, false), r1);
        assert_eq!(io(&t, H2, true), w2);
        assert_eq!(io(&t, H2, false), r2);
        assert_eq!(t.check_io(H2, 100, 100, true), if w2 { Ok(()) } else { Err(NtStatus::FILE_LOCK_CONFLICT) });
        assert_eq!(lk(&mut t, H1, 100, 100, UN), OK);
        assert!(io(&t, H2, true) && io(&t, H2, false));
    }
}

/// smb2.lock.auto-unlock: repeated conflicting requests on the same handle
/// keep failing with LOCK_NOT_GRANTED and never release the lock.
#[test]
fn auto_unlock() {
    let mut t = ByteRangeLocks::new();
    assert_eq!(lk(&mut t, H1, 0, 1, EX | FI), OK);
    for _ in 0..3 {
        assert_eq!(lk(&mut t, H1, 0, 1, EX | FI), NOT_GRANTED);
    }
}

/// smb2.lock.lock: ranges across the whole 64-bit space and two handles.
#[test]
fn lock_ranges() {
    let mut t = ByteRangeLocks::new();
    // 0/0 locks never conflict
    assert_eq!(lk(&mut t, H1, 0, 0, EX | FI), OK);
    assert_eq!(lk(&mut t, H2, 0, 0, EX | FI), OK);
    assert_eq!(lk(&mut t, H1, 0, 0, UN), OK);
    let cases: [(u64, u64); 6] =
        [(0, 1), (0xEEFF_FFFF, 4000), (0xEF00_0000, 4000), ((1 << 63) - 1, 1), (1 << 63, 1), (u64::MAX, 1)];
    for (o, l) in cases {
        assert_eq!(lk(&mut t, H1, o, l, EX | FI), OK, "{o:#x}/{l}");
        assert_eq!(lk(&mut t, H2, o, l, EX | FI), NOT_GRANTED, "{o:#x}/{l}");
        assert_eq!(lk(&mut t, H1, o, l, UN), OK);
        assert_eq!(lk(&mut t, H1, o, l, UN), NOT_LOCKED);
    }
    // max/0: zero-length locks at the top coexist
    assert_eq!(lk(&mut t, H1, u64::MAX, 0, EX | FI), OK);
    assert_eq!(lk(&mut t, H2, u64::MAX, 0, EX | FI), OK);
    assert_eq!(lk(&mut t, H2, u64::MAX, 0, UN), OK);
    assert_eq!(lk(&mut t, H1, u64::MAX, 0, UN), OK);
    assert_eq!(lk(&mut t, H1, u64::MAX, 0, UN), NOT_LOCKED);
    // max/2 reaches past 2^64-1
    assert_eq!(lk(&mut t, H1, u64::MAX, 2, EX | FI), BAD_RANGE);
    // wrong handle unlock
    assert_eq!(lk(&mut t, H1, 10001, 40002, EX | FI), OK);
    assert_eq!(lk(&mut t, H2, 10001, 40002, UN), NOT_LOCKED);
    assert_eq!(lk(&mut t, H1, 10001, 40002, UN), OK);
}

/// smb2.lock.async: a blocking lock pends and is granted on unlock.
#[test]
fn blocking_lock_granted_on_unlock() {
    let mut t = ByteRangeLocks::new();
    assert_eq!(lk(&mut t, H1, 100, 50, EX), OK);
    let r = lock_tok(&mut t, H2, &[el(100, 50, EX)], 77);
    assert_eq!(r.status, None, "second lock pends");
    let r = lock_tok(&mut t, H1, &[el(100, 50, UN)], 1);
    assert_eq!(r.status, OK);
    assert_eq!(r.completed, vec![Completion { token: 77, owner: H2, status: NtStatus::SUCCESS }]);
    assert_eq!(t.count_held_by(H2), 1);
}

/// smb2.lock.cancel: cancel, unlock of a pending lock, close of the
/// waiting handle.
#[test]
fn cancel_unlock_pending_and_close() {
    let mut t = ByteRangeLocks::new();
    assert_eq!(lk(&mut t, H1, 100, 10, EX), OK);
    assert_eq!(lock_tok(&mut t, H2, &[el(100, 10, EX)], 5).status, None);
    let c = t.cancel(5).expect("pending");
    assert_eq!((c.token, c.status), (5, NtStatus::CANCELLED));
    assert!(t.cancel(5).is_none());
    assert_eq!(lk(&mut t, H1, 100, 10, UN), OK);

    // "cancel by unlock": unlocking a range that is only pending
    assert_eq!(lk(&mut t, H1, 100, 10, EX), OK);
    assert_eq!(lock_tok(&mut t, H2, &[el(100, 10, EX)], 6).status, None);
    assert_eq!(lk(&mut t, H2, 100, 10, UN), NOT_LOCKED);
    assert_eq!(t.cancel(6).map(|c| c.status), Some(NtStatus::CANCELLED));
    assert_eq!(lk(&mut t, H1, 100, 10, UN), OK);

    // "cancel by close": the pending reply is RANGE_NOT_LOCKED
    assert_eq!(lk(&mut t, H1, 100, 10, EX), OK);
    assert_eq!(lock_tok(&mut t, H2, &[el(100, 10, EX)], 7).status, None);
    let done = t.close_open(H2);
    assert_eq!(done.len(), 1);
    assert_eq!((done[0].token, done[0].status), (7, NtStatus::RANGE_NOT_LOCKED));
    assert_eq!(lk(&mut t, H1, 100, 10, UN), OK);
}

/// smb2.lock.cancel-tdis / cancel-logoff: closing the holder lets the
/// waiter through.
#[test]
fn close_of_holder_grants_waiter() {
    let mut t = ByteRangeLocks::new();
    assert_eq!(lk(&mut t, H1, 100, 10, EX), OK);
    assert_eq!(lock_tok(&mut t, H2, &[el(100, 10, EX)], 9).status, None);
    let done = t.close_open(H1);
    assert_eq!(done.len(), 1);
    assert_eq!((done[0].owner, done[0].status), (H2, NtStatus::SUCCESS));
}

/// smb2.lock.errorcode: SMB2 always says LOCK_NOT_GRANTED.
#[test]
fn errorcode_always_lock_not_granted() {
    let mut t = ByteRangeLocks::new();
    assert_eq!(lk(&mut t, H1, 100, 10, EX | FI), OK);
    for _ in 0..4 {
        assert_eq!(lk(&mut t, H1, 100, 10, EX | FI), NOT_GRANTED);
        assert_eq!(lk(&mut t, H2, 100, 10, EX | FI), NOT_GRANTED);
    }
    for (o, l) in [(102, 0), (102, 5)] {
        assert_eq!(lk(&mut t, H1, o, l, EX | FI), NOT_GRANTED);
        assert_eq!(lk(&mut t, H2, o, l, EX | FI), NOT_GRANTED);
    }
}

/// smb2.lock.zerobytelength: the table, on one handle and on two.
#[test]
fn zero_byte_length_table() {
    type Range = (u64, u64);
    let table: [(Range, Range, bool); 15] = [
        ((10, 0), (10, 0), true),
        ((10, 0), (9, 1), true),
        ((10, 0), (10, 1), true),
        ((10, 0), (11, 1), true),
        ((10, 0), (9, 2), false),
        ((10, 0), (10, 2), true),
        ((10, 0), (9, 3), false),
        ((10, 0), (10, 0), true),
        ((9, 1), (10, 0), true),
        ((10, 1), (10, 0), true),
        ((11, 1), (10, 0), true),
        ((9, 2), (10, 0), false),
        ((10, 2), (10, 0), true),
        ((9, 3), (10, 0), false),
        ((0, 0), (0, 0), true),
    ];
    for second in [H1, H2] {
        let mut t = ByteRangeLocks::new();
        for ((o1, l1), (o2, l2), ok) in table {
            assert_eq!(lk(&mut t, H1, o1, l1, EX | FI), OK);
            let want = if ok { OK } else { NOT_GRANTED };
            assert_eq!(lk(&mut t, second, o2, l2, EX | FI), want, "{o1}/{l1} + {o2}/{l2}");
            if ok {
                assert_eq!(lk(&mut t, second, o2, l2, UN), OK);
            }
            assert_eq!(lk(&mut t, H1, o1, l1, UN), OK);
        }
    }
}

/// smb2.lock.zerobyteread: zero-byte reads never conflict.
#[test]
fn zero_byte_read() {
    let mut t = ByteRangeLocks::new();
    assert_eq!(lk(&mut t, H1, 0, 10, EX | FI), OK);
    assert_eq!(t.check_io(H2, 5, 0, false), Ok(()));
    assert_eq!(lk(&mut t, H1, 0, 10, UN), OK);
    assert_eq!(lk(&mut t, H1, 5, 0, EX | FI), OK);
    for o in [4, 5, 6] {
        assert_eq!(t.check_io(H2, o, 0, false), Ok(()));
    }
}

/// smb2.lock.unlock
#[test]
fn unlock_rules() {
    let mut t = ByteRangeLocks::new();
    assert_eq!(lk(&mut t, H1, 0, 10, EX), OK);
    assert_eq!(lk(&mut t, H1, 0, 10, SH | UN), INVALID);
    assert_eq!(lk(&mut t, H2, 0, 10, SH | FI), NOT_GRANTED);
    assert_eq!(lk(&mut t, H1, 0, 10, UN), OK);
    assert_eq!(lk(&mut t, H1, 0, 10, SH), OK);
    assert_eq!(lk(&mut t, H1, 0, 10, EX | UN), INVALID);
    assert_eq!(lk(&mut t, H2, 0, 10, EX | FI), NOT_GRANTED);
    assert_eq!(lk(&mut t, H1, 0, 10, UN), OK);
    // stacked exclusive + shared: unlock removes the exclusive first
    for (o1, l1) in [(10, 0), (10, 10)] {
        assert_eq!(lk(&mut t, H1, o1, l1, EX | FI), OK);
        assert_eq!(lk(&mut t, H1, o1, l1, SH | FI), OK);
        assert_eq!(lk(&mut t, H2, 5, 10, EX | FI), NOT_GRANTED);
        assert_eq!(lk(&mut t, H2, 5, 10, SH | FI), NOT_GRANTED);
        assert_eq!(lk(&mut t, H1, o1, l1, UN), OK);
        assert_eq!(lk(&mut t, H2, 5, 10, SH | FI), OK);
        assert_eq!(lk(&mut t, H2, 5, 10, UN), OK);
        assert_eq!(lk(&mut t, H1, o1, l1, UN), OK);
    }
}

/// smb2.lock.multiple-unlock
#[test]
fn multiple_unlock() {
    let mut t = ByteRangeLocks::new();
    let a = |f| el(0, 10, f);
    let b = |f| el(10, 10, f);
    // Test1: hold the second only; unlocking both fails at the first.
    assert_eq!(lock_els(&mut t, H1, &[b(EX | FI)]), OK);
    assert_eq!(lock_els(&mut t, H1, &[a(UN), b(UN)]), NOT_LOCKED);
    assert_eq!(lock_els(&mut t, H1, &[b(EX | FI)]), NOT_GRANTED);
    assert_eq!(lock_els(&mut t, H1, &[b(UN)]), OK);
    // Test2: hold the first only; it is unlocked before the failure.
    assert_eq!(lock_els(&mut t, H1, &[a(EX | FI)]), OK);
    assert_eq!(lock_els(&mut t, H1, &[a(UN), b(UN)]), NOT_LOCKED);
    assert_eq!(lock_els(&mut t, H1, &[a(EX | FI)]), OK);
    assert_eq!(lock_els(&mut t, H1, &[a(UN)]), OK);
    // Test3: two locks, the second contends: the first is rolled back.
    assert_eq!(lock_els(&mut t, H1, &[b(EX | FI)]), OK);
    assert_eq!(lock_els(&mut t, H1, &[a(EX | FI), b(EX | FI)]), NOT_GRANTED);
    assert_eq!(lock_els(&mut t, H1, &[a(EX | FI)]), OK);
    assert_eq!(lock_els(&mut t, H1, &[a(UN), b(UN)]), OK);
    // Test4: unlock then lock in one request: unlock done, lock refused.
    assert_eq!(lock_els(&mut t, H1, &[a(EX | FI), b(EX | FI)]), OK);
    assert_eq!(lock_els(&mut t, H1, &[a(UN), b(EX | FI)]), INVALID);
    assert_eq!(lock_els(&mut t, H1, &[a(EX | FI)]), OK);
    assert_eq!(lock_els(&mut t, H1, &[a(UN), b(UN)]), OK);
    // Test10: same, nothing contending.
    assert_eq!(lock_els(&mut t, H1, &[a(EX | FI)]), OK);
    assert_eq!(lock_els(&mut t, H1, &[a(UN), b(EX | FI)]), INVALID);
    assert_eq!(lock_els(&mut t, H1, &[a(EX | FI), b(EX | FI)]), OK);
    assert_eq!(lock_els(&mut t, H1, &[a(UN), b(UN)]), OK);
    // Test11: lock then unlock in one request: nothing is done.
    assert_eq!(lock_els(&mut t, H1, &[b(EX | FI)]), OK);
    assert_eq!(lock_els(&mut t, H1, &[a(EX | FI), b(UN)]), INVALID);
    assert_eq!(lock_els(&mut t, H1, &[a(EX | FI)]), OK);
    assert_eq!(lock_els(&mut t, H1, &[b(EX | FI)]), NOT_GRANTED);
    assert_eq!(lock_els(&mut t, H1, &[a(UN), b(UN)]), OK);
}

/// smb2.lock.stacking, smb2.lock.contend, smb2.lock.context
#[test]
fn stacking() {
    let mut t = ByteRangeLocks::new();
    let l = |t: &mut ByteRangeLocks, h, f| lk(t, h, 0, 10, f);
    assert_eq!(l(&mut t, H1, SH | FI), OK);
    assert_eq!(l(&mut t, H1, SH | FI), OK);
    assert_eq!(l(&mut t, H1, UN), OK);
    assert_eq!(l(&mut t, H1, UN), OK);
    assert_eq!(l(&mut t, H1, EX | FI), OK);
    assert_eq!(l(&mut t, H1, SH | FI), OK);
    assert_eq!(l(&mut t, H1, SH | FI), OK);
    assert_eq!(l(&mut t, H2, SH | FI), NOT_GRANTED);
    for _ in 0..3 {
        assert_eq!(l(&mut t, H1, UN), OK);
    }
    assert_eq!(l(&mut t, H1, UN), NOT_LOCKED);
    assert_eq!(l(&mut t, H2, SH | FI), OK);
    assert_eq!(l(&mut t, H2, UN), OK);
    // contend: exclusive then shared on another handle
    assert_eq!(l(&mut t, H1, EX | FI), OK);
    assert_eq!(l(&mut t, H2, SH | FI), NOT_GRANTED);
    assert_eq!(l(&mut t, H1, UN), OK);
    // shared then exclusive on the same handle does not stack
    assert_eq!(l(&mut t, H1, SH | FI), OK);
    assert_eq!(l(&mut t, H1, EX | FI), NOT_GRANTED);
    assert_eq!(l(&mut t, H1, UN), OK);
    // two exclusive locks do not stack
    assert_eq!(l(&mut t, H1, EX | FI), OK);
    assert_eq!(l(&mut t, H1, EX | FI), NOT_GRANTED);
    assert_eq!(l(&mut t, H1, UN), OK);
    assert_eq!(l(&mut t, H1, UN), NOT_LOCKED);
}

/// smb2.lock.range: locks spread over the 64-bit space.
#[test]
fn range_spread() {
    let mut t = ByteRangeLocks::new();
    let n = 100u64;
    let step = u64::MAX / n;
    let offsets: Vec<u64> = (1..=n).map(|i| i * step).collect();
    for &o in &offsets {
        assert_eq!(lk(&mut t, H1, o - 1, 1, EX | FI), OK);
        assert_eq!(lk(&mut t, H2, o - 2, 1, EX | FI), OK);
    }
    for &o in &offsets {
        for h in [H1, H2] {
            assert_eq!(lk(&mut t, h, o - 1, 1, EX | FI), NOT_GRANTED);
            assert_eq!(lk(&mut t, h, o - 2, 1, EX | FI), NOT_GRANTED);
        }
    }
    for &o in &offsets {
        assert_eq!(lk(&mut t, H1, o - 1, 1, UN), OK);
        assert_eq!(lk(&mut t, H2, o - 2, 1, UN), OK);
    }
    assert!(t.is_idle());
}

/// smb2.lock.overlap (h3 is another session: same rules as another handle).
#[test]
fn overlap() {
    let mut t = ByteRangeLocks::new();
    let h3 = OpenId(3);
    let both = |_: &mut ByteRangeLocks, a, b| a == OK && b == OK;
    let (x, y) = (lk(&mut t, H1, 0, 4, EX | FI), lk(&mut t, H1, 2, 4, EX | FI));
    assert!(!both(&mut t, x, y));
    let (x, y) = (lk(&mut t, H1, 10, 4, SH | FI), lk(&mut t, H1, 12, 4, SH | FI));
    assert!(both(&mut t, x, y));
    let (x, y) = (lk(&mut t, H1, 20, 4, EX | FI), lk(&mut t, h3, 22, 4, EX | FI));
    assert!(!both(&mut t, x, y));
    let (x, y) = (lk(&mut t, H1, 30, 4, SH | FI), lk(&mut t, h3, 32, 4, SH | FI));
    assert!(both(&mut t, x, y));
    let (x, y) = (lk(&mut t, H1, 40, 4, EX | FI), lk(&mut t, H2, 42, 4, EX | FI));
    assert!(!both(&mut t, x, y));
    let (x, y) = (lk(&mut t, H1, 50, 4, SH | FI), lk(&mut t, H2, 52, 4, SH | FI));
    assert!(both(&mut t, x, y));
    // the same handle cannot coalesce read locks
    assert_eq!(lk(&mut t, H1, 110, 4, SH | FI), OK);
    assert_eq!(lk(&mut t, H1, 112, 4, SH | FI), OK);
    assert_eq!(lk(&mut t, H1, 110, 6, UN), NOT_LOCKED);
    // the "NT byte range lock bug": closing releases the locks
    t.close_open(H1);
    t.close_open(H2);
    let (h1b, h2b) = (OpenId(11), OpenId(12));
    assert_eq!(lk(&mut t, h1b, 0, 8, SH | FI), OK);
    assert_eq!(lk(&mut t, h2b, 0, 1, SH | FI), OK);
    t.close_open(h1b);
    assert_eq!(lk(&mut t, OpenId(13), 7, 1, EX | FI), OK);
}

fn seq_lock(t: &mut ByteRangeLocks, seq: u32, flags: u32) -> Option<NtStatus> {
    let els = [el(100, 100, flags)];
    let req = LockRequest { elements: &els, lock_sequence: seq, check_sequence: true, token: 0, max_held: usize::MAX };
    t.smb2_lock(H1, &req).status
}

/// smb2.lock.replay_smb3_specification_durable / _multi
#[test]
fn lock_sequence_replay() {
    let mut t = ByteRangeLocks::new();
    // bucket 0 is invalid: no replay detection
    assert_eq!(seq_lock(&mut t, 0x001, EX | FI), OK);
    assert_eq!(seq_lock(&mut t, 0x001, EX | FI), NOT_GRANTED);
    assert_eq!(seq_lock(&mut t, 0x001, UN), OK);
    assert_eq!(seq_lock(&mut t, 0x001, UN), NOT_LOCKED);
    // bucket 1: replays are answered OK and ignored
    assert_eq!(seq_lock(&mut t, 0x011, EX | FI), OK);
    assert_eq!(seq_lock(&mut t, 0x011, EX | FI), OK);
    assert_eq!(seq_lock(&mut t, 0x011, UN), OK);
    assert_eq!(seq_lock(&mut t, 0x011, EX | FI), OK);
    assert_eq!(seq_lock(&mut t, 0x011, UN), OK);
    assert_eq!(seq_lock(&mut t, 0x011, UN), OK);
    assert_eq!(t.count_held_by(H1), 1, "still locked");
    assert_eq!(seq_lock(&mut t, 0x012, EX | FI), NOT_GRANTED);
    assert_eq!(seq_lock(&mut t, 0x012, EX | FI), NOT_GRANTED);
    // bucket 2
    assert_eq!(seq_lock(&mut t, 0x021, EX | FI), NOT_GRANTED);
    assert_eq!(seq_lock(&mut t, 0x021, EX | FI), NOT_GRANTED);
    // bucket 65 is invalid
    assert_eq!(seq_lock(&mut t, 0x411, EX | FI), NOT_GRANTED);
    assert_eq!(seq_lock(&mut t, 0x411, EX | FI), NOT_GRANTED);
    assert_eq!(seq_lock(&mut t, 0x411, UN), OK);
    assert_eq!(seq_lock(&mut t, 0x411, UN), NOT_LOCKED);
    assert_eq!(seq_lock(&mut t, 0x411, EX | FI), OK);
    // bucket 64 and unlock replay
    assert_eq!(seq_lock(&mut t, 0x401, EX | FI), NOT_GRANTED);
    assert_eq!(seq_lock(&mut t, 0x401, EX | FI), NOT_GRANTED);
    assert_eq!(seq_lock(&mut t, 0x402, UN), OK);
    assert_eq!(seq_lock(&mut t, 0x402, UN), OK);
    assert_eq!(seq_lock(&mut t, 0x402, EX | FI), OK);
    assert_eq!(seq_lock(&mut t, 0x403, UN), NOT_LOCKED);
}

/// smb2.lock.replay_broken_windows, first part: without sequence
/// verification a replayed lock is just a conflicting lock.
#[test]
fn no_replay_detection_without_verification() {
    let mut t = ByteRangeLocks::new();
    assert_eq!(lk(&mut t, H1, 100, 100, EX | FI), OK);
    assert_eq!(lk(&mut t, H1, 100, 100, EX | FI), NOT_GRANTED);
    assert_eq!(lk(&mut t, H1, 100, 100, UN), OK);
    assert_eq!(lk(&mut t, H1, 100, 100, UN), NOT_LOCKED);
}

/// A pending lock that is granted later records its sequence number.
#[test]
fn pending_lock_records_sequence_when_granted() {
    let mut t = ByteRangeLocks::new();
    assert_eq!(lk(&mut t, H2, 100, 100, EX), OK);
    let els = [el(100, 100, EX)];
    let req =
        LockRequest { elements: &els, lock_sequence: 0x013, check_sequence: true, token: 42, max_held: usize::MAX };
    assert_eq!(t.smb2_lock(H1, &req).status, None);
    let done = t.close_open(H2);
    assert_eq!(done.iter().map(|c| (c.token, c.status)).collect::<Vec<_>>(), vec![(42, NtStatus::SUCCESS)]);
    assert_eq!(t.smb2_lock(H1, &req).status, OK, "replay of the granted request");
    assert_eq!(t.count_held_by(H1), 1);
}

// ---- model-based property test ------------------------------------------

/// An independent model: locks as byte sets, zero-length ranges as the
/// boundary between two bytes, rules written from the smbtorture tables.
#[derive(Clone, Debug, Default)]
struct Model {
    locks: Vec<(u64, u64, u64, bool)>, // owner, offset, length, exclusive
}

fn touches(o1: u64, l1: u64, o2: u64, l2: u64) -> bool {
    let bytes = |o: u64, l: u64| o..o + l;
    match (l1, l2) {
        (0, 0) => false,
        (0, _) => o1 > 0 && bytes(o2, l2).contains(&(o1 - 1)) && bytes(o2, l2).contains(&o1),
        (_, 0) => o2 > 0 && bytes(o1, l1).contains(&(o2 - 1)) && bytes(o1, l1).contains(&o2),
        _ => o1 < o2 + l2 && o2 < o1 + l1,
    }
}

impl Model {
    fn lock(&mut self, owner: u64, o: u64, l: u64, ex: bool) -> bool {
        let blocked =
            self.locks.iter().any(|&(h, lo, ll, lex)| touches(lo, ll, o, l) && if lex { h != owner || ex } else { ex });
        if !blocked {
            self.locks.push((owner, o, l, ex));
        }
        !blocked
    }
    fn unlock(&mut self, owner: u64, o: u64, l: u64) -> bool {
        let m = |x: &(u64, u64, u64, bool)| x.0 == owner && x.1 == o && x.2 == l;
        let pos = self.locks.iter().position(|x| m(x) && x.3).or_else(|| self.locks.iter().position(m));
        pos.map(|p| self.locks.remove(p)).is_some()
    }
    fn io_ok(&self, owner: u64, o: u64, l: u64, write: bool) -> bool {
        l == 0
            || !self.locks.iter().any(|&(h, lo, ll, lex)| touches(lo, ll, o, l) && if lex { h != owner } else { write })
    }
}

#[derive(Clone, Debug)]
enum Op {
    Lock(u64, u64, u64, bool),
    Unlock(u64, u64, u64),
    Io(u64, u64, u64, bool),
    Close(u64),
}

fn op() -> impl Strategy<Value = Op> {
    let h = 1u64..4;
    let o = 0u64..12;
    let l = 0u64..5;
    prop_oneof![
        4 => (h.clone(), o.clone(), l.clone(), any::<bool>()).prop_map(|(h, o, l, x)| Op::Lock(h, o, l, x)),
        3 => (h.clone(), o.clone(), l.clone()).prop_map(|(h, o, l)| Op::Unlock(h, o, l)),
        3 => (h.clone(), o, l, any::<bool>()).prop_map(|(h, o, l, w)| Op::Io(h, o, l, w)),
        1 => h.prop_map(Op::Close),
    ]
}

proptest! {
    #[test]
    fn matches_model(ops in proptest::collection::vec(op(), 1..60)) {
        let mut t = ByteRangeLocks::new();
        let mut m = Model::default();
        for op in ops {
            match op {
                Op::Lock(h, o, l, ex) => {
                    let flags = if ex { EX | FI } else { SH | FI };
                    let got = lk(&mut t, OpenId(h), o, l, flags) == OK;
                    prop_assert_eq!(got, m.lock(h, o, l, ex));
                }
                Op::Unlock(h, o, l) => {
                    let got = lk(&mut t, OpenId(h), o, l, UN) == OK;
                    prop_assert_eq!(got, m.unlock(h, o, l));
                }
                Op::Io(h, o, l, w) => {
                    prop_assert_eq!(t.check_io(OpenId(h), o, l, w).is_ok(), m.io_ok(h, o, l, w));
                }
                Op::Close(h) => {
                    t.close_open(OpenId(h));
                    m.locks.retain(|x| x.0 != h);
                }
            }
        }
    }

    /// Blocked requests: every waiter is eventually granted once all other
    /// handles close, and never granted while its range is blocked.
    #[test]
    fn waiters_drain(ops in proptest::collection::vec((1u64..4, 0u64..12, 1u64..5, any::<bool>()), 1..30)) {
        let mut t = ByteRangeLocks::new();
        let mut pending = Vec::new();
        for (i, (h, o, l, ex)) in ops.into_iter().enumerate() {
            let flags = if ex { EX } else { SH };
            let r = lock_tok(&mut t, OpenId(h), &[el(o, l, flags)], i as u64);
            if r.status.is_none() {
                pending.push((i as u64, h));
            }
        }
        let mut finished: Vec<u64> = Vec::new();
        for h in 1..4 {
            for c in t.close_open(OpenId(h)) {
                finished.push(c.token);
            }
        }
        let mut want: Vec<u64> = pending.iter().map(|p| p.0).collect();
        want.sort_unstable();
        finished.sort_unstable();
        prop_assert_eq!(finished, want);
        prop_assert!(t.is_idle());
    }
}

/// A blocking lock that conflicts with the same open's own lock waits (no
/// FILE_LOCK_CONFLICT in SMB2) and is granted when that lock goes.
#[test]
fn blocking_lock_against_own_lock_waits() {
    let mut t = ByteRangeLocks::new();
    assert_eq!(lk(&mut t, H1, 0, 10, EX | FI), OK);
    assert_eq!(lock_tok(&mut t, H1, &[el(0, 10, EX)], 3).status, None);
    let r = lock_tok(&mut t, H1, &[el(0, 10, UN)], 4);
    assert_eq!(r.status, OK);
    assert_eq!(r.completed.iter().map(|c| (c.token, c.status)).collect::<Vec<_>>(), vec![(3, NtStatus::SUCCESS)]);
    // A blocking request with a bad range fails at once.
    assert_eq!(lk(&mut t, H2, u64::MAX, 2, EX), BAD_RANGE);
}

/// Rough cost of a lock check with 1,000 held locks (run with `--ignored --nocapture`).
#[test]
#[ignore]
fn timing() {
    let mut t = ByteRangeLocks::new();
    for i in 0..1000u64 {
        assert_eq!(lk(&mut t, OpenId(i % 7), i * 10, 5, EX | FI), OK);
    }
    let start = std::time::Instant::now();
    let n = 100_000u64;
    for i in 0..n {
        let o = (i % 1000) * 10 + 6;
        assert_eq!(lk(&mut t, H1, o, 2, SH | FI), OK);
        assert_eq!(lk(&mut t, H1, o, 2, UN), OK);
        assert!(t.check_io(H2, o, 2, true).is_ok());
    }
    let per = start.elapsed() / (n as u32);
    println!("1000 held locks: lock+unlock+io check {per:?} per round");
}

/// The per-open limit: a request that would take the open past it is
/// INSUFFICIENT_RESOURCES and changes nothing; unlocks are never refused.
#[test]
fn locks_per_open_are_capped() {
    let mut t = ByteRangeLocks::new();
    let cap = |els: &[LockElement], max_held: usize, t: &mut ByteRangeLocks| {
        let req = LockRequest { elements: els, lock_sequence: 0, check_sequence: false, token: 0, max_held };
        t.smb2_lock(H1, &req).status
    };
    let three: Vec<LockElement> = (0..3).map(|i| el(i * 10, 5, EX | FI)).collect();
    assert_eq!(cap(&three, 4, &mut t), OK);
    let two: Vec<LockElement> = (3..5).map(|i| el(i * 10, 5, EX | FI)).collect();
    assert_eq!(cap(&two, 4, &mut t), Some(NtStatus::INSUFFICIENT_RESOURCES));
    assert_eq!(t.count_held_by(H1), 3, "nothing of the refused request stays");
    assert_eq!(cap(&two[..1], 4, &mut t), OK);
    assert_eq!(cap(&[el(0, 5, UN)], 4, &mut t), OK);
    // Another open has its own budget.
    let req = LockRequest { elements: &two, lock_sequence: 0, check_sequence: false, token: 0, max_held: 2 };
    assert_eq!(t.smb2_lock(H2, &req).status, Some(NtStatus::LOCK_NOT_GRANTED), "conflicts with H1's lock at 30");
    assert_eq!(t.count_held_by(H2), 0, "a failed request is undone");
}

/// 65,535 elements against 10,000 held locks: every element is checked
/// against the overlapping locks only (the interval tree), so the whole
/// request is a few million steps, not 655 million.
#[test]
fn a_huge_request_against_many_locks_is_cheap() {
    let mut t = ByteRangeLocks::new();
    let held: Vec<LockElement> = (0..10_000u64).map(|i| el(i * 1000, 10, EX | FI)).collect();
    lock_els(&mut t, H1, &held);
    assert_eq!(t.count_held_by(H1), 10_000);
    let many: Vec<LockElement> = (0..65_535u64).map(|i| el(i * 1000 + 500, 10, SH | FI)).collect();
    let start = std::time::Instant::now();
    assert_eq!(lock_els(&mut t, H2, &many), OK);
    assert!(t.check_io(H1, 500, 1, true).is_err());
    assert_eq!(t.close_open(H2), vec![]);
    assert!(t.check_io(H1, 500, 1, true).is_ok());
    // A linear list took ~10 s here; the tree takes milliseconds. The bound
    // is loose for a loaded machine and a debug build.
    assert!(start.elapsed() < std::time::Duration::from_secs(5), "{:?}", start.elapsed());
}
