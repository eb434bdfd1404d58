//! Application wiring: opens the master key, the storage engine and the
//! accounts store of a data directory, and adapts them to the traits the
//! engine and the CLI use. The only place that knows all concrete types.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use crate::accounts::{Accounts, LockoutState, ProvisionError, Provisioner};
use crate::auth::{AuthError, Credential, CredentialSource};
use crate::config::Config;
use crate::engine::services::{Access, Directory, FailureOutcome, ShareRecord};
use crate::keys::{MasterKey, Unlock, custody, rotate};
use crate::storage::{Store, StoreOptions};
use crate::types::{FileTime, NodeId, OrgId, UserId};

/// `<data_dir>/keys/master.slots`.
pub fn slots_path(cfg: &Config) -> PathBuf {
    cfg.server.data_dir.join("keys").join("master.slots")
}

/// The passphrase from `keys.passphrase_env` when that variable is set, else the key file.
pub fn unlock_method(cfg: &Config) -> Unlock {
    if let Some(var) = &cfg.keys.passphrase_env {
        if let Some(p) = custody::passed_passphrase() {
            return Unlock::Passphrase(p);
        }
        if let Ok(p) = std::env::var(var) {
            return Unlock::Passphrase(zeroize::Zeroizing::new(p));
        }
    }
    Unlock::KeyFile(cfg.key_file())
}

/// Opens (or, with `create`, makes) the master key of the data directory.
/// A new key is only made where [`custody::may_create_master_key`] allows
/// it (an empty data directory and no key file yet), or with `force`.
pub fn open_master_key(cfg: &Config, create: bool) -> Result<(MasterKey, bool), String> {
    open_master_key_forced(cfg, create, false, false)
}

/// [`open_master_key`] with `--force-new-key` (`force`); `explicit` is
/// `smbvault init`, which may use a key file that exists already (a systemd
/// credential is made before the first start), where `serve` refuses.
pub fn open_master_key_forced(
    cfg: &Config,
    create: bool,
    force: bool,
    explicit: bool,
) -> Result<(MasterKey, bool), String> {
    let slots = slots_path(cfg);
    let unlock = unlock_method(cfg);
    let exists = match std::fs::metadata(&slots) {
        Ok(_) => true,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            // NotFound also when a parent is missing; a parent we may not
            // read is a permission problem, not an uninitialized directory.
            if let Err(e) = std::fs::read_dir(&cfg.server.data_dir)
                && e.kind() == std::io::ErrorKind::PermissionDenied
            {
                return Err(custody::permission_hint(&cfg.server.data_dir, &e));
            }
            false
        }
        Err(e) => return Err(custody::permission_hint(&slots, &e)),
    };
    if create && !exists {
        let key_file = matches!(unlock, Unlock::KeyFile(_)).then(|| cfg.key_file()).filter(|_| !explicit);
        custody::may_create_master_key(&cfg.server.data_dir, key_file.as_deref(), force)?;
        return MasterKey::create(&slots, &unlock).map(|mk| (mk, true)).map_err(|e| e.to_string());
    }
    if !exists {
        return Err(format!(
            "no master key at {}: the data directory {} is not initialized; run `smbvault init` \
             (or start the server once), or point --config/--data-dir at the right one",
            slots.display(),
            cfg.server.data_dir.display()
        ));
    }
    let keys_db = cfg.server.data_dir.join(crate::backup::db::KEYS_DB);
    let hint = |e: crate::keys::KeyError| {
        format!(
            "{e}\n(administration needs the master key file, the operator's credential: run as the user that can read it)"
        )
    };
    if rotate::pending_path(&slots).exists() {
        // Only with server.lock: a rotation in progress holds it, and must
        // not see its new slot file removed under it.
        match try_lock_data_dir(cfg) {
            Some(_lock) => finish_interrupted_rotation(cfg)?,
            None => eprintln!(
                "warning: a key rotation is in progress or was interrupted ({} exists, and {} is locked)",
                rotate::pending_path(&slots).display(),
                cfg.server.data_dir.join("server.lock").display()
            ),
        }
    }
    let mk = MasterKey::open(&slots, &unlock).map_err(hint)?;
    // After a rotation the kept purpose keys come from keys.db (keys::rotate).
    rotate::load_kept(&mk, &keys_db, false).map(|mk| (mk, false)).map_err(hint)
}

/// Completes or undoes a key rotation interrupted by a crash
/// (keys::rotate::finish_pending). The caller holds `server.lock`.
pub fn finish_interrupted_rotation(cfg: &Config) -> Result<(), String> {
    let keys_db = cfg.server.data_dir.join(crate::backup::db::KEYS_DB);
    if let Some(what) =
        rotate::finish_pending(&slots_path(cfg), &keys_db, &unlock_method(cfg)).map_err(|e| e.to_string())?
    {
        tracing::warn!("{what}");
        eprintln!("warning: {what}");
    }
    Ok(())
}

/// `server.lock` of the data directory, if nobody holds it.
fn try_lock_data_dir(cfg: &Config) -> Option<std::fs::File> {
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(cfg.server.data_dir.join("server.lock"))
        .ok()?;
    f.try_lock().ok().map(|()| f)
}

/// Opens the storage engine of the data directory. Only the server opens it
/// with `background` (compaction, periodic commits); the CLI opens it just
/// to derive organization keys for reading audit logs.
pub fn open_store(cfg: &Config, mk: &MasterKey, background: bool) -> Result<Arc<Store>, String> {
    let mut opts = StoreOptions::from_config(&cfg.storage);
    opts.background = background;
    opts.background_compaction = background;
    Store::open(&cfg.server.data_dir.join("store"), mk, opts)
        .map_err(|e| format!("cannot open the storage engine in {}: {e}", cfg.server.data_dir.display()))
}

/// Storage side effects of administrative changes.
pub struct StoreProvisioner {
    store: Arc<Store>,
    now: SystemTime,
}

impl StoreProvisioner {
    /// Provisions into `store`, stamping new roots with `now`.
    pub fn new(store: Arc<Store>, now: SystemTime) -> Self {
        Self { store, now }
    }
}

fn perr(e: crate::storage::StorageError) -> ProvisionError {
    ProvisionError(format!("storage engine: {e}"))
}

impl Provisioner for StoreProvisioner {
    fn create_org_storage(&self, org: OrgId) -> Result<(), ProvisionError> {
        self.store.create_org(org).map_err(perr)
    }

    fn create_share_root(&self, org: OrgId) -> Result<NodeId, ProvisionError> {
        let o = self.store.org(org).map_err(perr)?;
        let root = o.create_root(FileTime::from_system(self.now)).map_err(perr)?;
        o.flush().map_err(perr)?;
        Ok(root)
    }

    fn remove_share_root(&self, org: OrgId, root: NodeId) -> Result<(), ProvisionError> {
        let o = self.store.org(org).map_err(perr)?;
        remove_tree(&o, root).map_err(perr)?;
        o.flush().map_err(perr)
    }

    fn shred_org(&self, org: OrgId) -> Result<(), ProvisionError> {
        self.store.shred_org(org).map_err(perr)
    }
}

/// Provisioning as the CLI does it, next to a running server: a new
/// organization gets its key at once (one row in `keys.db`, which SQLite
/// lets both processes write), so that its audit events, the CLI's
/// included, go to its own log from the first one on. Its data directory
/// and share roots are created by the server on first use
/// (`engine::Server::share_root`); root `NodeId(0)` means "not created yet".
/// Without a store (`keys: None`) even the key is left to the server.
pub struct DeferredProvisioner {
    /// The storage engine, opened only for its key table.
    pub keys: Option<Arc<Store>>,
}

impl Provisioner for DeferredProvisioner {
    fn create_org_storage(&self, org: OrgId) -> Result<(), ProvisionError> {
        match self.keys.as_ref().map(|s| s.create_org(org)) {
            None | Some(Ok(())) | Some(Err(crate::storage::StorageError::Exists)) => Ok(()),
            Some(Err(e)) => Err(perr(e)),
        }
    }

    fn create_share_root(&self, _org: OrgId) -> Result<NodeId, ProvisionError> {
        Ok(NodeId(0))
    }

    fn remove_share_root(&self, _org: OrgId, _root: NodeId) -> Result<(), ProvisionError> {
        // The share's directory tree stays encrypted under the organization
        // key; it is erased with the organization (crypto-shredding).
        Ok(())
    }

    fn shred_org(&self, _org: OrgId) -> Result<(), ProvisionError> {
        Err(ProvisionError(
            "organization data is erased by the running server when its contract ends \
             (`org end-contract`); it cannot be shredded from the CLI"
                .into(),
        ))
    }
}

/// Deletes a directory and everything below it, depth first.
fn remove_tree(org: &crate::storage::OrgStore, dir: NodeId) -> Result<(), crate::storage::StorageError> {
    for e in org.list(dir)? {
        if e.meta.kind == crate::storage::NodeKind::Directory {
            remove_tree(org, e.meta.id)?;
        } else {
            org.remove(e.meta.id)?;
        }
    }
    org.remove(dir)
}

/// The accounts store as the engine sees it.
pub struct AccountsDirectory {
    accounts: Arc<Accounts>,
    /// `security.encryption`, for shares that do not set their own (reloadable).
    default_encryption: parking_lot::RwLock<crate::config::EncryptionPolicy>,
}

impl AccountsDirectory {
    /// Wraps the accounts store; `cfg` gives server-wide defaults.
    pub fn new(accounts: Arc<Accounts>, cfg: &Config) -> Self {
        Self { accounts, default_encryption: parking_lot::RwLock::new(cfg.security.encryption) }
    }

    /// Applies a reloaded configuration: the default share encryption and
    /// the password and lockout policy.
    pub fn reload(&self, cfg: &Config) {
        *self.default_encryption.write() = cfg.security.encryption;
        self.accounts.set_config(&cfg.accounts);
    }

    fn resolve(&self, mut s: ShareRecord) -> ShareRecord {
        s.encryption = Some(s.encryption.unwrap_or(*self.default_encryption.read()));
        s
    }
}

impl CredentialSource for AccountsDirectory {
    fn lookup(&self, domain: &str, user: &str) -> Result<Option<Credential>, AuthError> {
        let c = self.accounts.resolve_logon(domain, user).map_err(|e| AuthError::Store(e.to_string()))?;
        Ok(c.map(|c| Credential { user_id: c.user_id, org_id: c.org_id, user: c.user, org: c.org, nt_hash: c.nt_hash }))
    }
}

impl Directory for AccountsDirectory {
    fn credentials(&self) -> &dyn CredentialSource {
        self
    }

    fn find_share(&self, org: OrgId, name: &str) -> Option<ShareRecord> {
        self.accounts.find_share(org, name).ok().flatten().map(|s| self.resolve(s))
    }

    fn access(&self, share: &ShareRecord, user: UserId) -> Access {
        self.accounts.effective_access(share.id, user).unwrap_or(Access::None)
    }

    fn find_share_now(&self, org: OrgId, name: &str) -> Option<Option<ShareRecord>> {
        match self.accounts.find_share(org, name) {
            Ok(s) => Some(s.map(|s| self.resolve(s))),
            Err(e) => {
                tracing::warn!(error = %e, "share could not be read; re-checked at the next tick");
                None
            }
        }
    }

    fn access_now(&self, share: &ShareRecord, user: UserId) -> Option<Access> {
        match self.accounts.effective_access(share.id, user) {
            Ok(a) => Some(a),
            Err(e) => {
                tracing::warn!(error = %e, "share access could not be read; re-checked at the next tick");
                None
            }
        }
    }

    fn visible_shares(&self, org: OrgId, user: UserId) -> Vec<ShareRecord> {
        let all = self.accounts.list_shares(Some(org)).unwrap_or_default();
        all.into_iter().filter(|s| self.access(s, user) != Access::None).map(|s| self.resolve(s)).collect()
    }

    fn may_log_on(&self, user: UserId, now: SystemTime) -> bool {
        self.account_active(user, now) && !self.accounts.is_locked(user, now).unwrap_or(true)
    }

    fn account_active(&self, user: UserId, _now: SystemTime) -> bool {
        let Ok(Some(u)) = self.accounts.user(user) else {
            return false;
        };
        u.enabled && matches!(self.accounts.org(u.org_id), Ok(Some(o)) if !o.suspended)
    }

    fn logon_failed(&self, user: Option<UserId>, now: SystemTime) -> FailureOutcome {
        let Some(u) = user else {
            return FailureOutcome::Counted;
        };
        let threshold = self.accounts.config().lockout_threshold_all_sources;
        match self.accounts.record_logon_failure_of(u, now, threshold) {
            Ok(LockoutState::LockedNow { .. }) => FailureOutcome::LockedOut,
            _ => FailureOutcome::Counted,
        }
    }

    fn logon_succeeded(&self, user: UserId, now: SystemTime) {
        let _ = self.accounts.record_logon_success(user, now);
    }

    fn failures_on_record(&self, user: UserId, now: SystemTime) -> bool {
        self.accounts.has_logon_failures(user).unwrap_or(true) || self.accounts.is_locked(user, now).unwrap_or(true)
    }

    fn revision(&self) -> u64 {
        self.accounts.revision().unwrap_or(0)
    }

    fn org_quota(&self, org: OrgId) -> Option<u64> {
        self.accounts.org(org).ok().flatten().and_then(|o| o.quota_bytes)
    }

    fn set_share_root(&self, share: crate::types::ShareId, root: NodeId) -> bool {
        self.accounts.set_share_root(share, root).is_ok()
    }
}

/// Organization names and retention for the audit log CLI.
pub struct AccountsOrgs<'a>(pub &'a Accounts);

impl crate::cli::logs::OrgDirectory for AccountsOrgs<'_> {
    fn org_id(&self, name: &str) -> Option<OrgId> {
        self.0.find_org(name).ok().flatten().map(|o| o.id)
    }

    fn org_name(&self, id: OrgId) -> Option<String> {
        self.0.org(id).ok().flatten().map(|o| o.name)
    }

    fn retention(&self, id: OrgId) -> Option<crate::config::Retention> {
        self.0.org(id).ok().flatten().and_then(|o| o.retention)
    }
}

/// Administrative changes made with the CLI, recorded in the audit log
/// (the log takes a file lock per append, so the running server and the
/// CLI can write at once). Everything is durable when this is dropped.
pub struct CliAudit {
    log: Arc<crate::audit::AuditLog>,
}

impl CliAudit {
    /// Opens the audit log of the data directory for the CLI; `store`
    /// (opened without background work) supplies the organization keys.
    pub fn open(cfg: &Config, mk: &MasterKey, store: Arc<Store>) -> Result<Self, String> {
        let log = crate::audit::AuditLog::open(&crate::audit::audit_dir(&cfg.server.data_dir), store, mk, &cfg.audit)
            .map_err(|e| format!("cannot open the audit log: {e}"))?;
        Ok(Self { log })
    }
}

impl CliAudit {
    /// Records an operator action that is not an accounts change (key
    /// commands, restores) in the server log.
    pub fn operator_event(&self, action: &str, detail: String) {
        use crate::audit::{AuditSink, Event, EventKind};
        let kind = EventKind::Admin { action: action.into(), target: String::new(), detail };
        self.log.record(Event::new(SystemTime::now(), kind).user("operator"));
    }
}

impl crate::accounts::AdminAudit for CliAudit {
    fn org_event(&self, org: OrgId, actor: &str, action: &str, target: &str, detail: &str, failed: bool) {
        use crate::audit::{AuditSink, Event, EventKind, EventResult};
        let kind = EventKind::Admin { action: action.into(), target: target.into(), detail: detail.into() };
        let mut e = Event::new(SystemTime::now(), kind).user(actor).org(org);
        if failed {
            e = e.result(EventResult::Failed("failed".into()));
        }
        self.log.record(e);
    }

    fn admin_event(&self, ev: crate::accounts::AdminEvent) {
        use crate::audit::AuditSink;
        self.log.record(admin_audit_event(ev));
    }
}

/// An administrative change as the audit log records it: the CLI and the
/// console go through this one mapping, so the same change reads the same
/// in the operation log whichever way it was made.
pub fn admin_audit_event(ev: crate::accounts::AdminEvent) -> crate::audit::Event {
    use crate::audit::{Event, EventKind, EventResult};
    let action = format!("{:?}", ev.action);
    let action = action.split([' ', '{', '(']).next().unwrap_or("admin").to_string();
    let detail = ev.action.describe();
    let mut e = Event::new(ev.at, EventKind::Admin { action, target: String::new(), detail }).user(ev.actor);
    if let Some(o) = ev.org {
        e = e.org(o);
    }
    if detail_denied(&ev.action) {
        e = e.result(EventResult::Denied("refused".into()));
    }
    e
}

/// Administrative changes made in the running server (the web console),
/// recorded through the server's own audit sink.
pub struct SinkAudit(pub Arc<dyn crate::audit::AuditSink>);

impl crate::accounts::AdminAudit for SinkAudit {
    fn admin_event(&self, ev: crate::accounts::AdminEvent) {
        self.0.record(admin_audit_event(ev));
    }
}

/// Refused attempts, failed `--as` logins and the lockouts they cause are
/// recorded as denied.
fn detail_denied(a: &crate::accounts::AdminAction) -> bool {
    use crate::accounts::AdminAction as A;
    matches!(a, A::Denied { .. } | A::AdminLogin { ok: false, .. } | A::LockedOut { .. })
}

impl Drop for CliAudit {
    fn drop(&mut self) {
        if let Err(e) = self.log.shutdown() {
            eprintln!("warning: audit log not flushed: {e}");
        }
    }
}

/// The remote backups' generations as the engine's Previous Versions.
pub struct PreviousVersions(pub Arc<crate::backup::remote::views::Views>);

impl crate::engine::services::Snapshots for PreviousVersions {
    fn times(&self, org: OrgId, share: &str) -> Vec<i64> {
        self.0.times(org, share)
    }

    fn open(&self, org: OrgId, share: &str, time: i64, data: bool) -> Option<crate::engine::services::SnapshotView> {
        self.0.open(org, share, time, data).map(|(store, root)| crate::engine::services::SnapshotView { store, root })
    }
}
