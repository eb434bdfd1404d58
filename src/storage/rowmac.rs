//! Row MACs of `meta.db` (docs/storage-format.md §4): the columns that
//! decide what bytes a name reads or who may open it carry an HMAC under
//! the organization's row-MAC key, bound to the row's id. With write
//! access to the disk one could otherwise point a file at another file's
//! content, move it under another directory, or set its descriptor to NULL
//! (which reads as the permissive default). Every read of those columns
//! checks the MAC; a mismatch is an integrity error (STATUS_IO_DEVICE_ERROR
//! to the client) and an error in the server log.
//!
//! Each writer recomputes the MAC from the row as it now is, inside the
//! same savepoint as its change, so a crash never leaves a row and its MAC
//! apart.

use rusqlite::{OptionalExtension, params};

use super::db::Db;
use super::error::{Result, StorageError};
use super::keyring::OrgKeyring;

/// Recomputes `nodes.mac` from the row.
pub(crate) fn seal_node(db: &Db, keys: &OrgKeyring, id: i64) -> Result<()> {
    let (parent, kind, content): (Option<i64>, i64, Option<i64>) = db
        .conn
        .prepare_cached("SELECT parent, kind, content FROM nodes WHERE id=?1")?
        .query_row([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?
        .ok_or(StorageError::NotFound)?;
    let mac = keys.node_mac(id, parent, kind, content);
    db.conn.prepare_cached("UPDATE nodes SET mac=?2 WHERE id=?1")?.execute(params![id, mac.as_slice()])?;
    Ok(())
}

/// Recomputes `nodes.meta_mac` (descriptor and EAs, present or not).
pub(crate) fn seal_meta(db: &Db, keys: &OrgKeyring, id: i64) -> Result<()> {
    let (sd, eas): (Option<Vec<u8>>, Option<Vec<u8>>) = db
        .conn
        .prepare_cached("SELECT sd, eas FROM nodes WHERE id=?1")?
        .query_row([id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?
        .ok_or(StorageError::NotFound)?;
    let mac = keys.meta_mac(id, sd.as_deref(), eas.as_deref());
    db.conn.prepare_cached("UPDATE nodes SET meta_mac=?2 WHERE id=?1")?.execute(params![id, mac.as_slice()])?;
    Ok(())
}

/// Checks a node's placement and main content: (parent, kind, content).
pub(crate) fn checked_node(db: &Db, keys: &OrgKeyring, id: i64) -> Result<(Option<i64>, i64, Option<i64>)> {
    type Row = (Option<i64>, i64, Option<i64>, Option<Vec<u8>>);
    let (parent, kind, content, mac): Row = db
        .conn
        .prepare_cached("SELECT parent, kind, content, mac FROM nodes WHERE id=?1")?
        .query_row([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .optional()?
        .ok_or(StorageError::NotFound)?;
    keys.check_row("nodes", id, mac.as_deref(), &keys.node_mac(id, parent, kind, content))?;
    Ok((parent, kind, content))
}

/// Computes every MAC of a database upgraded from version 1, in the open
/// transaction that also records version 2.
pub(crate) fn backfill(db: &Db, keys: &OrgKeyring) -> Result<()> {
    let ids: Vec<i64> =
        db.conn.prepare("SELECT id FROM nodes")?.query_map([], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?;
    for &id in &ids {
        seal_node(db, keys, id)?;
        seal_meta(db, keys, id)?;
    }
    type Stream = (i64, Vec<u8>, i64);
    let streams: Vec<Stream> = db
        .conn
        .prepare("SELECT node, name_key, content FROM streams")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<rusqlite::Result<_>>()?;
    for (node, key, content) in &streams {
        let mac = keys.stream_mac(*node, key, *content);
        db.conn.prepare_cached("UPDATE streams SET mac=?3 WHERE node=?1 AND name_key=?2")?.execute(params![
            node,
            key,
            mac.as_slice()
        ])?;
    }
    let contents: Vec<(i64, i64, i64)> = db
        .conn
        .prepare("SELECT id, size, alloc FROM contents")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<rusqlite::Result<_>>()?;
    for (id, size, alloc) in &contents {
        let mac = keys.content_mac(*id, *size, *alloc);
        db.conn.prepare_cached("UPDATE contents SET mac=?2 WHERE id=?1")?.execute(params![id, mac.as_slice()])?;
    }
    tracing::info!(
        nodes = ids.len(),
        streams = streams.len(),
        contents = contents.len(),
        "meta.db upgraded to format 2: row MACs computed"
    );
    Ok(())
}
