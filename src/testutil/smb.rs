//! Field accessors for SMB2 messages in golden tests (MS-SMB2 2.2). Test
//! code: indexing panics on malformed captures, which is what a test wants.

/// Little-endian u16 at `at`.
pub(crate) fn u16_at(m: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([m[at], m[at + 1]])
}

/// Little-endian u32 at `at`.
pub(crate) fn u32_at(m: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([m[at], m[at + 1], m[at + 2], m[at + 3]])
}

/// Little-endian u64 at `at`.
pub(crate) fn u64_at(m: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(m[at..at + 8].try_into().unwrap())
}

/// True for a plain SMB2 message (not a transform or SMB1 message).
pub(crate) fn is_smb2(m: &[u8]) -> bool {
    m.len() >= 64 && m[..4] == *b"\xfeSMB"
}

/// True for a transform (encrypted) message.
pub(crate) fn is_transform(m: &[u8]) -> bool {
    m.len() >= 52 && m[..4] == *b"\xfdSMB"
}

/// Command code.
pub(crate) fn command(m: &[u8]) -> u16 {
    u16_at(m, 12)
}

/// Header Flags.
pub(crate) fn flags(m: &[u8]) -> u32 {
    u32_at(m, 16)
}

/// NT status of a response.
pub(crate) fn status(m: &[u8]) -> u32 {
    u32_at(m, 8)
}

/// SessionId.
pub(crate) fn session_id(m: &[u8]) -> u64 {
    u64_at(m, 40)
}

/// True if SMB2_FLAGS_SERVER_TO_REDIR is set.
pub(crate) fn is_response(m: &[u8]) -> bool {
    flags(m) & 1 != 0
}

/// True if SMB2_FLAGS_SIGNED is set.
pub(crate) fn is_signed(m: &[u8]) -> bool {
    flags(m) & 8 != 0
}

/// The SecurityBuffer of a SESSION_SETUP request (2.2.5) or response (2.2.6).
pub(crate) fn session_setup_token(m: &[u8]) -> &[u8] {
    let (off, len) =
        if is_response(m) { (u16_at(m, 64 + 4), u16_at(m, 64 + 6)) } else { (u16_at(m, 64 + 12), u16_at(m, 64 + 14)) };
    &m[usize::from(off)..usize::from(off) + usize::from(len)]
}

/// The SecurityBuffer of a NEGOTIATE response (2.2.4).
pub(crate) fn negotiate_token(m: &[u8]) -> &[u8] {
    let (off, len) = (u16_at(m, 64 + 56), u16_at(m, 64 + 58));
    &m[usize::from(off)..usize::from(off) + usize::from(len)]
}

/// DialectRevision of a NEGOTIATE response.
pub(crate) fn negotiated_dialect(m: &[u8]) -> u16 {
    u16_at(m, 64 + 4)
}

/// Negotiate contexts of a 3.1.1 NEGOTIATE response (2.2.3.1): (type, data).
pub(crate) fn negotiate_contexts(m: &[u8]) -> Vec<(u16, &[u8])> {
    let count = usize::from(u16_at(m, 64 + 6));
    let mut at = u32_at(m, 64 + 60) as usize;
    let mut out = Vec::new();
    for _ in 0..count {
        at = at.next_multiple_of(8);
        let ty = u16_at(m, at);
        let len = usize::from(u16_at(m, at + 2));
        out.push((ty, &m[at + 8..at + 8 + len]));
        at += 8 + len;
    }
    out
}
