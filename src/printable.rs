//! Client-controlled text made safe for a terminal: user names of failed
//! logons, file and stream names and client addresses reach the
//! operator's screen through the audit tables and the CLI, and a name
//! holding an escape sequence or a line break could recolour the screen,
//! move the cursor or forge a line of its own. Every C0 and C1 control
//! character, DEL and the bidirectional overrides (which reorder what
//! follows them, "Trojan Source") are shown as `\u{…}` escapes, and the
//! backslash that starts such an escape is doubled only where it could be
//! mistaken for one, so Windows paths stay readable.
//!
//! JSON output needs none of this (its encoder escapes controls), nor the
//! server log (tracing-subscriber escapes them in field values).

use std::borrow::Cow;

/// True for characters that must not reach a terminal as they are.
fn unsafe_char(c: char) -> bool {
    c.is_control() // C0, DEL and C1
        || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}')
}

/// `s` with every unsafe character escaped; borrowed when there was none.
pub fn printable(s: &str) -> Cow<'_, str> {
    if !s.contains(unsafe_char) && !s.contains("\\u{") {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    let mut rest = s;
    while let Some(c) = rest.chars().next() {
        if unsafe_char(c) {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        } else if rest.starts_with("\\u{") {
            // A name that spells an escape itself is shown with the
            // backslash doubled, so the two cannot be confused.
            out.push_str("\\\\");
        } else {
            out.push(c);
        }
        rest = &rest[c.len_utf8()..];
    }
    Cow::Owned(out)
}

/// `s` cut to at most `max` bytes on a character boundary: what keeps one
/// client-chosen name from making a log record or line unbounded.
pub fn clip(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_and_japanese_pass_unchanged() {
        for s in ["share\\経理\\請求書 2026.xlsx", "ACME\\alice", "127.0.0.1:445", ""] {
            assert!(matches!(printable(s), Cow::Borrowed(_)), "{s}");
        }
    }

    #[test]
    fn escape_sequences_line_breaks_and_bidi_overrides_are_shown_as_escapes() {
        assert_eq!(printable("a\x1b[2Jb"), "a\\u{1b}[2Jb");
        assert_eq!(printable("x\n2026-12-06 forged"), "x\\u{a}2026-12-06 forged");
        assert_eq!(printable("evil\u{202E}txt.exe"), "evil\\u{202e}txt.exe");
        assert_eq!(printable("\u{9b}31m"), "\\u{9b}31m");
        assert_eq!(printable("tab\there\r"), "tab\\u{9}here\\u{d}");
    }

    #[test]
    fn a_name_that_spells_an_escape_is_told_apart() {
        assert_eq!(printable("a\\u{1b}"), "a\\\\u{1b}");
        assert_ne!(printable("a\\u{1b}"), printable("a\x1b"));
    }
}
