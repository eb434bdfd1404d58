//! What NT security descriptors mean: a simplified access check (MS-DTYP
//! 2.5.3.2: no privileges, no conditional or object ACEs), SET_INFO of a
//! descriptor, and the descriptors smbvault gives new files and share roots
//! (MS-DTYP 2.5.3.4 inheritance, simplified). The structures and their
//! bytes are `wire::dtyp`.

use super::access::{
    DACL_SECURITY_INFORMATION, GROUP_SECURITY_INFORMATION, OWNER_SECURITY_INFORMATION, SACL_SECURITY_INFORMATION,
};
use super::access::{FILE_ALL_ACCESS, map_generic};
use super::access::{READ_CONTROL, WRITE_DAC};
use super::sid::{RID_ORG_ADMINS, RID_ORG_USERS, Token};
use crate::types::OrgId;
use crate::wire::NtStatus;
use crate::wire::dtyp::{ACCESS_ALLOWED, ACCESS_DENIED, Ace, Acl, SecurityDescriptor, Sid, ace_flags, control};

/// What a descriptor grants and how SET_INFO changes it: rules of the
/// engine on top of the MS-DTYP type.
impl SecurityDescriptor {
    /// SET_INFO of a descriptor: replace the parts named by `secinfo`
    /// with those of `new`. An owner may only be set to the caller or one
    /// of its groups (no SeRestorePrivilege): INVALID_OWNER otherwise.
    pub fn apply(&mut self, new: &SecurityDescriptor, secinfo: u32, token: &Token) -> Result<(), NtStatus> {
        if secinfo & OWNER_SECURITY_INFORMATION != 0 {
            let owner = new.owner.clone().ok_or(NtStatus::INVALID_SECURITY_DESCR)?;
            if !token.has(&owner) {
                return Err(INVALID_OWNER);
            }
            self.owner = Some(owner);
        }
        if secinfo & GROUP_SECURITY_INFORMATION != 0 {
            self.group = new.group.clone();
        }
        if secinfo & DACL_SECURITY_INFORMATION != 0 {
            let keep = control::DACL_PRESENT | control::DACL_AUTO_INHERITED | control::DACL_PROTECTED;
            self.control = (self.control & !keep) | (new.control & keep);
            self.dacl = new.dacl.clone();
        }
        if secinfo & SACL_SECURITY_INFORMATION != 0 {
            self.control = (self.control & !control::SACL_PRESENT) | (new.control & control::SACL_PRESENT);
            self.sacl = new.sacl.clone();
        }
        Ok(())
    }

    /// Everything the descriptor grants `token` (the MAXIMUM_ALLOWED
    /// computation of MS-DTYP 2.5.3.2): walk the DACL in order, a bit
    /// decided by the first ACE that mentions it. The owner implicitly has
    /// READ_CONTROL | WRITE_DAC unless an OWNER RIGHTS ACE is present. A
    /// missing (NULL) DACL grants everything. Generic bits in ACEs are mapped.
    pub fn max_allowed(&self, token: &Token) -> u32 {
        let Some(dacl) = self.dacl.as_ref() else {
            return FILE_ALL_ACCESS;
        };
        let owner = self.owner.as_ref().is_some_and(|o| token.has(o));
        let owner_rights = Sid::owner_rights();
        let (mut granted, mut denied) = (0u32, 0u32);
        let mut has_owner_rights_ace = false;
        for ace in &dacl.aces {
            let Ace::Basic { ace_type, flags, mask, sid } = ace else {
                continue;
            };
            if flags & ace_flags::INHERIT_ONLY != 0 {
                continue;
            }
            let is_owner_rights = *sid == owner_rights;
            has_owner_rights_ace |= is_owner_rights;
            if !(token.has(sid) || (owner && is_owner_rights)) {
                continue;
            }
            let mask = map_generic(*mask);
            match *ace_type {
                ACCESS_ALLOWED => granted |= mask & !denied,
                ACCESS_DENIED => denied |= mask & !granted,
                _ => {}
            }
        }
        if owner && !has_owner_rights_ace {
            granted |= (READ_CONTROL | WRITE_DAC) & !denied;
        }
        granted & !denied
    }
}

/// STATUS_INVALID_OWNER (MS-ERREF), not in the shared status table yet.
pub const INVALID_OWNER: NtStatus = NtStatus(0xC000_005A);

/// The descriptor of a share's root directory: the organization's
/// administrators own it; administrators, SYSTEM and every member of the
/// organization get full control, inherited by everything below. Access is
/// then governed by the share permission until someone narrows an ACL.
pub fn share_root(org: OrgId) -> SecurityDescriptor {
    use ace_flags::{CONTAINER_INHERIT as CI, INHERIT_ONLY as IO, OBJECT_INHERIT as OI};
    let admins = Sid::org_member(org, RID_ORG_ADMINS);
    let users = Sid::org_member(org, RID_ORG_USERS);
    SecurityDescriptor {
        control: control::DACL_PRESENT | control::DACL_PROTECTED,
        owner: Some(admins.clone()),
        group: Some(users.clone()),
        dacl: Some(Acl {
            revision: 2,
            aces: vec![
                Ace::allow(admins, FILE_ALL_ACCESS, OI | CI),
                Ace::allow(Sid::local_system(), FILE_ALL_ACCESS, OI | CI),
                Ace::allow(users, FILE_ALL_ACCESS, OI | CI),
                Ace::allow(Sid::creator_owner(), FILE_ALL_ACCESS, OI | CI | IO),
            ],
        }),
        sacl: None,
    }
}

/// The descriptor of a new object created by `owner` (primary group
/// `group`) inside a directory with descriptor `parent` (MS-DTYP 2.5.3.4,
/// simplified): inheritable ACEs of the parent's DACL are copied with
/// INHERITED set, CREATOR OWNER / CREATOR GROUP become the owner / group,
/// files take OBJECT_INHERIT ACEs, directories CONTAINER_INHERIT ones (and
/// keep OBJECT_INHERIT-only ones as inherit-only so files below get them).
/// Without anything inheritable the owner and SYSTEM get full control.
pub fn inherit(parent: Option<&SecurityDescriptor>, owner: &Sid, group: &Sid, is_dir: bool) -> SecurityDescriptor {
    let aces: Vec<Ace> = parent
        .and_then(|p| p.dacl.as_ref())
        .map(|d| d.aces.iter().flat_map(|a| inherit_ace(a, owner, group, is_dir)).collect())
        .unwrap_or_default();
    let (control, aces) = if aces.is_empty() {
        (
            control::DACL_PRESENT,
            vec![Ace::allow(owner.clone(), FILE_ALL_ACCESS, 0), Ace::allow(Sid::local_system(), FILE_ALL_ACCESS, 0)],
        )
    } else {
        (control::DACL_PRESENT | control::DACL_AUTO_INHERITED, aces)
    };
    SecurityDescriptor {
        control,
        owner: Some(owner.clone()),
        group: Some(group.clone()),
        dacl: Some(Acl { revision: 2, aces }),
        sacl: None,
    }
}

fn inherit_ace(ace: &Ace, owner: &Sid, group: &Sid, is_dir: bool) -> Vec<Ace> {
    use ace_flags::*;
    let Ace::Basic { ace_type, flags, mask, sid } = ace else {
        return Vec::new();
    };
    let oi = flags & OBJECT_INHERIT != 0;
    let ci = flags & CONTAINER_INHERIT != 0;
    let np = flags & NO_PROPAGATE != 0;
    let creator = *sid == Sid::creator_owner() || *sid == Sid::creator_group();
    let effective_sid = if *sid == Sid::creator_owner() {
        owner.clone()
    } else if *sid == Sid::creator_group() {
        group.clone()
    } else {
        sid.clone()
    };
    let make = |sid: Sid, flags: u8| Ace::Basic { ace_type: *ace_type, flags, mask: map_generic(*mask), sid };
    let propagate = flags & (OBJECT_INHERIT | CONTAINER_INHERIT);
    if !is_dir {
        return if oi { vec![make(effective_sid, INHERITED)] } else { Vec::new() };
    }
    match (ci, oi, np) {
        // Effective on this directory only.
        (true, _, true) => vec![make(effective_sid, INHERITED)],
        // Effective here and passed on; a CREATOR ACE is split into the
        // effective owner ACE and an inherit-only template (MS-DTYP 2.5.3.4).
        (true, _, false) if creator => {
            vec![make(effective_sid, INHERITED), make(sid.clone(), INHERITED | INHERIT_ONLY | propagate)]
        }
        (true, _, false) => vec![make(effective_sid, INHERITED | propagate)],
        // Only for files below: inherit-only on this directory.
        (false, true, false) => vec![make(sid.clone(), INHERITED | INHERIT_ONLY | OBJECT_INHERIT)],
        _ => Vec::new(),
    }
}
