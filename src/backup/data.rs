//! Data backups to a second location (docs/backup.md "Data backups"): a
//! generation under `[backup] data_target` is a database generation
//! ([`super::db`]) plus every segment file its meta.db copies reference:
//!
//! ```text
//! <data_target>/20261125T090000+0900/accounts.db
//!                                    store/keys.db
//!                                    store/orgs/<org>/meta.db
//!                                    store/orgs/<org>/seg/<32 hex>.seg
//!                                    manifest.json      (covers every file)
//! ```
//!
//! Segments are append-only and their records are never modified
//! (storage-format.md §5), so the first `segments.len` bytes of a segment —
//! the length the snapshot's commit covers — never change. Exactly that
//! prefix is copied: bytes past it belong to no committed row, and recovery
//! cuts them at open anyway (§9 step 2). A copy whose size and SHA-256 equal
//! the same segment's copy in the previous generation is hard-linked to it
//! (a copy when linking fails), so a sealed segment costs disk space once.
//!
//! Consistency: the meta.db snapshot is taken first, then every segment it
//! references is opened at once; an opened file stays readable after
//! compaction deletes it (§10: only after a commit that no longer references
//! it), so only the short window between snapshot and open matters. When a
//! segment vanished in that window, the organization's meta.db is
//! snapshotted again and its segments reopened (up to [`ATTEMPTS`] times).
//! Nothing cleartext is added: records are encrypted and MACed already.

use std::collections::{BTreeSet, HashMap};
use std::fs::File;
use std::io::{Read, Seek, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags};
use sha2::{Digest, Sha256};

use super::db::{Generation, create_private_dir};
use super::manifest::{FileEntry, Manifest, sync_dir};
use crate::keys::Key32;
use crate::types::OrgId;

/// Snapshot-and-open attempts per organization before the generation fails.
pub const ATTEMPTS: usize = 5;

/// The previous generation's segment copies, for deduplication.
#[derive(Debug)]
pub struct Previous {
    dir: PathBuf,
    files: HashMap<String, (u64, String)>,
}

impl Previous {
    /// The newest generation's manifest, if it is there and its MAC holds
    /// (a manifest we cannot trust is no basis for sharing files).
    pub fn load(g: Option<&Generation>, key: &Key32) -> Option<Previous> {
        let g = g?;
        let m = Manifest::read(&g.dir).ok().filter(|m| m.mac_ok(key) && m.generation == g.name)?;
        let files = m
            .files
            .into_iter()
            .filter(|f| is_segment(&f.path) || f.path.starts_with(AUDIT_PREFIX))
            .map(|f| (f.path, (f.size, f.sha256)))
            .collect();
        Some(Previous { dir: g.dir.clone(), files })
    }

    /// The previous copy of `rel` when it has exactly this size and hash,
    /// per its manifest and re-hashed: a copy damaged since is not shared
    /// into a new generation (the new one gets a fresh copy).
    fn same(&self, rel: &str, size: u64, sha: &str) -> Option<PathBuf> {
        let (s, h) = self.files.get(rel)?;
        if *s != size || h != sha {
            return None;
        }
        let path = self.dir.join(rel);
        match super::manifest::hash_file(&path) {
            Ok((s, h)) if s == size && h == sha => Some(path),
            _ => {
                tracing::warn!(segment = rel, "the previous backup copy is damaged; copying afresh");
                None
            }
        }
    }
}

/// Where the audit logs are in a generation, as in the data directory.
pub const AUDIT_PREFIX: &str = "audit/";

/// Copies the audit logs (`audit/<log>/…`, not the lock files) into the
/// generation at `tmp`, linking copies unchanged since the previous one.
/// Each log's `head` is copied before its segments, so a record appended
/// meanwhile lies after the copied head's durable end: `logs verify` reads
/// it as a torn tail (a note), never as damage.
pub fn copy_audit(
    data_dir: &Path,
    tmp: &Path,
    prev: Option<&Previous>,
    files: &mut Vec<FileEntry>,
) -> Result<(), String> {
    let audit = data_dir.join("audit");
    let Ok(rd) = std::fs::read_dir(&audit) else { return Ok(()) };
    let mut logs: Vec<String> = rd
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .collect();
    logs.sort();
    for log in logs {
        let dir = audit.join(&log);
        let mut names: Vec<String> = std::fs::read_dir(&dir)
            .map_err(|e| format!("cannot list {}: {e}", dir.display()))?
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
            .filter_map(|e| e.file_name().to_str().map(str::to_string))
            .filter(|n| n != "lock")
            .collect();
        names.sort_by_key(|n| (n != "head", n != "checkpoint", n.clone()));
        let dst_dir = tmp.join("audit").join(&log);
        create_private_dir(&dst_dir)?;
        for n in names {
            let rel = format!("{AUDIT_PREFIX}{log}/{n}");
            let src = match File::open(dir.join(&n)) {
                Ok(f) => f,
                // Removed meanwhile (a purge): it is not part of the log any more.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(format!("{rel}: {e}")),
            };
            let len = src.metadata().map_err(|e| format!("{rel}: {e}"))?.len();
            let (size, sha256) = copy_segment(src, len, &dst_dir.join(&n), &rel, prev)?;
            files.push(FileEntry { path: rel, size, sha256 });
        }
        sync_dir(&dst_dir).map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Copies the audit logs of a verified generation into `data_dir`, each
/// log only when the data directory has no such log: a restore onto an
/// empty directory gets them all, and a log that is still there (newer,
/// self-verifying) is never rolled back. Returns how many files were copied.
pub fn restore_audit(g_dir: &Path, m: &Manifest, data_dir: &Path, shredded: &BTreeSet<OrgId>) -> Result<usize, String> {
    let mut n = 0;
    for f in m.files.iter().filter(|f| f.path.starts_with(AUDIT_PREFIX)) {
        let Some((log, _)) = f.path[AUDIT_PREFIX.len()..].split_once('/') else { continue };
        let erased =
            log.strip_prefix("org-").and_then(|id| id.parse().ok()).is_some_and(|id| shredded.contains(&OrgId(id)));
        let live = data_dir.join("audit").join(log);
        let dst = data_dir.join(&f.path);
        if erased || (live.exists() && !live.join(".restoring").exists()) {
            continue;
        }
        if !live.exists() {
            create_private_dir(&live)?;
            std::fs::write(live.join(".restoring"), b"").map_err(|e| e.to_string())?;
        }
        std::fs::copy(g_dir.join(&f.path), &dst).map_err(|e| format!("cannot copy {}: {e}", f.path))?;
        File::open(&dst).and_then(|f| f.sync_all()).map_err(|e| e.to_string())?;
        n += 1;
    }
    if let Ok(rd) = std::fs::read_dir(data_dir.join("audit")) {
        for e in rd.flatten() {
            if e.path().join(".restoring").exists() {
                sync_dir(&e.path()).map_err(|e| e.to_string())?;
                std::fs::remove_file(e.path().join(".restoring")).map_err(|e| e.to_string())?;
            }
        }
    }
    Ok(n)
}

/// `store/orgs/<16 hex>/seg/<32 hex>.seg`
pub fn is_segment(rel: &str) -> bool {
    segment_org(rel).is_some()
}

/// The organization of a segment copy's relative path.
pub fn segment_org(rel: &str) -> Option<OrgId> {
    let rest = rel.strip_prefix("store/orgs/")?;
    let (hex, file) = rest.split_once("/seg/")?;
    let name = file.strip_suffix(".seg")?;
    let ok = hex.len() == 16 && name.len() == 32 && name.bytes().all(|b| b.is_ascii_hexdigit());
    ok.then(|| u64::from_str_radix(hex, 16).ok().map(OrgId)).flatten()
}

/// Copies the segments referenced by the meta.db snapshot at
/// `tmp/meta_rel` into `tmp`, appending their entries to `files`.
/// `resnapshot` takes that meta.db snapshot again (after a segment
/// vanished between snapshot and open).
pub fn copy_org_segments(
    data_dir: &Path,
    tmp: &Path,
    meta_rel: &str,
    prev: Option<&Previous>,
    files: &mut Vec<FileEntry>,
    resnapshot: &dyn Fn() -> Result<(), String>,
) -> Result<(), String> {
    let org_rel = meta_rel.strip_suffix("/meta.db").ok_or_else(|| format!("{meta_rel} is not a meta.db"))?;
    let seg_dir = data_dir.join(org_rel).join("seg");
    for attempt in 1..=ATTEMPTS {
        let segs = committed_segments(&tmp.join(meta_rel))?;
        match open_all(&seg_dir, &segs) {
            Ok(open) => {
                let dst_dir = tmp.join(org_rel).join("seg");
                create_private_dir(&dst_dir)?;
                for (name, len, file) in open {
                    let rel = format!("{org_rel}/seg/{name}.seg");
                    let (size, sha256) = copy_segment(file, len, &tmp.join(&rel), &rel, prev)?;
                    files.push(FileEntry { path: rel, size, sha256 });
                }
                return sync_dir(&dst_dir).map_err(|e| e.to_string());
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && attempt < ATTEMPTS => {
                tracing::info!(
                    org = org_rel,
                    attempt,
                    "a segment was compacted away after the snapshot; taking it again"
                );
                resnapshot()?;
            }
            Err(e) => return Err(format!("{org_rel}: cannot open a segment: {e}")),
        }
    }
    Err(format!("{org_rel}: segments kept vanishing during the backup"))
}

/// `(file name hex, committed length)` of every segment in a meta.db copy.
pub(crate) fn committed_segments(meta: &Path) -> Result<Vec<(String, u64)>, String> {
    let c = Connection::open_with_flags(meta, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|e| format!("{}: {e}", meta.display()))?;
    let mut st = c.prepare("SELECT name, len FROM segments ORDER BY id").map_err(|e| e.to_string())?;
    let rows = st.query_map([], |r| Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, i64>(1)?))).map_err(|e| e.to_string())?;
    let mut v = Vec::new();
    for row in rows {
        let (name, len) = row.map_err(|e| e.to_string())?;
        let len = u64::try_from(len).map_err(|_| format!("{}: negative segment length", meta.display()))?;
        if name.len() != 16 {
            return Err(format!("{}: a segment name is not 16 bytes", meta.display()));
        }
        v.push((hex::encode(name), len));
    }
    Ok(v)
}

fn open_all(seg_dir: &Path, segs: &[(String, u64)]) -> std::io::Result<Vec<(String, u64, File)>> {
    segs.iter().map(|(n, len)| Ok((n.clone(), *len, File::open(seg_dir.join(format!("{n}.seg")))?))).collect()
}

/// Copies the first `len` bytes of `src` to `dst` (mode 0600), or links
/// the previous generation's identical copy. Returns size and SHA-256.
fn copy_segment(src: File, len: u64, dst: &Path, rel: &str, prev: Option<&Previous>) -> Result<(u64, String), String> {
    let actual = src.metadata().map_err(|e| format!("{rel}: {e}"))?.len();
    if actual < len {
        // Committed bytes were fdatasynced before their commit (§8).
        return Err(format!("{rel}: {actual} bytes on disk, {len} committed"));
    }
    if let Some(p) = prev.filter(|p| p.files.get(rel).is_some_and(|(s, _)| *s == len)) {
        let sha = hash_prefix(&src, len).map_err(|e| format!("{rel}: {e}"))?;
        if let Some(old) = p.same(rel, len, &sha) {
            if std::fs::hard_link(&old, dst).is_ok() {
                return Ok((len, sha));
            }
            tracing::debug!(segment = rel, "cannot hard-link the previous copy; copying");
        }
    }
    let mut out = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(dst)
        .map_err(|e| format!("cannot create {}: {e}", dst.display()))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    // hash_prefix above may have moved the file position.
    (&src).seek(std::io::SeekFrom::Start(0)).map_err(|e| format!("{rel}: {e}"))?;
    let mut r = (&src).take(len);
    let mut n_total = 0u64;
    loop {
        let n = r.read(&mut buf).map_err(|e| format!("{rel}: {e}"))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        out.write_all(&buf[..n]).map_err(|e| format!("{}: {e}", dst.display()))?;
        n_total += n as u64;
    }
    if n_total != len {
        return Err(format!("{rel}: read {n_total} of {len} committed bytes"));
    }
    out.sync_all().map_err(|e| format!("{}: {e}", dst.display()))?;
    Ok((len, hex::encode(h.finalize())))
}

fn hash_prefix(f: &File, len: u64) -> std::io::Result<String> {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut r = f.take(len);
    loop {
        let n = r.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}

/// Restores the segment copies of a verified generation `g` (manifest `m`):
/// for each organization with segments in it (and not in `shredded`), the
/// current `seg` directory is moved into `replaced` and the copies are
/// copied (never linked: the server appends to them) into place. Returns
/// how many files were copied.
pub fn restore_segments(
    g_dir: &Path,
    m: &Manifest,
    data_dir: &Path,
    replaced: &Path,
    shredded: &BTreeSet<OrgId>,
) -> Result<usize, String> {
    let segs: Vec<&FileEntry> =
        m.files.iter().filter(|f| segment_org(&f.path).is_some_and(|o| !shredded.contains(&o))).collect();
    let orgs: BTreeSet<String> =
        segs.iter().filter_map(|f| f.path.rsplit_once("/seg/").map(|(o, _)| o.to_string())).collect();
    for org_rel in &orgs {
        let cur = data_dir.join(org_rel).join("seg");
        if cur.exists() {
            let aside = replaced.join(org_rel);
            create_private_dir(&aside)?;
            std::fs::rename(&cur, aside.join("seg"))
                .map_err(|e| format!("cannot move {} aside: {e}", cur.display()))?;
        }
        create_private_dir(&cur)?;
    }
    for f in &segs {
        std::fs::copy(g_dir.join(&f.path), data_dir.join(&f.path))
            .map_err(|e| format!("cannot copy {}: {e}", f.path))?;
        File::open(data_dir.join(&f.path)).and_then(|f| f.sync_all()).map_err(|e| e.to_string())?;
    }
    for org_rel in &orgs {
        sync_dir(&data_dir.join(org_rel).join("seg")).map_err(|e| e.to_string())?;
    }
    Ok(segs.len())
}

#[cfg(test)]
#[path = "data_tests.rs"]
mod tests;
