//! An in-memory [`OrgKeys`] for tests, benchmarks and examples: every
//! organization's key is derived from one root key, except organizations
//! marked shredded, which have none. Not for production (the storage
//! engine implements `OrgKeys` there).

use std::collections::HashSet;

use parking_lot::Mutex;

use crate::keys::{Key32, KeyError, OrgKeys};
use crate::types::OrgId;

/// Organization keys derived from a root key.
#[derive(Debug)]
pub struct MemOrgKeys {
    root: Key32,
    shredded: Mutex<HashSet<OrgId>>,
}

impl MemOrgKeys {
    /// Keys derived from `root` (use a fixed root to reopen a log).
    pub fn new(root: Key32) -> Self {
        Self { root, shredded: Mutex::new(HashSet::new()) }
    }

    /// Makes `org`'s key unavailable, as after crypto-shredding.
    pub fn shred(&self, org: OrgId) {
        self.shredded.lock().insert(org);
    }
}

impl OrgKeys for MemOrgKeys {
    fn org_subkey(&self, org: OrgId, label: &str) -> Result<Key32, KeyError> {
        if self.shredded.lock().contains(&org) {
            return Err(KeyError::Unlock(format!("organization {} has no key", org.0)));
        }
        Ok(self.root.derive("test/org-key", &org.0.to_le_bytes()).derive(label, b""))
    }
}
