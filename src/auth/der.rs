//! Just enough DER (X.690) for SPNEGO: single-byte tags, definite lengths
//! up to 4 length bytes, every length checked against the input.

/// The input is not the DER we expect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Malformed;

/// One tag-length-value element.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tlv<'a> {
    /// The identifier octet.
    pub tag: u8,
    /// The contents.
    pub value: &'a [u8],
    /// The whole element, tag and length included (what a MIC covers).
    pub raw: &'a [u8],
}

/// Reads one element from the front of `input`; returns it and the rest.
pub(crate) fn read(input: &[u8]) -> Result<(Tlv<'_>, &[u8]), Malformed> {
    let (&tag, rest) = input.split_first().ok_or(Malformed)?;
    if tag & 0x1f == 0x1f {
        return Err(Malformed); // high tag numbers never occur in SPNEGO
    }
    let (&first, mut rest) = rest.split_first().ok_or(Malformed)?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 {
            return Err(Malformed); // indefinite form or absurd size
        }
        let (bytes, r) = split(rest, n)?;
        rest = r;
        bytes.iter().fold(0usize, |acc, &b| (acc << 8) | usize::from(b))
    };
    let (value, tail) = split(rest, len)?;
    let raw_len = input.len() - tail.len();
    Ok((Tlv { tag, value, raw: &input[..raw_len] }, tail))
}

fn split(b: &[u8], n: usize) -> Result<(&[u8], &[u8]), Malformed> {
    if b.len() < n { Err(Malformed) } else { Ok(b.split_at(n)) }
}

/// Reads one element that must carry `tag`.
pub(crate) fn expect(input: &[u8], tag: u8) -> Result<(Tlv<'_>, &[u8]), Malformed> {
    let (t, rest) = read(input)?;
    if t.tag == tag { Ok((t, rest)) } else { Err(Malformed) }
}

/// Reads a whole element that must carry `tag` and be all of `input`.
pub(crate) fn exactly(input: &[u8], tag: u8) -> Result<Tlv<'_>, Malformed> {
    let (t, rest) = expect(input, tag)?;
    if rest.is_empty() { Ok(t) } else { Err(Malformed) }
}

/// Splits a constructed value into its elements.
pub(crate) fn elements(mut value: &[u8]) -> Result<Vec<Tlv<'_>>, Malformed> {
    let mut out = Vec::new();
    while !value.is_empty() {
        let (t, rest) = read(value)?;
        out.push(t);
        value = rest;
    }
    Ok(out)
}

/// Encodes one element with a minimal definite length.
pub(crate) fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len() + 6);
    out.push(tag);
    let n = content.len();
    if n < 0x80 {
        out.push(n as u8);
    } else {
        let bytes = (n as u32).to_be_bytes();
        let skip = bytes.iter().take_while(|&&b| b == 0).count();
        out.push(0x80 | (4 - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(content);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_round_trip() {
        for n in [0usize, 1, 127, 128, 255, 256, 70000] {
            let c = vec![7u8; n];
            let e = tlv(0x04, &c);
            let (t, rest) = read(&e).unwrap();
            assert_eq!((t.tag, t.value.len(), t.raw.len(), rest.len()), (4, n, e.len(), 0));
        }
    }

    #[test]
    fn rejects_bad_lengths() {
        assert_eq!(read(&[]).unwrap_err(), Malformed);
        assert!(read(&[0x04]).is_err());
        assert!(read(&[0x04, 0x05, 1, 2]).is_err());
        assert!(read(&[0x04, 0x80]).is_err());
        assert!(read(&[0x04, 0x85, 0, 0, 0, 0, 1, 0]).is_err());
        assert!(read(&[0x04, 0x84, 0xff, 0xff, 0xff, 0xff]).is_err());
        assert!(read(&[0x1f, 0x01, 0x00]).is_err());
        assert!(exactly(&[0x04, 0x00, 0x00], 0x04).is_err());
    }
}
