//! Durable handles (MS-SMB2 3.3.5.9.6/.7 v1 DHnQ/DHnC, 3.3.5.9.10/.12 v2
//! DH2Q/DH2C): an open granted a batch oplock or a lease with handle
//! caching survives the loss of its TCP connection for a while, and the
//! same user can reclaim it from a new connection with its FileId (and,
//! for v2, its CreateGuid). Meanwhile it keeps its place in the open
//! table: share modes, byte-range locks, oplock or lease. A conflicting
//! open that would need to break it closes it instead (Windows and Samba
//! do the same: `smb2.durable-open.oplock`).
//!
//! Nothing here is persistent across server restarts (no
//! SMB2_GLOBAL_CAP_PERSISTENT_HANDLES). This file keeps the table of
//! durable opens; detaching them from a connection and closing the expired
//! ones is `engine::teardown`'s.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::engine::fsa::lease::LeaseId;
use crate::engine::fsa::{FileKey, OpenId};
use crate::engine::open::Open;
use crate::types::{OrgId, UserId};
use crate::wire::{Guid, NtStatus};

/// Durable v1 timeout (Samba: 16 minutes; MS-SMB2 leaves it to the server).
pub const V1_TIMEOUT_MS: u32 = 16 * 60 * 1000;
/// Durable v2 default timeout when the client asks for 0 (Windows 2012: 60 s).
pub const V2_DEFAULT_TIMEOUT_MS: u32 = 60 * 1000;
/// Longest v2 timeout granted (Samba: 300 s).
pub const V2_MAX_TIMEOUT_MS: u32 = 300 * 1000;
/// How long a reconnect waits for the connection that still holds the open
/// to let go of it: that connection handles its TCP close, or the
/// PreviousSessionId logoff of MS-SMB2 3.3.5.5.3, on its own task, maybe
/// after the client's new connection already asked for the open.
pub const DETACH_WAIT: Duration = Duration::from_secs(5);

/// Durability of one open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Durable {
    /// v2: the CreateGuid of the DH2Q context (None for v1).
    pub create_guid: Option<Guid>,
    /// How long it survives a disconnect, in milliseconds.
    pub timeout_ms: u32,
    /// Who opened it: only they may reconnect (MS-SMB2 3.3.5.9.7).
    pub org: OrgId,
    /// See `org`.
    pub user: UserId,
    /// The open's lease, which a reconnect must name again.
    pub lease: Option<LeaseId>,
    /// The stream it is open on.
    pub key: FileKey,
}

/// A reconnect parked until an open leaves its connection.
struct DetachWait {
    open: OpenId,
    token: u64,
    deadline: Instant,
    nudged: bool,
}

/// An open whose connection went away.
pub struct Disconnected {
    /// Its durability.
    pub durable: Durable,
    /// The open itself (session and tree ids are stale until reconnected).
    pub open: Open,
    /// When it is closed unless reconnected.
    pub expires: Instant,
}

/// Durable opens of the server: connected ones by id, and the
/// disconnected ones waiting to be reclaimed.
#[derive(Default)]
pub struct Preserved {
    live: HashMap<OpenId, Durable>,
    gone: HashMap<OpenId, Disconnected>,
    /// Disconnected opens a break closed: to be closed outside the table lock.
    reaped: Vec<Disconnected>,
    /// Reconnects waiting for a connected open to be let go of.
    waits: Vec<DetachWait>,
}

/// Why a reconnect was refused.
pub type Refusal = NtStatus;

impl Preserved {
    /// The open was granted durability.
    pub fn mark(&mut self, open: OpenId, d: Durable) {
        self.live.insert(open, d);
    }

    /// The open is durable (connected).
    pub fn get(&self, open: OpenId) -> Option<&Durable> {
        self.live.get(&open)
    }

    /// The open lost durability or closed.
    pub fn forget(&mut self, open: OpenId) {
        self.live.remove(&open);
    }

    /// The open's connection (or session, or tree) went away: keep it if
    /// it is durable and no break is waiting for its acknowledgment (that
    /// one is closed at once, as Windows does); otherwise give it back to
    /// be closed.
    pub fn disconnect(&mut self, open: Open, now: Instant, breaking: bool) -> Option<Open> {
        let id = OpenId(open.file_id.persistent);
        let Some(d) = self.live.remove(&id) else {
            return Some(open);
        };
        if breaking {
            return Some(open);
        }
        let expires = now + Duration::from_millis(u64::from(d.timeout_ms));
        self.gone.insert(id, Disconnected { durable: d, open, expires });
        None
    }

    /// True if the open is durable and disconnected.
    pub fn is_disconnected(&self, open: OpenId) -> bool {
        self.gone.contains_key(&open)
    }

    /// A conflicting open needs this disconnected open broken: it is
    /// closed instead. True if it was disconnected.
    pub fn purge(&mut self, open: OpenId) -> bool {
        match self.gone.remove(&open) {
            Some(d) => {
                self.reaped.push(d);
                true
            }
            None => false,
        }
    }

    /// Purged opens, to be closed (outside the table lock).
    pub fn take_reaped(&mut self) -> Vec<Disconnected> {
        std::mem::take(&mut self.reaped)
    }

    /// Disconnected opens whose timeout passed.
    pub fn expired(&mut self, now: Instant) -> Vec<Disconnected> {
        let ids: Vec<OpenId> = self.gone.iter().filter(|(_, d)| d.expires <= now).map(|(k, _)| *k).collect();
        ids.into_iter().filter_map(|k| self.gone.remove(&k)).collect()
    }

    /// The earliest expiry, if any open is disconnected.
    pub fn next_expiry(&self) -> Option<Instant> {
        self.gone.values().map(|d| d.expires).min()
    }

    /// A durable reconnect (DHnC, or DH2C with `create_guid`): the
    /// disconnected open with this persistent FileId, if the CreateGuid
    /// matches (a v1 reconnect does not name one), the same user asks and
    /// `check` accepts it. Failures leave the open in place: unknown
    /// opens and mismatches are OBJECT_NAME_NOT_FOUND (MS-SMB2 3.3.5.9.7,
    /// 3.3.5.9.12), another user ACCESS_DENIED.
    pub fn reclaim(
        &mut self,
        persistent: u64,
        create_guid: Option<Guid>,
        org: OrgId,
        user: UserId,
        check: impl FnOnce(&Durable, &Open) -> Result<(), Refusal>,
    ) -> Result<Disconnected, Refusal> {
        let id = OpenId(persistent);
        let d = self.gone.get(&id).ok_or(NtStatus::OBJECT_NAME_NOT_FOUND)?;
        // A v1 open has the zero CreateGuid (Samba `smb2srv_open_recreate`:
        // a DH2C with a zero CreateGuid reclaims a v1 open).
        if let Some(g) = create_guid
            && d.durable.create_guid.unwrap_or_default() != g
        {
            return Err(NtStatus::OBJECT_NAME_NOT_FOUND);
        }
        check(&d.durable, &d.open)?;
        if d.durable.org != org || d.durable.user != user {
            return Err(NtStatus::ACCESS_DENIED);
        }
        self.gone.remove(&id).ok_or(NtStatus::OBJECT_NAME_NOT_FOUND)
    }

    /// A reconnect parked under `token` waits until `open` leaves its
    /// connection, or `deadline`.
    pub fn wait_detach(&mut self, open: OpenId, token: u64, deadline: Instant) {
        if !self.waits.iter().any(|w| w.token == token) {
            self.waits.push(DetachWait { open, token, deadline, nudged: false });
        }
    }

    /// True (and the wait is over) if the wait of `token` passed its deadline.
    pub fn wait_expired(&mut self, token: u64, now: Instant) -> bool {
        match self.waits.iter().position(|w| w.token == token) {
            Some(i) if self.waits[i].deadline <= now => {
                self.waits.swap_remove(i);
                true
            }
            _ => false,
        }
    }

    /// The reconnects waiting for `open`, which just left its connection.
    pub fn take_waits(&mut self, open: OpenId) -> Vec<u64> {
        let (done, keep): (Vec<_>, Vec<_>) = std::mem::take(&mut self.waits).into_iter().partition(|w| w.open == open);
        self.waits = keep;
        done.into_iter().map(|w| w.token).collect()
    }

    /// Waits past their deadline, to run once more (and fail); waits left
    /// over by a cancelled reconnect are forgotten a minute later.
    pub fn overdue(&mut self, now: Instant) -> Vec<u64> {
        self.waits.retain(|w| w.deadline + Duration::from_secs(60) > now);
        let mut out = Vec::new();
        for w in self.waits.iter_mut().filter(|w| w.deadline <= now && !w.nudged) {
            w.nudged = true;
            out.push(w.token);
        }
        out
    }

    /// An open (connected or not) created with this CreateGuid
    /// (MS-SMB2 3.3.5.9.10: a DH2Q with a CreateGuid in use is a replay,
    /// or DUPLICATE_OBJECTID).
    pub fn by_create_guid(&self, g: Guid) -> Option<OpenId> {
        self.live
            .iter()
            .find(|(_, d)| d.create_guid == Some(g))
            .map(|(k, _)| *k)
            .or_else(|| self.gone.iter().find(|(_, d)| d.durable.create_guid == Some(g)).map(|(k, _)| *k))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::open::OpenKind;
    use crate::wire::create::FileId;

    const ORG: OrgId = OrgId(1);
    const ALICE: UserId = UserId(7);

    fn open(id: u64) -> Open {
        let pipe = crate::rpc::open_pipe("srvsvc").expect("srvsvc pipe");
        Open {
            file_id: FileId { persistent: id, volatile: id },
            session_id: 1,
            tree_id: 1,
            granted_access: 0,
            kind: OpenKind::Pipe(pipe),
        }
    }

    fn durable(guid: Option<Guid>) -> Durable {
        let key = FileKey { org: ORG, node: crate::types::NodeId(1), stream: None, view: 0 };
        Durable { create_guid: guid, timeout_ms: 1000, org: ORG, user: ALICE, lease: None, key }
    }

    #[test]
    fn reconnect_rules_follow_samba() {
        let now = Instant::now();
        let mut p = Preserved::default();
        let g = Guid([5; 16]);
        p.mark(OpenId(1), durable(None));
        p.mark(OpenId(2), durable(Some(g)));
        assert!(p.disconnect(open(1), now, false).is_none());
        assert!(p.disconnect(open(2), now, false).is_none());
        let ok = |_: &Durable, _: &Open| Ok(());
        // v1 open: a DH2C needs the zero CreateGuid.
        assert_eq!(p.reclaim(1, Some(g), ORG, ALICE, ok).err(), Some(NtStatus::OBJECT_NAME_NOT_FOUND));
        // Another user: ACCESS_DENIED, and the open stays.
        assert_eq!(p.reclaim(1, None, ORG, UserId(8), ok).err(), Some(NtStatus::ACCESS_DENIED));
        assert!(p.reclaim(1, Some(Guid::default()), ORG, ALICE, ok).is_ok());
        // v2 open: a v1 reconnect works, a wrong CreateGuid does not.
        assert_eq!(p.reclaim(2, Some(Guid([6; 16])), ORG, ALICE, ok).err(), Some(NtStatus::OBJECT_NAME_NOT_FOUND));
        assert_eq!(p.by_create_guid(g), Some(OpenId(2)));
        assert!(p.reclaim(2, None, ORG, ALICE, ok).is_ok());
        assert_eq!(p.reclaim(2, None, ORG, ALICE, ok).err(), Some(NtStatus::OBJECT_NAME_NOT_FOUND));
    }

    #[test]
    fn breaking_or_plain_opens_are_not_kept_and_timeouts_expire() {
        let now = Instant::now();
        let mut p = Preserved::default();
        assert!(p.disconnect(open(3), now, false).is_some(), "not durable");
        p.mark(OpenId(4), durable(None));
        assert!(p.disconnect(open(4), now, true).is_some(), "break in progress");
        p.mark(OpenId(5), durable(None));
        assert!(p.disconnect(open(5), now, false).is_none());
        assert_eq!(p.next_expiry(), Some(now + Duration::from_millis(1000)));
        assert!(p.expired(now).is_empty());
        assert_eq!(p.expired(now + Duration::from_secs(1)).len(), 1);
        p.mark(OpenId(6), durable(None));
        assert!(p.disconnect(open(6), now, false).is_none());
        assert!(p.purge(OpenId(6)));
        assert!(!p.purge(OpenId(6)));
        assert_eq!(p.take_reaped().len(), 1);
    }

    #[test]
    fn detach_waits_end_on_detach_or_deadline() {
        let now = Instant::now();
        let mut p = Preserved::default();
        p.wait_detach(OpenId(1), 10, now + DETACH_WAIT);
        p.wait_detach(OpenId(2), 11, now + DETACH_WAIT);
        assert!(!p.wait_expired(10, now));
        assert_eq!(p.take_waits(OpenId(1)), vec![10]);
        assert!(p.overdue(now).is_empty());
        let late = now + DETACH_WAIT;
        assert_eq!(p.overdue(late), vec![11]);
        assert!(p.overdue(late).is_empty(), "nudged once");
        assert!(p.wait_expired(11, late));
        assert!(!p.wait_expired(11, late));
    }
}
