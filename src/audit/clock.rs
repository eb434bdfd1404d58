//! Is the system clock NTP-synchronized? Audit timestamps come from the
//! system clock, so the server logs a warning at start when it is not (or
//! when we cannot tell). Best effort, no `unsafe`: we ask the usual tools
//! instead of calling adjtimex(2) ourselves.

use std::path::Path;
use std::process::Command;

/// What one probe said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sync {
    Yes,
    No,
    Unknown,
}

/// A named probe.
type Probe = (&'static str, fn() -> Sync);

/// `None` when the clock is known to be synchronized; otherwise a warning
/// for the operator. Probes, in order: `timedatectl show -p NTPSynchronized`,
/// the systemd-timesyncd marker `/run/systemd/timesync/synchronized`,
/// `chronyc -n tracking` (Leap status) and `ntpstat` (exit status).
pub fn clock_sync_warning() -> Option<String> {
    let probes: [Probe; 4] = [
        ("timedatectl", probe_timedatectl),
        ("systemd-timesyncd", probe_timesyncd),
        ("chronyc", probe_chrony),
        ("ntpstat", probe_ntpstat),
    ];
    for (name, probe) in probes {
        match probe() {
            Sync::Yes => return None,
            Sync::No => {
                return Some(format!(
                    "the system clock is not NTP-synchronized ({name} says so): audit log \
                     timestamps may be wrong; enable NTP (chrony, systemd-timesyncd)"
                ));
            }
            Sync::Unknown => {}
        }
    }
    Some(
        "cannot tell whether the system clock is NTP-synchronized (no answer from timedatectl, \
         chronyc or ntpstat): audit log timestamps rely on it; check time synchronization"
            .into(),
    )
}

fn run(cmd: &str, args: &[&str]) -> Option<(i32, String)> {
    let out = Command::new(cmd).args(args).env_remove("NOTIFY_SOCKET").output().ok()?;
    Some((out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned()))
}

fn probe_timedatectl() -> Sync {
    match run("timedatectl", &["show", "-p", "NTPSynchronized", "--value"]) {
        Some((0, out)) => parse_timedatectl(&out),
        _ => Sync::Unknown,
    }
}

fn parse_timedatectl(out: &str) -> Sync {
    match out.trim().trim_start_matches("NTPSynchronized=") {
        "yes" => Sync::Yes,
        "no" => Sync::No,
        _ => Sync::Unknown,
    }
}

fn probe_timesyncd() -> Sync {
    // timesyncd touches this file each time it synchronizes; its absence
    // proves nothing (another daemon may be in charge).
    if Path::new("/run/systemd/timesync/synchronized").exists() { Sync::Yes } else { Sync::Unknown }
}

fn probe_chrony() -> Sync {
    match run("chronyc", &["-n", "tracking"]) {
        Some((0, out)) => parse_chrony(&out),
        _ => Sync::Unknown,
    }
}

fn parse_chrony(out: &str) -> Sync {
    for line in out.lines() {
        if let Some((k, v)) = line.split_once(':')
            && k.trim() == "Leap status"
        {
            return if v.trim() == "Not synchronised" { Sync::No } else { Sync::Yes };
        }
    }
    Sync::Unknown
}

fn probe_ntpstat() -> Sync {
    // ntpstat(1): exit 0 synchronized, 1 not synchronized, 2 state unknown.
    match run("ntpstat", &[]) {
        Some((0, _)) => Sync::Yes,
        Some((1, _)) => Sync::No,
        _ => Sync::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_tool_output() {
        assert_eq!(parse_timedatectl("yes\n"), Sync::Yes);
        assert_eq!(parse_timedatectl("NTPSynchronized=no\n"), Sync::No);
        assert_eq!(parse_timedatectl(""), Sync::Unknown);
        assert_eq!(parse_chrony("Reference ID : 0A\nLeap status     : Normal\n"), Sync::Yes);
        assert_eq!(parse_chrony("Leap status     : Not synchronised\n"), Sync::No);
        assert_eq!(parse_chrony("506 Cannot talk to daemon"), Sync::Unknown);
    }

    #[test]
    fn warning_is_text_or_none() {
        // This machine may or may not run NTP; either answer is well-formed.
        if let Some(w) = clock_sync_warning() {
            assert!(w.contains("NTP"));
        }
    }
}
