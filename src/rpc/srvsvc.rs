//! srvsvc (MS-SRVS), interface 4b324fc8-1670-01d3-1278-5a47bf6ee188 v3.0:
//! opnum 15 NetrShareEnum (NetShareEnumAll in Samba's naming), 16
//! NetrShareGetInfo and 21 NetrServerGetInfo. Every other opnum faults with
//! nca_s_op_rng_error.
//!
//! [in] parameters are read in IDL order; bytes after the last one (the
//! MS-RPCE 2.2.2.13 verification trailer Windows may append) are ignored.

use super::bind::uuid;
use super::ndr::{NdrReader, NdrWriter};
use super::pdu::SyntaxId;
use super::share_info::{self, Level};
use super::{Fault, ShareDirectory, ShareInfo};

/// Abstract syntax of srvsvc (MS-SRVS 2.1).
pub(crate) const SYNTAX: SyntaxId =
    SyntaxId { uuid: uuid(0x4b32_4fc8, 0x1670, 0x01d3, [0x12, 0x78, 0x5a, 0x47, 0xbf, 0x6e, 0xe1, 0x88]), version: 3 };

/// Win32 / NERR codes returned as NET_API_STATUS (MS-ERREF 2.2).
pub(crate) const ERROR_SUCCESS: u32 = 0;
pub(crate) const ERROR_INVALID_LEVEL: u32 = 124;
pub(crate) const NERR_NET_NAME_NOT_FOUND: u32 = 2310;

/// PLATFORM_ID_NT (MS-SRVS 2.2.2.6).
pub(crate) const PLATFORM_ID_NT: u32 = 500;
/// OS version reported in SERVER_INFO_101/102 and WKSTA_INFO_100: 6.1, the
/// value Samba reports, which every Windows and macOS client accepts.
pub(crate) const VERSION_MAJOR: u32 = 6;
pub(crate) const VERSION_MINOR: u32 = 1;
/// sv101_type: SV_TYPE_WORKSTATION | SV_TYPE_SERVER | SV_TYPE_SERVER_NT
/// (MS-SRVS 2.2.2.7): a file server that is not a domain controller.
const SERVER_TYPE: u32 = 0x0000_0001 | 0x0000_0002 | 0x0000_8000;

/// Dispatches one srvsvc call; the stub is the whole reassembled request.
pub(crate) fn call(opnum: u16, stub: &[u8], dir: &dyn ShareDirectory) -> Result<Vec<u8>, Fault> {
    match opnum {
        15 => share_enum(stub, dir),
        16 => share_get_info(stub, dir),
        21 => server_get_info(stub, dir),
        _ => Err(Fault::OP_RNG_ERROR),
    }
}

/// NetrShareEnum (MS-SRVS 3.1.4.8):
/// `(ServerName, [in,out] SHARE_ENUM_STRUCT* InfoStruct,
///   PreferedMaximumLength, [out] TotalEntries, [in,out,unique] ResumeHandle)`.
fn share_enum(stub: &[u8], dir: &dyn ShareDirectory) -> Result<Vec<u8>, Fault> {
    let mut r = NdrReader::new(stub);
    let _server = r.unique_string()?;
    // SHARE_ENUM_STRUCT: Level, then the union's own discriminant.
    let level = r.u32()?;
    if r.u32()? != level {
        return Err(Fault::BAD_STUB_DATA);
    }
    if share_info::is_pointer_arm(level) && r.pointer()? {
        let _entries_read = r.u32()?;
        // Clients send an empty container; an array here is not a request
        // we can give meaning to.
        if r.pointer()? {
            return Err(Fault::BAD_STUB_DATA);
        }
    }
    let _prefered_maximum_length = r.u32()?;
    let resume = if r.pointer()? { Some(r.u32()?) } else { None };

    let shares = dir.shares();
    let mut w = NdrWriter::new(r.referents());
    w.u32(level);
    w.u32(level);
    let status = match Level::for_enum(level) {
        Some(l) => {
            // PreferedMaximumLength is advisory; one answer holds every share.
            let from = resume.map_or(0, |h| usize::try_from(h).unwrap_or(usize::MAX));
            share_info::put_container(&mut w, shares.get(from..).unwrap_or(&[]), l);
            ERROR_SUCCESS
        }
        None => {
            if share_info::is_pointer_arm(level) {
                w.pointer(false);
            }
            ERROR_INVALID_LEVEL
        }
    };
    let total = if status == ERROR_SUCCESS { shares.len() } else { 0 };
    w.u32(u32::try_from(total).unwrap_or(u32::MAX));
    // Everything was returned, so the resume handle goes back to 0.
    w.pointer(resume.is_some());
    if resume.is_some() {
        w.u32(0);
    }
    w.u32(status);
    Ok(w.finish())
}

/// Case-insensitive share lookup (share names are case-insensitive, MS-SRVS 2.2.4.22).
fn find_share(shares: Vec<ShareInfo>, name: &str) -> Option<ShareInfo> {
    let want = name.to_lowercase();
    shares.into_iter().find(|s| s.name.to_lowercase() == want)
}

/// NetrShareGetInfo (MS-SRVS 3.1.4.10):
/// `(ServerName, [in,string] NetName, Level, [out,switch_is(Level)] SHARE_INFO*)`.
fn share_get_info(stub: &[u8], dir: &dyn ShareDirectory) -> Result<Vec<u8>, Fault> {
    let mut r = NdrReader::new(stub);
    let _server = r.unique_string()?;
    let net_name = r.string()?;
    let level = r.u32()?;

    let mut w = NdrWriter::new(r.referents());
    w.u32(level);
    let status = match Level::for_get_info(level) {
        None => {
            if share_info::is_pointer_arm(level) {
                w.pointer(false);
            }
            ERROR_INVALID_LEVEL
        }
        Some(l) => match find_share(dir.shares(), &net_name) {
            Some(s) => {
                share_info::put_one(&mut w, &s, l);
                ERROR_SUCCESS
            }
            None => {
                w.pointer(false);
                NERR_NET_NAME_NOT_FOUND
            }
        },
    };
    w.u32(status);
    Ok(w.finish())
}

/// SERVER_INFO levels that are pointer arms of the SERVER_INFO union
/// (MS-SRVS 2.2.3.7); unsupported ones are answered with a NULL arm.
fn is_server_info_arm(level: u32) -> bool {
    matches!(
        level,
        100..=103 | 402 | 403 | 502 | 503 | 599 | 1005 | 1010 | 1016..=1018 | 1107 | 1501..=1556
    )
}

/// NetrServerGetInfo (MS-SRVS 3.1.4.17): levels 100, 101 and 102.
fn server_get_info(stub: &[u8], dir: &dyn ShareDirectory) -> Result<Vec<u8>, Fault> {
    let mut r = NdrReader::new(stub);
    let _server = r.unique_string()?;
    let level = r.u32()?;

    let name = dir.server_name();
    let comment = String::new();
    let mut w = NdrWriter::new(r.referents());
    w.u32(level);
    if !matches!(level, 100..=102) {
        if is_server_info_arm(level) {
            w.pointer(false);
        }
        w.u32(ERROR_INVALID_LEVEL);
        return Ok(w.finish());
    }
    // SERVER_INFO_100/101/102 share their leading fields (MS-SRVS 2.2.4.40 ff.).
    w.pointer(true);
    w.u32(PLATFORM_ID_NT);
    w.pointer(true); // sv10x_name
    if level >= 101 {
        w.u32(VERSION_MAJOR);
        w.u32(VERSION_MINOR);
        w.u32(SERVER_TYPE);
        w.pointer(true); // sv10x_comment
    }
    if level == 102 {
        w.u32(0xffff_ffff); // sv102_users: no fixed limit
        w.u32(15); // sv102_disc: idle minutes before autodisconnect
        w.u32(0); // sv102_hidden: SV_VISIBLE
        w.u32(240); // sv102_announce (seconds)
        w.u32(3000); // sv102_anndelta (milliseconds)
        w.u32(0); // sv102_licenses: unused since NT
        w.pointer(true); // sv102_userpath
    }
    w.string(&name);
    if level >= 101 {
        w.string(&comment);
    }
    if level == 102 {
        w.string("C:\\");
    }
    w.u32(ERROR_SUCCESS);
    Ok(w.finish())
}
