//! First start: an empty server gets the default organization, its
//! administrator (with a generated password, printed once by `serve`) and
//! the default share, so that it is usable at once.

use zeroize::Zeroizing;

use super::{Access, Accounts, AccountsError, NewShare, Provisioner, Role, names, password};
use crate::config::Config;

/// The administrator created by [`bootstrap`]. `Debug` hides the password.
pub struct GeneratedAdmin {
    /// Organization (NTLM domain).
    pub org: String,
    /// Administrator user name.
    pub user: String,
    /// The generated password: show it once, never log it.
    pub password: Zeroizing<String>,
    /// The default share.
    pub share: String,
}

impl std::fmt::Debug for GeneratedAdmin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GeneratedAdmin")
            .field("org", &self.org)
            .field("user", &self.user)
            .field("password", &"..")
            .field("share", &self.share)
            .finish()
    }
}

/// Creates `[accounts] default_org`, its org_admin `[bootstrap] admin_user`
/// and the share `[bootstrap] share` (read_write for the organization) when
/// no organization has ever existed. Returns `None` when there is nothing
/// to do. A bootstrap interrupted before the administrator was created
/// (the default organization is the only one and has no users) is resumed.
pub fn bootstrap(
    acc: &Accounts,
    prov: &dyn Provisioner,
    cfg: &Config,
) -> Result<Option<GeneratedAdmin>, AccountsError> {
    let default = &cfg.accounts.default_org;
    let orgs = acc.list_orgs()?;
    let org = match orgs.as_slice() {
        [] if !acc.any_org_ever()? => acc.create_org(default, prov)?,
        [only]
            if names::fold_org(&only.name) == names::fold_org(default) && acc.list_users(Some(only.id))?.is_empty() =>
        {
            only.clone()
        }
        _ => return Ok(None),
    };
    let share = match acc.find_share(org.id, &cfg.bootstrap.share)? {
        Some(s) => s,
        None => acc.add_share(
            &NewShare {
                org: org.id,
                name: cfg.bootstrap.share.clone(),
                comment: String::new(),
                encryption: None,
                default_access: Access::ReadWrite,
            },
            prov,
        )?,
    };
    let pw = password::generate();
    let user = acc.add_user(org.id, &cfg.bootstrap.admin_user, Role::OrgAdmin, &pw)?;
    Ok(Some(GeneratedAdmin { org: org.name, user: user.name, password: pw, share: share.name }))
}
