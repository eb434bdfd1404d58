//! Deleting generations: the retention after each run (oldest beyond the
//! organization's number, then every object no kept generation lists) and
//! erasure at contract end (every object of the organization, on every
//! target, and its local caches).

use std::collections::BTreeSet;

use super::objects::ObjectStore;
use super::{Remote, org_dir_key};
use crate::types::OrgId;

impl Remote {
    /// Deletes the oldest generations beyond `keep`, then every object no
    /// kept generation lists. When a kept manifest cannot be read, no
    /// object is deleted (it might be one of its).
    pub(super) fn retain(
        &self,
        store: &dyn ObjectStore,
        org: OrgId,
        keep: u32,
    ) -> Result<(Vec<String>, usize), String> {
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
