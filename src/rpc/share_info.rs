//! SHARE_INFO_* structures (MS-SRVS 2.2.4.22 - 2.2.4.29) in NDR 2.0.
//!
//! Each structure has a fixed part (scalars and pointer referent ids) and a
//! deferred part (the strings). In an array all fixed parts come first, then
//! every element's strings in element order (C706 14.3.12.3); a single
//! structure behind a pointer is the one-element case of the same rule.

use super::ShareInfo;
use super::ndr::NdrWriter;

/// Info levels this server answers for NetrShareEnum and NetrShareGetInfo.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Level {
    L0,
    L1,
    L2,
    L501,
    L502,
    /// SHARE_INFO_1005 (NetrShareGetInfo only).
    L1005,
}

impl Level {
    /// Level for NetrShareEnum (MS-SRVS 3.1.4.8: 0, 1, 2, 501, 502, 503).
    pub(crate) fn for_enum(level: u32) -> Option<Level> {
        match level {
            0 => Some(Level::L0),
            1 => Some(Level::L1),
            2 => Some(Level::L2),
            501 => Some(Level::L501),
            502 => Some(Level::L502),
            _ => None,
        }
    }

    /// Level for NetrShareGetInfo (MS-SRVS 3.1.4.10).
    pub(crate) fn for_get_info(level: u32) -> Option<Level> {
        match level {
            1005 => Some(Level::L1005),
            l => Level::for_enum(l),
        }
    }
}

/// Levels that are a pointer arm of SHARE_ENUM_UNION / SHARE_INFO in
/// MS-SRVS 2.2.3.x plus Samba's extras; any other level is the empty
/// default arm Samba's IDL has, so nothing follows the discriminant.
pub(crate) fn is_pointer_arm(level: u32) -> bool {
    matches!(level, 0 | 1 | 2 | 501 | 502 | 503 | 1004 | 1005 | 1006 | 1007 | 1501)
}

/// shi2/shi502_max_uses: no limit (MS-SRVS 2.2.4.24: 0xFFFFFFFF = unlimited).
const MAX_USES_UNLIMITED: u32 = 0xffff_ffff;
/// SHI1005 / shi501 flags: CSC_CACHE_MANUAL_REINT (0), the Windows default;
/// no access-based enumeration bit because Explorer must not rely on it.
const SHARE_FLAGS: u32 = 0;

/// Writes the fixed part of one SHARE_INFO_<level>.
fn put_fixed(w: &mut NdrWriter, s: &ShareInfo, level: Level) {
    match level {
        Level::L1005 => w.u32(SHARE_FLAGS),
        Level::L0 => w.pointer(true),
        Level::L1 | Level::L2 | Level::L501 | Level::L502 => {
            w.pointer(true); // netname
            w.u32(s.share_type);
            w.pointer(true); // remark
            match level {
                Level::L501 => w.u32(SHARE_FLAGS),
                Level::L2 | Level::L502 => {
                    w.u32(0); // permissions: ignored by servers (MS-SRVS 2.2.4.24)
                    w.u32(MAX_USES_UNLIMITED);
                    w.u32(0); // current_uses: not tracked per share
                    w.pointer(true); // path
                    w.pointer(false); // passwd: share-level passwords do not exist
                    if level == Level::L502 {
                        w.u32(0); // shi502_reserved = security descriptor length
                        w.pointer(false); // no security descriptor
                    }
                }
                _ => {}
            }
        }
    }
}

/// Writes the deferred strings of one SHARE_INFO_<level>.
fn put_deferred(w: &mut NdrWriter, s: &ShareInfo, level: Level) {
    match level {
        Level::L1005 => {}
        Level::L0 => w.string(&s.name),
        Level::L1 | Level::L501 => {
            w.string(&s.name);
            w.string(&s.comment);
        }
        Level::L2 | Level::L502 => {
            w.string(&s.name);
            w.string(&s.comment);
            w.string(&s.path);
        }
    }
}

/// SHARE_INFO_<level>_CONTAINER behind a unique pointer (MS-SRVS 2.2.4.33 ff.):
/// `EntriesRead` and a pointer to a conformant array of structures.
pub(crate) fn put_container(w: &mut NdrWriter, shares: &[ShareInfo], level: Level) {
    w.pointer(true);
    let count = u32::try_from(shares.len()).unwrap_or(u32::MAX);
    w.u32(count);
    w.pointer(!shares.is_empty());
    if shares.is_empty() {
        return;
    }
    w.u32(count); // conformance (max_count) of the array
    for s in shares {
        put_fixed(w, s, level);
    }
    for s in shares {
        put_deferred(w, s, level);
    }
}

/// A single SHARE_INFO_<level> behind a unique pointer (NetrShareGetInfo).
pub(crate) fn put_one(w: &mut NdrWriter, s: &ShareInfo, level: Level) {
    w.pointer(true);
    put_fixed(w, s, level);
    put_deferred(w, s, level);
}
