//! Oplock and lease vocabulary shared by [`super::oplock`] and the engine:
//! caching states, requests, grants, break notifications, and the
//! server-wide directory of lease keys.
//!
//! Oplocks are modelled as lease states, as Samba does: Level II = R,
//! Exclusive = RW, Batch = RWH (MS-FSA 2.1.1.10 uses the same equivalence
//! for its break rules).

use std::collections::HashMap;
use std::time::Duration;

use super::{FileKey, OpenId};
use crate::wire::{Guid, NtStatus};

/// How long a break may stay unacknowledged (MS-SMB2 3.3.2.1
/// Oplock/Lease Break Acknowledgment Timer: 35 s on Windows).
pub const BREAK_TIMEOUT: Duration = Duration::from_secs(35);

/// SMB2_OPLOCK_LEVEL_* (MS-SMB2 2.2.13).
pub mod level {
    /// No oplock.
    pub const NONE: u8 = 0x00;
    /// Level II (shared read caching).
    pub const II: u8 = 0x01;
    /// Exclusive.
    pub const EXCLUSIVE: u8 = 0x08;
    /// Batch.
    pub const BATCH: u8 = 0x09;
    /// A lease context carries the request.
    pub const LEASE: u8 = 0xFF;
}

/// SMB2_LEASE_FLAG_BREAK_IN_PROGRESS (MS-SMB2 2.2.13.2.8).
pub const LEASE_FLAG_BREAK_IN_PROGRESS: u32 = 0x02;
/// SMB2_LEASE_FLAG_PARENT_LEASE_KEY_SET (MS-SMB2 2.2.13.2.10).
pub const LEASE_FLAG_PARENT_LEASE_KEY_SET: u32 = 0x04;

/// R/H/W caching bits with the wire values of a LeaseState
/// (SMB2_LEASE_READ_CACHING 1, HANDLE 2, WRITE 4).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Caching(u8);

impl Caching {
    /// Nothing cached.
    pub const NONE: Caching = Caching(0);
    /// Read caching.
    pub const R: Caching = Caching(1);
    /// Handle caching.
    pub const H: Caching = Caching(2);
    /// Write caching.
    pub const W: Caching = Caching(4);
    /// R + H.
    pub const RH: Caching = Caching(3);
    /// R + W.
    pub const RW: Caching = Caching(5);
    /// R + W + H.
    pub const RWH: Caching = Caching(7);

    /// From a wire LeaseState; unknown bits are dropped.
    pub fn from_bits(bits: u32) -> Self {
        Caching((bits & 7) as u8)
    }

    /// Wire value.
    pub fn bits(self) -> u32 {
        u32::from(self.0)
    }

    /// True if every bit of `other` is set.
    pub fn contains(self, other: Caching) -> bool {
        self.0 & other.0 == other.0
    }

    /// True if any bit of `other` is set.
    pub fn intersects(self, other: Caching) -> bool {
        self.0 & other.0 != 0
    }

    /// Nothing set.
    pub fn is_none(self) -> bool {
        self.0 == 0
    }

    /// Bits in both.
    pub fn and(self, other: Caching) -> Caching {
        Caching(self.0 & other.0)
    }

    /// Bits in either.
    pub fn or(self, other: Caching) -> Caching {
        Caching(self.0 | other.0)
    }

    /// Bits of `self` not in `other`.
    pub fn minus(self, other: Caching) -> Caching {
        Caching(self.0 & !other.0)
    }

    /// The caching an oplock level stands for.
    pub fn from_oplock(level: u8) -> Caching {
        match level {
            level::II => Caching::R,
            level::EXCLUSIVE => Caching::RW,
            level::BATCH => Caching::RWH,
            _ => Caching::NONE,
        }
    }

    /// The oplock level a caching state can be expressed as (RH is
    /// expressed as Level II, H or W alone as nothing).
    pub fn to_oplock(self) -> u8 {
        match self {
            Caching::RWH => level::BATCH,
            Caching::RW => level::EXCLUSIVE,
            Caching::R | Caching::RH => level::II,
            _ => level::NONE,
        }
    }
}

impl std::fmt::Debug for Caching {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut s = String::new();
        for (bit, c) in [(Caching::R, 'R'), (Caching::W, 'W'), (Caching::H, 'H')] {
            if self.contains(bit) {
                s.push(c);
            }
        }
        if s.is_empty() {
            s.push('-');
        }
        f.write_str(&s)
    }
}

/// A 16-byte lease key (MS-SMB2 2.2.13.2.8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct LeaseKey(pub [u8; 16]);

/// A lease as the client identifies it: ClientGuid of its connection
/// plus LeaseKey (MS-SMB2 3.3.1.4 LeaseTable is per client guid).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LeaseId {
    /// Connection.ClientGuid.
    pub client: Guid,
    /// LeaseKey.
    pub key: LeaseKey,
}

/// A lease create context (SMB2_CREATE_REQUEST_LEASE or _V2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseRequest {
    /// Client guid and lease key.
    pub id: LeaseId,
    /// Requested LeaseState.
    pub state: Caching,
    /// V2 only: (ParentLeaseKey if the flag was set, Epoch).
    pub v2: Option<(Option<LeaseKey>, u16)>,
}

/// What a CREATE asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheRequest {
    /// RequestedOplockLevel NONE.
    None,
    /// RequestedOplockLevel II, EXCLUSIVE or BATCH.
    Oplock(u8),
    /// RequestedOplockLevel LEASE with a lease context.
    Lease(LeaseRequest),
}

/// What a CREATE response carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheGrant {
    /// OplockLevel NONE, no lease context.
    None,
    /// OplockLevel II, EXCLUSIVE or BATCH.
    Oplock(u8),
    /// OplockLevel LEASE and a lease response context.
    Lease(LeaseGrant),
}

impl CacheGrant {
    /// The OplockLevel field of the CREATE response.
    pub fn oplock_level(&self) -> u8 {
        match self {
            CacheGrant::None => level::NONE,
            CacheGrant::Oplock(l) => *l,
            CacheGrant::Lease(_) => level::LEASE,
        }
    }
}

/// Contents of the lease response context (MS-SMB2 2.2.14.2.10/11).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseGrant {
    /// LeaseKey.
    pub key: LeaseKey,
    /// LeaseState (may be NONE: the context is still returned).
    pub state: Caching,
    /// LeaseFlags: BREAK_IN_PROGRESS, PARENT_LEASE_KEY_SET.
    pub flags: u32,
    /// Answer with a V2 context: the version the lease was created with
    /// (smbtorture `smb2.lease.v2_epoch2/3`), not the one just requested.
    pub v2: bool,
    /// V2 ParentLeaseKey (zero if unset).
    pub parent: Option<LeaseKey>,
    /// V2 Epoch.
    pub epoch: u16,
}

/// A break notification to send (MS-SMB2 3.3.4.6 oplock, 3.3.4.7 lease).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Break {
    /// SMB2 OPLOCK_BREAK notification on `open`'s connection.
    Oplock {
        /// The open whose oplock breaks.
        open: OpenId,
        /// New OplockLevel (II or NONE).
        level: u8,
        /// The client must acknowledge (not for Level II to none).
        ack_required: bool,
    },
    /// SMB2 LEASE_BREAK notification, sent once on the connection of any
    /// of `opens` (the first one still connected).
    Lease {
        /// The lease.
        id: LeaseId,
        /// Opens using it.
        opens: Vec<OpenId>,
        /// CurrentLeaseState.
        from: Caching,
        /// NewLeaseState.
        to: Caching,
        /// NewEpoch (V2 leases; 0 for V1).
        epoch: u16,
        /// SMB2_NOTIFY_BREAK_LEASE_FLAG_ACK_REQUIRED.
        ack_required: bool,
    },
}

/// Server-wide map lease → stream. A lease key belongs to one stream:
/// reusing it for another is STATUS_INVALID_PARAMETER (MS-SMB2 3.3.5.9.8,
/// smbtorture `smb2.lease.request`); a lease break acknowledgment names
/// only the key, so this is also how the engine finds its stream.
#[derive(Debug, Default)]
pub struct LeaseDirectory {
    map: HashMap<LeaseId, FileKey>,
}

impl LeaseDirectory {
    /// Empty directory.
    pub fn new() -> Self {
        Self::default()
    }

    /// Before a CREATE with a lease context on `file`.
    pub fn check(&self, id: &LeaseId, file: &FileKey) -> Result<(), NtStatus> {
        match self.map.get(id) {
            Some(f) if f != file => Err(NtStatus::INVALID_PARAMETER),
            _ => Ok(()),
        }
    }

    /// After the CREATE succeeded (whatever state was granted).
    pub fn insert(&mut self, id: LeaseId, file: FileKey) {
        self.map.insert(id, file);
    }

    /// When the stream reports the lease gone (its last open closed).
    pub fn remove(&mut self, id: &LeaseId) {
        self.map.remove(id);
    }

    /// The stream a lease belongs to (LEASE_BREAK acknowledgment).
    pub fn lookup(&self, id: &LeaseId) -> Option<&FileKey> {
        self.map.get(id)
    }
}
