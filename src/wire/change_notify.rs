//! SMB2 CHANGE_NOTIFY (MS-SMB2 2.2.35, 2.2.36) and the
//! FILE_NOTIFY_INFORMATION records its response carries (MS-FSCC 2.7.1).

use nom::number::complete::{le_u16, le_u32};

use super::create::FileId;
use super::fscc::{align_up, chain_entries};
use super::query_directory::{decode_output_buffer, encode_output_buffer};
use super::{DResult, DecodeError, PutLe, body, check_structure_size, put_utf16le, utf16_len, utf16le};

/// SMB2_WATCH_TREE: also report changes in subdirectories.
pub const WATCH_TREE: u16 = 0x0001;

/// SMB2 CHANGE_NOTIFY Request (MS-SMB2 2.2.35).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ChangeNotifyRequest {
    /// Flags ([`WATCH_TREE`]).
    pub flags: u16,
    /// OutputBufferLength: changes that do not fit are reported as
    /// STATUS_NOTIFY_ENUM_DIR.
    pub output_buffer_length: u32,
    /// The directory open.
    pub file_id: FileId,
    /// CompletionFilter (`fscc::consts::notify_filter`).
    pub completion_filter: u32,
}

impl ChangeNotifyRequest {
    /// StructureSize.
    pub const STRUCTURE_SIZE: u16 = 32;

    /// Decodes the request in `msg`.
    pub fn decode(msg: &[u8]) -> DResult<Self> {
        check_structure_size(msg, Self::STRUCTURE_SIZE)?;
        let (i, _) = le_u16(body(msg)?)?;
        let (i, flags) = le_u16(i)?;
        let (i, output_buffer_length) = le_u32(i)?;
        let (i, file_id) = FileId::parse(i)?;
        let (i, completion_filter) = le_u32(i)?;
        let (_, _reserved) = le_u32(i)?;
        Ok(Self { flags, output_buffer_length, file_id, completion_filter })
    }

    /// Appends the 32-byte request body.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_u16(Self::STRUCTURE_SIZE);
        out.put_u16(self.flags);
        out.put_u32(self.output_buffer_length);
        self.file_id.encode(out);
        out.put_u32(self.completion_filter);
        out.put_u32(0);
    }
}

/// SMB2 CHANGE_NOTIFY Response (MS-SMB2 2.2.36).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ChangeNotifyResponse<'a> {
    /// FILE_NOTIFY_INFORMATION records from [`encode_notify`].
    pub data: &'a [u8],
}

impl<'a> ChangeNotifyResponse<'a> {
    /// Appends the response body (OutputBufferOffset 0x48).
    pub fn encode(&self, out: &mut Vec<u8>) {
        encode_output_buffer(out, self.data);
    }

    /// Decodes the response in `msg` (client side).
    pub fn decode(msg: &'a [u8]) -> DResult<Self> {
        Ok(Self { data: decode_output_buffer(msg)? })
    }
}

/// One change: FILE_NOTIFY_INFORMATION (MS-FSCC 2.7.1).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NotifyEntry {
    /// Action (`fscc::consts::notify_action`).
    pub action: u32,
    /// Name relative to the watched directory.
    pub name: String,
}

/// Encodes `entries` as a chain of FILE_NOTIFY_INFORMATION records, each
/// 4-byte aligned, into `out`. Returns false and leaves `out` untouched if
/// they do not all fit in `max_len` bytes: the server then completes the
/// request with STATUS_NOTIFY_ENUM_DIR and no data (MS-SMB2 3.3.5.19).
pub fn encode_notify(entries: &[NotifyEntry], max_len: usize, out: &mut Vec<u8>) -> bool {
    let mut total = 0usize;
    for (k, e) in entries.iter().enumerate() {
        let len = 12 + utf16_len(&e.name);
        total += if k + 1 == entries.len() { len } else { align_up(len, 4) };
    }
    if total > max_len {
        return false;
    }
    let base = out.len();
    let mut prev: Option<usize> = None;
    for e in entries {
        if let Some(p) = prev {
            let start = base + align_up(out.len() - base, 4);
            out.resize(start, 0);
            out.set_u32(p, (start - p) as u32);
        }
        prev = Some(out.len());
        out.put_u32(0);
        out.put_u32(e.action);
        out.put_u32(utf16_len(&e.name) as u32);
        put_utf16le(out, &e.name);
    }
    true
}

/// Decodes a FILE_NOTIFY_INFORMATION chain (client side).
pub fn decode_notify(b: &[u8]) -> DResult<Vec<NotifyEntry>> {
    chain_entries(b, 4)?
        .into_iter()
        .map(|e| {
            let (i, _next) = le_u32(e)?;
            let (i, action) = le_u32(i)?;
            let (i, len) = le_u32(i)?;
            let name = i.get(..len as usize).ok_or(DecodeError::BadLength)?;
            Ok(NotifyEntry { action, name: utf16le(name)? })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::fscc::consts::{notify_action, notify_filter};
    use proptest::prelude::*;

    #[test]
    fn rename_pair_layout() {
        let entries = [
            NotifyEntry { action: notify_action::RENAMED_OLD_NAME, name: "a.txt".into() },
            NotifyEntry { action: notify_action::RENAMED_NEW_NAME, name: "新.txt".into() },
        ];
        let mut out = Vec::new();
        assert!(encode_notify(&entries, 1000, &mut out));
        // 12 + 10 = 22 → next entry at 24; 12 + 10 = 22 more bytes.
        assert_eq!(&out[..4], &24u32.to_le_bytes());
        assert_eq!(out.len(), 46);
        assert_eq!(decode_notify(&out).unwrap(), entries);
        let mut small = Vec::new();
        assert!(!encode_notify(&entries, 45, &mut small));
        assert!(small.is_empty());
    }

    proptest! {
        #[test]
        fn round_trips(f: u16, len: u32, id in any::<(u64, u64)>(), v in proptest::collection::vec((1u32..12, "[a-z0-9.\u{3041}-\u{3096}]{1,20}"), 0..6)) {
            let r = ChangeNotifyRequest { flags: f, output_buffer_length: len, file_id: FileId { persistent: id.0, volatile: id.1 }, completion_filter: notify_filter::FILE_NAME };
            let mut out = vec![0u8; 64];
            r.encode(&mut out);
            prop_assert_eq!(ChangeNotifyRequest::decode(&out).unwrap(), r);
            let entries: Vec<NotifyEntry> = v.into_iter().map(|(action, name)| NotifyEntry { action, name }).collect();
            let mut data = Vec::new();
            prop_assert!(encode_notify(&entries, 1 << 16, &mut data));
            let resp = ChangeNotifyResponse { data: &data };
            let mut out = vec![0u8; 64];
            resp.encode(&mut out);
            let back = ChangeNotifyResponse::decode(&out).unwrap();
            prop_assert_eq!(decode_notify(back.data).unwrap(), entries);
        }

        #[test]
        fn decoders_never_panic(tail in proptest::collection::vec(any::<u8>(), 0..80)) {
            let mut m = vec![0u8; 64];
            m.extend_from_slice(&32u16.to_le_bytes());
            m.extend_from_slice(&tail);
            let _ = ChangeNotifyRequest::decode(&m);
            let _ = decode_notify(&tail);
        }
    }
}
