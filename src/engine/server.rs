//! State shared by every connection: configuration, services, server identity.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::config::Config;
use crate::engine::services::{Directory, ShareRecord};
use crate::storage::{OrgStore, StorageError};
use crate::types::FileTime;
use crate::types::{NodeId, OrgId};
use crate::wire::Guid;
use crate::wire::negotiate::Dialect;

/// Limits we announce in NEGOTIATE (MS-SMB2 2.2.4): 8 MiB like Samba and
/// Windows Server, so large-MTU clients move data in big requests.
pub const MAX_IO: u32 = 8 * 1024 * 1024;

/// The server-wide state shared by all connections.
pub struct Server {
    /// Configuration as started. Settings SIGHUP may change are read
    /// through [`Server::live`] instead.
    pub config: Config,
    /// The configuration as last (re)loaded.
    live: parking_lot::RwLock<Arc<Config>>,
    /// Counters for the metrics endpoint.
    pub metrics: Arc<crate::metrics::Metrics>,
    /// ServerGuid (MS-SMB2 3.3.1.5), random per data directory start.
    pub guid: Guid,
    /// When the server started (FILETIME).
    pub start_time: FileTime,
    /// Accounts, shares and permissions.
    pub directory: Arc<dyn Directory>,
    /// The encrypted storage engine.
    pub store: Arc<crate::storage::Store>,
    /// Access and operation log.
    pub audit: Arc<dyn crate::audit::AuditSink>,
    /// The open-file table shared by all connections (share modes, locks,
    /// delete-pending state) and the mailboxes of pending requests.
    pub files: crate::engine::files::Files,
    /// Sessions with keys, server-wide, for answering bind requests.
    pub bindable: crate::engine::binding::Registry,
    /// Failed logons: delays, per-address lockout, audit bursts.
    pub logons: crate::engine::throttle::Logons,
    /// Lowest and highest dialects we accept.
    pub min_dialect: Dialect,
    /// See `min_dialect`.
    pub max_dialect: Dialect,
    next_session: AtomicU64,
    /// Serializes lazy creation of organization keys and share roots.
    provisioning: parking_lot::Mutex<()>,
    /// Accounts revision at which each organization's quota was last applied.
    quota_applied: parking_lot::Mutex<std::collections::HashMap<OrgId, u64>>,
    /// Last accounts revision read, and when (read at most every 500 ms).
    revision: parking_lot::Mutex<(u64, Option<std::time::SystemTime>)>,
    /// The source of random values (see [`Server::fill_random`]).
    entropy: crate::engine::services::Entropy,
    /// Backup generations offered as Previous Versions (none until
    /// `serve` sets them: a server without backup targets offers none).
    snapshots: std::sync::OnceLock<Arc<dyn crate::engine::services::Snapshots>>,
}

impl Server {
    /// Builds the shared state. `guid` and `session_seed` come from the
    /// caller's RNG, and so does every later random value (`entropy`).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        config: Config,
        directory: Arc<dyn Directory>,
        store: Arc<crate::storage::Store>,
        audit: Arc<dyn crate::audit::AuditSink>,
        guid: [u8; 16],
        session_seed: u64,
        start_time: FileTime,
        entropy: crate::engine::services::Entropy,
    ) -> Self {
        let d = |s: &str| Dialect(crate::config::parse_dialect(s).unwrap_or(0x0202));
        let min_dialect = d(&config.security.min_dialect);
        let max_dialect = d(&config.security.max_dialect);
        Self {
            live: parking_lot::RwLock::new(Arc::new(config.clone())),
            metrics: Arc::new(crate::metrics::Metrics::new()),
            config,
            guid: Guid(guid),
            start_time,
            entropy,
            directory,
            store,
            audit,
            files: crate::engine::files::Files::new(start_time),
            bindable: crate::engine::binding::Registry::default(),
            logons: crate::engine::throttle::Logons::default(),
            min_dialect,
            max_dialect,
            // Session ids are unique server-wide and not guessable from one
            // another's neighbours: a random start, odd step, never 0 or -1.
            next_session: AtomicU64::new(session_seed | 1),
            provisioning: parking_lot::Mutex::new(()),
            revision: parking_lot::Mutex::new((0, None)),
            quota_applied: parking_lot::Mutex::new(std::collections::HashMap::new()),
            snapshots: std::sync::OnceLock::new(),
        }
    }

    /// Offers backup generations as Previous Versions (once, at start).
    pub fn set_snapshots(&self, s: Arc<dyn crate::engine::services::Snapshots>) {
        let _ = self.snapshots.set(s);
    }

    /// The Previous Versions source, if any.
    pub fn snapshots(&self) -> Option<&dyn crate::engine::services::Snapshots> {
        self.snapshots.get().map(|s| s.as_ref())
    }

    /// Fills `buf` with unpredictable bytes from the `entropy` given to [`Server::new`].
    pub fn fill_random(&self, buf: &mut [u8]) {
        (self.entropy)(buf)
    }

    /// The current configuration: reloadable settings (security policy,
    /// logon delay, limits) are read here so that SIGHUP takes effect for
    /// the next request.
    pub fn live(&self) -> Arc<Config> {
        self.live.read().clone()
    }

    /// Installs a reloaded configuration (see `service::reload`).
    pub fn set_live(&self, cfg: Config) {
        *self.live.write() = Arc::new(cfg);
    }

    /// The organization's store, creating its key on first use
    /// (organizations added by the CLI get their storage lazily).
    pub fn org_store(&self, org: OrgId) -> Result<Arc<OrgStore>, StorageError> {
        let o = self.org_store_inner(org)?;
        // Enforce the organization's quota on writes; re-read it whenever
        // the accounts revision moved (quotas change through the CLI).
        let rev = self.revision.lock().0;
        let mut applied = self.quota_applied.lock();
        if applied.get(&org) != Some(&rev) {
            if !applied.contains_key(&org) {
                let dir = self.directory.clone();
                o.set_quota_source(Arc::new(move || dir.org_quota(org)));
            }
            o.set_quota(self.directory.org_quota(org));
            applied.insert(org, rev);
        }
        Ok(o)
    }

    fn org_store_inner(&self, org: OrgId) -> Result<Arc<OrgStore>, StorageError> {
        match self.store.org(org) {
            Err(StorageError::NotFound) => {
                let _g = self.provisioning.lock();
                match self.store.create_org(org) {
                    Ok(()) | Err(StorageError::Exists) => {}
                    Err(e) => return Err(e),
                }
                self.store.org(org)
            }
            other => other,
        }
    }

    /// The share's root directory, created on first use (root 0 means the
    /// CLI recorded the share but the server has not created it yet).
    pub fn share_root(&self, share: &mut ShareRecord) -> Result<NodeId, StorageError> {
        if share.root != NodeId(0) {
            return Ok(share.root);
        }
        let org = self.org_store(share.org_id)?;
        let _g = self.provisioning.lock();
        // Another connection may have won the race.
        if let Some(s) = self.directory.find_share(share.org_id, &share.name)
            && s.root != NodeId(0)
        {
            share.root = s.root;
            return Ok(s.root);
        }
        let root = org.create_root(self.start_time)?;
        org.flush()?;
        if !self.directory.set_share_root(share.id, root) {
            return Err(StorageError::Database);
        }
        share.root = root;
        Ok(root)
    }

    /// The accounts revision, read from the store at most twice a second
    /// however many connections ask.
    pub fn revision(&self, now: std::time::SystemTime) -> u64 {
        let mut r = self.revision.lock();
        let fresh = r.1.and_then(|t| now.duration_since(t).ok()).is_some_and(|d| d.as_millis() < 500);
        if !fresh {
            let rev = self.directory.revision();
            if rev != r.0 {
                // An administrator's unlock also lifts per-address locks.
                self.logons.revalidate(|u| self.directory.failures_on_record(u, now));
            }
            *r = (rev, Some(now));
        }
        r.0
    }

    /// The organization's quota (for FileFsSizeInformation), if any.
    pub fn quota_of(&self, org: Option<OrgId>) -> Option<u64> {
        self.directory.org_quota(org?)
    }

    /// (total, free) bytes of the file system holding the data directory.
    pub fn disk_space(&self) -> Option<(u64, u64)> {
        let st = rustix::fs::statvfs(&self.config.server.data_dir).ok()?;
        let unit = st.f_frsize.max(1);
        Some((st.f_blocks.saturating_mul(unit), st.f_bavail.saturating_mul(unit)))
    }

    /// Puts every change made so far, and the audit records describing
    /// them, into the kernel (WAL commit and log append, no fsync) so that
    /// a crash of the process loses nothing that was answered
    /// (docs/storage-format.md §8). Called after each engine pass, before
    /// its responses are sent; a pass that changed nothing costs a few
    /// atomic loads. A failure is logged (the storage keeps the changes
    /// and commits them with the next settle or commit).
    pub fn settle(&self) {
        let _ = self.store.settle();
        self.audit.settle();
    }

    /// A fresh session id (MS-SMB2 3.3.5.5.1): never 0 or all ones. Ids
    /// stay below 2^32 like Samba's (an odd step walks all 2^32 values
    /// before repeating): smbtorture and some clients keep them in 32 bits.
    pub fn new_session_id(&self) -> u64 {
        loop {
            let id = self.next_session.fetch_add(0x9E37_79B9, Ordering::Relaxed) & 0xFFFF_FFFF;
            if id != 0 && id != 0xFFFF_FFFF {
                return id;
            }
        }
    }
}
