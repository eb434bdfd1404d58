//! Previous Versions in CREATE: the backup generation a CREATE names (the
//! TWrp context, MS-SMB2 2.2.13.2.7, or a `@GMT-YYYY.MM.DD-HH.MM.SS` path
//! component, 2.2.32.2) and the share as it was then, opened read-only.
//!
//! What is refused, and how, follows smbtorture's `smb2.twrp.write`
//! (source4/torture/smb2/create.c, run against Samba's vfs_shadow_copy2 and
//! Windows): an open of an existing file or directory succeeds with the
//! access its descriptor grants, but every disposition that would create or
//! overwrite, and DELETE_ON_CLOSE, is MEDIA_WRITE_PROTECTED; writes and
//! SET_INFO through the handle are refused later (`write_protected`).
//!
//! Access: the generation's descriptor decides the open (it protected those
//! bytes: someone let in later does not read what was kept from them then),
//! and when the file or folder still exists, today's descriptor must let the
//! user read it too (someone shut out since does not read its history). The
//! share permission is today's (the tree connect). A user without access
//! sees no version at all: FSCTL_SRV_ENUMERATE_SNAPSHOTS applies the same
//! two checks to each generation (`handlers::fsctl`).

use std::sync::Arc;

use crate::engine::acl;
use crate::engine::fileops;
use crate::engine::fsa::sid::Token;
use crate::engine::names::{self, ParsedName};
use crate::engine::server::Server;
use crate::engine::services::ShareRecord;
use crate::engine::status::{Error, Result};
use crate::storage::{NodeKind, OrgStore};
use crate::types::{FileTime, NodeId};
use crate::wire::NtStatus;
use crate::wire::create::CreateRequest;
use crate::wire::create_context as cc;
use crate::wire::fscc::consts::{create_disposition as disp, create_options as opt};

/// FILE_READ_DATA / FILE_LIST_DIRECTORY (MS-SMB2 2.2.13.1.1, .1.2).
const READ: u32 = 0x0000_0001;

/// A share as one backup generation holds it.
pub struct View {
    /// The generation's time (Unix seconds, UTC).
    pub time: i64,
    /// Its store (a verified copy in the local cache).
    pub store: Arc<OrgStore>,
    /// The share with the generation's root directory.
    pub share: ShareRecord,
}

/// The generation a CREATE names, if any: the TWrp context, else a `@GMT-`
/// component of the name (taken out of `name`). `tokens`: the server offers
/// Previous Versions at all; if not, such a component is an ordinary name.
pub fn requested(req: &CreateRequest<'_>, name: &mut ParsedName, tokens: bool) -> Result<Option<i64>> {
    let token = if tokens { names::take_gmt_token(name) } else { None };
    if let Some(c) = cc::find(&req.contexts, cc::names::TWRP) {
        let ft = cc::Timewarp::decode(c.data)?.timestamp;
        let t = FileTime(ft).to_system().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
        return Ok(Some(t));
    }
    Ok(token)
}

/// Opens the generation taken at `time` for this CREATE, after the
/// read-only and access rules above. `req` must then be planned with
/// disposition OPEN (nothing is ever created in a view).
pub fn open(
    server: &Server,
    share: &ShareRecord,
    req: &CreateRequest<'_>,
    name: &ParsedName,
    time: i64,
    token: &Token,
) -> Result<View> {
    let not_found = || Error::Status(NtStatus::OBJECT_NAME_NOT_FOUND);
    if !enabled(server, share) {
        return Err(not_found());
    }
    // A time that names no generation is a missing name, whatever the
    // disposition (smbtorture smb2.create.blob: a TWrp of no snapshot with
    // a create disposition is OBJECT_NAME_NOT_FOUND, as on Samba).
    let snaps = server.snapshots().ok_or_else(not_found)?;
    let meta = snaps.open(share.org_id, &share.name, time, false).ok_or_else(not_found)?;
    match req.create_disposition {
        disp::OPEN | disp::OPEN_IF => {}
        _ => return Err(NtStatus::MEDIA_WRITE_PROTECTED.into()),
    }
    if req.create_options & opt::DELETE_ON_CLOSE != 0 {
        return Err(NtStatus::MEDIA_WRITE_PROTECTED.into());
    }
    // What the name is in the generation (None: not there).
    let target = resolve(&meta.store, meta.root, name)?;
    let Some((node, kind)) = target else {
        if req.create_disposition == disp::OPEN_IF {
            return Err(NtStatus::MEDIA_WRITE_PROTECTED.into());
        }
        // CREATE's own walk answers OBJECT_NAME / OBJECT_PATH_NOT_FOUND.
        return Ok(View { time, store: meta.store, share: ShareRecord { root: meta.root, ..share.clone() } });
    };
    if let Some(s) = &name.stream
        && req.create_disposition == disp::OPEN_IF
        && !super::create_disk::stream_exists(&meta.store, node, s, false)?
    {
        return Err(NtStatus::MEDIA_WRITE_PROTECTED.into());
    }
    if !readable_today(server, share, name, token)? {
        return Err(NtStatus::ACCESS_DENIED.into());
    }
    let store = if kind == NodeKind::File || name.stream.is_some() {
        // File contents: the whole generation in the cache. A generation
        // that cannot be fetched or fails verification is an I/O error.
        let full = snaps.open(share.org_id, &share.name, time, true).ok_or(Error::Status(NtStatus::IO_DEVICE_ERROR))?;
        if full.root != meta.root {
            return Err(NtStatus::IO_DEVICE_ERROR.into());
        }
        full.store
    } else {
        meta.store
    };
    Ok(View { time, store, share: ShareRecord { root: meta.root, ..share.clone() } })
}

/// The share's Previous Versions switch as it is now (a tree keeps the
/// record of its connect; an administrator's change applies at once).
fn enabled(server: &Server, share: &ShareRecord) -> bool {
    server.directory.find_share(share.org_id, &share.name).is_some_and(|s| s.id == share.id && s.previous_versions)
}

/// The node `name` names below `root`, and its kind.
fn resolve(store: &OrgStore, root: NodeId, name: &ParsedName) -> Result<Option<(NodeId, NodeKind)>> {
    let Some((leaf, dirs)) = name.components.split_last() else {
        return Ok(Some((root, NodeKind::Directory)));
    };
    let Ok(parent) = fileops::walk(store, root, dirs) else { return Ok(None) };
    Ok(match fileops::lookup(store, parent, leaf)? {
        Some(n) => Some((n, store.stat(n)?.kind)),
        None => None,
    })
}

/// True unless the object exists today and its descriptor does not let
/// the user read it.
pub fn readable_today(server: &Server, share: &ShareRecord, name: &ParsedName, token: &Token) -> Result<bool> {
    let live = server.org_store(share.org_id)?;
    let Some((node, kind)) = resolve(&live, share.root, name)? else { return Ok(true) };
    let is_dir = kind == NodeKind::Directory;
    let granted = acl::granted(&live, share.org_id, node, is_dir, node == share.root, token)?;
    Ok(granted & READ != 0)
}

/// True if the generation's descriptor lets the user read what `name`
/// names in `view` (and it exists there).
pub fn readable_in(
    view: &crate::engine::services::SnapshotView,
    share: &ShareRecord,
    name: &ParsedName,
    token: &Token,
) -> bool {
    let Ok(Some((node, kind))) = resolve(&view.store, view.root, name) else { return false };
    let is_dir = kind == NodeKind::Directory;
    acl::granted(&view.store, share.org_id, node, is_dir, node == view.root, token).is_ok_and(|g| g & READ != 0)
}

/// The `@GMT-` tokens of the generations, newest first, that hold `path`
/// ('\\'-separated below the share root) and that the user may read there
/// and today (FSCTL_SRV_ENUMERATE_SNAPSHOTS). Empty when the share's
/// Previous Versions are off.
pub fn versions(server: &Server, share: &ShareRecord, path: &str, token: &Token) -> Vec<String> {
    if !enabled(server, share) {
        return Vec::new();
    }
    let (Some(snaps), Ok(name)) = (server.snapshots(), names::parse(path)) else { return Vec::new() };
    if !readable_today(server, share, &name, token).unwrap_or(false) {
        return Vec::new();
    }
    let mut out = Vec::new();
    for t in snaps.times(share.org_id, &share.name) {
        if let Some(v) = snaps.open(share.org_id, &share.name, t, false)
            && readable_in(&v, share, &name, token)
        {
            out.push(names::gmt_token(t));
        }
    }
    out
}
