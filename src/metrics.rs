//! Server counters for the Prometheus endpoint (`service::http`). Only
//! atomics here, bumped on the request path without locks; gauges that
//! are cheap to compute at scrape time (sessions per organization, the
//! audit queue, pending erasures) are computed there instead.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// Upper bounds of the request latency histogram, in seconds.
pub const LATENCY_BUCKETS: [f64; 12] =
    [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 2.5];

/// SMB2 command names by command code (MS-SMB2 2.2.1.2).
pub const COMMANDS: [&str; 19] = [
    "negotiate",
    "session_setup",
    "logoff",
    "tree_connect",
    "tree_disconnect",
    "create",
    "close",
    "flush",
    "read",
    "write",
    "lock",
    "ioctl",
    "cancel",
    "echo",
    "query_directory",
    "change_notify",
    "query_info",
    "set_info",
    "oplock_break",
];

/// NTSTATUS severity classes (MS-ERREF 2.3: the top two bits).
pub const STATUS_CLASSES: [&str; 4] = ["success", "informational", "warning", "error"];

/// Limits a client can run into.
#[derive(Debug, Clone, Copy)]
pub enum Limit {
    /// `server.max_connections` refused a connection.
    Connections,
    /// An organization's quota (STATUS_DISK_FULL).
    Quota,
    /// Too many opens or sessions (STATUS_TOO_MANY_OPENED_FILES, INSUFFICIENT_RESOURCES).
    Resources,
}

/// Names of [`Limit`] for the `limit` label.
pub const LIMITS: [&str; 3] = ["connections", "quota", "resources"];

/// Everything counted since start.
#[derive(Default)]
pub struct Metrics {
    /// Connections accepted since start.
    pub connections_total: AtomicU64,
    /// Connections open now.
    pub connections_open: AtomicU64,
    /// Bytes received from clients (Direct-TCP frames, prefix included).
    pub bytes_in: AtomicU64,
    /// Bytes sent to clients.
    pub bytes_out: AtomicU64,
    requests: [AtomicU64; 19],
    latency: [[AtomicU64; 13]; 19],
    latency_sum_us: [AtomicU64; 19],
    statuses: [AtomicU64; 4],
    limits: [AtomicU64; 3],
    /// Sessions ended by `smbvault session kick`.
    pub kicks: AtomicU64,
    /// SIGHUP reloads: applied, and refused (broken file).
    pub reloads: [AtomicU64; 2],
    /// Unix time (seconds) of the last backup attempt, per kind (0: db, 1: data); 0 if none.
    pub backup_time: [AtomicI64; 2],
    /// 1 if the last backup of that kind succeeded, 0 if it failed, -1 if none ran.
    pub backup_ok: [AtomicI64; 2],
    /// Organizations erased since start.
    pub erasures_done: AtomicU64,
}

impl Metrics {
    /// Zeroed counters; no backup yet.
    pub fn new() -> Self {
        let m = Self::default();
        for b in &m.backup_ok {
            b.store(-1, Relaxed);
        }
        m
    }

    /// One request answered with `status` after `took`.
    pub fn request(&self, command: u16, status: u32, took: Duration) {
        let c = usize::from(command);
        if c < COMMANDS.len() {
            self.requests[c].fetch_add(1, Relaxed);
            let secs = took.as_secs_f64();
            let b = LATENCY_BUCKETS.iter().position(|&le| secs <= le).unwrap_or(LATENCY_BUCKETS.len());
            self.latency[c][b].fetch_add(1, Relaxed);
            self.latency_sum_us[c].fetch_add(took.as_micros() as u64, Relaxed);
        }
        self.statuses[(status >> 30) as usize].fetch_add(1, Relaxed);
        match status {
            0xC000_007F => self.limit(Limit::Quota),
            0xC000_011F | 0xC000_009A => self.limit(Limit::Resources),
            _ => {}
        }
    }

    /// A limit was hit.
    pub fn limit(&self, l: Limit) {
        self.limits[l as usize].fetch_add(1, Relaxed);
    }

    /// A backup of kind 0 (database) or 1 (data) ended at `unix_secs`.
    pub fn backup(&self, kind: usize, unix_secs: i64, ok: bool) {
        self.backup_time[kind & 1].store(unix_secs, Relaxed);
        self.backup_ok[kind & 1].store(i64::from(ok), Relaxed);
    }

    /// The counters in Prometheus text exposition format (version 0.0.4).
    pub fn render(&self, out: &mut String) {
        let g = |v: &AtomicU64| v.load(Relaxed);
        family(out, "smbvault_connections_total", "counter", "Connections accepted since start.");
        let _ = writeln!(out, "smbvault_connections_total {}", g(&self.connections_total));
        family(out, "smbvault_connections", "gauge", "Connections open now.");
        let _ = writeln!(out, "smbvault_connections {}", g(&self.connections_open));
        family(out, "smbvault_received_bytes_total", "counter", "Bytes received from clients.");
        let _ = writeln!(out, "smbvault_received_bytes_total {}", g(&self.bytes_in));
        family(out, "smbvault_sent_bytes_total", "counter", "Bytes sent to clients.");
        let _ = writeln!(out, "smbvault_sent_bytes_total {}", g(&self.bytes_out));
        family(out, "smbvault_requests_total", "counter", "SMB2 requests answered, by command.");
        for (i, name) in COMMANDS.iter().enumerate() {
            let _ = writeln!(out, "smbvault_requests_total{{command=\"{name}\"}} {}", g(&self.requests[i]));
        }
        family(out, "smbvault_request_duration_seconds", "histogram", "Time to answer a request, by command.");
        for (i, name) in COMMANDS.iter().enumerate() {
            let mut cum = 0;
            for (b, le) in LATENCY_BUCKETS.iter().enumerate() {
                cum += g(&self.latency[i][b]);
                let _ =
                    writeln!(out, "smbvault_request_duration_seconds_bucket{{command=\"{name}\",le=\"{le}\"}} {cum}");
            }
            cum += g(&self.latency[i][LATENCY_BUCKETS.len()]);
            let _ = writeln!(out, "smbvault_request_duration_seconds_bucket{{command=\"{name}\",le=\"+Inf\"}} {cum}");
            let sum = g(&self.latency_sum_us[i]) as f64 / 1e6;
            let _ = writeln!(out, "smbvault_request_duration_seconds_sum{{command=\"{name}\"}} {sum}");
            let _ = writeln!(out, "smbvault_request_duration_seconds_count{{command=\"{name}\"}} {cum}");
        }
        family(out, "smbvault_responses_total", "counter", "Responses by NTSTATUS severity class.");
        for (i, c) in STATUS_CLASSES.iter().enumerate() {
            let _ = writeln!(out, "smbvault_responses_total{{class=\"{c}\"}} {}", g(&self.statuses[i]));
        }
        family(out, "smbvault_limits_hit_total", "counter", "Requests or connections refused by a limit.");
        for (i, l) in LIMITS.iter().enumerate() {
            let _ = writeln!(out, "smbvault_limits_hit_total{{limit=\"{l}\"}} {}", g(&self.limits[i]));
        }
        family(out, "smbvault_sessions_kicked_total", "counter", "Sessions ended with `smbvault session kick`.");
        let _ = writeln!(out, "smbvault_sessions_kicked_total {}", g(&self.kicks));
        family(out, "smbvault_config_reloads_total", "counter", "SIGHUP reloads, by result.");
        let _ = writeln!(out, "smbvault_config_reloads_total{{result=\"applied\"}} {}", g(&self.reloads[0]));
        let _ = writeln!(out, "smbvault_config_reloads_total{{result=\"refused\"}} {}", g(&self.reloads[1]));
        family(out, "smbvault_backup_last_time_seconds", "gauge", "Unix time of the last backup attempt (0: none).");
        for (i, k) in ["db", "data"].iter().enumerate() {
            let _ = writeln!(
                out,
                "smbvault_backup_last_time_seconds{{kind=\"{k}\"}} {}",
                self.backup_time[i].load(Relaxed)
            );
        }
        family(
            out,
            "smbvault_backup_last_success",
            "gauge",
            "1: the last backup succeeded, 0: it failed, -1: none yet.",
        );
        for (i, k) in ["db", "data"].iter().enumerate() {
            let _ = writeln!(out, "smbvault_backup_last_success{{kind=\"{k}\"}} {}", self.backup_ok[i].load(Relaxed));
        }
        family(out, "smbvault_erasures_total", "counter", "Organizations erased since start (contract ended).");
        let _ = writeln!(out, "smbvault_erasures_total {}", g(&self.erasures_done));
    }
}

/// `# HELP` and `# TYPE` lines of a metric family.
pub fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// A label value escaped for the text format (backslash, quote, newline).
pub fn label(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_is_cumulative() {
        let m = Metrics::new();
        m.request(8, 0, Duration::from_micros(50));
        m.request(8, 0xC000_0022, Duration::from_secs(5));
        let mut s = String::new();
        m.render(&mut s);
        assert!(s.contains("smbvault_request_duration_seconds_bucket{command=\"read\",le=\"0.0001\"} 1"));
        assert!(s.contains("smbvault_request_duration_seconds_bucket{command=\"read\",le=\"+Inf\"} 2"));
        assert!(s.contains("smbvault_responses_total{class=\"error\"} 1"));
        assert!(s.contains("smbvault_requests_total{command=\"read\"} 2"));
    }
}
