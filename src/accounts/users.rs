//! Users: add, delete, enable/disable, passwords, roles.

use std::time::SystemTime;

use rusqlite::{Connection, OptionalExtension, Row, params};
use zeroize::Zeroizing;

use super::records::{from_unix, to_unix};
use super::{Accounts, AccountsError, Role, UserRecord, names, password};
use crate::types::{OrgId, UserId};

pub(super) const USER_COLS: &str = "u.id, u.org_id, o.name, u.name, u.role, u.enabled, \
     u.locked_until, u.created, u.pw_changed FROM users u JOIN orgs o ON o.id = u.org_id";

pub(super) fn user_from_row(r: &Row<'_>) -> rusqlite::Result<UserRecord> {
    let role: String = r.get(4)?;
    let locked: Option<i64> = r.get(6)?;
    Ok(UserRecord {
        id: UserId(r.get(0)?),
        org_id: OrgId(r.get(1)?),
        org: r.get(2)?,
        name: r.get(3)?,
        // The CHECK constraint keeps other values out; read them as member.
        role: Role::parse(&role).unwrap_or(Role::Member),
        enabled: r.get(5)?,
        locked_until: locked.map(from_unix),
        created: from_unix(r.get(7)?),
        password_changed: from_unix(r.get(8)?),
    })
}

pub(super) fn user_by_id(c: &Connection, id: UserId) -> Result<Option<UserRecord>, AccountsError> {
    let sql = format!("SELECT {USER_COLS} WHERE u.id = ?1");
    Ok(c.prepare_cached(&sql)?.query_row([id.0], user_from_row).optional()?)
}

pub(super) fn user_by_name(c: &Connection, org: OrgId, name: &str) -> Result<Option<UserRecord>, AccountsError> {
    let sql = format!("SELECT {USER_COLS} WHERE u.org_id = ?1 AND u.name_key = ?2");
    Ok(c.prepare_cached(&sql)?.query_row(params![org.0, names::fold(name)], user_from_row).optional()?)
}

fn not_found(id: UserId) -> AccountsError {
    AccountsError::NotFound { what: "user", name: format!("#{}", id.0) }
}

/// Hashes computed before taking the database lock: Argon2 takes tens of
/// milliseconds and must not stall logons.
struct Hashes {
    phc: String,
    nt: Zeroizing<[u8; 16]>,
}

impl Accounts {
    fn hashes(&self, user: &str, password: &str) -> Result<Hashes, AccountsError> {
        password::check_policy(&self.config(), user, password)?;
        Ok(Hashes { phc: password::hash_admin(self.cost, password)?, nt: password::nt_hash(password) })
    }

    fn store_nt(&self, c: &Connection, id: UserId, nt: &[u8; 16]) -> Result<(), AccountsError> {
        let sealed = self.nt_key.seal(&Self::nt_ad(id.0), nt);
        c.execute("UPDATE users SET nt_sealed = ?2 WHERE id = ?1", params![id.0, sealed])?;
        Ok(())
    }

    /// Adds a user to `org` after checking the name and the password policy.
    pub fn add_user(&self, org: OrgId, name: &str, role: Role, password: &str) -> Result<UserRecord, AccountsError> {
        let name = names::user_name(name)?;
        let h = self.hashes(&name, password)?;
        self.write(|tx| {
            let o = super::orgs::org_by_id(tx, org)?
                .ok_or_else(|| AccountsError::NotFound { what: "organization", name: format!("#{}", org.0) })?;
            if user_by_name(tx, org, &name)?.is_some() {
                return Err(AccountsError::Exists { what: "user", name: format!("{}\\{name}", o.name) });
            }
            let now = to_unix(SystemTime::now());
            tx.execute(
                "INSERT INTO users (org_id, name, name_key, role, pw_hash, nt_sealed, created, pw_changed) \
                 VALUES (?1, ?2, ?3, ?4, ?5, x'', ?6, ?6)",
                params![org.0, name, names::fold(&name), role.as_str(), h.phc, now],
            )?;
            let id = UserId(u64::try_from(tx.last_insert_rowid()).unwrap_or(0));
            self.store_nt(tx, id, &h.nt)?;
            user_by_id(tx, id)?.ok_or_else(|| not_found(id))
        })
    }

    /// The user with id `id`.
    pub fn user(&self, id: UserId) -> Result<Option<UserRecord>, AccountsError> {
        self.read(|c| user_by_id(c, id))
    }

    /// The user `name` of organization `org` (case-insensitive).
    pub fn find_user(&self, org: OrgId, name: &str) -> Result<Option<UserRecord>, AccountsError> {
        self.read(|c| user_by_name(c, org, name))
    }

    /// Users of one organization, or of all when `org` is `None`, by org then name.
    pub fn list_users(&self, org: Option<OrgId>) -> Result<Vec<UserRecord>, AccountsError> {
        self.read(|c| {
            let sql = format!("SELECT {USER_COLS} WHERE (?1 IS NULL OR u.org_id = ?1) ORDER BY o.name_key, u.name_key");
            let rows =
                c.prepare_cached(&sql)?.query_map([org.map(|o| o.0)], user_from_row)?.collect::<Result<_, _>>()?;
            Ok(rows)
        })
    }

    /// Deletes a user, their group memberships and share entries. The id
    /// is never given to another user.
    pub fn delete_user(&self, id: UserId) -> Result<(), AccountsError> {
        self.write(|tx| match tx.execute("DELETE FROM users WHERE id = ?1", [id.0])? {
            0 => Err(not_found(id)),
            _ => Ok(()),
        })
    }

    /// Enables or disables logons (existing sessions end at the next revision check).
    pub fn set_user_enabled(&self, id: UserId, enabled: bool) -> Result<(), AccountsError> {
        self.write(|tx| match tx.execute("UPDATE users SET enabled = ?2 WHERE id = ?1", params![id.0, enabled])? {
            0 => Err(not_found(id)),
            _ => Ok(()),
        })
    }

    /// Changes the role (member, org_admin, operator).
    pub fn set_role(&self, id: UserId, role: Role) -> Result<(), AccountsError> {
        self.write(|tx| match tx.execute("UPDATE users SET role = ?2 WHERE id = ?1", params![id.0, role.as_str()])? {
            0 => Err(not_found(id)),
            _ => Ok(()),
        })
    }

    /// Sets a new password (policy checked) and clears any lockout.
    pub fn set_password(&self, id: UserId, password: &str) -> Result<(), AccountsError> {
        let user = self.user(id)?.ok_or_else(|| not_found(id))?;
        let h = self.hashes(&user.name, password)?;
        self.write(|tx| {
            let n = tx.execute(
                "UPDATE users SET pw_hash = ?2, pw_changed = ?3, locked_until = NULL WHERE id = ?1",
                params![id.0, h.phc, to_unix(SystemTime::now())],
            )?;
            if n == 0 {
                return Err(not_found(id));
            }
            tx.execute("DELETE FROM logon_failures WHERE user_id = ?1", [id.0])?;
            self.store_nt(tx, id, &h.nt)
        })
    }

    /// Checks a password against the Argon2id hash (administrative logins).
    /// Does not look at enabled/locked state; see `Accounts::admin_login`.
    pub fn verify_password(&self, id: UserId, password: &str) -> Result<bool, AccountsError> {
        let phc: Option<String> = self
            .read(|c| Ok(c.query_row("SELECT pw_hash FROM users WHERE id = ?1", [id.0], |r| r.get(0)).optional()?))?;
        Ok(phc.is_some_and(|p| password::verify_admin(&p, password)))
    }
}
