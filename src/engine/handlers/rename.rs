//! FileRenameInformation (MS-SMB2 3.3.5.21.1, MS-FSA 2.1.5.14.11): moves
//! and renames of files and directories, and renames of named streams
//! (`:new`). The new name is relative to the share root.

use unicode_normalization::UnicodeNormalization;

use super::set_info::Env;
use crate::engine::acl;
use crate::engine::fileops;
use crate::engine::files::Table;
use crate::engine::fsa::access as fa;
use crate::engine::fsa::sharing::{FILE_SHARE_READ, FILE_SHARE_WRITE, share_conflict};
use crate::engine::fsa::{FileKey, OpenId};
use crate::engine::names;
use crate::engine::open::FileOpen;
use crate::engine::status::{Error, Result};
use crate::storage::{MetaUpdate, NodeKind, OrgStore};
use crate::types::{NodeId, OrgId};
use crate::wire::NtStatus;
use crate::wire::fscc::file_set::FileRenameInformation;

/// Renames the open's file, directory or stream.
pub fn rename(env: &Env<'_>, f: &mut FileOpen, r: FileRenameInformation) -> Result<()> {
    if r.root_directory != 0 {
        return Err(NtStatus::INVALID_PARAMETER.into());
    }
    let target: String = r.file_name.nfc().collect();
    if let Some(stream) = target.strip_prefix(':') {
        return rename_stream(env, f, stream, r.replace_if_exists);
    }
    if f.stream.is_some() {
        // A stream open can only rename the stream; Windows answers a
        // `base:stream` target with SHARING_VIOLATION (smbtorture `smb2.streams.rename2`).
        return Err(NtStatus::SHARING_VIOLATION.into());
    }
    let parsed = names::parse_target(&target).map_err(Error::Status)?;
    let (leaf, dirs) = parsed.components.split_last().ok_or(Error::Status(NtStatus::OBJECT_NAME_INVALID))?;
    if parsed.stream.is_some() {
        return Err(NtStatus::INVALID_PARAMETER.into());
    }
    let new_parent = fileops::walk(&f.org, f.root, dirs)?;
    hold_for_handle_leases(env, f)?;
    let me = f.org.stat(f.node)?;
    let old_parent = me.parent.ok_or(Error::Status(NtStatus::ACCESS_DENIED))?;
    let existing = f.org.lookup(new_parent, leaf)?.filter(|&n| n != f.node);
    // Adding an entry to the target directory (MS-FSA 2.1.5.14.11).
    let is_dir = me.kind == NodeKind::Directory;
    let parent_acl = acl::granted(&f.org, f.org_id, new_parent, true, new_parent == f.root, &env.token)?;
    fa::check_rename_into(parent_acl, fa::share_mask(f.level), is_dir)?;
    if let Some(other) = existing {
        if !r.replace_if_exists {
            return Err(NtStatus::OBJECT_NAME_COLLISION.into());
        }
        if f.org.stat(other)?.kind == NodeKind::Directory {
            // Replacing a directory is never allowed.
            return Err(NtStatus::ACCESS_DENIED.into());
        }
    }
    if is_dir && !env.aapl.active && open_below(&env.server.files, &f.org, f.org_id, f.node) {
        // Windows refuses to move a directory with open files below it; a
        // Mac (AAPL negotiated) may, as on a macOS server (smbtorture
        // `vfs.fruit.rename_dir_openfile`): the opens follow the node.
        return Err(NtStatus::ACCESS_DENIED.into());
    }
    env.server.files.with(|t| check_opens(t, f, &[old_parent, new_parent], existing))?;
    f.org.rename(f.node, new_parent, leaf, r.replace_if_exists)?;
    // Name tunneling (`engine::tunnels`): the old name is remembered in its
    // directory; a name that just left the target directory lends this
    // file its creation time (save-to-temp-then-rename keeps it).
    let tunneled = env.server.files.with(|t| {
        t.tunnel_leave((f.org_id, old_parent), &me.name, me.created, env.now);
        t.tunnel_arrive((f.org_id, new_parent), leaf, env.now)
    });
    let created = tunneled.map(|(_, c)| c).filter(|_| existing.is_none());
    f.org.set_meta(f.node, &MetaUpdate { changed: Some(env.now), created, ..Default::default() })?;
    crate::engine::fileops::touch_dir(&f.org, old_parent, env.now)?;
    if new_parent != old_parent {
        crate::engine::fileops::touch_dir(&f.org, new_parent, env.now)?;
    }
    let new_path = parsed.components.join("\\");
    crate::engine::notify::renamed(env.server, f, &f.path, &new_path);
    f.path = new_path;
    Ok(())
}

/// Other clients' handle leases on the file are broken before it moves
/// (MS-FSA 2.1.4.12, Samba `delay_rename_for_lease_break()`); the rename
/// waits until they let go of handle caching (acknowledgment, close or
/// timeout). Signals the wait through `env.wait` and STATUS_PENDING.
fn hold_for_handle_leases(env: &Env<'_>, f: &FileOpen) -> Result<()> {
    use crate::engine::fsa::lease::{CacheGrant, Caching, LeaseId};
    let now = env.server.files.instant(env.now.to_system());
    let me = env.open_id;
    let wait = env.server.files.with(|t| {
        let Some(s) = t.get(&f.key) else { return false };
        let own = match s.cache.grant_of(me) {
            CacheGrant::Lease(l) => Some(LeaseId { client: env.client, key: l.key }),
            _ => None,
        };
        let others: Vec<OpenId> = s.shares.entries().iter().map(|e| e.open).filter(|&o| o != me).collect();
        let holds_h = |t: &Table| {
            let Some(s) = t.get(&f.key) else { return false };
            others.iter().any(|&o| match s.cache.grant_of(o) {
                CacheGrant::Lease(l) => l.state.contains(Caching::H) && Some(l.key) != own.map(|i| i.key),
                _ => false,
            })
        };
        if !holds_h(t) {
            return false;
        }
        let (breaks, _) = t.stream(&f.key).cache.break_handle_caching(own, now);
        t.send_breaks(&f.key, breaks);
        holds_h(t)
    });
    if wait {
        *env.wait.borrow_mut() = Some(f.key.clone());
        return Err(NtStatus::PENDING.into());
    }
    Ok(())
}

/// What other opens forbid a rename (Windows as smbtorture `smb2.rename`
/// and `smb2.notify.mask-change` see it): an open of the source's or
/// target's directory that holds DELETE access or does not share write
/// (the rename opens the directory to add an entry, sharing read and
/// write); an open target that would be replaced.
fn check_opens(t: &Table, f: &FileOpen, dirs: &[NodeId], target: Option<NodeId>) -> Result<()> {
    for &d in dirs {
        let key = FileKey::new(f.org_id, d, "");
        if let Some(s) = t.get(&key)
            && s.shares
                .entries()
                .iter()
                .any(|e| share_conflict(e.access, e.share, fa::FILE_WRITE_DATA, FILE_SHARE_READ | FILE_SHARE_WRITE))
        {
            return Err(NtStatus::SHARING_VIOLATION.into());
        }
    }
    if let Some(other) = target
        && t.node_open(f.org_id, other)
    {
        return Err(NtStatus::ACCESS_DENIED.into());
    }
    Ok(())
}

/// True if any node below `dir` is open. The open nodes are collected under
/// the table lock; their ancestry is read from storage outside it.
fn open_below(files: &crate::engine::files::Files, org: &OrgStore, org_id: OrgId, dir: NodeId) -> bool {
    let open = files.with(|t| t.open_nodes(org_id));
    open.into_iter().filter(|&n| n != dir).any(|n| is_below(org, n, dir))
}

fn is_below(org: &OrgStore, mut node: NodeId, dir: NodeId) -> bool {
    for _ in 0..4096 {
        match org.stat(node).ok().and_then(|m| m.parent) {
            Some(p) if p == dir => return true,
            Some(p) => node = p,
            None => return false,
        }
    }
    false
}

/// `:new[:$DATA]` renames the open's named stream on its file (MS-FSCC
/// 2.4.42). The stream's entry in the open table moves with it; other
/// opens of it or of the target refuse the rename.
fn rename_stream(env: &Env<'_>, f: &mut FileOpen, spec: &str, replace: bool) -> Result<()> {
    let probe = names::parse(&format!("x:{spec}")).map_err(Error::Status)?;
    let to = probe.stream.unwrap_or_default();
    let Some(from) = f.stream.clone() else {
        // Turning the default stream into a named one is not supported.
        return Err(NtStatus::INVALID_PARAMETER.into());
    };
    if to.is_empty() {
        return Err(NtStatus::INVALID_PARAMETER.into());
    }
    let new_key = FileKey::new(f.org_id, f.node, &to);
    if new_key == f.key {
        return Ok(());
    }
    let old_key = f.key.clone();
    let me = OpenId(env.open_id.0);
    env.server.files.with(|t| -> Result<()> {
        let others = t.get(&old_key).is_some_and(|s| s.shares.entries().iter().any(|e| e.open != me));
        if others || t.get(&new_key).is_some_and(|s| !s.shares.is_empty()) {
            return Err(NtStatus::SHARING_VIOLATION.into());
        }
        f.org.rename_stream(f.node, &names::stream_to_store(&from), &names::stream_to_store(&to), replace)?;
        t.move_stream(&old_key, &new_key);
        Ok(())
    })?;
    f.stream = Some(to);
    f.key = new_key;
    Ok(())
}
