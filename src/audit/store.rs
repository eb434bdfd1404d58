//! What the writer thread, queries, verification and purges share: the
//! audit directory and the keys of each log.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;

use super::AuditError;
use super::keys::{LogId, LogKeys};
use crate::config::Retention;
use crate::keys::{MasterKey, OrgKeys};
use crate::types::OrgId;

/// The audit directory and key cache.
pub(crate) struct Store {
    pub(crate) dir: PathBuf,
    org_keys: Arc<dyn OrgKeys>,
    server_keys: Arc<LogKeys>,
    cache: Mutex<HashMap<OrgId, Arc<LogKeys>>>,
    pub(crate) default_retention: Retention,
}

impl Store {
    pub(crate) fn new(
        dir: &Path,
        org_keys: Arc<dyn OrgKeys>,
        master: &MasterKey,
        default_retention: Retention,
    ) -> Self {
        Self {
            dir: dir.to_path_buf(),
            org_keys,
            server_keys: Arc::new(LogKeys::server(master)),
            cache: Mutex::new(HashMap::new()),
            default_retention,
        }
    }

    /// The keys of a log (organization keys are derived once and cached).
    pub(crate) fn keys(&self, log: LogId) -> Result<Arc<LogKeys>, AuditError> {
        let org = match log {
            LogId::Server => return Ok(self.server_keys.clone()),
            LogId::Org(o) => o,
        };
        if let Some(k) = self.cache.lock().get(&org) {
            return Ok(k.clone());
        }
        let k = Arc::new(LogKeys::org(&*self.org_keys, org).map_err(|e| AuditError::Key(log, e))?);
        self.cache.lock().insert(org, k.clone());
        Ok(k)
    }

    /// Forgets a cached organization key (after the organization was shredded).
    pub(crate) fn forget(&self, org: OrgId) {
        self.cache.lock().remove(&org);
    }

    pub(crate) fn log_dir(&self, log: LogId) -> PathBuf {
        self.dir.join(log.dir_name())
    }

    /// Every log that has a directory, server first, then organizations by id.
    pub(crate) fn logs(&self) -> Result<Vec<LogId>, AuditError> {
        let mut out = Vec::new();
        let rd = match std::fs::read_dir(&self.dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(AuditError::io(&self.dir, e)),
        };
        for ent in rd {
            let ent = ent.map_err(|e| AuditError::io(&self.dir, e))?;
            if let Some(log) = ent.file_name().to_str().and_then(LogId::from_dir_name) {
                out.push(log);
            }
        }
        out.sort();
        Ok(out)
    }
}
