//! Daily database backups (docs/backup.md): a generation is a directory
//! named by its JST time (`20261125T090000+0900`) holding a consistent copy
//! of every SQLite database the server owns, at the same relative paths as
//! in the data directory, plus a MACed `manifest.json`.
//!
//! ```text
//! <backups>/20261125T090000+0900/accounts.db
//!                                store/keys.db
//!                                store/orgs/<org, 16 hex>/meta.db
//!                                manifest.json
//! ```
//!
//! Copies are made with `VACUUM INTO`, which reads one committed snapshot
//! of the source while other connections (the running server) keep
//! writing, and writes a compact file without free pages. A generation is
//! built in `.tmp-<name>` and renamed into place once complete, so a crash
//! never leaves a half generation under a real name. One lock file
//! serializes the server's schedule, `smbvault backup` and shredding.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OpenFlags};

use super::manifest::{self, FileEntry, Manifest, sync_dir};
use crate::keys::Key32;
use crate::types::OrgId;

/// Relative path of the accounts database.
pub const ACCOUNTS_DB: &str = "accounts.db";
/// Relative path of the organization keys (the crypto-shredding anchor).
pub const KEYS_DB: &str = "store/keys.db";
/// Relative path of the master key's slot file: the master key wrapped
/// under the key file and passphrases. Not the secret itself, but what a
/// key file (or passphrase) needs to open every other file of a generation.
pub const SLOTS_FILE: &str = "keys/master.slots";

/// One generation as listed.
#[derive(Debug, Clone)]
pub struct Generation {
    /// Directory name, e.g. `20261125T090000+0900`.
    pub name: String,
    /// Its directory.
    pub dir: PathBuf,
    /// When it was taken (from the name).
    pub time: SystemTime,
}

/// The database backups of one data directory.
pub struct DbBackups {
    data_dir: PathBuf,
    dir: PathBuf,
    generations: u32,
    mac_key: Key32,
    /// Data backups (`[backup] data_target`): segment files too ([`super::data`]).
    segments: bool,
}

impl std::fmt::Debug for DbBackups {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DbBackups").field("dir", &self.dir).field("generations", &self.generations).finish()
    }
}

/// `<data_dir>/backups/db` unless `[backup] db_dir` says otherwise.
pub fn default_dir(data_dir: &Path, configured: Option<&Path>) -> PathBuf {
    configured.map_or_else(|| data_dir.join("backups").join("db"), Path::to_path_buf)
}

/// Parses a generation name (`YYYYmmddTHHMMSS+0900`, optionally `-N`).
pub fn parse_name(name: &str) -> Option<SystemTime> {
    let stamp = name.get(..20)?;
    let rest = &name[20..];
    if !(rest.is_empty()
        || rest.strip_prefix('-').is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())))
    {
        return None;
    }
    let t = DateTime::parse_from_str(stamp, "%Y%m%dT%H%M%S%z").ok()?;
    Some(SystemTime::from(t.with_timezone(&Utc)))
}

pub(crate) fn format_name(t: SystemTime) -> String {
    crate::types::jst::stamp(t)
}

impl DbBackups {
    /// Backups of `data_dir` kept in `dir`, `generations` of them (at least 1),
    /// manifests MACed with `mac_key` ([`manifest::mac_key`]).
    pub fn new(data_dir: &Path, dir: PathBuf, generations: u32, mac_key: Key32) -> Self {
        Self { data_dir: data_dir.to_path_buf(), dir, generations: generations.max(1), mac_key, segments: false }
    }

    /// Data backups: each generation also holds the segment files its
    /// meta.db copies reference ([`super::data`]).
    pub fn with_segments(mut self) -> Self {
        self.segments = true;
        self
    }

    /// Whether generations hold segment files (data backups).
    pub fn includes_segments(&self) -> bool {
        self.segments
    }

    /// The data directory backed up.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Where generations live.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The manifest MAC key.
    pub fn mac_key(&self) -> &Key32 {
        &self.mac_key
    }

    /// Takes the backup lock (blocking): one writer of generations at a time.
    pub fn lock(&self) -> Result<std::fs::File, String> {
        create_private_dir(&self.dir)?;
        let path = self.dir.join(".lock");
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
        f.lock().map_err(|e| format!("cannot lock {}: {e}", path.display()))?;
        Ok(f)
    }

    /// Generations, oldest first. Temporary and unknown directories are skipped.
    pub fn list(&self) -> Vec<Generation> {
        let Ok(rd) = std::fs::read_dir(&self.dir) else { return Vec::new() };
        let mut v: Vec<Generation> = rd
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .filter_map(|e| {
                let name = e.file_name().to_str()?.to_string();
                let time = parse_name(&name)?;
                Some(Generation { dir: e.path(), name, time })
            })
            .collect();
        v.sort_by(|a, b| (a.time, &a.name).cmp(&(b.time, &b.name)));
        v
    }

    /// The generation called `name`, with a hint when there is none.
    pub fn find(&self, name: &str) -> Result<Generation, String> {
        self.list().into_iter().find(|g| g.name == name).ok_or_else(|| {
            format!("no backup generation {name:?} in {}; see `smbvault backup list`", self.dir.display())
        })
    }

    /// Checks one generation (see [`manifest::verify_generation`]).
    pub fn verify(&self, g: &Generation) -> Vec<String> {
        manifest::verify_generation(&g.dir, &g.name, &self.mac_key).0
    }

    /// Makes a new generation at `now`, then deletes the oldest beyond the
    /// configured number. Safe while the server runs.
    pub fn create(&self, now: SystemTime) -> Result<Generation, String> {
        let _lock = self.lock()?;
        let name = self.free_name(now);
        let tmp = self.dir.join(format!(".tmp-{name}"));
        let _ = std::fs::remove_dir_all(&tmp);
        create_private_dir(&tmp)?;
        let mut files = Vec::new();
        // Data backups link unchanged segment copies from the newest generation.
        let prev = if self.segments { super::data::Previous::load(self.list().last(), &self.mac_key) } else { None };
        for rel in self.databases()? {
            let dst = tmp.join(&rel);
            if let Some(p) = dst.parent() {
                create_private_dir(p)?;
            }
            let src = self.data_dir.join(&rel);
            snapshot(&src, &dst).map_err(|e| format!("cannot back up {rel}: {e}"))?;
            if self.segments && rel.ends_with("/meta.db") {
                let resnapshot = || {
                    let _ = std::fs::remove_file(&dst);
                    snapshot(&src, &dst).map_err(|e| format!("cannot back up {rel}: {e}"))
                };
                super::data::copy_org_segments(&self.data_dir, &tmp, &rel, prev.as_ref(), &mut files, &resnapshot)?;
            }
            let (size, sha256) = manifest::hash_file(&dst).map_err(|e| format!("cannot read back {rel}: {e}"))?;
            files.push(FileEntry { path: rel, size, sha256 });
        }
        // What recovery needs besides the secret: the slot file, and for
        // data backups the audit logs (docs/backup.md "Disaster recovery").
        let slots = self.data_dir.join(SLOTS_FILE);
        if slots.is_file() {
            let dst = tmp.join(SLOTS_FILE);
            create_private_dir(dst.parent().unwrap_or(&tmp))?;
            std::fs::copy(&slots, &dst).map_err(|e| format!("cannot back up {SLOTS_FILE}: {e}"))?;
            std::fs::File::open(&dst).and_then(|f| f.sync_all()).map_err(|e| e.to_string())?;
            let (size, sha256) =
                manifest::hash_file(&dst).map_err(|e| format!("cannot read back {SLOTS_FILE}: {e}"))?;
            files.push(FileEntry { path: SLOTS_FILE.into(), size, sha256 });
        }
        if self.segments {
            super::data::copy_audit(&self.data_dir, &tmp, prev.as_ref(), &mut files)?;
        }
        let created = crate::types::jst::at(now);
        let mut m = Manifest {
            format: manifest::FORMAT,
            generation: name.clone(),
            created: created.to_rfc3339(),
            created_unix: created.timestamp(),
            files,
            mac: String::new(),
        };
        m.seal(&self.mac_key);
        m.write(&tmp).map_err(|e| format!("cannot write the manifest: {e}"))?;
        let dir = self.dir.join(&name);
        std::fs::rename(&tmp, &dir).map_err(|e| format!("cannot move {} into place: {e}", tmp.display()))?;
        sync_dir(&self.dir).map_err(|e| e.to_string())?;
        self.rotate()?;
        Ok(Generation { name, dir, time: now })
    }

    /// `now`'s name, with `-1`, `-2`… when that second already has one.
    fn free_name(&self, now: SystemTime) -> String {
        let base = format_name(now);
        let mut name = base.clone();
        let mut n = 0;
        while self.dir.join(&name).exists() {
            n += 1;
            name = format!("{base}-{n}");
        }
        name
    }

    /// Keeps the newest `generations`; deletes older ones and leftovers of
    /// interrupted runs (`.tmp-*`). Called with the lock held.
    fn rotate(&self) -> Result<(), String> {
        let gens = self.list();
        let excess = gens.len().saturating_sub(self.generations as usize);
        for g in &gens[..excess] {
            std::fs::remove_dir_all(&g.dir).map_err(|e| format!("cannot delete old generation {}: {e}", g.name))?;
            tracing::info!(generation = %g.name, segments = self.segments, "old backup generation deleted");
        }
        if let Ok(rd) = std::fs::read_dir(&self.dir) {
            for e in rd.flatten().filter(|e| e.file_name().to_string_lossy().starts_with(".tmp-")) {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
        sync_dir(&self.dir).map_err(|e| e.to_string())
    }

    /// Relative paths of every database to back up: accounts.db, keys.db,
    /// and each organization's meta.db.
    fn databases(&self) -> Result<Vec<String>, String> {
        let mut v = Vec::new();
        for rel in [ACCOUNTS_DB, KEYS_DB] {
            if !self.data_dir.join(rel).is_file() {
                return Err(format!(
                    "{} is missing: is {} an initialized data directory?",
                    rel,
                    self.data_dir.display()
                ));
            }
            v.push(rel.to_string());
        }
        let orgs = self.data_dir.join("store").join("orgs");
        let mut metas: Vec<String> = std::fs::read_dir(&orgs)
            .map_err(|e| format!("cannot list {}: {e}", orgs.display()))?
            .flatten()
            .filter_map(|e| e.file_name().to_str().map(str::to_string))
            .filter(|n| n.len() == 16 && n.bytes().all(|b| b.is_ascii_hexdigit()))
            .filter(|n| orgs.join(n).join("meta.db").is_file())
            .map(|n| format!("store/orgs/{n}/meta.db"))
            .collect();
        metas.sort();
        v.extend(metas);
        Ok(v)
    }

    /// Removes an organization from every generation ([`super::purge`]).
    /// Idempotent; also purges the keys.db of files set aside by restores
    /// (`<data_dir>/backups/replaced-*`). Returns how many were changed.
    pub fn purge_org(&self, org: OrgId) -> Result<usize, String> {
        let _lock = self.lock()?;
        let mut changed = 0;
        for g in self.list() {
            if super::purge::generation(&g.dir, &self.mac_key, org)
                .map_err(|e| format!("generation {}: {e}", g.name))?
            {
                changed += 1;
            }
        }
        for dir in replaced_dirs(&self.data_dir) {
            let keys = super::purge::keys_db(&dir.join(KEYS_DB), org)?;
            let accounts = super::purge::accounts_db(&dir.join(ACCOUNTS_DB), org)?;
            // Segments set aside by a data restore: encrypted under the
            // shredded key already; deleted so nothing of the org remains.
            let segs = dir.join("store").join("orgs").join(format!("{:016x}", org.0)).join("seg");
            let removed = self.segments && segs.exists();
            if removed {
                std::fs::remove_dir_all(&segs).map_err(|e| format!("cannot delete {}: {e}", segs.display()))?;
            }
            if keys || accounts || removed {
                changed += 1;
            }
        }
        Ok(changed)
    }

    /// Age of the newest generation at `now` (`None`: there is none).
    pub fn newest_age(&self, now: SystemTime) -> Option<Duration> {
        self.list().last().map(|g| now.duration_since(g.time).unwrap_or_default())
    }
}

/// `<data_dir>/backups/replaced-*` directories (files set aside by restores).
pub fn replaced_dirs(data_dir: &Path) -> Vec<PathBuf> {
    let Ok(rd) = std::fs::read_dir(data_dir.join("backups")) else { return Vec::new() };
    rd.flatten().filter(|e| e.file_name().to_string_lossy().starts_with("replaced-")).map(|e| e.path()).collect()
}

/// `VACUUM INTO` one database: a consistent, compact copy of its last
/// committed state, then switched to rollback-journal mode so the copy is a
/// single self-contained file.
pub(crate) fn snapshot(src: &Path, dst: &Path) -> rusqlite::Result<()> {
    let conn = Connection::open_with_flags(src, OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX)?;
    conn.busy_timeout(Duration::from_secs(30))?;
    let target = dst.to_str().ok_or_else(|| rusqlite::Error::InvalidPath(dst.to_path_buf()))?;
    conn.execute("VACUUM INTO ?1", [target])?;
    drop(conn);
    let copy = Connection::open(dst)?;
    let _: String = copy.query_row("PRAGMA journal_mode=DELETE", [], |r| r.get(0))?;
    drop(copy);
    std::fs::File::open(dst).and_then(|f| f.sync_all()).map_err(|e| rusqlite::Error::InvalidPath(e.to_string().into()))
}

/// Creates a directory (and parents) with mode 0700.
pub fn create_private_dir(dir: &Path) -> Result<(), String> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| format!("cannot create {}: {e}", dir.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A data directory with the three kinds of database (plain SQLite, no keys).
    fn data_dir() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        let a = Connection::open(d.path().join(ACCOUNTS_DB)).unwrap();
        a.execute_batch("PRAGMA journal_mode=WAL; CREATE TABLE t(v TEXT); INSERT INTO t VALUES('before');").unwrap();
        std::fs::create_dir_all(d.path().join("store/orgs/0000000000000001")).unwrap();
        let k = Connection::open(d.path().join(KEYS_DB)).unwrap();
        k.execute_batch(
            "CREATE TABLE org_keys(org INTEGER PRIMARY KEY, wrapped BLOB NOT NULL);
             CREATE TABLE shredded(org INTEGER PRIMARY KEY);
             INSERT INTO org_keys VALUES(1, x'00112233');",
        )
        .unwrap();
        Connection::open(d.path().join("store/orgs/0000000000000001/meta.db"))
            .unwrap()
            .execute_batch("CREATE TABLE nodes(id INTEGER);")
            .unwrap();
        d
    }

    fn t(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn names_are_jst_and_parse_back() {
        // 2026-11-25T00:00:00Z is 09:00 in Tokyo.
        assert_eq!(format_name(t(1_795_564_800)), "20261125T090000+0900");
        assert_eq!(parse_name("20261125T090000+0900"), Some(t(1_795_564_800)));
        assert_eq!(parse_name("20261125T090000+0900-2"), Some(t(1_795_564_800)));
        for bad in ["", ".tmp-20261125T090000+0900", "20261125T090000+0900-", "20261125T090000+0900x"] {
            assert_eq!(parse_name(bad), None, "{bad}");
        }
    }

    #[test]
    fn keeps_the_newest_generations() {
        let d = data_dir();
        let b = DbBackups::new(d.path(), d.path().join("backups/db"), 7, Key32::random());
        let start = 1_795_564_800;
        for day in 0..9 {
            b.create(t(start + day * 86_400)).unwrap();
        }
        // Two in the same second get distinct names.
        let same = b.create(t(start + 9 * 86_400)).unwrap();
        let again = b.create(t(start + 9 * 86_400)).unwrap();
        assert_eq!(again.name, format!("{}-1", same.name));
        let gens = b.list();
        assert_eq!(gens.len(), 7);
        assert_eq!(gens[0].time, t(start + 4 * 86_400), "the oldest were deleted");
        assert_eq!(gens.last().unwrap().name, again.name);
        for g in &gens {
            assert!(b.verify(g).is_empty(), "{}: {:?}", g.name, b.verify(g));
        }
        let m = manifest::Manifest::read(&gens[0].dir).unwrap();
        let paths: Vec<&str> = m.files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(paths, [ACCOUNTS_DB, KEYS_DB, "store/orgs/0000000000000001/meta.db"]);
        // The copies are self-contained files: no WAL or shared memory.
        assert!(manifest::list_files(&gens[0].dir).iter().all(|f| !f.ends_with("-wal") && !f.ends_with("-shm")));
        assert!(b.newest_age(t(start + 9 * 86_400 + 60)).unwrap() == Duration::from_secs(60));
    }

    #[test]
    fn restore_puts_the_databases_back_and_keeps_the_replaced_ones() {
        let d = data_dir();
        let b = DbBackups::new(d.path(), d.path().join("backups/db"), 7, Key32::random());
        let g = b.create(t(1_795_564_800)).unwrap();
        let a = Connection::open(d.path().join(ACCOUNTS_DB)).unwrap();
        a.execute("UPDATE t SET v='after'", []).unwrap();
        drop(a);
        // A damaged generation is refused before anything changes.
        let copy = g.dir.join(ACCOUNTS_DB);
        let mut bytes = std::fs::read(&copy).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        std::fs::write(&copy, &bytes).unwrap();
        let mk = crate::keys::MasterKey::from_key(Key32::random());
        let cfg = crate::config::AccountsConfig::default();
        let e = super::super::restore::restore(&b, &g, d.path(), &mk, &cfg, t(1_795_600_000)).unwrap_err();
        assert!(e.contains("failed verification"), "{e}");
        bytes[last] ^= 1;
        std::fs::write(&copy, &bytes).unwrap();

        let r = super::super::restore::restore(&b, &g, d.path(), &mk, &cfg, t(1_795_600_000)).unwrap();
        assert_eq!(r.files, 3);
        let v: String = Connection::open(d.path().join(ACCOUNTS_DB))
            .unwrap()
            .query_row("SELECT v FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v, "before");
        let old: String = Connection::open(r.replaced_dir.join(ACCOUNTS_DB))
            .unwrap()
            .query_row("SELECT v FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(old, "after");
    }
}
