//! The break side of [`super::CacheState`]: acknowledgments (MS-SMB2
//! 3.3.5.22), breaks caused by writes, locks, renames and changes inside a
//! directory (MS-FSA 2.1.4.12), and the acknowledgment timer (MS-SMB2
//! 3.3.2.1).

use std::time::Instant;

use super::{CacheState, Holder, Lease, Pending};
use crate::engine::fsa::OpenId;
use crate::engine::fsa::lease::{BREAK_TIMEOUT, Break, Caching, LeaseId, LeaseKey, level};
use crate::wire::NtStatus;

impl CacheState {
    /// OPLOCK_BREAK acknowledgment (MS-SMB2 3.3.5.22.1): the resulting
    /// OplockLevel for the response. Acknowledging when no acknowledgment
    /// is expected (e.g. after Level II to none) is
    /// INVALID_OPLOCK_PROTOCOL (smbtorture `smb2.oplock.levelii500`).
    pub fn oplock_ack(&mut self, open: OpenId, ack_level: u8) -> Result<u8, NtStatus> {
        let e = self.entries.iter_mut().find(|e| e.open == open).ok_or(NtStatus::INVALID_OPLOCK_PROTOCOL)?;
        let Holder::Oplock { level: ref mut lvl, breaking: ref mut b } = e.holder else {
            return Err(NtStatus::INVALID_OPLOCK_PROTOCOL);
        };
        let pending = b.ok_or(NtStatus::INVALID_OPLOCK_PROTOCOL)?;
        if ack_level != level::NONE && ack_level != level::II {
            return Err(NtStatus::INVALID_PARAMETER);
        }
        *b = None;
        *lvl = if pending.to.is_none() || ack_level == level::NONE { Caching::NONE } else { Caching::R };
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
    pub fn lease_ack(&mut self, id: &LeaseId, state: Caching, now: Instant) -> Result<(Caching, Vec<Break>), NtStatus> {
        let opens = self.lease_opens(id);
        let l = self.leases.iter_mut().find(|l| l.id == *id).ok_or(NtStatus::OBJECT_NAME_NOT_FOUND)?;
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
        let to = if ack_required { required.or(Caching::R) } else { required };
        if ack_required {
            l.breaking = Some((to, Pending { to: required, deadline: now + BREAK_TIMEOUT }));
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
        let own = match self.entries.iter().find(|e| e.open == writer).map(|e| e.holder) {
            Some(Holder::Oplock { level, .. }) if level.contains(Caching::W) => return Vec::new(),
            Some(Holder::Lease(id)) => {
                if self.lease_state(&id).is_some_and(|s| s.contains(Caching::W)) {
                    return Vec::new();
                }
                Some(id)
            }
            _ => None,
        };
        self.break_matching(now, |state, lease| {
            (state.contains(Caching::R) && (lease.is_none() || lease != own)).then_some(Caching::NONE)
        })
    }

    /// Rename or delete of this stream by an open with lease `except`
    /// (MS-FSA 2.1.4.12 OPEN_BREAK_H semantics for other clients' handle
    /// caching): other leases lose H. `true`: the operation must wait for
    /// the acknowledgments.
    pub fn break_handle_caching(&mut self, except: Option<LeaseId>, now: Instant) -> (Vec<Break>, bool) {
        let breaks = self.break_matching(now, |state, lease| {
            (lease.is_some() && lease != except && state.contains(Caching::H)).then(|| state.minus(Caching::H))
        });
        let wait = breaks.iter().any(|b| matches!(b, Break::Lease { ack_required: true, .. }));
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
            Holder::Oplock { breaking: Some(p), .. } => Some(p.deadline),
            _ => None,
        });
        let leases = self.leases.iter().filter_map(|l| l.breaking.map(|(_, p)| p.deadline));
        oplocks.chain(leases).min()
    }

    /// Expire breaks whose deadline passed as if acknowledged to none
    /// (MS-SMB2 3.3.2.1 Oplock/Lease Break Acknowledgment Timer, Samba
    /// `lease_timeout_handler()`). True if anything changed.
    pub fn expire(&mut self, now: Instant) -> bool {
        let mut changed = false;
        for e in &mut self.entries {
            if let Holder::Oplock { breaking: Some(p), .. } = e.holder
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
    pub(super) fn request_break(&mut self, i: usize, to: Caching, now: Instant) -> Option<Break> {
        let e = self.entries.get_mut(i)?;
        let open = e.open;
        match e.holder {
            Holder::Plain => None,
            Holder::Oplock { level: lvl, breaking } => {
                let to = to.and(lvl).and(Caching::R);
                if breaking.is_some() || to == lvl {
                    return None;
                }
                let ack_required = lvl != Caching::R;
                e.holder = if ack_required {
                    Holder::Oplock { level: lvl, breaking: Some(Pending { to, deadline: now + BREAK_TIMEOUT }) }
                } else {
                    Holder::Plain
                };
                Some(Break::Oplock { open, level: to.to_oplock(), ack_required })
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
        l.breaking = Some((to, Pending { to, deadline: now + BREAK_TIMEOUT }));
        Some(lease_break(l, opens, from, to, true))
    }
}

fn lease_break(l: &Lease, opens: Vec<OpenId>, from: Caching, to: Caching, ack_required: bool) -> Break {
    Break::Lease { id: l.id, opens, from, to, epoch: if l.v2 { l.epoch } else { 0 }, ack_required }
}
