//! Security identifiers (MS-DTYP 2.4.2) and how smbvault names its
//! organizations, users and groups with them.
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
//! The mapping is reversible ([`Principal::from_sid`]) and stable: it depends
//! only on database ids, never on names, so renaming a user keeps their ACLs.
//! Tokens also carry Everyone (S-1-1-0), Authenticated Users (S-1-5-11) and
//! BUILTIN\Users (S-1-5-32-545) so that ACLs written by Windows tools work.

use crate::types::{OrgId, UserId};
use crate::wire::NtStatus;

/// A SID: identifier authority and up to 15 sub-authorities.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Sid {
    authority: u64,
    subs: Vec<u32>,
}

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

impl Sid {
    /// A SID from its parts; `None` beyond 15 sub-authorities or a 48-bit authority.
    pub fn new(authority: u64, subs: &[u32]) -> Option<Self> {
        if subs.len() > 15 || authority >> 48 != 0 {
            return None;
        }
        Some(Self { authority, subs: subs.to_vec() })
    }

    fn known(authority: u64, subs: &[u32]) -> Self {
        Self { authority, subs: subs.to_vec() }
    }

    /// S-1-1-0 Everyone.
    pub fn everyone() -> Self {
        Self::known(1, &[0])
    }
    /// S-1-3-0 CREATOR OWNER (replaced by the owner on inheritance).
    pub fn creator_owner() -> Self {
        Self::known(3, &[0])
    }
    /// S-1-3-1 CREATOR GROUP.
    pub fn creator_group() -> Self {
        Self::known(3, &[1])
    }
    /// S-1-3-4 OWNER RIGHTS (replaces the owner's implicit rights).
    pub fn owner_rights() -> Self {
        Self::known(3, &[4])
    }
    /// S-1-5-11 Authenticated Users.
    pub fn authenticated_users() -> Self {
        Self::known(5, &[11])
    }
    /// S-1-5-18 Local System.
    pub fn local_system() -> Self {
        Self::known(5, &[18])
    }
    /// S-1-5-32-544 BUILTIN\Administrators.
    pub fn builtin_admins() -> Self {
        Self::known(5, &[32, 544])
    }
    /// S-1-5-32-545 BUILTIN\Users.
    pub fn builtin_users() -> Self {
        Self::known(5, &[32, 545])
    }

    /// The organization's domain SID `S-1-5-21-SMBV-H-L`.
    pub fn org_domain(org: OrgId) -> Self {
        let (hi, lo) = ((org.0 >> 32) as u32, org.0 as u32);
        Self::known(5, &[21, SMBVAULT_DOMAIN_TAG, hi, lo])
    }

    /// Domain SID plus one RID.
    pub fn org_member(org: OrgId, rid: u32) -> Self {
        let mut s = Self::org_domain(org);
        s.subs.push(rid);
        s
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

    /// Decode from `buf` (MS-DTYP 2.4.2.2); returns the SID and its length.
    pub fn parse(buf: &[u8]) -> Result<(Self, usize), NtStatus> {
        let bad = NtStatus::INVALID_SID;
        let head = buf.get(..8).ok_or(bad)?;
        if head.first() != Some(&1) {
            return Err(bad);
        }
        let count = usize::from(*head.get(1).ok_or(bad)?);
        if count > 15 {
            return Err(bad);
        }
        let mut authority = 0u64;
        for b in head.get(2..8).ok_or(bad)? {
            authority = (authority << 8) | u64::from(*b);
        }
        let len = 8 + 4 * count;
        let body = buf.get(8..len).ok_or(bad)?;
        let subs = body.chunks_exact(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
        Ok((Self { authority, subs }, len))
    }

    /// Encoded length in bytes.
    pub fn encoded_len(&self) -> usize {
        8 + 4 * self.subs.len()
    }

    /// Append the binary form.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.push(1);
        out.push(self.subs.len() as u8);
        out.extend_from_slice(&self.authority.to_be_bytes()[2..]);
        for s in &self.subs {
            out.extend_from_slice(&s.to_le_bytes());
        }
    }

    /// Sub-authorities.
    pub fn subs(&self) -> &[u32] {
        &self.subs
    }

    /// Identifier authority.
    pub fn authority(&self) -> u64 {
        self.authority
    }
}

impl std::fmt::Display for Sid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "S-1-{}", self.authority)?;
        for s in &self.subs {
            write!(f, "-{s}")?;
        }
        Ok(())
    }
}

impl std::fmt::Debug for Sid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

/// What an smbvault SID stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Principal {
    /// A user of the organization.
    User(OrgId, UserId),
    /// An organization group.
    Group(OrgId, u64),
    /// The organization's administrators.
    OrgAdmins(OrgId),
    /// All members of the organization.
    OrgUsers(OrgId),
}

impl Principal {
    /// Reverse of the scheme above; `None` for foreign or well-known SIDs.
    pub fn from_sid(sid: &Sid) -> Option<Self> {
        let [21, tag, hi, lo, rid] = *sid.subs() else {
            return None;
        };
        if sid.authority() != 5 || tag != SMBVAULT_DOMAIN_TAG {
            return None;
        }
        let org = OrgId((u64::from(hi) << 32) | u64::from(lo));
        Some(match rid {
            RID_ORG_ADMINS => Principal::OrgAdmins(org),
            RID_ORG_USERS => Principal::OrgUsers(org),
            r if r >= RID_GROUP_BASE => Principal::Group(org, u64::from(r - RID_GROUP_BASE)),
            r if r >= RID_USER_BASE => Principal::User(org, UserId(u64::from(r - RID_USER_BASE))),
            _ => return None,
        })
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
