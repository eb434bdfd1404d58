//! The typed events the engine and the administration tools record.
//!
//! An [`Event`] says who (user, client address, session), where (the
//! organization's log, or the server log when `org` is `None`), when (the
//! caller's `SystemTime`, kept to the millisecond) and what ([`EventKind`])
//! with which outcome ([`EventResult`]). Share names, paths and the target
//! and detail of administrative changes are *names*: they are encrypted at
//! rest (see docs/audit-format.md). Everything else is stored in clear.

use std::net::SocketAddr;
use std::time::SystemTime;

use crate::types::{FileTime, OrgId};

/// One audited event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// When it happened (system clock, read by the caller).
    pub time: SystemTime,
    /// The organization whose log receives it; `None` for the server log
    /// (operator actions, a failed logon for an unknown user).
    pub org: Option<OrgId>,
    /// The account name as the client or administrator gave it.
    pub user: Option<String>,
    /// Client address and port.
    pub client: Option<SocketAddr>,
    /// SMB2 SessionId (MS-SMB2 2.2.1), when there is one.
    pub session_id: Option<u64>,
    /// What happened.
    pub kind: EventKind,
    /// How it ended.
    pub result: EventResult,
}

impl Event {
    /// An event with outcome `Ok` and no org, user, client or session.
    pub fn new(time: SystemTime, kind: EventKind) -> Self {
        Self { time, org: None, user: None, client: None, session_id: None, kind, result: EventResult::Ok }
    }
    /// Sets the organization.
    pub fn org(mut self, org: OrgId) -> Self {
        self.org = Some(org);
        self
    }
    /// Sets the user name.
    pub fn user(mut self, user: impl Into<String>) -> Self {
        self.user = Some(user.into());
        self
    }
    /// Sets the client address.
    pub fn client(mut self, client: SocketAddr) -> Self {
        self.client = Some(client);
        self
    }
    /// Sets the SMB2 session id.
    pub fn session(mut self, id: u64) -> Self {
        self.session_id = Some(id);
        self
    }
    /// Sets the outcome.
    pub fn result(mut self, result: EventResult) -> Self {
        self.result = result;
        self
    }
}

/// How an audited action ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventResult {
    /// It succeeded.
    Ok,
    /// Refused by policy (permissions, share access, lockout): the NTSTATUS name
    /// returned, e.g. "STATUS_ACCESS_DENIED".
    Denied(String),
    /// Failed for another reason (bad password, I/O error): a short reason.
    /// Must not contain file names (it is stored in clear).
    Failed(String),
}

impl EventResult {
    /// "ok", "denied" or "failed".
    pub fn class(&self) -> ResultClass {
        match self {
            EventResult::Ok => ResultClass::Ok,
            EventResult::Denied(_) => ResultClass::Denied,
            EventResult::Failed(_) => ResultClass::Failed,
        }
    }
    /// The status or reason text ("" for `Ok`).
    pub fn text(&self) -> &str {
        match self {
            EventResult::Ok => "",
            EventResult::Denied(s) | EventResult::Failed(s) => s,
        }
    }
}

/// The three outcome classes, for filtering.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResultClass {
    /// Succeeded.
    Ok,
    /// Refused by policy.
    Denied,
    /// Failed.
    Failed,
}

impl ResultClass {
    /// Lower-case name used in output and filters.
    pub fn name(self) -> &'static str {
        match self {
            ResultClass::Ok => "ok",
            ResultClass::Denied => "denied",
            ResultClass::Failed => "failed",
        }
    }
    /// Parses "ok", "denied" or "failed".
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "ok" => Some(ResultClass::Ok),
            "denied" => Some(ResultClass::Denied),
            "failed" | "fail" => Some(ResultClass::Failed),
            _ => None,
        }
    }
}

/// Which of the two logs a kind of event belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Category {
    /// Logons, logoffs, sessions and tree connects.
    Access,
    /// File operations and administrative changes.
    Operation,
}

/// What happened. Names (`share`, `path`, `from`, `to`, admin `target` and
/// `detail`) are encrypted at rest; the other fields are stored in clear.
#[derive(Debug, Clone, PartialEq, Eq)]
#[expect(
    missing_docs,
    reason = "the fields are what `logs show` prints under these names; each variant says what they hold"
)]
pub enum EventKind {
    /// Session setup succeeded (MS-SMB2 3.3.5.5).
    LogonSuccess {
        /// Negotiated dialect, e.g. 0x0311.
        dialect: u16,
        /// Signing algorithm in use ("AES-128-GMAC"), `None` if unsigned.
        signing: Option<String>,
        /// Cipher in use ("AES-128-GCM"), `None` if not encrypted.
        encryption: Option<String>,
    },
    /// Session setup failed.
    LogonFailure {
        /// Why ("bad password", "unknown user", "account disabled").
        reason: String,
    },
    /// The account was locked out by this attempt.
    Lockout,
    /// LOGOFF (MS-SMB2 3.3.5.6).
    Logoff,
    /// The session expired (MS-SMB2 3.3.2.3) and was torn down.
    SessionExpired,
    /// The connection was closed with the session still open.
    Disconnect,
    /// A sign-in to the web console. `method`: "password" or
    /// "password+totp"; a refusal's reason is in the result.
    ConsoleSignIn { method: String },
    /// A console session ended: `reason` "sign-out", "idle" or "expired".
    ConsoleSignOut { reason: String },
    /// TREE_CONNECT to a share.
    TreeConnect { share: String },
    /// TREE_DISCONNECT (or implicit at logoff).
    TreeDisconnect { share: String },
    /// CREATE (MS-SMB2 2.2.13): access asked for and granted, disposition.
    Open { share: String, path: String, desired_access: u32, granted_access: u32, disposition: String, created: bool },
    /// CLOSE with the reads and writes made through the open.
    Close { share: String, path: String, bytes_read: u64, reads: u64, bytes_written: u64, writes: u64 },
    /// Rename or move.
    Rename { share: String, from: String, to: String },
    /// Delete (delete-on-close or disposition).
    Delete { share: String, path: String },
    /// Directory created.
    Mkdir { share: String, path: String },
    /// FileAttributes changed (MS-FSCC 2.6).
    SetAttributes { share: String, path: String, attributes: u32 },
    /// Timestamps changed (MS-FSCC 2.4.7 FileBasicInformation).
    SetTimes {
        share: String,
        path: String,
        creation: Option<FileTime>,
        last_access: Option<FileTime>,
        last_write: Option<FileTime>,
        change: Option<FileTime>,
    },
    /// Security descriptor changed (MS-SMB2 2.2.39, AdditionalInformation flags).
    SetSecurity { share: String, path: String, security_info: u32 },
    /// Server-side copy (FSCTL_SRV_COPYCHUNK).
    Copy { share: String, from: String, to: String, bytes: u64 },
    /// An administrative change: `action` ("user.create", "share.grant",
    /// "audit.retention", "keys.rotate") is clear; `target` and `detail` are names.
    Admin { action: String, target: String, detail: String },
}

/// Stable on-disk code, name and category of every kind. The codes are part
/// of the file format: never renumber.
pub(crate) const KINDS: &[(u8, &str, Category)] = &[
    (1, "logon", Category::Access),
    (2, "logon-failure", Category::Access),
    (3, "lockout", Category::Access),
    (4, "logoff", Category::Access),
    (5, "session-expired", Category::Access),
    (6, "disconnect", Category::Access),
    (7, "tree-connect", Category::Access),
    (8, "tree-disconnect", Category::Access),
    (9, "console-sign-in", Category::Access),
    (10, "console-sign-out", Category::Access),
    (20, "open", Category::Operation),
    (21, "close", Category::Operation),
    (22, "rename", Category::Operation),
    (23, "delete", Category::Operation),
    (24, "mkdir", Category::Operation),
    (25, "set-attributes", Category::Operation),
    (26, "set-times", Category::Operation),
    (27, "set-security", Category::Operation),
    (28, "copy", Category::Operation),
    (40, "admin", Category::Operation),
];

impl EventKind {
    /// The on-disk code.
    pub(crate) fn code(&self) -> u8 {
        match self {
            EventKind::LogonSuccess { .. } => 1,
            EventKind::LogonFailure { .. } => 2,
            EventKind::Lockout => 3,
            EventKind::Logoff => 4,
            EventKind::SessionExpired => 5,
            EventKind::Disconnect => 6,
            EventKind::TreeConnect { .. } => 7,
            EventKind::TreeDisconnect { .. } => 8,
            EventKind::ConsoleSignIn { .. } => 9,
            EventKind::ConsoleSignOut { .. } => 10,
            EventKind::Open { .. } => 20,
            EventKind::Close { .. } => 21,
            EventKind::Rename { .. } => 22,
            EventKind::Delete { .. } => 23,
            EventKind::Mkdir { .. } => 24,
            EventKind::SetAttributes { .. } => 25,
            EventKind::SetTimes { .. } => 26,
            EventKind::SetSecurity { .. } => 27,
            EventKind::Copy { .. } => 28,
            EventKind::Admin { .. } => 40,
        }
    }

    /// The name used in output and in `--type` filters ("open", "logon-failure").
    pub fn name(&self) -> &'static str {
        kind_name(self.code()).unwrap_or("unknown")
    }

    /// Access or operation.
    pub fn category(&self) -> Category {
        kind_category(self.code()).unwrap_or(Category::Operation)
    }
}

/// Name of an on-disk kind code.
pub(crate) fn kind_name(code: u8) -> Option<&'static str> {
    KINDS.iter().find(|k| k.0 == code).map(|k| k.1)
}

/// Category of an on-disk kind code.
pub(crate) fn kind_category(code: u8) -> Option<Category> {
    KINDS.iter().find(|k| k.0 == code).map(|k| k.2)
}

/// The code for a kind name given on the command line.
pub fn kind_code(name: &str) -> Option<u8> {
    let n = name.to_ascii_lowercase();
    KINDS.iter().find(|k| k.1 == n).map(|k| k.0)
}

/// All kind names, for help texts.
pub fn kind_names() -> impl Iterator<Item = &'static str> {
    KINDS.iter().map(|k| k.1)
}
