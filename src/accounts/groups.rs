//! Groups of users within an organization, used in share access lists.

use rusqlite::{Connection, OptionalExtension, params};

use super::{Accounts, AccountsError, GroupId, GroupRecord, names};
use crate::types::{OrgId, UserId};

fn members(c: &Connection, id: GroupId) -> Result<Vec<String>, AccountsError> {
    let mut st = c.prepare_cached(
        "SELECT u.name FROM group_members m JOIN users u ON u.id = m.user_id \
         WHERE m.group_id = ?1 ORDER BY u.name_key",
    )?;
    Ok(st.query_map([id.0], |r| r.get(0))?.collect::<Result<_, _>>()?)
}

pub(super) fn group_by_name(c: &Connection, org: OrgId, name: &str) -> Result<Option<GroupRecord>, AccountsError> {
    let row: Option<(u64, String)> = c
        .prepare_cached("SELECT id, name FROM groups WHERE org_id = ?1 AND name_key = ?2")?
        .query_row(params![org.0, names::fold(name)], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let Some((id, name)) = row else {
        return Ok(None);
    };
    let id = GroupId(id);
    Ok(Some(GroupRecord { id, org_id: org, name, members: members(c, id)? }))
}

fn group_org(c: &Connection, id: GroupId) -> Result<OrgId, AccountsError> {
    c.prepare_cached("SELECT org_id FROM groups WHERE id = ?1")?
        .query_row([id.0], |r| r.get(0))
        .optional()?
        .map(OrgId)
        .ok_or_else(|| AccountsError::NotFound { what: "group", name: format!("#{}", id.0) })
}

fn user_org(c: &Connection, id: UserId) -> Result<OrgId, AccountsError> {
    c.prepare_cached("SELECT org_id FROM users WHERE id = ?1")?
        .query_row([id.0], |r| r.get(0))
        .optional()?
        .map(OrgId)
        .ok_or_else(|| AccountsError::NotFound { what: "user", name: format!("#{}", id.0) })
}

impl Accounts {
    /// Creates an empty group in `org`.
    pub fn add_group(&self, org: OrgId, name: &str) -> Result<GroupRecord, AccountsError> {
        let name = names::group_name(name)?;
        self.write(|tx| {
            if group_by_name(tx, org, &name)?.is_some() {
                return Err(AccountsError::Exists { what: "group", name: name.clone() });
            }
            tx.execute(
                "INSERT INTO groups (org_id, name, name_key) VALUES (?1, ?2, ?3)",
                params![org.0, name, names::fold(&name)],
            )?;
            let id = GroupId(u64::try_from(tx.last_insert_rowid()).unwrap_or(0));
            Ok(GroupRecord { id, org_id: org, name, members: Vec::new() })
        })
    }

    /// Deletes a group; its share entries go with it.
    pub fn delete_group(&self, id: GroupId) -> Result<(), AccountsError> {
        self.write(|tx| match tx.execute("DELETE FROM groups WHERE id = ?1", [id.0])? {
            0 => Err(AccountsError::NotFound { what: "group", name: format!("#{}", id.0) }),
            _ => Ok(()),
        })
    }

    /// The group `name` of `org`, with its members.
    pub fn find_group(&self, org: OrgId, name: &str) -> Result<Option<GroupRecord>, AccountsError> {
        self.read(|c| group_by_name(c, org, name))
    }

    /// All groups of `org`, by name, with members.
    pub fn list_groups(&self, org: OrgId) -> Result<Vec<GroupRecord>, AccountsError> {
        self.read(|c| {
            let rows: Vec<(u64, String)> = c
                .prepare_cached("SELECT id, name FROM groups WHERE org_id = ?1 ORDER BY name_key")?
                .query_map([org.0], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<_, _>>()?;
            rows.into_iter()
                .map(|(id, name)| {
                    let id = GroupId(id);
                    Ok(GroupRecord { id, org_id: org, name, members: members(c, id)? })
                })
                .collect()
        })
    }

    /// Adds a user to a group of the same organization (idempotent).
    pub fn add_group_member(&self, group: GroupId, user: UserId) -> Result<(), AccountsError> {
        self.write(|tx| {
            if group_org(tx, group)? != user_org(tx, user)? {
                return Err(AccountsError::Denied("a group can only contain users of its own organization".into()));
            }
            tx.execute(
                "INSERT OR IGNORE INTO group_members (group_id, user_id) VALUES (?1, ?2)",
                params![group.0, user.0],
            )?;
            Ok(())
        })
    }

    /// Removes a user from a group; false if they were not a member.
    pub fn remove_group_member(&self, group: GroupId, user: UserId) -> Result<bool, AccountsError> {
        self.write(|tx| {
            let n =
                tx.execute("DELETE FROM group_members WHERE group_id = ?1 AND user_id = ?2", params![group.0, user.0])?;
            Ok(n > 0)
        })
    }
}
