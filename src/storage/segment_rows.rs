//! The `segments` table and the segment files it names: creating a
//! segment (in a reused file when there is one), recording each one's end
//! and live bytes, and crash recovery's pass over them (docs/storage-format.md
//! §5, §9).

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use rusqlite::params;

use super::db::Db;
use super::error::{Result, StorageError};
use super::segment::{self, SEG_HEADER_LEN, Segment, Spare};

pub(super) fn segment_referenced(db: &Db, id: i64) -> Result<bool> {
    let mut st = db.conn.prepare_cached("SELECT 1 FROM chunks WHERE seg=?1 LIMIT 1")?;
    Ok(st.exists([id])?)
}

/// Writes each segment's end and live bytes to its row, where they changed.
pub(super) fn persist_segments<'a>(db: &mut Db, segs: impl Iterator<Item = &'a Arc<Segment>>) -> Result<()> {
    let Db { conn, persisted, .. } = db;
    let mut st = conn.prepare_cached("UPDATE segments SET len=?2, live=?3 WHERE id=?1")?;
    for s in segs {
        let now = (s.end(), s.live.load(Ordering::Acquire));
        if persisted.get(&s.id) != Some(&now) {
            st.execute(params![s.id, now.0 as i64, now.1 as i64])?;
            persisted.insert(s.id, now);
        }
    }
    Ok(())
}

/// Creates a segment file and its row (in the open transaction), in the
/// spare file if there is one.
pub(super) fn new_segment(db: &mut Db, seg_dir: &Path, spare: Option<Spare>) -> Result<Arc<Segment>> {
    let mut name = [0u8; 16];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut name);
    db.conn
        .prepare_cached("INSERT INTO segments(name, len, live) VALUES(?1, ?2, 0)")?
        .execute(params![name.as_slice(), SEG_HEADER_LEN as i64])?;
    let id = db.conn.last_insert_rowid();
    if let Some(spare) = spare {
        match Segment::reuse(spare, seg_dir, id, name) {
            Ok(s) => return Ok(Arc::new(s)),
            // The file is left behind under one name or the other, and
            // recovery deletes it; a new one will do.
            Err(e) => tracing::warn!(error = %e, "cannot reuse a compacted segment file"),
        }
    }
    Ok(Arc::new(Segment::create(seg_dir, id, name)?))
}

/// Opens every segment the committed database knows, cutting each back to
/// its committed length, and deletes segment files it does not know
/// (created, or compacted away, by a transaction that never committed).
pub(super) fn recover_segments(db: &Db, seg_dir: &Path) -> Result<HashMap<i64, Arc<Segment>>> {
    let mut st = db.conn.prepare("SELECT id, name, len, live FROM segments")?;
    let rows = st.query_map([], |r| {
        Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?, r.get::<_, i64>(2)?, r.get::<_, i64>(3)?))
    })?;
    let mut segs = HashMap::new();
    let mut known = HashSet::new();
    for row in rows {
        let (id, name, len, live) = row?;
        let name: [u8; 16] = name.try_into().map_err(|_| StorageError::Database)?;
        known.insert(name);
        match Segment::open(seg_dir, id, name, len as u64, live as u64) {
            Ok(s) => {
                segs.insert(id, Arc::new(s));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                // Reads of its chunks report Integrity; nothing else to do.
                tracing::error!(segment = id, "segment file is missing");
            }
            Err(e) => return Err(e.into()),
        }
    }
    let mut removed = false;
    for entry in std::fs::read_dir(seg_dir)? {
        let entry = entry?;
        let file_name = entry.file_name();
        let orphan = file_name.to_str().and_then(segment::name_of).is_some_and(|n| !known.contains(&n));
        if orphan {
            tracing::info!("recovery: deleting a segment file no committed row references");
            std::fs::remove_file(entry.path())?;
            removed = true;
        }
    }
    if removed {
        segment::sync_dir(seg_dir)?;
    }
    Ok(segs)
}
