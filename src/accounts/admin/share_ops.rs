//! Group and share administration. Share names are per organization
//! (ACME's `docs` and GLOBEX's `docs` are two shares), so an org
//! administrator can neither see nor probe for another tenant's names: a
//! name they do not have is "not found", whether or not another
//! organization uses it.

use super::{Actor, Admin, AdminAction};
use crate::accounts::{
    Access, AccessEntry, AccountsError, Grantee, GroupRecord, NewShare, Provisioner, ShareRecord, encryption_str,
};
use crate::config::EncryptionPolicy;

/// A user or group named on the command line.
#[derive(Debug, Clone, Copy)]
pub enum GranteeName<'s> {
    /// `ORG\user`, `user@ORG` or `user` (in the share's organization).
    User(&'s str),
    /// A group of the share's organization.
    Group(&'s str),
}

/// Settings of a new share.
#[derive(Debug, Clone)]
pub struct ShareOptions {
    /// Shown to clients.
    pub comment: String,
    /// `None`: inherit `[security] encryption`.
    pub encryption: Option<EncryptionPolicy>,
    /// Access of org members without an entry.
    pub default_access: Access,
}

impl Default for ShareOptions {
    fn default() -> Self {
        Self { comment: String::new(), encryption: None, default_access: Access::ReadWrite }
    }
}

/// Changes to an existing share; `None` leaves a setting alone.
#[derive(Debug, Clone, Default)]
pub struct ShareChange {
    /// New comment.
    pub comment: Option<String>,
    /// New encryption policy (`Some(None)`: inherit).
    pub encryption: Option<Option<EncryptionPolicy>>,
    /// New default access.
    pub default_access: Option<Access>,
    /// Access-based enumeration on or off.
    pub access_based_enum: Option<bool>,
    /// Previous Versions (backup generations) offered or not.
    pub previous_versions: Option<bool>,
}

impl Admin<'_> {
    fn group_in(&self, org: Option<&str>, name: &str, attempted: &str) -> Result<GroupRecord, AccountsError> {
        let o = self.org(org, attempted)?;
        self.acc
            .find_group(o.id, name)?
            .ok_or_else(|| AccountsError::NotFound { what: "group", name: format!("{}\\{name}", o.name) })
    }

    /// Creates a group.
    pub fn group_add(&self, org: Option<&str>, name: &str) -> Result<GroupRecord, AccountsError> {
        let o = self.org(org, "add groups")?;
        let g = self.acc.add_group(o.id, name)?;
        self.emit(Some(o.id), AdminAction::GroupAdded { group: format!("{}\\{}", o.name, g.name) });
        Ok(g)
    }

    /// Deletes a group.
    pub fn group_delete(&self, org: Option<&str>, name: &str) -> Result<GroupRecord, AccountsError> {
        let g = self.group_in(org, name, "delete groups")?;
        self.acc.delete_group(g.id)?;
        self.emit(Some(g.org_id), AdminAction::GroupDeleted { group: g.name.clone() });
        Ok(g)
    }

    /// Groups of an organization.
    pub fn group_list(&self, org: Option<&str>) -> Result<Vec<GroupRecord>, AccountsError> {
        let o = self.org(org, "list groups")?;
        self.acc.list_groups(o.id)
    }

    /// Adds (`true`) or removes a member.
    pub fn group_member(&self, org: Option<&str>, group: &str, user: &str, add: bool) -> Result<(), AccountsError> {
        let g = self.group_in(org, group, "change groups")?;
        let o = self.acc.org(g.org_id)?.map(|o| o.name);
        let u = self.user(user, o.as_deref(), "change groups")?;
        let (group, user) = (g.name.clone(), u.qualified());
        if add {
            self.acc.add_group_member(g.id, u.id)?;
            self.emit(Some(g.org_id), AdminAction::GroupMemberAdded { group, user });
        } else {
            self.acc.remove_group_member(g.id, u.id)?;
            self.emit(Some(g.org_id), AdminAction::GroupMemberRemoved { group, user });
        }
        Ok(())
    }

    /// A share this actor may administer: `name` in organization `org`
    /// (org admins: their own). The operator may leave `org` out when only
    /// one organization has a share of that name.
    pub fn share(&self, org: Option<&str>, name: &str, attempted: &str) -> Result<ShareRecord, AccountsError> {
        let not_found = || AccountsError::NotFound { what: "share", name: name.into() };
        if org.is_none() && matches!(self.actor, Actor::Operator { .. }) && self.acc.list_orgs()?.len() != 1 {
            let mut found = self.acc.find_shares_anywhere(name)?;
            return match found.len() {
                0 => Err(not_found()),
                1 => Ok(found.remove(0)),
                _ => Err(AccountsError::Invalid(format!(
                    "share {name:?} exists in organizations {}: say which with --org ORG",
                    found.iter().map(|s| s.org.as_str()).collect::<Vec<_>>().join(", ")
                ))),
            };
        }
        let o = self.org(org, &format!("{attempted} share {name}"))?;
        self.acc.find_share(o.id, name)?.ok_or_else(not_found)
    }

    /// Creates a share (and its root directory) in an organization.
    pub fn share_add(
        &self,
        org: Option<&str>,
        name: &str,
        opts: &ShareOptions,
        prov: &dyn Provisioner,
    ) -> Result<ShareRecord, AccountsError> {
        let o = self.org(org, "add shares")?;
        let new = NewShare {
            org: o.id,
            name: name.to_string(),
            comment: opts.comment.clone(),
            encryption: opts.encryption,
            default_access: opts.default_access,
        };
        let s = self.acc.add_share(&new, prov)?;
        self.emit(Some(o.id), AdminAction::ShareAdded { share: s.name.clone() });
        Ok(s)
    }

    /// Shares of an organization (all for the operator when `None`).
    pub fn share_list(&self, org: Option<&str>) -> Result<Vec<ShareRecord>, AccountsError> {
        let scope = self.list_scope(org)?;
        self.acc.list_shares(scope.map(|o| o.id))
    }

    /// Removes a share; with `delete_data` also its files.
    pub fn share_remove(
        &self,
        org: Option<&str>,
        name: &str,
        delete_data: Option<&dyn Provisioner>,
    ) -> Result<ShareRecord, AccountsError> {
        let s = self.share(org, name, "remove")?;
        self.acc.remove_share(s.id, delete_data)?;
        let data_deleted = delete_data.is_some();
        self.emit(Some(s.org_id), AdminAction::ShareRemoved { share: s.name.clone(), data_deleted });
        Ok(s)
    }

    /// Changes comment, encryption or default access.
    pub fn share_set(&self, org: Option<&str>, name: &str, ch: &ShareChange) -> Result<ShareRecord, AccountsError> {
        let s = self.share(org, name, "change")?;
        let mut said = Vec::new();
        if let Some(c) = &ch.comment {
            self.acc.set_share_comment(s.id, c)?;
            said.push("comment".to_string());
        }
        if let Some(e) = ch.encryption {
            self.acc.set_share_encryption(s.id, e)?;
            said.push(format!("encryption={}", e.map_or("inherit", encryption_str)));
        }
        if let Some(a) = ch.default_access {
            self.acc.set_share_default_access(s.id, a)?;
            said.push(format!("default_access={}", a.as_str()));
        }
        if let Some(on) = ch.access_based_enum {
            self.acc.set_share_access_based_enum(s.id, on)?;
            said.push(format!("access_based_enumeration={}", if on { "on" } else { "off" }));
        }
        if let Some(on) = ch.previous_versions {
            self.acc.set_share_previous_versions(s.id, on)?;
            said.push(format!("previous_versions={}", if on { "on" } else { "off" }));
        }
        self.emit(Some(s.org_id), AdminAction::ShareChanged { share: s.name.clone(), setting: said.join(", ") });
        self.acc.share(s.id)?.ok_or_else(|| AccountsError::NotFound { what: "share", name: name.into() })
    }

    fn principal(&self, s: &ShareRecord, who: GranteeName<'_>) -> Result<(Grantee, String), AccountsError> {
        match who {
            GranteeName::User(spec) => {
                let u = self.user(spec, Some(&s.org), "grant access to")?;
                Ok((Grantee::User(u.id), u.qualified()))
            }
            GranteeName::Group(g) => {
                let g = self.group_in(Some(&s.org), g, "grant access to")?;
                Ok((Grantee::Group(g.id), format!("group {}", g.name)))
            }
        }
    }

    /// Sets a user's or group's access level on a share.
    pub fn share_grant(
        &self,
        org: Option<&str>,
        share: &str,
        who: GranteeName<'_>,
        access: Access,
    ) -> Result<(), AccountsError> {
        let s = self.share(org, share, "grant access on")?;
        let (p, principal) = self.principal(&s, who)?;
        self.acc.set_access(s.id, p, access)?;
        self.emit(Some(s.org_id), AdminAction::AccessSet { share: s.name, principal, access });
        Ok(())
    }

    /// Removes a user's or group's entry; false if there was none.
    pub fn share_revoke(&self, org: Option<&str>, share: &str, who: GranteeName<'_>) -> Result<bool, AccountsError> {
        let s = self.share(org, share, "revoke access on")?;
        let (p, principal) = self.principal(&s, who)?;
        let removed = self.acc.revoke_access(s.id, p)?;
        if removed {
            self.emit(Some(s.org_id), AdminAction::AccessRevoked { share: s.name, principal });
        }
        Ok(removed)
    }

    /// The share and its explicit entries.
    pub fn share_access(
        &self,
        org: Option<&str>,
        share: &str,
    ) -> Result<(ShareRecord, Vec<AccessEntry>), AccountsError> {
        let s = self.share(org, share, "view access of")?;
        let entries = self.acc.access_list(s.id)?;
        Ok((s, entries))
    }

    /// What a user may do on a share.
    pub fn share_effective(&self, org: Option<&str>, share: &str, user: &str) -> Result<Access, AccountsError> {
        let s = self.share(org, share, "view access of")?;
        let u = self.user(user, Some(&s.org), "view access of")?;
        self.acc.effective_access(s.id, u.id)
    }
}
