//! The master key (MK): 256 random bits that never touch the disk in clear.
//!
//! MK is wrapped once per *slot* (LUKS style) in `master.slots`: a key-file
//! slot whose key-encryption key is 32 random bytes in a mode-0600 file, and
//! optionally passphrase slots whose KEK comes from Argon2id. Changing a
//! passphrase rewrites one slot; nothing else is re-encrypted.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::{Key32, KeyError, SealKey};

const SLOT_AD_KEYFILE: &[u8] = b"smbvault/mk-slot/keyfile";
const SLOT_AD_PASSPHRASE: &[u8] = b"smbvault/mk-slot/passphrase";
/// Argon2id cost for passphrase slots: RFC 9106's second recommended
/// setting (64 MiB, t=3, p=4), about 0.1 s here, paid once per unlock.
const ARGON_M_KIB: u32 = 64 * 1024;
const ARGON_T: u32 = 3;
const ARGON_P: u32 = 4;

/// How the master key is unlocked.
#[derive(Clone)]
pub enum Unlock {
    /// A file of 32 random bytes; created with mode 0600 on first start.
    KeyFile(PathBuf),
    /// A passphrase run through Argon2id.
    Passphrase(Zeroizing<String>),
}

impl std::fmt::Debug for Unlock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unlock::KeyFile(p) => write!(f, "KeyFile({})", p.display()),
            Unlock::Passphrase(_) => f.write_str("Passphrase(..)"),
        }
    }
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Slot {
    Keyfile { wrapped: String },
    Passphrase { salt: String, m_kib: u32, t: u32, p: u32, wrapped: String },
}

#[derive(Serialize, Deserialize)]
struct SlotsFile {
    version: u32,
    slots: Vec<Slot>,
}

/// The unlocked master key. Zeroized on drop.
///
/// Besides MK itself it carries the *kept* purpose keys (super::rotate):
/// after a rotation, the keys of things that are never rewritten (audit
/// chains, backup manifests, NT-hash seal, anchors) come from keys.db,
/// wrapped under the current MK, instead of being derived from it.
#[derive(Clone, Debug)]
pub struct MasterKey {
    key: Key32,
    kept: Arc<BTreeMap<String, Key32>>,
}

impl MasterKey {
    /// Wraps an existing key (tests and restores).
    pub fn from_key(k: Key32) -> Self {
        Self { key: k, kept: Arc::default() }
    }

    /// The same master key with these kept purpose keys.
    pub(super) fn with_kept_keys(&self, kept: BTreeMap<String, Key32>) -> Self {
        Self { key: self.key.clone(), kept: Arc::new(kept) }
    }

    /// Whether purpose keys are kept (the key was rotated at least once).
    pub fn has_kept_keys(&self) -> bool {
        !self.kept.is_empty()
    }

    /// The raw key, for deriving purpose keys.
    pub fn key(&self) -> &Key32 {
        &self.key
    }

    /// A purpose-specific key derived from MK, e.g.
    /// `derive("smbvault/mk/org-wrap")`. Never use MK itself on data.
    /// A kept purpose key (after a rotation) is returned as stored.
    pub fn derive(&self, label: &str) -> Key32 {
        match self.kept.get(label) {
            Some(k) => k.clone(),
            None => self.key.derive(label, b""),
        }
    }

    /// Opens the master key described by `slots_path`, creating a new one
    /// (and, for `Unlock::KeyFile`, the key file) when neither exists yet.
    /// Returns the key and whether it was created now.
    pub fn open_or_create(slots_path: &Path, unlock: &Unlock) -> Result<(Self, bool), KeyError> {
        if slots_path.exists() {
            return Ok((Self::open(slots_path, unlock)?, false));
        }
        if let Unlock::KeyFile(kf) = unlock
            && kf.exists()
        {
            return Err(KeyError::Unlock(format!(
                "key file {} exists but the slot file {} is missing; restore {} from backup \
                     or point `keys.key_file` at a fresh path to start an empty server",
                kf.display(),
                slots_path.display(),
                slots_path.display()
            )));
        }
        Ok((Self::create(slots_path, unlock)?, true))
    }

    /// Makes a new master key with one slot for `unlock` (an existing key
    /// file is used as it is), replacing any slot file at `slots_path`.
    pub fn create(slots_path: &Path, unlock: &Unlock) -> Result<Self, KeyError> {
        let mk = Key32::random();
        let slot = make_slot(&mk, unlock)?;
        write_slots(slots_path, &SlotsFile { version: 1, slots: vec![slot] })?;
        Ok(Self::from_key(mk))
    }

    /// Opens an existing master key with any slot that `unlock` fits.
    pub fn open(slots_path: &Path, unlock: &Unlock) -> Result<Self, KeyError> {
        let text = fs::read_to_string(slots_path).map_err(|e| {
            KeyError::Unlock(format!(
                "cannot read master key slots {}: {e}; check the data directory path and permissions",
                slots_path.display()
            ))
        })?;
        let file: SlotsFile = serde_json::from_str(&text)
            .map_err(|e| KeyError::Unlock(format!("{} is not a valid slot file: {e}", slots_path.display())))?;
        for slot in &file.slots {
            if let Some(mk) = try_slot(slot, unlock)? {
                return Ok(Self::from_key(mk));
            }
        }
        Err(KeyError::Unlock(match unlock {
            Unlock::KeyFile(p) => format!(
                "the key file {} does not unlock {}; use the key file created with this data directory",
                p.display(),
                slots_path.display()
            ),
            Unlock::Passphrase(_) => format!(
                "the passphrase does not unlock {}; check it, or unlock with the key file",
                slots_path.display()
            ),
        }))
    }

    /// Adds a slot so that `unlock` also opens this master key.
    pub fn add_slot(&self, slots_path: &Path, unlock: &Unlock) -> Result<(), KeyError> {
        let text = fs::read_to_string(slots_path)
            .map_err(|e| KeyError::Unlock(format!("cannot read {}: {e}", slots_path.display())))?;
        let mut file: SlotsFile =
            serde_json::from_str(&text).map_err(|e| KeyError::Unlock(format!("{}: {e}", slots_path.display())))?;
        file.slots.push(make_slot(&self.key, unlock)?);
        write_slots(slots_path, &file)
    }
}

/// AD of the wrapped key in a recovery file.
const RECOVERY_AD: &[u8] = b"smbvault/mk-recovery";
/// `format` of a recovery file.
const RECOVERY_FORMAT: &str = "smbvault-recovery-1";
/// Shortest recovery passphrase accepted: it alone guards every backup.
pub const RECOVERY_MIN_LEN: usize = 12;

/// A recovery file: the master key wrapped under a recovery passphrase
/// (Argon2id), for restoring backups on a machine that has nothing else.
#[derive(Serialize, Deserialize)]
struct RecoveryFile {
    format: String,
    created: String,
    /// Identifies the master key (not secret): HKDF "smbvault/mk/key-id", 8 bytes hex.
    key_id: String,
    slot: Slot,
}

impl MasterKey {
    /// A short, non-secret identifier of this master key (16 hex digits).
    pub fn key_id(&self) -> String {
        hex::encode(&self.derive("smbvault/mk/key-id").expose()[..8])
    }

    /// Writes a recovery file (mode 0600, never over an existing file).
    pub fn export_recovery(&self, path: &Path, passphrase: &str, created: &str) -> Result<(), KeyError> {
        if passphrase.chars().count() < RECOVERY_MIN_LEN {
            return Err(KeyError::Unlock(format!(
                "the recovery passphrase must have at least {RECOVERY_MIN_LEN} characters"
            )));
        }
        let Slot::Passphrase { salt, m_kib, t, p, .. } =
            make_slot(&self.key, &Unlock::Passphrase(Zeroizing::new(passphrase.to_string())))?
        else {
            unreachable!("a passphrase unlock makes a passphrase slot")
        };
        // Same KDF as a slot, but its own AD: a recovery file is not a slot.
        let kek = argon_kek(passphrase, &hex::decode(&salt).unwrap_or_default(), m_kib, t, p)?;
        let wrapped = hex::encode(SealKey::new(&kek).wrap_key(RECOVERY_AD, &self.key));
        let file = RecoveryFile {
            format: RECOVERY_FORMAT.into(),
            created: created.into(),
            key_id: self.key_id(),
            slot: Slot::Passphrase { salt, m_kib, t, p, wrapped },
        };
        let text = serde_json::to_string_pretty(&file).map_err(|e| KeyError::Unlock(e.to_string()))?;
        let err = |e: std::io::Error| KeyError::Unlock(format!("cannot write {}: {e}", path.display()));
        let mut f = fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path).map_err(err)?;
        f.write_all(text.as_bytes()).and_then(|()| f.sync_all()).map_err(err)
    }

    /// Opens the master key held in a recovery file.
    pub fn from_recovery(path: &Path, passphrase: &str) -> Result<Self, KeyError> {
        let text = fs::read_to_string(path)
            .map_err(|e| KeyError::Unlock(format!("cannot read the recovery file {}: {e}", path.display())))?;
        let file: RecoveryFile = serde_json::from_str(&text)
            .ok()
            .filter(|f: &RecoveryFile| f.format == RECOVERY_FORMAT)
            .ok_or_else(|| KeyError::Unlock(format!("{} is not an smbvault recovery file", path.display())))?;
        let Slot::Passphrase { salt, m_kib, t, p, wrapped } = &file.slot else {
            return Err(KeyError::Unlock(format!("{} holds no passphrase-wrapped key", path.display())));
        };
        let bad = |_| KeyError::Unlock(format!("{} is corrupt (bad hex)", path.display()));
        let kek = argon_kek(passphrase, &hex::decode(salt).map_err(bad)?, *m_kib, *t, *p)?;
        let mk = SealKey::new(&kek)
            .unwrap_key(RECOVERY_AD, &hex::decode(wrapped).map_err(bad)?)
            .map(Self::from_key)
            .map_err(|_| {
                KeyError::Unlock(format!("the passphrase does not open the recovery file {}", path.display()))
            })?;
        if mk.key_id() != file.key_id {
            return Err(KeyError::Unlock(format!("{}: key id mismatch (damaged file)", path.display())));
        }
        Ok(mk)
    }

    /// Writes a fresh slot file for this key with one slot for `unlock`
    /// (after a recovery: the new machine's key file).
    pub fn write_new_slots(&self, slots_path: &Path, unlock: &Unlock) -> Result<(), KeyError> {
        write_slots(slots_path, &SlotsFile { version: 1, slots: vec![make_slot(&self.key, unlock)?] })
    }

    /// Removes every passphrase slot; refuses when no key-file slot would
    /// be left (the key would be lost). Returns how many were removed.
    pub fn remove_passphrase_slots(slots_path: &Path) -> Result<usize, KeyError> {
        let text = fs::read_to_string(slots_path)
            .map_err(|e| KeyError::Unlock(format!("cannot read {}: {e}", slots_path.display())))?;
        let mut file: SlotsFile =
            serde_json::from_str(&text).map_err(|e| KeyError::Unlock(format!("{}: {e}", slots_path.display())))?;
        let before = file.slots.len();
        file.slots.retain(|s| matches!(s, Slot::Keyfile { .. }));
        if file.slots.is_empty() {
            return Err(KeyError::Unlock(
                "refusing to remove the passphrase: it is the only way to unlock the master key \
                 (no key-file slot); add a key file first"
                    .into(),
            ));
        }
        let removed = before - file.slots.len();
        if removed > 0 {
            write_slots(slots_path, &file)?;
        }
        Ok(removed)
    }
}

impl MasterKey {
    /// For a rotation to `new`: writes to `out` (not over `slots_path`) a
    /// slot file in which every slot of `slots_path` now wraps `new`. Each
    /// slot must open this key with one of `unlocks` (the key file, the
    /// passphrase): a slot nobody can open cannot be re-wrapped, and
    /// dropping it silently would lock its owner out, so that is refused.
    /// Returns how many slots were re-wrapped.
    pub(super) fn write_rotated_slots(
        &self,
        slots_path: &Path,
        new: &Key32,
        unlocks: &[Unlock],
        out: &Path,
    ) -> Result<usize, KeyError> {
        let text = fs::read_to_string(slots_path)
            .map_err(|e| KeyError::Unlock(format!("cannot read {}: {e}", slots_path.display())))?;
        let file: SlotsFile =
            serde_json::from_str(&text).map_err(|e| KeyError::Unlock(format!("{}: {e}", slots_path.display())))?;
        let mut slots = Vec::with_capacity(file.slots.len());
        for slot in &file.slots {
            let mut fits = None;
            for u in unlocks {
                // A credential that is missing (no key file) simply does not fit.
                if let Ok(Some(k)) = try_slot(slot, u)
                    && k.expose() == self.key.expose()
                {
                    fits = Some(u);
                    break;
                }
            }
            let Some(u) = fits else {
                return Err(KeyError::Unlock(match slot {
                    Slot::Keyfile { .. } => format!(
                        "a key-file slot of {} does not open with the configured key file; nothing was \
                         changed (every slot must be re-wrapped: configure the key file that opens it)",
                        slots_path.display()
                    ),
                    Slot::Passphrase { .. } => format!(
                        "a passphrase slot of {} does not open with the given passphrase; nothing was \
                         changed: set the [keys] passphrase_env variable to its passphrase, or remove the \
                         passphrase slots first (`smbvault key remove-passphrase`) and add one again after",
                        slots_path.display()
                    ),
                }));
            };
            slots.push(make_slot(new, u)?);
        }
        let n = slots.len();
        write_synced(out, &SlotsFile { version: 1, slots })?;
        Ok(n)
    }
}

fn make_slot(mk: &Key32, unlock: &Unlock) -> Result<Slot, KeyError> {
    match unlock {
        Unlock::KeyFile(path) => {
            let kek = load_or_create_key_file(path)?;
            Ok(Slot::Keyfile { wrapped: hex::encode(SealKey::new(&kek).wrap_key(SLOT_AD_KEYFILE, mk)) })
        }
        Unlock::Passphrase(pass) => {
            let mut salt = [0u8; 16];
            rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut salt);
            let kek = argon_kek(pass, &salt, ARGON_M_KIB, ARGON_T, ARGON_P)?;
            Ok(Slot::Passphrase {
                salt: hex::encode(salt),
                m_kib: ARGON_M_KIB,
                t: ARGON_T,
                p: ARGON_P,
                wrapped: hex::encode(SealKey::new(&kek).wrap_key(SLOT_AD_PASSPHRASE, mk)),
            })
        }
    }
}

fn try_slot(slot: &Slot, unlock: &Unlock) -> Result<Option<Key32>, KeyError> {
    let bad = |_| KeyError::Unlock("master key slot file is corrupt (bad hex)".into());
    match (slot, unlock) {
        (Slot::Keyfile { wrapped }, Unlock::KeyFile(path)) => {
            let kek = read_key_file(path)?;
            let w = hex::decode(wrapped).map_err(bad)?;
            Ok(SealKey::new(&kek).unwrap_key(SLOT_AD_KEYFILE, &w).ok())
        }
        (Slot::Passphrase { salt, m_kib, t, p, wrapped }, Unlock::Passphrase(pass)) => {
            let salt = hex::decode(salt).map_err(bad)?;
            let kek = argon_kek(pass, &salt, *m_kib, *t, *p)?;
            let w = hex::decode(wrapped).map_err(bad)?;
            Ok(SealKey::new(&kek).unwrap_key(SLOT_AD_PASSPHRASE, &w).ok())
        }
        _ => Ok(None),
    }
}

fn argon_kek(pass: &str, salt: &[u8], m: u32, t: u32, p: u32) -> Result<Key32, KeyError> {
    let params = argon2::Params::new(m, t, p, Some(32))
        .map_err(|e| KeyError::Unlock(format!("bad Argon2 parameters in slot file: {e}")))?;
    let a = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let mut out = [0u8; 32];
    a.hash_password_into(pass.as_bytes(), salt, &mut out)
        .map_err(|e| KeyError::Unlock(format!("Argon2 failed: {e}")))?;
    Ok(Key32::from_bytes(out))
}

fn read_key_file(path: &Path) -> Result<Key32, KeyError> {
    let bytes = Zeroizing::new(fs::read(path).map_err(|e| {
        KeyError::Unlock(format!(
            "cannot read key file {}: {e}; set `keys.key_file` in the config to its location",
            path.display()
        ))
    })?);
    Key32::from_slice(&bytes).ok_or_else(|| {
        KeyError::Unlock(format!("key file {} must hold exactly 32 bytes (it holds {})", path.display(), bytes.len()))
    })
}

fn load_or_create_key_file(path: &Path) -> Result<Key32, KeyError> {
    if path.exists() {
        return read_key_file(path);
    }
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(|e| KeyError::Unlock(format!("cannot create {}: {e}", dir.display())))?;
    }
    let k = Key32::random();
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| KeyError::Unlock(format!("cannot create key file {}: {e}", path.display())))?;
    f.write_all(k.expose())
        .and_then(|()| f.sync_all())
        .map_err(|e| KeyError::Unlock(format!("cannot write key file {}: {e}", path.display())))?;
    Ok(k)
}

fn write_slots(path: &Path, file: &SlotsFile) -> Result<(), KeyError> {
    let err = |e: std::io::Error| KeyError::Unlock(format!("cannot write {}: {e}", path.display()));
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(err)?;
    }
    let tmp = path.with_extension("tmp");
    write_synced(&tmp, file)?;
    fs::rename(&tmp, path).map_err(err)?;
    if let Some(dir) = path.parent() {
        // Make the rename itself durable.
        let _ = fs::File::open(dir).and_then(|d| d.sync_all());
    }
    let _ = fs::set_permissions(path, fs::Permissions::from_mode(0o600));
    Ok(())
}

/// Writes a slot file to `path` (0600) and syncs it; no rename.
fn write_synced(path: &Path, file: &SlotsFile) -> Result<(), KeyError> {
    let err = |e: std::io::Error| KeyError::Unlock(format!("cannot write {}: {e}", path.display()));
    let text = serde_json::to_string_pretty(file).map_err(|e| KeyError::Unlock(format!("cannot encode slots: {e}")))?;
    let mut f = fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path).map_err(err)?;
    f.write_all(text.as_bytes()).and_then(|()| f.sync_all()).map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_file_slot_round_trip() {
        let d = tempfile::tempdir().unwrap();
        let slots = d.path().join("keys/master.slots");
        let kf = Unlock::KeyFile(d.path().join("keys/master.key"));
        let (mk, created) = MasterKey::open_or_create(&slots, &kf).unwrap();
        assert!(created);
        let mode = fs::metadata(d.path().join("keys/master.key")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let (again, created) = MasterKey::open_or_create(&slots, &kf).unwrap();
        assert!(!created);
        assert_eq!(mk.key().expose(), again.key().expose());
    }

    #[test]
    fn recovery_file_round_trip_and_slot_removal() {
        let d = tempfile::tempdir().unwrap();
        let slots = d.path().join("master.slots");
        let kf = Unlock::KeyFile(d.path().join("master.key"));
        let (mk, _) = MasterKey::open_or_create(&slots, &kf).unwrap();
        let rec = d.path().join("recovery.json");
        assert!(mk.export_recovery(&rec, "short", "now").is_err());
        mk.export_recovery(&rec, "a long recovery phrase", "now").unwrap();
        assert_eq!(fs::metadata(&rec).unwrap().permissions().mode() & 0o777, 0o600);
        assert!(mk.export_recovery(&rec, "a long recovery phrase", "now").is_err(), "never overwritten");
        let back = MasterKey::from_recovery(&rec, "a long recovery phrase").unwrap();
        assert_eq!(back.key().expose(), mk.key().expose());
        assert!(MasterKey::from_recovery(&rec, "a wrong recovery phrase").is_err());
        // The recovery file is not a slot: it does not open the slot file.
        let pp = Unlock::Passphrase(Zeroizing::new("a long recovery phrase".into()));
        assert!(MasterKey::open(&slots, &pp).is_err());
        mk.add_slot(&slots, &pp).unwrap();
        assert!(MasterKey::open(&slots, &pp).is_ok());
        assert_eq!(MasterKey::remove_passphrase_slots(&slots).unwrap(), 1);
        assert!(MasterKey::open(&slots, &pp).is_err());
        assert!(MasterKey::open(&slots, &kf).is_ok());
        // A passphrase-only slot file keeps its last slot.
        let only = d.path().join("only.slots");
        mk.write_new_slots(&only, &pp).unwrap();
        assert!(MasterKey::remove_passphrase_slots(&only).is_err());
    }

    #[test]
    fn passphrase_slot_opens_same_key() {
        let d = tempfile::tempdir().unwrap();
        let slots = d.path().join("master.slots");
        let kf = Unlock::KeyFile(d.path().join("master.key"));
        let (mk, _) = MasterKey::open_or_create(&slots, &kf).unwrap();
        let pp = Unlock::Passphrase(Zeroizing::new("correct horse".into()));
        mk.add_slot(&slots, &pp).unwrap();
        assert_eq!(MasterKey::open(&slots, &pp).unwrap().key().expose(), mk.key().expose());
        let wrong = Unlock::Passphrase(Zeroizing::new("wrong".into()));
        assert!(MasterKey::open(&slots, &wrong).is_err());
    }
}
