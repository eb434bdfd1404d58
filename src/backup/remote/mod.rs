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

pub mod objects;
pub mod ops;
pub mod s3;
pub mod schedule;
pub mod snapshot;
pub mod target;
pub mod views;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use self::objects::{ObjectStore, Uploader};
use self::target::TargetConfig;
use super::db::{create_private_dir, format_name};
use crate::keys::{Key32, OrgKeys};
use crate::types::OrgId;

pub use crate::accounts::OrgBackup;

/// Manifest format.
pub const FORMAT: u32 = 1;
/// Largest manifest fetched.
const MAX_MANIFEST: u64 = 64 << 20;
/// Sub-key of the organization key that seals meta.db copies.
const SEAL_LABEL: &str = "smbvault/backup/meta-seal";
const SEAL_MAGIC: &[u8; 8] = b"SVMETA1\0";

/// A share as it was when the generation was taken.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShareEntry {
    /// Share name.
    pub name: String,
    /// Its root directory's node id in this generation's meta.db.
    pub root: u64,
}

/// One stored object: a piece of a file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Piece {
    /// SHA-256 of the stored object, hex (also its key).
    pub sha256: String,
    /// Its length.
    pub size: u64,
}

/// One file of a generation, stored as consecutive pieces.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectEntry {
    /// Where it goes in a restored organization directory: `meta.db`
    /// (sealed in the store, one piece) or `seg/<32 hex>.seg`.
    pub path: String,
    /// Stored length (the sum of the pieces).
    pub size: u64,
    /// Its pieces in order: a segment is cut at multiples of the target's
    /// `piece_size_mib`, so its full pieces never change.
    pub pieces: Vec<Piece>,
}

/// `generations/<GEN>.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrgManifest {
    /// [`FORMAT`].
    pub format: u32,
    /// The organization (bound into the MAC).
    pub org: u64,
    /// Generation name (JST time, as database generations).
    pub generation: String,
    /// RFC 3339, JST.
    pub created: String,
    /// Seconds since the Unix epoch.
    pub created_unix: i64,
    /// The organization's shares at that time.
    pub shares: Vec<ShareEntry>,
    /// Every object.
    pub files: Vec<ObjectEntry>,
    /// HMAC-SHA256 under the backup manifest key over this with `mac` empty.
    pub mac: String,
}

impl OrgManifest {
    fn mac_of(&self, key: &Key32) -> Hmac<Sha256> {
        let mut body = self.clone();
        body.mac.clear();
        let bytes = serde_json::to_vec(&body).unwrap_or_default();
        let mut m =
            <Hmac<Sha256> as Mac>::new_from_slice(key.expose()).unwrap_or_else(|_| unreachable!("HMAC takes any key"));
        m.update(b"smbvault-org-backup1");
        m.update(&bytes);
        m
    }

    fn seal(&mut self, key: &Key32) {
        self.mac = hex::encode(self.mac_of(key).finalize().into_bytes());
    }

    fn mac_ok(&self, key: &Key32) -> bool {
        hex::decode(&self.mac).is_ok_and(|t| self.mac_of(key).verify_slice(&t).is_ok())
    }

    /// When the generation was taken.
    pub fn time(&self) -> SystemTime {
        SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(self.created_unix.max(0) as u64)
    }

    /// Total stored bytes.
    pub fn size(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }
}

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

    /// Makes a new generation of `org` on its target, then applies the
    /// retention. `shares`: the organization's shares now.
    pub fn backup_org(
        &self,
        org: OrgId,
        ob: &OrgBackup,
        keys: &dyn OrgKeys,
        shares: Vec<ShareEntry>,
        now: SystemTime,
        meter: &Meter,
    ) -> Result<Report, String> {
        let _lock = self.lock(org)?;
        let (store, tcfg) = self.open(&ob.target)?;
        let name = format_name(now);
        let work = self.state_dir.join(format!("work-{:016x}", org.0));
        let _ = std::fs::remove_dir_all(&work);
        create_private_dir(&work)?;
        let res = self.backup_into(org, ob, keys, shares, now, meter, &*store, tcfg, &name, &work);
        let _ = std::fs::remove_dir_all(&work);
        res
    }

    #[allow(clippy::too_many_arguments)]
    fn backup_into(
        &self,
        org: OrgId,
        ob: &OrgBackup,
        keys: &dyn OrgKeys,
        shares: Vec<ShareEntry>,
        now: SystemTime,
        meter: &Meter,
        store: &dyn ObjectStore,
        tcfg: &TargetConfig,
        name: &str,
        work: &Path,
    ) -> Result<Report, String> {
        let org_rel = format!("store/orgs/{:016x}", org.0);
        let src_meta = self.data_dir.join(&org_rel).join("meta.db");
        if !src_meta.is_file() {
            return Err(format!("organization #{} has no data yet", org.0));
        }
        let meta = work.join("meta.db");
        let seal_key = keys.org_subkey(org, SEAL_LABEL).map_err(|e| e.to_string())?;
        // Snapshot meta.db, then open every segment it references (a
        // segment compacted away in between: snapshot again).
        let seg_dir = self.data_dir.join(&org_rel).join("seg");
        let mut opened = None;
        for _ in 0..super::data::ATTEMPTS {
            let _ = std::fs::remove_file(&meta);
            super::db::snapshot(&src_meta, &meta).map_err(|e| format!("cannot snapshot meta.db: {e}"))?;
            let segs = super::data::committed_segments(&meta)?;
            let all: std::io::Result<Vec<_>> = segs
                .iter()
                .map(|(n, len)| Ok((n.clone(), *len, File::open(seg_dir.join(format!("{n}.seg")))?)))
                .collect();
            match all {
                Ok(v) => {
                    opened = Some(v);
                    break;
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(format!("cannot open a segment: {e}")),
            }
        }
        let opened = opened.ok_or("segments kept vanishing during the backup")?;
        let plain = std::fs::read(&meta).map_err(|e| e.to_string())?;
        let sealed = seal(&seal_key, org, name, &plain)?;
        let sealed_path = work.join("meta.db.sealed");
        std::fs::write(&sealed_path, &sealed).map_err(|e| e.to_string())?;

        let base = org_dir_key(org);
        let existing: HashMap<String, u64> = store
            .list(&format!("{base}objects/"))?
            .into_iter()
            .filter_map(|o| o.key.strip_prefix(&format!("{base}objects/")).map(|k| (k.to_string(), o.size)))
            .collect();
        let meta_sha = sha_hex(&sealed);
        let mut files = vec![ObjectEntry {
            path: "meta.db".into(),
            size: sealed.len() as u64,
            pieces: vec![Piece { sha256: meta_sha.clone(), size: sealed.len() as u64 }],
        }];
        let piece = tcfg.piece_size_mib.max(1) << 20;
        let mut jobs: Vec<(String, Arc<File>, u64, u64)> = Vec::new();
        for (n, len, f) in opened {
            let actual = f.metadata().map_err(|e| e.to_string())?.len();
            if actual < len {
                return Err(format!("seg/{n}.seg: {actual} bytes on disk, {len} committed"));
            }
            let f = Arc::new(f);
            let mut pieces = Vec::new();
            let mut off = 0;
            while off < len {
                let plen = (len - off).min(piece);
                let sha = hash_range(&f, off, plen)?;
                jobs.push((sha.clone(), f.clone(), off, plen));
                pieces.push(Piece { sha256: sha, size: plen });
                off += plen;
            }
            files.push(ObjectEntry { path: format!("seg/{n}.seg"), size: len, pieces });
        }
        let sealed_file = Arc::new(File::open(&sealed_path).map_err(|e| e.to_string())?);
        jobs.push((meta_sha, sealed_file, 0, sealed.len() as u64));
        // Only what the store does not have yet (same name, same size).
        let mut seen = BTreeSet::new();
        jobs.retain(|(sha, _, _, len)| existing.get(sha) != Some(len) && seen.insert(sha.clone()));
        meter.total.store(jobs.iter().map(|j| j.3).sum(), Ordering::Relaxed);
        let mut up = Uploader::new(tcfg.bandwidth(), &self.state_dir.join(format!("target-{}", ob.target)))?;
        up.progress = meter.done.clone();
        let report = Arc::new(parking_lot::Mutex::new(Report::default()));
        let queue = parking_lot::Mutex::new(jobs);
        let first_err = parking_lot::Mutex::new(None::<String>);
        std::thread::scope(|s| {
            for _ in 0..tcfg.parallel {
                s.spawn(|| {
                    loop {
                        if first_err.lock().is_some() {
                            return;
                        }
                        let Some((sha, f, off, len)) = queue.lock().pop() else { return };
                        match store.put_file(&format!("{base}objects/{sha}"), &f, off, len, &up) {
                            Ok(sent) => {
                                let mut r = report.lock();
                                r.uploaded_objects += 1;
                                r.uploaded_bytes += sent.bytes;
                                r.resumed_bytes += sent.resumed;
                            }
                            Err(e) => {
                                first_err.lock().get_or_insert(e);
                                return;
                            }
                        }
                    }
                });
            }
        });
        if let Some(e) = first_err.into_inner() {
            return Err(format!("upload to {} failed (the next run resumes): {e}", store.describe()));
        }
        let created = crate::types::jst::at(now);
        let mut m = OrgManifest {
            format: FORMAT,
            org: org.0,
            generation: name.to_string(),
            created: created.to_rfc3339(),
            created_unix: created.timestamp(),
            shares,
            files,
            mac: String::new(),
        };
        m.seal(&self.mac_key);
        let text = serde_json::to_vec_pretty(&m).map_err(|e| e.to_string())?;
        store.put(&format!("{base}generations/{name}.json"), &text, &up)?;
        let mut r = Arc::try_unwrap(report).map(|m| m.into_inner()).unwrap_or_default();
        r.uploaded_bytes += text.len() as u64;
        r.generation = name.to_string();
        r.objects = m.files.iter().map(|f| f.pieces.len()).sum();
        r.bytes = m.size();
        let (gens, objs) = self.retain(store, org, ob.generations)?;
        r.deleted_generations = gens;
        r.deleted_objects = objs;
        tracing::info!(org = org.0, generation = %name, target = %ob.target, uploaded = r.uploaded_bytes, "remote backup generation made");
        Ok(r)
    }

    /// Deletes the oldest generations beyond `keep`, then every object no
    /// kept generation lists. When a kept manifest cannot be read, no
    /// object is deleted (it might be one of its).
    fn retain(&self, store: &dyn ObjectStore, org: OrgId, keep: u32) -> Result<(Vec<String>, usize), String> {
        let base = org_dir_key(org);
        let all = self.list_in(store, org)?;
        let excess = all.len().saturating_sub(keep.max(1) as usize);
        let mut deleted = Vec::new();
        for (name, _) in &all[..excess] {
            store.delete(&format!("{base}generations/{name}.json"))?;
            deleted.push(name.clone());
        }
        let kept = &all[excess..];
        if kept.iter().any(|(_, m)| m.is_err()) {
            tracing::warn!(org = org.0, "a kept generation's manifest is unreadable; keeping every object");
            return Ok((deleted, 0));
        }
        let used: BTreeSet<&str> = kept
            .iter()
            .filter_map(|(_, m)| m.as_ref().ok())
            .flat_map(|m| m.files.iter().flat_map(|f| f.pieces.iter().map(|p| p.sha256.as_str())))
            .collect();
        let mut n = 0;
        for o in store.list(&format!("{base}objects/"))? {
            let sha = o.key.rsplit('/').next().unwrap_or("");
            if !used.contains(sha) {
                store.delete(&o.key)?;
                n += 1;
            }
        }
        Ok((deleted, n))
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

    /// Erasure at contract end: deletes `org`'s objects from every
    /// configured target. Failing to reach its `current` target fails
    /// (the erasure is retried); other targets that fail are logged.
    pub fn erase_everywhere(&self, org: OrgId, current: Option<&str>) -> Result<usize, String> {
        let mut n = 0;
        for name in self.targets.keys() {
            match self.erase_org(org, name) {
                Ok(k) => n += k,
                Err(e) if Some(name.as_str()) == current => return Err(format!("target {name}: {e}")),
                Err(e) => tracing::warn!(org = org.0, target = %name, error = %e, "cannot delete remote backups"),
            }
        }
        Ok(n)
    }

    /// Erasure at contract end: deletes every object of `org` on `target`
    /// and its local cache. Returns how many objects were deleted.
    pub fn erase_org(&self, org: OrgId, target: &str) -> Result<usize, String> {
        let (store, _) = self.open(target)?;
        let objs = store.list(&org_dir_key(org))?;
        for o in &objs {
            store.delete(&o.key)?;
        }
        let _ = std::fs::remove_dir_all(self.cache_dir.join(format!("{:016x}", org.0)));
        let _ = std::fs::remove_dir_all(self.views_dir().join(format!("{:016x}", org.0)));
        Ok(objs.len())
    }
}

fn is_seg_path(p: &str) -> bool {
    p.strip_prefix("seg/")
        .and_then(|n| n.strip_suffix(".seg"))
        .is_some_and(|n| n.len() == 32 && n.bytes().all(|b| b.is_ascii_hexdigit()))
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

fn hash_range(f: &File, start: u64, len: u64) -> Result<String, String> {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut off = 0;
    while off < len {
        let n = (len - off).min(buf.len() as u64) as usize;
        objects::read_range(f, start + off, &mut buf[..n])?;
        h.update(&buf[..n]);
        off += n as u64;
    }
    Ok(hex::encode(h.finalize()))
}

fn seal_aad(org: OrgId, generation: &str) -> Vec<u8> {
    [SEAL_MAGIC.as_slice(), &org.0.to_be_bytes(), generation.as_bytes()].concat()
}

/// `magic ‖ nonce ‖ AES-256-GCM(meta.db)`, AD = magic ‖ org ‖ generation.
fn seal(key: &Key32, org: OrgId, generation: &str, plain: &[u8]) -> Result<Vec<u8>, String> {
    use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
    let k = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, key.expose()).map_err(|_| "bad key")?);
    let mut nonce = [0u8; 12];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut nonce);
    let mut buf = plain.to_vec();
    k.seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(seal_aad(org, generation)), &mut buf)
        .map_err(|_| "sealing meta.db failed")?;
    Ok([SEAL_MAGIC.as_slice(), &nonce, &buf].concat())
}

fn unseal(key: &Key32, org: OrgId, generation: &str, sealed: &[u8]) -> Result<Vec<u8>, String> {
    use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
    let bad = || "meta.db: the sealed copy does not open (altered, or another organization's)".to_string();
    if sealed.len() < 20 + 16 || &sealed[..8] != SEAL_MAGIC {
        return Err(bad());
    }
    let k = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, key.expose()).map_err(|_| bad())?);
    let nonce: [u8; 12] = sealed[8..20].try_into().map_err(|_| bad())?;
    let mut buf = sealed[20..].to_vec();
    let plain = k
        .open_in_place(Nonce::assume_unique_for_key(nonce), Aad::from(seal_aad(org, generation)), &mut buf)
        .map_err(|_| bad())?;
    Ok(plain.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_round_trip_and_binding() {
        let k = Key32::random();
        let s = seal(&k, OrgId(3), "G1", b"sqlite bytes").unwrap();
        assert_eq!(unseal(&k, OrgId(3), "G1", &s).unwrap(), b"sqlite bytes");
        assert!(unseal(&k, OrgId(4), "G1", &s).is_err());
        assert!(unseal(&k, OrgId(3), "G2", &s).is_err());
        let mut t = s.clone();
        let last = t.len() - 1;
        t[last] ^= 1;
        assert!(unseal(&k, OrgId(3), "G1", &t).is_err());
    }

    #[test]
    fn seg_paths() {
        assert!(is_seg_path("seg/0123456789abcdef0123456789abcdef.seg"));
        assert!(!is_seg_path("seg/../../etc.seg"));
        assert!(!is_seg_path("meta.db/x"));
    }
}

#[cfg(test)]
#[path = "tests.rs"]
mod path_tests;
