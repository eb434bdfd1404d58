//! User administration. Org administrators manage their own organization's
//! members and administrators, but not operator accounts, and cannot
//! disable, delete or demote themselves (no self-lockout).

use super::{Actor, Admin, AdminAction};
use crate::accounts::{AccountsError, Role, UserRecord, names};

impl Admin<'_> {
    /// The organization named by `spec` (`ORG\user`, `user@ORG`) or `org`.
    fn org_of<'s>(&self, spec: &'s str, org: Option<&'s str>) -> Result<(Option<&'s str>, &'s str), AccountsError> {
        match (names::split_qualified(spec), org) {
            ((Some(a), _), Some(b)) if names::fold_org(a) != names::fold_org(b) => Err(AccountsError::Invalid(
                format!("\"{spec}\" names organization {a} but the command is about organization {b}"),
            )),
            ((Some(a), user), _) => Ok((Some(a), user)),
            ((None, user), org) => Ok((org, user)),
        }
    }

    /// Finds a user in scope.
    pub fn user(&self, spec: &str, org: Option<&str>, attempted: &str) -> Result<UserRecord, AccountsError> {
        let (org, user) = self.org_of(spec, org)?;
        let o = self.org(org, attempted)?;
        self.acc
            .find_user(o.id, user)?
            .ok_or_else(|| AccountsError::NotFound { what: "user", name: format!("{}\\{user}", o.name) })
    }

    /// Finds a user that this actor may change.
    fn target(
        &self,
        spec: &str,
        org: Option<&str>,
        attempted: &str,
        self_ok: bool,
    ) -> Result<UserRecord, AccountsError> {
        let u = self.user(spec, org, attempted)?;
        if let Actor::OrgAdmin { user: me, org, .. } = &self.actor {
            if u.role == Role::Operator {
                return Err(self.deny_other_org(*org, &format!("{attempted} operator account {}", u.qualified())));
            }
            if !self_ok && u.id == *me {
                return Err(AccountsError::Denied(format!(
                    "you cannot {attempted} your own account; ask another administrator"
                )));
            }
        }
        Ok(u)
    }

    /// Adds a user; only the operator may create operator accounts.
    pub fn user_add(
        &self,
        org: Option<&str>,
        spec: &str,
        role: Role,
        password: &str,
    ) -> Result<UserRecord, AccountsError> {
        if role == Role::Operator {
            self.require_operator("create operator accounts")?;
        }
        let (org, user) = self.org_of(spec, org)?;
        let o = self.org(org, "add users")?;
        let u = self.acc.add_user(o.id, user, role, password)?;
        self.emit(Some(o.id), AdminAction::UserAdded { user: u.qualified(), role });
        Ok(u)
    }

    /// Users of `org` (own org for org admins; all for the operator when `None`).
    pub fn user_list(&self, org: Option<&str>) -> Result<Vec<UserRecord>, AccountsError> {
        let scope = self.list_scope(org)?;
        self.acc.list_users(scope.map(|o| o.id))
    }

    /// Sets a new password (policy-checked) and lifts any lockout.
    pub fn user_passwd(&self, org: Option<&str>, spec: &str, password: &str) -> Result<UserRecord, AccountsError> {
        let u = self.target(spec, org, "reset the password of", true)?;
        self.acc.set_password(u.id, password)?;
        self.emit(Some(u.org_id), AdminAction::PasswordReset { user: u.qualified() });
        Ok(u)
    }

    /// Enables or disables logons.
    pub fn user_set_enabled(&self, org: Option<&str>, spec: &str, enabled: bool) -> Result<UserRecord, AccountsError> {
        let u = self.target(spec, org, if enabled { "enable" } else { "disable" }, enabled)?;
        self.acc.set_user_enabled(u.id, enabled)?;
        let user = u.qualified();
        let action = if enabled { AdminAction::UserEnabled { user } } else { AdminAction::UserDisabled { user } };
        self.emit(Some(u.org_id), action);
        Ok(u)
    }

    /// Deletes a user.
    pub fn user_delete(&self, org: Option<&str>, spec: &str) -> Result<UserRecord, AccountsError> {
        let u = self.target(spec, org, "delete", false)?;
        self.acc.delete_user(u.id)?;
        self.emit(Some(u.org_id), AdminAction::UserDeleted { user: u.qualified() });
        Ok(u)
    }

    /// Changes a user's role (grant-admin / revoke-admin / operator).
    pub fn user_set_role(&self, org: Option<&str>, spec: &str, role: Role) -> Result<UserRecord, AccountsError> {
        if role == Role::Operator {
            self.require_operator("grant the operator role")?;
        }
        let u = self.target(spec, org, "change the role of", role >= Role::OrgAdmin)?;
        self.acc.set_role(u.id, role)?;
        self.emit(Some(u.org_id), AdminAction::RoleChanged { user: u.qualified(), role });
        Ok(u)
    }

    /// Lifts a lockout.
    pub fn user_unlock(&self, org: Option<&str>, spec: &str) -> Result<UserRecord, AccountsError> {
        let u = self.target(spec, org, "unlock", true)?;
        self.acc.unlock(u.id)?;
        self.emit(Some(u.org_id), AdminAction::UserUnlocked { user: u.qualified() });
        Ok(u)
    }

    /// Removes a user's TOTP (a lost phone); they sign in with the password
    /// alone until they set it up again.
    pub fn user_reset_totp(&self, org: Option<&str>, spec: &str) -> Result<UserRecord, AccountsError> {
        let u = self.target(spec, org, "reset two-factor sign-in of", true)?;
        if self.acc.clear_totp_secret(u.id)? {
            self.emit(Some(u.org_id), AdminAction::TotpRemoved { user: u.qualified() });
        }
        Ok(u)
    }
}
