//! Direct TCP transport framing (MS-SMB2 2.1): every message is preceded by a
//! 4-byte header, one zero byte and a 24-bit big-endian length.

/// Largest frame we accept: an 8 MiB write plus headers, transform header and
/// compound slack. Anything bigger is hostile and closes the connection.
pub const MAX_FRAME: usize = 8 * 1024 * 1024 + 64 * 1024;

/// What the 4-byte prefix says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prefix {
    /// A frame of this many bytes follows.
    Frame(usize),
    /// The prefix is not a Direct TCP session message (first byte not zero)
    /// or announces more than [`MAX_FRAME`]: close the connection.
    Invalid,
}

/// Interprets a Direct TCP prefix.
pub fn parse_prefix(p: [u8; 4]) -> Prefix {
    if p[0] != 0 {
        return Prefix::Invalid;
    }
    let len = (usize::from(p[1]) << 16) | (usize::from(p[2]) << 8) | usize::from(p[3]);
    if len > MAX_FRAME { Prefix::Invalid } else { Prefix::Frame(len) }
}

/// The prefix for a frame of `len` bytes; `None` when `len` does not fit
/// the 24-bit length (the frame cannot be sent: close the connection
/// rather than send a length that wrapped around).
pub fn prefix(len: usize) -> Option<[u8; 4]> {
    if len >= 1 << 24 {
        return None;
    }
    let l = len as u32;
    Some([0, (l >> 16) as u8, (l >> 8) as u8, l as u8])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_round_trip() {
        assert_eq!(parse_prefix(prefix(0x01_02_03).unwrap()), Prefix::Frame(0x01_02_03));
        assert_eq!(prefix(0xff_ff_ff), Some([0, 0xff, 0xff, 0xff]));
        assert_eq!(prefix(1 << 24), None);
        assert_eq!(parse_prefix([0x85, 0, 0, 0]), Prefix::Invalid);
        assert_eq!(parse_prefix([0, 0xff, 0xff, 0xff]), Prefix::Invalid);
    }
}
