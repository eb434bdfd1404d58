//! The organization's key and the purpose keys derived from it
//! (docs/storage-format.md §2).
//!
//! ```text
//! MK ─HKDF "smbvault/mk/storage-org-wrap"→ SealKey ─wraps→ OK (random, per org, keys.db)
//! OK ─HKDF "smbvault/org/file-key-wrap"→ wraps FK (random, per content stream, meta.db)
//!    ─HKDF "smbvault/org/name-index"   → HMAC key for case-insensitive name lookup keys
//!    ─HKDF "smbvault/org/name-seal"    → seals display names
//!    ─HKDF "smbvault/org/meta-seal"    → seals security descriptors and EAs
//!    ─HKDF "smbvault/org/row-mac"      → MACs of the meta.db rows that decide
//!                                        what bytes a name reads or who may open it
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
    row_mac: Key32,
}

/// Length of a row MAC (HMAC-SHA256, untruncated).
pub const ROW_MAC_LEN: usize = 32;

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
            row_mac: d("smbvault/org/row-mac"),
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

    /// MAC of the parts of a `nodes` row that place it and name its data:
    /// parent (moving a row moves it under another directory's rules),
    /// kind and main content id (what bytes the name reads).
    pub fn node_mac(&self, id: i64, parent: Option<i64>, kind: i64, content: Option<i64>) -> [u8; ROW_MAC_LEN] {
        self.row_mac(b"node", id, &[opt_i64(parent), kind.to_be_bytes().to_vec(), opt_i64(content)])
    }

    /// MAC of a node's sealed security descriptor and EA list, including
    /// their absence: a descriptor set to NULL would fall back to the
    /// default one, so absence must be as authentic as presence.
    pub fn meta_mac(&self, id: i64, sd: Option<&[u8]>, eas: Option<&[u8]>) -> [u8; ROW_MAC_LEN] {
        self.row_mac(b"meta", id, &[opt_bytes(sd), opt_bytes(eas)])
    }

    /// MAC of a `streams` row: which content a named stream reads.
    pub fn stream_mac(&self, node: i64, name_key: &[u8], content: i64) -> [u8; ROW_MAC_LEN] {
        self.row_mac(b"strm", node, &[opt_bytes(Some(name_key)), content.to_be_bytes().to_vec()])
    }

    /// MAC of a `contents` row's sizes (its key wrap binds the id already).
    pub fn content_mac(&self, id: i64, size: i64, alloc: i64) -> [u8; ROW_MAC_LEN] {
        self.row_mac(b"cont", id, &[size.to_be_bytes().to_vec(), alloc.to_be_bytes().to_vec()])
    }

    /// Checks a stored row MAC in constant time; a missing or wrong one is
    /// an integrity error, logged (docs/storage-format.md §4).
    pub fn check_row(&self, what: &str, id: i64, stored: Option<&[u8]>, want: &[u8; ROW_MAC_LEN]) -> Result<()> {
        let ok =
            stored.is_some_and(|s| s.len() == ROW_MAC_LEN && bool::from(subtle::ConstantTimeEq::ct_eq(s, &want[..])));
        if ok {
            return Ok(());
        }
        tracing::error!(org = self.org, table = what, id, "meta.db row failed its MAC: tampered or damaged");
        Err(KeyError::Integrity.into())
    }

    fn row_mac(&self, table: &[u8; 4], id: i64, fields: &[Vec<u8>]) -> [u8; ROW_MAC_LEN] {
        let mut m = <Hmac<Sha256> as Mac>::new_from_slice(self.row_mac.expose())
            .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
        m.update(b"smbvault/row/");
        m.update(table);
        m.update(&self.org.to_be_bytes());
        m.update(&id.to_be_bytes());
        for f in fields {
            m.update(&(f.len() as u64).to_be_bytes());
            m.update(f);
        }
        m.finalize().into_bytes().into()
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

/// Option fields of a row MAC: absence and every value differ.
fn opt_i64(v: Option<i64>) -> Vec<u8> {
    opt_bytes(v.map(i64::to_be_bytes).as_ref().map(|b| b.as_slice()))
}

fn opt_bytes(v: Option<&[u8]>) -> Vec<u8> {
    match v {
        None => vec![0],
        Some(b) => [&[1u8][..], b].concat(),
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
