//! The durable mark of `meta.db`'s WAL, and the power-loss cut at recovery
//! (docs/storage-format.md §8, §9).
//!
//! Every engine pass commits its operations to the WAL without fsync, so
//! the WAL may hold commits whose chunk records were never fdatasynced. A
//! process crash loses neither (the kernel has both). A power loss or
//! kernel crash may lose the records but keep the WAL frames (the kernel
//! writes dirty pages back in no particular order); those commits must not
//! survive. So:
//!
//! - each durable commit, once the segments and then the WAL are synced,
//!   records the WAL's identity (header bytes 12..24: checkpoint sequence
//!   and salts) and length in `meta.db-durable` (two checksummed slots,
//!   written alternately and fdatasynced, so a torn write leaves the other);
//! - `boot` in the organization's directory holds the kernel's boot id of
//!   the process that last opened the store;
//! - at open, if the boot id changed (the machine went down since) the WAL
//!   is cut back to the mark: to its length if the WAL is still the one the
//!   mark names, else (a checkpoint copied everything up to the mark into
//!   the database and restarted the WAL) removed. `-shm` is rebuilt.
//!
//! A crash of the process alone keeps the boot id, and the WAL is kept
//! whole. Where the boot id cannot be read, nothing is cut.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

const SLOT: usize = 40;
const WAL_HEADER: usize = 32;

/// Where the mark is written (`<db>-durable`).
pub struct Mark {
    file: File,
    seq: u64,
}

/// The WAL's identity and length, or `None` if there is no WAL header.
pub fn wal_state(wal: &Path) -> io::Result<Option<([u8; 12], u64)>> {
    let f = match File::open(wal) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let len = f.metadata()?.len();
    if len < WAL_HEADER as u64 {
        return Ok(None);
    }
    let mut h = [0u8; WAL_HEADER];
    f.read_exact_at(&mut h, 0)?;
    let mut ident = [0u8; 12];
    ident.copy_from_slice(&h[12..24]);
    Ok(Some((ident, len)))
}

fn slot_bytes(seq: u64, ident: &[u8; 12], len: u64) -> [u8; SLOT] {
    let mut b = [0u8; SLOT];
    b[..8].copy_from_slice(&seq.to_be_bytes());
    b[8..20].copy_from_slice(ident);
    b[20..28].copy_from_slice(&len.to_be_bytes());
    let h = Sha256::digest(&b[..32]);
    b[32..].copy_from_slice(&h[..8]);
    b
}

fn parse_slot(b: &[u8]) -> Option<(u64, [u8; 12], u64)> {
    let h = Sha256::digest(&b[..32]);
    if b[32..SLOT] != h[..8] {
        return None;
    }
    let seq = u64::from_be_bytes(b[..8].try_into().ok()?);
    let ident: [u8; 12] = b[8..20].try_into().ok()?;
    let len = u64::from_be_bytes(b[20..28].try_into().ok()?);
    Some((seq, ident, len))
}

/// The newest valid slot of the mark file.
fn read_mark(path: &Path) -> io::Result<Option<(u64, [u8; 12], u64)>> {
    let b = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    Ok(b.chunks_exact(SLOT).filter_map(parse_slot).max_by_key(|s| s.0))
}

impl Mark {
    pub fn open(db: &Path) -> io::Result<Mark> {
        let path = sibling(db, "-durable");
        let seq = read_mark(&path)?.map_or(0, |s| s.0);
        let file = OpenOptions::new().read(true).write(true).create(true).truncate(false).mode(0o600).open(&path)?;
        Ok(Mark { file, seq })
    }

    /// Records that the WAL `ident` is durable up to `len` bytes.
    pub fn write(&mut self, ident: &[u8; 12], len: u64) -> io::Result<()> {
        let seq = self.seq + 1;
        self.file.write_all_at(&slot_bytes(seq, ident, len), (seq % 2) * SLOT as u64)?;
        self.file.sync_data()?;
        self.seq = seq;
        Ok(())
    }
}

fn sibling(db: &Path, suffix: &str) -> PathBuf {
    let mut p = db.as_os_str().to_owned();
    p.push(suffix);
    p.into()
}

/// This boot of the kernel (Linux), if it can be read.
fn boot_id() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok().map(|s| s.trim().to_string())
}

/// Before `meta.db` is opened: if the machine went down since the store was
/// last opened, cut the WAL back to the durable mark (module docs).
pub fn recover(dir: &Path, db: &Path) -> io::Result<()> {
    let Some(now) = boot_id() else {
        return Ok(());
    };
    let last = match std::fs::read_to_string(dir.join("boot")) {
        Ok(s) => s.trim().to_string(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    if last == now {
        return Ok(());
    }
    let wal = sibling(db, "-wal");
    let Some((ident, len)) = wal_state(&wal)? else {
        return Ok(());
    };
    match read_mark(&sibling(db, "-durable"))? {
        Some((_, m_ident, m_len)) if m_ident == ident => {
            if len > m_len {
                tracing::warn!(
                    cut = len - m_len,
                    "recovery after a restart of the machine: cutting meta.db's WAL back to its last durable commit"
                );
                OpenOptions::new().write(true).open(&wal)?.set_len(m_len)?;
            }
        }
        _ => {
            tracing::warn!(
                "recovery after a restart of the machine: dropping meta.db's WAL written after its last durable commit"
            );
            std::fs::remove_file(&wal)?;
        }
    }
    match std::fs::remove_file(sibling(db, "-shm")) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    File::open(&wal)
        .and_then(|f| f.sync_all())
        .or_else(|e| if e.kind() == io::ErrorKind::NotFound { Ok(()) } else { Err(e) })?;
    super::segment::sync_dir(dir)
}

/// After recovery: records this boot's id (durably) before any operation.
pub fn record_boot(dir: &Path) -> io::Result<()> {
    let Some(now) = boot_id() else {
        return Ok(());
    };
    let path = dir.join("boot");
    if std::fs::read_to_string(&path).is_ok_and(|s| s.trim() == now) {
        return Ok(());
    }
    let tmp = dir.join("boot.tmp");
    {
        let f = OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp)?;
        f.write_all_at(now.as_bytes(), 0)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, &path)?;
    super::segment::sync_dir(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newest_valid_slot_wins_and_torn_slot_is_ignored() {
        let d = tempfile::tempdir().unwrap();
        let db = d.path().join("meta.db");
        let mut m = Mark::open(&db).unwrap();
        m.write(&[1; 12], 100).unwrap();
        m.write(&[1; 12], 200).unwrap();
        assert_eq!(read_mark(&sibling(&db, "-durable")).unwrap(), Some((2, [1; 12], 200)));
        // Tear the newest slot (seq 2 lives at offset 0): the older one counts.
        let f = OpenOptions::new().write(true).open(sibling(&db, "-durable")).unwrap();
        f.write_all_at(&[0xff; 4], 10).unwrap();
        assert_eq!(read_mark(&sibling(&db, "-durable")).unwrap(), Some((1, [1; 12], 100)));
        // A reopened mark continues after the newest valid slot.
        let mut m = Mark::open(&db).unwrap();
        m.write(&[2; 12], 50).unwrap();
        assert_eq!(read_mark(&sibling(&db, "-durable")).unwrap(), Some((2, [2; 12], 50)));
    }
}
