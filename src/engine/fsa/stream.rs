//! Everything the server tracks per open stream — byte-range locks, share
//! modes and delete-pending state, oplocks and leases, CREATEs parked on a
//! break — and the order in which a CREATE consults them (MS-FSA 2.1.5.1.2:
//! delete pending, then sharing and oplock breaks; Samba
//! `check_and_store_share_mode()`).

use std::time::Instant;

use super::OpenId;
use super::access::FILE_WRITE_DATA;
use super::lease::{Break, CacheGrant, CacheRequest, Caching, LeaseId};
use super::locks::{Completion, LockReply, LockRequest, StreamLocks};
use super::oplock::{CacheState, OpenCacheRequest, OpenStep};
use super::sharing::{ShareEntry, ShareModes};
use crate::wire::NtStatus;

/// A CREATE of an existing (or just created) stream.
#[derive(Debug, Clone, Copy)]
pub struct OpenRequest {
    /// The new open (server-wide id, e.g. its persistent FileId).
    pub open: OpenId,
    /// Granted access ([`super::access::open_existing`] / `open_new`).
    pub access: u32,
    /// ShareAccess.
    pub share: u32,
    /// SUPERSEDE / OVERWRITE / OVERWRITE_IF on an existing file: counts
    /// as a write for sharing and breaks all caching.
    pub overwrite: bool,
    /// This CREATE created the stream.
    pub created: bool,
    /// The stream is a directory.
    pub is_directory: bool,
    /// FILE_DELETE_ON_CLOSE accepted by
    /// [`super::sharing::check_create_delete_on_close`].
    pub delete_on_close: bool,
    /// Allocation size: byte-range locks at or beyond it do not affect
    /// caching.
    pub allocation_size: u64,
    /// Requested oplock or lease.
    pub request: CacheRequest,
    /// Engine id of this CREATE, remembered while it is parked.
    pub token: u64,
    /// False when retrying a parked CREATE.
    pub first_attempt: bool,
}

/// Outcome of [`StreamState::begin_open`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenOutcome {
    /// Break notifications to send now, whatever the result.
    pub breaks: Vec<Break>,
    /// The result for the CREATE.
    pub result: OpenResult,
}

/// The CREATE's fate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenResult {
    /// Recorded; answer with this oplock/lease.
    Granted(CacheGrant),
    /// Parked under its token: answer STATUS_PENDING (interim) and rerun
    /// `begin_open` with `first_attempt: false` when its token comes back
    /// in a `retry` list.
    Wait,
    /// Answer with this status (DELETE_PENDING, SHARING_VIOLATION).
    Failed(NtStatus),
}

/// What a CLOSE did to the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseOutcome {
    /// Blocked LOCK requests that finished (granted, or RANGE_NOT_LOCKED
    /// for the closing open's own).
    pub lock_completions: Vec<Completion>,
    /// Remove the stream/file now (last close of a delete-pending stream).
    pub delete: bool,
    /// Opens left.
    pub remaining: usize,
    /// A lease lost its last open: remove it from the LeaseDirectory.
    pub released_lease: Option<LeaseId>,
    /// Parked CREATEs to rerun.
    pub retry: Vec<u64>,
}

/// Outcome of a lease break acknowledgment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseAck {
    /// LeaseState for the LEASE_BREAK response.
    pub state: Caching,
    /// Further breaks to send.
    pub breaks: Vec<Break>,
    /// Parked CREATEs to rerun.
    pub retry: Vec<u64>,
}

/// One stream's shared state (an entry of the server-wide open-file table).
#[derive(Debug, Default)]
pub struct StreamState {
    /// Byte-range locks, behind their own lock (see [`StreamLocks`]).
    pub locks: StreamLocks,
    /// Share modes and delete-pending state.
    pub shares: ShareModes,
    /// Oplocks and leases.
    pub cache: CacheState,
    parked: Vec<u64>,
}

impl StreamState {
    /// Nothing open.
    pub fn new() -> Self {
        Self::default()
    }

    /// No opens, locks or parked CREATEs: the table entry can be dropped.
    pub fn is_idle(&self) -> bool {
        self.shares.is_empty() && self.cache.is_empty() && self.locks.lock().is_idle() && self.parked.is_empty()
    }

    /// CREATE: DELETE_PENDING, then oplock breaks (which may park the
    /// CREATE), then SHARING_VIOLATION, then the grant.
    pub fn begin_open(&mut self, req: &OpenRequest, now: Instant) -> OpenOutcome {
        if self.shares.delete_pending() {
            return failed(NtStatus::DELETE_PENDING);
        }
        let open_access = if req.overwrite { req.access | FILE_WRITE_DATA } else { req.access };
        let creq = OpenCacheRequest {
            open: req.open,
            access: open_access,
            overwrite: req.overwrite,
            created: req.created,
            is_directory: req.is_directory,
            has_brlocks: !req.overwrite && self.locks.lock().has_locks_below(req.allocation_size),
            sharing_violation: self.shares.sharing_violation(open_access, req.share),
            first_attempt: req.first_attempt,
            request: &req.request,
        };
        let (breaks, step) = self.cache.open(&creq, now);
        let result = match step {
            OpenStep::Wait => {
                if !self.parked.contains(&req.token) {
                    self.parked.push(req.token);
                }
                OpenResult::Wait
            }
            OpenStep::SharingViolation => OpenResult::Failed(NtStatus::SHARING_VIOLATION),
            OpenStep::Granted(g) => {
                self.shares.insert(ShareEntry {
                    open: req.open,
                    access: req.access,
                    share: req.share,
                    delete_on_close: req.delete_on_close,
                });
                OpenResult::Granted(g)
            }
        };
        OpenOutcome { breaks, result }
    }

    /// A parked CREATE was cancelled or its connection went away.
    pub fn unpark(&mut self, token: u64) -> bool {
        let before = self.parked.len();
        self.parked.retain(|&t| t != token);
        before != self.parked.len()
    }

    /// CLOSE (also tree disconnect, logoff, connection loss) of an open.
    pub fn close(&mut self, open: OpenId) -> CloseOutcome {
        let lock_completions = self.locks.lock().close_open(open);
        let effect = self.shares.remove(open);
        let released_lease = self.cache.close(open);
        CloseOutcome {
            lock_completions,
            delete: effect.delete,
            remaining: effect.remaining,
            released_lease,
            retry: self.take_parked(),
        }
    }

    /// READ: byte-range lock check (MS-SMB2 3.3.5.12 via MS-FSA 2.1.5.2).
    pub fn check_read(&self, open: OpenId, offset: u64, length: u64) -> Result<(), NtStatus> {
        self.locks.lock().check_io(open, offset, length, false)
    }

    /// WRITE: lock check, then the breaks a write causes.
    pub fn before_write(
        &mut self,
        open: OpenId,
        offset: u64,
        length: u64,
        now: Instant,
    ) -> Result<Vec<Break>, NtStatus> {
        self.locks.lock().check_io(open, offset, length, true)?;
        Ok(self.cache.contend_level2(open, now))
    }

    /// SET_INFO end-of-file / allocation, and a WRITE whose lock check
    /// passed: the breaks a size change or write causes.
    pub fn before_truncate(&mut self, open: OpenId, now: Instant) -> Vec<Break> {
        self.cache.contend_level2(open, now)
    }

    /// LOCK: run the request; a granted lock below the allocation size
    /// breaks read caching (smbtorture `smb2.oplock.brl1`, `smb2.lease.lock1`).
    pub fn lock(
        &mut self,
        open: OpenId,
        req: &LockRequest<'_>,
        allocation_size: u64,
        now: Instant,
    ) -> (LockReply, Vec<Break>) {
        let reply = self.locks.lock().smb2_lock(open, req);
        let breaks = self.after_lock(open, req, &reply, allocation_size, now);
        (reply, breaks)
    }

    /// The caching side of a LOCK whose locking ran without the open table
    /// (see [`StreamLocks`]): a granted lock below the allocation size
    /// breaks read caching.
    pub fn after_lock(
        &mut self,
        open: OpenId,
        req: &LockRequest<'_>,
        reply: &LockReply,
        allocation_size: u64,
        now: Instant,
    ) -> Vec<Break> {
        let locked = reply.status == Some(NtStatus::SUCCESS)
            && req.elements.first().is_some_and(|e| e.flags & super::locks::LOCKFLAG_UNLOCK == 0)
            && req.elements.iter().any(|e| e.offset < allocation_size);
        if locked { self.cache.contend_level2(open, now) } else { Vec::new() }
    }

    /// OPLOCK_BREAK acknowledgment: the OplockLevel to answer and parked
    /// CREATEs to rerun.
    pub fn oplock_ack(&mut self, open: OpenId, level: u8) -> Result<(u8, Vec<u64>), NtStatus> {
        let granted = self.cache.oplock_ack(open, level)?;
        Ok((granted, self.take_parked()))
    }

    /// LEASE_BREAK acknowledgment.
    pub fn lease_ack(&mut self, id: &LeaseId, state: Caching, now: Instant) -> Result<LeaseAck, NtStatus> {
        let (state, breaks) = self.cache.lease_ack(id, state, now)?;
        Ok(LeaseAck { state, breaks, retry: self.take_parked() })
    }

    /// When [`StreamState::next_deadline`] passes: unacknowledged breaks
    /// count as acknowledged to none; parked CREATEs to rerun.
    pub fn on_timer(&mut self, now: Instant) -> Vec<u64> {
        if self.cache.expire(now) { self.take_parked() } else { Vec::new() }
    }

    /// Earliest break deadline on this stream.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.cache.next_deadline()
    }

    fn take_parked(&mut self) -> Vec<u64> {
        std::mem::take(&mut self.parked)
    }
}

fn failed(status: NtStatus) -> OpenOutcome {
    OpenOutcome { breaks: Vec::new(), result: OpenResult::Failed(status) }
}
