//! The operations on organization data that the running server performs
//! for the CLI (over the control socket, since the server owns the live
//! data) or that the CLI performs itself when the server is stopped:
//! restoring files from a fetched generation and exporting an organization.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::snapshot::{Counts, Export, resolve, restore_tree, tree_size};
use crate::storage::{NodeKind, Store};
use crate::types::{FileTime, NodeId, OrgId};

use super::{Meter, Remote};

/// MS-FSCC 2.6 FILE_ATTRIBUTE_DIRECTORY.
const FILE_ATTRIBUTE_DIRECTORY: u32 = 0x10;

/// `backup restore-files`: one file or folder of a generation.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RestoreFiles {
    /// Organization id.
    pub org: u64,
    /// Generation name.
    pub generation: String,
    /// The verified generation in the local cache (`Remote::fetch`).
    pub cache: PathBuf,
    /// Share name.
    pub share: String,
    /// The share's root in the generation.
    pub gen_root: u64,
    /// The share's root now.
    pub live_root: u64,
    /// Path inside the share ('/'-separated, "" for the whole share).
    pub path: String,
    /// Where to put it inside the share (must not exist); default
    /// `復元 <JST date of the generation>/<path>`.
    pub to: Option<String>,
}

/// What a restore did.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Restored {
    /// Where it went, `share/path`.
    pub to: String,
    /// Files, folders, bytes.
    pub files: u64,
    /// Folders.
    pub folders: u64,
    /// Bytes (named streams included).
    pub bytes: u64,
    /// Named streams.
    #[serde(default)]
    pub streams: u64,
}

/// Folder name restores go to by default: `復元 2026-12-05` (the
/// generation's JST date; "restore" in Japanese, what staff look for).
pub fn restore_folder(generation: &str) -> String {
    let date = super::super::db::parse_name(generation)
        .map(|t| crate::types::jst::at(t).format("%Y-%m-%d").to_string())
        .unwrap_or_else(|| generation.to_string());
    format!("復元 {date}")
}

fn split(path: &str) -> Vec<&str> {
    path.split(['/', '\\']).filter(|p| !p.is_empty()).collect()
}

/// Finds or creates the folders of `parts` under `root` in the live store.
fn ensure_dirs(dst: &crate::storage::OrgStore, root: NodeId, parts: &[&str]) -> Result<NodeId, String> {
    let now = FileTime::from_system(std::time::SystemTime::now());
    let mut n = root;
    for p in parts {
        n = match dst.lookup(n, p).map_err(|e| format!("{p}: {e}"))? {
            Some(c) => match dst.stat(c).map_err(|e| e.to_string())?.kind {
                NodeKind::Directory => c,
                NodeKind::File => return Err(format!("{p} exists and is a file")),
            },
            None => dst
                .create(n, p, NodeKind::Directory, FILE_ATTRIBUTE_DIRECTORY, now)
                .map_err(|e| format!("cannot create {p}: {e}"))?,
        };
    }
    Ok(n)
}

/// Everything `backup restore-files` does before copying, for the CLI and
/// the console alike: the generation (`latest` or a name) read and its
/// manifest verified, the share found in it and today, and the whole
/// generation fetched into the cache and verified object by object.
/// `path` is `share/dir/file` ('/' or '\\'). Nothing has changed on `Err`.
#[allow(clippy::too_many_arguments)]
pub fn prepare(
    remote: &Remote,
    accounts: &crate::accounts::Accounts,
    keys: &dyn crate::keys::OrgKeys,
    org: OrgId,
    generation: &str,
    path: &str,
    to: Option<String>,
    meter: &Meter,
) -> Result<RestoreFiles, String> {
    let ob = accounts
        .org_backup(org)
        .map_err(|e| e.to_string())?
        .ok_or("the organization has no backup target (smbvault backup org-target)")?;
    let m = remote.manifest(org, &ob, generation)?;
    let (share, rest) = path.trim_start_matches(['/', '\\']).split_once(['/', '\\']).unwrap_or((path, ""));
    let share = share.trim_start_matches(['/', '\\']);
    let gen_share = m
        .shares
        .iter()
        .find(|s| s.name.eq_ignore_ascii_case(share))
        .ok_or_else(|| format!("generation {} has no share {share:?}", m.generation))?;
    let live = accounts
        .list_shares(Some(org))
        .map_err(|e| e.to_string())?
        .into_iter()
        .find(|s| s.name.eq_ignore_ascii_case(share))
        .ok_or_else(|| format!("share {share:?} does not exist any more: create it, then restore"))?;
    let cache =
        remote.fetch(org, &ob, &m, keys, meter).map_err(|e| format!("restore refused, nothing changed: {e}"))?;
    Ok(RestoreFiles {
        org: org.0,
        generation: m.generation.clone(),
        cache,
        share: live.name.clone(),
        gen_root: gen_share.root,
        live_root: live.root.0,
        path: rest.replace('\\', "/"),
        to,
    })
}

/// Copies the requested file or folder into the live share under a name
/// that does not exist yet. Never overwrites, never touches other files.
pub fn restore_files(store: &Store, r: &RestoreFiles, meter: &Meter) -> Result<Restored, String> {
    let org = OrgId(r.org);
    let src = store.open_copy(org, &r.cache).map_err(|e| format!("cannot open the generation: {e}"))?;
    let src_node = resolve(&src, NodeId(r.gen_root), &r.path)?;
    meter.total.store(tree_size(&src, src_node), std::sync::atomic::Ordering::Relaxed);
    let dst = store.org(org).map_err(|e| format!("cannot open the organization: {e}"))?;
    let parts = split(&r.path);
    let base = parts.last().copied().unwrap_or(r.share.as_str()).to_string();
    let (parent_parts, mut name, exact): (Vec<String>, String, bool) = match &r.to {
        Some(to) => {
            let t = split(to);
            let (last, dirs) = t.split_last().ok_or("--to names no path")?;
            (dirs.iter().map(|s| s.to_string()).collect(), last.to_string(), true)
        }
        None => {
            let mut dirs = vec![restore_folder(&r.generation)];
            dirs.extend(parts.iter().take(parts.len().saturating_sub(1)).map(|s| s.to_string()));
            (dirs, base.clone(), false)
        }
    };
    let dir_refs: Vec<&str> = parent_parts.iter().map(String::as_str).collect();
    let parent = ensure_dirs(&dst, NodeId(r.live_root), &dir_refs)?;
    let mut n = 1;
    while dst.lookup(parent, &name).map_err(|e| e.to_string())?.is_some() {
        if exact {
            let to = r.to.as_deref().unwrap_or_default().trim_matches('/');
            return Err(format!("{}/{to} exists: a restore never overwrites; choose another --to", r.share));
        }
        n += 1;
        name = match base.rsplit_once('.') {
            Some((stem, ext)) if !stem.is_empty() => format!("{stem} ({n}).{ext}"),
            _ => format!("{base} ({n})"),
        };
    }
    let c = restore_tree(&src, src_node, &dst, parent, &name, meter)?;
    dst.flush().map_err(|e| format!("flush: {e}"))?;
    let mut to = vec![r.share.clone()];
    to.extend(parent_parts);
    to.push(name);
    Ok(Restored { to: to.join("/"), files: c.files, folders: c.folders, bytes: c.bytes, streams: c.streams })
}

/// `org export`: every share of the organization (`(name, root)`) as
/// `<to>/<share>/…`, decrypted, with names and modification times.
pub fn export(store: &Store, org: OrgId, shares: &[(String, u64)], to: &Path, meter: &Meter) -> Result<Counts, String> {
    let s = store.org(org).map_err(|e| format!("cannot open the organization: {e}"))?;
    let total = shares.iter().map(|(_, root)| tree_size(&s, NodeId(*root))).sum();
    meter.total.store(total, std::sync::atomic::Ordering::Relaxed);
    let mut out = Export::create(to)?;
    let mut c = Counts::default();
    for (name, root) in shares {
        out.tree(&s, NodeId(*root), name, &mut c, meter)?;
    }
    out.finish()?;
    Ok(c)
}
