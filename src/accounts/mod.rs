//! Organizations, users, groups, shares and per-share access, in a local
//! SQLite database (`<data_dir>/accounts.db`, WAL) shared by the server and
//! the administration CLI.
//!
//! Secrets: a user's password is kept only as an Argon2id hash (for
//! administrative logins) and as the NT hash NTLM needs, sealed with a
//! master-key-derived key and the user id as associated data. Neither is
//! ever formatted, logged or returned except the NT hash inside a
//! [`LogonCandidate`].
//!
//! Every administrative write bumps a `revision` counter in the database,
//! so the server notices changes made by another process (the CLI) by
//! polling [`Accounts::revision`].

mod admin;
mod bootstrap;
mod groups;
mod logon;
pub mod names;
mod orgs;
pub mod password;
mod provision;
mod records;
mod schema;
mod shares;
mod totp;
mod users;

#[cfg(test)]
mod tests;

use std::path::Path;

use parking_lot::Mutex;
use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior};

use crate::config::AccountsConfig;
use crate::keys::{KeyError, MasterKey, SealKey};

pub use admin::{
    Actor, Admin, AdminAction, AdminAudit, AdminEvent, GranteeName, NoAudit, RecordingAudit, SelfService, ShareChange,
    ShareOptions,
};
pub use bootstrap::{GeneratedAdmin, bootstrap};
pub use logon::{SignInFailure, SignInRefusal};
pub use password::HashCost;
pub use provision::{ProvisionError, Provisioner, TestProvisioner};
pub use records::{
    Access, AccessEntry, Grantee, GroupId, GroupRecord, LockoutState, LogonCandidate, OrgRecord, Role, ShareRecord,
    UserRecord, encryption_str, parse_encryption, parse_retention, retention_str,
};
pub use shares::NewShare;

/// Master-key derivation label of the key that seals NT hashes.
pub const NT_HASH_LABEL: &str = "smbvault/mk/nt-hash";
const KEY_CHECK_AD: &[u8] = b"smbvault/accounts/key-check";

/// Why an accounts operation failed. Messages say what to fix and never
/// contain a password or hash.
#[derive(Debug, thiserror::Error)]
pub enum AccountsError {
    /// SQLite failed (I/O, corruption, busy for longer than the timeout).
    #[error("accounts database: {0}")]
    Db(#[from] rusqlite::Error),
    /// A name or argument is malformed.
    #[error("{0}")]
    Invalid(String),
    /// The named object does not exist (or is not visible to the caller).
    #[error("{what} \"{name}\" does not exist")]
    NotFound {
        /// "organization", "user", "group" or "share".
        what: &'static str,
        /// The name looked up.
        name: String,
    },
    /// An object with that name exists already.
    #[error("{what} \"{name}\" already exists")]
    Exists {
        /// "organization", "user", "group" or "share".
        what: &'static str,
        /// The conflicting name.
        name: String,
    },
    /// The password does not satisfy `[accounts]` policy.
    #[error("password rejected: {0}")]
    WeakPassword(String),
    /// The acting administrator may not do this.
    #[error("permission denied: {0}")]
    Denied(String),
    /// A sealed value did not open: wrong master key or tampering.
    #[error("{0}")]
    Key(#[from] KeyError),
    /// The storage engine could not create or remove an organization's data.
    #[error("storage: {0}")]
    Provision(#[from] ProvisionError),
}

/// The accounts store. `Send + Sync`; share it as `Arc<Accounts>`.
pub struct Accounts {
    conn: Mutex<Connection>,
    nt_key: SealKey,
    /// Password and lockout policy; SIGHUP may replace it ([`Self::set_config`]).
    cfg: parking_lot::RwLock<AccountsConfig>,
    cost: HashCost,
    erase_after_days: u32,
}

impl Accounts {
    /// Opens (creating if needed) the database at `path`. Fails if it was
    /// created with another master key or by a newer version.
    pub fn open(path: &Path, mk: &MasterKey, cfg: &AccountsConfig) -> Result<Self, AccountsError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| AccountsError::Invalid(format!("cannot create {}: {e}", dir.display())))?;
        }
        let conn = Connection::open(path)?;
        schema::init(&conn)?;
        let v = schema::version(&conn)?;
        if v > schema::SCHEMA_VERSION {
            return Err(AccountsError::Invalid(format!(
                "{} has schema version {v}, newer than this smbvault understands ({}); upgrade smbvault",
                path.display(),
                schema::SCHEMA_VERSION
            )));
        }
        let nt_key = SealKey::new(&mk.derive(NT_HASH_LABEL));
        check_key(&conn, &nt_key, path)?;
        Ok(Self {
            conn: Mutex::new(conn),
            nt_key,
            cfg: parking_lot::RwLock::new(cfg.clone()),
            cost: HashCost::Standard,
            erase_after_days: 30,
        })
    }

    /// Sets the Argon2 cost of new password hashes (tests and benchmarks).
    pub fn with_hash_cost(mut self, cost: HashCost) -> Self {
        self.cost = cost;
        self
    }

    /// Days between a contract's end and the erasure of its organization
    /// (`[backup] erase_after_days`, default 30).
    pub fn with_erase_after_days(mut self, days: u32) -> Self {
        self.erase_after_days = days;
        self
    }

    /// The password and lockout policy in force.
    pub fn config(&self) -> AccountsConfig {
        self.cfg.read().clone()
    }

    /// Replaces the password and lockout policy (configuration reload):
    /// the next logon failure and password change follow it.
    pub fn set_config(&self, cfg: &AccountsConfig) {
        *self.cfg.write() = cfg.clone();
    }

    /// A number that changes whenever an organization, user, group, share
    /// or permission changes, in this process or another one. Cheap: one
    /// indexed read. Logon failures and successes do not change it.
    pub fn revision(&self) -> Result<u64, AccountsError> {
        self.read(|c| {
            let mut st = c.prepare_cached("SELECT value FROM meta WHERE key = 'revision'")?;
            Ok(st.query_row([], |r| r.get::<_, u64>(0))?)
        })
    }

    /// Runs `f` on the connection without a write transaction.
    fn read<T>(&self, f: impl FnOnce(&Connection) -> Result<T, AccountsError>) -> Result<T, AccountsError> {
        let conn = self.conn.lock();
        f(&conn)
    }

    /// Runs `f` in an IMMEDIATE transaction (so concurrent writers from
    /// another process queue on the busy timeout instead of failing on
    /// upgrade) and bumps the revision before committing.
    fn write<T>(&self, f: impl FnOnce(&Transaction<'_>) -> Result<T, AccountsError>) -> Result<T, AccountsError> {
        self.write_inner(true, f)
    }

    /// Like [`Accounts::write`] but leaves the revision alone: logon
    /// bookkeeping must not make the server re-validate every session.
    fn write_quiet<T>(&self, f: impl FnOnce(&Transaction<'_>) -> Result<T, AccountsError>) -> Result<T, AccountsError> {
        self.write_inner(false, f)
    }

    fn write_inner<T>(
        &self,
        bump: bool,
        f: impl FnOnce(&Transaction<'_>) -> Result<T, AccountsError>,
    ) -> Result<T, AccountsError> {
        let mut conn = self.conn.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let out = f(&tx)?;
        if bump {
            tx.execute("UPDATE meta SET value = value + 1 WHERE key = 'revision'", [])?;
        }
        tx.commit()?;
        Ok(out)
    }

    /// Associated data binding a sealed NT hash to its user row, so a
    /// hash copied onto another row does not open.
    fn nt_ad(user_id: u64) -> [u8; 8] {
        user_id.to_be_bytes()
    }
}

fn check_key(conn: &Connection, key: &SealKey, path: &Path) -> Result<(), AccountsError> {
    let sealed: Option<Vec<u8>> =
        conn.query_row("SELECT sealed FROM key_check WHERE id = 1", [], |r| r.get(0)).optional()?;
    match sealed {
        None => {
            let s = key.seal(KEY_CHECK_AD, b"ok");
            conn.execute("INSERT INTO key_check (id, sealed) VALUES (1, ?1)", [s])?;
            Ok(())
        }
        Some(s) => key.open(KEY_CHECK_AD, &s).map(|_| ()).map_err(|_| {
            AccountsError::Key(KeyError::Unlock(format!(
                "{} was created with a different master key; use the key file of this data directory",
                path.display()
            )))
        }),
    }
}
