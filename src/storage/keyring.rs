//! The organization's key and the purpose keys derived from it
//! (docs/storage-format.md §2).
//!
//! ```text
//! MK ─HKDF "smbvault/mk/storage-org-wrap"→ SealKey ─wraps→ OK (random, per org, keys.db)
//! OK ─HKDF "smbvault/org/file-key-wrap"→ wraps FK (random, per content stream, meta.db)
//!    ─HKDF "smbvault/org/name-index"   → HMAC key for case-insensitive name lookup keys
//!    ─HKDF "smbvault/org/name-seal"    → seals display names
//!    ─HKDF "smbvault/org/meta-seal"    → seals security descriptors and EAs
//! FK ─HKDF → K_enc, K_mac (record.rs)
//! ```
//! Every key below MK is random and wrapped, never derived from its parent,
//! so deleting OK from keys.db shreds the organization (backups included).

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::error::Result;
use super::record::ChunkKeys;
use crate::keys::{Key32, KeyError, SealKey};

/// Scope byte of a lookup key: a directory entry or a named stream.
#[derive(Clone, Copy)]
pub enum Scope {
    Entry = 1,
    Stream = 2,
}

/// Length of the keyed lookup hash stored instead of a name.
pub const NAME_KEY_LEN: usize = 16;

/// Keys of one organization, held while its store is open.
pub struct OrgKeyring {
    org: u64,
    org_key: Key32,
    fk_wrap: SealKey,
    name_index: Key32,
    name_seal: SealKey,
    meta_seal: SealKey,
}

impl OrgKeyring {
    pub fn new(org: u64, org_key: Key32) -> Self {
        // Storage-internal derivations use this context; `external` a
        // different one, so no label passed through `OrgKeys` can ever
        // reproduce a storage key.
        let ctx = storage_ctx(org);
        let d = |label: &str| org_key.derive(label, &ctx);
        Self {
            org,
            fk_wrap: SealKey::new(&d("smbvault/org/file-key-wrap")),
            name_index: d("smbvault/org/name-index"),
            name_seal: SealKey::new(&d("smbvault/org/name-seal")),
            meta_seal: SealKey::new(&d("smbvault/org/meta-seal")),
            org_key,
        }
    }

    /// A sub-key for another layer (audit log): `keys::OrgKeys`.
    pub fn external(&self, label: &str) -> Key32 {
        external_subkey(&self.org_key, self.org, label)
    }

    /// Keyed, case-insensitive lookup key of a folded name under `parent`.
    pub fn name_key(&self, scope: Scope, parent: u64, folded: &str) -> [u8; NAME_KEY_LEN] {
        let mut m = <Hmac<Sha256> as Mac>::new_from_slice(self.name_index.expose())
            .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
        m.update(&[scope as u8]);
        m.update(&parent.to_be_bytes());
        m.update(folded.as_bytes());
        let full = m.finalize().into_bytes();
        let mut out = [0u8; NAME_KEY_LEN];
        out.copy_from_slice(&full[..NAME_KEY_LEN]);
        out
    }

    /// Seals a display name, bound to its owner (node, or node for a
    /// stream) and lookup key, so names cannot be swapped between entries.
    pub fn seal_name(&self, scope: Scope, owner: u64, key: &[u8], name: &str) -> Vec<u8> {
        self.name_seal.seal(&name_ad(scope, self.org, owner, key), name.as_bytes())
    }

    pub fn open_name(&self, scope: Scope, owner: u64, key: &[u8], sealed: &[u8]) -> Result<String> {
        let pt = self.name_seal.open(&name_ad(scope, self.org, owner, key), sealed)?;
        String::from_utf8(pt.to_vec()).map_err(|_| KeyError::Integrity.into())
    }

    /// Seals a security descriptor (`what` = b"sd") or EA list (b"ea").
    pub fn seal_meta(&self, what: &[u8; 2], node: u64, data: &[u8]) -> Vec<u8> {
        self.meta_seal.seal(&meta_ad(what, self.org, node), data)
    }

    pub fn open_meta(&self, what: &[u8; 2], node: u64, sealed: &[u8]) -> Result<zeroize::Zeroizing<Vec<u8>>> {
        Ok(self.meta_seal.open(&meta_ad(what, self.org, node), sealed)?)
    }

    /// A fresh random file key for content `id`, wrapped for
    /// `contents.wrapped_key`. The plaintext key is dropped (zeroized) here;
    /// the content's keys are derived when it is opened.
    pub fn new_wrapped_content_key(&self, id: u64) -> Vec<u8> {
        self.fk_wrap.wrap_key(&fk_ad(self.org, id), &Key32::random())
    }

    /// Unwraps content `id`'s file key. The wrap is bound to (org, id), so a
    /// key row copied to another content or organization fails here.
    pub fn content_keys(&self, id: u64, wrapped: &[u8]) -> Result<ChunkKeys> {
        let fk = self.fk_wrap.unwrap_key(&fk_ad(self.org, id), wrapped)?;
        Ok(ChunkKeys::new(&fk, self.org, id))
    }
}

fn storage_ctx(org: u64) -> Vec<u8> {
    [b"smbvault/storage/".as_slice(), &org.to_be_bytes()].concat()
}

/// `keys::OrgKeys` derivation, shared with the path that reads a key from
/// keys.db without opening the organization's data.
pub fn external_subkey(org_key: &Key32, org: u64, label: &str) -> Key32 {
    let ctx = [b"smbvault/org-subkey/".as_slice(), &org.to_be_bytes()].concat();
    org_key.derive(label, &ctx)
}

fn name_ad(scope: Scope, org: u64, owner: u64, key: &[u8]) -> Vec<u8> {
    let mut ad = b"smbvault/name".to_vec();
    ad.push(scope as u8);
    ad.extend_from_slice(&org.to_be_bytes());
    ad.extend_from_slice(&owner.to_be_bytes());
    ad.extend_from_slice(key);
    ad
}

fn meta_ad(what: &[u8; 2], org: u64, node: u64) -> Vec<u8> {
    [b"smbvault/meta/".as_slice(), what, &org.to_be_bytes(), &node.to_be_bytes()].concat()
}

fn fk_ad(org: u64, id: u64) -> Vec<u8> {
    [b"smbvault/file-key".as_slice(), &org.to_be_bytes(), &id.to_be_bytes()].concat()
}

/// Label of the key that wraps organization keys in keys.db; derived
/// from the current master key, so a rotation re-wraps them (keys::rotate).
pub const ORG_WRAP_LABEL: &str = "smbvault/mk/storage-org-wrap";

/// Wrapping of organization keys under the master key (keys.db).
pub fn org_wrap_key(mk: &crate::keys::MasterKey) -> SealKey {
    SealKey::new(&mk.derive(ORG_WRAP_LABEL))
}

/// The associated data an organization's wrapped key is sealed with: binds
/// the key to its organization id.
pub fn org_key_ad(org: u64) -> Vec<u8> {
    [b"smbvault/org-key".as_slice(), &org.to_be_bytes()].concat()
}
