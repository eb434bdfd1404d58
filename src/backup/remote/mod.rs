//! Per-organization remote backups (docs/backup.md "Remote backups"): each
//! organization's data goes to the target it chose (`[backup.targets]`,
//! table `org_backup`), with its own number of generations.
//!
//! ```text
//! <prefix>orgs/<org, 16 hex>/objects/<SHA-256 of the object>   segments, sealed meta.db
//! <prefix>orgs/<org, 16 hex>/generations/<GEN>.json             MACed manifest
//! ```
//!
//! The store is untrusted. Segments are uploaded as they are (their
//! records are encrypted and MACed already); meta.db is sealed first
//! (AES-256-GCM under a sub-key of the organization key, so shredding the
//! organization also makes it unreadable). Objects are named by their
//! SHA-256: a segment whose committed prefix did not change since any
//! kept generation is already there and is not sent again. The manifest is
//! uploaded last, so a generation either exists whole or not at all; an
//! interrupted run leaves objects (and multipart uploads, journaled) that
//! the next run finds and does not send again. Every object fetched is
//! checked against the manifest's SHA-256 and size before it is used.

pub mod manifest;
pub mod objects;
pub mod ops;
mod retention;
pub mod s3;
pub mod schedule;
pub mod snapshot;
pub mod target;
mod upload;
pub mod views;

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;
use sha2::{Digest, Sha256};

use self::objects::ObjectStore;
use self::target::TargetConfig;
use super::db::create_private_dir;
use crate::keys::{Key32, OrgKeys};
use crate::types::OrgId;

pub use self::manifest::{FORMAT, ObjectEntry, OrgManifest, Piece, ShareEntry};
use self::manifest::{MAX_MANIFEST, SEAL_LABEL, is_seg_path, unseal};
pub use crate::accounts::OrgBackup;

/// What one backup run did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    /// The new generation.
    pub generation: String,
    /// Objects (pieces) in it.
    pub objects: usize,
    /// Their stored bytes.
    pub bytes: u64,
    /// Objects sent in this run.
    pub uploaded_objects: usize,
    /// Bytes sent in this run (manifest included).
    pub uploaded_bytes: u64,
    /// Bytes of multipart parts an interrupted run had sent already.
    pub resumed_bytes: u64,
    /// Generations deleted by the retention.
    pub deleted_generations: Vec<String>,
    /// Objects deleted because no kept generation uses them any more.
    pub deleted_objects: usize,
}

/// Generations on a target, oldest first, each with its manifest or why it
/// cannot be used.
pub type Listing = Vec<(String, Result<OrgManifest, String>)>;

/// A progress counter shown by the CLI (bytes done of total).
#[derive(Debug, Default)]
pub struct Meter {
    /// Bytes done.
    pub done: Arc<AtomicU64>,
    /// Bytes expected (0: unknown yet).
    pub total: AtomicU64,
}

/// Remote backups of this server.
pub struct Remote {
    data_dir: PathBuf,
    targets: BTreeMap<String, TargetConfig>,
    state_dir: PathBuf,
    cache_dir: PathBuf,
    mac_key: Key32,
}

impl std::fmt::Debug for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Remote").field("targets", &self.targets.keys().collect::<Vec<_>>()).finish()
    }
}

fn org_dir_key(org: OrgId) -> String {
    format!("orgs/{:016x}/", org.0)
}

fn sha_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

impl Remote {
    /// `data_dir` is the server's data directory (with `store/`);
    /// `mac_key` is [`super::manifest::mac_key`].
    pub fn new(
        data_dir: &Path,
        targets: BTreeMap<String, TargetConfig>,
        cache_dir: Option<PathBuf>,
        mac_key: Key32,
    ) -> Remote {
        let state_dir = data_dir.join("backups").join("remote");
        let cache_dir = cache_dir.unwrap_or_else(|| state_dir.join("cache"));
        Remote { data_dir: data_dir.to_path_buf(), targets, state_dir, cache_dir, mac_key }
    }

    /// Configured target names.
    pub fn target_names(&self) -> Vec<String> {
        self.targets.keys().cloned().collect()
    }

    /// Whether `name` is configured.
    pub fn has_target(&self, name: &str) -> bool {
        self.targets.contains_key(name)
    }

    /// Opens a target by name.
    pub fn open(&self, name: &str) -> Result<(Box<dyn ObjectStore>, &TargetConfig), String> {
        let t = self.targets.get(name).ok_or_else(|| format!("no target {name:?} in [backup.targets]"))?;
        Ok((t.open(name)?, t))
    }

    fn lock(&self, org: OrgId) -> Result<File, String> {
        self.lock_file(&format!("org-{:016x}.lock", org.0))
    }

    fn cache_lock(&self, org: OrgId) -> Result<File, String> {
        self.lock_file(&format!("cache-{:016x}.lock", org.0))
    }

    fn lock_file(&self, name: &str) -> Result<File, String> {
        create_private_dir(&self.state_dir)?;
        let p = self.state_dir.join(name);
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&p)
            .map_err(|e| format!("{}: {e}", p.display()))?;
        f.lock().map_err(|e| format!("{}: {e}", p.display()))?;
        Ok(f)
    }

    /// The generations of `org` on its target, oldest first, each with its
    /// manifest when it could be read and its MAC holds (`Err`: why not).
    pub fn list(&self, org: OrgId, ob: &OrgBackup) -> Result<Listing, String> {
        let (store, _) = self.open(&ob.target)?;
        self.list_in(&*store, org)
    }

    /// The names of the generations of `org` on its target, oldest first
    /// (manifests not read).
    pub fn generation_names(&self, org: OrgId, ob: &OrgBackup) -> Result<Vec<String>, String> {
        let (store, _) = self.open(&ob.target)?;
        let pre = format!("{}generations/", org_dir_key(org));
        let mut out: Vec<String> = store
            .list(&pre)?
            .into_iter()
            .filter_map(|o| o.key.strip_prefix(&pre).and_then(|n| n.strip_suffix(".json")).map(str::to_string))
            .collect();
        out.sort();
        Ok(out)
    }

    fn list_in(&self, store: &dyn ObjectStore, org: OrgId) -> Result<Listing, String> {
        let pre = format!("{}generations/", org_dir_key(org));
        let mut out = Vec::new();
        for o in store.list(&pre)? {
            let Some(name) = o.key.strip_prefix(&pre).and_then(|n| n.strip_suffix(".json")) else { continue };
            let m = self.read_manifest(store, org, name);
            out.push((name.to_string(), m));
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    fn read_manifest(&self, store: &dyn ObjectStore, org: OrgId, name: &str) -> Result<OrgManifest, String> {
        let key = format!("{}generations/{name}.json", org_dir_key(org));
        let bytes = store.get(&key, MAX_MANIFEST)?;
        let m: OrgManifest = serde_json::from_slice(&bytes).map_err(|e| format!("{key}: not a manifest: {e}"))?;
        if !m.mac_ok(&self.mac_key) {
            return Err(format!("{key}: the manifest fails its MAC (altered, or made with another master key)"));
        }
        if m.format != FORMAT || m.org != org.0 || m.generation != name {
            return Err(format!("{key}: the manifest belongs to another organization or generation"));
        }
        for f in &m.files {
            let ok_path = f.path == "meta.db" || is_seg_path(&f.path);
            let ok_pieces =
                f.pieces.iter().all(|p| p.sha256.len() == 64 && p.sha256.bytes().all(|b| b.is_ascii_hexdigit()))
                    && f.pieces.iter().map(|p| p.size).sum::<u64>() == f.size;
            if !ok_path || !ok_pieces {
                return Err(format!("{key}: the manifest lists an unsafe entry {:?}", f.path));
            }
        }
        Ok(m)
    }

    /// Resolves `latest` or a generation name to its verified manifest.
    pub fn manifest(&self, org: OrgId, ob: &OrgBackup, generation: &str) -> Result<OrgManifest, String> {
        let (store, _) = self.open(&ob.target)?;
        let name = if generation == "latest" {
            let all = self.list_in(&*store, org)?;
            all.into_iter().rev().find(|(_, m)| m.is_ok()).map(|(n, _)| n).ok_or("no generation on the target")?
        } else {
            generation.to_string()
        };
        self.read_manifest(&*store, org, &name)
    }

    /// Downloads and checks every object of a generation: size, SHA-256,
    /// and the seal of meta.db. Returns the problems (empty: intact).
    pub fn verify(
        &self,
        org: OrgId,
        ob: &OrgBackup,
        m: &OrgManifest,
        keys: &dyn OrgKeys,
        meter: &Meter,
    ) -> Vec<String> {
        let tmp = self.state_dir.join(format!("verify-{:016x}-{}", org.0, std::process::id()));
        let problems = match self.download(org, ob, m, keys, &tmp, false, meter) {
            Ok(p) => p,
            Err(e) => vec![e],
        };
        let _ = std::fs::remove_dir_all(&tmp);
        problems
    }

    /// The generation unpacked and verified in the local cache
    /// (`<cache>/<org>/<GEN>/meta.db`, `seg/`), downloaded when not there yet.
    pub fn fetch(
        &self,
        org: OrgId,
        ob: &OrgBackup,
        m: &OrgManifest,
        keys: &dyn OrgKeys,
        meter: &Meter,
    ) -> Result<PathBuf, String> {
        self.fetch_to(org, ob, m, keys, &self.cache_path(org, &m.generation), false, meter)
    }

    /// [`Self::fetch`] into `dir`; `meta_only`: only meta.db (names, tree,
    /// descriptors, no file contents), verified the same way.
    #[allow(clippy::too_many_arguments)]
    pub fn fetch_to(
        &self,
        org: OrgId,
        ob: &OrgBackup,
        m: &OrgManifest,
        keys: &dyn OrgKeys,
        dir: &Path,
        meta_only: bool,
        meter: &Meter,
    ) -> Result<PathBuf, String> {
        let dir = dir.to_path_buf();
        if dir.join(".verified").is_file() {
            return Ok(dir);
        }
        // Not the backup's lock: a fetch does not wait for an upload.
        let _lock = self.cache_lock(org)?;
        if dir.join(".verified").is_file() {
            return Ok(dir);
        }
        let tmp = dir.with_extension("tmp");
        let _ = std::fs::remove_dir_all(&tmp);
        let problems = self.download(org, ob, m, keys, &tmp, meta_only, meter)?;
        if !problems.is_empty() {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(format!("generation {} failed verification: {}", m.generation, problems.join("; ")));
        }
        std::fs::write(tmp.join(".verified"), m.generation.as_bytes()).map_err(|e| e.to_string())?;
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::rename(&tmp, &dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        Ok(dir)
    }

    /// Where Previous Versions keep fetched generations (apart from the
    /// restores' copies, so that two stores never open one directory).
    pub fn views_dir(&self) -> PathBuf {
        self.cache_dir.join("views")
    }

    /// Where [`Self::fetch`] puts a generation.
    pub fn cache_path(&self, org: OrgId, generation: &str) -> PathBuf {
        self.cache_dir.join(format!("{:016x}", org.0)).join(generation)
    }

    /// Downloads every object of `m` (`meta_only`: only meta.db) into
    /// `dir` (meta.db unsealed), checking each. `Err`: the target could not
    /// be read at all.
    #[allow(clippy::too_many_arguments)]
    fn download(
        &self,
        org: OrgId,
        ob: &OrgBackup,
        m: &OrgManifest,
        keys: &dyn OrgKeys,
        dir: &Path,
        meta_only: bool,
        meter: &Meter,
    ) -> Result<Vec<String>, String> {
        let (store, _) = self.open(&ob.target)?;
        create_private_dir(&dir.join("seg"))?;
        let wanted: Vec<&ObjectEntry> = m.files.iter().filter(|f| !meta_only || f.path == "meta.db").collect();
        meter.total.store(wanted.iter().map(|f| f.size).sum(), Ordering::Relaxed);
        let base = org_dir_key(org);
        let mut problems = Vec::new();
        for f in wanted {
            let dst = dir.join(if f.path == "meta.db" { "meta.db.sealed" } else { f.path.as_str() });
            let mut out = File::create(&dst).map_err(|e| format!("{}: {e}", dst.display()))?;
            for p in &f.pieces {
                let key = format!("{base}objects/{}", p.sha256);
                let mut w = HashingWriter { inner: &mut out, h: Sha256::new(), n: 0, meter };
                if let Err(e) = store.get_to(&key, &mut w) {
                    problems.push(format!("{} (object {}): {e}", f.path, p.sha256));
                    continue;
                }
                let (n, sha) = (w.n, hex::encode(w.h.finalize()));
                if n != p.size {
                    problems.push(format!("{} (object {}): {n} bytes, the manifest says {}", f.path, p.sha256, p.size));
                } else if sha != p.sha256 {
                    problems
                        .push(format!("{} (object {}): SHA-256 differs: the object is corrupted", f.path, p.sha256));
                }
            }
            out.sync_all().map_err(|e| format!("{}: {e}", dst.display()))?;
        }
        if problems.is_empty() {
            let sealed = std::fs::read(dir.join("meta.db.sealed")).map_err(|e| e.to_string())?;
            let seal_key = keys.org_subkey(org, SEAL_LABEL).map_err(|e| e.to_string())?;
            match unseal(&seal_key, org, &m.generation, &sealed) {
                Ok(plain) => {
                    std::fs::write(dir.join("meta.db"), plain).map_err(|e| e.to_string())?;
                    let _ = std::fs::remove_file(dir.join("meta.db.sealed"));
                }
                Err(e) => problems.push(e),
            }
        }
        Ok(problems)
    }
}

struct HashingWriter<'a> {
    inner: &'a mut File,
    h: Sha256,
    n: u64,
    meter: &'a Meter,
}

impl Write for HashingWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.h.update(&buf[..n]);
        self.n += n as u64;
        self.meter.done.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
#[path = "tests.rs"]
mod path_tests;
