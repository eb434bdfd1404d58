//! `manifest.json` of a database backup generation: every file with its
//! size and SHA-256, authenticated by an HMAC-SHA256 under a key derived
//! from the master key (docs/backup.md "Format"). Without the master key
//! nobody can alter a generation so that `verify` still passes.

use std::io::Read;
use std::path::{Component, Path};

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::keys::{Key32, MasterKey};

/// File name of the manifest inside a generation directory.
pub const MANIFEST: &str = "manifest.json";
/// Current manifest format.
pub const FORMAT: u32 = 1;
/// Largest manifest read from disk (a generation lists one file per organization).
const MAX_MANIFEST: u64 = 64 << 20;

type HmacSha256 = Hmac<Sha256>;

/// The manifest MAC key: `MK ─HKDF "smbvault/mk/backup-manifest"`.
pub fn mac_key(mk: &MasterKey) -> Key32 {
    mk.derive("smbvault/mk/backup-manifest")
}

/// One backed-up database file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    /// Path relative to the generation (and to the data directory), '/'-separated.
    pub path: String,
    /// Length in bytes.
    pub size: u64,
    /// SHA-256 of the content, lowercase hex.
    pub sha256: String,
}

/// What a generation holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// [`FORMAT`].
    pub format: u32,
    /// Generation name (its directory name), bound into the MAC so a
    /// manifest cannot be moved to another generation.
    pub generation: String,
    /// When the snapshot was taken, RFC 3339 in JST.
    pub created: String,
    /// The same instant, seconds since the Unix epoch.
    pub created_unix: i64,
    /// The database copies.
    pub files: Vec<FileEntry>,
    /// HMAC-SHA256 (hex) over this manifest serialized with `mac` empty.
    pub mac: String,
}

impl Manifest {
    fn mac_of(&self, key: &Key32) -> HmacSha256 {
        let mut body = self.clone();
        body.mac.clear();
        // Struct fields serialize in declaration order: the bytes are stable.
        let bytes = serde_json::to_vec(&body).unwrap_or_default();
        let mut m =
            <HmacSha256 as Mac>::new_from_slice(key.expose()).unwrap_or_else(|_| unreachable!("HMAC takes any key"));
        m.update(b"smbvault-backup-manifest1");
        m.update(&bytes);
        m
    }

    /// Computes and sets `mac`.
    pub fn seal(&mut self, key: &Key32) {
        self.mac = hex::encode(self.mac_of(key).finalize().into_bytes());
    }

    /// Checks `mac` in constant time.
    pub fn mac_ok(&self, key: &Key32) -> bool {
        hex::decode(&self.mac).is_ok_and(|tag| self.mac_of(key).verify_slice(&tag).is_ok())
    }

    /// Writes `dir/manifest.json` atomically (temporary file, fsync, rename).
    pub fn write(&self, dir: &Path) -> std::io::Result<()> {
        let text = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        let tmp = dir.join(".manifest.json.tmp");
        write_synced(&tmp, &text)?;
        std::fs::rename(&tmp, dir.join(MANIFEST))?;
        sync_dir(dir)
    }

    /// Reads `dir/manifest.json` (not verified: see [`verify_generation`]).
    pub fn read(dir: &Path) -> Result<Manifest, String> {
        let path = dir.join(MANIFEST);
        let f = std::fs::File::open(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let mut text = Vec::new();
        f.take(MAX_MANIFEST).read_to_end(&mut text).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        serde_json::from_slice(&text).map_err(|e| format!("{} is not a valid manifest: {e}", path.display()))
    }
}

/// Size and SHA-256 of a file, streamed.
pub fn hash_file(path: &Path) -> std::io::Result<(u64, String)> {
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        size += n as u64;
    }
    Ok((size, hex::encode(h.finalize())))
}

/// A manifest path must stay inside the generation: relative, no `..`.
pub fn safe_relative(path: &str) -> bool {
    let p = Path::new(path);
    !path.is_empty() && p.components().all(|c| matches!(c, Component::Normal(_)))
}

/// Checks a generation: the manifest MAC, then every listed file's size and
/// hash, and that no unlisted file is present. Returns the problems found
/// (empty: intact) and the manifest when it could be read.
pub fn verify_generation(dir: &Path, name: &str, key: &Key32) -> (Vec<String>, Option<Manifest>) {
    let m = match Manifest::read(dir) {
        Ok(m) => m,
        Err(e) => return (vec![e], None),
    };
    let mut problems = Vec::new();
    if !m.mac_ok(key) {
        problems.push("manifest.json fails its MAC (altered, or made with another master key)".to_string());
    }
    if m.format != FORMAT {
        problems.push(format!("manifest format {} is not supported (expected {FORMAT})", m.format));
    }
    if m.generation != name {
        problems.push(format!("manifest belongs to generation {:?}, found in {name:?}", m.generation));
    }
    for f in &m.files {
        if !safe_relative(&f.path) {
            problems.push(format!("manifest lists an unsafe path {:?}", f.path));
            continue;
        }
        match hash_file(&dir.join(&f.path)) {
            Ok((size, sha)) if size == f.size && sha == f.sha256 => {}
            Ok((size, _)) if size != f.size => problems.push(format!("{}: size {size}, expected {}", f.path, f.size)),
            Ok(_) => problems.push(format!("{}: SHA-256 differs (content altered or damaged)", f.path)),
            Err(e) => problems.push(format!("{}: {e}", f.path)),
        }
    }
    let listed: std::collections::HashSet<&str> = m.files.iter().map(|f| f.path.as_str()).collect();
    for extra in list_files(dir).into_iter().filter(|p| p != MANIFEST && !listed.contains(p.as_str())) {
        problems.push(format!("{extra}: not listed in the manifest"));
    }
    (problems, Some(m))
}

/// Every regular file under `dir`, relative, '/'-separated, sorted.
pub fn list_files(dir: &Path) -> Vec<String> {
    fn walk(base: &Path, rel: &str, out: &mut Vec<String>) {
        let Ok(rd) = std::fs::read_dir(base.join(rel)) else { return };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let r = if rel.is_empty() { name } else { format!("{rel}/{name}") };
            match e.file_type() {
                Ok(t) if t.is_dir() => walk(base, &r, out),
                Ok(_) => out.push(r),
                Err(_) => {}
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, "", &mut out);
    out.sort();
    out
}

/// Writes a file and fsyncs it.
pub fn write_synced(path: &Path, data: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut f = std::fs::File::create(path)?;
    f.write_all(data)?;
    f.sync_all()
}

/// fsyncs a directory so renames and creations in it are durable.
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(dir: &Path, key: &Key32) -> Manifest {
        std::fs::write(dir.join("accounts.db"), b"database bytes").unwrap();
        let (size, sha256) = hash_file(&dir.join("accounts.db")).unwrap();
        let mut m = Manifest {
            format: FORMAT,
            generation: "20261125T090000+0900".into(),
            created: "2026-11-25T09:00:00+09:00".into(),
            created_unix: 1_795_564_800,
            files: vec![FileEntry { path: "accounts.db".into(), size, sha256 }],
            mac: String::new(),
        };
        m.seal(key);
        m.write(dir).unwrap();
        m
    }

    #[test]
    fn intact_generation_verifies() {
        let d = tempfile::tempdir().unwrap();
        let key = Key32::random();
        sample(d.path(), &key);
        let (problems, m) = verify_generation(d.path(), "20261125T090000+0900", &key);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(m.unwrap().files.len(), 1);
    }

    #[test]
    fn tampering_is_detected() {
        let d = tempfile::tempdir().unwrap();
        let key = Key32::random();
        let gen_name = "20261125T090000+0900";
        let m = sample(d.path(), &key);

        // A flipped byte in a database copy.
        std::fs::write(d.path().join("accounts.db"), b"database bytez").unwrap();
        let (p, _) = verify_generation(d.path(), gen_name, &key);
        assert!(p.iter().any(|p| p.contains("SHA-256")), "{p:?}");

        // A manifest edited to match the altered file fails its MAC.
        let mut forged = m.clone();
        forged.files[0].sha256 = hash_file(&d.path().join("accounts.db")).unwrap().1;
        forged.write(d.path()).unwrap();
        let (p, _) = verify_generation(d.path(), gen_name, &key);
        assert!(p.iter().any(|p| p.contains("MAC")), "{p:?}");

        // Another master key, another generation name, an extra file.
        m.write(d.path()).unwrap();
        std::fs::write(d.path().join("accounts.db"), b"database bytes").unwrap();
        assert!(!verify_generation(d.path(), gen_name, &Key32::random()).0.is_empty());
        assert!(!verify_generation(d.path(), "20261126T090000+0900", &key).0.is_empty());
        std::fs::write(d.path().join("stray.db"), b"x").unwrap();
        let (p, _) = verify_generation(d.path(), gen_name, &key);
        assert!(p.iter().any(|p| p.contains("stray.db")), "{p:?}");
    }

    #[test]
    fn unsafe_paths_are_refused() {
        assert!(safe_relative("store/orgs/0000000000000001/meta.db"));
        for p in ["", "/etc/passwd", "../x", "store/../../x", "./a"] {
            assert!(!safe_relative(p), "{p}");
        }
    }
}
