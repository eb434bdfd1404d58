//! Shares and per-share access for users and groups.
//!
//! Share names are unique per organization: clients connect to
//! `\\server\share` without naming one (MS-SMB2 2.2.9 TREE_CONNECT carries
//! only the path), so the session's organization selects the share, and
//! ACME's `docs` and GLOBEX's `docs` are two shares that never meet. Users of
//! another organization never get access, whatever the entries say.

use std::time::SystemTime;

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::records::{encryption_str, parse_encryption, to_unix};
use super::{Access, AccessEntry, Accounts, AccountsError, Grantee, Provisioner, ShareRecord, names};
use crate::config::EncryptionPolicy;
use crate::types::{NodeId, OrgId, ShareId, UserId};

const SHARE_COLS: &str = "s.id, s.org_id, o.name, s.name, s.root_node, s.encryption, s.comment, \
     s.default_access, s.access_based_enum, \
     NOT EXISTS (SELECT 1 FROM share_no_previous_versions p WHERE p.share_id = s.id) \
     FROM shares s JOIN orgs o ON o.id = s.org_id";

/// What `add_share` needs.
#[derive(Debug, Clone)]
pub struct NewShare {
    /// Owning organization.
    pub org: OrgId,
    /// Share name (unique in its organization).
    pub name: String,
    /// Free text shown to clients.
    pub comment: String,
    /// `None`: inherit `[security] encryption`.
    pub encryption: Option<EncryptionPolicy>,
    /// Access of org members without an entry (usually `ReadWrite`).
    pub default_access: Access,
}

fn share_from_row(r: &Row<'_>) -> rusqlite::Result<ShareRecord> {
    let enc: Option<String> = r.get(5)?;
    let default: String = r.get(7)?;
    Ok(ShareRecord {
        id: ShareId(r.get(0)?),
        org_id: OrgId(r.get(1)?),
        org: r.get(2)?,
        name: r.get(3)?,
        root: NodeId(r.get(4)?),
        // Unknown values (a newer writer) fail safe: required / none.
        encryption: enc.map(|e| parse_encryption(&e).unwrap_or(EncryptionPolicy::Required)),
        comment: r.get(6)?,
        default_access: Access::parse(&default).unwrap_or(Access::None),
        access_based_enum: r.get(8)?,
        previous_versions: r.get(9)?,
    })
}

fn share_by_id(c: &Connection, id: ShareId) -> Result<Option<ShareRecord>, AccountsError> {
    let sql = format!("SELECT {SHARE_COLS} WHERE s.id = ?1");
    Ok(c.prepare_cached(&sql)?.query_row([id.0], share_from_row).optional()?)
}

/// The unique key of a share: "<org id>/<folded name>" (share names never
/// contain '/'), so the column's UNIQUE constraint is per organization.
fn share_key(org: OrgId, name: &str) -> String {
    format!("{}/{}", org.0, names::fold(name))
}

fn share_by_name(c: &Connection, org: OrgId, name: &str) -> Result<Option<ShareRecord>, AccountsError> {
    let sql = format!("SELECT {SHARE_COLS} WHERE s.name_key = ?1");
    Ok(c.prepare_cached(&sql)?.query_row([share_key(org, name)], share_from_row).optional()?)
}

fn not_found(id: ShareId) -> AccountsError {
    AccountsError::NotFound { what: "share", name: format!("#{}", id.0) }
}

/// The organization a principal belongs to.
fn principal_org(c: &Connection, p: Grantee) -> Result<OrgId, AccountsError> {
    let (sql, id, what) = match p {
        Grantee::User(u) => ("SELECT org_id FROM users WHERE id = ?1", u.0, "user"),
        Grantee::Group(g) => ("SELECT org_id FROM groups WHERE id = ?1", g.0, "group"),
    };
    c.prepare_cached(sql)?
        .query_row([id], |r| r.get(0))
        .optional()?
        .map(OrgId)
        .ok_or_else(|| AccountsError::NotFound { what, name: format!("#{id}") })
}

impl Accounts {
    /// Creates a share with a fresh root directory from `prov`.
    pub fn add_share(&self, new: &NewShare, prov: &dyn Provisioner) -> Result<ShareRecord, AccountsError> {
        let name = names::share_name(&new.name)?;
        if self.find_share(new.org, &name)?.is_some() {
            return Err(AccountsError::Exists { what: "share", name });
        }
        let root = prov.create_share_root(new.org)?;
        let res = self.write(|tx| {
            tx.execute(
                "INSERT INTO shares (org_id, name, name_key, root_node, encryption, comment, default_access, created) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    new.org.0,
                    name,
                    share_key(new.org, &name),
                    root.0,
                    new.encryption.map(encryption_str),
                    new.comment,
                    new.default_access.as_str(),
                    to_unix(SystemTime::now())
                ],
            )?;
            let id = ShareId(u64::try_from(tx.last_insert_rowid()).unwrap_or(0));
            share_by_id(tx, id)?.ok_or_else(|| not_found(id))
        });
        if res.is_err() {
            // Lost a race for the name (or the org vanished): do not leave
            // an unreachable directory behind. Best effort; the error that
            // matters is the insert's.
            let _ = prov.remove_share_root(new.org, root);
        }
        res
    }

    /// The share of `org` that its users call `name` (case-insensitive),
    /// for TREE_CONNECT.
    pub fn find_share(&self, org: OrgId, name: &str) -> Result<Option<ShareRecord>, AccountsError> {
        self.read(|c| share_by_name(c, org, name))
    }

    /// Every organization's share called `name`: for the operator's CLI
    /// only, which sees all tenants anyway.
    pub fn find_shares_anywhere(&self, name: &str) -> Result<Vec<ShareRecord>, AccountsError> {
        let folded = names::fold(name);
        Ok(self.list_shares(None)?.into_iter().filter(|s| names::fold(&s.name) == folded).collect())
    }

    /// The share with id `id`.
    pub fn share(&self, id: ShareId) -> Result<Option<ShareRecord>, AccountsError> {
        self.read(|c| share_by_id(c, id))
    }

    /// Shares of `org`, or of every organization, by name.
    pub fn list_shares(&self, org: Option<OrgId>) -> Result<Vec<ShareRecord>, AccountsError> {
        self.read(|c| {
            let sql =
                format!("SELECT {SHARE_COLS} WHERE (?1 IS NULL OR s.org_id = ?1) ORDER BY o.name_key, s.name_key");
            let mut st = c.prepare_cached(&sql)?;
            let rows = st.query_map([org.map(|o| o.0)], share_from_row)?.collect::<Result<_, _>>()?;
            Ok(rows)
        })
    }

    /// Removes a share and its access entries; with `delete_data`, also its
    /// directory tree (otherwise the data stays in the organization's storage).
    pub fn remove_share(&self, id: ShareId, delete_data: Option<&dyn Provisioner>) -> Result<(), AccountsError> {
        let share = self.share(id)?.ok_or_else(|| not_found(id))?;
        self.write(|tx| match tx.execute("DELETE FROM shares WHERE id = ?1", [id.0])? {
            0 => Err(not_found(id)),
            _ => Ok(()),
        })?;
        if let Some(p) = delete_data {
            p.remove_share_root(share.org_id, share.root)?;
        }
        Ok(())
    }

    /// Sets the share's encryption policy (`None`: inherit the server's).
    pub fn set_share_encryption(&self, id: ShareId, p: Option<EncryptionPolicy>) -> Result<(), AccountsError> {
        self.update_share(id, "encryption", p.map(|p| encryption_str(p).to_string()))
    }

    /// Turns access-based enumeration on or off: listings then omit the
    /// entries a user could not open for reading.
    pub fn set_share_access_based_enum(&self, id: ShareId, on: bool) -> Result<(), AccountsError> {
        self.write(|tx| {
            match tx.execute("UPDATE shares SET access_based_enum = ?2 WHERE id = ?1", params![id.0, on])? {
                0 => Err(not_found(id)),
                _ => Ok(()),
            }
        })
    }

    /// Offers the share's backup generations as Previous Versions (the
    /// default) or not.
    pub fn set_share_previous_versions(&self, id: ShareId, on: bool) -> Result<(), AccountsError> {
        self.write(|tx| {
            if tx.query_row("SELECT count(*) FROM shares WHERE id = ?1", [id.0], |r| r.get::<_, i64>(0))? == 0 {
                return Err(not_found(id));
            }
            if on {
                tx.execute("DELETE FROM share_no_previous_versions WHERE share_id = ?1", [id.0])?;
            } else {
                tx.execute("INSERT OR IGNORE INTO share_no_previous_versions (share_id) VALUES (?1)", [id.0])?;
            }
            Ok(())
        })
    }

    /// Records the share's root directory once the server has created it
    /// (shares added while the server runs get their storage lazily).
    pub fn set_share_root(&self, id: ShareId, root: NodeId) -> Result<(), AccountsError> {
        self.write(|tx| match tx.execute("UPDATE shares SET root_node = ?2 WHERE id = ?1", params![id.0, root.0])? {
            0 => Err(not_found(id)),
            _ => Ok(()),
        })
    }

    /// Sets the comment shown to clients.
    pub fn set_share_comment(&self, id: ShareId, comment: &str) -> Result<(), AccountsError> {
        self.update_share(id, "comment", Some(comment.to_string()))
    }

    /// Sets the access of org members that no entry mentions.
    pub fn set_share_default_access(&self, id: ShareId, a: Access) -> Result<(), AccountsError> {
        self.update_share(id, "default_access", Some(a.as_str().to_string()))
    }

    fn update_share(&self, id: ShareId, col: &'static str, v: Option<String>) -> Result<(), AccountsError> {
        // `col` is one of the literals above, never input.
        let sql = format!("UPDATE shares SET {col} = ?2 WHERE id = ?1");
        self.write(|tx| match tx.execute(&sql, params![id.0, v])? {
            0 => Err(not_found(id)),
            _ => Ok(()),
        })
    }

    /// Sets (replaces) the access entry of a user or group of the share's
    /// own organization.
    pub fn set_access(&self, share: ShareId, who: Grantee, access: Access) -> Result<(), AccountsError> {
        self.write(|tx| {
            let s = share_by_id(tx, share)?.ok_or_else(|| not_found(share))?;
            if principal_org(tx, who)? != s.org_id {
                return Err(AccountsError::Denied(format!(
                    "share {:?} belongs to organization {}; only its users and groups can be granted access",
                    s.name, s.org
                )));
            }
            let (u, g) = split(who);
            let col = if u.is_some() { "user_id" } else { "group_id" };
            tx.execute(
                &format!("DELETE FROM share_access WHERE share_id = ?1 AND {col} = ?2"),
                params![share.0, u.or(g)],
            )?;
            tx.execute(
                "INSERT INTO share_access (share_id, user_id, group_id, access) VALUES (?1, ?2, ?3, ?4)",
                params![share.0, u, g, access.as_str()],
            )?;
            Ok(())
        })
    }

    /// Removes an entry (the principal falls back to the share default);
    /// false if there was none.
    pub fn revoke_access(&self, share: ShareId, who: Grantee) -> Result<bool, AccountsError> {
        let (u, g) = split(who);
        self.write(|tx| {
            let n = tx.execute(
                "DELETE FROM share_access WHERE share_id = ?1 AND (user_id = ?2 OR group_id = ?3)",
                params![share.0, u, g],
            )?;
            Ok(n > 0)
        })
    }

    /// The explicit entries of a share, users first, by name.
    pub fn access_list(&self, share: ShareId) -> Result<Vec<AccessEntry>, AccountsError> {
        self.read(|c| {
            let mut st = c.prepare_cached(
                "SELECT a.user_id, a.group_id, coalesce(u.name, g.name), a.access FROM share_access a \
                 LEFT JOIN users u ON u.id = a.user_id LEFT JOIN groups g ON g.id = a.group_id \
                 WHERE a.share_id = ?1 ORDER BY a.user_id IS NULL, coalesce(u.name_key, g.name_key)",
            )?;
            let rows = st.query_map([share.0], |r| {
                let u: Option<u64> = r.get(0)?;
                let g: Option<u64> = r.get(1)?;
                let a: String = r.get(3)?;
                let grantee = match u {
                    Some(u) => Grantee::User(UserId(u)),
                    None => Grantee::Group(super::GroupId(g.unwrap_or(0))),
                };
                Ok(AccessEntry { grantee, name: r.get(2)?, access: Access::parse(&a).unwrap_or(Access::None) })
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    /// What `user` may do on `share`: the highest of the user's own entry
    /// and their groups' entries, or the share default when none applies.
    /// `None` for users of other organizations, disabled users and
    /// suspended organizations.
    pub fn effective_access(&self, share: ShareId, user: UserId) -> Result<Access, AccountsError> {
        self.read(|c| {
            let row: Option<(u64, String, u64, bool, bool)> = c
                .prepare_cached(
                    "SELECT s.org_id, s.default_access, u.org_id, u.enabled, o.suspended \
                     FROM shares s, users u JOIN orgs o ON o.id = u.org_id WHERE s.id = ?1 AND u.id = ?2",
                )?
                .query_row(params![share.0, user.0], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))
                .optional()?;
            let Some((share_org, default, user_org, enabled, suspended)) = row else {
                return Ok(Access::None);
            };
            if share_org != user_org || !enabled || suspended {
                return Ok(Access::None);
            }
            let entries: Vec<String> = c
                .prepare_cached(
                    "SELECT access FROM share_access WHERE share_id = ?1 AND (user_id = ?2 OR group_id IN \
                     (SELECT group_id FROM group_members WHERE user_id = ?2))",
                )?
                .query_map(params![share.0, user.0], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            let best = entries.iter().filter_map(|a| Access::parse(a).ok()).max();
            Ok(best.unwrap_or_else(|| Access::parse(&default).unwrap_or(Access::None)))
        })
    }
}

fn split(p: Grantee) -> (Option<u64>, Option<u64>) {
    match p {
        Grantee::User(u) => (Some(u.0), None),
        Grantee::Group(g) => (None, Some(g.0)),
    }
}
