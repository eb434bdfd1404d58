//! Administration with scoping and audit: what the CLI calls.
//!
//! An [`Admin`] acts as one [`Actor`]. The operator (whoever can read the
//! master key file, or a user with the `operator` role) may change
//! anything; an organization administrator only their own organization.
//! Every change is reported to an [`AdminAudit`] sink, and so is every
//! refused attempt.
//!
//! Org administrators get the same refusal for another organization
//! whether it exists or not, so they cannot probe for tenant names.

mod events;
mod org_ops;
mod self_ops;
mod share_ops;
mod user_ops;

use std::time::SystemTime;

pub use events::{AdminAction, AdminAudit, AdminEvent, NoAudit, RecordingAudit};
pub use self_ops::SelfService;
pub use share_ops::{GranteeName, ShareChange, ShareOptions};

use super::{Accounts, AccountsError, OrgRecord, Role, SignInRefusal, names};
use crate::types::{OrgId, UserId};

/// Who is acting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// Server-wide administrator.
    Operator {
        /// "operator" for the key-file holder, `ORG\user` for an operator account.
        name: String,
    },
    /// Administrator of one organization.
    OrgAdmin {
        /// The administrator's account.
        user: UserId,
        /// The organization they administer.
        org: OrgId,
        /// `ORG\user`.
        name: String,
    },
}

impl Actor {
    /// The key-file holder.
    pub fn operator() -> Self {
        Actor::Operator { name: "operator".into() }
    }

    /// Name recorded in events.
    pub fn name(&self) -> &str {
        match self {
            Actor::Operator { name } | Actor::OrgAdmin { name, .. } => name,
        }
    }
}

const BAD_LOGIN: &str = "wrong user name or password for --as";

impl Accounts {
    /// Checks an administrative login (`ORG\user` or `user@ORG`) with the
    /// Argon2id hash. Failures count towards lockout like SMB logons.
    pub fn admin_login(&self, spec: &str, password: &str, now: SystemTime) -> Result<Actor, AccountsError> {
        self.admin_login_noting_lockout(spec, password, now, &mut None)
    }

    /// [`Accounts::admin_login`]; when this attempt's failure locked the
    /// account, `locked` gets its `ORG\user` name (for the audit log).
    fn admin_login_noting_lockout(
        &self,
        spec: &str,
        password: &str,
        now: SystemTime,
        locked: &mut Option<String>,
    ) -> Result<Actor, AccountsError> {
        if names::split_qualified(spec).0.is_none() {
            return Err(AccountsError::Invalid(format!(
                "--as {spec:?}: name the organization too, as ORG\\user or user@ORG"
            )));
        }
        let denied = || AccountsError::Denied(BAD_LOGIN.into());
        let rec = match self.check_sign_in(spec, password, now)? {
            Ok(rec) => rec,
            Err(f) => {
                let name = f.user.as_ref().map(|u| u.qualified());
                if f.locked_now {
                    *locked = name.clone();
                }
                let name = name.unwrap_or_default();
                return Err(match f.refusal {
                    SignInRefusal::LockedOut => AccountsError::Denied(format!(
                        "{name} is locked out after failed logons; wait, or have the operator run `smbvault user unlock {name}`"
                    )),
                    SignInRefusal::Disabled => AccountsError::Denied(format!("{name} is disabled or suspended")),
                    SignInRefusal::UnknownUser | SignInRefusal::BadPassword => denied(),
                });
            }
        };
        match rec.role {
            Role::Operator => Ok(Actor::Operator { name: rec.qualified() }),
            Role::OrgAdmin => Ok(Actor::OrgAdmin { user: rec.id, org: rec.org_id, name: rec.qualified() }),
            Role::Member => Err(AccountsError::Denied(format!(
                "{} is not an administrator; ask the operator to run `smbvault user grant-admin {}`",
                rec.qualified(),
                rec.qualified()
            ))),
        }
    }
}

/// Administrative operations performed by one actor.
pub struct Admin<'a> {
    acc: &'a Accounts,
    actor: Actor,
    audit: &'a dyn AdminAudit,
}

impl<'a> Admin<'a> {
    /// Acts as `actor`, reporting to `audit`.
    pub fn new(acc: &'a Accounts, actor: Actor, audit: &'a dyn AdminAudit) -> Self {
        Self { acc, actor, audit }
    }

    /// Logs in with [`Accounts::admin_login`] and audits the attempt.
    pub fn login(
        acc: &'a Accounts,
        spec: &str,
        password: &str,
        now: SystemTime,
        audit: &'a dyn AdminAudit,
    ) -> Result<Self, AccountsError> {
        let mut locked = None;
        let res = acc.admin_login_noting_lockout(spec, password, now, &mut locked);
        let org = match &res {
            Ok(Actor::OrgAdmin { org, .. }) => Some(*org),
            // A failure is filed under the organization it named, if it exists.
            _ => names::split_qualified(spec).0.and_then(|o| acc.find_org(o).ok().flatten()).map(|o| o.id),
        };
        let ok = res.is_ok();
        let event = |action| AdminEvent { at: now, actor: spec.to_string(), org, action };
        audit.admin_event(event(AdminAction::AdminLogin { user: spec.to_string(), ok }));
        if let Some(user) = locked {
            audit.admin_event(event(AdminAction::LockedOut { user }));
        }
        Ok(Self::new(acc, res?, audit))
    }

    /// The acting administrator.
    pub fn actor(&self) -> &Actor {
        &self.actor
    }

    /// The store, for reads that need no scoping.
    pub fn accounts(&self) -> &Accounts {
        self.acc
    }

    fn emit(&self, org: Option<OrgId>, action: AdminAction) {
        self.audit.admin_event(AdminEvent { at: SystemTime::now(), actor: self.actor.name().to_string(), org, action });
    }

    /// Refuses (and audits) unless the actor is the operator.
    fn require_operator(&self, attempted: &str) -> Result<(), AccountsError> {
        match &self.actor {
            Actor::Operator { .. } => Ok(()),
            Actor::OrgAdmin { org, .. } => {
                self.emit(Some(*org), AdminAction::Denied { attempted: attempted.into() });
                Err(AccountsError::Denied(format!(
                    "only the server operator can {attempted}; run the command on the server without --as"
                )))
            }
        }
    }

    fn deny_other_org(&self, own: OrgId, attempted: &str) -> AccountsError {
        self.emit(Some(own), AdminAction::Denied { attempted: attempted.into() });
        let own_name = self.acc.org(own).ok().flatten().map_or_else(|| format!("#{}", own.0), |o| o.name);
        AccountsError::Denied(format!(
            "{} administers organization {own_name} only and cannot {attempted}",
            self.actor.name()
        ))
    }

    /// The organization an operation targets: `name` if given (org admins
    /// only their own), else the admin's own, else the only one there is.
    pub fn org(&self, name: Option<&str>, attempted: &str) -> Result<OrgRecord, AccountsError> {
        match (&self.actor, name) {
            (Actor::OrgAdmin { org, .. }, Some(n)) => match self.acc.find_org(n)? {
                Some(o) if o.id == *org => Ok(o),
                _ => Err(self.deny_other_org(*org, &format!("{attempted} in organization {n}"))),
            },
            (Actor::OrgAdmin { org, .. }, None) => self
                .acc
                .org(*org)?
                .ok_or_else(|| AccountsError::NotFound { what: "organization", name: format!("#{}", org.0) }),
            (Actor::Operator { .. }, Some(n)) => {
                self.acc.find_org(n)?.ok_or_else(|| AccountsError::NotFound { what: "organization", name: n.into() })
            }
            (Actor::Operator { .. }, None) => {
                let mut all = self.acc.list_orgs()?;
                if all.len() == 1
                    && let Some(o) = all.pop()
                {
                    return Ok(o);
                }
                Err(AccountsError::Invalid(format!(
                    "there are {} organizations: say which with --org ORG (or ORG\\user)",
                    all.len()
                )))
            }
        }
    }

    /// Organization filter for listings: `None` (all) only for the operator.
    fn list_scope(&self, name: Option<&str>) -> Result<Option<OrgRecord>, AccountsError> {
        match (&self.actor, name) {
            (Actor::Operator { .. }, None) => Ok(None),
            _ => self.org(name, "list").map(Some),
        }
    }
}
