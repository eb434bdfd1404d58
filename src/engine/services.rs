//! What the engine needs from the rest of the server, as traits, so that the
//! protocol logic never touches SQL or files directly (and tests can use fakes).

use std::time::SystemTime;

use crate::types::{OrgId, UserId};

pub use crate::accounts::{Access, ShareRecord};

/// The authenticated identity of a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// User id.
    pub user_id: UserId,
    /// Organization id.
    pub org_id: OrgId,
    /// Canonical user name.
    pub user: String,
    /// Organization name (the NTLM domain).
    pub org: String,
}

/// Result of recording a failed logon.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureOutcome {
    /// Counted; the account is still usable.
    Counted,
    /// This failure locked the account.
    LockedOut,
}

/// Where the engine's unpredictable values come from (SMB 3.1.1 preauth
/// salts, NTLM server challenges, each session's AES nonce seed): the OS
/// RNG in `cli/serve.rs`, anything a test likes.
pub type Entropy = std::sync::Arc<dyn Fn(&mut [u8]) + Send + Sync>;

/// Accounts and shares, as the engine uses them (implemented over
/// `accounts::Accounts` by `app::AccountsDirectory`).
pub trait Directory: Send + Sync {
    /// Credential lookup for NTLM.
    fn credentials(&self) -> &dyn crate::auth::CredentialSource;
    /// The share of organization `org` called `name` (case-insensitive), if
    /// it exists. Names are per organization: the session's organization
    /// selects the share, and another tenant's share of the same name is
    /// never found.
    fn find_share(&self, org: OrgId, name: &str) -> Option<ShareRecord>;
    /// Effective access of `user` on `share`. `Access::None` for other organizations.
    fn access(&self, share: &ShareRecord, user: UserId) -> Access;
    /// Like [`Directory::find_share`], but `None` when the accounts could
    /// not be read just now (see [`Directory::access_now`]).
    fn find_share_now(&self, org: OrgId, name: &str) -> Option<Option<ShareRecord>> {
        Some(self.find_share(org, name))
    }
    /// Like [`Directory::access`], but `None` when the accounts could not be
    /// read just now (a busy or failing database): the periodic re-check
    /// must not take a transient error for a revoked permission.
    fn access_now(&self, share: &ShareRecord, user: UserId) -> Option<Access> {
        Some(self.access(share, user))
    }
    /// Shares of an organization that `user` may see (for srvsvc).
    fn visible_shares(&self, org: OrgId, user: UserId) -> Vec<ShareRecord>;
    /// True if the user may log on now: exists, enabled, not locked, org active.
    fn may_log_on(&self, user: UserId, now: SystemTime) -> bool;
    /// True while the user may keep the sessions they have: exists, enabled,
    /// org active. A lockout only refuses new logons: whoever guesses
    /// passwords must not be able to end the owner's sessions.
    fn account_active(&self, user: UserId, now: SystemTime) -> bool {
        self.may_log_on(user, now)
    }
    /// Records a failed logon (None: unknown user).
    fn logon_failed(&self, user: Option<UserId>, now: SystemTime) -> FailureOutcome;
    /// Records a successful logon.
    fn logon_succeeded(&self, user: UserId, now: SystemTime);
    /// False once the account's failures were cleared and it is not locked
    /// (an administrator's unlock): the engine then lifts its per-address
    /// locks too.
    fn failures_on_record(&self, _user: UserId, _now: SystemTime) -> bool {
        true
    }
    /// Changes whenever users, shares or permissions change (also by the CLI).
    fn revision(&self) -> u64;
    /// The organization's storage quota in bytes, if it has one.
    fn org_quota(&self, org: OrgId) -> Option<u64>;
    /// Records the root directory the server created for a share.
    fn set_share_root(&self, share: crate::types::ShareId, root: crate::types::NodeId) -> bool;
}

/// An organization's backup generations as read-only views of a share
/// (Previous Versions: MS-SMB2 2.2.32.2, 2.2.13.2.7). Implemented over the
/// remote backups (`backup::remote::views`) by `cli/serve.rs`; the engine
/// only sees stores opened on a verified generation in the local cache.
pub trait Snapshots: Send + Sync {
    /// The times (seconds since the Unix epoch, UTC) of the generations of
    /// `org` that hold a share called `share`, newest first.
    fn times(&self, org: OrgId, share: &str) -> Vec<i64>;
    /// The generation of `org` taken at `time` (as [`Snapshots::times`]
    /// reports it), opened read-only. `data`: file contents are needed
    /// (the whole generation is fetched); otherwise only its metadata
    /// (names, tree, descriptors) may be. `None`: no such generation, or it
    /// cannot be fetched or fails verification (logged).
    fn open(&self, org: OrgId, share: &str, time: i64, data: bool) -> Option<SnapshotView>;
}

/// A share as it was in one backup generation.
#[derive(Clone)]
pub struct SnapshotView {
    /// The generation's store (a copy in the local cache; never written).
    pub store: std::sync::Arc<crate::storage::OrgStore>,
    /// The share's root directory in it.
    pub root: crate::types::NodeId,
}
