//! wkssvc (MS-WKST), interface 6bffd098-a112-3610-9833-46c3f87e345a v1.0:
//! only opnum 0 NetrWkstaGetInfo at level 100, which Windows asks for when
//! it browses `\\server`. Every other opnum faults with nca_s_op_rng_error.

use super::bind::uuid;
use super::ndr::{NdrReader, NdrWriter};
use super::pdu::SyntaxId;
use super::srvsvc::{ERROR_INVALID_LEVEL, ERROR_SUCCESS, PLATFORM_ID_NT, VERSION_MAJOR, VERSION_MINOR};
use super::{Fault, ShareDirectory};

/// Abstract syntax of wkssvc (MS-WKST 2.1).
pub(crate) const SYNTAX: SyntaxId =
    SyntaxId { uuid: uuid(0x6bff_d098, 0xa112, 0x3610, [0x98, 0x33, 0x46, 0xc3, 0xf8, 0x7e, 0x34, 0x5a]), version: 1 };

/// Dispatches one wkssvc call.
pub(crate) fn call(opnum: u16, stub: &[u8], dir: &dyn ShareDirectory) -> Result<Vec<u8>, Fault> {
    match opnum {
        0 => wksta_get_info(stub, dir),
        _ => Err(Fault::OP_RNG_ERROR),
    }
}

/// WKSTA_INFO levels that are pointer arms of the WKSTA_INFO union (MS-WKST 2.2.4.1).
fn is_arm(level: u32) -> bool {
    matches!(level, 100 | 101 | 102 | 502 | 1013 | 1018 | 1046)
}

/// NetrWkstaGetInfo (MS-WKST 3.2.4.1):
/// `(ServerName, Level, [out, switch_is(Level)] WKSTA_INFO*)`.
fn wksta_get_info(stub: &[u8], dir: &dyn ShareDirectory) -> Result<Vec<u8>, Fault> {
    let mut r = NdrReader::new(stub);
    let _server = r.unique_string()?;
    let level = r.u32()?;

    let mut w = NdrWriter::new(r.referents());
    w.u32(level);
    if level != 100 {
        if is_arm(level) {
            w.pointer(false);
        }
        w.u32(ERROR_INVALID_LEVEL);
        return Ok(w.finish());
    }
    // WKSTA_INFO_100 (MS-WKST 2.2.5.1).
    w.pointer(true);
    w.u32(PLATFORM_ID_NT);
    w.pointer(true); // wki100_computername
    w.pointer(true); // wki100_langroup
    w.u32(VERSION_MAJOR);
    w.u32(VERSION_MINOR);
    w.string(&dir.server_name());
    w.string(&dir.domain_name());
    w.u32(ERROR_SUCCESS);
    Ok(w.finish())
}
