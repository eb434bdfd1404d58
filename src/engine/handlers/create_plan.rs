//! The decision part of CREATE (MS-FSA 2.1.5.1): resolve the name, decide
//! the access (share permission, security descriptor, read-only attribute:
//! [`fa`]) and apply the create disposition's rules, without changing
//! anything yet. `create_disk` then enters the plan in the open table and
//! carries it out.

use super::create_disk::{Input, stream_exists};
use crate::engine::acl;
use crate::engine::fileops::{self, new_attributes};
use crate::engine::fsa::access::{self as fa, ExistingObject};
use crate::engine::fsa::sharing::{self, DeleteTarget};
use crate::engine::status::{Error, Result};
use crate::storage::{MetaUpdate, NodeKind};
use crate::types::{FileTime, NodeId};
use crate::wire::NtStatus;
use crate::wire::create_context as cc;
use crate::wire::dtyp::SecurityDescriptor;
use crate::wire::fscc::consts::{create_action, create_disposition as disp, create_options as opt, file_attributes};

/// Decided, not yet registered: what the table and the final steps need.
pub(super) struct Plan {
    pub(super) node: NodeId,
    pub(super) granted: u32,
    pub(super) maximal: u32,
    pub(super) action: u32,
    pub(super) overwrite: bool,
    /// The node was created by this CREATE.
    pub(super) new_node: bool,
    /// The named stream must be created.
    pub(super) new_stream: bool,
    pub(super) delete_on_close: bool,
    pub(super) is_dir: bool,
}

pub(super) fn plan(i: &Input<'_>) -> Result<Plan> {
    let Some((leaf, dirs)) = i.name.components.split_last() else {
        return plan_root(i);
    };
    let parent = fileops::walk(i.org, i.share.root, dirs)?;
    match fileops::lookup(i.org, parent, leaf)? {
        Some(node) => plan_existing(i, parent, node),
        None => plan_new(i, parent, leaf),
    }
}

fn wants(i: &Input<'_>, bit: u32) -> bool {
    i.req.create_options & bit != 0
}

/// The share root: always an existing directory that cannot be replaced or deleted.
fn plan_root(i: &Input<'_>) -> Result<Plan> {
    let root = i.share.root;
    if i.name.stream.is_none() && wants(i, opt::NON_DIRECTORY_FILE) {
        return Err(NtStatus::FILE_IS_A_DIRECTORY.into());
    }
    match i.req.create_disposition {
        disp::CREATE => return Err(NtStatus::OBJECT_NAME_COLLISION.into()),
        disp::OPEN | disp::OPEN_IF => {}
        _ => return Err(NtStatus::INVALID_PARAMETER.into()),
    }
    let acl = acl::granted(i.org, i.share.org_id, root, true, true, &i.token)?;
    let obj = ExistingObject { share: fa::share_mask(i.level), acl, parent_delete_child: false, read_only_file: false };
    let granted = fa::open_existing(i.req.desired_access, &obj)?;
    if wants(i, opt::DELETE_ON_CLOSE) {
        return Err(NtStatus::ACCESS_DENIED.into());
    }
    Ok(Plan {
        node: root,
        granted,
        maximal: obj.maximal_access(),
        action: create_action::OPENED,
        overwrite: false,
        new_node: false,
        new_stream: false,
        delete_on_close: false,
        is_dir: i.name.stream.is_none(),
    })
}

fn plan_existing(i: &Input<'_>, parent: NodeId, node: NodeId) -> Result<Plan> {
    let meta = i.org.stat(node)?;
    let node_is_dir = meta.kind == NodeKind::Directory;
    let stream = i.name.stream.as_deref();
    let exists = match stream {
        None => true,
        Some(s) => stream_exists(i.org, node, s, i.mac)?,
    };
    let d = i.req.create_disposition;
    if exists && d == disp::CREATE {
        // A name collision wins over the file/directory type checks (smbtorture `smb2.mkdir`).
        return Err(NtStatus::OBJECT_NAME_COLLISION.into());
    }
    if i.name.data_stream_type {
        // `name::$DATA` is a data stream: never a directory (smbtorture `smb2.streams.dir`).
        if wants(i, opt::DIRECTORY_FILE) {
            return Err(NtStatus::NOT_A_DIRECTORY.into());
        }
        if node_is_dir {
            return Err(NtStatus::FILE_IS_A_DIRECTORY.into());
        }
    }
    match stream {
        None if wants(i, opt::DIRECTORY_FILE) && !node_is_dir => return Err(NtStatus::NOT_A_DIRECTORY.into()),
        None if wants(i, opt::NON_DIRECTORY_FILE) && node_is_dir => {
            return Err(NtStatus::FILE_IS_A_DIRECTORY.into());
        }
        Some(_) if wants(i, opt::DIRECTORY_FILE) => return Err(NtStatus::NOT_A_DIRECTORY.into()),
        _ => {}
    }
    if i.name.dir_stream_type && !node_is_dir {
        return Err(NtStatus::NOT_A_DIRECTORY.into());
    }
    let read_only = meta.attrs & file_attributes::READONLY != 0;
    let acl = acl::granted(i.org, i.share.org_id, node, node_is_dir, false, &i.token)?;
    let parent_acl = acl::granted(i.org, i.share.org_id, parent, true, parent == i.share.root, &i.token)?;
    let obj = ExistingObject {
        share: fa::share_mask(i.level),
        acl,
        parent_delete_child: parent_acl & fa::FILE_DELETE_CHILD != 0,
        read_only_file: read_only && !node_is_dir,
    };
    let (action, overwrite) = if exists {
        match d {
            disp::SUPERSEDE => (create_action::SUPERSEDED, true),
            disp::OVERWRITE | disp::OVERWRITE_IF => (create_action::OVERWRITTEN, true),
            _ => (create_action::OPENED, false),
        }
    } else {
        match d {
            disp::OPEN | disp::OVERWRITE => return Err(NtStatus::OBJECT_NAME_NOT_FOUND.into()),
            _ => (create_action::CREATED, false),
        }
    };
    if overwrite && node_is_dir && stream.is_none() {
        return Err(NtStatus::INVALID_PARAMETER.into());
    }
    let granted = fa::open_existing(i.req.desired_access, &obj)?;
    let modifies = overwrite || !exists;
    if modifies {
        // Overwriting or adding a stream writes the file whatever access
        // was asked for (MS-FSA 2.1.5.1.2.1).
        if obj.max_allowed() & fa::FILE_WRITE_DATA == 0 {
            return Err(NtStatus::ACCESS_DENIED.into());
        }
        if overwrite && stream.is_none() {
            sharing::check_overwrite(meta.attrs, i.req.file_attributes)?;
        }
    }
    let delete_on_close = if wants(i, opt::DELETE_ON_CLOSE) {
        let dir_empty = !node_is_dir || i.org.list_after(node, None, 1)?.is_empty();
        let target = DeleteTarget {
            granted,
            read_only: read_only && stream.is_none(),
            is_directory: node_is_dir && stream.is_none(),
            dir_empty,
            is_share_root: false,
            share_writable: fa::share_writable(i.level),
        };
        sharing::check_create_delete_on_close(&target)?
    } else {
        false
    };
    Ok(Plan {
        node,
        granted,
        maximal: obj.maximal_access(),
        action,
        overwrite,
        new_node: false,
        new_stream: !exists,
        delete_on_close,
        is_dir: node_is_dir && stream.is_none(),
    })
}

fn plan_new(i: &Input<'_>, parent: NodeId, leaf: &str) -> Result<Plan> {
    let d = i.req.create_disposition;
    if d == disp::OPEN || d == disp::OVERWRITE {
        return Err(NtStatus::OBJECT_NAME_NOT_FOUND.into());
    }
    if wants(i, opt::DIRECTORY_FILE) && (i.name.stream.is_some() || i.name.data_stream_type) {
        return Err(NtStatus::NOT_A_DIRECTORY.into());
    }
    let is_dir = wants(i, opt::DIRECTORY_FILE);
    if is_dir && d != disp::CREATE && d != disp::OPEN_IF {
        return Err(NtStatus::INVALID_PARAMETER.into());
    }
    if i.req.file_attributes & file_attributes::ENCRYPTED != 0 {
        // No EFS (FILE_SUPPORTS_ENCRYPTION is not announced): refused as a
        // standalone Windows server refuses it.
        return Err(NtStatus::ACCESS_DENIED.into());
    }
    let share = fa::share_mask(i.level);
    let parent_sd = acl::load(i.org, i.share.org_id, parent, true, parent == i.share.root)?;
    fa::check_create_in(parent_sd.max_allowed(&i.token), share, is_dir)?;
    let granted = fa::open_new(i.req.desired_access, share)?;
    let delete_on_close = if wants(i, opt::DELETE_ON_CLOSE) {
        let target = DeleteTarget {
            granted,
            read_only: !is_dir && i.req.file_attributes & file_attributes::READONLY != 0,
            is_directory: is_dir,
            dir_empty: true,
            is_share_root: false,
            share_writable: fa::share_writable(i.level),
        };
        sharing::check_create_delete_on_close(&target)?
    } else {
        false
    };
    let sd = new_descriptor(i, &parent_sd, is_dir)?;
    let kind = if is_dir { NodeKind::Directory } else { NodeKind::File };
    let now = FileTime::from_system(i.now);
    // Name tunneling: a name that just left comes back with its long form
    // and creation time (see `engine::tunnels`).
    let tunneled = i.server.files.with(|t| t.tunnel_arrive((i.share.org_id, parent), leaf, now));
    let name = tunneled.as_ref().map_or(leaf, |(n, _)| n.as_str());
    // Created by someone else in between: `StorageError::Exists`, which
    // `status` maps to OBJECT_NAME_COLLISION.
    let node = i.org.create(parent, name, kind, new_attributes(i.req.file_attributes, is_dir), now)?;
    i.org.set_security(node, &sd.encode(ALL_PARTS))?;
    if let Some((_, created)) = tunneled {
        i.org.set_meta(node, &MetaUpdate { created: Some(created), ..Default::default() })?;
    }
    crate::engine::fileops::touch_dir(i.org, parent, now)?;
    Ok(Plan {
        node,
        granted,
        maximal: share | fa::FILE_READ_ATTRIBUTES,
        action: create_action::CREATED,
        overwrite: false,
        new_node: true,
        new_stream: i.name.stream.is_some(),
        delete_on_close,
        is_dir,
    })
}

/// OWNER | GROUP | DACL security information.
pub const ALL_PARTS: u32 =
    fa::OWNER_SECURITY_INFORMATION | fa::GROUP_SECURITY_INFORMATION | fa::DACL_SECURITY_INFORMATION;

/// The new object's descriptor: the SecD create context's parts where it
/// has them (MS-SMB2 2.2.13.2.2), the inherited ones otherwise.
fn new_descriptor(i: &Input<'_>, parent: &SecurityDescriptor, is_dir: bool) -> Result<SecurityDescriptor> {
    let mut sd = acl::for_new(parent, &i.token, i.share.org_id, is_dir);
    if let Some(c) = cc::find(&i.req.contexts, cc::names::SECD) {
        let mut given = SecurityDescriptor::parse(c.data).map_err(Error::Status)?;
        acl::prepare_for_set(&mut given);
        let mut parts = 0;
        if given.owner.is_some() {
            parts |= fa::OWNER_SECURITY_INFORMATION;
        }
        if given.group.is_some() {
            parts |= fa::GROUP_SECURITY_INFORMATION;
        }
        if given.control & crate::wire::dtyp::control::DACL_PRESENT != 0 {
            parts |= fa::DACL_SECURITY_INFORMATION;
        }
        sd.apply(&given, parts, &i.token).map_err(Error::Status)?;
    }
    Ok(sd)
}
