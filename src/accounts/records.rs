//! Plain values returned by the accounts store.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chrono::NaiveDate;
use zeroize::Zeroizing;

use crate::config::{EncryptionPolicy, Retention};
use crate::types::{NodeId, OrgId, ShareId, UserId};

use super::AccountsError;

/// An organization (tenant).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrgRecord {
    /// Never reused.
    pub id: OrgId,
    /// Also the NTLM domain its users log on with.
    pub name: String,
    /// Suspended organizations cannot log on; their data stays.
    pub suspended: bool,
    /// Storage quota in bytes; `None` is unlimited.
    pub quota_bytes: Option<u64>,
    /// Audit retention; `None` uses `[audit] default_retention`.
    pub retention: Option<Retention>,
    /// Last day of the contract (JST), once ended.
    pub contract_end: Option<NaiveDate>,
    /// When the organization was created.
    pub created: SystemTime,
}

/// What a user may do on the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// Uses shares according to their permissions.
    Member,
    /// Administers users, groups and shares of their own organization.
    OrgAdmin,
    /// Administers the whole server (every organization).
    Operator,
}

impl Role {
    /// The name stored in the database and shown by the CLI.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Member => "member",
            Role::OrgAdmin => "org_admin",
            Role::Operator => "operator",
        }
    }

    /// Parses the stored / CLI name.
    pub fn parse(s: &str) -> Result<Self, AccountsError> {
        match s {
            "member" => Ok(Role::Member),
            "org_admin" | "admin" => Ok(Role::OrgAdmin),
            "operator" => Ok(Role::Operator),
            _ => Err(AccountsError::Invalid(format!("unknown role {s:?}; use member, org_admin or operator"))),
        }
    }
}

/// A user account (never with secrets).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    /// Never reused.
    pub id: UserId,
    /// The organization the user belongs to.
    pub org_id: OrgId,
    /// That organization's name.
    pub org: String,
    /// The user name as created.
    pub name: String,
    /// Member, org administrator or operator.
    pub role: Role,
    /// Disabled users cannot log on.
    pub enabled: bool,
    /// Set while a lockout is in force (it may already have expired).
    pub locked_until: Option<SystemTime>,
    /// Creation time.
    pub created: SystemTime,
    /// Last password change.
    pub password_changed: SystemTime,
}

impl UserRecord {
    /// `ORG\user`, the form users type in Windows.
    pub fn qualified(&self) -> String {
        format!("{}\\{}", self.org, self.name)
    }
}

/// Everything NTLM needs to check one logon. `Debug` hides the hash.
pub struct LogonCandidate {
    /// The account.
    pub user_id: UserId,
    /// Its organization.
    pub org_id: OrgId,
    /// User name as stored (canonical case).
    pub user: String,
    /// Organization name as stored.
    pub org: String,
    /// MD4(UTF-16LE(password)) (MS-NLMP 3.3.1).
    pub nt_hash: Zeroizing<[u8; 16]>,
    /// False when the user is disabled **or** the organization is suspended.
    pub enabled: bool,
    /// True when the organization is suspended (for the audit reason).
    pub org_suspended: bool,
    /// Lockout end, if one was recorded; compare with the current time.
    pub locked_until: Option<SystemTime>,
}

impl std::fmt::Debug for LogonCandidate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogonCandidate")
            .field("user_id", &self.user_id)
            .field("org_id", &self.org_id)
            .field("user", &self.user)
            .field("org", &self.org)
            .field("nt_hash", &"..")
            .field("enabled", &self.enabled)
            .field("org_suspended", &self.org_suspended)
            .field("locked_until", &self.locked_until)
            .finish()
    }
}

/// Result of recording a failed logon, for the audit log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockoutState {
    /// Not locked: `failures` within the window so far, of `threshold`.
    Counting {
        /// Failures inside the current window, this one included.
        failures: u32,
        /// Failures that lock the account.
        threshold: u32,
    },
    /// This failure locked the account.
    LockedNow {
        /// When the lock lifts by itself.
        until: SystemTime,
    },
    /// The account was already locked; nothing changed.
    AlreadyLocked {
        /// When the lock lifts by itself.
        until: SystemTime,
    },
}

/// A group within one organization. Assigned by the accounts store, never reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GroupId(pub u64);

/// A group of users within one organization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupRecord {
    /// Never reused.
    pub id: GroupId,
    /// Owning organization.
    pub org_id: OrgId,
    /// Group name.
    pub name: String,
    /// Member names, sorted.
    pub members: Vec<String>,
}

/// Access level on a share, ordered from least to most.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Access {
    /// No access (tree connect refused).
    None,
    /// Read files and list directories.
    Read,
    /// Read, write, create, delete, rename.
    ReadWrite,
    /// Read/write plus changing security descriptors and share settings.
    Admin,
}

impl Access {
    /// Stored / CLI name.
    pub fn as_str(self) -> &'static str {
        match self {
            Access::None => "none",
            Access::Read => "read",
            Access::ReadWrite => "read_write",
            Access::Admin => "admin",
        }
    }

    /// Parses the stored / CLI name (`rw` and `read-write` accepted).
    pub fn parse(s: &str) -> Result<Self, AccountsError> {
        match s {
            "none" => Ok(Access::None),
            "read" | "r" => Ok(Access::Read),
            "read_write" | "read-write" | "rw" => Ok(Access::ReadWrite),
            "admin" => Ok(Access::Admin),
            _ => {
                Err(AccountsError::Invalid(format!("unknown access level {s:?}; use none, read, read_write or admin")))
            }
        }
    }
}

/// Who a share permission is for: a user or a group of the share's
/// organization. (The authenticated user of a session is
/// `engine::services::Principal`.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grantee {
    /// One user.
    User(UserId),
    /// Every member of a group.
    Group(GroupId),
}

/// A share: `\\server\name`, owned by one organization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShareRecord {
    /// Never reused.
    pub id: ShareId,
    /// Owning organization.
    pub org_id: OrgId,
    /// Owning organization's name.
    pub org: String,
    /// Share name as created (unique in its organization, case-insensitive).
    pub name: String,
    /// Root directory in the organization's storage.
    pub root: NodeId,
    /// `None`: the server-wide `[security] encryption`.
    pub encryption: Option<EncryptionPolicy>,
    /// Shown by `net view` / srvsvc (MS-SRVS 2.2.4.23 shi2_remark).
    pub comment: String,
    /// Access of the organization's users that no entry mentions.
    pub default_access: Access,
    /// Access-based enumeration: listings omit entries the user could not
    /// open for reading (MS-SMB2 2.2.10 SMB2_SHAREFLAG_ACCESS_BASED_DIRECTORY_ENUM).
    pub access_based_enum: bool,
    /// Its remote backup generations are offered as Previous Versions
    /// (FSCTL_SRV_ENUMERATE_SNAPSHOTS, `@GMT-` tokens, TWrp); on by default.
    pub previous_versions: bool,
}

/// One explicit entry of a share's access list, for display.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessEntry {
    /// User or group.
    pub grantee: Grantee,
    /// `user` or `group` name.
    pub name: String,
    /// Level granted.
    pub access: Access,
}

/// Parses a retention name as written in the config ("1m" ... "unlimited").
pub fn parse_retention(s: &str) -> Result<Retention, AccountsError> {
    match s {
        "1m" => Ok(Retention::M1),
        "3m" => Ok(Retention::M3),
        "6m" => Ok(Retention::M6),
        "12m" => Ok(Retention::M12),
        "unlimited" => Ok(Retention::Unlimited),
        _ => Err(AccountsError::Invalid(format!("unknown retention {s:?}; use 1m, 3m, 6m, 12m or unlimited"))),
    }
}

/// The config name of a retention.
pub fn retention_str(r: Retention) -> &'static str {
    match r {
        Retention::M1 => "1m",
        Retention::M3 => "3m",
        Retention::M6 => "6m",
        Retention::M12 => "12m",
        Retention::Unlimited => "unlimited",
    }
}

/// Parses an encryption policy name ("required", "desired", "off").
pub fn parse_encryption(s: &str) -> Result<EncryptionPolicy, AccountsError> {
    match s {
        "required" => Ok(EncryptionPolicy::Required),
        "desired" => Ok(EncryptionPolicy::Desired),
        "off" => Ok(EncryptionPolicy::Off),
        _ => Err(AccountsError::Invalid(format!(
            "unknown encryption policy {s:?}; use required, desired, off or inherit"
        ))),
    }
}

/// The config name of an encryption policy.
pub fn encryption_str(p: EncryptionPolicy) -> &'static str {
    match p {
        EncryptionPolicy::Required => "required",
        EncryptionPolicy::Desired => "desired",
        EncryptionPolicy::Off => "off",
    }
}

/// Seconds since the Unix epoch, as stored (0 for earlier times).
pub(crate) fn to_unix(t: SystemTime) -> i64 {
    let s = t.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    i64::try_from(s).unwrap_or(i64::MAX)
}

/// Back from stored seconds (negative values clamp to the epoch).
pub(crate) fn from_unix(s: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(u64::try_from(s).unwrap_or(0))
}
