//! CREATE replay detection for durable v2 opens (MS-SMB2 3.3.5.9.10): a
//! DH2Q whose CreateGuid names an open the client already holds is a
//! replay of that CREATE (its response was lost) when the header carries
//! SMB2_FLAGS_REPLAY_OPERATION, and STATUS_DUPLICATE_OBJECTID otherwise.
//! While the first CREATE is still waiting for breaks, a second one with
//! the same CreateGuid gets STATUS_FILE_NOT_AVAILABLE so that the client
//! retries later (Samba's answer; smbtorture `smb2.replay`
//! `dhv2-pending*-sane`).
//!
//! The cache lives in the connection: Open.ClientGuid must match the
//! connection's ClientGuid, and without multichannel a client has one
//! connection at a time. Every open a DH2Q created is entered, durable or
//! not, as Samba does; entries whose open closed or whose parked CREATE
//! ended are stale and ignored, so no close path has to clean up.

use std::collections::HashMap;

use crate::engine::open::Open;
use crate::engine::pending::PendingOp;
use crate::engine::status::Result;
use crate::wire::header::{Command, Header};
use crate::wire::negotiate::Dialect;
use crate::wire::{Guid, NtStatus};

/// The connection's opens by volatile FileId, and its pending requests by
/// AsyncId (`ConnState::opens`, `ConnState::pending`).
type Opens = HashMap<u64, Open>;
type Pending = HashMap<u64, PendingOp>;

/// One CreateGuid's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Entry {
    /// The CREATE is parked under this AsyncId.
    Pending(u64),
    /// The open it created (volatile FileId) and its CreateAction.
    Open { volatile: u64, action: u32 },
}

/// CreateGuid -> the CREATE that used it; the CreateGuid of each open
/// still replay-eligible (Open.IsReplayEligible), by volatile FileId; and
/// Open.ChannelSequence by volatile FileId (absent: 0).
#[derive(Debug, Default)]
pub struct Cache {
    map: HashMap<Guid, Entry>,
    eligible: HashMap<u64, Guid>,
    csn: HashMap<u64, u16>,
}

/// What a DH2Q's CreateGuid refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    /// Nothing (or the caller's own parked CREATE running again).
    New,
    /// Another CREATE with this CreateGuid is still pending.
    Busy,
    /// An open created with it: (volatile FileId, CreateAction).
    Found(u64, u32),
}

impl Cache {
    /// Takes in the entries of another connection's cache (the two became
    /// channels of one session group, `engine::group`).
    pub fn absorb(&mut self, other: Cache) {
        self.map.extend(other.map);
        self.eligible.extend(other.eligible);
        self.csn.extend(other.csn);
    }

    /// Looks `guid` up; `resume` is the AsyncId of a parked CREATE running
    /// again; `pending` and `open` tell whether an AsyncId is still parked
    /// and a volatile FileId still open.
    fn find(
        &self,
        guid: Guid,
        resume: Option<u64>,
        pending: impl Fn(u64) -> bool,
        open: impl Fn(u64) -> bool,
    ) -> Lookup {
        match self.map.get(&guid) {
            Some(Entry::Pending(t)) if Some(*t) != resume && pending(*t) => Lookup::Busy,
            Some(Entry::Open { volatile, action }) if open(*volatile) => Lookup::Found(*volatile, *action),
            _ => Lookup::New,
        }
    }
}

/// Looks `guid` up; `resume` is the AsyncId of a parked CREATE running again.
pub fn lookup(cache: &Cache, pending: &Pending, opens: &Opens, guid: Guid, resume: Option<u64>) -> Lookup {
    cache.find(guid, resume, |t| pending.contains_key(&t), |v| opens.contains_key(&v))
}

/// The CREATE with `guid` was parked under `token`.
pub fn parked(cache: &mut Cache, guid: Guid, token: u64) {
    cache.map.insert(guid, Entry::Pending(token));
}

/// Parked CREATEs remembered at most, beyond the opens (a parked CREATE
/// waits for a break, 35 s at most; forgetting one only makes its replay
/// a new CREATE).
const MAX_PARKED: usize = 1024;

/// Stale entries are dropped once they could outnumber the live ones:
/// entries of closed opens first (the cache is one of a connection's
/// budgets: CREATE + TREE_DISCONNECT in a loop used to grow it forever),
/// then, if parked CREATEs alone overflow, those too.
fn prune(cache: &mut Cache, opens: &Opens) {
    if cache.map.len() <= 2 * opens.len() + 64 {
        return;
    }
    cache.map.retain(|_, e| match e {
        Entry::Open { volatile, .. } => opens.contains_key(volatile),
        Entry::Pending(_) => true,
    });
    if cache.map.len() > opens.len() + MAX_PARKED {
        cache.map.retain(|_, e| matches!(e, Entry::Open { .. }));
    }
}

/// The CREATE with `guid` ended: remembered if it made an open, forgotten
/// otherwise.
pub fn finished(cache: &mut Cache, opens: &Opens, guid: Guid, open: Option<(u64, u32)>) {
    match open {
        Some((volatile, action)) => {
            prune(cache, opens);
            if cache.eligible.len() > 2 * opens.len() + 64 {
                cache.eligible.retain(|v, _| opens.contains_key(v));
            }
            cache.eligible.insert(volatile, guid);
            cache.map.insert(guid, Entry::Open { volatile, action })
        }
        None => cache.map.remove(&guid),
    };
}

/// A request other than its CREATE used the open: it is no longer
/// replay-eligible (Open.IsReplayEligible = FALSE, MS-SMB2 3.3.5.20,
/// 3.3.5.21 and the other handle-based requests; smbtorture
/// `smb2.replay.replay6`), so a replayed CREATE with its CreateGuid makes
/// a new open.
fn used(cache: &mut Cache, volatile: u64) {
    if let Some(g) = cache.eligible.remove(&volatile)
        && matches!(cache.map.get(&g), Some(Entry::Open { volatile: v, .. }) if *v == volatile)
    {
        cache.map.remove(&g);
    }
}

/// ChannelSequence of a 3.x request: the first two bytes of the Status field (2.2.1.2).
fn request_csn(hdr: &Header) -> u16 {
    (hdr.status.0 & 0xFFFF) as u16
}

/// A CREATE opened `volatile`: Open.ChannelSequence starts at the
/// request's ChannelSequence (3.3.5.9).
pub fn opened(cache: &mut Cache, opens: &Opens, hdr: &Header, volatile: u64) {
    if cache.csn.len() > 2 * opens.len() + 64 {
        cache.csn.retain(|v, _| opens.contains_key(v));
    }
    match request_csn(hdr) {
        0 => cache.csn.remove(&volatile),
        c => cache.csn.insert(volatile, c),
    };
}

/// Verifying the channel sequence number (3.3.5.2.10) of a 3.x request on
/// an open: a newer ChannelSequence (within 0x7FFF ahead, modulo 2^16)
/// becomes the open's; an older one fails WRITE, SET_INFO and IOCTL with
/// STATUS_FILE_NOT_AVAILABLE (the client replays them on a newer channel).
/// Requests run one at a time here, so the outstanding request counts of
/// the spec are always zero and the replay flag changes nothing.
pub fn check_channel_sequence(
    cache: &mut Cache,
    dialect: Option<Dialect>,
    opens: &Opens,
    hdr: &Header,
    file: Option<(u64, u64)>,
) -> Result<()> {
    if !dialect.is_some_and(|d| d.is_smb3()) {
        return Ok(());
    }
    let Some((_, volatile)) = file else { return Ok(()) };
    if !opens.contains_key(&volatile) {
        return Ok(());
    }
    used(cache, volatile);
    let csn = request_csn(hdr);
    let current = cache.csn.get(&volatile).copied().unwrap_or(0);
    match csn.wrapping_sub(current) {
        0 => Ok(()),
        1..=0x7FFF => {
            cache.csn.insert(volatile, csn);
            Ok(())
        }
        _ if matches!(hdr.command, Command::WRITE | Command::SET_INFO | Command::IOCTL) => {
            Err(NtStatus::FILE_NOT_AVAILABLE.into())
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_entries_are_new() {
        let mut c = Cache::default();
        let g = Guid([3; 16]);
        let yes = |_| true;
        let no = |_| false;
        assert_eq!(c.find(g, None, yes, yes), Lookup::New);
        c.map.insert(g, Entry::Pending(9));
        assert_eq!(c.find(g, None, yes, yes), Lookup::Busy);
        // The parked CREATE itself running again, or gone.
        assert_eq!(c.find(g, Some(9), yes, yes), Lookup::New);
        assert_eq!(c.find(g, None, no, yes), Lookup::New);
        c.map.insert(g, Entry::Open { volatile: 5, action: 2 });
        assert_eq!(c.find(g, None, yes, yes), Lookup::Found(5, 2));
        // The open closed.
        assert_eq!(c.find(g, None, yes, no), Lookup::New);
        // The open was used by another request: no longer replay-eligible.
        c.eligible.insert(5, g);
        used(&mut c, 5);
        assert_eq!(c.find(g, None, yes, yes), Lookup::New);
    }

    /// CREATE + close (or TREE_DISCONNECT) in a loop: the cache stays
    /// bounded by the live opens, and parked CREATEs cannot grow it either.
    #[test]
    fn bounded_by_live_opens() {
        let mut c = Cache::default();
        let none = Opens::new();
        let guid = |i: u32| {
            let mut g = [0u8; 16];
            g[..4].copy_from_slice(&i.to_le_bytes());
            Guid(g)
        };
        for i in 0..10_000 {
            finished(&mut c, &none, guid(i), Some((u64::from(i), 1)));
        }
        assert!(c.map.len() <= 65, "{} entries for no open", c.map.len());
        for i in 0..5_000 {
            parked(&mut c, guid(20_000 + i), u64::from(i));
        }
        finished(&mut c, &none, guid(1), Some((1, 1)));
        assert!(c.map.len() <= 1 + MAX_PARKED, "{} entries", c.map.len());
    }
}
