//! Shared harness for the oplock and lease tests: smbtorture `smb2.oplock.*` (oplock.c) and smbtorture `smb2.oplock.*` (oplock.c) and
//! `smb2.lease.*` (lease.c), driven through `StreamState` as the engine
//! would drive it. "The client acks" means what smbtorture's break
//! handlers do: acknowledge to the level the break offered.

use std::time::Instant;

use crate::engine::fsa::OpenId;
use crate::engine::fsa::access::*;
use crate::engine::fsa::lease::*;
use crate::engine::fsa::locks::{LOCKFLAG_EXCLUSIVE, LOCKFLAG_FAIL_IMMEDIATELY, LockRequest};
use crate::engine::fsa::sharing::{FILE_SHARE_DELETE, FILE_SHARE_READ, FILE_SHARE_WRITE};
use crate::engine::fsa::stream::*;
use crate::wire::lock::LockElement;
use crate::wire::{Guid, NtStatus};

pub(super) const SHARE_ALL: u32 = FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE;
pub(super) const STAT: u32 = FILE_READ_ATTRIBUTES | FILE_WRITE_ATTRIBUTES | SYNCHRONIZE;
pub(super) const CLIENT: Guid = Guid([7; 16]);

#[derive(Clone, Copy)]
pub(super) struct Req {
    pub(super) access: u32,
    pub(super) share: u32,
    pub(super) overwrite: bool,
    pub(super) created: bool,
    pub(super) dir: bool,
    pub(super) request: CacheRequest,
}

pub(super) fn req(request: CacheRequest) -> Req {
    Req { access: FILE_ALL_ACCESS, share: SHARE_ALL, overwrite: false, created: false, dir: false, request }
}

pub(super) fn oplock(level: u8) -> CacheRequest {
    CacheRequest::Oplock(level)
}

pub(super) fn st(s: &str) -> Caching {
    s.chars().fold(Caching::NONE, |a, c| match c {
        'R' => a.or(Caching::R),
        'W' => a.or(Caching::W),
        'H' => a.or(Caching::H),
        _ => a,
    })
}

pub(super) fn lid(key: u8) -> LeaseId {
    LeaseId { client: CLIENT, key: LeaseKey([key; 16]) }
}

pub(super) fn lease(key: u8, state: &str) -> CacheRequest {
    CacheRequest::Lease(LeaseRequest { id: lid(key), state: st(state), v2: None })
}

pub(super) fn lease_v2(key: u8, state: &str, epoch: u16) -> CacheRequest {
    CacheRequest::Lease(LeaseRequest { id: lid(key), state: st(state), v2: Some((None, epoch)) })
}

pub(super) struct T {
    pub(super) s: StreamState,
    pub(super) now: Instant,
    next: u64,
}

impl T {
    pub(super) fn new() -> Self {
        Self { s: StreamState::new(), now: Instant::now(), next: 1 }
    }

    pub(super) fn attempt(&mut self, open: OpenId, r: &Req, first: bool) -> OpenOutcome {
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
    pub(super) fn open(&mut self, r: Req) -> (OpenId, OpenOutcome) {
        let id = OpenId(self.next);
        self.next += 1;
        (id, self.attempt(id, &r, true))
    }

    /// A CREATE whose breaks the holders acknowledge at once; returns the
    /// final result and every break sent on the way.
    pub(super) fn open_acked(&mut self, r: Req) -> (OpenId, OpenResult, Vec<Break>) {
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
            assert!(retry.contains(&id.0), "parked open must be retried after acks");
            out = self.attempt(id, &r, false);
        }
    }

    pub(super) fn ack(&mut self, b: &Break) -> Vec<u64> {
        match b {
            Break::Oplock { open, level, ack_required: true } => self.s.oplock_ack(*open, *level).expect("ack").1,
            Break::Lease { id, to, ack_required: true, .. } => self.s.lease_ack(id, *to, self.now).expect("ack").retry,
            _ => Vec::new(),
        }
    }

    pub(super) fn lease_state(&self, key: u8) -> Option<Caching> {
        self.s.cache.lease_state(&lid(key))
    }
}

pub(super) fn granted(r: &OpenResult) -> CacheGrant {
    match r {
        OpenResult::Granted(g) => *g,
        other => panic!("not granted: {other:?}"),
    }
}

pub(super) fn lease_of(r: &OpenResult) -> LeaseGrant {
    match granted(r) {
        CacheGrant::Lease(l) => l,
        other => panic!("no lease: {other:?}"),
    }
}

pub(super) fn oplock_breaks(b: &[Break]) -> Vec<(OpenId, u8)> {
    b.iter()
        .filter_map(|b| match b {
            Break::Oplock { open, level, .. } => Some((*open, *level)),
            _ => None,
        })
        .collect()
}

pub(super) fn lease_breaks(b: &[Break]) -> Vec<(u8, Caching, Caching)> {
    b.iter()
        .filter_map(|b| match b {
            Break::Lease { id, from, to, .. } => Some((id.key.0[0], *from, *to)),
            _ => None,
        })
        .collect()
}

impl Req {
    pub(super) fn with_share(self, share: u32) -> Self {
        Req { share, ..self }
    }
}

pub(super) fn lock_one(t: &mut T, open: OpenId, offset: u64) -> Vec<Break> {
    let els = [LockElement { offset, length: 1, flags: LOCKFLAG_EXCLUSIVE | LOCKFLAG_FAIL_IMMEDIATELY }];
    let r = LockRequest { elements: &els, lock_sequence: 0, check_sequence: false, token: 0, max_held: usize::MAX };
    let (reply, breaks) = t.s.lock(open, &r, 4096, t.now);
    assert_eq!(reply.status, Some(NtStatus::SUCCESS));
    breaks
}
