//! Sans-IO codecs for MS-SMB2 messages and the MS-FSCC structures they carry.
//!
//! Rules for every file in this module:
//! - No tokio, no files, no clocks, no engine or storage types: bytes in, types out.
//! - Decoders take the *whole* SMB2 message (`msg`, header at offset 0) because
//!   buffer offsets in requests are relative to the start of the header
//!   (MS-SMB2 2.2). Fixed fields are parsed with `nom`; variable buffers are
//!   resolved with [`buffer`], which bounds-checks offset and length.
//! - Encoders append a body to `out`, which already holds the 64-byte header,
//!   so a buffer's offset is simply `out.len()` at the time it is written.
//! - Unknown enum values decode (newtypes over integers) so that handlers can
//!   answer STATUS_NOT_SUPPORTED / STATUS_INVALID_INFO_CLASS instead of failing
//!   the parse.
//! - Each command file keeps request, response, decoder, encoder and golden
//!   tests together.

pub mod framing;
pub mod header;
pub mod negotiate;
pub mod ntstatus;
pub mod session_setup;

// Commands other than NEGOTIATE / SESSION_SETUP, and the structures they carry.
pub mod cancel;
pub mod change_notify;
pub mod close;
pub mod create;
pub mod create_context;
pub mod dtyp;
pub mod echo;
pub mod error;
pub mod flush;
pub mod fscc;
pub mod ioctl;
pub mod lock;
pub mod logoff;
pub mod netif;
pub mod oplock_break;
pub mod prefix;
pub mod query_directory;
pub mod query_info;
pub mod read;
pub mod set_info;
pub mod transform;
pub mod tree_connect;
pub mod tree_disconnect;
pub mod write;

pub use ntstatus::NtStatus;

/// Size of the SMB2 header (MS-SMB2 2.2.1).
pub const HEADER_LEN: usize = 64;

/// Why bytes from the wire were rejected. `Copy` and free of strings, in the
/// rustls `InvalidMessage` style: the engine maps it to a status, details
/// go to tracing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    /// The message ends before a fixed field or a buffer does.
    Truncated,
    /// StructureSize does not match the command (MS-SMB2 2.2.x).
    BadStructureSize,
    /// A buffer offset points into the header, the fixed part, or past the end.
    BadOffset,
    /// A length is out of range for its field.
    BadLength,
    /// A field holds a value the spec forbids (bad magic, odd UTF-16 length, …).
    BadValue,
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self, f)
    }
}

impl std::error::Error for DecodeError {}

impl<I> From<nom::Err<nom::error::Error<I>>> for DecodeError {
    fn from(_: nom::Err<nom::error::Error<I>>) -> Self {
        DecodeError::Truncated
    }
}

/// Result of a decoder.
pub type DResult<T> = Result<T, DecodeError>;

/// nom input/result aliases used by the per-command parsers.
pub type PResult<'a, T> = nom::IResult<&'a [u8], T>;

/// The body of a message (everything after the 64-byte header), or `Truncated`.
pub fn body(msg: &[u8]) -> DResult<&[u8]> {
    msg.get(HEADER_LEN..).ok_or(DecodeError::Truncated)
}

/// Checks the StructureSize that starts every body against `expected`.
pub fn check_structure_size(msg: &[u8], expected: u16) -> DResult<()> {
    let b = body(msg)?;
    let got = b.get(..2).map(|s| u16::from_le_bytes([s[0], s[1]])).ok_or(DecodeError::Truncated)?;
    if got == expected { Ok(()) } else { Err(DecodeError::BadStructureSize) }
}

/// Resolves a variable-length buffer at `offset` (from the start of the SMB2
/// header) of `length` bytes. A zero length is always valid and yields an
/// empty slice, whatever the offset (clients send offset 0 or garbage then).
/// Otherwise the buffer must lie after the header and inside the message.
pub fn buffer(msg: &[u8], offset: u32, length: u32) -> DResult<&[u8]> {
    if length == 0 {
        return Ok(&[]);
    }
    let start = offset as usize;
    if start < HEADER_LEN {
        return Err(DecodeError::BadOffset);
    }
    let end = start.checked_add(length as usize).ok_or(DecodeError::BadLength)?;
    msg.get(start..end).ok_or(DecodeError::BadOffset)
}

/// Decodes UTF-16LE (MS-DTYP 2.2.62) into a String. Odd lengths are an error;
/// unpaired surrogates are an error too (names must round-trip exactly).
pub fn utf16le(bytes: &[u8]) -> DResult<String> {
    if !bytes.len().is_multiple_of(2) {
        return Err(DecodeError::BadValue);
    }
    let units = bytes.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]]));
    char::decode_utf16(units).collect::<Result<String, _>>().map_err(|_| DecodeError::BadValue)
}

/// Appends `s` as UTF-16LE without a terminator; returns the byte length written.
pub fn put_utf16le(out: &mut Vec<u8>, s: &str) -> usize {
    let start = out.len();
    for u in s.encode_utf16() {
        out.extend_from_slice(&u.to_le_bytes());
    }
    out.len() - start
}

/// Number of bytes `s` takes as UTF-16LE.
pub fn utf16_len(s: &str) -> usize {
    s.encode_utf16().count() * 2
}

/// Pads `out` with zeros to a multiple of `align` bytes (relative to its start,
/// which is the header start for message buffers).
pub fn pad_to(out: &mut Vec<u8>, align: usize) {
    while !out.len().is_multiple_of(align) {
        out.push(0);
    }
}

/// Little-endian field writers, so encoders read like the spec tables.
pub trait PutLe {
    /// Appends a u8.
    fn put_u8(&mut self, v: u8);
    /// Appends a little-endian u16.
    fn put_u16(&mut self, v: u16);
    /// Appends a little-endian u32.
    fn put_u32(&mut self, v: u32);
    /// Appends a little-endian u64.
    fn put_u64(&mut self, v: u64);
    /// Appends `n` zero bytes (Reserved fields).
    fn put_zeros(&mut self, n: usize);
    /// Overwrites a little-endian u16 at `at` (back-patching an offset).
    fn set_u16(&mut self, at: usize, v: u16);
    /// Overwrites a little-endian u32 at `at` (back-patching a length).
    fn set_u32(&mut self, at: usize, v: u32);
}

impl PutLe for Vec<u8> {
    fn put_u8(&mut self, v: u8) {
        self.push(v);
    }
    fn put_u16(&mut self, v: u16) {
        self.extend_from_slice(&v.to_le_bytes());
    }
    fn put_u32(&mut self, v: u32) {
        self.extend_from_slice(&v.to_le_bytes());
    }
    fn put_u64(&mut self, v: u64) {
        self.extend_from_slice(&v.to_le_bytes());
    }
    fn put_zeros(&mut self, n: usize) {
        self.resize(self.len() + n, 0);
    }
    fn set_u16(&mut self, at: usize, v: u16) {
        self[at..at + 2].copy_from_slice(&v.to_le_bytes());
    }
    fn set_u32(&mut self, at: usize, v: u32) {
        self[at..at + 4].copy_from_slice(&v.to_le_bytes());
    }
}

/// A 16-byte GUID as it appears on the wire (MS-DTYP 2.3.4.2), kept as raw bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Guid(pub [u8; 16]);

/// Parses a GUID (16 raw bytes).
pub fn guid(i: &[u8]) -> PResult<'_, Guid> {
    let (i, b) = nom::bytes::complete::take(16usize)(i)?;
    let mut g = [0u8; 16];
    g.copy_from_slice(b);
    Ok((i, Guid(g)))
}

/// Hex helper for golden tests: "fe 53 4d 42" or "fe534d42" into bytes.
#[cfg(test)]
pub(crate) fn hex_bytes(s: &str) -> Vec<u8> {
    let clean: String = s.chars().filter(|c| c.is_ascii_hexdigit()).collect();
    hex::decode(clean).expect("valid hex in test vector")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffer_checks_bounds() {
        let msg = vec![0u8; 100];
        assert_eq!(buffer(&msg, 0, 0).unwrap(), &[] as &[u8]);
        assert_eq!(buffer(&msg, 10, 4), Err(DecodeError::BadOffset));
        assert_eq!(buffer(&msg, 96, 4).unwrap().len(), 4);
        assert_eq!(buffer(&msg, 97, 4), Err(DecodeError::BadOffset));
        assert_eq!(buffer(&msg, u32::MAX, u32::MAX), Err(DecodeError::BadOffset));
    }

    #[test]
    fn utf16_round_trip_japanese() {
        let mut v = Vec::new();
        let n = put_utf16le(&mut v, "報告書パ.txt");
        assert_eq!(n, utf16_len("報告書パ.txt"));
        assert_eq!(utf16le(&v).unwrap(), "報告書パ.txt");
        assert_eq!(utf16le(&v[..3]), Err(DecodeError::BadValue));
        assert_eq!(utf16le(&[0x00, 0xd8]), Err(DecodeError::BadValue));
    }
}
