//! NT security descriptors (MS-DTYP 2.4.6 self-relative form, 2.4.5 ACL,
//! 2.4.4 ACE), a simplified access check (MS-DTYP 2.5.3.2: no privileges,
//! no conditional or object ACEs) and the descriptors smbvault gives new
//! files and share roots (MS-DTYP 2.5.3.4 inheritance, simplified).

use super::access::{
    DACL_SECURITY_INFORMATION, GROUP_SECURITY_INFORMATION, OWNER_SECURITY_INFORMATION, SACL_SECURITY_INFORMATION,
};
use super::access::{FILE_ALL_ACCESS, map_generic};
use super::access::{READ_CONTROL, WRITE_DAC};
use super::sid::{RID_ORG_ADMINS, RID_ORG_USERS, Sid, Token};
use crate::types::OrgId;
use crate::wire::NtStatus;

/// SE_OWNER_DEFAULTED … SE_SELF_RELATIVE control bits (MS-DTYP 2.4.6).
pub mod control {
    /// SE_DACL_PRESENT.
    pub const DACL_PRESENT: u16 = 0x0004;
    /// SE_SACL_PRESENT.
    pub const SACL_PRESENT: u16 = 0x0010;
    /// SE_DACL_AUTO_INHERITED.
    pub const DACL_AUTO_INHERITED: u16 = 0x0400;
    /// SE_DACL_PROTECTED.
    pub const DACL_PROTECTED: u16 = 0x1000;
    /// SE_SELF_RELATIVE.
    pub const SELF_RELATIVE: u16 = 0x8000;
}

/// ACE flags (MS-DTYP 2.4.4.1).
pub mod ace_flags {
    /// OBJECT_INHERIT_ACE.
    pub const OBJECT_INHERIT: u8 = 0x01;
    /// CONTAINER_INHERIT_ACE.
    pub const CONTAINER_INHERIT: u8 = 0x02;
    /// NO_PROPAGATE_INHERIT_ACE.
    pub const NO_PROPAGATE: u8 = 0x04;
    /// INHERIT_ONLY_ACE.
    pub const INHERIT_ONLY: u8 = 0x08;
    /// INHERITED_ACE.
    pub const INHERITED: u8 = 0x10;
}

/// ACCESS_ALLOWED_ACE_TYPE.
pub const ACCESS_ALLOWED: u8 = 0x00;
/// ACCESS_DENIED_ACE_TYPE.
pub const ACCESS_DENIED: u8 = 0x01;

/// One ACE. Types other than allowed/denied keep their body as bytes
/// (so they survive a round trip) and are ignored by the access check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ace {
    /// ACCESS_ALLOWED_ACE or ACCESS_DENIED_ACE.
    Basic {
        /// ACCESS_ALLOWED or ACCESS_DENIED.
        ace_type: u8,
        /// ACE flags.
        flags: u8,
        /// Access mask.
        mask: u32,
        /// Trustee.
        sid: Sid,
    },
    /// Any other ACE type, kept verbatim.
    Other {
        /// AceType.
        ace_type: u8,
        /// AceFlags.
        flags: u8,
        /// Everything after the 4-byte header.
        body: Vec<u8>,
    },
}

impl Ace {
    /// An allow ACE.
    pub fn allow(sid: Sid, mask: u32, flags: u8) -> Self {
        Ace::Basic { ace_type: ACCESS_ALLOWED, flags, mask, sid }
    }

    /// A deny ACE.
    pub fn deny(sid: Sid, mask: u32, flags: u8) -> Self {
        Ace::Basic { ace_type: ACCESS_DENIED, flags, mask, sid }
    }

    /// The ACE flags.
    pub fn flags(&self) -> u8 {
        match self {
            Ace::Basic { flags, .. } | Ace::Other { flags, .. } => *flags,
        }
    }
}

/// An ACL: revision and ACEs in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acl {
    /// ACL_REVISION (2) or ACL_REVISION_DS (4).
    pub revision: u8,
    /// The ACEs.
    pub aces: Vec<Ace>,
}

/// A security descriptor.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SecurityDescriptor {
    /// Control flags (SE_SELF_RELATIVE is implied on encode).
    pub control: u16,
    /// Owner SID.
    pub owner: Option<Sid>,
    /// Primary group SID.
    pub group: Option<Sid>,
    /// DACL; `None` with SE_DACL_PRESENT set is a NULL DACL (everyone full).
    pub dacl: Option<Acl>,
    /// SACL (stored, never evaluated).
    pub sacl: Option<Acl>,
}

fn u16_at(b: &[u8], at: usize) -> Result<u16, NtStatus> {
    let s = b.get(at..at + 2).ok_or(NtStatus::INVALID_SECURITY_DESCR)?;
    Ok(u16::from_le_bytes([s[0], s[1]]))
}

fn u32_at(b: &[u8], at: usize) -> Result<u32, NtStatus> {
    let s = b.get(at..at + 4).ok_or(NtStatus::INVALID_SECURITY_DESCR)?;
    Ok(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

impl Acl {
    /// Decode an ACL at the start of `buf` (MS-DTYP 2.4.5).
    pub fn parse(buf: &[u8]) -> Result<Self, NtStatus> {
        let bad = NtStatus::INVALID_ACL;
        let revision = *buf.first().ok_or(bad)?;
        let size = usize::from(u16_at(buf, 2).map_err(|_| bad)?);
        let count = usize::from(u16_at(buf, 4).map_err(|_| bad)?);
        let acl = buf.get(..size).filter(|_| size >= 8).ok_or(bad)?;
        let mut aces = Vec::with_capacity(count.min(64));
        let mut at = 8usize;
        for _ in 0..count {
            let ace_type = *acl.get(at).ok_or(bad)?;
            let flags = *acl.get(at + 1).ok_or(bad)?;
            let ace_size = usize::from(u16_at(acl, at + 2).map_err(|_| bad)?);
            let body = acl.get(at + 4..at + ace_size).filter(|_| ace_size >= 4).ok_or(bad)?;
            aces.push(match ace_type {
                ACCESS_ALLOWED | ACCESS_DENIED => {
                    let mask = u32_at(body, 0).map_err(|_| bad)?;
                    let (sid, _) = Sid::parse(body.get(4..).ok_or(bad)?)?;
                    Ace::Basic { ace_type, flags, mask, sid }
                }
                _ => Ace::Other { ace_type, flags, body: body.to_vec() },
            });
            at += ace_size;
        }
        Ok(Self { revision, aces })
    }

    /// Append the binary form.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.extend_from_slice(&[self.revision, 0, 0, 0]);
        out.extend_from_slice(&(self.aces.len() as u16).to_le_bytes());
        out.extend_from_slice(&[0, 0]);
        for ace in &self.aces {
            let at = out.len();
            match ace {
                Ace::Basic { ace_type, flags, mask, sid } => {
                    out.extend_from_slice(&[*ace_type, *flags, 0, 0]);
                    out.extend_from_slice(&mask.to_le_bytes());
                    sid.encode(out);
                }
                Ace::Other { ace_type, flags, body } => {
                    out.extend_from_slice(&[*ace_type, *flags, 0, 0]);
                    out.extend_from_slice(body);
                }
            }
            let len = out.len() - at;
            patch_u16(out, at + 2, len);
        }
        let len = out.len() - start;
        patch_u16(out, start + 2, len);
    }
}

fn patch_u16(out: &mut [u8], at: usize, value: usize) {
    let v = u16::try_from(value).unwrap_or(u16::MAX).to_le_bytes();
    if let Some(s) = out.get_mut(at..at + 2) {
        s.copy_from_slice(&v);
    }
}

fn patch_u32(out: &mut [u8], at: usize, value: usize) {
    let v = u32::try_from(value).unwrap_or(u32::MAX).to_le_bytes();
    if let Some(s) = out.get_mut(at..at + 4) {
        s.copy_from_slice(&v);
    }
}

impl SecurityDescriptor {
    /// Decode a self-relative descriptor (MS-DTYP 2.4.6); every offset is
    /// checked against `buf`.
    pub fn parse(buf: &[u8]) -> Result<Self, NtStatus> {
        let bad = NtStatus::INVALID_SECURITY_DESCR;
        if buf.len() < 20 || buf.first() != Some(&1) {
            return Err(bad);
        }
        let control = u16_at(buf, 2)?;
        let offset = |at| -> Result<Option<&[u8]>, NtStatus> {
            let off = u32_at(buf, at)? as usize;
            if off == 0 {
                return Ok(None);
            }
            buf.get(off..).filter(|_| off >= 20).map(Some).ok_or(bad)
        };
        let owner = offset(4)?.map(|b| Sid::parse(b).map(|s| s.0)).transpose()?;
        let group = offset(8)?.map(|b| Sid::parse(b).map(|s| s.0)).transpose()?;
        let sacl = match offset(12)? {
            Some(b) if control & control::SACL_PRESENT != 0 => Some(Acl::parse(b)?),
            _ => None,
        };
        let dacl = match offset(16)? {
            Some(b) if control & control::DACL_PRESENT != 0 => Some(Acl::parse(b)?),
            _ => None,
        };
        Ok(Self { control, owner, group, dacl, sacl })
    }

    /// Encode the parts selected by `secinfo` (MS-DTYP 2.4.7) in
    /// self-relative form, as QUERY_INFO returns them.
    pub fn encode(&self, secinfo: u32) -> Vec<u8> {
        let mut ctl = self.control | control::SELF_RELATIVE;
        if secinfo & SACL_SECURITY_INFORMATION == 0 {
            ctl &= !control::SACL_PRESENT;
        }
        if secinfo & DACL_SECURITY_INFORMATION == 0 {
            ctl &= !(control::DACL_PRESENT | control::DACL_AUTO_INHERITED | control::DACL_PROTECTED);
        }
        let mut out = vec![1, 0];
        out.extend_from_slice(&ctl.to_le_bytes());
        out.extend_from_slice(&[0; 16]);
        let pick = |bit: u32| secinfo & bit != 0;
        if let (true, Some(s)) = (pick(OWNER_SECURITY_INFORMATION), &self.owner) {
            let at = out.len();
            s.encode(&mut out);
            patch_u32(&mut out, 4, at);
        }
        if let (true, Some(s)) = (pick(GROUP_SECURITY_INFORMATION), &self.group) {
            let at = out.len();
            s.encode(&mut out);
            patch_u32(&mut out, 8, at);
        }
        if let (true, Some(a)) = (pick(SACL_SECURITY_INFORMATION), &self.sacl) {
            let at = out.len();
            a.encode(&mut out);
            patch_u32(&mut out, 12, at);
        }
        if let (true, Some(a)) = (pick(DACL_SECURITY_INFORMATION), &self.dacl) {
            let at = out.len();
            a.encode(&mut out);
            patch_u32(&mut out, 16, at);
        }
        out
    }

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
