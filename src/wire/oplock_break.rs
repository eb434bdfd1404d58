//! SMB2 OPLOCK_BREAK (MS-SMB2 2.2.23-2.2.25): oplock break notification,
//! acknowledgment and response share one 24-byte layout; lease break
//! notification is 44 bytes; lease break acknowledgment and response share
//! a 36-byte layout. The StructureSize tells them apart, so one
//! [`OplockBreak`] enum decodes any of them.

use nom::number::complete::{le_u8, le_u16, le_u32, le_u64};

use super::create::FileId;
use super::{DResult, DecodeError, PutLe, body};

/// Oplock break notification / acknowledgment / response (2.2.23.1,
/// 2.2.24.1, 2.2.25.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OplockBreakBody {
    /// OplockLevel (`fscc::consts::oplock`): the new level.
    pub oplock_level: u8,
    /// The open.
    pub file_id: FileId,
}

/// Lease break notification (2.2.23.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LeaseBreakNotification {
    /// NewEpoch (v2 leases).
    pub new_epoch: u16,
    /// Flags (SMB2_NOTIFY_BREAK_LEASE_FLAG_ACK_REQUIRED 0x01).
    pub flags: u32,
    /// LeaseKey.
    pub lease_key: [u8; 16],
    /// CurrentLeaseState.
    pub current_lease_state: u32,
    /// NewLeaseState.
    pub new_lease_state: u32,
}

/// SMB2_NOTIFY_BREAK_LEASE_FLAG_ACK_REQUIRED.
pub const LEASE_BREAK_ACK_REQUIRED: u32 = 0x01;

/// Lease break acknowledgment / response (2.2.24.2, 2.2.25.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LeaseBreakAck {
    /// Flags (reserved, 0).
    pub flags: u32,
    /// LeaseKey.
    pub lease_key: [u8; 16],
    /// LeaseState acknowledged / granted.
    pub lease_state: u32,
    /// LeaseDuration (reserved, 0).
    pub lease_duration: u64,
}

/// Any OPLOCK_BREAK body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OplockBreak {
    /// StructureSize 24: oplock notification, acknowledgment or response.
    Oplock(OplockBreakBody),
    /// StructureSize 44: lease break notification (server to client).
    LeaseNotification(LeaseBreakNotification),
    /// StructureSize 36: lease break acknowledgment or response.
    LeaseAck(LeaseBreakAck),
}

impl OplockBreak {
    /// Decodes the body of `msg` by its StructureSize; other sizes are
    /// `BadStructureSize` (STATUS_INVALID_PARAMETER, 3.3.5.22).
    pub fn decode(msg: &[u8]) -> DResult<Self> {
        let (i, size) = le_u16(body(msg)?)?;
        match size {
            24 => {
                let (i, oplock_level) = le_u8(i)?;
                let (i, _reserved) = le_u8(i)?;
                let (i, _reserved2) = le_u32(i)?;
                let (_, file_id) = FileId::parse(i)?;
                Ok(Self::Oplock(OplockBreakBody { oplock_level, file_id }))
            }
            44 => {
                let (i, new_epoch) = le_u16(i)?;
                let (i, flags) = le_u32(i)?;
                let (i, lease_key) = key(i)?;
                let (i, current_lease_state) = le_u32(i)?;
                let (i, new_lease_state) = le_u32(i)?;
                let (i, _break_reason) = le_u32(i)?;
                let (i, _access_mask_hint) = le_u32(i)?;
                let (_, _share_mask_hint) = le_u32(i)?;
                Ok(Self::LeaseNotification(LeaseBreakNotification {
                    new_epoch,
                    flags,
                    lease_key,
                    current_lease_state,
                    new_lease_state,
                }))
            }
            36 => {
                let (i, _reserved) = le_u16(i)?;
                let (i, flags) = le_u32(i)?;
                let (i, lease_key) = key(i)?;
                let (i, lease_state) = le_u32(i)?;
                let (_, lease_duration) = le_u64(i)?;
                Ok(Self::LeaseAck(LeaseBreakAck { flags, lease_key, lease_state, lease_duration }))
            }
            _ => Err(DecodeError::BadStructureSize),
        }
    }

    /// Appends the body.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Self::Oplock(b) => {
                out.put_u16(24);
                out.put_u8(b.oplock_level);
                out.put_u8(0);
                out.put_u32(0);
                b.file_id.encode(out);
            }
            Self::LeaseNotification(n) => {
                out.put_u16(44);
                out.put_u16(n.new_epoch);
                out.put_u32(n.flags);
                out.extend_from_slice(&n.lease_key);
                out.put_u32(n.current_lease_state);
                out.put_u32(n.new_lease_state);
                // BreakReason, AccessMaskHint, ShareMaskHint: reserved, 0.
                out.put_zeros(12);
            }
            Self::LeaseAck(a) => {
                out.put_u16(36);
                out.put_u16(0);
                out.put_u32(a.flags);
                out.extend_from_slice(&a.lease_key);
                out.put_u32(a.lease_state);
                out.put_u64(a.lease_duration);
            }
        }
    }
}

fn key(i: &[u8]) -> super::PResult<'_, [u8; 16]> {
    let (rest, g) = super::guid(i)?;
    Ok((rest, g.0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn arb() -> impl Strategy<Value = OplockBreak> {
        prop_oneof![
            any::<(u8, u64, u64)>().prop_map(|(l, p, v)| OplockBreak::Oplock(OplockBreakBody {
                oplock_level: l,
                file_id: FileId { persistent: p, volatile: v }
            })),
            any::<(u16, u32, [u8; 16], u32, u32)>().prop_map(|x| OplockBreak::LeaseNotification(
                LeaseBreakNotification {
                    new_epoch: x.0,
                    flags: x.1,
                    lease_key: x.2,
                    current_lease_state: x.3,
                    new_lease_state: x.4
                }
            )),
            any::<(u32, [u8; 16], u32, u64)>().prop_map(|x| OplockBreak::LeaseAck(LeaseBreakAck {
                flags: x.0,
                lease_key: x.1,
                lease_state: x.2,
                lease_duration: x.3
            })),
        ]
    }

    #[test]
    fn sizes_match_structure_sizes() {
        for (b, len) in [
            (OplockBreak::Oplock(OplockBreakBody::default()), 24),
            (OplockBreak::LeaseNotification(LeaseBreakNotification::default()), 44),
            (OplockBreak::LeaseAck(LeaseBreakAck::default()), 36),
        ] {
            let mut out = vec![0u8; 64];
            b.encode(&mut out);
            assert_eq!(out.len(), 64 + len);
            assert_eq!(OplockBreak::decode(&out[..out.len() - 1]), Err(DecodeError::Truncated));
        }
    }

    proptest! {
        #[test]
        fn round_trips(b in arb()) {
            let mut out = vec![0u8; 64];
            b.encode(&mut out);
            prop_assert_eq!(OplockBreak::decode(&out).unwrap(), b);
        }

        #[test]
        fn decoder_never_panics(size in prop_oneof![Just(24u16), Just(36), Just(44), any::<u16>()], tail in proptest::collection::vec(any::<u8>(), 0..60)) {
            let mut m = vec![0u8; 64];
            m.extend_from_slice(&size.to_le_bytes());
            m.extend_from_slice(&tail);
            let _ = OplockBreak::decode(&m);
        }
    }
}
