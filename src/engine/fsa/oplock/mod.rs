//! Oplock and lease state of one stream (MS-FSA 2.1.4.12 break rules,
//! 2.1.5.17-2.1.5.19 requests and acknowledgments; MS-SMB2 3.3.5.9.8,
//! 3.3.5.22, 3.3.4.6, 3.3.4.7), decided the way smbtorture's `smb2.oplock`
//! and `smb2.lease` suites observe Windows (and Samba's `delay_for_oplock()`
//! reproduces).
//!
//! A new open is checked against every other holder:
//! - without a sharing violation, holders lose W (and must acknowledge
//!   before the open proceeds); with one, they lose H (so a batch / RWH
//!   holder can close its cached handle) and the open then fails;
//! - an overwriting open breaks everything to none;
//! - stat opens (only attribute/synchronize access) break nothing.
//!
//! Breaks that need an acknowledgment carry a deadline; the open that
//! caused them waits ([`OpenStep::Wait`]) and is retried by the engine when
//! an acknowledgment, a close or a timeout changes the state.

use std::time::Instant;

mod breaks;

use super::OpenId;
use super::access::{FILE_READ_ATTRIBUTES, FILE_WRITE_ATTRIBUTES, READ_CONTROL, SYNCHRONIZE};
use super::lease::{
    Break, CacheGrant, CacheRequest, Caching, LEASE_FLAG_BREAK_IN_PROGRESS, LEASE_FLAG_PARENT_LEASE_KEY_SET,
    LeaseGrant, LeaseId, LeaseKey, LeaseRequest, level,
};

/// An open that neither takes part in oplock breaks nor gets an oplock on
/// an existing file (smbtorture `smb2.oplock.statopen1`).
pub fn is_oplock_stat_open(access: u32) -> bool {
    let stat = SYNCHRONIZE | FILE_READ_ATTRIBUTES | FILE_WRITE_ATTRIBUTES;
    access & stat != 0 && access & !stat == 0
}

/// Same for leases, where READ_CONTROL also counts as a stat open
/// (smbtorture `smb2.lease.statopen4`).
pub fn is_lease_stat_open(access: u32) -> bool {
    let stat = SYNCHRONIZE | FILE_READ_ATTRIBUTES | FILE_WRITE_ATTRIBUTES | READ_CONTROL;
    access & stat != 0 && access & !stat == 0
}

/// A CREATE as the oplock logic sees it.
#[derive(Debug, Clone, Copy)]
pub struct OpenCacheRequest<'a> {
    /// The new open.
    pub open: OpenId,
    /// Its access mask, with FILE_WRITE_DATA added for an overwriting
    /// disposition (Samba `open_access_mask`).
    pub access: u32,
    /// SUPERSEDE / OVERWRITE / OVERWRITE_IF of an existing file.
    pub overwrite: bool,
    /// The stream is a directory: no oplocks, leases without W.
    pub is_directory: bool,
    /// Byte-range locks exist below the allocation size: no read caching
    /// (MS-FSA 2.1.5.17, smbtorture `smb2.lease.lock2`).
    pub has_brlocks: bool,
    /// The CREATE created the stream (a stat open of an existing file gets
    /// no oplock, a creating one may: smbtorture `smb2.oplock.batch9`).
    pub created: bool,
    /// The share-mode check failed ([`super::sharing::ShareModes::sharing_violation`]).
    pub sharing_violation: bool,
    /// False when the engine retries a parked CREATE.
    pub first_attempt: bool,
    /// What the client asked for.
    pub request: &'a CacheRequest,
}

/// Where a CREATE stands after the oplock check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenStep {
    /// Breaks are in progress: park the CREATE, retry later.
    Wait,
    /// No break to wait for, but the share modes conflict.
    SharingViolation,
    /// The open is recorded with this grant.
    Granted(CacheGrant),
}

#[derive(Debug, Clone, Copy)]
struct Pending {
    to: Caching,
    deadline: Instant,
}

#[derive(Debug, Clone, Copy)]
enum Holder {
    Plain,
    Oplock { level: Caching, breaking: Option<Pending> },
    Lease(LeaseId),
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    open: OpenId,
    access: u32,
    holder: Holder,
}

#[derive(Debug, Clone)]
struct Lease {
    id: LeaseId,
    state: Caching,
    /// Breaking: (requested, required) break-to states and deadline.
    breaking: Option<(Caching, Pending)>,
    v2: bool,
    parent: Option<LeaseKey>,
    epoch: u16,
}

/// Oplocks and leases of one stream.
#[derive(Debug, Default)]
pub struct CacheState {
    entries: Vec<Entry>,
    leases: Vec<Lease>,
}

/// What the scan over existing holders found (Samba `delay_for_oplock_state`).
#[derive(Debug, Default)]
struct Scan {
    delay: bool,
    got_handle_lease: bool,
    got_oplock: bool,
    disallow_write: bool,
}

impl CacheState {
    /// No opens.
    pub fn new() -> Self {
        Self::default()
    }

    /// No opens recorded.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// CREATE: break what conflicts, then wait, fail or grant.
    pub fn open(&mut self, req: &OpenCacheRequest<'_>, now: Instant) -> (Vec<Break>, OpenStep) {
        let own = match req.request {
            CacheRequest::Lease(l) => Some(l.id),
            _ => None,
        };
        let mut breaks = Vec::new();
        let scan = self.scan_and_break(req, own, now, &mut breaks);
        if scan.delay {
            return (breaks, OpenStep::Wait);
        }
        if req.sharing_violation {
            return (breaks, OpenStep::SharingViolation);
        }
        let grant = self.grant(req, &scan);
        (breaks, OpenStep::Granted(grant))
    }

    fn scan_and_break(
        &mut self,
        req: &OpenCacheRequest<'_>,
        own: Option<LeaseId>,
        now: Instant,
        breaks: &mut Vec<Break>,
    ) -> Scan {
        let mut scan = Scan::default();
        let stat = is_oplock_stat_open(req.access);
        let lease_stat = is_lease_stat_open(req.access);
        let delay_mask = if req.sharing_violation { Caching::H } else { Caching::W };
        let wipe = req.overwrite && !req.sharing_violation;
        let mut seen: Vec<LeaseId> = Vec::new();
        for i in 0..self.entries.len() {
            let Some(e) = self.entries.get(i).copied() else {
                break;
            };
            let (state, breaking, is_lease) = match e.holder {
                Holder::Plain => (Caching::NONE, false, false),
                Holder::Oplock { level, breaking } => (level, breaking.is_some(), false),
                Holder::Lease(id) if Some(id) == own => continue,
                Holder::Lease(id) => match self.lease(&id) {
                    Some(l) => (l.state, l.breaking.is_some(), true),
                    None => continue,
                },
            };
            scan.got_handle_lease |= state.contains(Caching::H);
            scan.got_oplock |= !is_lease && !state.is_none();
            scan.disallow_write |= is_lease || !state.is_none() || !is_oplock_stat_open(e.access);
            if stat || (is_lease && lease_stat) {
                continue;
            }
            if let Holder::Lease(id) = e.holder {
                if seen.contains(&id) {
                    continue;
                }
                seen.push(id);
            }
            let mut to = state.minus(delay_mask);
            if wipe {
                to = to.minus(Caching::RH);
            }
            // Only a lease that is still breaking holds up opens it does
            // not otherwise conflict with (smbtorture `smb2.lease.breaking3`).
            if state.minus(to).is_none() {
                scan.delay |= breaking && is_lease;
                continue;
            }
            if wipe {
                to = Caching::NONE;
            }
            if !is_lease {
                to = to.and(Caching::R);
            }
            scan.delay |= state.intersects(delay_mask) || (is_lease && breaking && !req.first_attempt);
            breaks.extend(self.request_break(i, to, now));
        }
        scan
    }

    /// The grant for a CREATE that may proceed; records the open.
    fn grant(&mut self, req: &OpenCacheRequest<'_>, scan: &Scan) -> CacheGrant {
        let requested = match req.request {
            CacheRequest::None => Caching::NONE,
            CacheRequest::Oplock(_) if !req.created && is_oplock_stat_open(req.access) => Caching::NONE,
            CacheRequest::Oplock(l) => Caching::from_oplock(*l),
            CacheRequest::Lease(l) => l.state,
        };
        let is_lease = matches!(req.request, CacheRequest::Lease(_));
        let mut g = requested;
        if req.is_directory {
            // No oplocks on directories; directory leases are R or RH
            // (Windows ignores a W request, as Samba notes).
            g = if is_lease { g.minus(Caching::W) } else { Caching::NONE };
        }
        if req.has_brlocks {
            g = g.minus(Caching::RH);
        }
        // Valid lease states all include R (smbtorture `smb2.lease.request`).
        if is_lease && !g.contains(Caching::R) {
            g = Caching::NONE;
        }
        if scan.disallow_write {
            g = g.minus(Caching::W);
        }
        if is_lease && scan.got_oplock {
            g = g.minus(Caching::H);
        }
        if !is_lease && scan.got_handle_lease {
            g = Caching::NONE;
        }
        match req.request {
            CacheRequest::Lease(l) => {
                let grant = self.grant_lease(l, g);
                self.entries.push(Entry { open: req.open, access: req.access, holder: Holder::Lease(l.id) });
                CacheGrant::Lease(grant)
            }
            _ => {
                let lvl = g.to_oplock();
                let holder = if lvl == level::NONE {
                    Holder::Plain
                } else {
                    Holder::Oplock { level: Caching::from_oplock(lvl), breaking: None }
                };
                self.entries.push(Entry { open: req.open, access: req.access, holder });
                if lvl == level::NONE { CacheGrant::None } else { CacheGrant::Oplock(lvl) }
            }
        }
    }

    /// A new lease, or an existing one upgraded only to a strict superset
    /// that can be granted in full and only while not breaking (smbtorture
    /// `smb2.lease.upgrade2/3`, Samba `try_lease_upgrade()`).
    fn grant_lease(&mut self, req: &LeaseRequest, granted: Caching) -> LeaseGrant {
        let (parent, epoch) = match req.v2 {
            Some((p, e)) => (p, e),
            None => (None, 0),
        };
        if let Some(l) = self.leases.iter_mut().find(|l| l.id == req.id) {
            let upgrade =
                req.state.contains(l.state) && granted != l.state && granted == req.state && l.breaking.is_none();
            if upgrade {
                l.state = granted;
                l.epoch = l.epoch.wrapping_add(1);
            }
            return lease_grant(l);
        }
        let bump = u16::from(!granted.is_none());
        let l = Lease {
            id: req.id,
            state: granted,
            breaking: None,
            v2: req.v2.is_some(),
            parent,
            epoch: epoch.wrapping_add(bump),
        };
        let g = lease_grant(&l);
        self.leases.push(l);
        g
    }

    /// CLOSE: forget the open. Returns the lease that went away with its
    /// last open, for [`super::lease::LeaseDirectory::remove`].
    pub fn close(&mut self, open: OpenId) -> Option<LeaseId> {
        let pos = self.entries.iter().position(|e| e.open == open)?;
        let e = self.entries.remove(pos);
        let Holder::Lease(id) = e.holder else {
            return None;
        };
        let still_used = self.entries.iter().any(|x| matches!(x.holder, Holder::Lease(i) if i == id));
        if still_used {
            return None;
        }
        self.leases.retain(|l| l.id != id);
        Some(id)
    }

    /// The current grant of an open (for a durable reconnect or a query).
    pub fn grant_of(&self, open: OpenId) -> CacheGrant {
        match self.entries.iter().find(|e| e.open == open).map(|e| e.holder) {
            Some(Holder::Oplock { level, .. }) if !level.is_none() => CacheGrant::Oplock(level.to_oplock()),
            Some(Holder::Lease(id)) => match self.lease(&id) {
                Some(l) => CacheGrant::Lease(lease_grant(l)),
                None => CacheGrant::None,
            },
            _ => CacheGrant::None,
        }
    }

    /// True if a break sent to this open's oplock or lease awaits an
    /// acknowledgment.
    pub fn is_breaking(&self, open: OpenId) -> bool {
        match self.entries.iter().find(|e| e.open == open).map(|e| e.holder) {
            Some(Holder::Oplock { breaking, .. }) => breaking.is_some(),
            Some(Holder::Lease(id)) => self.lease(&id).is_some_and(|l| l.breaking.is_some()),
            _ => false,
        }
    }

    /// The current state of a lease on this stream.
    pub fn lease_state(&self, id: &LeaseId) -> Option<Caching> {
        self.lease(id).map(|l| l.state)
    }

    fn lease(&self, id: &LeaseId) -> Option<&Lease> {
        self.leases.iter().find(|l| l.id == *id)
    }

    fn lease_opens(&self, id: &LeaseId) -> Vec<OpenId> {
        self.entries.iter().filter(|e| matches!(e.holder, Holder::Lease(i) if i == *id)).map(|e| e.open).collect()
    }
}

fn lease_grant(l: &Lease) -> LeaseGrant {
    let mut flags = 0;
    if l.breaking.is_some() {
        flags |= LEASE_FLAG_BREAK_IN_PROGRESS;
    }
    if l.v2 && l.parent.is_some() {
        flags |= LEASE_FLAG_PARENT_LEASE_KEY_SET;
    }
    LeaseGrant {
        key: l.id.key,
        state: l.state,
        flags,
        v2: l.v2,
        parent: if l.v2 { l.parent } else { None },
        epoch: if l.v2 { l.epoch } else { 0 },
    }
}
