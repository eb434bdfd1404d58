//! Time-based one-time passwords (RFC 6238 over RFC 4226 HOTP) for the
//! console's two-factor sign-in: HMAC-SHA1, 30-second steps, 6 digits:
//! the parameters every authenticator app assumes for an `otpauth://` URI.

use ring::hmac;

/// Seconds per time step (RFC 6238 4.1 X).
pub const STEP_SECS: u64 = 30;
/// Digits per code.
pub const DIGITS: u32 = 6;
/// Secret length: 160 bits, as RFC 4226 4 recommends.
pub const SECRET_LEN: usize = 20;

/// HOTP(K, C) truncated to `digits` (RFC 4226 5.3).
fn hotp(secret: &[u8], counter: u64, digits: u32) -> u32 {
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret);
    let tag = hmac::sign(&key, &counter.to_be_bytes());
    let h = tag.as_ref();
    let off = usize::from(h[h.len() - 1] & 0x0f);
    let bin = u32::from_be_bytes([h[off] & 0x7f, h[off + 1], h[off + 2], h[off + 3]]);
    bin % 10u32.pow(digits)
}

/// The code for time step `step`, zero-padded.
pub fn code(secret: &[u8], step: u64) -> String {
    format!("{:0width$}", hotp(secret, step, DIGITS), width = DIGITS as usize)
}

/// The time step of `unix_secs`.
pub fn step_of(unix_secs: u64) -> u64 {
    unix_secs / STEP_SECS
}

/// The step whose code `given` is, trying the current step and one on
/// either side (RFC 6238 5.2: allow for clock drift and typing time).
/// Compares in constant time.
pub fn matching_step(secret: &[u8], given: &str, unix_secs: u64) -> Option<u64> {
    let given: String = given.chars().filter(|c| !c.is_whitespace()).collect();
    if given.len() != DIGITS as usize || !given.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let now = step_of(unix_secs);
    let mut found = None;
    for step in [now.saturating_sub(1), now, now + 1] {
        let want = code(secret, step);
        if bool::from(subtle::ConstantTimeEq::ct_eq(want.as_bytes(), given.as_bytes())) {
            found = Some(step);
        }
    }
    found
}

const B32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// RFC 4648 base32 without padding (what authenticator apps take).
pub fn base32(data: &[u8]) -> String {
    let mut out = String::new();
    for chunk in data.chunks(5) {
        let mut buf = [0u8; 5];
        buf[..chunk.len()].copy_from_slice(chunk);
        let v = buf.iter().fold(0u64, |a, b| (a << 8) | u64::from(*b));
        let chars = (chunk.len() * 8).div_ceil(5);
        for i in 0..chars {
            out.push(char::from(B32[((v >> (35 - 5 * i)) & 31) as usize]));
        }
    }
    out
}

/// Parses base32 (case-insensitive, spaces and padding ignored).
pub fn from_base32(s: &str) -> Option<Vec<u8>> {
    let mut bits = 0u64;
    let mut n = 0u32;
    let mut out = Vec::new();
    for c in s.chars().filter(|c| !c.is_whitespace() && *c != '=') {
        let v = B32.iter().position(|b| char::from(*b) == c.to_ascii_uppercase())? as u64;
        bits = (bits << 5) | v;
        n += 5;
        if n >= 8 {
            n -= 8;
            out.push((bits >> n) as u8);
            bits &= (1 << n) - 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 Appendix B, SHA-1 rows (8 digits there; the last 6 here
    /// are the same truncation modulo 10^6).
    #[test]
    fn rfc6238_vectors() {
        let k = b"12345678901234567890";
        for (t, want) in [
            (59u64, 94287082u32),
            (1111111109, 7081804),
            (1111111111, 14050471),
            (1234567890, 89005924),
            (2000000000, 69279037),
            (20000000000, 65353130),
        ] {
            assert_eq!(hotp(k, step_of(t), 8), want, "T={t}");
            assert_eq!(code(k, step_of(t)), format!("{:06}", want % 1_000_000));
        }
    }

    /// RFC 4648 section 10 test vectors.
    #[test]
    fn base32_rfc4648() {
        for (raw, enc) in [
            ("", ""),
            ("f", "MY"),
            ("fo", "MZXQ"),
            ("foo", "MZXW6"),
            ("foob", "MZXW6YQ"),
            ("fooba", "MZXW6YTB"),
            ("foobar", "MZXW6YTBOI"),
        ] {
            assert_eq!(base32(raw.as_bytes()), enc);
            assert_eq!(from_base32(enc).unwrap(), raw.as_bytes());
        }
        assert_eq!(from_base32("mzxw 6ytb oi=="), Some(b"foobar".to_vec()));
        assert_eq!(from_base32("MZ1"), None);
    }

    #[test]
    fn window_and_format() {
        let k = b"12345678901234567890";
        let t = 1_234_567_890;
        assert_eq!(matching_step(k, &code(k, step_of(t)), t), Some(step_of(t)));
        assert_eq!(matching_step(k, &code(k, step_of(t) - 1), t), Some(step_of(t) - 1));
        assert_eq!(matching_step(k, &code(k, step_of(t) + 2), t), None);
        assert_eq!(matching_step(k, "12345", t), None);
        assert_eq!(matching_step(k, "abcdef", t), None);
    }
}
