//! Japan Standard Time: the audit log's only time zone. JST is UTC+09:00
//! all year (Japan has no daylight saving time), so a fixed offset is exact.
//!
//! Times are stored as Unix milliseconds (`i64`); they are shown as
//! `2026-11-25T17:00:00.123+09:00` and segments are cut at JST month starts.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, TimeZone};

use crate::types::jst::offset as jst;

/// Milliseconds since the Unix epoch (times before 1970 clamp to 0).
pub fn unix_ms(t: SystemTime) -> i64 {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// The `SystemTime` of a Unix millisecond count (negative clamps to the epoch).
pub fn from_unix_ms(ms: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

/// `2026-11-25T17:00:00.123+09:00`: JST, millisecond precision, with offset.
pub fn format_jst(t: SystemTime) -> String {
    format_jst_ms(unix_ms(t))
}

/// [`format_jst`] for a Unix millisecond count.
pub fn format_jst_ms(ms: i64) -> String {
    match jst().timestamp_millis_opt(ms).single() {
        Some(dt) => dt.format("%Y-%m-%dT%H:%M:%S%.3f%:z").to_string(),
        None => format!("@{ms}ms"),
    }
}

/// Parses a time given on the command line: RFC 3339 with any offset
/// (`2026-11-25T08:00:00Z`), or a JST wall-clock time without offset
/// (`2026-11-25T17:00`, `2026-11-25 17:00:00.5`, `2026-11-25` = midnight JST).
pub fn parse_time(s: &str) -> Result<SystemTime, String> {
    let s = s.trim();
    if let Ok(dt) = DateTime::parse_from_rfc3339(s) {
        return to_system(dt.timestamp_millis());
    }
    let local = s.replacen(' ', "T", 1);
    for fmt in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M"] {
        if let Ok(ndt) = NaiveDateTime::parse_from_str(&local, fmt) {
            return jst_local(ndt);
        }
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return jst_local(d.and_hms_opt(0, 0, 0).ok_or("bad date")?);
    }
    Err(format!(
        "cannot read time {s:?}: use JST like 2026-11-25T17:00 or 2026-11-25, or RFC 3339 like 2026-11-25T08:00:00Z"
    ))
}

fn jst_local(ndt: NaiveDateTime) -> Result<SystemTime, String> {
    let dt = jst().from_local_datetime(&ndt).single().ok_or("time out of range")?;
    to_system(dt.timestamp_millis())
}

fn to_system(ms: i64) -> Result<SystemTime, String> {
    if ms < 0 {
        return Err("times before 1970 are not in any audit log".into());
    }
    Ok(from_unix_ms(ms))
}

/// A JST calendar month, numbered `year * 12 + (month - 1)` so that months
/// compare and subtract as integers. Segment files are named after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Month(pub u32);

impl Month {
    /// The JST month containing Unix millisecond `ms`.
    pub fn of_ms(ms: i64) -> Month {
        match jst().timestamp_millis_opt(ms).single() {
            Some(dt) => Month::new(dt.year(), dt.month()),
            None => Month(0),
        }
    }

    /// The JST month containing `t`.
    pub fn of(t: SystemTime) -> Month {
        Month::of_ms(unix_ms(t))
    }

    /// From a year and a 1-based month.
    pub fn new(year: i32, month: u32) -> Month {
        let y = u32::try_from(year).unwrap_or(0);
        Month(y * 12 + month.clamp(1, 12) - 1)
    }

    /// Calendar year.
    pub fn year(self) -> u32 {
        self.0 / 12
    }

    /// 1-based month of the year.
    pub fn month(self) -> u32 {
        self.0 % 12 + 1
    }

    /// `n` months earlier (saturating).
    pub fn minus(self, n: u32) -> Month {
        Month(self.0.saturating_sub(n))
    }

    /// The next month.
    pub fn next(self) -> Month {
        Month(self.0.saturating_add(1))
    }

    /// Unix milliseconds of the month's first instant (00:00 JST on day 1).
    pub fn start_ms(self) -> i64 {
        let d = NaiveDate::from_ymd_opt(self.year() as i32, self.month(), 1).and_then(|d| d.and_hms_opt(0, 0, 0));
        d.and_then(|d| jst().from_local_datetime(&d).single()).map(|dt| dt.timestamp_millis()).unwrap_or(0)
    }

    /// Parses `YYYY-MM`.
    pub fn parse(s: &str) -> Option<Month> {
        let (y, m) = s.split_once('-')?;
        if y.len() != 4 || m.len() != 2 {
            return None;
        }
        let (y, m) = (y.parse::<i32>().ok()?, m.parse::<u32>().ok()?);
        (1..=12).contains(&m).then(|| Month::new(y, m))
    }
}

impl std::fmt::Display for Month {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:04}-{:02}", self.year(), self.month())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_exactly() {
        // 2026-11-25T08:00:00.123Z is 17:00:00.123 in Tokyo.
        let t = UNIX_EPOCH + Duration::from_millis(1_795_593_600_123);
        assert_eq!(format_jst(t), "2026-11-25T17:00:00.123+09:00");
        assert_eq!(format_jst(t + Duration::from_micros(999)), "2026-11-25T17:00:00.123+09:00");
        assert_eq!(format_jst(UNIX_EPOCH), "1970-01-01T09:00:00.000+09:00");
    }

    #[test]
    fn parses_jst_and_rfc3339() {
        let want = UNIX_EPOCH + Duration::from_millis(1_795_593_600_000);
        assert_eq!(parse_time("2026-11-25T17:00"), Ok(want));
        assert_eq!(parse_time("2026-11-25 17:00:00"), Ok(want));
        assert_eq!(parse_time("2026-11-25T08:00:00Z"), Ok(want));
        assert_eq!(parse_time("2026-11-25T17:00:00+09:00"), Ok(want));
        assert_eq!(parse_time("2026-11-25T17:00:00.5"), Ok(want + Duration::from_millis(500)));
        assert_eq!(parse_time("2026-11-25"), Ok(want - Duration::from_secs(17 * 3600)));
        assert!(parse_time("yesterday").is_err());
    }

    #[test]
    fn months_follow_jst() {
        // 2026-11-30T15:00Z is already December 1st in Tokyo.
        let dec1 = parse_time("2026-11-30T15:00:00Z").unwrap();
        assert_eq!(Month::of(dec1).to_string(), "2026-12");
        assert_eq!(Month::of(dec1 - Duration::from_millis(1)).to_string(), "2026-11");
        assert_eq!(Month::new(2026, 12).start_ms(), unix_ms(dec1));
        assert_eq!(Month::new(2027, 1).minus(1), Month::new(2026, 12));
        assert_eq!(Month::parse("2026-03"), Some(Month::new(2026, 3)));
        assert_eq!(Month::parse("2026-13"), None);
    }
}
