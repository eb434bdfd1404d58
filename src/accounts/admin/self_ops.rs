//! What any signed-in user may do to their own account (the console's
//! account page): change the password, set up or remove TOTP. Audited like
//! administrative changes, with the user as the actor.

use std::time::SystemTime;

use super::{AdminAction, AdminAudit, AdminEvent};
use crate::accounts::{Accounts, AccountsError, LockoutState, UserRecord};

/// One user acting on their own account.
pub struct SelfService<'a> {
    acc: &'a Accounts,
    user: UserRecord,
    audit: &'a dyn AdminAudit,
}

impl<'a> SelfService<'a> {
    /// `user` acts on their own account, reporting to `audit`.
    pub fn new(acc: &'a Accounts, user: UserRecord, audit: &'a dyn AdminAudit) -> Self {
        Self { acc, user, audit }
    }

    fn emit(&self, action: AdminAction) {
        let ev =
            AdminEvent { at: SystemTime::now(), actor: self.user.qualified(), org: Some(self.user.org_id), action };
        self.audit.admin_event(ev);
    }

    /// Changes the password after checking the old one. A wrong old
    /// password counts towards lockout like a failed logon: a stolen
    /// session must not become an unlimited password-guessing oracle.
    pub fn change_password(&self, old: &str, new: &str, now: SystemTime) -> Result<(), AccountsError> {
        if !self.acc.verify_password(self.user.id, old)? {
            if let LockoutState::LockedNow { .. } = self.acc.record_logon_failure(self.user.id, now)? {
                self.emit(AdminAction::LockedOut { user: self.user.qualified() });
            }
            self.emit(AdminAction::Denied { attempted: "change the password (wrong current password)".into() });
            return Err(AccountsError::Denied("the current password is wrong".into()));
        }
        if old == new {
            return Err(AccountsError::WeakPassword("the new password must differ from the current one".into()));
        }
        self.acc.set_password(self.user.id, new)?;
        self.emit(AdminAction::PasswordChanged { user: self.user.qualified() });
        Ok(())
    }

    /// Sets up TOTP with `secret` (the caller checked a code from it first).
    pub fn set_totp(&self, secret: &[u8]) -> Result<(), AccountsError> {
        self.acc.set_totp_secret(self.user.id, secret)?;
        self.emit(AdminAction::TotpEnrolled { user: self.user.qualified() });
        Ok(())
    }

    /// Removes the user's TOTP.
    pub fn remove_totp(&self) -> Result<(), AccountsError> {
        if self.acc.clear_totp_secret(self.user.id)? {
            self.emit(AdminAction::TotpRemoved { user: self.user.qualified() });
        }
        Ok(())
    }
}
