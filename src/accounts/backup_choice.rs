//! Each organization's remote backup: which `[backup.targets.NAME]` and
//! how many generations (table `org_backup`). The operator may set any
//! configured target; an organization administrator only one of
//! `[backup] org_choosable_targets` (checked by the caller, which knows
//! the configuration).

use std::time::SystemTime;

use rusqlite::{OptionalExtension, params};

use super::{Accounts, AccountsError};
use crate::types::OrgId;

/// An organization's remote backup setting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrgBackup {
    /// The organization.
    pub org: OrgId,
    /// Target name.
    pub target: String,
    /// Generations kept (at least 1).
    pub generations: u32,
    /// Who set it ("operator" or `ORG\user`).
    pub set_by: String,
}

fn unix(t: SystemTime) -> i64 {
    t.duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

impl Accounts {
    /// The organization's setting, if it has remote backups.
    pub fn org_backup(&self, org: OrgId) -> Result<Option<OrgBackup>, AccountsError> {
        self.read(|c| {
            Ok(c.query_row("SELECT target, generations, set_by FROM org_backup WHERE org_id = ?1", [org.0], |r| {
                Ok(OrgBackup { org, target: r.get(0)?, generations: r.get(1)?, set_by: r.get(2)? })
            })
            .optional()?)
        })
    }

    /// Every organization with remote backups.
    pub fn org_backups(&self) -> Result<Vec<OrgBackup>, AccountsError> {
        self.read(|c| {
            let mut st = c.prepare("SELECT org_id, target, generations, set_by FROM org_backup ORDER BY org_id")?;
            let rows = st.query_map([], |r| {
                Ok(OrgBackup { org: OrgId(r.get(0)?), target: r.get(1)?, generations: r.get(2)?, set_by: r.get(3)? })
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
    }

    /// Sets (or with `None` removes) the organization's setting.
    pub fn set_org_backup(
        &self,
        org: OrgId,
        choice: Option<(&str, u32)>,
        set_by: &str,
        now: SystemTime,
    ) -> Result<(), AccountsError> {
        self.write(|tx| {
            match choice {
                Some((target, generations)) => tx.execute(
                    "INSERT INTO org_backup (org_id, target, generations, set_by, set_at) VALUES (?1, ?2, ?3, ?4, ?5)
                     ON CONFLICT(org_id) DO UPDATE SET target = ?2, generations = ?3, set_by = ?4, set_at = ?5",
                    params![org.0, target, generations.max(1), set_by, unix(now)],
                )?,
                None => tx.execute("DELETE FROM org_backup WHERE org_id = ?1", [org.0])?,
            };
            Ok(())
        })
    }
}
