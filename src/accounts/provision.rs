//! The storage side of administrative changes: an organization needs its
//! own (encrypted) namespace and every share a root directory in it. The
//! accounts store calls this trait; `storage::Store` implements it.

use std::collections::{BTreeMap, BTreeSet};

use parking_lot::Mutex;

use crate::types::{NodeId, OrgId};

/// The storage engine refused (message for the operator).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ProvisionError(pub String);

/// Creates and destroys organization storage and share roots.
pub trait Provisioner: Send + Sync {
    /// Creates the organization's key and empty namespace.
    fn create_org_storage(&self, org: OrgId) -> Result<(), ProvisionError>;
    /// Creates a new, empty root directory for a share of `org`.
    fn create_share_root(&self, org: OrgId) -> Result<NodeId, ProvisionError>;
    /// Deletes a share's root directory and everything below it.
    fn remove_share_root(&self, org: OrgId, root: NodeId) -> Result<(), ProvisionError>;
    /// Destroys the organization's key and data (contract end + grace period).
    fn shred_org(&self, org: OrgId) -> Result<(), ProvisionError>;
}

#[derive(Default)]
struct State {
    orgs: BTreeSet<OrgId>,
    roots: BTreeMap<NodeId, OrgId>,
    next_node: u64,
    fail: bool,
}

/// In-memory provisioner for tests: remembers what was created.
#[derive(Default)]
pub struct TestProvisioner {
    state: Mutex<State>,
}

impl TestProvisioner {
    /// A provisioner with nothing created yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes every later call fail (to test rollback).
    pub fn fail_from_now(&self) {
        self.state.lock().fail = true;
    }

    /// Organizations with live storage.
    pub fn orgs(&self) -> Vec<OrgId> {
        self.state.lock().orgs.iter().copied().collect()
    }

    /// Live share roots and their organizations.
    pub fn roots(&self) -> Vec<(NodeId, OrgId)> {
        self.state.lock().roots.iter().map(|(n, o)| (*n, *o)).collect()
    }

    fn guard(&self) -> Result<parking_lot::MutexGuard<'_, State>, ProvisionError> {
        let s = self.state.lock();
        if s.fail {
            return Err(ProvisionError("test provisioner told to fail".into()));
        }
        Ok(s)
    }
}

impl Provisioner for TestProvisioner {
    fn create_org_storage(&self, org: OrgId) -> Result<(), ProvisionError> {
        self.guard()?.orgs.insert(org);
        Ok(())
    }

    fn create_share_root(&self, org: OrgId) -> Result<NodeId, ProvisionError> {
        let mut s = self.guard()?;
        if !s.orgs.contains(&org) {
            return Err(ProvisionError(format!("organization #{} has no storage", org.0)));
        }
        s.next_node += 1;
        let n = NodeId(s.next_node);
        s.roots.insert(n, org);
        Ok(n)
    }

    fn remove_share_root(&self, org: OrgId, root: NodeId) -> Result<(), ProvisionError> {
        let mut s = self.guard()?;
        match s.roots.get(&root) {
            Some(o) if *o == org => {
                s.roots.remove(&root);
                Ok(())
            }
            _ => Err(ProvisionError(format!("no root {} in organization #{}", root.0, org.0))),
        }
    }

    fn shred_org(&self, org: OrgId) -> Result<(), ProvisionError> {
        let mut s = self.guard()?;
        s.orgs.remove(&org);
        s.roots.retain(|_, o| *o != org);
        Ok(())
    }
}
