//! macOS clients: the AAPL create context (Apple's SMB extension, as
//! Samba's vfs_fruit implements the server side), the Finder's metadata
//! streams `AFP_AfpInfo` and `AFP_Resource`, and the READDIR_ATTR
//! enrichment of directory listings that lets Finder open big folders
//! without opening every file.
//!
//! - AAPL server query (command 1): the reply carries the server
//!   capabilities (READ_DIR_ATTR when the client supports it, UNIX_BASED),
//!   the volume capabilities (FULL_SYNC: FLUSH makes data durable) and the
//!   model string Finder shows.
//! - `AFP_AfpInfo` is 60 bytes: "AFP\0", version 0x00010000 (big endian),
//!   reserved, backup time, 32 bytes of FinderInfo, ProDOS info, padding.
//!   A write must be one such record at offset 0; anything else is
//!   refused, and a record whose FinderInfo is all zero deletes the stream
//!   (a Mac server does the same).
//! - READDIR_ATTR (FileIdBothDirectoryInformation only, once negotiated):
//!   EaSize carries the entry's maximal access, the ShortName area the
//!   resource fork length and a 16-byte compressed FinderInfo, Reserved2
//!   the UNIX mode.

use crate::engine::status::{Error, Result};
use crate::storage::{Meta, NodeKind, OrgStore};
use crate::types::NodeId;
use crate::wire::NtStatus;
use crate::wire::create_context::{AaplServerQuery, AaplServerQueryResponse, aapl};
use crate::wire::fscc::consts::file_attributes;

/// Name of the Finder info stream.
pub const AFP_INFO: &str = "AFP_AfpInfo";
/// Name of the resource fork stream.
pub const AFP_RESOURCE: &str = "AFP_Resource";
/// Size of an AfpInfo record.
pub const AFP_INFO_LEN: usize = 60;
/// The model string Finder shows for the server.
pub const MODEL: &str = "smbvault";

/// 2000-01-01 in Unix seconds: the epoch of AppleDouble dates.
const AD_DATE_DELTA: i64 = 946_684_800;
/// AppleDouble's "no date" (AD_DATE_START).
const AD_DATE_START: u32 = 0x8000_0000;

/// What a connection negotiated through AAPL.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Negotiated {
    /// The client sent an AAPL server query.
    pub active: bool,
    /// READDIR_ATTR enrichment is on.
    pub readdir_attr: bool,
}

/// Answers an AAPL server query (the context data of a CREATE). A
/// malformed one is INVALID_PARAMETER, as on Samba.
pub fn server_query(data: &[u8], neg: &mut Negotiated) -> Result<Vec<u8>> {
    if data.len() != 24 {
        return Err(NtStatus::INVALID_PARAMETER.into());
    }
    let q = AaplServerQuery::decode(data).map_err(|_| Error::Status(NtStatus::INVALID_PARAMETER))?;
    let mut resp = AaplServerQueryResponse::default();
    if q.request_bitmap & aapl::SERVER_CAPS != 0 {
        let mut caps = aapl::UNIX_BASED;
        if q.client_caps & aapl::SUPPORTS_READ_DIR_ATTR != 0 {
            caps |= aapl::SUPPORTS_READ_DIR_ATTR;
            neg.readdir_attr = true;
        }
        resp.server_caps = Some(caps);
    }
    if q.request_bitmap & aapl::VOLUME_CAPS != 0 {
        // Case-insensitive names; FLUSH reaches stable storage (F_FULLFSYNC).
        resp.volume_caps = Some(aapl::FULL_SYNC);
    }
    if q.request_bitmap & aapl::MODEL_INFO != 0 {
        resp.model = Some(MODEL.to_string());
    }
    neg.active = true;
    let mut out = Vec::new();
    resp.encode(&mut out);
    Ok(out)
}

/// True for the Finder info stream name (any case, with or without `:$DATA`).
pub fn is_afp_info(stream: &str) -> bool {
    let s = stream.strip_suffix(":$DATA").unwrap_or(stream);
    s.eq_ignore_ascii_case(AFP_INFO)
}

/// True for the resource fork stream name.
pub fn is_afp_resource(stream: &str) -> bool {
    let s = stream.strip_suffix(":$DATA").unwrap_or(stream);
    s.eq_ignore_ascii_case(AFP_RESOURCE)
}

/// What a WRITE to `AFP_AfpInfo` does.
#[derive(Debug, PartialEq, Eq)]
pub enum AfpWrite<'a> {
    /// Store this 60-byte record at offset 0.
    Store(&'a [u8]),
    /// The FinderInfo is all zero: the stream goes away.
    Delete,
}

/// Checks a WRITE to `AFP_AfpInfo`: one record at offset 0 with the
/// right signature and version (Samba `fruit_pwrite_meta` /
/// `afpinfo_unpack`); anything else is INVALID_PARAMETER.
pub fn afp_info_write(offset: u64, data: &[u8]) -> Result<AfpWrite<'_>> {
    let bad = || Error::Status(NtStatus::INVALID_PARAMETER);
    let rec = data.get(..AFP_INFO_LEN).ok_or_else(bad)?;
    if offset != 0 || rec.get(..4) != Some(b"AFP\0") || rec.get(4..8) != Some(&[0, 1, 0, 0]) {
        return Err(bad());
    }
    if rec.get(16..48).is_some_and(|fi| fi.iter().all(|&b| b == 0)) {
        return Ok(AfpWrite::Delete);
    }
    Ok(AfpWrite::Store(rec))
}

/// The Mac metadata of one directory entry.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct EntryAttr {
    /// Maximal access of the user (goes in EaSize).
    pub max_access: u32,
    /// Length of the resource fork.
    pub rfork_len: u64,
    /// Compressed FinderInfo: type, creator (files), flags, extended flags,
    /// date added (big endian, seconds since 2000).
    pub finder_info: [u8; 16],
    /// UNIX mode (type and permission bits).
    pub unix_mode: u16,
}

/// Reads what READDIR_ATTR reports about `meta` from its streams: the
/// resource fork length and, if the file has Finder info, the compressed
/// FinderInfo. A missing or unreadable stream just reports nothing.
pub fn entry_attr(org: &OrgStore, meta: &Meta, max_access: u32) -> EntryAttr {
    let is_dir = meta.kind == NodeKind::Directory;
    let mut a = EntryAttr { max_access, unix_mode: unix_mode(meta), ..Default::default() };
    a.finder_info[12..16].copy_from_slice(&AD_DATE_START.to_be_bytes());
    let Ok(streams) = org.list_streams(meta.id) else {
        return a;
    };
    let mut info = None;
    for s in &streams {
        let name = crate::engine::names::stream_from_store(&s.name);
        if is_afp_resource(&name) {
            a.rfork_len = s.size;
        } else if is_afp_info(&name) && s.size >= AFP_INFO_LEN as u64 {
            info = Some(s.name.clone());
        }
    }
    if let Some(stored) = info
        && let Some(fi) = read_finder_info(org, meta.id, &stored)
    {
        compress_finder_info(&fi, is_dir, meta, &mut a.finder_info);
    }
    a
}

fn read_finder_info(org: &OrgStore, node: NodeId, stored: &str) -> Option<[u8; 32]> {
    let c = org.open_content(node, Some(stored), false).ok()?;
    let mut rec = [0u8; AFP_INFO_LEN];
    let n = c.read(0, &mut rec).ok()?;
    if n < AFP_INFO_LEN || &rec[..4] != b"AFP\0" {
        return None;
    }
    rec.get(16..48)?.try_into().ok()
}

/// Samba `readdir_attr_meta_finderi`: type and creator only for files.
fn compress_finder_info(fi: &[u8; 32], is_dir: bool, meta: &Meta, out: &mut [u8; 16]) {
    if !is_dir {
        out[..8].copy_from_slice(&fi[..8]);
    }
    out[8..10].copy_from_slice(&fi[8..10]);
    out[10..12].copy_from_slice(&fi[24..26]);
    let unix = (meta.created.0 / 10_000_000) as i64 - 11_644_473_600;
    let added = u32::try_from(unix - AD_DATE_DELTA).unwrap_or(0);
    out[12..16].copy_from_slice(&added.to_be_bytes());
}

/// A UNIX mode for an entry: rwxr-xr-x directories, rw-r--r-- files,
/// without write bits when read-only.
fn unix_mode(meta: &Meta) -> u16 {
    let ro = meta.attrs & file_attributes::READONLY != 0;
    match (meta.kind, ro) {
        (NodeKind::Directory, _) => 0o040_755,
        (_, false) => 0o100_644,
        (_, true) => 0o100_444,
    }
}

/// Offsets in a FileIdBothDirectoryInformation entry (MS-FSCC 2.4.17).
mod off {
    pub const EA_SIZE: usize = 64;
    pub const SHORT_NAME_LENGTH: usize = 68;
    pub const SHORT_NAME: usize = 70;
    pub const RESERVED2: usize = 94;
}

/// Rewrites the entries of a FileIdBothDirectoryInformation buffer with
/// their Mac metadata, in order (Samba `smbd_marshall_dir_entry` with
/// RDATTR_AAPL): ShortNameLength 24, the resource fork length and the
/// compressed FinderInfo in ShortName, the mode in Reserved2.
pub fn patch_id_both(buf: &mut [u8], attrs: &[EntryAttr]) {
    let mut pos = 0usize;
    for a in attrs {
        let Some(e) = buf.get_mut(pos..pos + off::RESERVED2 + 2) else {
            return;
        };
        e[off::EA_SIZE..off::EA_SIZE + 4].copy_from_slice(&a.max_access.to_le_bytes());
        e[off::SHORT_NAME_LENGTH] = 24;
        e[off::SHORT_NAME_LENGTH + 1] = 0;
        e[off::SHORT_NAME..off::SHORT_NAME + 8].copy_from_slice(&a.rfork_len.to_le_bytes());
        e[off::SHORT_NAME + 8..off::SHORT_NAME + 24].copy_from_slice(&a.finder_info);
        e[off::RESERVED2..off::RESERVED2 + 2].copy_from_slice(&a.unix_mode.to_le_bytes());
        let next = u32::from_le_bytes([e[0], e[1], e[2], e[3]]) as usize;
        if next == 0 {
            return;
        }
        pos += next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(finder: [u8; 32]) -> Vec<u8> {
        let mut r = vec![0u8; 60];
        r[..4].copy_from_slice(b"AFP\0");
        r[4..8].copy_from_slice(&[0, 1, 0, 0]);
        r[16..48].copy_from_slice(&finder);
        r
    }

    #[test]
    fn afp_info_writes_are_checked() {
        let mut fi = [0u8; 32];
        fi[..8].copy_from_slice(b"TEXTttxt");
        let rec = record(fi);
        assert_eq!(afp_info_write(0, &rec).unwrap(), AfpWrite::Store(&rec[..]));
        assert_eq!(afp_info_write(0, &record([0; 32])).unwrap(), AfpWrite::Delete);
        let status = |r: Result<AfpWrite<'_>>| r.err().map(|e| e.status());
        assert_eq!(status(afp_info_write(1, &rec)), Some(NtStatus::INVALID_PARAMETER));
        assert_eq!(status(afp_info_write(0, &rec[..59])), Some(NtStatus::INVALID_PARAMETER));
        let mut bad = rec.clone();
        bad[0] = b'X';
        assert_eq!(status(afp_info_write(0, &bad)), Some(NtStatus::INVALID_PARAMETER));
        let mut bad = rec.clone();
        bad[7] = 1;
        assert_eq!(status(afp_info_write(0, &bad)), Some(NtStatus::INVALID_PARAMETER));
    }

    #[test]
    fn server_query_reports_read_dir_attr_volume_caps_and_model() {
        let q = AaplServerQuery { request_bitmap: 7, client_caps: 0xf };
        let mut data = Vec::new();
        q.encode(&mut data);
        let mut neg = Negotiated::default();
        let r = AaplServerQueryResponse::decode(&server_query(&data, &mut neg).unwrap()).unwrap();
        assert_eq!(r.server_caps, Some(aapl::UNIX_BASED | aapl::SUPPORTS_READ_DIR_ATTR));
        assert_eq!(r.volume_caps, Some(aapl::FULL_SYNC));
        assert_eq!(r.model.as_deref(), Some(MODEL));
        assert!(neg.readdir_attr && neg.active);
        assert!(server_query(&data[..20], &mut neg).is_err());
        let mut other = data.clone();
        other[0] = 2;
        assert!(server_query(&other, &mut neg).is_err());
    }

    #[test]
    fn stream_names() {
        assert!(is_afp_info("afp_afpinfo:$DATA"));
        assert!(is_afp_resource("AFP_Resource"));
        assert!(!is_afp_info("AFP_Resource"));
    }
}
