//! Directory tree operations of `OrgStore`: create, lookup, stat, rename,
//! remove, listing and paths.
//!
//! A directory entry is the node row itself: `(parent, name_key)` is
//! unique, where `name_key` is a keyed hash of the case-folded NFC name
//! (docs/storage-format.md §6). The display name is sealed in `name_ct`.
//! Listings come back in `name_key` order: stable for as long as an entry
//! exists, unrelated to names, and a cursor is just the last key returned.

use rusqlite::{OptionalExtension, Row, params};

use super::db::Db;
use super::error::{Result, StorageError, is_unique_violation};
use super::keyring::{NAME_KEY_LEN, OrgKeyring, Scope};
use super::names::normalize;
use super::org::Deltas;
use super::rowmac::{checked_node, seal_meta, seal_node};
use super::{Cursor, DirEntry, Meta, MetaUpdate, NodeKind, OrgStore};
use crate::types::fold_name;
use crate::types::{FileTime, NodeId};

/// Scalar subqueries, not a JOIN: the bundled SQLite (STAT4) re-prepares
/// a JOIN with bound parameters on every execution.
const NODE_COLS: &str = "SELECT n.id, n.parent, n.kind, n.name_key, n.name_ct, n.attrs, n.created, \
     n.accessed, n.written, n.changed, \
     COALESCE((SELECT size FROM contents WHERE id = n.content), 0), \
     COALESCE((SELECT alloc FROM contents WHERE id = n.content), 0), n.content, n.mac FROM nodes n";

/// A node row before its name is decrypted.
struct NodeRow {
    id: i64,
    parent: Option<i64>,
    kind: i64,
    name_key: Option<Vec<u8>>,
    name_ct: Option<Vec<u8>>,
    attrs: i64,
    times: [i64; 4],
    size: i64,
    alloc: i64,
    content: Option<i64>,
    mac: Option<Vec<u8>>,
}

fn node_row(r: &Row<'_>) -> rusqlite::Result<NodeRow> {
    Ok(NodeRow {
        id: r.get(0)?,
        parent: r.get(1)?,
        kind: r.get(2)?,
        name_key: r.get(3)?,
        name_ct: r.get(4)?,
        attrs: r.get(5)?,
        times: [r.get(6)?, r.get(7)?, r.get(8)?, r.get(9)?],
        size: r.get(10)?,
        alloc: r.get(11)?,
        content: r.get(12)?,
        mac: r.get(13)?,
    })
}

pub(crate) fn kind_from(v: i64) -> Result<NodeKind> {
    match v {
        1 => Ok(NodeKind::File),
        2 => Ok(NodeKind::Directory),
        _ => Err(StorageError::Integrity),
    }
}

fn kind_code(k: NodeKind) -> i64 {
    match k {
        NodeKind::File => 1,
        NodeKind::Directory => 2,
    }
}

/// (parent, kind) of a node, or NotFound; its row MAC checked.
pub(crate) fn node_info(db: &Db, keys: &OrgKeyring, id: i64) -> Result<(Option<i64>, NodeKind)> {
    let (parent, kind, _) = checked_node(db, keys, id)?;
    Ok((parent, kind_from(kind)?))
}

fn check_dir(db: &Db, keys: &OrgKeyring, id: i64) -> Result<()> {
    match node_info(db, keys, id)?.1 {
        NodeKind::Directory => Ok(()),
        NodeKind::File => Err(StorageError::NotADirectory),
    }
}

fn has_children(db: &Db, id: i64) -> Result<bool> {
    Ok(db
        .conn
        .prepare_cached("SELECT 1 FROM nodes WHERE parent=?1 LIMIT 1")?
        .query_row([id], |_| Ok(()))
        .optional()?
        .is_some())
}

/// Deletes contents (chunk rows, key rows) and records what that frees.
/// The ids come from MAC-checked rows (`purge_node`, the streams code).
pub(crate) fn purge_contents(db: &Db, ids: &[i64], d: &mut Deltas) -> Result<()> {
    for &id in ids {
        // Summed here, not with GROUP BY: the bundled SQLite (STAT4)
        // re-prepared the grouped query on every execution, 10 % of the
        // server's CPU in the delete benchmark.
        let mut q = db.conn.prepare_cached("SELECT seg, plen FROM chunks WHERE content=?1")?;
        let mut rows = q.query([id])?;
        let first = d.live.len();
        while let Some(r) = rows.next()? {
            let (seg, plen): (i64, i64) = (r.get(0)?, r.get(1)?);
            let freed = -(plen + super::record::OVERHEAD as i64);
            match d.live[first..].iter_mut().find(|(s, _)| *s == seg) {
                Some((_, n)) => *n += freed,
                None => d.live.push((seg, freed)),
            }
        }
        let alloc: Option<i64> = db
            .conn
            .prepare_cached("SELECT alloc FROM contents WHERE id=?1")?
            .query_row([id], |r| r.get(0))
            .optional()?;
        d.usage -= alloc.unwrap_or(0);
        db.conn.prepare_cached("DELETE FROM chunks WHERE content=?1")?.execute([id])?;
        db.conn.prepare_cached("DELETE FROM contents WHERE id=?1")?.execute([id])?;
        d.deleted.push(id);
    }
    Ok(())
}

/// Deletes a node with its streams, content, security descriptor and EAs.
/// A tampered row pointing at another file's content fails here rather
/// than deleting that content.
fn purge_node(db: &Db, keys: &OrgKeyring, id: i64, d: &mut Deltas) -> Result<()> {
    let mut ids: Vec<i64> = Vec::new();
    let (_, _, main) = checked_node(db, keys, id)?;
    ids.extend(main);
    let mut q = db.conn.prepare_cached("SELECT name_key, content, mac FROM streams WHERE node=?1")?;
    type Row = (Vec<u8>, i64, Option<Vec<u8>>);
    for row in q.query_map([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))? {
        let (key, content, mac): Row = row?;
        keys.check_row("streams", id, mac.as_deref(), &keys.stream_mac(id, &key, content))?;
        ids.push(content);
    }
    purge_contents(db, &ids, d)?;
    // The node's EAs count in the usage (docs/storage-format.md §quota).
    let ea_bytes: i64 = db
        .conn
        .prepare_cached("SELECT COALESCE(length(eas), 0) FROM nodes WHERE id=?1")?
        .query_row([id], |r| r.get(0))?;
    d.usage -= ea_bytes;
    db.conn.prepare_cached("DELETE FROM streams WHERE node=?1")?.execute([id])?;
    db.conn.prepare_cached("DELETE FROM nodes WHERE id=?1")?.execute([id])?;
    Ok(())
}

impl OrgStore {
    fn entry_key(&self, parent: NodeId, name: &str) -> Result<(String, [u8; NAME_KEY_LEN])> {
        let nfc = normalize(name)?;
        let key = self.core.keys.name_key(Scope::Entry, parent.0, &fold_name(&nfc));
        Ok((nfc, key))
    }

    fn to_meta(&self, r: NodeRow) -> Result<Meta> {
        let want = self.core.keys.node_mac(r.id, r.parent, r.kind, r.content);
        self.core.keys.check_row("nodes", r.id, r.mac.as_deref(), &want)?;
        let name = match (&r.name_key, &r.name_ct) {
            (Some(k), Some(ct)) => self.core.keys.open_name(Scope::Entry, r.id as u64, k, ct)?,
            (None, None) if r.parent.is_none() => String::new(),
            _ => return Err(StorageError::Integrity),
        };
        let (size, alloc) =
            r.content.and_then(|c| self.core.unsealed_sizes(c)).unwrap_or((r.size as u64, r.alloc as u64));
        Ok(Meta {
            id: NodeId(r.id as u64),
            kind: kind_from(r.kind)?,
            parent: r.parent.map(|p| NodeId(p as u64)),
            name,
            size,
            alloc_size: alloc,
            attrs: r.attrs as u32,
            created: FileTime(r.times[0] as u64),
            accessed: FileTime(r.times[1] as u64),
            written: FileTime(r.times[2] as u64),
            changed: FileTime(r.times[3] as u64),
            nlink: 1,
        })
    }

    /// Creates the root directory of a new share.
    pub fn create_root(&self, now: FileTime) -> Result<NodeId> {
        self.core.mutate(|db| {
            let id = db.alloc_node_id();
            db.conn
                .prepare_cached(
                    "INSERT INTO nodes(id, parent, kind, attrs, created, accessed, written, changed) \
                     VALUES(?1, NULL, 2, ?2, ?3, ?3, ?3, ?3)",
                )?
                .execute(params![id, FILE_ATTRIBUTE_DIRECTORY, now.0 as i64])?;
            seal_node(db, &self.core.keys, id)?;
            seal_meta(db, &self.core.keys, id)?;
            Ok((NodeId(id as u64), Deltas::default()))
        })
    }

    /// Finds `name` in directory `parent` (case-insensitive, NFC).
    pub fn lookup(&self, parent: NodeId, name: &str) -> Result<Option<NodeId>> {
        let (_, key) = self.entry_key(parent, name)?;
        self.core.read(|db| {
            check_dir(db, &self.core.keys, parent.0 as i64)?;
            let id: Option<i64> = db
                .conn
                .prepare_cached("SELECT id FROM nodes WHERE parent=?1 AND name_key=?2")?
                .query_row(params![parent.0 as i64, key.as_slice()], |r| r.get(0))
                .optional()?;
            Ok(id.map(|i| NodeId(i as u64)))
        })
    }

    /// Creates a file or directory. `Err(Exists)` if the name exists in
    /// any case or normalization form. A file gets its main data stream
    /// (own random key, empty) at once.
    pub fn create(&self, parent: NodeId, name: &str, kind: NodeKind, attrs: u32, now: FileTime) -> Result<NodeId> {
        let (nfc, key) = self.entry_key(parent, name)?;
        self.core.mutate(|db| {
            check_dir(db, &self.core.keys, parent.0 as i64)?;
            let id = db.alloc_node_id();
            let content = match kind {
                NodeKind::File => Some(self.insert_content(db)?),
                NodeKind::Directory => None,
            };
            let ct = self.core.keys.seal_name(Scope::Entry, id as u64, &key, &nfc);
            let r = db
                .conn
                .prepare_cached(
                    "INSERT INTO nodes(id, parent, kind, name_key, name_ct, attrs, created, accessed, written, \
                     changed, content) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7, ?7, ?7, ?8)",
                )?
                .execute(params![
                    id,
                    parent.0 as i64,
                    kind_code(kind),
                    key.as_slice(),
                    ct,
                    attrs,
                    now.0 as i64,
                    content
                ]);
            match r {
                Ok(_) => {
                    seal_node(db, &self.core.keys, id)?;
                    seal_meta(db, &self.core.keys, id)?;
                    Ok((NodeId(id as u64), Deltas::default()))
                }
                Err(e) if is_unique_violation(&e) => Err(StorageError::Exists),
                Err(e) => Err(e.into()),
            }
        })
    }

    /// The metadata of `node`.
    pub fn stat(&self, node: NodeId) -> Result<Meta> {
        let row = self.core.read(|db| {
            let sql = format!("{NODE_COLS} WHERE n.id=?1");
            Ok(db.conn.prepare_cached(&sql)?.query_row([node.0 as i64], node_row).optional()?)
        })?;
        self.to_meta(row.ok_or(StorageError::NotFound)?)
    }

    /// Sets attributes and times (the SMB engine owns the clock).
    pub fn set_meta(&self, node: NodeId, u: &MetaUpdate) -> Result<()> {
        let t = |v: Option<FileTime>| v.map(|t| t.0 as i64);
        self.core.mutate(|db| {
            let n = db
                .conn
                .prepare_cached(
                    "UPDATE nodes SET attrs=COALESCE(?2, attrs), created=COALESCE(?3, created), \
                     accessed=COALESCE(?4, accessed), written=COALESCE(?5, written), \
                     changed=COALESCE(?6, changed) WHERE id=?1",
                )?
                .execute(params![node.0 as i64, u.attrs, t(u.created), t(u.accessed), t(u.written), t(u.changed)])?;
            if n == 0 {
                return Err(StorageError::NotFound);
            }
            Ok(((), Deltas::default()))
        })
    }

    /// Renames and/or moves `node` atomically. A rename onto the same entry
    /// (only the case or normalization differs) just updates the display
    /// name. With `replace`, an existing target is deleted first (a
    /// non-empty directory target fails `NotEmpty`).
    pub fn rename(&self, node: NodeId, new_parent: NodeId, new_name: &str, replace: bool) -> Result<()> {
        let (nfc, key) = self.entry_key(new_parent, new_name)?;
        let (id, np) = (node.0 as i64, new_parent.0 as i64);
        self.core.mutate(|db| {
            let (parent, kind) = node_info(db, &self.core.keys, id)?;
            if parent.is_none() {
                return Err(StorageError::InvalidArgument); // a share root
            }
            check_dir(db, &self.core.keys, np)?;
            if kind == NodeKind::Directory {
                self.check_not_inside(db, id, np)?;
            }
            let mut d = Deltas::default();
            let existing: Option<(i64, i64)> = db
                .conn
                .prepare_cached("SELECT id, kind FROM nodes WHERE parent=?1 AND name_key=?2")?
                .query_row(params![np, key.as_slice()], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?;
            if let Some((other, okind)) = existing.filter(|(o, _)| *o != id) {
                if !replace {
                    return Err(StorageError::Exists);
                }
                if kind_from(okind)? == NodeKind::Directory && has_children(db, other)? {
                    return Err(StorageError::NotEmpty);
                }
                purge_node(db, &self.core.keys, other, &mut d)?;
            }
            let ct = self.core.keys.seal_name(Scope::Entry, id as u64, &key, &nfc);
            db.conn
                .prepare_cached("UPDATE nodes SET parent=?2, name_key=?3, name_ct=?4 WHERE id=?1")?
                .execute(params![id, np, key.as_slice(), ct])?;
            seal_node(db, &self.core.keys, id)?;
            Ok(((), d))
        })
    }

    /// Moving a directory below itself would detach a cycle from the tree.
    fn check_not_inside(&self, db: &Db, dir: i64, target: i64) -> Result<()> {
        let mut cur = Some(target);
        let mut depth = 0;
        while let Some(c) = cur {
            if c == dir {
                return Err(StorageError::InvalidArgument);
            }
            depth += 1;
            if depth > MAX_DEPTH {
                return Err(StorageError::Integrity);
            }
            cur = node_info(db, &self.core.keys, c)?.0;
        }
        Ok(())
    }

    /// Deletes a file or an empty directory with its streams, security
    /// descriptor, EAs and content. Open `Content`s of it fail afterwards.
    pub fn remove(&self, node: NodeId) -> Result<()> {
        let id = node.0 as i64;
        self.core.mutate(|db| {
            let (_, kind) = node_info(db, &self.core.keys, id)?;
            if kind == NodeKind::Directory && has_children(db, id)? {
                return Err(StorageError::NotEmpty);
            }
            let mut d = Deltas::default();
            purge_node(db, &self.core.keys, id, &mut d)?;
            Ok(((), d))
        })
    }

    /// All entries of `dir`, in the stable listing order (see `list_after`).
    pub fn list(&self, dir: NodeId) -> Result<Vec<DirEntry>> {
        self.list_after(dir, None, usize::MAX)
    }

    /// Up to `limit` entries of `dir` following `after` (from the start if
    /// `None`). The order is by keyed name hash: stable while entries exist,
    /// and resuming after an entry's cursor never repeats or skips entries
    /// that existed throughout. One query; names are decrypted in parallel.
    pub fn list_after(&self, dir: NodeId, after: Option<&Cursor>, limit: usize) -> Result<Vec<DirEntry>> {
        let after_key: Vec<u8> = after.map(|c| c.0.to_vec()).unwrap_or_default();
        let limit = i64::try_from(limit).unwrap_or(-1);
        let rows = self.core.read(|db| {
            check_dir(db, &self.core.keys, dir.0 as i64)?;
            let sql = format!("{NODE_COLS} WHERE n.parent=?1 AND n.name_key > ?2 ORDER BY n.name_key LIMIT ?3");
            let mut st = db.conn.prepare_cached(&sql)?;
            let rows = st.query_map(params![dir.0 as i64, after_key, limit], node_row)?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })?;
        let entries = super::par::map(rows, |r| {
            let key: [u8; NAME_KEY_LEN] =
                r.name_key.as_deref().and_then(|k| k.try_into().ok()).ok_or(StorageError::Integrity)?;
            let meta = self.to_meta(r)?;
            Ok(DirEntry { name: meta.name.clone(), meta, cursor: Cursor(key) })
        });
        // A row that fails its MAC (logged by the check) is left out: the
        // directory's other entries stay listable, and opening the bad one
        // by name fails on its own.
        entries.into_iter().filter(|e| !matches!(e, Err(StorageError::Integrity))).collect()
    }

    /// `\dir\file` relative to the node's share root (`\` for the root),
    /// for audit records and change notification.
    pub fn path_of(&self, node: NodeId) -> Result<String> {
        let parts = self.core.read(|db| {
            let mut parts = Vec::new();
            let mut cur = node.0 as i64;
            loop {
                let (parent, _, _) = checked_node(db, &self.core.keys, cur)?;
                let (key, ct): (Option<Vec<u8>>, Option<Vec<u8>>) = db
                    .conn
                    .prepare_cached("SELECT name_key, name_ct FROM nodes WHERE id=?1")?
                    .query_row([cur], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()?
                    .ok_or(StorageError::NotFound)?;
                let Some(p) = parent else { break };
                let (Some(k), Some(c)) = (key, ct) else {
                    return Err(StorageError::Integrity);
                };
                parts.push(self.core.keys.open_name(Scope::Entry, cur as u64, &k, &c)?);
                if parts.len() > MAX_DEPTH {
                    return Err(StorageError::Integrity);
                }
                cur = p;
            }
            Ok(parts)
        })?;
        let mut out = String::new();
        for p in parts.iter().rev() {
            out.push('\\');
            out.push_str(p);
        }
        if out.is_empty() {
            out.push('\\');
        }
        Ok(out)
    }
}

/// MS-FSCC 2.6 FILE_ATTRIBUTE_DIRECTORY, given to share roots.
const FILE_ATTRIBUTE_DIRECTORY: u32 = 0x10;
/// Deeper trees than this mean a corrupt parent chain.
const MAX_DEPTH: usize = 4096;
