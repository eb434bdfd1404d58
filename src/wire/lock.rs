//! SMB2 LOCK (MS-SMB2 2.2.26, 2.2.27).

use nom::number::complete::{le_u16, le_u32, le_u64};

use super::create::FileId;
use super::echo::empty_message;
use super::{DResult, DecodeError, PutLe, body, check_structure_size};

/// SMB2_LOCK_ELEMENT Flags (2.2.26.1).
pub mod flags {
    /// SMB2_LOCKFLAG_SHARED_LOCK.
    pub const SHARED_LOCK: u32 = 0x0000_0001;
    /// SMB2_LOCKFLAG_EXCLUSIVE_LOCK.
    pub const EXCLUSIVE_LOCK: u32 = 0x0000_0002;
    /// SMB2_LOCKFLAG_UNLOCK.
    pub const UNLOCK: u32 = 0x0000_0004;
    /// SMB2_LOCKFLAG_FAIL_IMMEDIATELY.
    pub const FAIL_IMMEDIATELY: u32 = 0x0000_0010;
}

/// SMB2_LOCK_ELEMENT (MS-SMB2 2.2.26.1): the one lock-element type, which
/// the byte-range lock rules (`engine::fsa::locks`) take as decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LockElement {
    /// Offset of the range.
    pub offset: u64,
    /// Length of the range.
    pub length: u64,
    /// Flags (see [`flags`]).
    pub flags: u32,
}

/// SMB2 LOCK Request (MS-SMB2 2.2.26).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LockRequest {
    /// LockSequenceNumber (low 4 bits of the 32-bit field; lock replay, 2.1+).
    pub lock_sequence_number: u8,
    /// LockSequenceIndex (high 28 bits).
    pub lock_sequence_index: u32,
    /// The open.
    pub file_id: FileId,
    /// At least one element.
    pub locks: Vec<LockElement>,
}

impl LockRequest {
    /// StructureSize (it counts one lock element).
    pub const STRUCTURE_SIZE: u16 = 48;

    /// Decodes the request; LockCount 0 is `BadValue`
    /// (STATUS_INVALID_PARAMETER, 3.3.5.14) and every element must be inside
    /// the message.
    pub fn decode(msg: &[u8]) -> DResult<Self> {
        check_structure_size(msg, Self::STRUCTURE_SIZE)?;
        let (i, _) = le_u16(body(msg)?)?;
        let (i, count) = le_u16(i)?;
        let (i, seq) = le_u32(i)?;
        let (mut i, file_id) = FileId::parse(i)?;
        if count == 0 {
            return Err(DecodeError::BadValue);
        }
        if i.len() < usize::from(count) * 24 {
            return Err(DecodeError::BadLength);
        }
        let mut locks = Vec::with_capacity(usize::from(count));
        for _ in 0..count {
            let (rest, offset) = le_u64(i)?;
            let (rest, length) = le_u64(rest)?;
            let (rest, flags) = le_u32(rest)?;
            let (rest, _reserved) = le_u32(rest)?;
            locks.push(LockElement { offset, length, flags });
            i = rest;
        }
        Ok(Self { lock_sequence_number: (seq & 0xF) as u8, lock_sequence_index: seq >> 4, file_id, locks })
    }

    /// Appends the request body.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_u16(Self::STRUCTURE_SIZE);
        out.put_u16(self.locks.len() as u16);
        out.put_u32(u32::from(self.lock_sequence_number & 0xF) | (self.lock_sequence_index << 4));
        self.file_id.encode(out);
        for l in &self.locks {
            out.put_u64(l.offset);
            out.put_u64(l.length);
            out.put_u32(l.flags);
            out.put_u32(0);
        }
    }
}

/// SMB2 LOCK Response (MS-SMB2 2.2.27).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LockResponse;

empty_message!(LockResponse);

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn count_and_bounds() {
        let r = LockRequest {
            locks: vec![LockElement { offset: 0, length: 10, flags: flags::EXCLUSIVE_LOCK }; 2],
            ..Default::default()
        };
        let mut out = vec![0u8; 64];
        r.encode(&mut out);
        assert_eq!(out.len(), 64 + 24 + 48);
        assert_eq!(LockRequest::decode(&out[..out.len() - 1]), Err(DecodeError::BadLength));
        out[66] = 0;
        assert_eq!(LockRequest::decode(&out), Err(DecodeError::BadValue));
        out[66] = 3;
        assert_eq!(LockRequest::decode(&out), Err(DecodeError::BadLength));
    }

    proptest! {
        #[test]
        fn round_trips(n in 0u8..16, idx in 0u32..(1 << 28), id in any::<(u64, u64)>(), v in proptest::collection::vec(any::<(u64, u64, u32)>(), 1..8)) {
            let r = LockRequest {
                lock_sequence_number: n, lock_sequence_index: idx, file_id: FileId { persistent: id.0, volatile: id.1 },
                locks: v.into_iter().map(|(offset, length, flags)| LockElement { offset, length, flags }).collect(),
            };
            let mut out = vec![0u8; 64];
            r.encode(&mut out);
            prop_assert_eq!(LockRequest::decode(&out).unwrap(), r);
        }

        #[test]
        fn decoder_never_panics(tail in proptest::collection::vec(any::<u8>(), 0..120)) {
            let mut m = vec![0u8; 64];
            m.extend_from_slice(&48u16.to_le_bytes());
            m.extend_from_slice(&tail);
            let _ = LockRequest::decode(&m);
        }
    }
}
