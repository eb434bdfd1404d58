//! Little-endian byte encoding shared by the audit file formats: fixed
//! integers, LEB128 varints and length-prefixed strings. Every read is
//! bounds-checked; a short or malformed buffer yields [`Corrupt`].

pub(crate) use crate::wire::PutLe;

/// A buffer did not hold what its format promises (truncated, bad varint,
/// bad UTF-8). Carries no data: the caller knows where it was reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Corrupt;

/// Appends the audit formats' own encodings to a byte vector. The
/// fixed-width little-endian integers are the wire codecs' writer
/// ([`PutLe`], one definition for the crate); this adds what only the
/// audit formats use: signed times, LEB128 varints and strings.
pub(crate) trait Put: PutLe {
    fn put_i64(&mut self, v: i64);
    fn put_var(&mut self, v: u64);
    /// A varint length followed by the UTF-8 bytes.
    fn put_str(&mut self, s: &str);
}

impl Put for Vec<u8> {
    fn put_i64(&mut self, v: i64) {
        self.extend_from_slice(&v.to_le_bytes());
    }
    fn put_var(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.push(v as u8);
    }
    fn put_str(&mut self, s: &str) {
        self.put_var(s.len() as u64);
        self.extend_from_slice(s.as_bytes());
    }
}

/// A cursor over an untrusted byte slice.
pub(crate) struct Dec<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Dec<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.pos >= self.buf.len()
    }

    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    pub(crate) fn bytes(&mut self, n: usize) -> Result<&'a [u8], Corrupt> {
        let end = self.pos.checked_add(n).ok_or(Corrupt)?;
        let s = self.buf.get(self.pos..end).ok_or(Corrupt)?;
        self.pos = end;
        Ok(s)
    }

    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N], Corrupt> {
        self.bytes(N)?.try_into().map_err(|_| Corrupt)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, Corrupt> {
        Ok(self.array::<1>()?[0])
    }
    pub(crate) fn u16(&mut self) -> Result<u16, Corrupt> {
        Ok(u16::from_le_bytes(self.array()?))
    }
    pub(crate) fn u32(&mut self) -> Result<u32, Corrupt> {
        Ok(u32::from_le_bytes(self.array()?))
    }
    pub(crate) fn u64(&mut self) -> Result<u64, Corrupt> {
        Ok(u64::from_le_bytes(self.array()?))
    }
    pub(crate) fn i64(&mut self) -> Result<i64, Corrupt> {
        Ok(i64::from_le_bytes(self.array()?))
    }

    /// LEB128, at most 10 bytes (64 bits).
    pub(crate) fn var(&mut self) -> Result<u64, Corrupt> {
        let mut v = 0u64;
        for i in 0..10 {
            let b = self.u8()?;
            v |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(Corrupt)
    }

    pub(crate) fn var_u32(&mut self) -> Result<u32, Corrupt> {
        u32::try_from(self.var()?).map_err(|_| Corrupt)
    }

    pub(crate) fn str(&mut self) -> Result<&'a str, Corrupt> {
        let n = usize::try_from(self.var()?).map_err(|_| Corrupt)?;
        std::str::from_utf8(self.bytes(n)?).map_err(|_| Corrupt)
    }
}

/// One rule for cutting client-chosen text (printable.rs).
pub(crate) use crate::printable::clip;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_truncation() {
        let mut b = Vec::new();
        b.put_u8(7);
        b.put_var(0);
        b.put_var(300);
        b.put_var(u64::MAX);
        b.put_str("見積.xlsx");
        b.put_i64(-5);
        let mut d = Dec::new(&b);
        assert_eq!(d.u8(), Ok(7));
        assert_eq!(d.var(), Ok(0));
        assert_eq!(d.var(), Ok(300));
        assert_eq!(d.var(), Ok(u64::MAX));
        assert_eq!(d.str(), Ok("見積.xlsx"));
        assert_eq!(d.i64(), Ok(-5));
        assert!(d.is_empty());
        for n in 0..b.len() {
            let mut d = Dec::new(&b[..n]);
            let r = (|| {
                d.u8()?;
                d.var()?;
                d.var()?;
                d.var()?;
                d.str()?;
                d.i64()
            })();
            assert_eq!(r, Err(Corrupt), "prefix {n}");
        }
    }

    #[test]
    fn clip_respects_char_boundaries() {
        assert_eq!(clip("日本語", 4), "日");
        assert_eq!(clip("abc", 10), "abc");
    }
}
