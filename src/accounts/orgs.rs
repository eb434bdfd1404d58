//! Organizations: create, rename, suspend, quota, retention, contract end.

use std::time::SystemTime;

use chrono::NaiveDate;
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::records::{from_unix, parse_retention, retention_str, to_unix};
use super::{Accounts, AccountsError, OrgRecord, Provisioner, names};
use crate::config::Retention;
use crate::types::OrgId;

const ORG_COLS: &str = "id, name, suspended, quota_bytes, retention, contract_end, created FROM orgs";

fn org_from_row(r: &Row<'_>) -> rusqlite::Result<OrgRecord> {
    let retention: Option<String> = r.get(4)?;
    let end: Option<String> = r.get(5)?;
    Ok(OrgRecord {
        id: OrgId(r.get(0)?),
        name: r.get(1)?,
        suspended: r.get(2)?,
        quota_bytes: r.get(3)?,
        // An unreadable value (written by a newer version) reads as "default".
        retention: retention.and_then(|s| parse_retention(&s).ok()),
        contract_end: end.and_then(|s| s.parse::<NaiveDate>().ok()),
        created: from_unix(r.get(6)?),
    })
}

pub(super) fn org_by_id(c: &Connection, id: OrgId) -> Result<Option<OrgRecord>, AccountsError> {
    let sql = format!("SELECT {ORG_COLS} WHERE id = ?1 AND erased = 0");
    Ok(c.prepare_cached(&sql)?.query_row([id.0], org_from_row).optional()?)
}

pub(super) fn org_by_name(c: &Connection, name: &str) -> Result<Option<OrgRecord>, AccountsError> {
    let sql = format!("SELECT {ORG_COLS} WHERE name_key = ?1");
    Ok(c.prepare_cached(&sql)?.query_row([names::fold_org(name)], org_from_row).optional()?)
}

fn changed(n: usize, id: OrgId) -> Result<(), AccountsError> {
    if n == 0 {
        return Err(AccountsError::NotFound { what: "organization", name: format!("#{}", id.0) });
    }
    Ok(())
}

impl Accounts {
    /// Creates an organization and its storage. The row and the storage are
    /// made in one transaction: if the storage fails, no row remains (the
    /// id is still consumed, ids are never reused).
    pub fn create_org(&self, name: &str, prov: &dyn Provisioner) -> Result<OrgRecord, AccountsError> {
        let name = names::org_name(name)?;
        self.write(|tx| {
            if org_by_name(tx, &name)?.is_some() {
                return Err(AccountsError::Exists { what: "organization", name: name.clone() });
            }
            tx.execute(
                "INSERT INTO orgs (name, name_key, created) VALUES (?1, ?2, ?3)",
                params![name, names::fold_org(&name), to_unix(SystemTime::now())],
            )?;
            let id = OrgId(u64::try_from(tx.last_insert_rowid()).unwrap_or(0));
            prov.create_org_storage(id)?;
            org_by_id(tx, id)?.ok_or_else(|| AccountsError::NotFound { what: "organization", name })
        })
    }

    /// All organizations (erased ones excluded), by name.
    pub fn list_orgs(&self) -> Result<Vec<OrgRecord>, AccountsError> {
        self.read(|c| {
            let sql = format!("SELECT {ORG_COLS} WHERE erased = 0 ORDER BY name_key");
            let rows = c.prepare_cached(&sql)?.query_map([], org_from_row)?.collect::<Result<_, _>>()?;
            Ok(rows)
        })
    }

    /// Whether any organization was ever created (erased ones count).
    pub fn any_org_ever(&self) -> Result<bool, AccountsError> {
        self.read(|c| Ok(c.prepare_cached("SELECT 1 FROM orgs LIMIT 1")?.exists([])?))
    }

    /// The organization named `name` (case-insensitive).
    pub fn find_org(&self, name: &str) -> Result<Option<OrgRecord>, AccountsError> {
        self.read(|c| org_by_name(c, name))
    }

    /// The organization with id `id`.
    pub fn org(&self, id: OrgId) -> Result<Option<OrgRecord>, AccountsError> {
        self.read(|c| org_by_id(c, id))
    }

    /// Renames an organization. Its users then log on as `NEWNAME\user`.
    pub fn rename_org(&self, id: OrgId, new_name: &str) -> Result<(), AccountsError> {
        let name = names::org_name(new_name)?;
        self.write(|tx| {
            if let Some(o) = org_by_name(tx, &name)?
                && o.id != id
            {
                return Err(AccountsError::Exists { what: "organization", name: name.clone() });
            }
            let n = tx.execute(
                "UPDATE orgs SET name = ?2, name_key = ?3 WHERE id = ?1 AND erased = 0",
                params![id.0, name, names::fold_org(&name)],
            )?;
            changed(n, id)
        })
    }

    /// Suspends (no logons, sessions dropped at the next revision check) or resumes.
    pub fn set_org_suspended(&self, id: OrgId, suspended: bool) -> Result<(), AccountsError> {
        self.update_org(id, "suspended", rusqlite::types::Value::from(suspended))
    }

    /// Sets the storage quota in bytes (`None`: unlimited).
    pub fn set_org_quota(&self, id: OrgId, bytes: Option<u64>) -> Result<(), AccountsError> {
        let v = match bytes {
            Some(b) => rusqlite::types::Value::Integer(
                i64::try_from(b).map_err(|_| AccountsError::Invalid(format!("quota {b} is too large")))?,
            ),
            None => rusqlite::types::Value::Null,
        };
        self.update_org(id, "quota_bytes", v)
    }

    /// Sets the audit retention (`None`: the server default).
    pub fn set_org_retention(&self, id: OrgId, r: Option<Retention>) -> Result<(), AccountsError> {
        let v = r.map(|r| retention_str(r).to_string());
        self.update_org(id, "retention", v.map_or(rusqlite::types::Value::Null, Into::into))
    }

    /// Sets the UPN suffix (already checked by `names::upn_suffix`); `None`
    /// removes it. Two organizations cannot share one (unique index).
    pub fn set_org_upn_suffix(&self, id: OrgId, suffix: Option<&str>) -> Result<(), AccountsError> {
        if let Some(s) = suffix {
            let taken: Option<u64> = self.read(|c| {
                Ok(c.prepare_cached("SELECT id FROM orgs WHERE upn_suffix = ?1")?
                    .query_row([s], |r| r.get(0))
                    .optional()?)
            })?;
            if taken.is_some_and(|o| o != id.0) {
                return Err(AccountsError::Exists { what: "UPN suffix", name: s.to_string() });
            }
        }
        self.update_org(id, "upn_suffix", suffix.map_or(rusqlite::types::Value::Null, |s| s.to_string().into()))
    }

    /// Records the last day of the contract (`None` cancels an earlier end).
    /// The data is erased `erase_after_days` later: see [`Accounts::orgs_due_for_erasure`].
    pub fn end_contract(&self, id: OrgId, last_day: Option<NaiveDate>) -> Result<(), AccountsError> {
        let v = last_day.map(|d| d.to_string());
        self.update_org(id, "contract_end", v.map_or(rusqlite::types::Value::Null, Into::into))
    }

    fn update_org(&self, id: OrgId, col: &'static str, v: rusqlite::types::Value) -> Result<(), AccountsError> {
        // `col` is one of the literals above, never input.
        let sql = format!("UPDATE orgs SET {col} = ?2 WHERE id = ?1 AND erased = 0");
        self.write(|tx| changed(tx.execute(&sql, params![id.0, v])?, id))
    }

    /// When the organization's data is to be erased: the end of the last
    /// contract day in JST plus `erase_after_days` (contract dates are
    /// Japanese calendar days; JST has no daylight saving).
    pub fn erasure_time(&self, org: &OrgRecord) -> Option<SystemTime> {
        let day = org.contract_end?;
        let midnight_utc = day.and_hms_opt(0, 0, 0)?.and_utc().timestamp();
        let end = midnight_utc + 86_400 - i64::from(crate::types::jst::OFFSET_SECS);
        let at = end + i64::from(self.erase_after_days) * 86_400;
        Some(from_unix(at))
    }

    /// Organizations whose contract ended more than `erase_after_days` ago.
    pub fn orgs_due_for_erasure(&self, now: SystemTime) -> Result<Vec<OrgRecord>, AccountsError> {
        Ok(self.list_orgs()?.into_iter().filter(|o| self.erasure_time(o).is_some_and(|t| t <= now)).collect())
    }

    /// After the storage engine shredded the organization: removes its
    /// users, groups and shares and frees its name. The row stays (with
    /// `erased = 1`) so that its id is never reused and old audit records
    /// still resolve to "erased organization #id".
    pub fn mark_org_erased(&self, id: OrgId) -> Result<(), AccountsError> {
        self.write(|tx| {
            tx.execute("DELETE FROM shares WHERE org_id = ?1", [id.0])?;
            tx.execute("DELETE FROM groups WHERE org_id = ?1", [id.0])?;
            tx.execute("DELETE FROM users WHERE org_id = ?1", [id.0])?;
            let n = tx.execute(
                "UPDATE orgs SET erased = 1, name_key = NULL, upn_suffix = NULL, name = '#' || id WHERE id = ?1 AND erased = 0",
                [id.0],
            )?;
            changed(n, id)
        })
    }
}
