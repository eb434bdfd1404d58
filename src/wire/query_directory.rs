//! SMB2 QUERY_DIRECTORY (MS-SMB2 2.2.33, 2.2.34). Entries are built with
//! `fscc::dir_info::DirWriter` and patterns matched with
//! `fscc::wildcard::name_matches`.

use nom::number::complete::{le_u8, le_u16, le_u32};

use super::create::FileId;
use super::fscc::InfoClass;
use super::{DResult, PutLe, body, buffer, check_structure_size, put_utf16le, utf16_len, utf16le};

/// Request Flags (2.2.33).
pub mod flags {
    #![expect(missing_docs, reason = "the constants carry the spec's names; the module doc cites the table")]
    pub const RESTART_SCANS: u8 = 0x01;
    pub const RETURN_SINGLE_ENTRY: u8 = 0x02;
    pub const INDEX_SPECIFIED: u8 = 0x04;
    pub const REOPEN: u8 = 0x10;
}

/// SMB2 QUERY_DIRECTORY Request (MS-SMB2 2.2.33).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct QueryDirectoryRequest {
    /// FileInformationClass.
    pub file_information_class: InfoClass,
    /// Flags (see [`flags`]).
    pub flags: u8,
    /// FileIndex (with INDEX_SPECIFIED).
    pub file_index: u32,
    /// The directory open.
    pub file_id: FileId,
    /// The search pattern ("*", "<.txt", a plain name…).
    pub pattern: String,
    /// OutputBufferLength: the response buffer must fit in it.
    pub output_buffer_length: u32,
}

impl QueryDirectoryRequest {
    /// StructureSize.
    pub const STRUCTURE_SIZE: u16 = 33;

    /// Decodes the request in `msg`.
    pub fn decode(msg: &[u8]) -> DResult<Self> {
        check_structure_size(msg, Self::STRUCTURE_SIZE)?;
        let (i, _) = le_u16(body(msg)?)?;
        let (i, class) = le_u8(i)?;
        let (i, flags) = le_u8(i)?;
        let (i, file_index) = le_u32(i)?;
        let (i, file_id) = FileId::parse(i)?;
        let (i, name_offset) = le_u16(i)?;
        let (i, name_length) = le_u16(i)?;
        let (_, output_buffer_length) = le_u32(i)?;
        let pattern = utf16le(buffer(msg, name_offset.into(), name_length.into())?)?;
        Ok(Self { file_information_class: InfoClass(class), flags, file_index, file_id, pattern, output_buffer_length })
    }

    /// Appends the request body with the pattern at `out.len() + 32` (0x60).
    pub fn encode(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.put_u16(Self::STRUCTURE_SIZE);
        out.put_u8(self.file_information_class.0);
        out.put_u8(self.flags);
        out.put_u32(self.file_index);
        self.file_id.encode(out);
        out.put_u16((start + 32) as u16);
        out.put_u16(utf16_len(&self.pattern) as u16);
        out.put_u32(self.output_buffer_length);
        if put_utf16le(out, &self.pattern) == 0 {
            out.put_u8(0);
        }
    }
}

/// Appends the StructureSize-9 body shared by the QUERY_DIRECTORY,
/// QUERY_INFO and CHANGE_NOTIFY responses: OutputBufferOffset (u16),
/// OutputBufferLength (u32), then the data at `out.len() + 8` (0x48). An
/// empty buffer still takes the 1 byte StructureSize 9 implies.
pub(crate) fn encode_output_buffer(out: &mut Vec<u8>, data: &[u8]) {
    let offset = out.len() + 8;
    out.put_u16(9);
    out.put_u16(offset as u16);
    out.put_u32(data.len() as u32);
    if data.is_empty() {
        out.put_u8(0);
    }
    out.extend_from_slice(data);
}

/// Decodes the StructureSize-9 output-buffer body of `msg`.
pub(crate) fn decode_output_buffer(msg: &[u8]) -> DResult<&[u8]> {
    check_structure_size(msg, 9)?;
    let (i, _) = le_u16(body(msg)?)?;
    let (i, offset) = le_u16(i)?;
    let (_, length) = le_u32(i)?;
    buffer(msg, offset.into(), length)
}

/// SMB2 QUERY_DIRECTORY Response (MS-SMB2 2.2.34).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QueryDirectoryResponse<'a> {
    /// The entries, as built by `DirWriter`.
    pub data: &'a [u8],
}

impl<'a> QueryDirectoryResponse<'a> {
    /// Appends the response body.
    pub fn encode(&self, out: &mut Vec<u8>) {
        encode_output_buffer(out, self.data);
    }

    /// Decodes the response in `msg` (client side).
    pub fn decode(msg: &'a [u8]) -> DResult<Self> {
        Ok(Self { data: decode_output_buffer(msg)? })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::fscc::dir_info::decode_entries;
    use crate::wire::header::Header;
    use proptest::prelude::*;

    /// Frames 84/85 of captures/smbclient-SMB3_11-signed.pcap: a search for
    /// "b.txt" with FileIdBothDirectoryInformation.
    #[test]
    fn captured_query_directory() {
        let req = include_bytes!("../../protocol-tests/fixtures/smbclient-SMB3_11-signed/84-query_directory-req.bin");
        let q = QueryDirectoryRequest::decode(req).unwrap();
        assert_eq!(q.file_information_class, InfoClass::ID_BOTH_DIRECTORY);
        assert_eq!(q.pattern, "b.txt");
        assert_eq!(q.output_buffer_length, 0x80_0000);
        assert_eq!(q.flags, 0);
        let mut out = vec![0u8; 64];
        q.encode(&mut out);
        assert_eq!(&out[64..], &req[64..]);

        let msg = include_bytes!("../../protocol-tests/fixtures/smbclient-SMB3_11-signed/85-query_directory-resp.bin");
        let resp = QueryDirectoryResponse::decode(msg).unwrap();
        let e = decode_entries(InfoClass::ID_BOTH_DIRECTORY, resp.data).unwrap();
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].name, "b.txt");
        assert_eq!(e[0].end_of_file, 14);
        let mut out = Vec::new();
        Header::decode(msg).unwrap().encode(&mut out);
        resp.encode(&mut out);
        assert_eq!(out, msg);
    }

    proptest! {
        #[test]
        fn round_trips(c: u8, f: u8, idx: u32, id in any::<(u64, u64)>(), pattern in "[a-zA-Z0-9*?<>\".\u{3041}-\u{3096}]{0,20}", len: u32,
                       data in proptest::collection::vec(any::<u8>(), 0..64)) {
            let q = QueryDirectoryRequest { file_information_class: InfoClass(c), flags: f, file_index: idx,
                file_id: FileId { persistent: id.0, volatile: id.1 }, pattern, output_buffer_length: len };
            let mut out = vec![0u8; 64];
            q.encode(&mut out);
            prop_assert_eq!(QueryDirectoryRequest::decode(&out).unwrap(), q);
            let r = QueryDirectoryResponse { data: &data };
            let mut out = vec![0u8; 64];
            r.encode(&mut out);
            prop_assert_eq!(QueryDirectoryResponse::decode(&out).unwrap(), r);
        }

        #[test]
        fn decoders_never_panic(tail in proptest::collection::vec(any::<u8>(), 0..80)) {
            let mut m = vec![0u8; 64];
            m.extend_from_slice(&33u16.to_le_bytes());
            m.extend_from_slice(&tail);
            let _ = QueryDirectoryRequest::decode(&m);
            m[64] = 9;
            let _ = QueryDirectoryResponse::decode(&m);
        }
    }
}
