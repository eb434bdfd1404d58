//! Segment files: append-only logs of chunk records shared by all content
//! streams of one organization (docs/storage-format.md §5).
//!
//! A segment is named by 128 random bits and starts with a 64-byte header
//! that holds nothing but magic and version. Records are appended at
//! reserved offsets (several writers may `pwrite` disjoint ranges at once)
//! and never modified; a record becomes dead when the index stops pointing
//! at it, and compaction later copies the live ones out.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Segment header length; the first record starts here.
pub const SEG_HEADER_LEN: u64 = 64;
const SEG_MAGIC: [u8; 8] = [0x89, b'S', b'V', b'S', b'E', b'G', 0x0d, 0x0a];
const SEG_VERSION: u16 = 1;

/// One open segment file.
pub struct Segment {
    /// Row id in `segments` (what chunk rows reference).
    pub id: i64,
    file: File,
    path: PathBuf,
    /// Next free offset (reserved space, written or in flight).
    end: AtomicU64,
    /// Bytes of records the index points at (maintained under the db lock).
    pub live: AtomicU64,
    /// Written since the last fdatasync.
    dirty: AtomicBool,
    /// Reservations whose rows are not published yet: a segment with any
    /// is neither compacted nor deleted, however empty it looks.
    pending: AtomicU64,
    /// Compaction moved everything out; delete once a commit made that durable.
    pub retired: AtomicBool,
}

impl Segment {
    /// Creates a new, empty segment file (durably: file and directory entry).
    pub fn create(dir: &Path, id: i64, name: [u8; 16]) -> io::Result<Segment> {
        let path = path_for(dir, &name);
        let file = OpenOptions::new().read(true).write(true).create_new(true).mode(0o600).open(&path)?;
        file.write_all_at(&header(), 0)?;
        file.sync_all()?;
        sync_dir(dir)?;
        Ok(Self::from_parts(id, file, path, SEG_HEADER_LEN, 0))
    }

    /// Opens an existing segment during recovery. Bytes past `committed`
    /// (the length recorded by the last durable commit) were never
    /// referenced by a committed index row, so they are cut off.
    pub fn open(dir: &Path, id: i64, name: [u8; 16], committed: u64, live: u64) -> io::Result<Segment> {
        let path = path_for(dir, &name);
        let file = OpenOptions::new().read(true).write(true).open(&path)?;
        let len = file.metadata()?.len();
        if len > committed {
            // Written after the last commit: never acknowledged by a flush.
            tracing::info!(segment = id, cut = len - committed, "recovery: cutting uncommitted segment tail");
            file.set_len(committed)?;
            file.sync_all()?;
        }
        let end = committed.max(SEG_HEADER_LEN);
        Ok(Self::from_parts(id, file, path, end, live))
    }

    /// Turns a retired segment's file into a new, empty segment: renames it
    /// to the new name and writes a fresh header, but keeps its length.
    /// Writing over pages the file already has costs the kernel no
    /// allocation and zero-filling of new ones (on tmpfs, 11 % of the
    /// server's CPU under 32 clients overwriting at random,
    /// docs/benchmarks.md). The old records past `end` are never read:
    /// every read goes through an index row, and recovery cuts the file
    /// back to its committed length.
    pub fn reuse(spare: Spare, dir: &Path, id: i64, name: [u8; 16]) -> io::Result<Segment> {
        let path = path_for(dir, &name);
        fs::rename(&spare.path, &path)?;
        spare.file.write_all_at(&header(), 0)?;
        spare.file.sync_data()?;
        // The new name must be durable before a committed row refers to it.
        sync_dir(dir)?;
        Ok(Self::from_parts(id, spare.file, path, SEG_HEADER_LEN, 0))
    }

    /// The file of a segment nobody else holds and no committed row
    /// references any more, for [`Segment::reuse`].
    pub fn into_spare(self) -> Spare {
        Spare { file: self.file, path: self.path, since: std::time::Instant::now() }
    }

    fn from_parts(id: i64, file: File, path: PathBuf, end: u64, live: u64) -> Self {
        Segment {
            id,
            file,
            path,
            end: AtomicU64::new(end),
            live: AtomicU64::new(live),
            dirty: AtomicBool::new(false),
            pending: AtomicU64::new(0),
            retired: AtomicBool::new(false),
        }
    }

    /// Reserves `n` bytes at the end; returns their offset. The caller
    /// holds a `Reservation` until the rows pointing there are published.
    pub fn reserve(&self, n: u64) -> u64 {
        self.pending.fetch_add(1, Ordering::AcqRel);
        self.end.fetch_add(n, Ordering::AcqRel)
    }

    /// Reservations not yet published or abandoned.
    pub fn in_flight(&self) -> u64 {
        self.pending.load(Ordering::Acquire)
    }

    /// Current end (including reservations still being written).
    pub fn end(&self) -> u64 {
        self.end.load(Ordering::Acquire)
    }

    pub fn write_at(&self, buf: &[u8], off: u64) -> io::Result<()> {
        self.file.write_all_at(buf, off)
    }

    /// Writes all of `parts`, in order, at `off` (`pwritev`: the records of
    /// a large WRITE, each its header, the data sealed where it arrived and
    /// its tag, without gathering them into one buffer first). At most
    /// `IOV_MAX` (1024 on Linux) parts go to one call.
    pub fn write_parts_at(&self, mut parts: &mut [io::IoSlice<'_>], mut off: u64) -> io::Result<()> {
        const IOV_MAX: usize = 1024;
        io::IoSlice::advance_slices(&mut parts, 0);
        while !parts.is_empty() {
            let n = parts.len().min(IOV_MAX);
            match rustix::io::pwritev(&self.file, &parts[..n], off) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(w) => {
                    io::IoSlice::advance_slices(&mut parts, w);
                    off += w as u64;
                }
                Err(rustix::io::Errno::INTR) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// Copies `len` bytes at `off` to `dst` at `dst_off` inside the kernel
    /// (`copy_file_range`: no trip through user space, no buffer), falling
    /// back to `pread` + `pwrite` where the kernel cannot. A source that
    /// ends early is `UnexpectedEof`.
    pub fn copy_range_to(&self, mut off: u64, len: usize, dst: &Segment, mut dst_off: u64) -> io::Result<()> {
        use rustix::io::Errno;
        let mut left = len;
        while left > 0 {
            match rustix::fs::copy_file_range(&self.file, Some(&mut off), &dst.file, Some(&mut dst_off), left) {
                Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                Ok(n) => left = left.saturating_sub(n),
                Err(Errno::INTR) => {}
                Err(Errno::XDEV | Errno::NOSYS | Errno::INVAL | Errno::OPNOTSUPP) => {
                    let mut buf = vec![0u8; left];
                    self.file.read_exact_at(&mut buf, off)?;
                    return dst.file.write_all_at(&buf, dst_off);
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// Marks the segment as holding unsynced records. Call after the
    /// `write_at`s complete and before publishing index rows.
    pub fn mark_dirty(&self) {
        self.dirty.store(true, Ordering::Release);
    }

    /// Reads exactly `buf.len()` bytes at `off` (a short file is an error).
    pub fn read_at(&self, buf: &mut [u8], off: u64) -> io::Result<()> {
        self.file.read_exact_at(buf, off)
    }

    /// Reads exactly the total length of `parts` at `off`, filling them in
    /// order (`preadv`: a record's header, its ciphertext where the caller
    /// wants it and its tag, without a staging copy). A short file is
    /// `UnexpectedEof`.
    pub fn read_parts_at(&self, mut parts: &mut [io::IoSliceMut<'_>], mut off: u64) -> io::Result<()> {
        io::IoSliceMut::advance_slices(&mut parts, 0);
        while !parts.is_empty() {
            match rustix::io::preadv(&self.file, parts, off) {
                Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                Ok(n) => {
                    io::IoSliceMut::advance_slices(&mut parts, n);
                    off += n as u64;
                }
                Err(rustix::io::Errno::INTR) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// fdatasync if anything was written since the last sync. The flag is
    /// cleared before syncing so that a write finishing meanwhile is synced
    /// by the next call instead of being forgotten.
    pub fn sync_if_dirty(&self) -> io::Result<()> {
        if self.dirty.swap(false, Ordering::AcqRel)
            && let Err(e) = self.file.sync_data()
        {
            self.dirty.store(true, Ordering::Release);
            return Err(e);
        }
        Ok(())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Deletes the file (open readers keep their descriptor).
    pub fn unlink(&self) -> io::Result<()> {
        fs::remove_file(&self.path)
    }
}

/// A segment file's header: magic, version, header length.
fn header() -> [u8; SEG_HEADER_LEN as usize] {
    let mut header = [0u8; SEG_HEADER_LEN as usize];
    header[..8].copy_from_slice(&SEG_MAGIC);
    header[8..10].copy_from_slice(&SEG_VERSION.to_be_bytes());
    header[10..12].copy_from_slice(&(SEG_HEADER_LEN as u16).to_be_bytes());
    header
}

/// A compacted-away segment file kept for the next new segment. It still
/// has its old name, which no committed row knows: should the process end
/// first, recovery deletes it like any such file.
pub struct Spare {
    file: File,
    path: PathBuf,
    since: std::time::Instant,
}

impl Spare {
    /// How long it has waited for reuse.
    pub fn age(&self) -> std::time::Duration {
        self.since.elapsed()
    }

    /// Deletes the file.
    pub fn discard(self) -> io::Result<()> {
        fs::remove_file(&self.path)
    }
}

/// `seg/<32 hex>.seg`
pub fn path_for(dir: &Path, name: &[u8; 16]) -> PathBuf {
    dir.join(format!("{}.seg", hex::encode(name)))
}

/// Parses a segment file name back into its random id.
pub fn name_of(file_name: &str) -> Option<[u8; 16]> {
    let hex_part = file_name.strip_suffix(".seg")?;
    hex::decode(hex_part).ok()?.try_into().ok()
}

/// fdatasync of the file at `path` (through a descriptor of our own).
pub fn sync_file(path: &Path) -> io::Result<()> {
    File::open(path)?.sync_data()
}

/// Makes directory entries (created or removed files) durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Space reserved in a segment; dropping it (after the index rows pointing
/// there were published, or on failure) ends the reservation.
pub struct Reservation {
    pub seg: Arc<Segment>,
    pub off: u64,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.seg.pending.fetch_sub(1, Ordering::AcqRel);
    }
}
