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
//! - `AFP_AfpInfo` is 60 bytes, every field big endian: signature
//!   "AFP\0" (0x41465000), version 0x00000100 (bytes `00 00 01 00`),
//!   reserved, backup time (0x80000000: never), 32 bytes of FinderInfo,
//!   ProDOS info, padding (Samba `source3/include/MacExtensions.h`,
//!   `afpinfo_pack`/`afpinfo_unpack` in `source3/lib/adouble.c`). It
//!   behaves as on a macOS server, which Samba's vfs_fruit copies and
//!   smbtorture `vfs.fruit` checks: see [`afp_info_write`],
//!   [`afp_info_read`] and [`afp_info_eof`]. The stream exists only while
//!   it holds a record: an empty one is not listed and goes at its last close.
//! - `AFP_Resource` is an ordinary stream except that delete-on-close
//!   makes it delete-pending but does not remove it at its last close (a
//!   Mac deletes a resource fork by truncating it to 0), and an empty one
//!   is not listed and goes at its last close.
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
pub use crate::wire::fscc::dir_info::{EntryAttr, patch_id_both};

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
    /// A copy-chunk without chunks copies the whole file with its streams.
    pub copyfile: bool,
    /// Security descriptors carry the NFS ACEs (UNIX owner, group, mode).
    pub nfs_ace: bool,
}

/// Answers an AAPL server query (the context data of a CREATE). A
/// malformed one is INVALID_PARAMETER, as on Samba.
pub fn server_query(data: &[u8], neg: &mut Negotiated) -> Result<Vec<u8>> {
    if data.len() != 24 {
        return Err(NtStatus::INVALID_PARAMETER.into());
    }
    let q = AaplServerQuery::decode(data)?;
    let mut resp = AaplServerQueryResponse::default();
    if q.request_bitmap & aapl::SERVER_CAPS != 0 {
        // As Samba's vfs_fruit: copyfile and NFS ACEs are offered to
        // every AAPL client; NFS ACEs are used once the client says it
        // understands UNIX-based servers or them.
        let mut caps = aapl::UNIX_BASED | aapl::SUPPORTS_OSX_COPYFILE | aapl::SUPPORTS_NFS_ACE;
        if q.client_caps & aapl::SUPPORTS_READ_DIR_ATTR != 0 {
            caps |= aapl::SUPPORTS_READ_DIR_ATTR;
            neg.readdir_attr = true;
        }
        neg.copyfile = true;
        neg.nfs_ace = q.client_caps & (aapl::UNIX_BASED | aapl::SUPPORTS_NFS_ACE) != 0;
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

/// AfpInfo signature "AFP\0", big endian (MacExtensions.h `AFP_Signature`).
pub const AFP_SIGNATURE: u32 = 0x4146_5000;
/// AfpInfo version, big endian (MacExtensions.h `AFP_Version`): `00 00 01 00`.
pub const AFP_VERSION: u32 = 0x0000_0100;
/// AfpInfo backup time "never" (MacExtensions.h `AFP_BackupTime`).
pub const AFP_BACKUP_NEVER: u32 = 0x8000_0000;
/// Offset of the 32-byte FinderInfo in an AfpInfo record.
const FINDER_INFO: usize = 16;

/// The record of a file without Finder info (Samba `afpinfo_new` +
/// `afpinfo_pack`): what reading a freshly created, unwritten
/// `AFP_AfpInfo` stream returns.
pub fn null_afp_info() -> [u8; AFP_INFO_LEN] {
    let mut r = [0u8; AFP_INFO_LEN];
    r[0..4].copy_from_slice(&AFP_SIGNATURE.to_be_bytes());
    r[4..8].copy_from_slice(&AFP_VERSION.to_be_bytes());
    r[12..16].copy_from_slice(&AFP_BACKUP_NEVER.to_be_bytes());
    r
}

/// True if `rec` is a whole AfpInfo record with the right signature and version.
pub fn valid_afp_info(rec: &[u8]) -> bool {
    rec.len() == AFP_INFO_LEN && rec[0..4] == AFP_SIGNATURE.to_be_bytes() && rec[4..8] == AFP_VERSION.to_be_bytes()
}

/// What a WRITE to `AFP_AfpInfo` does.
#[derive(Debug, PartialEq, Eq)]
pub enum AfpWrite {
    /// Store this record (always at offset 0).
    Store([u8; AFP_INFO_LEN]),
    /// The FinderInfo is all zero: the stream goes away (at its last close).
    Delete,
    /// Accepted, nothing stored: the write ended before the FinderInfo.
    Ignore,
}

/// Checks a WRITE of `data` at `offset` to `AFP_AfpInfo` as a macOS
/// server does (Samba `fruit_pwrite_meta`, smbtorture
/// `vfs.fruit.writing_afpinfo`): the data must start with "AFP" and be at
/// least 3 bytes, or 60 at a non-zero offset; the offset is then ignored
/// and the first 60 bytes (zero-padded) are the record, whose signature and
/// version must be right. A write of 16 bytes or less is accepted and
/// stores nothing. Anything else is INVALID_PARAMETER.
pub fn afp_info_write(offset: u64, data: &[u8]) -> Result<AfpWrite> {
    let bad = || Error::Status(NtStatus::INVALID_PARAMETER);
    let n = data.len();
    if n < 3 || (offset != 0 && n < AFP_INFO_LEN) || &data[..3] != b"AFP" {
        return Err(bad());
    }
    if n <= FINDER_INFO {
        return Ok(AfpWrite::Ignore);
    }
    let mut rec = [0u8; AFP_INFO_LEN];
    let take = n.min(AFP_INFO_LEN);
    rec[..take].copy_from_slice(&data[..take]);
    if !valid_afp_info(&rec) {
        return Err(bad());
    }
    if rec[FINDER_INFO..FINDER_INFO + 32].iter().all(|&b| b == 0) {
        return Ok(AfpWrite::Delete);
    }
    Ok(AfpWrite::Store(rec))
}

/// Carries out a checked write on the stream `key` whose data is
/// `content` (a WRITE or a copy-chunk into `AFP_AfpInfo`).
pub fn apply_afp_write(
    server: &crate::engine::server::Server,
    key: &crate::engine::fsa::FileKey,
    content: &crate::storage::Content,
    w: AfpWrite,
) -> Result<()> {
    match w {
        AfpWrite::Store(rec) => {
            content.write(0, &rec)?;
            if content.len() != AFP_INFO_LEN as u64 {
                content.set_len(AFP_INFO_LEN as u64)?;
            }
        }
        AfpWrite::Delete => {
            content.set_len(0)?;
            server.files.with(|t| t.stream(key).shares.set_delete_pending(true));
        }
        AfpWrite::Ignore => {}
    }
    Ok(())
}

/// The bytes a READ of `len` at `offset` from `AFP_AfpInfo` returns, as a
/// macOS server answers (Samba `fruit_pread_meta`): any offset up to 60
/// reads from 0, beyond that is end of file; a stream without a whole
/// record reads as [`null_afp_info`] (a stored record is returned as it
/// is, as Samba's `fruit_pread_meta_stream` does). `None` is end of file.
pub fn afp_info_read(offset: u64, len: usize, stored: Option<&[u8]>) -> Option<Vec<u8>> {
    if offset > AFP_INFO_LEN as u64 {
        return None;
    }
    let rec = match stored {
        Some(r) if r.len() == AFP_INFO_LEN => r.to_vec(),
        _ => null_afp_info().to_vec(),
    };
    Some(rec[..len.min(AFP_INFO_LEN)].to_vec())
}

/// What setting the end of file of `AFP_AfpInfo` does (Samba
/// `fruit_ftruncate_meta`, as macOS): beyond 60 bytes
/// ALLOTTED_SPACE_EXCEEDED, otherwise success and nothing changes.
pub fn afp_info_eof(size: u64) -> Result<()> {
    if size > AFP_INFO_LEN as u64 {
        return Err(NtStatus::ALLOTTED_SPACE_EXCEEDED.into());
    }
    Ok(())
}

/// True if a named stream of this name and size is not there as far as
/// clients can tell: an `AFP_AfpInfo` without a whole record or an empty
/// `AFP_Resource` (Samba `fruit_streaminfo`); and for a Mac (`mac`: the
/// open was made on a connection that negotiated AAPL) any empty named
/// stream, since a Mac's named streams are extended attributes, which
/// exist only with a value (Samba `fruit_filter_empty_streams`, smbtorture
/// `vfs.fruit.empty_stream`). Such a stream is not listed and is removed
/// at its last close. Windows clients keep NTFS semantics for their own
/// streams: an empty stream they create stays.
pub fn hidden_stream(stream: &str, size: u64, mac: bool) -> bool {
    (is_afp_info(stream) && size != AFP_INFO_LEN as u64) || ((is_afp_resource(stream) || mac) && size == 0)
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
pub fn unix_mode(meta: &Meta) -> u16 {
    let ro = meta.attrs & file_attributes::READONLY != 0;
    match (meta.kind, ro) {
        (NodeKind::Directory, _) => 0o040_755,
        (_, false) => 0o100_644,
        (_, true) => 0o100_444,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An AfpInfo record with FinderInfo "SMB,OLE!" exactly as Samba's
    /// smbtorture writes it (`torture_afpinfo_new` + `torture_afpinfo_pack`
    /// in source4/torture/vfs/fruit.c: RSIVAL of AFP_Signature 0x41465000,
    /// AFP_Version 0x00000100, AFP_BackupTime 0x80000000, then the
    /// FinderInfo at 16), written out by hand from that code, not by our
    /// encoder.
    const SAMBA_TORTURE_AFPINFO: [u8; 60] = [
        0x41, 0x46, 0x50, 0x00, // "AFP\0"
        0x00, 0x00, 0x01, 0x00, // version 0x00000100, big endian
        0x00, 0x00, 0x00, 0x00, // reserved
        0x80, 0x00, 0x00, 0x00, // backup time: never
        b'S', b'M', b'B', b',', b'O', b'L', b'E', b'!', // type, creator
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // rest of FinderInfo
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // ProDOS info, padding
    ];

    /// The first 8 bytes smbtorture `vfs.fruit` "read metadata" expects
    /// back from any AfpInfo stream: `"AFP\0\0\0\001\0"` (fruit.c).
    const SAMBA_TORTURE_AFPINFO_HEAD: &[u8] = b"AFP\0\0\0\x01\0";

    #[test]
    fn golden_afp_info_from_samba_torture_is_stored() {
        match afp_info_write(0, &SAMBA_TORTURE_AFPINFO) {
            Ok(AfpWrite::Store(r)) => assert_eq!(&r[..], &SAMBA_TORTURE_AFPINFO[..]),
            other => panic!("Samba's AfpInfo record refused: {other:?}"),
        }
        assert_eq!(&SAMBA_TORTURE_AFPINFO[..8], SAMBA_TORTURE_AFPINFO_HEAD);
    }

    #[test]
    fn null_afp_info_is_sambas_empty_record() {
        let n = null_afp_info();
        assert_eq!(&n[..8], SAMBA_TORTURE_AFPINFO_HEAD);
        assert_eq!(&n[..16], &SAMBA_TORTURE_AFPINFO[..16]);
        assert!(n[16..].iter().all(|&b| b == 0));
    }

    fn record(finder: [u8; 32]) -> Vec<u8> {
        let mut r = SAMBA_TORTURE_AFPINFO.to_vec();
        r[16..48].copy_from_slice(&finder);
        r
    }

    #[test]
    fn afp_info_writes_are_checked() {
        let mut fi = [0u8; 32];
        fi[..8].copy_from_slice(b"TEXTttxt");
        let rec = record(fi);
        let status = |r: Result<AfpWrite>| r.err().map(|e| e.status());
        assert!(matches!(afp_info_write(0, &rec).unwrap(), AfpWrite::Store(r) if r[..] == rec[..]));
        assert_eq!(afp_info_write(0, &record([0; 32])).unwrap(), AfpWrite::Delete);
        // smbtorture `writing_afpinfo`: a non-zero offset needs 60 bytes
        // and is ignored; 3..=16 bytes starting "AFP" are accepted and
        // store nothing; longer writes are cut at 60.
        assert!(matches!(afp_info_write(59, &rec).unwrap(), AfpWrite::Store(r) if r[..] == rec[..]));
        assert_eq!(status(afp_info_write(1, &rec[..59])), Some(NtStatus::INVALID_PARAMETER));
        assert_eq!(status(afp_info_write(0, &rec[..2])), Some(NtStatus::INVALID_PARAMETER));
        assert_eq!(afp_info_write(0, &rec[..3]).unwrap(), AfpWrite::Ignore);
        assert_eq!(afp_info_write(0, &rec[..16]).unwrap(), AfpWrite::Ignore);
        assert!(matches!(afp_info_write(0, &rec[..24]).unwrap(), AfpWrite::Store(r) if r[16..24] == rec[16..24]));
        let mut long = rec.clone();
        long.resize(10_064, 0);
        assert!(matches!(afp_info_write(10_000, &long).unwrap(), AfpWrite::Store(r) if r[..] == rec[..]));
        assert_eq!(status(afp_info_write(0, &[0u8; 60])), Some(NtStatus::INVALID_PARAMETER));
        let mut bad = rec.clone();
        bad[3] = b'X';
        assert_eq!(status(afp_info_write(0, &bad)), Some(NtStatus::INVALID_PARAMETER));
        // The version our old code wanted (00 01 00 00) is not Samba's or macOS's.
        let mut bad = rec.clone();
        bad[4..8].copy_from_slice(&[0, 1, 0, 0]);
        assert_eq!(status(afp_info_write(0, &bad)), Some(NtStatus::INVALID_PARAMETER));
    }

    #[test]
    fn afp_info_reads_and_eof_as_macos() {
        let rec = SAMBA_TORTURE_AFPINFO;
        // "read metadata": offsets up to 60 read from 0, beyond is EOF.
        assert_eq!(afp_info_read(0, 61, Some(&rec)).unwrap(), rec.to_vec());
        assert_eq!(afp_info_read(16, 8, Some(&rec)).unwrap(), SAMBA_TORTURE_AFPINFO_HEAD.to_vec());
        assert_eq!(afp_info_read(60, 1, Some(&rec)).unwrap(), b"A".to_vec());
        assert_eq!(afp_info_read(61, 1, Some(&rec)), None);
        // "null afpinfo": an unwritten stream reads as the empty record.
        assert_eq!(afp_info_read(0, 60, Some(&[])).unwrap(), null_afp_info().to_vec());
        assert_eq!(afp_info_eof(61).err().map(|e| e.status()), Some(NtStatus::ALLOTTED_SPACE_EXCEEDED));
        assert!(afp_info_eof(0).is_ok() && afp_info_eof(60).is_ok());
        assert!(hidden_stream("AFP_AfpInfo", 0, false) && !hidden_stream("AFP_AfpInfo", 60, true));
        assert!(hidden_stream("AFP_Resource", 0, false) && !hidden_stream("AFP_Resource", 1, true));
        assert!(!hidden_stream("foo", 0, false) && hidden_stream("foo", 0, true) && !hidden_stream("foo", 1, true));
    }

    #[test]
    fn server_query_reports_read_dir_attr_volume_caps_and_model() {
        let q = AaplServerQuery { request_bitmap: 7, client_caps: 0xf };
        let mut data = Vec::new();
        q.encode(&mut data);
        let mut neg = Negotiated::default();
        let r = AaplServerQueryResponse::decode(&server_query(&data, &mut neg).unwrap()).unwrap();
        // smbtorture's enable_aapl (vfs.fruit) wants exactly these four.
        let want =
            aapl::UNIX_BASED | aapl::SUPPORTS_READ_DIR_ATTR | aapl::SUPPORTS_NFS_ACE | aapl::SUPPORTS_OSX_COPYFILE;
        assert_eq!(r.server_caps, Some(want));
        assert_eq!(r.volume_caps, Some(aapl::FULL_SYNC));
        assert_eq!(r.model.as_deref(), Some(MODEL));
        assert!(neg.readdir_attr && neg.active && neg.copyfile && neg.nfs_ace);
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
