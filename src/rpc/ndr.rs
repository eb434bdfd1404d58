//! NDR 2.0 transfer syntax (C706 chapter 14), little-endian, as far as the
//! srvsvc and wkssvc stubs need it: aligned integers, unique/full pointers
//! with referent ids, and `[string] wchar_t*` conformant varying strings.
//!
//! Alignment is relative to the start of the stub (C706 14.2.2): a request
//! stub starts 8-aligned in its PDU and a reassembled stub is one buffer, so
//! the offset inside the buffer is the NDR offset.

/// Why a stub could not be decoded. The endpoint answers with a FAULT PDU
/// carrying `RPC_X_BAD_STUB_DATA` (MS-RPCE 3.1.1.5.5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NdrError {
    /// The stub ends before a field does.
    Truncated,
    /// A count, offset or terminator is inconsistent.
    BadValue,
}

/// First referent id of a stub. Windows and Samba both count referents
/// upwards from here in steps of 4; the value itself is opaque (C706 14.3.10).
const REFERENT_BASE: u32 = 0x0002_0000;

/// Longest string we decode (in UTF-16 units): share and server names are
/// limited to a few hundred characters (MS-SRVS 2.2.4.22 NetName < 81 for
/// most clients), so anything larger is garbage, not a name.
const MAX_STRING_UNITS: u32 = 4096;

/// Cursor over an NDR stub.
pub(crate) struct NdrReader<'a> {
    buf: &'a [u8],
    pos: usize,
    /// Non-null pointers read so far; Samba carries this count into the
    /// response so that referent ids keep increasing across the call.
    referents: u32,
}

impl<'a> NdrReader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        NdrReader { buf, pos: 0, referents: 0 }
    }

    /// Number of non-null pointers decoded so far.
    pub(crate) fn referents(&self) -> u32 {
        self.referents
    }

    /// Skips padding up to a multiple of `n` (a power of two).
    pub(crate) fn align(&mut self, n: usize) -> Result<(), NdrError> {
        let rem = self.pos % n;
        if rem != 0 {
            self.take(n - rem)?;
        }
        Ok(())
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], NdrError> {
        let end = self.pos.checked_add(n).ok_or(NdrError::Truncated)?;
        let s = self.buf.get(self.pos..end).ok_or(NdrError::Truncated)?;
        self.pos = end;
        Ok(s)
    }

    /// An aligned `unsigned short` (no [in] parameter we decode has one).
    #[cfg(test)]
    pub(crate) fn u16(&mut self) -> Result<u16, NdrError> {
        self.align(2)?;
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    /// An aligned `unsigned long` (32 bits in NDR).
    pub(crate) fn u32(&mut self) -> Result<u32, NdrError> {
        self.align(4)?;
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// A unique or full pointer's referent id (C706 14.3.10/14.3.11):
    /// `true` when the pointee follows (0 is NULL). We never see aliasing
    /// full pointers in these interfaces, so both kinds decode alike.
    pub(crate) fn pointer(&mut self) -> Result<bool, NdrError> {
        let id = self.u32()?;
        if id != 0 {
            self.referents = self.referents.saturating_add(1);
        }
        Ok(id != 0)
    }

    /// A `[string] wchar_t*` pointee: conformant varying array of UTF-16 units
    /// (max count, offset, actual count; C706 14.3.3.4) ending in a NUL that
    /// is not part of the returned value.
    pub(crate) fn string(&mut self) -> Result<String, NdrError> {
        let max = self.u32()?;
        let offset = self.u32()?;
        let actual = self.u32()?;
        // A [string] always carries its terminator, starts at element 0
        // (Samba and Windows reject other offsets) and fits its maximum.
        if offset != 0 || actual == 0 || actual > max || actual > MAX_STRING_UNITS {
            return Err(NdrError::BadValue);
        }
        let len = usize::try_from(actual).map_err(|_| NdrError::BadValue)?;
        let bytes = self.take(len.checked_mul(2).ok_or(NdrError::BadValue)?)?;
        let (body, nul) = bytes.split_at(bytes.len() - 2);
        if nul != [0, 0] {
            return Err(NdrError::BadValue);
        }
        crate::wire::utf16le(body).map_err(|_| NdrError::BadValue)
    }

    /// A `[unique, string] wchar_t*` parameter: pointer then pointee.
    pub(crate) fn unique_string(&mut self) -> Result<Option<String>, NdrError> {
        if self.pointer()? { Ok(Some(self.string()?)) } else { Ok(None) }
    }
}

/// Builds an NDR stub.
pub(crate) struct NdrWriter {
    buf: Vec<u8>,
    next_referent: u32,
}

impl NdrWriter {
    /// A writer whose first referent id follows `referents_used` ids already
    /// spent by the request (what Samba does; byte-identical answers make
    /// golden tests exact).
    pub(crate) fn new(referents_used: u32) -> Self {
        NdrWriter { buf: Vec::new(), next_referent: REFERENT_BASE.wrapping_add(referents_used.wrapping_mul(4)) }
    }

    pub(crate) fn finish(self) -> Vec<u8> {
        self.buf
    }

    /// Pads with zeros to a multiple of `n`.
    pub(crate) fn align(&mut self, n: usize) {
        while !self.buf.len().is_multiple_of(n) {
            self.buf.push(0);
        }
    }

    pub(crate) fn u32(&mut self, v: u32) {
        self.align(4);
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    /// A unique pointer: a fresh referent id, or 0 for NULL. The caller
    /// writes the pointee where NDR defers it (C706 14.3.12.3).
    pub(crate) fn pointer(&mut self, present: bool) {
        if present {
            let id = self.next_referent;
            self.next_referent = self.next_referent.wrapping_add(4);
            self.u32(id);
        } else {
            self.u32(0);
        }
    }

    /// A `[string] wchar_t*` pointee: NUL-terminated conformant varying
    /// UTF-16 array with offset 0.
    pub(crate) fn string(&mut self, s: &str) {
        let units: Vec<u16> = s.encode_utf16().chain(std::iter::once(0)).collect();
        let count = u32::try_from(units.len()).unwrap_or(u32::MAX);
        self.u32(count);
        self.u32(0);
        self.u32(count);
        for u in units {
            self.buf.extend_from_slice(&u.to_le_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_round_trip_with_padding() {
        let mut w = NdrWriter::new(0);
        w.pointer(true);
        w.string("共有"); // 2 units + NUL = 6 bytes: next u32 needs 2 pad bytes
        w.u32(7);
        let b = w.finish();
        assert_eq!(&b[..16], &[0, 0, 2, 0, 3, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0]);
        assert_eq!(b.len(), 16 + 6 + 2 + 4);
        let mut r = NdrReader::new(&b);
        assert_eq!(r.unique_string().unwrap().as_deref(), Some("共有"));
        assert_eq!(r.u32().unwrap(), 7);
        assert_eq!(r.referents(), 1);
    }

    #[test]
    fn empty_string_is_just_the_terminator() {
        let mut w = NdrWriter::new(0);
        w.string("");
        assert_eq!(w.finish(), [1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn referent_ids_continue_after_the_request() {
        let mut w = NdrWriter::new(3);
        w.pointer(true);
        w.pointer(false);
        w.pointer(true);
        assert_eq!(w.finish(), [0x0c, 0, 2, 0, 0, 0, 0, 0, 0x10, 0, 2, 0]);
    }

    #[test]
    fn bad_strings_are_rejected() {
        // max, offset, actual, units
        let cases: [&[u8]; 6] = [
            &[2, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0],             // offset != 0
            &[1, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0],       // actual > max
            &[2, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, b'a', 0, b'b', 0], // no NUL
            &[2, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, b'a', 0],          // truncated
            &[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],                   // actual 0
            &[2, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0xd8, 0, 0],    // lone surrogate
        ];
        for c in cases {
            assert!(NdrReader::new(c).string().is_err(), "{c:?}");
        }
        let huge = [0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff];
        assert_eq!(NdrReader::new(&huge).string(), Err(NdrError::BadValue));
    }

    #[test]
    fn alignment_is_relative_to_stub_start() {
        let b = [1, 0, 0xee, 0xee, 5, 0, 0, 0];
        let mut r = NdrReader::new(&b);
        assert_eq!(r.u16().unwrap(), 1);
        assert_eq!(r.u32().unwrap(), 5);
        assert_eq!(r.u32(), Err(NdrError::Truncated));
    }
}
