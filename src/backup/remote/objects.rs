//! Where remote backups are kept: an [`ObjectStore`] is a flat namespace of
//! immutable objects under a target's prefix, either an S3-compatible
//! bucket ([`super::s3::S3Store`]) or a directory ([`PathStore`]).
//!
//! Uploads go through an [`Uploader`]: the shared bandwidth limit, the
//! progress counter and the multipart journal (so an upload interrupted by
//! a crash or a network failure goes on where it stopped).

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::backup::db::create_private_dir;
use crate::backup::manifest::{safe_relative, sync_dir, write_synced};

/// One stored object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    /// Key relative to the target's prefix.
    pub key: String,
    /// Length in bytes.
    pub size: u64,
}

/// What one upload cost.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sent {
    /// Bytes sent over the wire (or written) for this object.
    pub bytes: u64,
    /// Bytes of parts found already uploaded by an interrupted run.
    pub resumed: u64,
}

/// A backup target's storage. Keys are relative to the target's prefix.
pub trait ObjectStore: Send + Sync {
    /// Every object whose key starts with `prefix`, sorted by key.
    fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, String>;
    /// A whole object of at most `limit` bytes.
    fn get(&self, key: &str, limit: u64) -> Result<Vec<u8>, String>;
    /// Streams an object into `out`; returns its length.
    fn get_to(&self, key: &str, out: &mut dyn Write) -> Result<u64, String>;
    /// Stores a small object in one request.
    fn put(&self, key: &str, data: &[u8], up: &Uploader) -> Result<(), String>;
    /// Stores `len` bytes of `src` from `off` (multipart when large,
    /// resuming an interrupted upload of the same key).
    fn put_file(&self, key: &str, src: &File, off: u64, len: u64, up: &Uploader) -> Result<Sent, String>;
    /// Deletes an object (absent is fine).
    fn delete(&self, key: &str) -> Result<(), String>;
    /// For messages: `s3://bucket/prefix` or the directory.
    fn describe(&self) -> String;
}

/// Shared state of the uploads of one run.
pub struct Uploader {
    throttle: Option<Throttle>,
    /// Bytes sent so far (progress display).
    pub progress: std::sync::Arc<AtomicU64>,
    journal: Journal,
    /// Test hook: stop (fail) after this many bytes were sent in this run,
    /// to simulate a crash mid-upload.
    fail_after: Option<u64>,
}

impl Uploader {
    /// `bandwidth`: bytes per second (None: unlimited); the multipart
    /// journal lives in `state_dir`.
    pub fn new(bandwidth: Option<u64>, state_dir: &Path) -> Result<Uploader, String> {
        let fail_after = std::env::var("SMBVAULT_TEST_UPLOAD_FAIL_AFTER").ok().and_then(|v| v.parse().ok());
        Ok(Uploader {
            throttle: bandwidth.filter(|b| *b > 0).map(Throttle::new),
            progress: Default::default(),
            journal: Journal::open(state_dir)?,
            fail_after,
        })
    }

    /// Accounts for `n` bytes about to be sent: waits for the bandwidth
    /// limit, counts progress.
    pub fn sending(&self, n: u64) -> Result<(), String> {
        if let Some(t) = &self.throttle {
            t.take(n);
        }
        let total = self.progress.fetch_add(n, Ordering::Relaxed) + n;
        if self.fail_after.is_some_and(|f| total > f) {
            return Err("upload interrupted (SMBVAULT_TEST_UPLOAD_FAIL_AFTER)".into());
        }
        Ok(())
    }

    /// The multipart journal.
    pub fn journal(&self) -> &Journal {
        &self.journal
    }
}

/// A token bucket shared by every upload thread.
struct Throttle {
    rate: u64,
    state: Mutex<(Instant, f64)>,
}

impl Throttle {
    fn new(rate: u64) -> Throttle {
        Throttle { rate, state: Mutex::new((Instant::now(), rate as f64)) }
    }

    fn take(&self, n: u64) {
        let wait = {
            let mut s = self.state.lock();
            let now = Instant::now();
            // At most one second of burst.
            s.1 = (s.1 + now.duration_since(s.0).as_secs_f64() * self.rate as f64).min(self.rate as f64);
            s.0 = now;
            s.1 -= n as f64;
            if s.1 < 0.0 { Duration::from_secs_f64(-s.1 / self.rate as f64) } else { Duration::ZERO }
        };
        std::thread::sleep(wait);
    }
}

/// Multipart uploads in progress (`uploads.json` in the target's state
/// directory): object key → upload id, written before the first part is
/// sent, removed once the upload is completed.
pub struct Journal {
    path: PathBuf,
    map: Mutex<BTreeMap<String, String>>,
}

impl Journal {
    fn open(dir: &Path) -> Result<Journal, String> {
        create_private_dir(dir)?;
        let path = dir.join("uploads.json");
        let map = match std::fs::read(&path) {
            Ok(b) => serde_json::from_slice(&b).unwrap_or_default(),
            Err(_) => BTreeMap::new(),
        };
        Ok(Journal { path, map: Mutex::new(map) })
    }

    /// The upload id recorded for `key`.
    pub fn get(&self, key: &str) -> Option<String> {
        self.map.lock().get(key).cloned()
    }

    /// Records (`Some`) or forgets (`None`) the upload of `key`.
    pub fn set(&self, key: &str, id: Option<&str>) -> Result<(), String> {
        let mut m = self.map.lock();
        match id {
            Some(id) => m.insert(key.to_string(), id.to_string()),
            None => m.remove(key),
        };
        let text = serde_json::to_vec(&*m).map_err(|e| e.to_string())?;
        let tmp = self.path.with_extension("tmp");
        write_synced(&tmp, &text).map_err(|e| format!("{}: {e}", tmp.display()))?;
        std::fs::rename(&tmp, &self.path).map_err(|e| format!("{}: {e}", self.path.display()))
    }
}

/// Fills `buf` from `src` at `off` (positional: threads share the file).
pub fn read_range(src: &File, off: u64, buf: &mut [u8]) -> Result<usize, String> {
    use std::os::unix::fs::FileExt;
    src.read_exact_at(buf, off).map_err(|e| format!("read at {off}: {e}"))?;
    Ok(buf.len())
}

/// A target of kind `path`: objects are files under a directory (another
/// disk, or a mounted network file system).
pub struct PathStore {
    root: PathBuf,
}

impl PathStore {
    /// Objects under `root` (created 0700 when missing).
    pub fn new(root: PathBuf) -> PathStore {
        PathStore { root }
    }

    fn path(&self, key: &str) -> Result<PathBuf, String> {
        if !safe_relative(key) {
            return Err(format!("unsafe object key {key:?}"));
        }
        Ok(self.root.join(key))
    }

    /// Writes through a temporary file renamed into place, so an object
    /// either exists complete or not at all.
    fn write_with(&self, key: &str, fill: impl FnOnce(&mut File) -> Result<(), String>) -> Result<(), String> {
        let dst = self.path(key)?;
        let dir = dst.parent().unwrap_or(&self.root).to_path_buf();
        create_private_dir(&dir)?;
        let tmp = dir.join(format!(".tmp-{}", dst.file_name().and_then(|n| n.to_str()).unwrap_or("object")));
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(|e| format!("{}: {e}", tmp.display()))?;
        fill(&mut f)?;
        f.sync_all().map_err(|e| format!("{}: {e}", tmp.display()))?;
        std::fs::rename(&tmp, &dst).map_err(|e| format!("{}: {e}", dst.display()))?;
        sync_dir(&dir).map_err(|e| e.to_string())
    }
}

impl ObjectStore for PathStore {
    fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, String> {
        let mut out = Vec::new();
        for rel in crate::backup::manifest::list_files(&self.root) {
            let hidden = rel.rsplit('/').next().is_some_and(|n| n.starts_with(".tmp-"));
            if rel.starts_with(prefix) && !hidden {
                let size = std::fs::metadata(self.root.join(&rel)).map(|m| m.len()).unwrap_or(0);
                out.push(ObjectInfo { key: rel, size });
            }
        }
        Ok(out)
    }

    fn get(&self, key: &str, limit: u64) -> Result<Vec<u8>, String> {
        let f = File::open(self.path(key)?).map_err(|e| format!("{key}: {e}"))?;
        let mut v = Vec::new();
        f.take(limit).read_to_end(&mut v).map_err(|e| format!("{key}: {e}"))?;
        Ok(v)
    }

    fn get_to(&self, key: &str, out: &mut dyn Write) -> Result<u64, String> {
        let mut f = File::open(self.path(key)?).map_err(|e| format!("{key}: {e}"))?;
        std::io::copy(&mut f, out).map_err(|e| format!("{key}: {e}"))
    }

    fn put(&self, key: &str, data: &[u8], up: &Uploader) -> Result<(), String> {
        up.sending(data.len() as u64)?;
        self.write_with(key, |f| f.write_all(data).map_err(|e| e.to_string()))
    }

    fn put_file(&self, key: &str, src: &File, start: u64, len: u64, up: &Uploader) -> Result<Sent, String> {
        self.write_with(key, |f| {
            let mut buf = vec![0u8; 1 << 20];
            let mut off = 0;
            while off < len {
                let n = read_range(src, start + off, &mut buf[..(len - off).min(1 << 20) as usize])?;
                up.sending(n as u64)?;
                f.write_all(&buf[..n]).map_err(|e| e.to_string())?;
                off += n as u64;
            }
            Ok(())
        })?;
        Ok(Sent { bytes: len, resumed: 0 })
    }

    fn delete(&self, key: &str) -> Result<(), String> {
        match std::fs::remove_file(self.path(key)?) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(format!("{key}: {e}")),
        }
    }

    fn describe(&self) -> String {
        self.root.display().to_string()
    }
}
