//! A generation's manifest (`generations/<GEN>.json`: every object of the
//! generation with its SHA-256 and size, MACed under the backup manifest
//! key) and the sealed copy of meta.db (AES-256-GCM under a sub-key of the
//! organization key, bound to the organization and the generation).

use std::time::SystemTime;

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::keys::Key32;
use crate::types::OrgId;

/// Manifest format.
pub const FORMAT: u32 = 1;
/// Largest manifest fetched.
pub(super) const MAX_MANIFEST: u64 = 64 << 20;
/// Sub-key of the organization key that seals meta.db copies.
pub(super) const SEAL_LABEL: &str = "smbvault/backup/meta-seal";
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

    pub(super) fn seal(&mut self, key: &Key32) {
        self.mac = hex::encode(self.mac_of(key).finalize().into_bytes());
    }

    pub(super) fn mac_ok(&self, key: &Key32) -> bool {
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

pub(super) fn is_seg_path(p: &str) -> bool {
    p.strip_prefix("seg/")
        .and_then(|n| n.strip_suffix(".seg"))
        .is_some_and(|n| n.len() == 32 && n.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn seal_aad(org: OrgId, generation: &str) -> Vec<u8> {
    [SEAL_MAGIC.as_slice(), &org.0.to_be_bytes(), generation.as_bytes()].concat()
}

/// `magic ‖ nonce ‖ AES-256-GCM(meta.db)`, AD = magic ‖ org ‖ generation.
pub(super) fn seal(key: &Key32, org: OrgId, generation: &str, plain: &[u8]) -> Result<Vec<u8>, String> {
    use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
    let k = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, key.expose()).map_err(|_| "bad key")?);
    let mut nonce = [0u8; 12];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut nonce);
    let mut buf = plain.to_vec();
    k.seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(seal_aad(org, generation)), &mut buf)
        .map_err(|_| "sealing meta.db failed")?;
    Ok([SEAL_MAGIC.as_slice(), &nonce, &buf].concat())
}

pub(super) fn unseal(key: &Key32, org: OrgId, generation: &str, sealed: &[u8]) -> Result<Vec<u8>, String> {
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
