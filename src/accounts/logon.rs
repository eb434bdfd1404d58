//! What NTLM needs: finding the account a logon names, and counting
//! failures for lockout.
//!
//! Name resolution (MS-NLMP 2.2.1.3 AUTHENTICATE_MESSAGE carries DomainName
//! and UserName separately; clients fill them in different ways):
//! - `user@X` in the user field (domain ignored): Windows sends UPN-style
//!   names this way with an empty domain. X is an organization's name or
//!   its UPN suffix (`smbvault org set-upn-suffix`);
//! - `ORG\user` typed in Windows becomes domain `ORG`, user `user`; a
//!   domain that is an organization's UPN suffix works the same way;
//! - otherwise (domain "WORKGROUP", "", ".", the server's name, a client's
//!   own machine name) only through the explicit rule
//!   `[accounts] domainless_org` (by default the bootstrap organization,
//!   `default_org`), never by searching every tenant for the user name:
//!   adding `alice` to one organization must not change whose account a
//!   domainless `alice` of another organization logs on to.

use std::time::{Duration, SystemTime};

use rusqlite::{Connection, OptionalExtension, Row, params};
use zeroize::Zeroizing;

use super::records::{from_unix, to_unix};
use super::{Accounts, AccountsError, LockoutState, LogonCandidate, names};
use crate::types::{OrgId, UserId};

const CANDIDATE_COLS: &str = "u.id, u.org_id, u.name, o.name, u.enabled, o.suspended, \
     u.locked_until, u.nt_sealed FROM users u JOIN orgs o ON o.id = u.org_id";

/// A candidate row before its NT hash is unsealed.
struct Row8 {
    user_id: u64,
    org_id: u64,
    user: String,
    org: String,
    enabled: bool,
    suspended: bool,
    locked_until: Option<i64>,
    sealed: Vec<u8>,
}

fn row8(r: &Row<'_>) -> rusqlite::Result<Row8> {
    Ok(Row8 {
        user_id: r.get(0)?,
        org_id: r.get(1)?,
        user: r.get(2)?,
        org: r.get(3)?,
        enabled: r.get(4)?,
        suspended: r.get(5)?,
        locked_until: r.get(6)?,
        sealed: r.get(7)?,
    })
}

/// The organization a logon's domain (or UPN part) names: by name, or by
/// UPN suffix (compared lower-case, as DNS names are).
fn org_named(c: &Connection, label: &str) -> Result<Option<u64>, AccountsError> {
    let mut st = c.prepare_cached("SELECT id FROM orgs WHERE name_key = ?1 OR upn_suffix = ?2 LIMIT 1")?;
    Ok(st.query_row(params![names::fold_org(label), label.trim().to_ascii_lowercase()], |r| r.get(0)).optional()?)
}

fn in_org(c: &Connection, org: u64, user: &str) -> Result<Option<Row8>, AccountsError> {
    let sql = format!("SELECT {CANDIDATE_COLS} WHERE u.org_id = ?1 AND u.name_key = ?2");
    Ok(c.prepare_cached(&sql)?.query_row(params![org, names::fold(user)], row8).optional()?)
}

impl Accounts {
    /// Finds the account an NTLM logon names (see the module docs for the
    /// rules). `Ok(None)` for unknown or ambiguous names: the caller must
    /// then fail the logon exactly as for a wrong password.
    pub fn resolve_logon(&self, domain: &str, user: &str) -> Result<Option<LogonCandidate>, AccountsError> {
        let domainless = self.config().domainless_org().map(str::to_string);
        let row = self.read(|c| {
            let (org, name) = match names::split_qualified(user) {
                (Some(org), name) => (org_named(c, org)?, name),
                (None, name) => match org_named(c, domain)? {
                    Some(o) => (Some(o), name),
                    None => match &domainless {
                        Some(d) => (org_named(c, d)?, name),
                        None => (None, name),
                    },
                },
            };
            match org {
                Some(o) => in_org(c, o, name),
                None => Ok(None),
            }
        })?;
        let Some(r) = row else { return Ok(None) };
        let pt = self.nt_key.open(&Self::nt_ad(r.user_id), &r.sealed)?;
        let mut nt_hash = Zeroizing::new([0u8; 16]);
        if pt.len() != nt_hash.len() {
            return Err(AccountsError::Key(crate::keys::KeyError::Integrity));
        }
        nt_hash.copy_from_slice(&pt);
        Ok(Some(LogonCandidate {
            user_id: UserId(r.user_id),
            org_id: OrgId(r.org_id),
            user: r.user,
            org: r.org,
            nt_hash,
            enabled: r.enabled && !r.suspended,
            org_suspended: r.suspended,
            locked_until: r.locked_until.map(from_unix),
        }))
    }

    /// Counts a failed logon at `now`. `lockout_threshold` failures within
    /// `lockout_window_secs` lock the account for `lockout_duration_secs`.
    /// Returns what happened so the caller can audit it.
    pub fn record_logon_failure(&self, user: UserId, now: SystemTime) -> Result<LockoutState, AccountsError> {
        let threshold = self.config().lockout_threshold;
        self.record_logon_failure_of(user, now, threshold)
    }

    /// [`Accounts::record_logon_failure`] with another threshold (SMB
    /// logons: `lockout_threshold_all_sources`, the per-address count being
    /// the engine's).
    pub fn record_logon_failure_of(
        &self,
        user: UserId,
        now: SystemTime,
        threshold: u32,
    ) -> Result<LockoutState, AccountsError> {
        let mut cfg = self.config();
        cfg.lockout_threshold = threshold;
        let now_s = to_unix(now);
        let window = i64::try_from(cfg.lockout_window_secs).unwrap_or(i64::MAX);
        self.write_quiet(|tx| {
            let locked: Option<Option<i64>> =
                tx.query_row("SELECT locked_until FROM users WHERE id = ?1", [user.0], |r| r.get(0)).optional()?;
            let locked =
                locked.ok_or_else(|| AccountsError::NotFound { what: "user", name: format!("#{}", user.0) })?;
            if let Some(until) = locked.filter(|u| *u > now_s) {
                return Ok(LockoutState::AlreadyLocked { until: from_unix(until) });
            }
            tx.execute(
                "DELETE FROM logon_failures WHERE user_id = ?1 AND at <= ?2",
                params![user.0, now_s.saturating_sub(window)],
            )?;
            tx.execute("INSERT INTO logon_failures (user_id, at) VALUES (?1, ?2)", params![user.0, now_s])?;
            let failures: u32 =
                tx.query_row("SELECT count(*) FROM logon_failures WHERE user_id = ?1", [user.0], |r| r.get(0))?;
            if failures < cfg.lockout_threshold {
                return Ok(LockoutState::Counting { failures, threshold: cfg.lockout_threshold });
            }
            // Stored in whole seconds, rounded up: the lock lasts at least the configured time.
            let until = to_unix(now + Duration::from_secs(cfg.lockout_duration_secs) + Duration::from_millis(999));
            tx.execute("UPDATE users SET locked_until = ?2 WHERE id = ?1", params![user.0, until])?;
            tx.execute("DELETE FROM logon_failures WHERE user_id = ?1", [user.0])?;
            Ok(LockoutState::LockedNow { until: from_unix(until) })
        })
    }

    /// A successful logon forgets earlier failures (and an expired lock).
    /// Writes only when there is something to forget.
    pub fn record_logon_success(&self, user: UserId, now: SystemTime) -> Result<(), AccountsError> {
        let now_s = to_unix(now);
        let dirty = self.read(|c| {
            let mut st = c.prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM logon_failures WHERE user_id = ?1) \
                 OR EXISTS (SELECT 1 FROM users WHERE id = ?1 AND locked_until IS NOT NULL)",
            )?;
            Ok(st.query_row([user.0], |r| r.get::<_, bool>(0))?)
        })?;
        if !dirty {
            return Ok(());
        }
        self.write_quiet(|tx| {
            tx.execute("DELETE FROM logon_failures WHERE user_id = ?1", [user.0])?;
            tx.execute(
                "UPDATE users SET locked_until = NULL WHERE id = ?1 AND locked_until <= ?2",
                params![user.0, now_s],
            )?;
            Ok(())
        })
    }

    /// Whether any failed logon of the account is on record (none after an
    /// administrator's unlock or a successful logon).
    pub fn has_logon_failures(&self, user: UserId) -> Result<bool, AccountsError> {
        self.read(|c| {
            let mut st = c.prepare_cached("SELECT EXISTS (SELECT 1 FROM logon_failures WHERE user_id = ?1)")?;
            Ok(st.query_row([user.0], |r| r.get::<_, bool>(0))?)
        })
    }

    /// Whether the account is locked out at `now` (locks lift by themselves).
    pub fn is_locked(&self, user: UserId, now: SystemTime) -> Result<bool, AccountsError> {
        let until: Option<i64> = self.read(|c| {
            let mut st = c.prepare_cached("SELECT locked_until FROM users WHERE id = ?1")?;
            Ok(st.query_row([user.0], |r| r.get(0)).optional()?.flatten())
        })?;
        Ok(until.is_some_and(|u| u > to_unix(now)))
    }

    /// Lifts a lockout at once (administrator action) and forgets failures.
    pub fn unlock(&self, user: UserId) -> Result<(), AccountsError> {
        self.write(|tx| {
            let n = tx.execute("UPDATE users SET locked_until = NULL WHERE id = ?1", [user.0])?;
            if n == 0 {
                return Err(AccountsError::NotFound { what: "user", name: format!("#{}", user.0) });
            }
            tx.execute("DELETE FROM logon_failures WHERE user_id = ?1", [user.0])?;
            Ok(())
        })
    }
}

/// Why a password sign-in (console, CLI `--as`) failed. The person signing
/// in is told only "wrong name or password" unless the password was right.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignInRefusal {
    /// No such organization or user (indistinguishable to the caller).
    UnknownUser,
    /// Locked out by earlier failures (SMB or console alike).
    LockedOut,
    /// The password does not match the Argon2id hash.
    BadPassword,
    /// Right password, but the user is disabled or the organization suspended.
    Disabled,
}

impl SignInRefusal {
    /// Short reason for the audit log (stored in clear: no names).
    pub fn reason(self) -> &'static str {
        match self {
            SignInRefusal::UnknownUser => "unknown user",
            SignInRefusal::LockedOut => "locked out",
            SignInRefusal::BadPassword => "bad password",
            SignInRefusal::Disabled => "account disabled",
        }
    }
}

/// A refused sign-in: why, whom it named, and whether it locked the account.
#[derive(Debug, Clone)]
pub struct SignInFailure {
    /// Why.
    pub refusal: SignInRefusal,
    /// The account named, when it exists.
    pub user: Option<super::UserRecord>,
    /// The organization named, when it exists.
    pub org: Option<OrgId>,
    /// This failure locked the account (`[accounts] lockout_*`).
    pub locked_now: bool,
}

impl Accounts {
    /// Checks a password sign-in for `ORG\user` or `user@ORG` against the
    /// Argon2id hash. Failures count towards the same lockout as SMB
    /// logons, and a locked account is refused before its password is
    /// looked at, as the SMB logon path does.
    pub fn check_sign_in(
        &self,
        spec: &str,
        password: &str,
        now: SystemTime,
    ) -> Result<Result<super::UserRecord, SignInFailure>, AccountsError> {
        let fail = |refusal, user: Option<super::UserRecord>, org, locked_now| {
            Ok(Err(SignInFailure { refusal, user, org, locked_now }))
        };
        let (Some(org), user) = names::split_qualified(spec) else {
            return fail(SignInRefusal::UnknownUser, None, None, false);
        };
        let Some(org) = self.find_org(org)? else {
            return fail(SignInRefusal::UnknownUser, None, None, false);
        };
        let Some(rec) = self.find_user(org.id, user)? else {
            return fail(SignInRefusal::UnknownUser, None, Some(org.id), false);
        };
        if self.is_locked(rec.id, now)? {
            return fail(SignInRefusal::LockedOut, Some(rec), Some(org.id), false);
        }
        if !self.verify_password(rec.id, password)? {
            let locked = matches!(self.record_logon_failure(rec.id, now)?, LockoutState::LockedNow { .. });
            return fail(SignInRefusal::BadPassword, Some(rec), Some(org.id), locked);
        }
        self.record_logon_success(rec.id, now)?;
        if !rec.enabled || org.suspended {
            return fail(SignInRefusal::Disabled, Some(rec), Some(org.id), false);
        }
        Ok(Ok(rec))
    }
}
