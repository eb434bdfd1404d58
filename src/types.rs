//! Identifiers shared by several layers. Plain newtypes so that an organization id
//! can never be passed where a user id is expected.

/// An organization (tenant). Assigned by the accounts store, never reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OrgId(pub u64);

/// A user account. Assigned by the accounts store, never reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UserId(pub u64);

/// A share. Assigned by the accounts store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ShareId(pub u64);

/// A file or directory in an organization's namespace. Stable for the life of
/// the object (it survives renames); reported to clients as the file id
/// (MS-FSCC 2.4.20 FileInternalInformation IndexNumber).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(pub u64);

/// Windows FILETIME: 100-nanosecond intervals since 1601-01-01 UTC (MS-DTYP 2.3.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct FileTime(pub u64);

impl FileTime {
    /// Seconds between 1601-01-01 and 1970-01-01.
    const UNIX_EPOCH_SECS: u64 = 11_644_473_600;

    /// Converts a system time (clocks are read by the caller, never here).
    pub fn from_system(t: std::time::SystemTime) -> Self {
        let d = t.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        Self((d.as_secs() + Self::UNIX_EPOCH_SECS) * 10_000_000 + u64::from(d.subsec_nanos()) / 100)
    }

    /// Back to a system time (saturating at the Unix epoch).
    pub fn to_system(self) -> std::time::SystemTime {
        let secs = (self.0 / 10_000_000).saturating_sub(Self::UNIX_EPOCH_SECS);
        let nanos = (self.0 % 10_000_000) * 100;
        std::time::UNIX_EPOCH + std::time::Duration::new(secs, nanos as u32)
    }
}

/// Upper-cases `s` the way NTFS and Windows compare names: one character
/// at a time, each to its simple uppercase where that is one character, so
/// "ß" never becomes "SS" and the length in characters never changes
/// (the per-UTF-16-unit upcase table of NTFS, RtlUpcaseUnicodeString).
/// This is the one case rule of the server; [`fold_name`] adds NFC.
pub fn upcase(s: &str) -> String {
    s.chars().map(upcase_char).collect()
}

/// [`upcase`] for one character.
pub fn upcase_char(c: char) -> char {
    let mut up = c.to_uppercase();
    match (up.next(), up.next()) {
        (Some(u), None) => u,
        _ => c,
    }
}

/// The case-insensitive comparison form of a file, directory or stream
/// name (or a `\`-separated path of them): NFC (macOS clients send
/// decomposed Japanese: ハ U+30CF + ゚ U+309A instead of パ U+30D1), then
/// [`upcase`]. Storage keys names with it, and the engine compares names
/// and stream names with it, so both always agree.
pub fn fold_name(name: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    name.nfc().map(upcase_char).collect()
}

#[cfg(test)]
mod fold_tests {
    use super::*;

    #[test]
    fn names_fold_by_simple_uppercase() {
        assert_eq!(fold_name("Readme.TXT"), fold_name("README.txt"));
        assert_eq!(fold_name("straße"), "STRAßE"); // ß has no single-char uppercase
        assert_eq!(fold_name("ｆｕｌｌ"), "ＦＵＬＬ"); // fullwidth letters fold too
        assert_eq!(fold_name("日本語"), "日本語");
        assert_eq!(fold_name("ǆ"), "Ǆ");
        assert_eq!(upcase("straße"), "STRAßE");
        // Composed and decomposed Japanese are one name.
        assert_eq!(fold_name("パスワード"), fold_name("\u{30CF}\u{309A}スワー\u{30C8}\u{3099}"));
    }
}

/// Japan Standard Time, the customers' time zone and the only one smbvault
/// shows or names things in (logs, CLI tables, backup names, contract days).
/// JST is UTC+09:00 all year (Japan has no daylight saving time), so a fixed
/// offset is exact. Everything that turns a time into JST goes through here.
pub mod jst {
    use std::time::SystemTime;

    use chrono::{DateTime, FixedOffset, Utc};

    /// JST's offset from UTC in seconds.
    pub const OFFSET_SECS: i32 = 9 * 3600;

    /// The JST offset, for chrono.
    pub fn offset() -> FixedOffset {
        FixedOffset::east_opt(OFFSET_SECS).unwrap_or_else(|| unreachable!("+09:00 is in range"))
    }

    /// `t` as a JST date and time.
    pub fn at(t: SystemTime) -> DateTime<FixedOffset> {
        DateTime::<Utc>::from(t).with_timezone(&offset())
    }

    /// `20261125T090000+0900`: JST to the second without separators, for
    /// names of backup generations and set-aside directories.
    pub fn stamp(t: SystemTime) -> String {
        at(t).format("%Y%m%dT%H%M%S%z").to_string()
    }

    #[cfg(test)]
    mod tests {
        use std::time::{Duration, UNIX_EPOCH};

        #[test]
        fn nine_hours_ahead_of_utc() {
            // 2026-11-25T00:00:00Z is 09:00 the same day in Japan.
            let t = UNIX_EPOCH + Duration::from_secs(1_795_564_800);
            assert_eq!(super::at(t).to_rfc3339(), "2026-11-25T09:00:00+09:00");
            assert_eq!(super::stamp(t), "20261125T090000+0900");
        }
    }
}
