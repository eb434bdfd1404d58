//! File names as SMB clients send them (MS-SMB2 2.2.13, MS-FSCC 2.1.5):
//! validation, splitting into components, and named-stream syntax
//! (`file.txt:stream:$DATA`, MS-FSCC 2.1.5.2).

use crate::wire::NtStatus;

/// Longest component, in UTF-16 code units (NTFS limit).
const MAX_COMPONENT: usize = 255;
/// Longest path, in UTF-16 code units (MS-SMB2: NameLength ≤ 32 KiB bytes).
const MAX_PATH: usize = 32_767;

/// A parsed CREATE name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedName {
    /// Path components below the share root (empty: the root itself).
    pub components: Vec<String>,
    /// Named stream, if any (`None` for the default `::$DATA` stream).
    pub stream: Option<String>,
    /// The name asked explicitly for the `$INDEX_ALLOCATION` (directory) stream type.
    pub dir_stream_type: bool,
    /// The name asked explicitly for the default data stream (`file::$DATA`):
    /// it cannot be a directory.
    pub data_stream_type: bool,
}

impl ParsedName {
    /// The last component (the file's own name), if not the root.
    pub fn leaf(&self) -> Option<&str> {
        self.components.last().map(String::as_str)
    }
}

/// Characters NTFS refuses in a name (MS-FSCC 2.1.5.2). `\` separates
/// components and `:` introduces a stream, so they are handled by the caller.
fn is_forbidden(c: char) -> bool {
    matches!(c, '"' | '*' | '/' | '<' | '>' | '?' | '|') || (c as u32) < 0x20
}

/// True if `name` matches the QUERY_DIRECTORY search `pattern` (MS-FSCC
/// 2.1.4.4, `wire::fscc::wildcard`) without regard to case: both are
/// folded with the one rule names and stream names use
/// ([`crate::types::fold_name`]).
pub fn matches(pattern: &str, name: &str) -> bool {
    pattern == "*"
        || crate::wire::fscc::wildcard::name_matches(&crate::types::fold_name(pattern), &crate::types::fold_name(name))
}

/// Parses and validates a CREATE file name. The macOS private-use substitutes
/// for `:*?"<>|` (U+F001…U+F029, as `fruit:encoding = private` uses them) are
/// ordinary characters here and are kept as they come.
pub fn parse(name: &str) -> Result<ParsedName, NtStatus> {
    // Samba and smbtorture treat '/' as a separator too; it can never be
    // part of a name either way.
    let slashed;
    let name = if name.contains('/') {
        slashed = name.replace('/', "\\");
        slashed.as_str()
    } else {
        name
    };
    if name.encode_utf16().count() > MAX_PATH {
        return Err(NtStatus::OBJECT_NAME_INVALID);
    }
    // MS-SMB2 3.3.5.9: a leading separator is invalid in a CREATE name.
    if name.starts_with('\\') {
        return Err(NtStatus::INVALID_PARAMETER);
    }
    let mut components = Vec::new();
    let mut stream = None;
    let mut dir_stream_type = false;
    let mut data_stream_type = false;
    let parts: Vec<&str> = name.split('\\').collect();
    let last = parts.len().saturating_sub(1);
    for (i, part) in parts.iter().enumerate() {
        if part.is_empty() {
            // "dir\\" (trailing separator) is accepted; empty middle components are not.
            if i == last && i > 0 {
                continue;
            }
            if name.is_empty() {
                break;
            }
            return Err(NtStatus::OBJECT_NAME_INVALID);
        }
        if *part == "." {
            continue;
        }
        if *part == ".." {
            // Resolved lexically like Samba; climbing above the share
            // root is a syntax error (smbtorture `smb2.mkdir`).
            components.pop().ok_or(NtStatus::OBJECT_PATH_SYNTAX_BAD)?;
            continue;
        }
        let (base, s) = split_stream(part)?;
        if s.is_some() || dir_stream_type_of(part) {
            if i != last {
                // A stream name is only valid on the final component.
                return Err(NtStatus::OBJECT_NAME_INVALID);
            }
            stream = s;
            dir_stream_type = dir_stream_type_of(part);
        }
        if i == last && stream.is_none() && part.to_ascii_uppercase().ends_with("::$DATA") {
            data_stream_type = true;
        }
        if base.is_empty() {
            // "::$DATA" on the share root, or ":stream" with no file.
            if i == 0 && last == 0 {
                break;
            }
            return Err(NtStatus::OBJECT_NAME_INVALID);
        }
        check_component(base)?;
        components.push(base.to_string());
    }
    Ok(ParsedName { components, stream, dir_stream_type, data_stream_type })
}

fn dir_stream_type_of(part: &str) -> bool {
    part.to_ascii_uppercase().ends_with(":$INDEX_ALLOCATION")
}

/// Splits `name:stream:type` (MS-FSCC 2.1.5.2). The type must be `$DATA`
/// (or `$INDEX_ALLOCATION` for directories); `name::$DATA` is the default stream.
fn split_stream(part: &str) -> Result<(&str, Option<String>), NtStatus> {
    let mut it = part.splitn(3, ':');
    let base = it.next().unwrap_or("");
    let Some(sname) = it.next() else {
        return Ok((base, None));
    };
    let stype = it.next();
    if let Some(t) = stype {
        let t = t.to_ascii_uppercase();
        if t != "$DATA" && t != "$INDEX_ALLOCATION" {
            return Err(NtStatus::OBJECT_NAME_INVALID);
        }
        if t == "$INDEX_ALLOCATION" && !sname.is_empty() {
            return Err(NtStatus::OBJECT_NAME_INVALID);
        }
    }
    if sname.is_empty() {
        // "file::$DATA" names the default stream; "file:" alone is invalid.
        return if stype.is_some() { Ok((base, None)) } else { Err(NtStatus::OBJECT_NAME_INVALID) };
    }
    // Stream names may hold any character but separators and NUL
    // (smbtorture `smb2.streams.names`, `names2`).
    if sname.chars().any(|c| matches!(c, '\\' | '/' | '\0')) || sname.encode_utf16().count() > MAX_COMPONENT {
        return Err(NtStatus::OBJECT_NAME_INVALID);
    }
    Ok((base, Some(sname.to_string())))
}

/// Private-use base of the stream-name escape (the block macOS uses for
/// the same characters in file names).
const ESCAPE_BASE: u32 = 0xF000;
/// Starts an escape in a stored stream name.
const ESCAPE: char = '\u{F0FF}';

fn escaped(c: char) -> bool {
    (c as u32) < 0x20 || matches!(c, '"' | '*' | '<' | '>' | '?' | '|')
}

/// A stream name as the store keeps it: NTFS allows controls and
/// wildcards in stream names (smbtorture `smb2.streams.names`), the store
/// does not, so each travels as U+F0FF followed by U+F000 + the character
/// (and a U+F0FF of the name as U+F0FF U+F0FF). Every other character,
/// the private-use ones macOS sends included (`:` is U+F022 in
/// `com.apple.metadata\u{F022}_kMDItemUserTags`, the SFM mapping;
/// smbtorture `vfs.fruit` "stream names"), is stored as it came, so a Mac's
/// streams keep their names and stay apart from a Windows client's.
pub fn stream_to_store(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        if escaped(c) {
            out.push(ESCAPE);
            out.push(char::from_u32(ESCAPE_BASE + c as u32).unwrap_or(c));
        } else {
            if c == ESCAPE {
                out.push(ESCAPE);
            }
            out.push(c);
        }
    }
    out
}

/// The reverse of [`stream_to_store`].
pub fn stream_from_store(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut chars = name.chars();
    while let Some(c) = chars.next() {
        if c != ESCAPE {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some(n) => match (n as u32).checked_sub(ESCAPE_BASE).and_then(char::from_u32) {
                Some(orig) if escaped(orig) => out.push(orig),
                _ => out.push(n),
            },
            None => out.push(c),
        }
    }
    out
}

/// Validates one path component.
pub fn check_component(c: &str) -> Result<(), NtStatus> {
    if c == "." || c == ".." {
        // Relative components would escape the share or alias entries.
        return Err(NtStatus::OBJECT_NAME_INVALID);
    }
    if c.encode_utf16().count() > MAX_COMPONENT {
        return Err(NtStatus::OBJECT_NAME_INVALID);
    }
    if c.chars().any(|ch| is_forbidden(ch) || ch == ':') {
        return Err(NtStatus::OBJECT_NAME_INVALID);
    }
    Ok(())
}

/// Validates a rename target path (FileRenameInformation): same rules, no
/// leading separator required or refused.
pub fn parse_target(name: &str) -> Result<ParsedName, NtStatus> {
    parse(name.trim_start_matches('\\'))
}

/// `@GMT-YYYY.MM.DD-HH.MM.SS` (MS-SMB2 2.2.32.2): the time, in Unix
/// seconds (UTC), of a Previous Versions token; `None` if `s` is not one.
pub fn gmt_token_time(s: &str) -> Option<i64> {
    if s.len() != 24 || !s.starts_with("@GMT-") {
        return None;
    }
    let t = chrono::NaiveDateTime::parse_from_str(s, "@GMT-%Y.%m.%d-%H.%M.%S").ok()?;
    Some(t.and_utc().timestamp())
}

/// The `@GMT-` token of a generation taken at `time` (Unix seconds).
pub fn gmt_token(time: i64) -> String {
    chrono::DateTime::from_timestamp(time, 0).unwrap_or_default().format("@GMT-%Y.%m.%d-%H.%M.%S").to_string()
}

/// Takes a `@GMT-` token out of a parsed CREATE name: any one component
/// may be one, as Samba's vfs_shadow_copy2 accepts (`@GMT-…\dir\file` is
/// what a client sends that does not use the TWrp context). Returns its
/// time; a second token is left in place (and then not found).
pub fn take_gmt_token(name: &mut ParsedName) -> Option<i64> {
    let i = name.components.iter().position(|c| gmt_token_time(c).is_some())?;
    let t = gmt_token_time(&name.components[i]);
    name.components.remove(i);
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The token smbtorture's `smb2.twrp` tests use and the time its
    /// `strptime` + `mktime` under TZ=GMT gives (source4/torture/smb2/create.c).
    #[test]
    fn gmt_tokens() {
        assert_eq!(gmt_token_time("@GMT-2015.10.31-19.40.30"), Some(1_446_320_430));
        assert_eq!(gmt_token(1_446_320_430), "@GMT-2015.10.31-19.40.30");
        assert_eq!(gmt_token_time("@GMT-2015.10.31-19.40.3x"), None);
        assert_eq!(gmt_token_time("@GMT-2015.13.31-19.40.30"), None);
        let mut n = parse("@GMT-2015.10.31-19.40.30\\dir\\f.txt").unwrap();
        assert_eq!(take_gmt_token(&mut n), Some(1_446_320_430));
        assert_eq!(n.components, vec!["dir", "f.txt"]);
        let mut n = parse("dir\\@GMT-2015.10.31-19.40.30\\f.txt").unwrap();
        assert_eq!(take_gmt_token(&mut n), Some(1_446_320_430));
        assert_eq!(n.components, vec!["dir", "f.txt"]);
        let mut n = parse("dir\\f.txt").unwrap();
        assert_eq!(take_gmt_token(&mut n), None);
    }

    #[test]
    fn patterns_match_without_regard_to_case() {
        assert!(matches("B.TXT", "b.txt"));
        assert!(matches("*.Txt", "報告書.TXT"));
        assert!(matches("報告*", "報告書.docx"));
        // Fullwidth Latin letters have a simple uppercase mapping too.
        assert!(matches("ａ*", "Ａbc"));
        assert!(matches("STRASSE", "strasse"));
        assert!(!matches("STRASSE", "straße"));
        // A decomposed pattern (as macOS sends it) finds the NFC name.
        assert!(matches("\u{30CF}\u{309A}*", "パスワード.txt"));
    }

    /// Names and stream names fold alike: the key an open's stream gets,
    /// the storage lookup form and the comparisons in the handlers are all
    /// `types::fold_name`, so a stream named "Straße" is one stream however
    /// a client spells its case, and never the stream "STRASSE".
    #[test]
    fn names_and_stream_names_fold_alike() {
        use crate::engine::fsa::FileKey;
        use crate::types::{NodeId, OrgId, fold_name};
        let key = |s: &str| FileKey::new(OrgId(1), NodeId(2), s).stream;
        for name in ["Straße", "ｆｕｌｌ", "報告書", "ǆ", "\u{30CF}\u{309A}スワード"] {
            assert_eq!(key(&format!(":{name}:$DATA")), Some(fold_name(name)), "{name}");
        }
        assert_eq!(key(":straße"), key(":STRAßE"));
        assert_ne!(key(":straße"), key(":STRASSE"));
        assert_eq!(key(":パスワード"), key(":\u{30CF}\u{309A}スワ\u{30FC}\u{30C8}\u{3099}"));
        assert_eq!(fold_name("straße"), fold_name("STRAßE"));
        assert_ne!(fold_name("straße"), fold_name("STRASSE"));
    }

    #[test]
    fn plain_paths() {
        let p = parse("dir\\sub\\報告書.docx").unwrap();
        assert_eq!(p.components, vec!["dir", "sub", "報告書.docx"]);
        assert_eq!(p.stream, None);
        assert_eq!(parse("").unwrap().components, Vec::<String>::new());
        assert_eq!(parse("dir\\").unwrap().components, vec!["dir"]);
    }

    #[test]
    fn forbidden_characters_are_refused() {
        assert_eq!(parse("a/b").unwrap().components, vec!["a", "b"]);
        for bad in ["a*b", "a?b", "a<b", "a>b", "a|b", "a\"b", "a\u{1}b", "x\\\\y"] {
            assert_eq!(parse(bad), Err(NtStatus::OBJECT_NAME_INVALID), "{bad:?}");
        }
        assert_eq!(parse("\\lead"), Err(NtStatus::INVALID_PARAMETER));
        assert_eq!(parse(".."), Err(NtStatus::OBJECT_PATH_SYNTAX_BAD));
        assert_eq!(parse("..\\..\\.."), Err(NtStatus::OBJECT_PATH_SYNTAX_BAD));
        assert_eq!(parse("a\\..\\b").unwrap().components, vec!["b"]);
    }

    #[test]
    fn mac_private_use_substitutes_are_kept() {
        // macOS maps ':' to U+F022 and '*' to U+F021 on SMB.
        let p = parse("a\u{F022}b\u{F021}.txt").unwrap();
        assert_eq!(p.components, vec!["a\u{F022}b\u{F021}.txt"]);
    }

    #[test]
    fn stream_syntax() {
        let p = parse("f.txt:AFP_AfpInfo").unwrap();
        assert_eq!((p.leaf(), p.stream.as_deref()), (Some("f.txt"), Some("AFP_AfpInfo")));
        let p = parse("f.txt:s1:$DATA").unwrap();
        assert_eq!(p.stream.as_deref(), Some("s1"));
        assert_eq!(parse("f.txt::$DATA").unwrap().stream, None);
        assert!(parse("f.txt:s1:$BOGUS").is_err());
        assert!(parse("d:s\\f").is_err());
        assert!(parse("f.txt:").is_err());
        assert!(parse("d::$INDEX_ALLOCATION").unwrap().dir_stream_type);
        let odd = "\u{5}Stream\n One?*";
        assert_eq!(parse(&format!("f:{odd}")).unwrap().stream.as_deref(), Some(odd));
        assert_eq!(stream_from_store(&stream_to_store(odd)), odd);
        assert!(!stream_to_store(odd).contains(['?', '*', '\n']));
        // macOS spells `:` as U+F022 (smbtorture `vfs.fruit` "stream
        // names"): stored as sent, and apart from a Windows client's `"`.
        let mac = "com.apple.metadata\u{F022}_kMDItemUserTags";
        assert_eq!(stream_to_store(mac), mac);
        assert_eq!(stream_from_store(&stream_to_store(mac)), mac);
        assert_eq!(stream_from_store(&stream_to_store("foo\"bar")), "foo\"bar");
        assert_ne!(stream_to_store(mac), stream_to_store("foo\"bar"));
        let marker = "a\u{F0FF}\u{F0FF}b\u{F0FF}";
        assert_eq!(stream_from_store(&stream_to_store(marker)), marker);
    }
}

/// Characters allowed in an 8.3 name besides letters and digits (MS-FSCC 2.1.5.2.1).
const SHORT_EXTRA: &str = "!#$%&'()-@^_`{}~";

fn short_char_ok(c: char) -> bool {
    c.is_ascii_alphanumeric() || SHORT_EXTRA.contains(c)
}

/// True if `name` is already a valid 8.3 name (so it needs no alternate name).
pub fn is_8_3(name: &str) -> bool {
    if name == "." || name == ".." {
        return true;
    }
    let (base, ext) = match name.rsplit_once('.') {
        Some((b, e)) => (b, e),
        None => (name, ""),
    };
    !base.is_empty()
        && base.len() <= 8
        && ext.len() <= 3
        && base.chars().all(short_char_ok)
        && ext.chars().all(short_char_ok)
}

/// The 8.3 alternate name of a long name (MS-FSCC 2.1.5.2.1), or `None` when
/// the name is already 8.3. Deterministic, so no per-directory state is
/// needed: up to five characters of the name, `~`, two characters of a hash
/// of the whole name, and up to three of the extension, upper-cased.
pub fn short_name(name: &str) -> Option<String> {
    if is_8_3(name) {
        return None;
    }
    let (base, ext) = match name.rsplit_once('.') {
        Some((b, e)) if !b.is_empty() => (b, e),
        _ => (name, ""),
    };
    let clean = |s: &str, n: usize| -> String {
        s.chars().filter(|c| short_char_ok(*c)).take(n).collect::<String>().to_ascii_uppercase()
    };
    let mut prefix = clean(base, 5);
    if prefix.is_empty() {
        prefix.push('_');
    }
    // FNV-1a over the UTF-16 name: stable across restarts and platforms.
    let mut h: u32 = 0x811C_9DC5;
    for u in name.encode_utf16() {
        h = (h ^ u32::from(u)).wrapping_mul(0x0100_0193);
    }
    const DIGITS: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
    let d1 = DIGITS[(h % 36) as usize] as char;
    let d2 = DIGITS[((h / 36) % 36) as usize] as char;
    let e = clean(ext, 3);
    Some(if e.is_empty() { format!("{prefix}~{d1}{d2}") } else { format!("{prefix}~{d1}{d2}.{e}") })
}

#[cfg(test)]
mod short_tests {
    use super::*;

    #[test]
    fn short_names() {
        assert!(is_8_3("BIG.BIN") && is_8_3("big.bin") && is_8_3("README"));
        assert_eq!(short_name("big.bin"), None);
        let s = short_name("Quarterly report 2026.xlsx").unwrap();
        assert!(s.starts_with("QUART~") && s.ends_with(".XLS") && is_8_3(&s), "{s}");
        let j = short_name("報告書.docx").unwrap();
        assert!(j.starts_with("_~") && j.ends_with(".DOC"), "{j}");
        assert_eq!(short_name("a long name"), short_name("a long name"));
    }
}
