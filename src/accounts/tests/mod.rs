//! Unit tests of the accounts store, one file per rule family.

mod admin;
mod logon;
mod secrets;
mod store;

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::{Accounts, HashCost, OrgRecord, Role, TestProvisioner, UserRecord};
use crate::config::AccountsConfig;
use crate::keys::{Key32, MasterKey};

/// A store in a temp dir, with cheap Argon2 so tests stay fast.
pub(super) struct Fixture {
    pub dir: tempfile::TempDir,
    pub mk: MasterKey,
    pub acc: Accounts,
    pub prov: TestProvisioner,
}

impl Fixture {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mk = MasterKey::from_key(Key32::random());
        let acc = Self::open_at(&dir.path().join("accounts.db"), &mk);
        Self { dir, mk, acc, prov: TestProvisioner::new() }
    }

    pub fn open_at(path: &std::path::Path, mk: &MasterKey) -> Accounts {
        Accounts::open(path, mk, &AccountsConfig::default()).unwrap().with_hash_cost(HashCost::InsecureFast)
    }

    pub fn db_path(&self) -> PathBuf {
        self.dir.path().join("accounts.db")
    }

    /// A second, independent connection to the same file (like the CLI).
    pub fn second(&self) -> Accounts {
        Self::open_at(&self.db_path(), &self.mk)
    }

    pub fn org(&self, name: &str) -> OrgRecord {
        self.acc.create_org(name, &self.prov).unwrap()
    }

    pub fn user(&self, org: &OrgRecord, name: &str) -> UserRecord {
        self.acc.add_user(org.id, name, Role::Member, PW).unwrap()
    }
}

/// A password that passes the default policy.
pub(super) const PW: &str = "Correct-Horse-42";

/// A fixed instant for clock-injected tests.
pub(super) fn t(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_700_000_000 + secs)
}

/// The server shares one store between tasks.
#[test]
fn accounts_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Accounts>();
    check::<TestProvisioner>();
}
