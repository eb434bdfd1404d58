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

use super::OpenId;
use super::access::{FILE_READ_ATTRIBUTES, FILE_WRITE_ATTRIBUTES, READ_CONTROL, SYNCHRONIZE};
use super::lease::{
    BREAK_TIMEOUT, Break, CacheGrant, CacheRequest, Caching, LEASE_FLAG_BREAK_IN_PROGRESS,
    LEASE_FLAG_PARENT_LEASE_KEY_SET, LeaseGrant, LeaseId, LeaseKey, LeaseRequest, level,
};
use crate::wire::NtStatus;

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
    Oplock {
        level: Caching,
        breaking: Option<Pending>,
    },
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
        let delay_mask = if req.sharing_violation {
            Caching::H
        } else {
            Caching::W
        };
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
            scan.delay |=
                state.intersects(delay_mask) || (is_lease && breaking && !req.first_attempt);
            breaks.extend(self.request_break(i, to, now));
        }
        scan
    }

    /// The grant for a CREATE that may proceed; records the open.
    fn grant(&mut self, req: &OpenCacheRequest<'_>, scan: &Scan) -> CacheGrant {
        let requested = match req.request {
            CacheRequest::None => Caching::NONE,
            CacheRequest::Oplock(_) if !req.created && is_oplock_stat_open(req.access) => {
                Caching::NONE
            }
            CacheRequest::Oplock(l) => Caching::from_oplock(*l),
            CacheRequest::Lease(l) => l.state,
        };
        let is_lease = matches!(req.request, CacheRequest::Lease(_));
        let mut g = requested;
        if req.is_directory {
            // No oplocks on directories; directory leases are R or RH
            // (Windows ignores a W request, as Samba notes).
            g = if is_lease {
                g.minus(Caching::W)
            } else {
                Caching::NONE
            };
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
                self.entries.push(Entry {
                    open: req.open,
                    access: req.access,
                    holder: Holder::Lease(l.id),
                });
                CacheGrant::Lease(grant)
            }
            _ => {
                let lvl = g.to_oplock();
                let holder = if lvl == level::NONE {
                    Holder::Plain
                } else {
                    Holder::Oplock {
                        level: Caching::from_oplock(lvl),
                        breaking: None,
                    }
                };
                self.entries.push(Entry {
                    open: req.open,
                    access: req.access,
                    holder,
                });
                if lvl == level::NONE {
                    CacheGrant::None
                } else {
                    CacheGrant::Oplock(lvl)
                }
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
            let upgrade = req.state.contains(l.state)
                && granted != l.state
                && granted == req.state
                && l.breaking.is_none();
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
        let still_used = self
            .entries
            .iter()
            .any(|x| matches!(x.holder, Holder::Lease(i) if i == id));
        if still_used {
            return None;
        }
        self.leases.retain(|l| l.id != id);
        Some(id)
    }

    /// The current grant of an open (for a durable reconnect or a query).
    pub fn grant_of(&self, open: OpenId) -> CacheGrant {
        match self
            .entries
            .iter()
            .find(|e| e.open == open)
            .map(|e| e.holder)
        {
            Some(Holder::Oplock { level, .. }) if !level.is_none() => {
                CacheGrant::Oplock(level.to_oplock())
            }
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
        match self
            .entries
            .iter()
            .find(|e| e.open == open)
            .map(|e| e.holder)
        {
            Some(Holder::Oplock { breaking, .. }) => breaking.is_some(),
            Some(Holder::Lease(id)) => self.lease(&id).is_some_and(|l| l.breaking.is_some()),
            _ => false,
        }
    }

    /// The current state of a lease on this stream.
    pub fn lease_state(&self, id: &LeaseId) -> Option<Caching> {
        self.lease(id).map(|l| l.state)
    }

    /// OPLOCK_BREAK acknowledgment (MS-SMB2 3.3.5.22.1): the resulting
    /// OplockLevel for the response. Acknowledging when no acknowledgment
    /// is expected (e.g. after Level II to none) is
    /// INVALID_OPLOCK_PROTOCOL (smbtorture `smb2.oplock.levelii500`).
    pub fn oplock_ack(&mut self, open: OpenId, ack_level: u8) -> Result<u8, NtStatus> {
        let e = self
            .entries
            .iter_mut()
            .find(|e| e.open == open)
            .ok_or(NtStatus::INVALID_OPLOCK_PROTOCOL)?;
        let Holder::Oplock {
            level: ref mut lvl,
            breaking: ref mut b,
        } = e.holder
        else {
            return Err(NtStatus::INVALID_OPLOCK_PROTOCOL);
        };
        let pending = b.ok_or(NtStatus::INVALID_OPLOCK_PROTOCOL)?;
        if ack_level != level::NONE && ack_level != level::II {
            return Err(NtStatus::INVALID_PARAMETER);
        }
        *b = None;
        *lvl = if pending.to.is_none() || ack_level == level::NONE {
            Caching::NONE
        } else {
            Caching::R
        };
        if lvl.is_none() {
            e.holder = Holder::Plain;
            return Ok(level::NONE);
        }
        Ok(level::II)
    }

    /// LEASE_BREAK acknowledgment (MS-SMB2 3.3.5.22.2): the acknowledged
    /// state for the response, plus a further break when the client kept
    /// more than the latest required state (it then breaks in steps:
    /// smbtorture `smb2.lease.breaking3`).
    pub fn lease_ack(
        &mut self,
        id: &LeaseId,
        state: Caching,
        now: Instant,
    ) -> Result<(Caching, Vec<Break>), NtStatus> {
        let opens = self.lease_opens(id);
        let l = self
            .leases
            .iter_mut()
            .find(|l| l.id == *id)
            .ok_or(NtStatus::OBJECT_NAME_NOT_FOUND)?;
        let (requested, pending) = l.breaking.ok_or(NtStatus::UNSUCCESSFUL)?;
        if !requested.contains(state) {
            return Err(NtStatus::REQUEST_NOT_ACCEPTED);
        }
        l.state = state;
        l.breaking = None;
        let required = pending.to;
        if state.minus(required).is_none() {
            return Ok((state, Vec::new()));
        }
        let ack_required = state.intersects(Caching::W.or(Caching::H));
        let to = if ack_required {
            required.or(Caching::R)
        } else {
            required
        };
        if ack_required {
            l.breaking = Some((
                to,
                Pending {
                    to: required,
                    deadline: now + BREAK_TIMEOUT,
                },
            ));
        } else {
            l.state = Caching::NONE;
        }
        let b = lease_break(l, opens, state, to, ack_required);
        Ok((state, vec![b]))
    }

    /// A write, a set of end-of-file or allocation, or a byte-range lock
    /// by `writer` (MS-FSA 2.1.4.12 WRITE/SET_INFORMATION/LOCK): every
    /// read-caching holder is broken to none, the writer's own Level II
    /// oplock included (smbtorture `smb2.oplock.batch6`, `brl1`) but not its
    /// own lease (`smb2.lease.nobreakself`). Nothing to do if the writer
    /// caches writes itself.
    pub fn contend_level2(&mut self, writer: OpenId, now: Instant) -> Vec<Break> {
        let own = match self
            .entries
            .iter()
            .find(|e| e.open == writer)
            .map(|e| e.holder)
        {
            Some(Holder::Oplock { level, .. }) if level.contains(Caching::W) => return Vec::new(),
            Some(Holder::Lease(id)) => {
                if self
                    .lease_state(&id)
                    .is_some_and(|s| s.contains(Caching::W))
                {
                    return Vec::new();
                }
                Some(id)
            }
            _ => None,
        };
        self.break_matching(now, |state, lease| {
            (state.contains(Caching::R) && (lease.is_none() || lease != own))
                .then_some(Caching::NONE)
        })
    }

    /// Rename or delete of this stream by an open with lease `except`
    /// (MS-FSA 2.1.4.12 OPEN_BREAK_H semantics for other clients' handle
    /// caching): other leases lose H. `true`: the operation must wait for
    /// the acknowledgments.
    pub fn break_handle_caching(
        &mut self,
        except: Option<LeaseId>,
        now: Instant,
    ) -> (Vec<Break>, bool) {
        let breaks = self.break_matching(now, |state, lease| {
            (lease.is_some() && lease != except && state.contains(Caching::H))
                .then(|| state.minus(Caching::H))
        });
        let wait = breaks.iter().any(|b| {
            matches!(
                b,
                Break::Lease {
                    ack_required: true,
                    ..
                }
            )
        });
        (breaks, wait)
    }

    /// A child of this directory was created, deleted, renamed or had its
    /// attributes changed: directory leases are broken to none, except the
    /// one named as ParentLeaseKey by the open that did it.
    pub fn break_parent_leases(&mut self, except: Option<LeaseKey>, now: Instant) -> Vec<Break> {
        self.break_matching(now, |state, lease| {
            let mine = lease.is_some_and(|id| Some(id.key) == except);
            (lease.is_some() && !mine && state.intersects(Caching::RH)).then_some(Caching::NONE)
        })
    }

    /// The earliest break deadline, for the engine's timer.
    pub fn next_deadline(&self) -> Option<Instant> {
        let oplocks = self.entries.iter().filter_map(|e| match e.holder {
            Holder::Oplock {
                breaking: Some(p), ..
            } => Some(p.deadline),
            _ => None,
        });
        let leases = self
            .leases
            .iter()
            .filter_map(|l| l.breaking.map(|(_, p)| p.deadline));
        oplocks.chain(leases).min()
    }

    /// Expire breaks whose deadline passed as if acknowledged to none
    /// (MS-SMB2 3.3.2.1 Oplock/Lease Break Acknowledgment Timer, Samba
    /// `lease_timeout_handler()`). True if anything changed.
    pub fn expire(&mut self, now: Instant) -> bool {
        let mut changed = false;
        for e in &mut self.entries {
            if let Holder::Oplock {
                breaking: Some(p), ..
            } = e.holder
                && p.deadline <= now
            {
                e.holder = Holder::Plain;
                changed = true;
            }
        }
        for l in &mut self.leases {
            if l.breaking.is_some_and(|(_, p)| p.deadline <= now) {
                l.state = Caching::NONE;
                l.breaking = None;
                changed = true;
            }
        }
        changed
    }

    /// Send each holder the break `rule(state, lease)` asks for, once per
    /// lease.
    fn break_matching(
        &mut self,
        now: Instant,
        rule: impl Fn(Caching, Option<LeaseId>) -> Option<Caching>,
    ) -> Vec<Break> {
        let mut out = Vec::new();
        let mut seen: Vec<LeaseId> = Vec::new();
        for i in 0..self.entries.len() {
            let Some(e) = self.entries.get(i).copied() else {
                break;
            };
            let (state, lease) = match e.holder {
                Holder::Plain => continue,
                Holder::Oplock { level, .. } => (level, None),
                Holder::Lease(id) => {
                    if seen.contains(&id) {
                        continue;
                    }
                    seen.push(id);
                    match self.lease_state(&id) {
                        Some(s) => (s, Some(id)),
                        None => continue,
                    }
                }
            };
            if let Some(to) = rule(state, lease) {
                out.extend(self.request_break(i, to, now));
            }
        }
        out
    }

    /// Ask holder `i` to go down to `to` (Samba
    /// `process_oplock_break_message()`): nothing if it is there already or
    /// a break is under way (a lease then just lowers its target).
    fn request_break(&mut self, i: usize, to: Caching, now: Instant) -> Option<Break> {
        let e = self.entries.get_mut(i)?;
        let open = e.open;
        match e.holder {
            Holder::Plain => None,
            Holder::Oplock {
                level: lvl,
                breaking,
            } => {
                let to = to.and(lvl).and(Caching::R);
                if breaking.is_some() || to == lvl {
                    return None;
                }
                let ack_required = lvl != Caching::R;
                e.holder = if ack_required {
                    Holder::Oplock {
                        level: lvl,
                        breaking: Some(Pending {
                            to,
                            deadline: now + BREAK_TIMEOUT,
                        }),
                    }
                } else {
                    Holder::Plain
                };
                Some(Break::Oplock {
                    open,
                    level: to.to_oplock(),
                    ack_required,
                })
            }
            Holder::Lease(id) => self.request_lease_break(&id, to, now),
        }
    }

    fn request_lease_break(&mut self, id: &LeaseId, to: Caching, now: Instant) -> Option<Break> {
        let opens = self.lease_opens(id);
        let l = self.leases.iter_mut().find(|l| l.id == *id)?;
        let to = to.and(l.state);
        if let Some((_, pending)) = l.breaking.as_mut() {
            pending.to = pending.to.and(to);
            return None;
        }
        if to == l.state {
            return None;
        }
        l.epoch = l.epoch.wrapping_add(1);
        let from = l.state;
        if from == Caching::R {
            l.state = Caching::NONE;
            return Some(lease_break(l, opens, from, to, false));
        }
        l.breaking = Some((
            to,
            Pending {
                to,
                deadline: now + BREAK_TIMEOUT,
            },
        ));
        Some(lease_break(l, opens, from, to, true))
    }

    fn lease(&self, id: &LeaseId) -> Option<&Lease> {
        self.leases.iter().find(|l| l.id == *id)
    }

    fn lease_opens(&self, id: &LeaseId) -> Vec<OpenId> {
        self.entries
            .iter()
            .filter(|e| matches!(e.holder, Holder::Lease(i) if i == *id))
            .map(|e| e.open)
            .collect()
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

fn lease_break(
    l: &Lease,
    opens: Vec<OpenId>,
    from: Caching,
    to: Caching,
    ack_required: bool,
) -> Break {
    Break::Lease {
        id: l.id,
        opens,
        from,
        to,
        epoch: if l.v2 { l.epoch } else { 0 },
        ack_required,
    }
}
