//! The MS-DTYP pieces SMB2 needs now: SIDs (2.4.2), and self-relative
//! security descriptors (2.4.6) kept as opaque bytes but checked
//! structurally on SET_INFO / the "SecD" create context, plus a builder for
//! the descriptor we report for files that have none stored.

use nom::number::complete::{le_u8, le_u16, le_u32};

use super::{DResult, DecodeError, PutLe};

/// A security identifier (MS-DTYP 2.4.2.2).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Sid {
    /// IdentifierAuthority, a 48-bit big-endian value.
    pub authority: u64,
    /// SubAuthority values (at most 15).
    pub sub_authorities: Vec<u32>,
}

impl Sid {
    /// Largest SubAuthorityCount (MS-DTYP 2.4.2.2).
    pub const MAX_SUB_AUTHORITIES: usize = 15;

    /// A SID from its authority and sub-authorities.
    pub fn new(authority: u64, sub_authorities: &[u32]) -> Self {
        Self { authority, sub_authorities: sub_authorities.to_vec() }
    }

    /// S-1-1-0, Everyone.
    pub fn world() -> Self {
        Self::new(1, &[0])
    }

    /// S-1-5-18, LocalSystem.
    pub fn local_system() -> Self {
        Self::new(5, &[18])
    }

    /// S-1-5-32-544, BUILTIN\Administrators.
    pub fn builtin_administrators() -> Self {
        Self::new(5, &[32, 544])
    }

    /// Encoded size: 8 + 4 per sub-authority.
    pub fn encoded_len(&self) -> usize {
        8 + 4 * self.sub_authorities.len()
    }

    /// Appends the binary SID (sub-authorities beyond 15 are dropped).
    pub fn encode(&self, out: &mut Vec<u8>) {
        let subs = &self.sub_authorities[..self.sub_authorities.len().min(Self::MAX_SUB_AUTHORITIES)];
        out.put_u8(1);
        out.put_u8(subs.len() as u8);
        out.extend_from_slice(&self.authority.to_be_bytes()[2..]);
        for s in subs {
            out.put_u32(*s);
        }
    }

    /// Decodes a SID at the start of `b`; returns it and its length.
    pub fn decode(b: &[u8]) -> DResult<(Self, usize)> {
        let (i, revision) = le_u8(b)?;
        let (i, count) = le_u8(i)?;
        if revision != 1 || usize::from(count) > Self::MAX_SUB_AUTHORITIES {
            return Err(DecodeError::BadValue);
        }
        let auth = i.get(..6).ok_or(DecodeError::Truncated)?;
        let mut a = [0u8; 8];
        a[2..].copy_from_slice(auth);
        let mut i = &i[6..];
        let mut sub_authorities = Vec::with_capacity(usize::from(count));
        for _ in 0..count {
            let (rest, s) = le_u32(i)?;
            sub_authorities.push(s);
            i = rest;
        }
        let sid = Self { authority: u64::from_be_bytes(a), sub_authorities };
        let len = sid.encoded_len();
        Ok((sid, len))
    }
}

impl std::fmt::Display for Sid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "S-1-{}", self.authority)?;
        for s in &self.sub_authorities {
            write!(f, "-{s}")?;
        }
        Ok(())
    }
}

/// SECURITY_DESCRIPTOR Control bits (MS-DTYP 2.4.6).
pub mod control {
    #![allow(missing_docs)]
    pub const OWNER_DEFAULTED: u16 = 0x0001;
    pub const GROUP_DEFAULTED: u16 = 0x0002;
    pub const DACL_PRESENT: u16 = 0x0004;
    pub const DACL_DEFAULTED: u16 = 0x0008;
    pub const SACL_PRESENT: u16 = 0x0010;
    pub const SACL_DEFAULTED: u16 = 0x0020;
    pub const DACL_AUTO_INHERIT_REQ: u16 = 0x0100;
    pub const SACL_AUTO_INHERIT_REQ: u16 = 0x0200;
    pub const DACL_AUTO_INHERITED: u16 = 0x0400;
    pub const SACL_AUTO_INHERITED: u16 = 0x0800;
    pub const DACL_PROTECTED: u16 = 0x1000;
    pub const SACL_PROTECTED: u16 = 0x2000;
    pub const RM_CONTROL_VALID: u16 = 0x4000;
    pub const SELF_RELATIVE: u16 = 0x8000;
}

/// ACE types and flags used by the builder (MS-DTYP 2.4.4.1).
pub mod ace {
    #![allow(missing_docs)]
    pub const ACCESS_ALLOWED: u8 = 0x00;
    pub const ACCESS_DENIED: u8 = 0x01;
    pub const SYSTEM_AUDIT: u8 = 0x02;
    pub const OBJECT_INHERIT: u8 = 0x01;
    pub const CONTAINER_INHERIT: u8 = 0x02;
    pub const INHERITED: u8 = 0x10;
}

/// An ACE of the simple SID-carrying kind (ACCESS_ALLOWED_ACE 2.4.4.2,
/// ACCESS_DENIED_ACE 2.4.4.4, SYSTEM_AUDIT_ACE 2.4.4.10).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ace {
    /// AceType.
    pub ace_type: u8,
    /// AceFlags.
    pub flags: u8,
    /// Mask (an access mask).
    pub mask: u32,
    /// The trustee.
    pub sid: Sid,
}

impl Ace {
    fn encode(&self, out: &mut Vec<u8>) {
        out.put_u8(self.ace_type);
        out.put_u8(self.flags);
        out.put_u16((8 + self.sid.encoded_len()) as u16);
        out.put_u32(self.mask);
        self.sid.encode(out);
    }
}

/// A security descriptor to be encoded in self-relative form.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SecurityDescriptor {
    /// Control bits other than SELF_RELATIVE / DACL_PRESENT, which the
    /// encoder sets itself.
    pub control: u16,
    /// Owner SID.
    pub owner: Option<Sid>,
    /// Group SID.
    pub group: Option<Sid>,
    /// DACL entries; `None` encodes no DACL (a NULL DACL grants everyone
    /// everything, so the builder never produces one by accident).
    pub dacl: Option<Vec<Ace>>,
}

/// What [`validate_self_relative`] found.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SdSummary {
    /// Control.
    pub control: u16,
    /// Owner, if present.
    pub owner: Option<Sid>,
    /// Group, if present.
    pub group: Option<Sid>,
    /// A DACL is present and non-NULL.
    pub has_dacl: bool,
    /// A SACL is present.
    pub has_sacl: bool,
}

/// ACL revisions (MS-DTYP 2.4.5).
const ACL_REVISION: u8 = 2;
const ACL_REVISION_DS: u8 = 4;
/// Fixed part of a self-relative SD.
const SD_HEADER_LEN: usize = 20;

impl SecurityDescriptor {
    /// The default descriptor for objects without one: owner and group as
    /// given; a DACL granting FILE_ALL_ACCESS to the owner, SYSTEM and
    /// Administrators. Directory ACEs are inheritable (OI|CI).
    pub fn default_for(owner: Sid, group: Sid, directory: bool) -> Self {
        let flags = if directory { ace::OBJECT_INHERIT | ace::CONTAINER_INHERIT } else { 0 };
        let allow = |sid: Sid| Ace { ace_type: ace::ACCESS_ALLOWED, flags, mask: 0x001F_01FF, sid };
        let dacl = vec![allow(owner.clone()), allow(Sid::local_system()), allow(Sid::builtin_administrators())];
        Self { control: 0, owner: Some(owner), group: Some(group), dacl: Some(dacl) }
    }

    /// Encodes the parts selected by `security_info` (the
    /// AdditionalInformation bits of QUERY_INFO: OWNER 1, GROUP 2, DACL 4)
    /// in self-relative form: header, owner, group, DACL.
    pub fn encode(&self, security_info: u32) -> Vec<u8> {
        use super::fscc::consts::security_info as si;
        let owner = self.owner.as_ref().filter(|_| security_info & si::OWNER != 0);
        let group = self.group.as_ref().filter(|_| security_info & si::GROUP != 0);
        let dacl = self.dacl.as_ref().filter(|_| security_info & si::DACL != 0);
        let mut control = (self.control & !control::DACL_PRESENT) | control::SELF_RELATIVE;
        if dacl.is_some() {
            control |= control::DACL_PRESENT;
        }
        let mut out = vec![1u8, 0];
        out.put_u16(control);
        out.put_zeros(16);
        if let Some(s) = owner {
            let at = out.len();
            out.set_u32(4, at as u32);
            s.encode(&mut out);
        }
        if let Some(s) = group {
            let at = out.len();
            out.set_u32(8, at as u32);
            s.encode(&mut out);
        }
        if let Some(aces) = dacl {
            let at = out.len();
            out.set_u32(16, at as u32);
            let size: usize = 8 + aces.iter().map(|a| 8 + a.sid.encoded_len()).sum::<usize>();
            out.put_u8(ACL_REVISION);
            out.put_u8(0);
            out.put_u16(size as u16);
            out.put_u16(aces.len() as u16);
            out.put_u16(0);
            for a in aces {
                a.encode(&mut out);
            }
        }
        out
    }
}

/// Checks that `b` is a well-formed self-relative security descriptor
/// (MS-DTYP 2.4.6): revision 1, SELF_RELATIVE set, every non-zero offset
/// past the header and inside the buffer, SIDs and ACLs (2.4.5) with their
/// ACEs (2.4.4.1) fully contained. Semantics (who may set what) are the
/// engine's business.
pub fn validate_self_relative(b: &[u8]) -> DResult<SdSummary> {
    let (i, revision) = le_u8(b)?;
    let (i, _sbz1) = le_u8(i)?;
    let (i, ctl) = le_u16(i)?;
    let (i, off_owner) = le_u32(i)?;
    let (i, off_group) = le_u32(i)?;
    let (i, off_sacl) = le_u32(i)?;
    let (_, off_dacl) = le_u32(i)?;
    if revision != 1 || ctl & control::SELF_RELATIVE == 0 {
        return Err(DecodeError::BadValue);
    }
    let sid_at = |off: u32| -> DResult<Option<Sid>> {
        if off == 0 {
            return Ok(None);
        }
        Ok(Some(Sid::decode(part(b, off)?)?.0))
    };
    let owner = sid_at(off_owner)?;
    let group = sid_at(off_group)?;
    if off_sacl != 0 {
        check_acl(part(b, off_sacl)?)?;
    }
    if off_dacl != 0 {
        check_acl(part(b, off_dacl)?)?;
    }
    Ok(SdSummary {
        control: ctl,
        owner,
        group,
        has_dacl: ctl & control::DACL_PRESENT != 0 && off_dacl != 0,
        has_sacl: ctl & control::SACL_PRESENT != 0 && off_sacl != 0,
    })
}

/// The bytes from `off` to the end, if `off` lies past the SD header.
fn part(b: &[u8], off: u32) -> DResult<&[u8]> {
    let off = off as usize;
    if off < SD_HEADER_LEN {
        return Err(DecodeError::BadOffset);
    }
    b.get(off..).filter(|p| !p.is_empty()).ok_or(DecodeError::BadOffset)
}

/// Checks an ACL header and walks its ACEs (MS-DTYP 2.4.5, 2.4.4.1).
fn check_acl(b: &[u8]) -> DResult<()> {
    let (i, revision) = le_u8(b)?;
    let (i, _sbz1) = le_u8(i)?;
    let (i, size) = le_u16(i)?;
    let (_, count) = le_u16(i)?;
    if revision != ACL_REVISION && revision != ACL_REVISION_DS {
        return Err(DecodeError::BadValue);
    }
    let acl = b.get(..usize::from(size)).ok_or(DecodeError::BadLength)?;
    let mut rest = acl.get(8..).ok_or(DecodeError::BadLength)?;
    for _ in 0..count {
        let (i, ace_type) = le_u8(rest)?;
        let (i, _flags) = le_u8(i)?;
        let (_, ace_size) = le_u16(i)?;
        let n = usize::from(ace_size);
        if n < 4 || !n.is_multiple_of(4) {
            return Err(DecodeError::BadLength);
        }
        let ace = rest.get(..n).ok_or(DecodeError::BadLength)?;
        // The simple ACE types carry Mask then a SID that must fit the ACE.
        if matches!(ace_type, ace::ACCESS_ALLOWED | ace::ACCESS_DENIED | ace::SYSTEM_AUDIT) {
            let sid = ace.get(8..).ok_or(DecodeError::BadLength)?;
            let (_, len) = Sid::decode(sid).map_err(|_| DecodeError::BadLength)?;
            if 8 + len > n {
                return Err(DecodeError::BadLength);
            }
        }
        rest = &rest[n..];
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::fscc::consts::security_info as si;
    use proptest::prelude::*;

    fn alice() -> Sid {
        Sid::new(5, &[21, 1_000_000_001, 2_000_000_002, 3_000_000_003, 1001])
    }

    #[test]
    fn sid_display_and_round_trip() {
        let s = alice();
        assert_eq!(s.to_string(), "S-1-5-21-1000000001-2000000002-3000000003-1001");
        let mut b = Vec::new();
        s.encode(&mut b);
        assert_eq!(b.len(), s.encoded_len());
        assert_eq!(Sid::decode(&b).unwrap(), (s, 28));
        assert_eq!(Sid::decode(&b[..27]), Err(DecodeError::Truncated));
        // S-1-1-0 as in MS-DTYP 2.4.2.2.
        let mut w = Vec::new();
        Sid::world().encode(&mut w);
        assert_eq!(w, [1, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0]);
    }

    #[test]
    fn default_sd_validates_and_filters() {
        let sd = SecurityDescriptor::default_for(alice(), Sid::new(5, &[21, 1, 2, 3, 513]), true);
        let all = sd.encode(si::OWNER | si::GROUP | si::DACL);
        let sum = validate_self_relative(&all).unwrap();
        assert_eq!(sum.owner, Some(alice()));
        assert!(sum.has_dacl);
        assert_eq!(sum.control, control::SELF_RELATIVE | control::DACL_PRESENT);
        let owner_only = sd.encode(si::OWNER);
        let sum = validate_self_relative(&owner_only).unwrap();
        assert!(sum.group.is_none() && !sum.has_dacl);
        assert_eq!(owner_only.len(), 20 + 28);
    }

    #[test]
    fn rejects_broken_descriptors() {
        let sd = SecurityDescriptor::default_for(alice(), alice(), false);
        let good = sd.encode(si::OWNER | si::GROUP | si::DACL);
        // Not self-relative.
        let mut b = good.clone();
        b[3] &= 0x7f;
        assert_eq!(validate_self_relative(&b), Err(DecodeError::BadValue));
        // Owner offset inside the header.
        let mut b = good.clone();
        b[4] = 8;
        assert_eq!(validate_self_relative(&b), Err(DecodeError::BadOffset));
        // DACL cut short.
        assert!(validate_self_relative(&good[..good.len() - 4]).is_err());
        // AclSize larger than the buffer.
        let mut b = good.clone();
        let dacl = u32::from_le_bytes([b[16], b[17], b[18], b[19]]) as usize;
        b[dacl + 2] = 0xff;
        assert_eq!(validate_self_relative(&b), Err(DecodeError::BadLength));
    }

    proptest! {
        #[test]
        fn validator_never_panics(b in proptest::collection::vec(any::<u8>(), 0..200), ctl in any::<u16>()) {
            let _ = validate_self_relative(&b);
            // Also with a plausible header so offsets get followed.
            let mut h = vec![1u8, 0];
            h.extend_from_slice(&(ctl | 0x8000).to_le_bytes());
            h.extend_from_slice(&b);
            let _ = validate_self_relative(&h);
        }
    }
}
