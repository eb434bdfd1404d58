//! How smbvault names its organizations, users and groups with security
//! identifiers (the MS-DTYP 2.4.2 type is `wire::dtyp::Sid`), and the token
//! an access check runs for.
//!
//! ## smbvault SID scheme
//!
//! Each organization is a "domain" `S-1-5-21-1397572182-H-L` where
//! 1397572182 is 0x534D4256 ("SMBV"), and H/L are the high and low 32 bits
//! of the organization id. Relative ids (RIDs) inside it:
//!
//! | RID                       | meaning                                   |
//! |---------------------------|-------------------------------------------|
//! | 512                       | organization administrators               |
//! | 513                       | all members of the organization           |
//! | 1000 + user id            | a user (user ids below 2^30)              |
//! | 2^30 + group id           | an organization group (ids below 2^30)    |
//!
//! The mapping is stable: it depends only on database ids, never on names,
//! so renaming a user keeps their ACLs.
//! Tokens also carry Everyone (S-1-1-0), Authenticated Users (S-1-5-11) and
//! BUILTIN\Users (S-1-5-32-545) so that ACLs written by Windows tools work.

use crate::types::{OrgId, UserId};
use crate::wire::dtyp::Sid;

/// "SMBV": first sub-authority after 21 in every organization SID.
pub const SMBVAULT_DOMAIN_TAG: u32 = 0x534D_4256;
/// RID of the organization administrators group.
pub const RID_ORG_ADMINS: u32 = 512;
/// RID of the all-members group.
pub const RID_ORG_USERS: u32 = 513;
/// First user RID (RID = this + user id).
pub const RID_USER_BASE: u32 = 1000;
/// First group RID (RID = this + group id).
pub const RID_GROUP_BASE: u32 = 1 << 30;

/// The smbvault scheme on top of the MS-DTYP type.
impl Sid {
    /// The organization's domain SID `S-1-5-21-SMBV-H-L`.
    pub fn org_domain(org: OrgId) -> Self {
        let (hi, lo) = ((org.0 >> 32) as u32, org.0 as u32);
        Self::known(5, &[21, SMBVAULT_DOMAIN_TAG, hi, lo])
    }

    /// Domain SID plus one RID.
    pub fn org_member(org: OrgId, rid: u32) -> Self {
        let (hi, lo) = ((org.0 >> 32) as u32, org.0 as u32);
        Self::known(5, &[21, SMBVAULT_DOMAIN_TAG, hi, lo, rid])
    }

    /// A user's SID; `None` if the id does not fit the RID range.
    pub fn user(org: OrgId, user: UserId) -> Option<Self> {
        let id = u32::try_from(user.0).ok().filter(|&i| i < RID_GROUP_BASE - RID_USER_BASE)?;
        Some(Self::org_member(org, RID_USER_BASE + id))
    }

    /// An organization group's SID; `None` if the id does not fit.
    pub fn group(org: OrgId, group: u64) -> Option<Self> {
        let id = u32::try_from(group).ok().filter(|&i| i < RID_GROUP_BASE)?;
        Some(Self::org_member(org, RID_GROUP_BASE + id))
    }
}

/// The identity an access check runs for (MS-DTYP 2.5.2 token, reduced to
/// SIDs: smbvault grants no privileges).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    /// The user.
    pub user: Sid,
    /// Every group the user is in, well-known ones included.
    pub groups: Vec<Sid>,
}

impl Token {
    /// The token of an smbvault user: user SID, the organization's members
    /// group, its admins group if `org_admin`, the given organization
    /// groups, and Everyone / Authenticated Users / BUILTIN\Users.
    /// `None` if an id does not fit the SID scheme.
    pub fn for_user(org: OrgId, user: UserId, groups: &[u64], org_admin: bool) -> Option<Self> {
        let mut g = vec![
            Sid::everyone(),
            Sid::authenticated_users(),
            Sid::builtin_users(),
            Sid::org_member(org, RID_ORG_USERS),
        ];
        if org_admin {
            g.push(Sid::org_member(org, RID_ORG_ADMINS));
        }
        for &id in groups {
            g.push(Sid::group(org, id)?);
        }
        Some(Self { user: Sid::user(org, user)?, groups: g })
    }

    /// True if the token holds `sid` as user or group.
    pub fn has(&self, sid: &Sid) -> bool {
        &self.user == sid || self.groups.iter().any(|g| g == sid)
    }
}
