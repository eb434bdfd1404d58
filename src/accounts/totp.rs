//! Per-user TOTP secrets (console two-factor sign-in) and the
//! organization's "administrators must use it" setting.
//!
//! Secrets are sealed with the same key as the NT hashes (it is kept
//! across master-key rotations) under a different associated data, so a
//! sealed secret cannot be swapped into the NT-hash column or back.

use rusqlite::{OptionalExtension, params};
use zeroize::Zeroizing;

use super::{Accounts, AccountsError};
use crate::types::{OrgId, UserId};

/// A user's TOTP secret and the newest time step already used.
pub type TotpSecret = (Zeroizing<Vec<u8>>, u64);

impl Accounts {
    fn totp_ad(user: UserId) -> Vec<u8> {
        let mut ad = b"totp".to_vec();
        ad.extend_from_slice(&user.0.to_be_bytes());
        ad
    }

    /// Stores (or replaces) the user's TOTP secret.
    pub fn set_totp_secret(&self, user: UserId, secret: &[u8]) -> Result<(), AccountsError> {
        let sealed = self.nt_key.seal(&Self::totp_ad(user), secret);
        self.write(|tx| {
            tx.execute(
                "INSERT INTO user_totp (user_id, sealed, last_step) VALUES (?1, ?2, 0) \
                 ON CONFLICT(user_id) DO UPDATE SET sealed = excluded.sealed, last_step = 0",
                params![user.0, sealed],
            )?;
            Ok(())
        })
    }

    /// Removes the user's TOTP secret; true if there was one.
    pub fn clear_totp_secret(&self, user: UserId) -> Result<bool, AccountsError> {
        self.write(|tx| Ok(tx.execute("DELETE FROM user_totp WHERE user_id = ?1", [user.0])? > 0))
    }

    /// The user's TOTP secret and the newest time step already used.
    pub fn totp_secret(&self, user: UserId) -> Result<Option<TotpSecret>, AccountsError> {
        let row: Option<(Vec<u8>, i64)> = self.read(|c| {
            let mut st = c.prepare_cached("SELECT sealed, last_step FROM user_totp WHERE user_id = ?1")?;
            Ok(st.query_row([user.0], |r| Ok((r.get(0)?, r.get(1)?))).optional()?)
        })?;
        let Some((sealed, step)) = row else { return Ok(None) };
        let secret = self.nt_key.open(&Self::totp_ad(user), &sealed)?;
        Ok(Some((secret, u64::try_from(step).unwrap_or(0))))
    }

    /// Records that the code of time step `step` was used; false when that
    /// step (or a later one) was used already: a code is good only once.
    pub fn use_totp_step(&self, user: UserId, step: u64) -> Result<bool, AccountsError> {
        let step = i64::try_from(step).unwrap_or(i64::MAX);
        self.write_quiet(|tx| {
            let n = tx.execute(
                "UPDATE user_totp SET last_step = ?2 WHERE user_id = ?1 AND last_step < ?2",
                params![user.0, step],
            )?;
            Ok(n == 1)
        })
    }

    /// Whether the organization requires TOTP of its administrators.
    pub fn org_requires_totp(&self, org: OrgId) -> Result<bool, AccountsError> {
        self.read(|c| {
            let mut st = c.prepare_cached("SELECT require_totp FROM org_console WHERE org_id = ?1")?;
            Ok(st.query_row([org.0], |r| r.get::<_, bool>(0)).optional()?.unwrap_or(false))
        })
    }

    /// Sets whether the organization requires TOTP of its administrators.
    pub fn set_org_requires_totp(&self, org: OrgId, on: bool) -> Result<(), AccountsError> {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO org_console (org_id, require_totp) VALUES (?1, ?2) \
                 ON CONFLICT(org_id) DO UPDATE SET require_totp = excluded.require_totp",
                params![org.0, on],
            )?;
            Ok(())
        })
    }
}
