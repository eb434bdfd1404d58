//! Administrative events for the audit log, and the small sink trait the
//! administration layer hands them to (the server connects it to
//! `audit::AuditSink`).

use std::time::SystemTime;

use chrono::NaiveDate;
use parking_lot::Mutex;

use crate::accounts::{Access, Role, retention_str};
use crate::config::Retention;
use crate::types::OrgId;

/// One administrative change (or refused attempt). Never holds a password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminEvent {
    /// When it happened.
    pub at: SystemTime,
    /// Who did it: "operator" (key file) or `ORG\user`.
    pub actor: String,
    /// The organization affected, when there is one.
    pub org: Option<OrgId>,
    /// What was done.
    pub action: AdminAction,
}

/// What an administrator did. Names are as typed/stored; users are `ORG\user`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[expect(missing_docs, reason = "the names are the spec's; the doc comment above cites the table")] // field names say it all
pub enum AdminAction {
    OrgCreated {
        name: String,
    },
    OrgRenamed {
        from: String,
        to: String,
    },
    OrgSuspended {
        name: String,
    },
    OrgResumed {
        name: String,
    },
    OrgQuotaSet {
        name: String,
        bytes: Option<u64>,
    },
    OrgRetentionSet {
        name: String,
        retention: Option<Retention>,
    },
    OrgUpnSuffixSet {
        name: String,
        suffix: Option<String>,
    },
    OrgContractEnd {
        name: String,
        last_day: Option<NaiveDate>,
    },
    UserAdded {
        user: String,
        role: Role,
    },
    /// A user changed their own password (console), old password given.
    PasswordChanged {
        user: String,
    },
    /// A user set up (or replaced) TOTP two-factor sign-in.
    TotpEnrolled {
        user: String,
    },
    /// TOTP two-factor sign-in was removed from a user.
    TotpRemoved {
        user: String,
    },
    OrgTotpRequired {
        name: String,
        required: bool,
    },
    UserDeleted {
        user: String,
    },
    UserEnabled {
        user: String,
    },
    UserDisabled {
        user: String,
    },
    PasswordReset {
        user: String,
    },
    RoleChanged {
        user: String,
        role: Role,
    },
    UserUnlocked {
        user: String,
    },
    GroupAdded {
        group: String,
    },
    GroupDeleted {
        group: String,
    },
    GroupMemberAdded {
        group: String,
        user: String,
    },
    GroupMemberRemoved {
        group: String,
        user: String,
    },
    ShareAdded {
        share: String,
    },
    ShareRemoved {
        share: String,
        data_deleted: bool,
    },
    ShareChanged {
        share: String,
        setting: String,
    },
    AccessSet {
        share: String,
        principal: String,
        access: Access,
    },
    AccessRevoked {
        share: String,
        principal: String,
    },
    /// An administrator tried something outside their scope.
    Denied {
        attempted: String,
    },
    /// `--as` administrative login (success or failure).
    AdminLogin {
        user: String,
        ok: bool,
    },
    /// Failed `--as` logins locked the account (`[accounts] lockout_*`).
    LockedOut {
        user: String,
    },
}

impl AdminAction {
    /// One line for humans (text audit views, `tracing`).
    pub fn describe(&self) -> String {
        use AdminAction as A;
        let opt = |b: &Option<u64>| b.map_or("unlimited".to_string(), |b| format!("{b} bytes"));
        match self {
            A::OrgCreated { name } => format!("created organization {name}"),
            A::OrgRenamed { from, to } => format!("renamed organization {from} to {to}"),
            A::OrgSuspended { name } => format!("suspended organization {name}"),
            A::OrgResumed { name } => format!("resumed organization {name}"),
            A::OrgQuotaSet { name, bytes } => format!("set quota of {name} to {}", opt(bytes)),
            A::OrgRetentionSet { name, retention } => {
                format!("set audit retention of {name} to {}", retention.map_or("default", retention_str))
            }
            A::OrgUpnSuffixSet { name, suffix: Some(s) } => format!("set UPN suffix of {name} to {s}"),
            A::OrgUpnSuffixSet { name, suffix: None } => format!("removed the UPN suffix of {name}"),
            A::OrgContractEnd { name, last_day: Some(d) } => format!("contract of {name} ends {d}"),
            A::OrgContractEnd { name, last_day: None } => format!("cancelled contract end of {name}"),
            A::UserAdded { user, role } => format!("added user {user} ({})", role.as_str()),
            A::PasswordChanged { user } => format!("{user} changed their own password"),
            A::TotpEnrolled { user } => format!("set up two-factor sign-in for {user}"),
            A::TotpRemoved { user } => format!("removed two-factor sign-in of {user}"),
            A::OrgTotpRequired { name, required } => format!(
                "two-factor sign-in for administrators of {name} {}",
                if *required { "required" } else { "optional" }
            ),
            A::UserDeleted { user } => format!("deleted user {user}"),
            A::UserEnabled { user } => format!("enabled user {user}"),
            A::UserDisabled { user } => format!("disabled user {user}"),
            A::PasswordReset { user } => format!("reset password of {user}"),
            A::RoleChanged { user, role } => format!("set role of {user} to {}", role.as_str()),
            A::UserUnlocked { user } => format!("unlocked user {user}"),
            A::GroupAdded { group } => format!("added group {group}"),
            A::GroupDeleted { group } => format!("deleted group {group}"),
            A::GroupMemberAdded { group, user } => format!("added {user} to group {group}"),
            A::GroupMemberRemoved { group, user } => format!("removed {user} from group {group}"),
            A::ShareAdded { share } => format!("added share {share}"),
            A::ShareRemoved { share, data_deleted } => {
                format!("removed share {share}{}", if *data_deleted { " and its data" } else { "" })
            }
            A::ShareChanged { share, setting } => format!("changed share {share}: {setting}"),
            A::AccessSet { share, principal, access } => {
                format!("set access of {principal} on {share} to {}", access.as_str())
            }
            A::AccessRevoked { share, principal } => {
                format!("removed access entry of {principal} on {share}")
            }
            A::Denied { attempted } => format!("denied: {attempted}"),
            A::LockedOut { user } => format!("locked out {user} after repeated failed logons"),
            A::AdminLogin { user, ok } => {
                format!("administrative login as {user} {}", if *ok { "succeeded" } else { "failed" })
            }
        }
    }
}

/// Receives administrative events. Must not block for long.
pub trait AdminAudit: Send + Sync {
    /// Records one event.
    fn admin_event(&self, ev: AdminEvent);

    /// Records an operation on an organization's data (a restore, an
    /// export) in its operation log; `failed` when it did not succeed.
    fn org_event(&self, _org: OrgId, _actor: &str, _action: &str, _target: &str, _detail: &str, _failed: bool) {}
}

/// Drops every event (until the audit log is connected).
pub struct NoAudit;

impl AdminAudit for NoAudit {
    fn admin_event(&self, _ev: AdminEvent) {}
}

/// Keeps events in memory (tests, and the CLI's `--json` output).
#[derive(Default)]
pub struct RecordingAudit {
    events: Mutex<Vec<AdminEvent>>,
}

impl RecordingAudit {
    /// Removes and returns the events recorded so far.
    pub fn take(&self) -> Vec<AdminEvent> {
        std::mem::take(&mut *self.events.lock())
    }
}

impl AdminAudit for RecordingAudit {
    fn admin_event(&self, ev: AdminEvent) {
        self.events.lock().push(ev);
    }
}
