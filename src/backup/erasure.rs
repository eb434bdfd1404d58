//! Erasure of organizations whose contract ended (the brief's "irrecoverably
//! erased one month after its contract ends").
//!
//! Erasure is crypto-shredding (docs/storage-format.md): the organization's
//! key is deleted from keys.db and scrubbed from its WAL and free pages, so
//! every copy of its data, backups included, is unreadable; then its data
//! directory and audit log directory are deleted and its users, groups and
//! shares removed. The steps run in an order that a crash at any point can
//! resume: the organization stays "due" until the last step marks it erased,
//! and every earlier step is idempotent.

use std::sync::Arc;
use std::time::SystemTime;

use crate::accounts::{Accounts, OrgRecord};
use crate::audit::{AuditLog, AuditSink, Event, EventKind};
use crate::storage::Store;
use crate::types::OrgId;

/// What [`erase_due`] needs.
pub struct Eraser {
    /// The accounts store (contract ends, users, shares).
    pub accounts: Arc<Accounts>,
    /// The storage engine holding the organization keys and data.
    pub store: Arc<Store>,
    /// The audit log, when enabled (its per-organization logs are dropped).
    pub audit_log: Option<Arc<AuditLog>>,
    /// Where the erasure itself is recorded (the server log).
    pub audit: Arc<dyn AuditSink>,
    /// Database backups, whose copies of keys.db must lose the key too.
    pub backups: Option<Arc<super::db::DbBackups>>,
    /// Data backups (`[backup] data_target`): keys.db, meta.db and segments.
    pub data_backups: Option<Arc<super::db::DbBackups>>,
    /// Remote backups (`[backup.targets]`): the organization's objects
    /// are deleted from every target.
    pub remote: Option<Arc<super::remote::Remote>>,
}

/// One organization erased.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Erased {
    /// Its id (never reused).
    pub id: OrgId,
    /// Its name before erasure.
    pub name: String,
}

impl Eraser {
    /// Erases every organization due at `now`. An organization that fails
    /// is skipped (and retried on the next call); the error is returned
    /// after the others were handled.
    pub fn erase_due(&self, now: SystemTime) -> Result<Vec<Erased>, String> {
        let due = self.accounts.orgs_due_for_erasure(now).map_err(|e| format!("cannot list organizations: {e}"))?;
        let mut done = Vec::new();
        let mut first_err = None;
        for org in due {
            match self.erase(&org, now) {
                Ok(()) => done.push(Erased { id: org.id, name: org.name }),
                Err(e) => {
                    tracing::error!(org = org.id.0, error = %e, "erasing an organization failed; retrying later");
                    first_err.get_or_insert(e);
                }
            }
        }
        match first_err {
            Some(e) if done.is_empty() => Err(e),
            _ => Ok(done),
        }
    }

    fn erase(&self, org: &OrgRecord, now: SystemTime) -> Result<(), String> {
        // Suspending first refuses new logons and (through the accounts
        // revision) cuts live sessions before the key disappears under them.
        self.accounts.set_org_suspended(org.id, true).map_err(|e| format!("suspend: {e}"))?;
        self.store.shred_org(org.id).map_err(|e| format!("shred: {e}"))?;
        // Every backup copy of keys.db still holds the wrapped key: purge
        // it before the organization counts as erased (idempotent).
        if let Some(b) = &self.backups {
            b.purge_org(org.id).map_err(|e| format!("backups: {e}"))?;
        }
        if let Some(b) = &self.data_backups {
            b.purge_org(org.id).map_err(|e| format!("data backups: {e}"))?;
        }
        if let Some(r) = &self.remote {
            let current = self.accounts.org_backup(org.id).map_err(|e| format!("accounts: {e}"))?;
            let n = r.erase_everywhere(org.id, current.as_ref().map(|c| c.target.as_str()))?;
            self.accounts.set_org_backup(org.id, None, "erasure", now).map_err(|e| format!("accounts: {e}"))?;
            tracing::info!(org = org.id.0, objects = n, "remote backups of the organization deleted");
        }
        if let Some(log) = &self.audit_log {
            log.erase_org(org.id).map_err(|e| format!("audit log: {e}"))?;
        }
        self.accounts.mark_org_erased(org.id).map_err(|e| format!("accounts: {e}"))?;
        let ended = org.contract_end.map(|d| d.to_string()).unwrap_or_default();
        self.audit.record(Event::new(
            now,
            EventKind::Admin {
                action: "org.erase".into(),
                target: org.name.clone(),
                detail: format!("organization #{} erased: contract ended {ended}; key and data destroyed", org.id.0),
            },
        ));
        tracing::info!(org = org.id.0, "organization erased (contract ended)");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::accounts::HashCost;
    use crate::app::StoreProvisioner;
    use crate::audit::{AuditSink, NullSink};
    use crate::config::AccountsConfig;
    use crate::keys::{Key32, MasterKey};
    use crate::storage::{StorageError, StoreOptions};
    use std::time::Duration;

    struct Fixture {
        _dir: tempfile::TempDir,
        eraser: Eraser,
        prov: StoreProvisioner,
    }

    fn fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let mk = MasterKey::from_key(Key32::random());
        let opts = StoreOptions { background: false, ..StoreOptions::default() };
        let store = crate::storage::Store::open(&dir.path().join("store"), &mk, opts).unwrap();
        let accounts = Arc::new(
            Accounts::open(&dir.path().join("accounts.db"), &mk, &AccountsConfig::default())
                .unwrap()
                .with_hash_cost(HashCost::InsecureFast),
        );
        let audit: Arc<dyn AuditSink> = Arc::new(NullSink);
        let prov = StoreProvisioner::new(store.clone(), SystemTime::now());
        let backups = Arc::new(crate::backup::db::DbBackups::new(
            dir.path(),
            dir.path().join("backups").join("db"),
            7,
            crate::backup::manifest::mac_key(&mk),
        ));
        let backups = Some(backups);
        Fixture {
            _dir: dir,
            eraser: Eraser { accounts, store, audit_log: None, audit, backups, data_backups: None, remote: None },
            prov,
        }
    }

    fn day(s: &str) -> chrono::NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn erases_only_orgs_past_the_grace_period_and_resumes_after_a_crash() {
        let f = fixture();
        let acc = &f.eraser.accounts;
        let gone = acc.create_org("GONE", &f.prov).unwrap();
        let recent = acc.create_org("RECENT", &f.prov).unwrap();
        let live = acc.create_org("LIVE", &f.prov).unwrap();
        for o in [&gone, &recent, &live] {
            f.eraser.store.org(o.id).unwrap().create_root(crate::types::FileTime(1)).unwrap();
        }
        acc.end_contract(gone.id, Some(day("2026-09-30"))).unwrap();
        acc.end_contract(recent.id, Some(day("2026-11-20"))).unwrap();
        // 2026-11-25T12:00Z: GONE's 30 days are over, RECENT's are not.
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_608_000);

        // A crash after shredding, before the accounts were updated: the
        // next run finishes the job.
        f.eraser.store.shred_org(gone.id).unwrap();
        let done = f.eraser.erase_due(now).unwrap();
        assert_eq!(done, vec![Erased { id: gone.id, name: "GONE".into() }]);
        assert!(matches!(f.eraser.store.org(gone.id), Err(StorageError::NotFound)));
        // A shredded organization's key can never be recreated.
        assert!(f.eraser.store.create_org(gone.id).is_err());
        assert!(acc.find_org("GONE").unwrap().is_none());
        assert!(acc.org(recent.id).unwrap().is_some() && f.eraser.store.org(recent.id).is_ok());
        assert!(f.eraser.store.org(live.id).is_ok());
        assert!(f.eraser.erase_due(now).unwrap().is_empty(), "erasure is done once");

        // RECENT is due 30 days after its last day.
        let later = now + Duration::from_secs(26 * 86_400);
        assert_eq!(f.eraser.erase_due(later).unwrap().len(), 1);
        assert!(f.eraser.store.org(live.id).is_ok());
    }
    fn wrapped_key(path: &std::path::Path, org: OrgId) -> Option<Vec<u8>> {
        use rusqlite::OptionalExtension;
        let c = rusqlite::Connection::open(path).unwrap();
        c.query_row("SELECT wrapped FROM org_keys WHERE org=?1", [org.0 as i64], |r| r.get(0)).optional().unwrap()
    }

    fn files_containing(dir: &std::path::Path, needle: &[u8]) -> Vec<String> {
        crate::backup::manifest::list_files(dir)
            .into_iter()
            .filter(|f| std::fs::read(dir.join(f)).unwrap().windows(needle.len()).any(|w| w == needle))
            .collect()
    }

    #[test]
    fn erasure_purges_the_key_from_every_backup_generation() {
        let f = fixture();
        let acc = &f.eraser.accounts;
        let gone = acc.create_org("GONE", &f.prov).unwrap();
        let live = acc.create_org("LIVE", &f.prov).unwrap();
        acc.add_user(gone.id, "carol", crate::accounts::Role::Member, "Passw0rd!-x").unwrap();
        for o in [&gone, &live] {
            f.eraser.store.org(o.id).unwrap().create_root(crate::types::FileTime(1)).unwrap();
            f.eraser.store.org(o.id).unwrap().flush().unwrap();
        }
        let backups = f.eraser.backups.clone().unwrap();
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_000_000);
        let g1 = backups.create(t0).unwrap();
        let g2 = backups.create(t0 + Duration::from_secs(86_400)).unwrap();
        let key = wrapped_key(&g1.dir.join("store/keys.db"), gone.id).expect("key in the backup");
        assert!(!files_containing(backups.dir(), &key).is_empty());

        acc.end_contract(gone.id, Some(day("2026-09-30"))).unwrap();
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_608_000);
        assert_eq!(f.eraser.erase_due(now).unwrap().len(), 1);
        for g in [&g1, &g2] {
            assert_eq!(wrapped_key(&g.dir.join("store/keys.db"), gone.id), None, "{}", g.name);
            assert!(wrapped_key(&g.dir.join("store/keys.db"), live.id).is_some());
            assert!(!g.dir.join(format!("store/orgs/{:016x}", gone.id.0)).exists());
            let users: i64 = rusqlite::Connection::open(g.dir.join("accounts.db"))
                .unwrap()
                .query_row("SELECT count(*) FROM users WHERE org_id=?1", [gone.id.0 as i64], |r| r.get(0))
                .unwrap();
            assert_eq!(users, 0, "the erased organization's users left the backup accounts.db");
            assert!(backups.verify(g).is_empty(), "{:?}", backups.verify(g));
        }
        assert_eq!(files_containing(backups.dir(), &key), Vec::<String>::new());
        // Idempotent: a second purge changes nothing.
        assert_eq!(backups.purge_org(gone.id).unwrap(), 0);
    }
}
