//! Organization administration: operator only, except listing, the
//! retention and the two-factor policy of an administrator's own organization.

use chrono::NaiveDate;

use super::{Admin, AdminAction};
use crate::accounts::{AccountsError, OrgRecord, Provisioner};
use crate::config::Retention;

impl Admin<'_> {
    /// Creates an organization and its storage.
    pub fn org_add(&self, name: &str, prov: &dyn Provisioner) -> Result<OrgRecord, AccountsError> {
        self.require_operator("create organizations")?;
        let o = self.acc.create_org(name, prov)?;
        self.emit(Some(o.id), AdminAction::OrgCreated { name: o.name.clone() });
        Ok(o)
    }

    /// All organizations (an org admin sees only their own).
    pub fn org_list(&self) -> Result<Vec<OrgRecord>, AccountsError> {
        match self.list_scope(None)? {
            None => self.acc.list_orgs(),
            Some(o) => Ok(vec![o]),
        }
    }

    /// Renames an organization (its users' NTLM domain changes with it).
    pub fn org_rename(&self, name: &str, new_name: &str) -> Result<OrgRecord, AccountsError> {
        self.require_operator("rename organizations")?;
        let o = self.org(Some(name), "rename")?;
        self.acc.rename_org(o.id, new_name)?;
        let to = self.org(Some(new_name), "rename")?;
        self.emit(Some(o.id), AdminAction::OrgRenamed { from: o.name, to: to.name.clone() });
        Ok(to)
    }

    /// Suspends (`true`) or resumes an organization.
    pub fn org_suspend(&self, name: &str, suspended: bool) -> Result<(), AccountsError> {
        self.require_operator("suspend or resume organizations")?;
        let o = self.org(Some(name), "suspend")?;
        self.acc.set_org_suspended(o.id, suspended)?;
        let action = if suspended {
            AdminAction::OrgSuspended { name: o.name }
        } else {
            AdminAction::OrgResumed { name: o.name }
        };
        self.emit(Some(o.id), action);
        Ok(())
    }

    /// Sets the storage quota (`None`: unlimited).
    pub fn org_set_quota(&self, name: &str, bytes: Option<u64>) -> Result<(), AccountsError> {
        self.require_operator("set quotas")?;
        let o = self.org(Some(name), "set quota")?;
        self.acc.set_org_quota(o.id, bytes)?;
        self.emit(Some(o.id), AdminAction::OrgQuotaSet { name: o.name, bytes });
        Ok(())
    }

    /// Sets the audit retention (`None`: server default). Organization
    /// administrators may set their own organization's (issue 18: it is
    /// theirs to decide how long their staff's activity is kept).
    pub fn org_set_retention(&self, name: &str, r: Option<Retention>) -> Result<(), AccountsError> {
        let o = self.org(Some(name), "set audit retention")?;
        self.acc.set_org_retention(o.id, r)?;
        self.emit(Some(o.id), AdminAction::OrgRetentionSet { name: o.name, retention: r });
        Ok(())
    }

    /// Sets (or with `None` removes) the UPN suffix its users may log on
    /// with as `user@SUFFIX`. Operator only: a suffix is a claim to a DNS
    /// domain, which one tenant must not be able to take from another.
    pub fn org_set_upn_suffix(&self, name: &str, suffix: Option<&str>) -> Result<(), AccountsError> {
        self.require_operator("set UPN suffixes")?;
        let o = self.org(Some(name), "set UPN suffix")?;
        let suffix = suffix.map(crate::accounts::names::upn_suffix).transpose()?;
        self.acc.set_org_upn_suffix(o.id, suffix.as_deref())?;
        self.emit(Some(o.id), AdminAction::OrgUpnSuffixSet { name: o.name, suffix });
        Ok(())
    }

    /// Requires (or stops requiring) TOTP two-factor sign-in of the
    /// organization's administrators on the console.
    pub fn org_set_require_totp(&self, name: &str, required: bool) -> Result<(), AccountsError> {
        let o = self.org(Some(name), "change the two-factor policy")?;
        self.acc.set_org_requires_totp(o.id, required)?;
        self.emit(Some(o.id), AdminAction::OrgTotpRequired { name: o.name, required });
        Ok(())
    }

    /// Records the contract's last day (`None` cancels); returns when the
    /// data will be erased.
    pub fn org_end_contract(
        &self,
        name: &str,
        last_day: Option<NaiveDate>,
    ) -> Result<Option<std::time::SystemTime>, AccountsError> {
        self.require_operator("end contracts")?;
        let o = self.org(Some(name), "end contract")?;
        self.acc.end_contract(o.id, last_day)?;
        self.emit(Some(o.id), AdminAction::OrgContractEnd { name: o.name.clone(), last_day });
        let o = self.org(Some(&o.name), "end contract")?;
        Ok(self.acc.erasure_time(&o))
    }
}
