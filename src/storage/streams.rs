//! Per-node data of `OrgStore`: content streams (main and named, each with
//! its own random file key), security descriptors, extended attributes and
//! usage.

use std::sync::{Arc, Weak};

use rusqlite::{OptionalExtension, params};

use super::content::Content;
use super::db::Db;
use super::error::{Result, StorageError, is_unique_violation};
use super::keyring::{NAME_KEY_LEN, OrgKeyring, Scope};
use super::names::normalize;
use super::namespace::{kind_from, node_info, purge_contents};
use super::org::Deltas;
use super::rowmac::{checked_node, seal_meta, seal_node};
use super::{NodeKind, OrgStore, StreamInfo};
use crate::types::NodeId;
use crate::types::fold_name;

impl OrgStore {
    fn stream_key(&self, node: NodeId, name: &str) -> Result<(String, [u8; NAME_KEY_LEN])> {
        let nfc = normalize(name)?;
        let key = self.core.keys.name_key(Scope::Stream, node.0, &fold_name(&nfc));
        Ok((nfc, key))
    }

    /// Opens a content stream: `None` is a file's main data (always
    /// exists; directories have none), `Some(name)` a named stream
    /// (case-insensitive; created if missing and `create`). Every opener of
    /// a stream shares one `Content`.
    pub fn open_content(&self, node: NodeId, stream: Option<&str>, create: bool) -> Result<Arc<Content>> {
        let Some(stream) = stream else {
            return self.open_main(node);
        };
        let skey = self.stream_key(node, stream)?;
        let keys = &self.core.keys;
        let found = self.core.read(|db| stream_of(db, keys, node, &skey.1))?;
        let id = match found {
            Some(id) => id,
            None if !create => return Err(StorageError::NotFound),
            None => self.core.mutate(|db| {
                // Re-check: another opener may have created it meanwhile.
                if let Some(id) = stream_of(db, keys, node, &skey.1)? {
                    return Ok((id, Deltas::default()));
                }
                let id = self.insert_content(db)?;
                let ct = keys.seal_name(Scope::Stream, node.0, &skey.1, &skey.0);
                let mac = keys.stream_mac(node.0 as i64, &skey.1, id);
                db.conn
                    .prepare_cached(
                        "INSERT INTO streams(node, name_key, name_ct, content, mac) VALUES(?1, ?2, ?3, ?4, ?5)",
                    )?
                    .execute(params![node.0 as i64, skey.1.as_slice(), ct, id, mac.as_slice()])?;
                Ok((id, Deltas::default()))
            })?,
        };
        self.content_handle(id)
    }

    /// The main data stream.
    fn open_main(&self, node: NodeId) -> Result<Arc<Content>> {
        let (_, kind, content) = self.core.read(|db| checked_node(db, &self.core.keys, node.0 as i64))?;
        if kind_from(kind)? == NodeKind::Directory {
            return Err(StorageError::IsADirectory);
        }
        if let Some(id) = content {
            return self.content_handle(id);
        }
        // A file without a main stream row (never the case for files made
        // by `create`): give it one.
        let id = self.core.mutate(|db| {
            let (_, _, existing) = checked_node(db, &self.core.keys, node.0 as i64)?;
            if let Some(id) = existing {
                return Ok((id, Deltas::default()));
            }
            let id = self.insert_content(db)?;
            db.conn.prepare_cached("UPDATE nodes SET content=?2 WHERE id=?1")?.execute(params![node.0 as i64, id])?;
            seal_node(db, &self.core.keys, node.0 as i64)?;
            Ok((id, Deltas::default()))
        })?;
        self.content_handle(id)
    }

    /// Inserts an empty content row with a fresh random file key.
    pub(crate) fn insert_content(&self, db: &mut Db) -> Result<i64> {
        let id = db.alloc_content_id();
        let wrapped = self.core.keys.new_wrapped_content_key(id as u64);
        let mac = self.core.keys.content_mac(id, 0, 0);
        db.conn
            .prepare_cached("INSERT INTO contents(id, wrapped_key, size, alloc, mac) VALUES(?1, ?2, 0, 0, ?3)")?
            .execute(params![id, wrapped, mac.as_slice()])?;
        Ok(id)
    }

    /// The shared handle of content `id`, loading it if nobody has it open.
    fn content_handle(&self, id: i64) -> Result<Arc<Content>> {
        if let Some(c) = self.core.open.lock().get(&id).and_then(Weak::upgrade) {
            return Ok(c);
        }
        let (wrapped, size, alloc, mac): (Vec<u8>, i64, i64, Option<Vec<u8>>) = self.core.read(|db| {
            db.conn
                .prepare_cached("SELECT wrapped_key, size, alloc, mac FROM contents WHERE id=?1")?
                .query_row([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
                .optional()?
                .ok_or(StorageError::NotFound)
        })?;
        let keys = &self.core.keys;
        keys.check_row("contents", id, mac.as_deref(), &keys.content_mac(id, size, alloc))?;
        let keys = self.core.keys.content_keys(id as u64, &wrapped)?;
        let core = self.core.clone();
        let fresh = Arc::new_cyclic(|me| Content::new(core, id, keys, size as u64, alloc as u64, me.clone()));
        let mut open = self.core.open.lock();
        if let Some(c) = open.get(&id).and_then(Weak::upgrade) {
            return Ok(c);
        }
        if open.len() >= 1024 && open.len().is_power_of_two() {
            open.retain(|_, w| w.strong_count() > 0);
        }
        open.insert(id, Arc::downgrade(&fresh));
        Ok(fresh)
    }

    /// The node's streams: for a file first its main data (name ""), then
    /// its named streams in a stable order.
    pub fn list_streams(&self, node: NodeId) -> Result<Vec<StreamInfo>> {
        type Row = (Vec<u8>, Vec<u8>, i64, i64, i64, Option<Vec<u8>>);
        let keys = &self.core.keys;
        let (main, named) = self.core.read(|db| {
            let (_, kind) = node_info(db, keys, node.0 as i64)?;
            let main: Option<(i64, i64, Option<i64>)> = if kind == NodeKind::File {
                Some(
                    db.conn
                        .prepare_cached(
                            "SELECT COALESCE((SELECT size FROM contents WHERE id = n.content), 0), \
                             COALESCE((SELECT alloc FROM contents WHERE id = n.content), 0), n.content \
                             FROM nodes n WHERE n.id=?1",
                        )?
                        .query_row([node.0 as i64], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?,
                )
            } else {
                None
            };
            let mut st = db.conn.prepare_cached(
                "SELECT s.name_key, s.name_ct, (SELECT size FROM contents WHERE id = s.content), \
                 (SELECT alloc FROM contents WHERE id = s.content), s.content, s.mac FROM streams s \
                 WHERE s.node=?1 ORDER BY s.name_key",
            )?;
            let rows = st.query_map([node.0 as i64], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?))
            })?;
            Ok((main, rows.collect::<rusqlite::Result<Vec<Row>>>()?))
        })?;
        let sizes = |content: Option<i64>, size: i64, alloc: i64| {
            content.and_then(|c| self.core.unsealed_sizes(c)).unwrap_or((size as u64, alloc as u64))
        };
        let mut out = Vec::with_capacity(named.len() + 1);
        if let Some((size, alloc, content)) = main {
            let (size, alloc_size) = sizes(content, size, alloc);
            out.push(StreamInfo { name: String::new(), size, alloc_size });
        }
        for (key, ct, size, alloc, content, mac) in named {
            keys.check_row("streams", node.0 as i64, mac.as_deref(), &keys.stream_mac(node.0 as i64, &key, content))?;
            let name = self.core.keys.open_name(Scope::Stream, node.0, &key, &ct)?;
            let (size, alloc_size) = sizes(Some(content), size, alloc);
            out.push(StreamInfo { name, size, alloc_size });
        }
        Ok(out)
    }

    /// Deletes a named stream and its content.
    pub fn remove_stream(&self, node: NodeId, name: &str) -> Result<()> {
        let (_, key) = self.stream_key(node, name)?;
        self.core.mutate(|db| {
            let id = stream_content(db, &self.core.keys, node, &key)?.ok_or(StorageError::NotFound)?;
            let mut d = Deltas::default();
            purge_contents(db, &[id], &mut d)?;
            delete_stream_row(db, node, &key)?;
            Ok(((), d))
        })
    }

    /// Renames a named stream (MS-FSCC 2.4.42: a stream rename stays on its
    /// file). With `replace` an existing target stream is deleted first.
    pub fn rename_stream(&self, node: NodeId, old: &str, new: &str, replace: bool) -> Result<()> {
        let (_, old_key) = self.stream_key(node, old)?;
        let (nfc, new_key) = self.stream_key(node, new)?;
        self.core.mutate(|db| {
            let keys = &self.core.keys;
            let src = stream_content(db, keys, node, &old_key)?.ok_or(StorageError::NotFound)?;
            let mut d = Deltas::default();
            if let Some(dst) = stream_content(db, keys, node, &new_key)?.filter(|&dst| dst != src) {
                if !replace {
                    return Err(StorageError::Exists);
                }
                purge_contents(db, &[dst], &mut d)?;
                delete_stream_row(db, node, &new_key)?;
            }
            delete_stream_row(db, node, &old_key)?;
            let ct = keys.seal_name(Scope::Stream, node.0, &new_key, &nfc);
            let mac = keys.stream_mac(node.0 as i64, &new_key, src);
            let r = db
                .conn
                .prepare_cached(
                    "INSERT INTO streams(node, name_key, name_ct, content, mac) VALUES(?1, ?2, ?3, ?4, ?5)",
                )?
                .execute(params![node.0 as i64, new_key.as_slice(), ct, src, mac.as_slice()]);
            match r {
                Ok(_) => Ok(((), d)),
                Err(e) if is_unique_violation(&e) => Err(StorageError::Exists),
                Err(e) => Err(e.into()),
            }
        })
    }

    /// The node's security descriptor (opaque bytes), if one was set.
    pub fn get_security(&self, node: NodeId) -> Result<Option<Vec<u8>>> {
        let ct = self.sealed_column(node, "sd")?;
        ct.map(|c| Ok(self.core.keys.open_meta(b"sd", node.0, &c)?.to_vec())).transpose()
    }

    /// Stores `node`'s self-relative security descriptor (sealed).
    pub fn set_security(&self, node: NodeId, sd: &[u8]) -> Result<()> {
        let ct = self.core.keys.seal_meta(b"sd", node.0, sd);
        self.set_sealed_column(node, "sd", Some(ct))
    }

    /// The node's extended attributes (MS-FSCC 2.4.16), in stored order.
    pub fn get_eas(&self, node: NodeId) -> Result<Vec<(String, Vec<u8>)>> {
        match self.sealed_column(node, "eas")? {
            None => Ok(Vec::new()),
            Some(c) => decode_eas(&self.core.keys.open_meta(b"ea", node.0, &c)?),
        }
    }

    /// Replaces the whole EA list (the engine merges; empty removes all).
    /// The sealed list counts in the organization's usage: growing it past
    /// the quota fails with `QuotaExceeded`.
    pub fn set_eas(&self, node: NodeId, eas: &[(String, Vec<u8>)]) -> Result<()> {
        let ct = if eas.is_empty() { None } else { Some(self.core.keys.seal_meta(b"ea", node.0, &encode_eas(eas)?)) };
        let new_len = ct.as_ref().map_or(0, |c| c.len() as i64);
        self.core.mutate(|db| {
            let old_len: i64 = db
                .conn
                .prepare_cached("SELECT COALESCE(length(eas), 0) FROM nodes WHERE id=?1")?
                .query_row([node.0 as i64], |r| r.get(0))
                .optional()?
                .ok_or(StorageError::NotFound)?;
            self.core.check_quota(new_len - old_len)?;
            db.conn.prepare_cached("UPDATE nodes SET eas=?2 WHERE id=?1")?.execute(params![node.0 as i64, ct])?;
            seal_meta(db, &self.core.keys, node.0 as i64)?;
            Ok(((), Deltas { usage: new_len - old_len, ..Deltas::default() }))
        })
    }

    /// Bytes allocated by all content of the organization (for quotas).
    pub fn usage(&self) -> Result<u64> {
        self.core.read(|_| Ok(()))?;
        Ok(self.core.usage())
    }

    /// Limits allocation (`None`: unlimited). Writes that would pass it
    /// fail with `QuotaExceeded`. Not persisted: the engine sets it from
    /// the organization's account settings.
    pub fn set_quota(&self, bytes: Option<u64>) {
        self.core.set_quota(bytes);
    }

    /// Where the quota comes from: asked again before a write that would
    /// pass the cached quota is refused, so that a raised quota applies at
    /// once (a lowered one applies at the next `set_quota`).
    pub fn set_quota_source(&self, source: super::org::QuotaSource) {
        self.core.set_quota_source(source);
    }

    /// The sealed descriptor or EA list, after checking `meta_mac` (which
    /// covers both, present or absent).
    fn sealed_column(&self, node: NodeId, col: &'static str) -> Result<Option<Vec<u8>>> {
        type Row = (Option<Vec<u8>>, Option<Vec<u8>>, Option<Vec<u8>>);
        let id = node.0 as i64;
        let (sd, eas, mac): Row = self.core.read(|db| {
            db.conn
                .prepare_cached("SELECT sd, eas, meta_mac FROM nodes WHERE id=?1")?
                .query_row([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .optional()?
                .ok_or(StorageError::NotFound)
        })?;
        let keys = &self.core.keys;
        keys.check_row("nodes.meta", id, mac.as_deref(), &keys.meta_mac(id, sd.as_deref(), eas.as_deref()))?;
        Ok(if col == "sd" { sd } else { eas })
    }

    fn set_sealed_column(&self, node: NodeId, col: &'static str, v: Option<Vec<u8>>) -> Result<()> {
        let sql = format!("UPDATE nodes SET {col}=?2 WHERE id=?1");
        self.core.mutate(|db| {
            if db.conn.prepare_cached(&sql)?.execute(params![node.0 as i64, v])? == 0 {
                return Err(StorageError::NotFound);
            }
            seal_meta(db, &self.core.keys, node.0 as i64)?;
            Ok(((), Deltas::default()))
        })
    }
}

/// Content of a node's named stream (NotFound if the node is missing).
fn stream_of(db: &Db, keys: &OrgKeyring, node: NodeId, key: &[u8]) -> Result<Option<i64>> {
    node_info(db, keys, node.0 as i64)?;
    stream_content(db, keys, node, key)
}

/// The content a named stream reads, its row MAC checked.
fn stream_content(db: &Db, keys: &OrgKeyring, node: NodeId, key: &[u8]) -> Result<Option<i64>> {
    let row: Option<(i64, Option<Vec<u8>>)> = db
        .conn
        .prepare_cached("SELECT content, mac FROM streams WHERE node=?1 AND name_key=?2")?
        .query_row(params![node.0 as i64, key], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let Some((content, mac)) = row else { return Ok(None) };
    let id = node.0 as i64;
    keys.check_row("streams", id, mac.as_deref(), &keys.stream_mac(id, key, content))?;
    Ok(Some(content))
}

fn delete_stream_row(db: &Db, node: NodeId, key: &[u8]) -> Result<()> {
    db.conn
        .prepare_cached("DELETE FROM streams WHERE node=?1 AND name_key=?2")?
        .execute(params![node.0 as i64, key])?;
    Ok(())
}

/// EA list encoding inside the seal: u32 count, then per EA u16 name
/// length, name (UTF-8), u32 value length, value. Big-endian.
fn encode_eas(eas: &[(String, Vec<u8>)]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    let count = u32::try_from(eas.len()).map_err(|_| StorageError::InvalidArgument)?;
    out.extend_from_slice(&count.to_be_bytes());
    for (name, value) in eas {
        let nl = u16::try_from(name.len()).map_err(|_| StorageError::InvalidArgument)?;
        let vl = u32::try_from(value.len()).map_err(|_| StorageError::InvalidArgument)?;
        out.extend_from_slice(&nl.to_be_bytes());
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(&vl.to_be_bytes());
        out.extend_from_slice(value);
    }
    Ok(out)
}

fn decode_eas(b: &[u8]) -> Result<Vec<(String, Vec<u8>)>> {
    let bad = || StorageError::Integrity;
    let mut pos = 0usize;
    let mut take = |n: usize| -> Result<&[u8]> {
        let s = b.get(pos..pos.checked_add(n).ok_or_else(bad)?).ok_or_else(bad)?;
        pos += n;
        Ok(s)
    };
    let count = u32::from_be_bytes(take(4)?.try_into().map_err(|_| bad())?);
    let mut out = Vec::new();
    for _ in 0..count {
        let nl = u16::from_be_bytes(take(2)?.try_into().map_err(|_| bad())?) as usize;
        let name = String::from_utf8(take(nl)?.to_vec()).map_err(|_| bad())?;
        let vl = u32::from_be_bytes(take(4)?.try_into().map_err(|_| bad())?) as usize;
        out.push((name, take(vl)?.to_vec()));
    }
    Ok(out)
}
