//! SMB2 FLUSH (MS-SMB2 2.2.17, 2.2.18).

use nom::number::complete::{le_u16, le_u32};

use super::create::FileId;
use super::echo::empty_message;
use super::{DResult, PutLe, body, check_structure_size};

/// SMB2 FLUSH Request (MS-SMB2 2.2.17).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FlushRequest {
    /// The open to flush.
    pub file_id: FileId,
}

impl FlushRequest {
    /// StructureSize.
    pub const STRUCTURE_SIZE: u16 = 24;

    /// Decodes the request in `msg`.
    pub fn decode(msg: &[u8]) -> DResult<Self> {
        check_structure_size(msg, Self::STRUCTURE_SIZE)?;
        let (i, _) = le_u16(body(msg)?)?;
        let (i, _reserved1) = le_u16(i)?;
        let (i, _reserved2) = le_u32(i)?;
        let (_, file_id) = FileId::parse(i)?;
        Ok(Self { file_id })
    }

    /// Appends the request body.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_u16(Self::STRUCTURE_SIZE);
        out.put_u16(0);
        out.put_u32(0);
        self.file_id.encode(out);
    }
}

/// SMB2 FLUSH Response (MS-SMB2 2.2.18).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FlushResponse;

empty_message!(FlushResponse);

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn round_trips(p: u64, v: u64) {
            let r = FlushRequest { file_id: FileId { persistent: p, volatile: v } };
            let mut out = vec![0u8; 64];
            r.encode(&mut out);
            prop_assert_eq!(out.len(), 88);
            prop_assert_eq!(FlushRequest::decode(&out).unwrap(), r);
            prop_assert!(FlushRequest::decode(&out[..87]).is_err());
        }
    }
}
