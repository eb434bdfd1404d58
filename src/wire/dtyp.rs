//! The MS-DTYP structures SMB2 carries: SIDs (2.4.2), ACEs (2.4.4), ACLs
//! (2.4.5) and self-relative security descriptors (2.4.6), decoded and
//! encoded here and nowhere else.
//!
//! The SET_INFO and CREATE codecs hand a descriptor over as bytes; the
//! handler decodes it with [`SecurityDescriptor::parse`], whose failure is
//! the status the client gets (INVALID_SID, INVALID_ACL or
//! INVALID_SECURITY_DESCR, by the structure at fault). What a descriptor
//! grants, and who may set it, are rules of the engine
//! (`engine::fsa::sd`); the smbvault SID scheme is `engine::fsa::sid`.

use super::NtStatus;
use super::fscc::consts::security_info;

/// A SID: identifier authority and up to 15 sub-authorities (MS-DTYP 2.4.2.2).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Sid {
    authority: u64,
    subs: Vec<u32>,
}

/// Largest SubAuthorityCount (MS-DTYP 2.4.2.2).
const MAX_SUB_AUTHORITIES: usize = 15;

impl Sid {
    /// A SID from its parts; `None` beyond 15 sub-authorities or a 48-bit authority.
    pub fn new(authority: u64, subs: &[u32]) -> Option<Self> {
        if subs.len() > MAX_SUB_AUTHORITIES || authority >> 48 != 0 {
            return None;
        }
        Some(Self { authority, subs: subs.to_vec() })
    }

    /// A SID built from constants of ours: at most 15 sub-authorities and a
    /// 48-bit authority, which the caller guarantees.
    pub(crate) fn known(authority: u64, subs: &[u32]) -> Self {
        debug_assert!(subs.len() <= MAX_SUB_AUTHORITIES && authority >> 48 == 0);
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

    /// This SID with one more sub-authority (a RID); `None` past 15.
    pub fn with_rid(&self, rid: u32) -> Option<Self> {
        let mut subs = self.subs.clone();
        subs.push(rid);
        Self::new(self.authority, &subs)
    }

    /// Decode from `buf` (MS-DTYP 2.4.2.2); returns the SID and its length.
    pub fn parse(buf: &[u8]) -> Result<(Self, usize), NtStatus> {
        let bad = NtStatus::INVALID_SID;
        let head = buf.get(..8).ok_or(bad)?;
        if head[0] != 1 {
            return Err(bad);
        }
        let count = usize::from(head[1]);
        if count > MAX_SUB_AUTHORITIES {
            return Err(bad);
        }
        let authority = head[2..8].iter().fold(0u64, |a, b| (a << 8) | u64::from(*b));
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

/// ACCESS_ALLOWED_ACE_TYPE (MS-DTYP 2.4.4.1).
pub const ACCESS_ALLOWED: u8 = 0x00;
/// ACCESS_DENIED_ACE_TYPE (MS-DTYP 2.4.4.1).
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
    /// Decode an ACL at the start of `buf` (MS-DTYP 2.4.5): AclSize and
    /// every AceSize are checked against the buffer.
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
    /// checked against `buf` and must lie past the 20-byte header.
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

    /// Encode the parts selected by `secinfo` (MS-DTYP 2.4.7, the
    /// AdditionalInformation of QUERY_INFO, MS-SMB2 2.2.37) in
    /// self-relative form: header, owner, group, SACL, DACL.
    pub fn encode(&self, secinfo: u32) -> Vec<u8> {
        use security_info as si;
        let mut ctl = self.control | control::SELF_RELATIVE;
        if secinfo & si::SACL_SECURITY_INFORMATION == 0 {
            ctl &= !control::SACL_PRESENT;
        }
        if secinfo & si::DACL_SECURITY_INFORMATION == 0 {
            ctl &= !(control::DACL_PRESENT | control::DACL_AUTO_INHERITED | control::DACL_PROTECTED);
        }
        let mut out = vec![1, 0];
        out.extend_from_slice(&ctl.to_le_bytes());
        out.extend_from_slice(&[0; 16]);
        let pick = |bit: u32| secinfo & bit != 0;
        if let (true, Some(s)) = (pick(si::OWNER_SECURITY_INFORMATION), &self.owner) {
            let at = out.len();
            s.encode(&mut out);
            patch_u32(&mut out, 4, at);
        }
        if let (true, Some(s)) = (pick(si::GROUP_SECURITY_INFORMATION), &self.group) {
            let at = out.len();
            s.encode(&mut out);
            patch_u32(&mut out, 8, at);
        }
        if let (true, Some(a)) = (pick(si::SACL_SECURITY_INFORMATION), &self.sacl) {
            let at = out.len();
            a.encode(&mut out);
            patch_u32(&mut out, 12, at);
        }
        if let (true, Some(a)) = (pick(si::DACL_SECURITY_INFORMATION), &self.dacl) {
            let at = out.len();
            a.encode(&mut out);
            patch_u32(&mut out, 16, at);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::fscc::consts::security_info as si;

    #[test]
    fn sid_bytes_as_in_the_spec() {
        // S-1-1-0 as MS-DTYP 2.4.2.2 lays it out.
        let mut w = Vec::new();
        Sid::everyone().encode(&mut w);
        assert_eq!(w, [1, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0]);
        assert_eq!(Sid::parse(&w), Ok((Sid::everyone(), 12)));
        assert_eq!(Sid::parse(&w[..11]), Err(NtStatus::INVALID_SID));
        assert!(Sid::new(1 << 48, &[]).is_none());
        assert!(Sid::new(5, &[0; 16]).is_none());
        assert!(Sid::new(5, &[0; 15]).and_then(|s| s.with_rid(1)).is_none());
    }

    #[test]
    fn descriptor_round_trip_and_rejects() {
        let sd = SecurityDescriptor {
            control: control::DACL_PRESENT,
            owner: Some(Sid::builtin_admins()),
            group: Some(Sid::builtin_users()),
            dacl: Some(Acl { revision: 2, aces: vec![Ace::allow(Sid::everyone(), 0x0012_0089, 0)] }),
            sacl: None,
        };
        let all =
            sd.encode(si::OWNER_SECURITY_INFORMATION | si::GROUP_SECURITY_INFORMATION | si::DACL_SECURITY_INFORMATION);
        // Decoding keeps the SE_SELF_RELATIVE bit the encoder set.
        let back = SecurityDescriptor { control: control::DACL_PRESENT | control::SELF_RELATIVE, ..sd };
        assert_eq!(SecurityDescriptor::parse(&all), Ok(back));
        // Not revision 1.
        let mut b = all.clone();
        b[0] = 2;
        assert_eq!(SecurityDescriptor::parse(&b), Err(NtStatus::INVALID_SECURITY_DESCR));
        // Owner offset inside the header.
        let mut b = all.clone();
        b[4] = 8;
        assert_eq!(SecurityDescriptor::parse(&b), Err(NtStatus::INVALID_SECURITY_DESCR));
        // AclSize larger than the buffer.
        let dacl = u32_at(&all, 16).unwrap() as usize;
        let mut b = all.clone();
        b[dacl + 2] = 0xff;
        assert_eq!(SecurityDescriptor::parse(&b), Err(NtStatus::INVALID_ACL));
    }
}
