//! NTLMSSP message codec (MS-NLMP 2.2): NEGOTIATE (parsed), CHALLENGE
//! (built), AUTHENTICATE (parsed), and AV_PAIR lists (2.2.2.1).

use super::ServerNames;
use super::der::Malformed;
use super::spnego::NTLMSSP_SIGNATURE;
use crate::types::FileTime;

/// NegotiateFlags bits (MS-NLMP 2.2.2.5).
pub(crate) mod flags {
    pub const UNICODE: u32 = 0x0000_0001;
    pub const REQUEST_TARGET: u32 = 0x0000_0004;
    pub const SIGN: u32 = 0x0000_0010;
    pub const SEAL: u32 = 0x0000_0020;
    pub const NTLM: u32 = 0x0000_0200;
    pub const ANONYMOUS: u32 = 0x0000_0800;
    pub const ALWAYS_SIGN: u32 = 0x0000_8000;
    pub const TARGET_TYPE_SERVER: u32 = 0x0002_0000;
    pub const EXTENDED_SESSIONSECURITY: u32 = 0x0008_0000;
    pub const TARGET_INFO: u32 = 0x0080_0000;
    pub const VERSION: u32 = 0x0200_0000;
    pub const N128: u32 = 0x2000_0000;
    pub const KEY_EXCH: u32 = 0x4000_0000;
    pub const N56: u32 = 0x8000_0000;
}

/// AV_PAIR ids (MS-NLMP 2.2.2.1).
pub(crate) mod av {
    pub const EOL: u16 = 0;
    pub const NB_COMPUTER_NAME: u16 = 1;
    pub const NB_DOMAIN_NAME: u16 = 2;
    pub const DNS_COMPUTER_NAME: u16 = 3;
    pub const DNS_DOMAIN_NAME: u16 = 4;
    pub const FLAGS: u16 = 6;
    pub const TIMESTAMP: u16 = 7;
    /// MsvAvFlags bit: the AUTHENTICATE message carries a MIC.
    pub const FLAG_MIC_PRESENT: u32 = 0x2;
}

/// Client flags the server echoes when asked (MS-NLMP 3.2.5.1.1). LM_KEY,
/// DATAGRAM, IDENTIFY and ANONYMOUS are never granted.
const ECHOED: u32 = flags::UNICODE
    | flags::SIGN
    | flags::SEAL
    | flags::ALWAYS_SIGN
    | flags::EXTENDED_SESSIONSECURITY
    | flags::VERSION
    | flags::N128
    | flags::KEY_EXCH
    | flags::N56;

/// The Version we report (MS-NLMP 2.2.2.10): 6.1, NTLMSSP_REVISION_W2K3 — as
/// Samba does; clients use it only for debugging.
const VERSION: [u8; 8] = [6, 1, 0, 0, 0, 0, 0, 0x0f];

/// MS-NLMP 2.2.1.3: offset of the MIC in AUTHENTICATE, and where the payload
/// must start for the MIC to exist.
pub(crate) const MIC_OFFSET: usize = 72;
const MIC_END: usize = MIC_OFFSET + 16;

fn u16le(b: &[u8], at: usize) -> Result<u16, Malformed> {
    let s = b.get(at..at + 2).ok_or(Malformed)?;
    Ok(u16::from_le_bytes([s[0], s[1]]))
}

fn u32le(b: &[u8], at: usize) -> Result<u32, Malformed> {
    let s = b.get(at..at + 4).ok_or(Malformed)?;
    Ok(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

fn check_header(msg: &[u8], kind: u32) -> Result<(), Malformed> {
    if msg.get(..8) != Some(&NTLMSSP_SIGNATURE[..]) || u32le(msg, 8)? != kind {
        return Err(Malformed);
    }
    Ok(())
}

/// A (Len, MaxLen, Offset) field at `at`, resolved against `msg`. Returns
/// the buffer and its offset (None for an empty buffer, whose offset means nothing).
fn field(msg: &[u8], at: usize) -> Result<(&[u8], Option<usize>), Malformed> {
    let len = usize::from(u16le(msg, at)?);
    let off = u32le(msg, at + 4)? as usize;
    if len == 0 {
        return Ok((&[], None));
    }
    let end = off.checked_add(len).ok_or(Malformed)?;
    Ok((msg.get(off..end).ok_or(Malformed)?, Some(off)))
}

/// The client's NEGOTIATE_MESSAGE (2.2.1.1): only its flags matter to us.
pub(crate) fn parse_negotiate(msg: &[u8]) -> Result<u32, Malformed> {
    check_header(msg, 1)?;
    u32le(msg, 12)
}

/// Flags for our CHALLENGE given the client's NEGOTIATE flags.
pub(crate) fn challenge_flags(client: u32) -> u32 {
    (client & ECHOED) | flags::NTLM | flags::TARGET_INFO | flags::TARGET_TYPE_SERVER | (client & flags::REQUEST_TARGET)
}

/// Appends one AV pair (MS-NLMP 2.2.2.1).
pub(crate) fn push_av(out: &mut Vec<u8>, id: u16, value: &[u8]) {
    out.extend_from_slice(&id.to_le_bytes());
    out.extend_from_slice(&(value.len() as u16).to_le_bytes());
    out.extend_from_slice(value);
}

/// UTF-16LE without terminator, as NTLM carries names.
pub(crate) fn utf16(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(u16::to_le_bytes).collect()
}

/// TargetInfo (2.2.1.2): names, then the timestamp that tells clients to
/// send a MIC and no LM response (3.1.5.1.2), then MsvAvEOL.
fn target_info(names: &ServerNames, now: FileTime) -> Vec<u8> {
    let mut ti = Vec::new();
    push_av(&mut ti, av::NB_DOMAIN_NAME, &utf16(&names.netbios_domain));
    push_av(&mut ti, av::NB_COMPUTER_NAME, &utf16(&names.netbios_computer));
    push_av(&mut ti, av::DNS_DOMAIN_NAME, &utf16(&names.dns_domain));
    push_av(&mut ti, av::DNS_COMPUTER_NAME, &utf16(&names.dns_computer));
    push_av(&mut ti, av::TIMESTAMP, &now.0.to_le_bytes());
    push_av(&mut ti, av::EOL, &[]);
    ti
}

/// Builds the CHALLENGE_MESSAGE (2.2.1.2). The 8-byte Version slot is
/// always present (zero unless VERSION was negotiated), so the payload
/// starts at 56 as in Windows' and Samba's messages.
pub(crate) fn build_challenge(flags_: u32, challenge: &[u8; 8], names: &ServerNames, now: FileTime) -> Vec<u8> {
    let target_name = if flags_ & flags::REQUEST_TARGET != 0 { utf16(&names.netbios_computer) } else { Vec::new() };
    let ti = target_info(names, now);
    let name_off = 56u32;
    let ti_off = name_off + target_name.len() as u32;
    let mut m = Vec::with_capacity(56 + target_name.len() + ti.len());
    m.extend_from_slice(NTLMSSP_SIGNATURE);
    m.extend_from_slice(&2u32.to_le_bytes());
    for v in [target_name.len() as u16, target_name.len() as u16] {
        m.extend_from_slice(&v.to_le_bytes());
    }
    m.extend_from_slice(&name_off.to_le_bytes());
    m.extend_from_slice(&flags_.to_le_bytes());
    m.extend_from_slice(challenge);
    m.extend_from_slice(&[0; 8]);
    for v in [ti.len() as u16, ti.len() as u16] {
        m.extend_from_slice(&v.to_le_bytes());
    }
    m.extend_from_slice(&ti_off.to_le_bytes());
    m.extend_from_slice(if flags_ & flags::VERSION != 0 { &VERSION } else { &[0; 8] });
    m.extend_from_slice(&target_name);
    m.extend_from_slice(&ti);
    m
}

/// What a client needs of a CHALLENGE_MESSAGE (2.2.1.2): the counterpart
/// of [`build_challenge`], used by our own client.
pub(crate) struct Challenge<'a> {
    pub flags: u32,
    pub server_challenge: [u8; 8],
    pub target_info: &'a [u8],
}

/// Parses a CHALLENGE_MESSAGE, every length and offset checked.
pub(crate) fn parse_challenge(msg: &[u8]) -> Result<Challenge<'_>, Malformed> {
    check_header(msg, 2)?;
    let flags = u32le(msg, 20)?;
    let server_challenge = msg.get(24..32).and_then(|s| s.try_into().ok()).ok_or(Malformed)?;
    let (target_info, _) = field(msg, 40)?;
    Ok(Challenge { flags, server_challenge, target_info })
}

/// A parsed AUTHENTICATE_MESSAGE (2.2.1.3).
#[derive(Debug)]
pub(crate) struct Authenticate<'a> {
    pub nt_response: &'a [u8],
    pub domain: String,
    pub user: String,
    pub workstation: String,
    pub encrypted_session_key: &'a [u8],
    pub flags: u32,
    /// True if the payload starts at or after byte 88, i.e. there is room
    /// for a MIC field at 72..88.
    pub has_mic_field: bool,
}

fn text(b: &[u8], unicode: bool) -> Result<String, Malformed> {
    if unicode {
        crate::wire::utf16le(b).map_err(|_| Malformed)
    } else {
        // OEM strings: ASCII only; anything else is refused rather than guessed.
        if b.is_ascii() { Ok(String::from_utf8_lossy(b).into_owned()) } else { Err(Malformed) }
    }
}

/// Parses AUTHENTICATE; every field is bounds-checked.
pub(crate) fn parse_authenticate(msg: &[u8]) -> Result<Authenticate<'_>, Malformed> {
    check_header(msg, 3)?;
    let flags_ = u32le(msg, 60)?;
    let unicode = flags_ & flags::UNICODE != 0;
    let mut min_off = msg.len();
    let mut get = |at: usize| -> Result<&[u8], Malformed> {
        let (b, off) = field(msg, at)?;
        if let Some(o) = off {
            min_off = min_off.min(o);
        }
        Ok(b)
    };
    get(12)?; // LmChallengeResponse: never used (NTLMv2 sends zeros or LMv2)
    let nt_response = get(20)?;
    let domain = get(28)?;
    let user = get(36)?;
    let workstation = get(44)?;
    let encrypted_session_key = get(52)?;
    Ok(Authenticate {
        nt_response,
        domain: text(domain, unicode)?,
        user: text(user, unicode)?,
        workstation: text(workstation, unicode)?,
        encrypted_session_key,
        flags: flags_,
        has_mic_field: min_off >= MIC_END && msg.len() >= MIC_END,
    })
}

/// The NTLMv2_CLIENT_CHALLENGE fields we use (2.2.2.7).
pub(crate) struct ClientBlob<'a> {
    /// The AV pairs as the client sent them.
    pub av_pairs: &'a [u8],
}

/// Fixed part of NTLMv2_CLIENT_CHALLENGE before its AvPairs.
pub(crate) const BLOB_FIXED: usize = 28;

/// Parses the `temp` part of an NTLMv2 response (everything after NTProofStr).
pub(crate) fn parse_blob(temp: &[u8]) -> Result<ClientBlob<'_>, Malformed> {
    let fixed = temp.get(..BLOB_FIXED).ok_or(Malformed)?;
    if fixed[0] != 1 || fixed[1] != 1 {
        return Err(Malformed); // RespType and HiRespType are 1
    }
    Ok(ClientBlob { av_pairs: &temp[BLOB_FIXED..] })
}

/// The AV pairs of a list that must end with MsvAvEOL, up to (not
/// including) it; trailing padding after EOL is allowed, as Windows sends it.
pub(crate) fn av_pairs(mut list: &[u8]) -> Result<Vec<(u16, &[u8])>, Malformed> {
    let mut out = Vec::new();
    loop {
        let kind = u16le(list, 0)?;
        let len = usize::from(u16le(list, 2)?);
        let value = list.get(4..4 + len).ok_or(Malformed)?;
        if kind == av::EOL {
            return Ok(out);
        }
        out.push((kind, value));
        list = &list[4 + len..];
    }
}

/// Finds AV pair `id` (see [`av_pairs`]).
pub(crate) fn find_av(list: &[u8], id: u16) -> Result<Option<&[u8]>, Malformed> {
    Ok(av_pairs(list)?.into_iter().find(|(k, _)| *k == id).map(|(_, v)| v))
}

/// True if the client's AV pairs say the AUTHENTICATE carries a MIC.
pub(crate) fn mic_present(av_pairs: &[u8]) -> Result<bool, Malformed> {
    Ok(match find_av(av_pairs, av::FLAGS)? {
        Some(v) => u32le(v, 0)? & av::FLAG_MIC_PRESENT != 0,
        None => false,
    })
}
