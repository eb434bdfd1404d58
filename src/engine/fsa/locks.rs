//! Byte-range locks of one stream: the object-store rules of MS-FSA 2.1.4.10
//! (conflict check), 2.1.5.8 (lock) and 2.1.5.9 (unlock), the SMB2 LOCK
//! request rules of MS-SMB2 3.3.5.14 on top, and a queue of blocked lock
//! requests that are retried whenever a lock goes away.
//!
//! Where MS-SMB2 and smbtorture's `smb2.lock` suite disagree with a literal
//! reading of the spec, smbtorture (i.e. Windows) wins; each such rule says so.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::Arc;

use super::OpenId;
use super::intervals::Intervals;
use crate::wire::NtStatus;
use crate::wire::lock::LockElement;
// The SMB2_LOCKFLAG_* bits (MS-SMB2 2.2.26.1) are the wire's, under the
// names the rules below use.
pub use crate::wire::lock::flags::{
    EXCLUSIVE_LOCK as LOCKFLAG_EXCLUSIVE, FAIL_IMMEDIATELY as LOCKFLAG_FAIL_IMMEDIATELY,
    SHARED_LOCK as LOCKFLAG_SHARED, UNLOCK as LOCKFLAG_UNLOCK,
};

/// Shared (read) or exclusive (write) lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockKind {
    /// Others may read and take shared locks.
    Shared,
    /// Only the owner may read or write.
    Exclusive,
}

/// A validated lock range: its last byte fits in 64 bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    offset: u64,
    length: u64,
}

impl ByteRange {
    /// MS-FSA 2.1.5.8: a range reaching past byte 2^64-1 is
    /// STATUS_INVALID_LOCK_RANGE (smbtorture `smb2.lock.lock` "max/2").
    pub fn new(offset: u64, length: u64) -> Result<Self, NtStatus> {
        if length != 0 && offset.checked_add(length - 1).is_none() {
            return Err(NtStatus::INVALID_LOCK_RANGE);
        }
        Ok(Self { offset, length })
    }

    /// First byte.
    pub fn offset(self) -> u64 {
        self.offset
    }

    /// Number of bytes (may be 0).
    pub fn length(self) -> u64 {
        self.length
    }

    /// MS-FSA 2.1.4.10 overlap test. `{0, 0}` overlaps nothing; any other
    /// zero-length range at X counts as "X-1 .. X", so it touches a range
    /// only if that range holds both byte X-1 and byte X
    /// (smbtorture `smb2.lock.zerobytelength`).
    pub fn overlaps(self, other: ByteRange) -> bool {
        let (s1, l1) = span(self.offset, self.length);
        let (s2, l2) = span(other.offset, other.length);
        s1 <= l2 && l1 >= s2
    }
}

/// The 2.1.4.10 overlap arithmetic as an interval `[start, last]` in i128,
/// so that neither `offset + length - 1` nor the zero-length `offset - 1`
/// can wrap. Two spans overlap iff `s1 <= l2 && l1 >= s2`; a zero-length
/// span at X is `[X, X-1]`, which meets a range only if that range holds
/// both X-1 and X, and `{0, 0}` (`[0, -1]`) meets nothing.
fn span(offset: u64, length: u64) -> (i128, i128) {
    let s = i128::from(offset);
    (s, s + i128::from(length) - 1)
}

/// An SMB2 LOCK request as the engine hands it over.
#[derive(Debug, Clone, Copy)]
pub struct LockRequest<'a> {
    /// The elements, in wire order.
    pub elements: &'a [LockElement],
    /// LockSequenceNumber (low 4 bits) and LockSequenceIndex (next 28 bits).
    pub lock_sequence: u32,
    /// MS-SMB2 3.3.5.14: verify lock sequences when the open is resilient,
    /// durable or persistent, or the dialect is 3.x with multichannel.
    pub check_sequence: bool,
    /// Engine-chosen id for this request (e.g. its AsyncId), returned in a
    /// later [`Completion`] if the request has to wait.
    pub token: u64,
    /// Most locks the open may hold ([`TOO_MANY_LOCKS`] beyond).
    pub max_held: usize,
}

/// Outcome of [`ByteRangeLocks::smb2_lock`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockReply {
    /// `Some(status)`: answer now. `None`: the request waits; send an
    /// interim STATUS_PENDING and expect a [`Completion`] with its token.
    pub status: Option<NtStatus>,
    /// Earlier blocked requests that this request's unlocks let through.
    pub completed: Vec<Completion>,
}

/// A blocked lock request that has finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Completion {
    /// The token given in [`LockRequest::token`].
    pub token: u64,
    /// Open that asked.
    pub owner: OpenId,
    /// SUCCESS (granted), CANCELLED (cancelled) or RANGE_NOT_LOCKED (its
    /// open was closed; smbtorture `smb2.lock.cancel` "cancel by close").
    pub status: NtStatus,
}

#[derive(Debug, Clone, Copy)]
struct Held {
    owner: OpenId,
    range: ByteRange,
    kind: LockKind,
}

#[derive(Debug, Clone, Copy)]
struct Waiter {
    token: u64,
    held: Held,
    seq: Option<SeqSlot>,
}

/// Index into an open's lock sequence array and the value to store there.
#[derive(Debug, Clone, Copy)]
struct SeqSlot {
    index: usize,
    value: u8,
}

/// "No valid entry" in Open.LockSequenceArray (MS-SMB2 3.3.1.10).
const SEQ_INVALID: u8 = 0xFF;

/// An open's own index of its locks: offset, length, 0 for exclusive and
/// 1 for shared (so that an unlock finds the exclusive one first), id.
type OwnKey = (u64, u64, u8, u64);

/// All byte-range locks of one stream, the blocked requests waiting for
/// them, and the lock sequence arrays of the opens that use them.
///
/// Held locks are in an interval tree (a conflict check costs O(log n +
/// overlaps), not O(n)) and in a per-open set (unlock, close and the
/// per-open count without a scan).
#[derive(Debug, Default)]
pub struct ByteRangeLocks {
    held: Intervals<Held>,
    by_owner: HashMap<OpenId, BTreeSet<OwnKey>>,
    next_id: u64,
    waiters: VecDeque<Waiter>,
    sequences: HashMap<OpenId, [u8; 64]>,
}

/// One stream's [`ByteRangeLocks`] behind a lock of its own, shared
/// between the server-wide open table (which finds it) and the LOCK
/// handler (which runs a request against it after letting go of the
/// table: a 65,535-element request holds up this file only).
#[derive(Debug, Default, Clone)]
pub struct StreamLocks(Arc<parking_lot::Mutex<ByteRangeLocks>>);

impl StreamLocks {
    /// The locks, locked. Lock order: the open table, then this.
    pub fn lock(&self) -> parking_lot::MutexGuard<'_, ByteRangeLocks> {
        self.0.lock()
    }
}

/// "Too many locks": the LOCK request would take the open past its limit
/// (or has more elements than a request may). Windows answers a lock
/// request it cannot allocate for with STATUS_INSUFFICIENT_RESOURCES
/// (non-paged pool exhausted); so do Samba and ksmbd on allocation failure.
pub const TOO_MANY_LOCKS: NtStatus = NtStatus::INSUFFICIENT_RESOURCES;

impl ByteRangeLocks {
    /// An empty lock list.
    pub fn new() -> Self {
        Self::default()
    }

    /// True if any lock is held (oplock/lease grants look at this).
    pub fn has_locks(&self) -> bool {
        !self.held.is_empty()
    }

    /// True if a lock starts below `size` (the allocation size): only such
    /// locks affect caching (MS-FSA 2.1.5.8, smbtorture `smb2.lease.lock2`).
    pub fn has_locks_below(&self, size: u64) -> bool {
        self.held.min_start().is_some_and(|s| s < i128::from(size))
    }

    /// True if nothing is held or waiting (the entry may be dropped).
    pub fn is_idle(&self) -> bool {
        self.held.is_empty() && self.waiters.is_empty() && self.sequences.is_empty()
    }

    /// Locks held by `owner`: offset, length, exclusive (`smbvault status`).
    pub fn held_by(&self, owner: OpenId) -> Vec<(u64, u64, bool)> {
        self.by_owner.get(&owner).map_or_else(Vec::new, |set| set.iter().map(|k| (k.0, k.1, k.2 == 0)).collect())
    }

    /// Number of locks held by `owner`.
    pub fn count_held_by(&self, owner: OpenId) -> usize {
        self.by_owner.get(&owner).map_or(0, BTreeSet::len)
    }

    /// READ/WRITE check (MS-FSA 2.1.5.2, 2.1.5.3 via 2.1.4.10 with
    /// LockIntent FALSE): STATUS_FILE_LOCK_CONFLICT if another open's lock
    /// covers the range, or a shared lock (even our own) covers a write.
    /// Zero-length I/O never conflicts (smbtorture `smb2.lock.zerobyteread`).
    pub fn check_io(&self, owner: OpenId, offset: u64, length: u64, write: bool) -> Result<(), NtStatus> {
        if length == 0 {
            return Ok(());
        }
        let (s, l) = span(offset, length);
        let hit = self.held.any(s, l, |h| kind_conflicts(h, owner, write, false));
        if hit { Err(NtStatus::FILE_LOCK_CONFLICT) } else { Ok(()) }
    }

    fn insert(&mut self, h: Held) -> u64 {
        self.next_id += 1;
        let id = self.next_id;
        let (s, l) = span(h.range.offset, h.range.length);
        self.held.insert(s, l, id, h);
        self.by_owner.entry(h.owner).or_default().insert(own_key(&h, id));
        id
    }

    fn remove_id(&mut self, h: &Held, id: u64) {
        self.held.remove(i128::from(h.range.offset), id);
        if let Some(set) = self.by_owner.get_mut(&h.owner) {
            set.remove(&own_key(h, id));
            if set.is_empty() {
                self.by_owner.remove(&h.owner);
            }
        }
    }

    /// Lock without waiting (MS-FSA 2.1.5.8 with FailImmediately):
    /// STATUS_LOCK_NOT_GRANTED on conflict. SMB2 never answers
    /// FILE_LOCK_CONFLICT to a lock request, however often it is repeated
    /// (smbtorture `smb2.lock.errorcode`).
    pub fn lock(&mut self, owner: OpenId, range: ByteRange, kind: LockKind) -> Result<(), NtStatus> {
        let want = Held { owner, range, kind };
        if self.grantable(&want) {
            self.insert(want);
            Ok(())
        } else {
            Err(NtStatus::LOCK_NOT_GRANTED)
        }
    }

    /// Unlock (MS-FSA 2.1.5.9): the exact range, held by `owner`; an
    /// exclusive lock goes before a shared one on the same range
    /// (smbtorture `smb2.lock.unlock`). Returns the blocked requests this
    /// lets through.
    pub fn unlock(&mut self, owner: OpenId, range: ByteRange) -> Result<Vec<Completion>, NtStatus> {
        self.remove_one(owner, range)?;
        Ok(self.wake())
    }

    /// Cancel a blocked request (SMB2 CANCEL): STATUS_CANCELLED for it.
    pub fn cancel(&mut self, token: u64) -> Option<Completion> {
        let pos = self.waiters.iter().position(|w| w.token == token)?;
        let w = self.waiters.remove(pos)?;
        Some(Completion { token, owner: w.held.owner, status: NtStatus::CANCELLED })
    }

    /// The open is closing (CLOSE, tree disconnect, logoff, disconnect):
    /// drop its locks, fail its blocked requests with RANGE_NOT_LOCKED and
    /// retry everyone else's.
    pub fn close_open(&mut self, owner: OpenId) -> Vec<Completion> {
        for k in self.by_owner.remove(&owner).unwrap_or_default() {
            self.held.remove(i128::from(k.0), k.3);
        }
        self.sequences.remove(&owner);
        let mut done = Vec::new();
        self.waiters.retain(|w| {
            if w.held.owner == owner {
                done.push(Completion { token: w.token, owner, status: NtStatus::RANGE_NOT_LOCKED });
                false
            } else {
                true
            }
        });
        done.extend(self.wake());
        done
    }

    /// MS-SMB2 3.3.5.14: one SMB2 LOCK request, all or nothing for locks.
    pub fn smb2_lock(&mut self, owner: OpenId, req: &LockRequest<'_>) -> LockReply {
        let seq = if req.check_sequence {
            match self.check_sequence(owner, req.lock_sequence) {
                SeqCheck::Replay => return done(NtStatus::SUCCESS),
                SeqCheck::Proceed(slot) => slot,
            }
        } else {
            None
        };
        let mode = match classify(req.elements) {
            Ok(m) => m,
            Err(s) => return done(s),
        };
        let reply = match mode {
            Mode::Unlock => self.unlock_all(owner, req.elements),
            Mode::Lock { blocking } => self.lock_all(owner, req, blocking, seq),
        };
        if reply.status == Some(NtStatus::SUCCESS) {
            self.record_sequence(owner, seq);
        }
        reply
    }

    /// Unlock elements in order; the first failure stops the request but
    /// earlier unlocks stay done (smbtorture `smb2.lock.multiple-unlock`).
    /// A non-UNLOCK element is INVALID_PARAMETER when reached (Test4/Test10).
    fn unlock_all(&mut self, owner: OpenId, elements: &[LockElement]) -> LockReply {
        let mut status = NtStatus::SUCCESS;
        let mut any = false;
        for el in elements {
            if el.flags != LOCKFLAG_UNLOCK {
                status = NtStatus::INVALID_PARAMETER;
                break;
            }
            let res = ByteRange::new(el.offset, el.length).and_then(|r| self.remove_one(owner, r));
            if let Err(s) = res {
                status = s;
                break;
            }
            any = true;
        }
        let completed = if any { self.wake() } else { Vec::new() };
        LockReply { status: Some(status), completed }
    }

    /// Lock elements in order; on failure undo the ones granted by this
    /// request (MS-SMB2 3.3.5.14.2, smbtorture `smb2.lock.multiple-unlock`
    /// Test3). A single blocking element that conflicts waits.
    fn lock_all(&mut self, owner: OpenId, req: &LockRequest<'_>, blocking: bool, seq: Option<SeqSlot>) -> LockReply {
        if self.count_held_by(owner).saturating_add(req.elements.len()) > req.max_held {
            return done(TOO_MANY_LOCKS);
        }
        let mut granted = Vec::new();
        let mut status = NtStatus::SUCCESS;
        for el in req.elements {
            let (range, kind) = match element_lock(el) {
                Ok(x) => x,
                Err(s) => {
                    status = s;
                    break;
                }
            };
            let want = Held { owner, range, kind };
            if self.grantable(&want) {
                granted.push((want, self.insert(want)));
            } else if blocking {
                self.waiters.push_back(Waiter { token: req.token, held: want, seq });
                return LockReply { status: None, completed: Vec::new() };
            } else {
                status = NtStatus::LOCK_NOT_GRANTED;
                break;
            }
        }
        if status != NtStatus::SUCCESS {
            for (h, id) in granted {
                self.remove_id(&h, id);
            }
        }
        done(status)
    }

    /// MS-FSA 2.1.4.10 with LockIntent TRUE against every held lock that
    /// overlaps (the interval tree finds them).
    fn grantable(&self, want: &Held) -> bool {
        let (s, l) = span(want.range.offset, want.range.length);
        let exclusive = want.kind == LockKind::Exclusive;
        !self.held.any(s, l, |h| kind_conflicts(h, want.owner, exclusive, true))
    }

    fn remove_one(&mut self, owner: OpenId, range: ByteRange) -> Result<(), NtStatus> {
        let (o, n) = (range.offset, range.length);
        let k = self
            .by_owner
            .get(&owner)
            .and_then(|set| set.range((o, n, 0, 0)..=(o, n, 1, u64::MAX)).next().copied())
            .ok_or(NtStatus::RANGE_NOT_LOCKED)?;
        let kind = if k.2 == 0 { LockKind::Exclusive } else { LockKind::Shared };
        self.remove_id(&Held { owner, range, kind }, k.3);
        Ok(())
    }

    /// Retry blocked requests in arrival order. Granting only adds locks,
    /// so a single pass sees every request that can now proceed.
    fn wake(&mut self) -> Vec<Completion> {
        let mut done = Vec::new();
        let mut still = VecDeque::with_capacity(self.waiters.len());
        while let Some(w) = self.waiters.pop_front() {
            if self.grantable(&w.held) {
                self.insert(w.held);
                self.record_sequence(w.held.owner, w.seq);
                done.push(Completion { token: w.token, owner: w.held.owner, status: NtStatus::SUCCESS });
            } else {
                still.push_back(w);
            }
        }
        self.waiters = still;
        done
    }

    /// MS-SMB2 3.3.5.14: a request whose LockSequenceNumber is already
    /// stored at its LockSequenceIndex (1..=64) is a replay and succeeds
    /// without effect; otherwise the entry is invalidated until success.
    fn check_sequence(&mut self, owner: OpenId, lock_sequence: u32) -> SeqCheck {
        let index = (lock_sequence >> 4) as usize;
        let value = (lock_sequence & 0xF) as u8;
        if !(1..=64).contains(&index) {
            return SeqCheck::Proceed(None);
        }
        let array = self.sequences.entry(owner).or_insert([SEQ_INVALID; 64]);
        let Some(entry) = array.get_mut(index - 1) else {
            return SeqCheck::Proceed(None);
        };
        if *entry == value {
            return SeqCheck::Replay;
        }
        *entry = SEQ_INVALID;
        SeqCheck::Proceed(Some(SeqSlot { index: index - 1, value }))
    }

    fn record_sequence(&mut self, owner: OpenId, slot: Option<SeqSlot>) {
        let Some(slot) = slot else { return };
        if let Some(entry) = self.sequences.get_mut(&owner).and_then(|a| a.get_mut(slot.index)) {
            *entry = slot.value;
        }
    }
}

enum SeqCheck {
    Replay,
    Proceed(Option<SeqSlot>),
}

fn own_key(h: &Held, id: u64) -> OwnKey {
    (h.range.offset, h.range.length, u8::from(h.kind == LockKind::Shared), id)
}

fn done(status: NtStatus) -> LockReply {
    LockReply { status: Some(status), completed: Vec::new() }
}

/// MS-FSA 2.1.4.10 for an overlapping held lock: an exclusive lock blocks
/// everyone but its owner, and its owner too for a second exclusive lock
/// (locks don't stack, smbtorture `smb2.lock.stacking`); a shared lock
/// blocks any exclusive intent, the owner's writes included
/// (`smb2.lock.rw-shared`).
fn kind_conflicts(held: &Held, owner: OpenId, exclusive: bool, lock_intent: bool) -> bool {
    match held.kind {
        LockKind::Exclusive => held.owner != owner || (lock_intent && exclusive),
        LockKind::Shared => exclusive,
    }
}

enum Mode {
    Lock { blocking: bool },
    Unlock,
}

/// MS-SMB2 3.3.5.14 validation, in the order smbtorture
/// `smb2.lock.valid-request` observes: no elements, bad flags on the first
/// element, a blocking element in a multi-element request, an UNLOCK
/// element in a lock request are all INVALID_PARAMETER before anything is
/// done. Bad elements after a leading UNLOCK are found while unlocking.
fn classify(elements: &[LockElement]) -> Result<Mode, NtStatus> {
    let first = elements.first().ok_or(NtStatus::INVALID_PARAMETER)?;
    let many = elements.len() > 1;
    let mode = match first.flags {
        LOCKFLAG_UNLOCK => return Ok(Mode::Unlock),
        LOCKFLAG_SHARED | LOCKFLAG_EXCLUSIVE if many => return Err(NtStatus::INVALID_PARAMETER),
        LOCKFLAG_SHARED | LOCKFLAG_EXCLUSIVE => Mode::Lock { blocking: true },
        f if lock_flags_kind(f).is_some() => Mode::Lock { blocking: false },
        _ => return Err(NtStatus::INVALID_PARAMETER),
    };
    if many && elements.iter().any(|e| e.flags & LOCKFLAG_FAIL_IMMEDIATELY == 0 || lock_flags_kind(e.flags).is_none()) {
        return Err(NtStatus::INVALID_PARAMETER);
    }
    Ok(mode)
}

fn lock_flags_kind(flags: u32) -> Option<LockKind> {
    match flags & !LOCKFLAG_FAIL_IMMEDIATELY {
        LOCKFLAG_SHARED => Some(LockKind::Shared),
        LOCKFLAG_EXCLUSIVE => Some(LockKind::Exclusive),
        _ => None,
    }
}

fn element_lock(el: &LockElement) -> Result<(ByteRange, LockKind), NtStatus> {
    let kind = lock_flags_kind(el.flags).ok_or(NtStatus::INVALID_PARAMETER)?;
    Ok((ByteRange::new(el.offset, el.length)?, kind))
}
