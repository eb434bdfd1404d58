//! How smbvault users and organizations appear as Windows security
//! identifiers (MS-DTYP 2.4.2), and the default security descriptor of
//! objects that have none of their own.
//!
//! Each organization is a "domain" `S-1-5-21-X-Y-Z` whose three
//! sub-authorities are derived from its id; a user is that domain plus the
//! relative id `1000 + user id`; the organization's users form the group
//! `domain-513` ("Domain Users"), its administrators `domain-512`.

use crate::types::{OrgId, UserId};
use crate::wire::dtyp::{SecurityDescriptor, Sid};

/// Fixed first sub-authority after 21: "SMBV" in ASCII, so our SIDs are recognisable.
const SMBV: u32 = 0x534D_4256;

/// The organization's domain SID.
pub fn org_sid(org: OrgId) -> Sid {
    Sid { authority: 5, sub_authorities: vec![21, SMBV, (org.0 >> 32) as u32, org.0 as u32] }
}

fn with_rid(mut s: Sid, rid: u32) -> Sid {
    s.sub_authorities.push(rid);
    s
}

/// A user's SID.
pub fn user_sid(org: OrgId, user: UserId) -> Sid {
    with_rid(org_sid(org), 1000u32.wrapping_add(user.0 as u32))
}

/// The organization's "Domain Users" group.
pub fn users_group_sid(org: OrgId) -> Sid {
    with_rid(org_sid(org), 513)
}

/// The organization's "Domain Admins" group.
pub fn admins_group_sid(org: OrgId) -> Sid {
    with_rid(org_sid(org), 512)
}

/// The descriptor reported for objects without a stored one: owned by the
/// organization's administrators, full access for them, SYSTEM and
/// Administrators (access is enforced by share permissions until a
/// descriptor is set).
pub fn default_sd(org: OrgId, directory: bool, security_info: u32) -> Vec<u8> {
    SecurityDescriptor::default_for(admins_group_sid(org), users_group_sid(org), directory).encode(security_info)
}

/// A stored descriptor as returned to a query for `security_info` parts.
pub fn filter_sd(sd: &[u8], _security_info: u32) -> Vec<u8> {
    sd.to_vec()
}
