//! Appending to one log directory. Several processes may append to the same
//! log (the server, and the CLI recording administrative changes): every
//! append and every sync runs under an exclusive `flock` of the log's
//! `lock` file, and the cached end of the chain is re-validated against the
//! head file and the segment's size first, so nobody appends after a stale
//! hash. That check is skipped when the writer finds its own token in the
//! `lock` file (nobody else changed the log since its last change).
//!
//! Order of writes (what crash recovery relies on): blocks are written with
//! one `pwrite` each; `sync` fsyncs the segment, then writes the head. A new
//! month's segment is only created after the previous one was synced, so a
//! torn block can only be at the end of the newest segment.

use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::index::{self, Region};
use super::jst::Month;
use super::keys::{LogId, LogKeys};
use super::segment::{
    ANCHOR_LEN, Anchor, BlockBuilder, Hash, SegReader, ZERO_HASH, anchor_matches, idx_name, list_segments, seg_name,
};
use super::signed::{self, Head, HeadState};
use super::tail::{self, Start};

/// Records per block and bytes per block at which a block is cut.
const BLOCK_RECORDS: u32 = 256;
const BLOCK_BYTES: usize = 256 * 1024;

/// One encoded event, ready to be chained.
pub(crate) struct Encoded {
    pub(crate) time_ms: i64,
    pub(crate) clear: Vec<u8>,
    pub(crate) names: Vec<u8>,
}

/// The end of the chain as this process last saw it.
struct State {
    month: Option<Month>,
    /// No segment may be created before this month (after a purge).
    floor: Month,
    seg: Option<(File, u64)>,
    end: u64,
    next_seq: u64,
    last_hash: Hash,
    region: Region,
}

/// A writer's token: a random nonzero id.
fn new_token() -> [u8; 16] {
    let mut t = [0u8; 16];
    t[..8].copy_from_slice(&rand::random::<u64>().max(1).to_be_bytes());
    t
}

/// Appender of one log.
pub(crate) struct LogWriter {
    log: LogId,
    keys: Arc<LogKeys>,
    dir: PathBuf,
    lock: File,
    head_file: File,
    state: Option<State>,
    known_gen: u64,
    dirty: bool,
    dir_dirty: bool,
    /// This writer's random id, stored in the `lock` file after a change
    /// when something else is there: finding it there under the lock
    /// proves nobody else changed the log since, and spares `validate` its
    /// reads (an append per engine pass made them the bulk of the cost).
    /// Every writer stores its own token after a change; a purge stores
    /// zeros.
    token: [u8; 16],
    /// Set by `locked`: the token was found unchanged.
    unchanged: bool,
}

type Io<T> = std::io::Result<T>;

impl LogWriter {
    /// Opens (creating) the log directory `dir`. Reads nothing else yet.
    pub(crate) fn open(dir: &Path, keys: Arc<LogKeys>) -> Io<Self> {
        let fresh = !dir.exists();
        fs::create_dir_all(dir)?;
        let lock = OpenOptions::new().read(true).write(true).create(true).truncate(false).open(dir.join("lock"))?;
        let head_file = signed::open_head(&dir.join("head"))?;
        if fresh {
            // The head exists from the start, so a missing head always means tampering.
            signed::write_head(&keys, &head_file, &Head::empty())?;
            signed::sync_dir(dir)?;
            if let Some(parent) = dir.parent() {
                signed::sync_dir(parent)?;
            }
        }
        Ok(Self {
            log: keys.log,
            keys,
            dir: dir.to_path_buf(),
            lock,
            head_file,
            state: None,
            known_gen: 0,
            dirty: false,
            dir_dirty: false,
            token: new_token(),
            unchanged: false,
        })
    }

    /// Whether records were appended since the last sync.
    pub(crate) fn is_dirty(&self) -> bool {
        self.dirty
    }

    fn locked<T>(&mut self, f: impl FnOnce(&mut Self) -> Io<T>) -> Io<T> {
        self.lock.lock()?;
        let mut found = [0u8; 16];
        let n = self.lock.read_at(&mut found, 0).unwrap_or(0);
        self.unchanged = self.state.is_some() && n == 16 && found == self.token;
        let mut r = f(self);
        // Once our token is there, later changes of ours need not write it
        // again: only another writer (or a purge) replaces it.
        if r.is_ok()
            && found != self.token
            && let Err(e) = self.lock.write_all_at(&self.token, 0)
        {
            r = Err(e);
        }
        if r.is_err() {
            // Whatever happened, re-read the files before the next append.
            self.state = None;
        }
        let u = self.lock.unlock();
        let v = r?;
        u?;
        Ok(v)
    }

    /// Chains and writes `recs` (not yet durable: see [`LogWriter::sync`]).
    pub(crate) fn append(&mut self, recs: &[Encoded]) -> Io<()> {
        if recs.is_empty() {
            return Ok(());
        }
        self.locked(|w| {
            w.validate()?;
            let mut i = 0;
            while i < recs.len() {
                i = w.append_block(recs, i)?;
            }
            Ok(())
        })?;
        self.dirty = true;
        Ok(())
    }

    /// Writes one block starting at `recs[i]`; returns the index after it.
    fn append_block(&mut self, recs: &[Encoded], mut i: usize) -> Io<usize> {
        let st = self.state.as_ref().ok_or_else(|| std::io::Error::other("no state"))?;
        let cur = st.month.unwrap_or(st.floor).max(st.floor);
        let target = |r: &Encoded| Month::of_ms(r.time_ms).max(cur);
        let month = target(&recs[i]);
        if st.month != Some(month) {
            self.roll(month)?;
        }
        let st = self.state.as_mut().ok_or_else(|| std::io::Error::other("no state"))?;
        let mut b = BlockBuilder::new(st.next_seq, st.last_hash);
        while i < recs.len() && b.count() < BLOCK_RECORDS && b.bytes() < BLOCK_BYTES {
            if target(&recs[i]) != month {
                break;
            }
            b.push(&self.keys, recs[i].time_ms, &recs[i].clear, &recs[i].names);
            i += 1;
        }
        let (min, max) = b.time_range();
        let (bytes, last_seq, last_hash) = b.finish(&self.keys);
        let (file, _) = st.seg.as_ref().ok_or_else(|| std::io::Error::other("no segment"))?;
        file.write_all_at(&bytes, st.end)?;
        let end = st.end + bytes.len() as u64;
        if let Some(e) = st.region.add(end, last_seq, min, max)
            && let Err(err) = index::append(&self.keys, &self.dir.join(idx_name(month)), month, &e)
        {
            tracing::warn!(log = %self.log, %err, "audit index entry not written; queries will scan more");
        }
        st.end = end;
        st.next_seq = last_seq + 1;
        st.last_hash = last_hash;
        Ok(i)
    }

    /// Starts the segment of `month`, anchored to the current chain end.
    fn roll(&mut self, month: Month) -> Io<()> {
        let st = self.state.as_mut().ok_or_else(|| std::io::Error::other("no state"))?;
        if let Some((f, _)) = &st.seg {
            f.sync_data()?; // torn blocks may only ever be in the newest segment
        }
        let path = self.dir.join(seg_name(month));
        let file = OpenOptions::new().read(true).write(true).create_new(true).open(&path)?;
        let anchor = Anchor::new(&self.keys, month, st.next_seq, st.last_hash);
        file.write_all_at(&anchor.encode(), 0)?;
        let ino = file.metadata()?.ino();
        st.month = Some(month);
        st.seg = Some((file, ino));
        st.end = ANCHOR_LEN;
        st.last_hash = anchor.hash;
        st.region = Region::new(ANCHOR_LEN, st.next_seq);
        self.dir_dirty = true;
        Ok(())
    }

    /// Makes everything appended so far durable, then records it in the head.
    pub(crate) fn sync(&mut self) -> Io<()> {
        if !self.dirty {
            return Ok(());
        }
        self.locked(|w| {
            w.validate()?;
            let st = w.state.as_ref().ok_or_else(|| std::io::Error::other("no state"))?;
            if let Some((f, _)) = &st.seg {
                f.sync_data()?;
            }
            if w.dir_dirty {
                signed::sync_dir(&w.dir)?;
                w.dir_dirty = false;
            }
            let head = Head {
                generation: w.known_gen + 1,
                month: st.month.unwrap_or(Month(0)),
                last_seq: st.next_seq - 1,
                end: st.end,
                last_hash: st.last_hash,
            };
            signed::write_head(&w.keys, &w.head_file, &head)?;
            w.known_gen = head.generation;
            Ok(())
        })?;
        self.dirty = false;
        Ok(())
    }

    /// Keeps the cached chain end if nobody else wrote since; reloads
    /// otherwise. Another writer shows as a newer head generation (it
    /// synced), a different size or inode of our segment (it appended, or a
    /// purge removed it), or a newer segment (it started a month).
    fn validate(&mut self) -> Io<()> {
        if self.unchanged {
            return Ok(());
        }
        let head = signed::read_head(&self.keys, &self.dir.join("head"))?;
        let fresh = match (&self.state, &head) {
            (Some(st), HeadState::Valid(h)) if h.generation == self.known_gen => {
                let latest = list_segments(&self.dir)?.into_iter().rfind(|m| *m >= st.floor);
                match (st.month, &st.seg) {
                    (Some(m), Some((_, ino))) if latest == Some(m) => match fs::metadata(self.dir.join(seg_name(m))) {
                        Ok(md) => md.len() == st.end && md.ino() == *ino,
                        Err(_) => false,
                    },
                    (None, _) => latest.is_none(),
                    _ => false,
                }
            }
            _ => false,
        };
        if !fresh {
            self.reload(head)?;
        }
        Ok(())
    }

    /// Rebuilds the chain end from the files, repairing a torn tail.
    fn reload(&mut self, head: HeadState) -> Io<()> {
        let segs_exist = !list_segments(&self.dir)?.is_empty();
        let hd = match head {
            HeadState::Valid(h) => h,
            HeadState::Missing | HeadState::Invalid => {
                if segs_exist {
                    tracing::error!(log = %self.log, ?head, "audit head file missing or forged; `smbvault logs verify` reports it");
                }
                Head::empty()
            }
        };
        self.known_gen = hd.generation;
        let ck = match signed::read_checkpoint(&self.keys, &self.dir.join("checkpoint"))? {
            Some(Ok(c)) => Some(c),
            Some(Err(())) => {
                tracing::error!(log = %self.log, "audit checkpoint does not authenticate; ignoring it");
                None
            }
            None => None,
        };
        let floor = ck.map_or(Month(0), |c| c.purged_through.next());
        let (start_seq, start_hash) = ck.map_or((1, ZERO_HASH), |c| (c.last_seq + 1, c.last_hash));
        loop {
            let segs: Vec<Month> = list_segments(&self.dir)?.into_iter().filter(|m| *m >= floor).collect();
            let Some(&last) = segs.last() else {
                self.state = Some(State {
                    month: None,
                    floor,
                    seg: None,
                    end: 0,
                    next_seq: start_seq,
                    last_hash: start_hash,
                    region: Region::default(),
                });
                return Ok(());
            };
            if let Some(st) = self.load_segment(last, &hd, floor)? {
                self.state = Some(st);
                return Ok(());
            }
        }
    }

    /// Loads the newest segment's end; `None` if the segment had to be
    /// removed or set aside (the caller then looks at the one before).
    fn load_segment(&mut self, month: Month, hd: &Head, floor: Month) -> Io<Option<State>> {
        let path = self.dir.join(seg_name(month));
        let (_, anchor) = SegReader::open(&path)?;
        let anchor = match anchor {
            Ok(a) if anchor_matches(&a, self.log, month) && a.authentic(&self.keys) => a,
            _ => {
                if month > hd.month {
                    // Created but never made durable: a crash while starting the month.
                    fs::remove_file(&path)?;
                    let _ = fs::remove_file(self.dir.join(idx_name(month)));
                } else {
                    set_aside(&path, 0)?;
                    tracing::error!(log = %self.log, %month, "audit segment anchor damaged; segment set aside");
                }
                return Ok(None);
            }
        };
        let file = OpenOptions::new().read(true).write(true).open(&path)?;
        let md = file.metadata()?;
        let idx_path = self.dir.join(idx_name(month));
        let region_start = index::last_end(&self.keys, &idx_path, month, md.len()).unwrap_or(ANCHOR_LEN);
        let head_hint = (hd.month == month && hd.end >= ANCHOR_LEN).then_some(Start {
            offset: hd.end,
            next_seq: hd.last_seq + 1,
            last_hash: hd.last_hash,
        });
        let mut s = tail::scan(&self.keys, &path, &anchor, head_hint, region_start)?;
        if let Some(bad) = s.bad_at {
            let durable = match hd.month.cmp(&month) {
                std::cmp::Ordering::Equal => hd.end,
                std::cmp::Ordering::Greater => u64::MAX,
                std::cmp::Ordering::Less => 0,
            };
            if bad < durable {
                set_aside(&path, bad)?;
                tracing::error!(log = %self.log, %month, offset = bad, "audit records before the durable head are damaged; set aside, run `smbvault logs verify`");
            } else {
                tracing::warn!(log = %self.log, %month, offset = bad, bytes = s.len - bad, "audit log: torn tail from a crash removed");
            }
            file.set_len(bad)?;
            file.sync_all()?;
            index::truncate_after(&self.keys, &idx_path, month, bad)?;
        }
        if s.region.start > s.end {
            s.region = Region::new(s.end, s.next_seq);
        }
        Ok(Some(State {
            month: Some(month),
            floor,
            seg: Some((file, md.ino())),
            end: s.end,
            next_seq: s.next_seq,
            last_hash: s.last_hash,
            region: s.region,
        }))
    }
}

/// Copies `path[from..]` to `path.damaged-<ms>` so that evidence survives the repair.
fn set_aside(path: &Path, from: u64) -> Io<()> {
    let data = fs::read(path)?;
    let ms = super::jst::unix_ms(std::time::SystemTime::now());
    let mut dst = path.as_os_str().to_owned();
    dst.push(format!(".damaged-{ms}"));
    let tail = data.get(from as usize..).unwrap_or(&[]);
    fs::write(&dst, tail)?;
    if from == 0 {
        fs::remove_file(path)?;
    }
    Ok(())
}
