//! Metrics, medians and the results table.

use std::collections::BTreeMap;

use crate::mode::Mode;

/// What a sample measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Metric {
    SeqWriteSmbclient,
    SeqWriteSmbclientCpu,
    SeqWriteSmbclientBusy,
    SeqReadSmbclient,
    SeqReadSmbclientCpu,
    SeqReadSmbclientBusy,
    SeqWriteClient,
    SeqWriteClientCpu,
    SeqReadClient,
    SeqReadClientCpu,
    SmallCreate,
    SmallCreateCpu,
    SmallRead,
    SmallReadCpu,
    SmallDelete,
    SmallDeleteCpu,
    DirList,
    Stat,
    StatCpu,
    MixedThroughput,
    MixedP50,
    MixedP99,
    MixedCpu,
    MixedStalls,
    IdleRss,
    IdlePss,
    IdleTotalRss,
}

impl Metric {
    /// Row label, unit, and whether higher is better.
    pub fn describe(self, z: &crate::workloads::Sizes) -> (String, &'static str, bool) {
        let gib = |b: u64| {
            if b >= 1 << 30 { format!("{} GiB", b >> 30) } else { format!("{} MiB", b >> 20) }
        };
        let seq_client = |op: &str| format!("seq {op} {} (client, {}×1 MiB in flight)", gib(z.seq_bytes), z.depth);
        let small_create = format!("create+write {} KiB+close ×{}", z.small_size >> 10, z.small_files);
        let (label, unit, higher) = match self {
            Metric::SeqWriteSmbclient => (format!("seq write {} (smbclient put)", gib(z.seq_bytes)), "MiB/s", true),
            Metric::SeqReadSmbclient => (format!("seq read {} (smbclient get)", gib(z.seq_bytes)), "MiB/s", true),
            Metric::SeqWriteClient => (seq_client("write"), "MiB/s", true),
            Metric::SeqReadClient => (seq_client("read"), "MiB/s", true),
            Metric::SmallCreate => (small_create, "files/s", true),
            Metric::SmallRead => (format!("open+read+close ×{}", z.small_files), "files/s", true),
            Metric::SmallDelete => (format!("delete ×{}", z.small_files), "files/s", true),
            Metric::DirList => (format!("list dir of {} (QUERY_DIRECTORY)", z.small_files), "entries/s", true),
            Metric::Stat => (format!("stat ×{} (CREATE+QUERY_INFO+CLOSE)", z.small_files), "stats/s", true),
            // Server CPU time (user + system, all its processes) per unit
            // of work: insensitive to how busy the shared machine is.
            Metric::SeqWriteSmbclientCpu => {
                (format!("seq write {} (smbclient put): server CPU", gib(z.seq_bytes)), "ms/MiB", false)
            }
            Metric::SeqReadSmbclientCpu => {
                (format!("seq read {} (smbclient get): server CPU", gib(z.seq_bytes)), "ms/MiB", false)
            }
            // smbclient's own CPU over the wall time: near 100 % the
            // client, not the server, sets the pace (one thread).
            Metric::SeqWriteSmbclientBusy => {
                (format!("seq write {} (smbclient put): smbclient busy", gib(z.seq_bytes)), "%", true)
            }
            Metric::SeqReadSmbclientBusy => {
                (format!("seq read {} (smbclient get): smbclient busy", gib(z.seq_bytes)), "%", true)
            }
            Metric::SeqWriteClientCpu => (format!("{}: server CPU", seq_client("write")), "ms/MiB", false),
            Metric::SeqReadClientCpu => (format!("{}: server CPU", seq_client("read")), "ms/MiB", false),
            Metric::SmallCreateCpu => (format!("{small_create}: server CPU"), "µs/file", false),
            Metric::SmallReadCpu => (format!("open+read+close ×{}: server CPU", z.small_files), "µs/file", false),
            Metric::SmallDeleteCpu => (format!("delete ×{}: server CPU", z.small_files), "µs/file", false),
            Metric::StatCpu => (format!("stat ×{}: server CPU", z.small_files), "µs/stat", false),
            Metric::MixedThroughput => {
                (format!("{} clients mixed {} KiB r/w: throughput", z.clients, z.mixed_io >> 10), "MiB/s", true)
            }
            Metric::MixedP50 => (format!("{} clients mixed: p50 latency", z.clients), "ms", false),
            Metric::MixedP99 => (format!("{} clients mixed: p99 latency", z.clients), "ms", false),
            Metric::MixedCpu => (format!("{} clients mixed: server CPU", z.clients), "µs/request", false),
            // Pauses in which not one of the clients' requests completed:
            // whole-server stalls, which set the p99 (docs/benchmarks.md,
            // stop 21). Samba has almost none.
            Metric::MixedStalls => {
                (format!("{} clients mixed: stalls ≥ 2 ms (no request completes)", z.clients), "per s", false)
            }
            Metric::IdleRss => (format!("memory per idle connection, RSS ({} conns)", z.idle), "KiB", false),
            Metric::IdlePss => (format!("memory per idle connection, PSS ({} conns)", z.idle), "KiB", false),
            Metric::IdleTotalRss => (format!("server RSS total with {} idle conns", z.idle), "MiB", false),
        };
        (label, unit, higher)
    }
}

/// Samples by (metric, mode, server name).
#[derive(Default)]
pub struct Results {
    samples: BTreeMap<(Metric, Mode), BTreeMap<&'static str, Vec<f64>>>,
    failures: Vec<String>,
}

impl Results {
    pub fn failed(&mut self, server: &str, mode: Mode, what: &str, error: &str) {
        self.failures.push(format!("{server} {what} {}: {error}", mode.name()));
    }

    pub fn failures(&self) -> &[String] {
        &self.failures
    }

    pub fn add(&mut self, server: &'static str, mode: Mode, samples: Vec<(Metric, f64)>) {
        for (m, v) in samples {
            self.samples.entry((m, mode)).or_default().entry(server).or_default().push(v);
        }
    }

    fn median_of(&self, m: Metric, mode: Mode, server: &str) -> Option<f64> {
        self.samples.get(&(m, mode))?.get(server).map(|v| median(v))
    }

    /// The markdown table: median of each cell, and how many times better
    /// smbvault is than each peer (throughput: smbvault/peer; latency, CPU,
    /// memory: peer/smbvault). Samba on gocryptfs gets its own two columns
    /// when it ran.
    pub fn table(&self, z: &crate::workloads::Sizes) -> String {
        let gc = crate::servers::GOCRYPTFS;
        let with_gc = self.samples.values().any(|by| by.contains_key(gc));
        let mut out = String::from("| workload | mode | smbvault | Samba | ratio |");
        if with_gc {
            out.push_str(" Samba+gocryptfs | ratio |");
        }
        out.push_str("\n|---|---|---:|---:|---:|");
        if with_gc {
            out.push_str("---:|---:|");
        }
        out.push('\n');
        for ((m, mode), by) in &self.samples {
            let (label, unit, higher) = m.describe(z);
            let med = |server: &str| by.get(server).map(|v| median(v));
            let a = med("smbvault");
            let ratio = |b: Option<f64>| match (a, b) {
                (Some(a), Some(b)) if a > 0.0 && b > 0.0 => format!("{:.2}", if higher { a / b } else { b / a }),
                _ => "–".into(),
            };
            let cell = |v: Option<f64>| v.map_or("–".into(), |v| format!("{} {unit}", fmt(v)));
            let b = med("Samba");
            out.push_str(&format!("| {label} | {} | {} | {} | {} |", mode.name(), cell(a), cell(b), ratio(b)));
            if with_gc {
                let c = med(gc);
                out.push_str(&format!(" {} | {} |", cell(c), ratio(c)));
            }
            out.push('\n');
        }
        out
    }

    /// What encryption costs each server on the sequential workloads: the
    /// median throughput of each encrypt mode divided by the same server's
    /// sign-mode median from this run (1.00 = free). `None` unless sign
    /// and an encrypt mode both ran.
    pub fn encryption_cost(&self, z: &crate::workloads::Sizes) -> Option<String> {
        const SEQ: [Metric; 4] =
            [Metric::SeqWriteSmbclient, Metric::SeqReadSmbclient, Metric::SeqWriteClient, Metric::SeqReadClient];
        let mut rows = String::new();
        for m in SEQ {
            for mode in [Mode::Encrypt, Mode::Encrypt256] {
                let cost = |server: &str| match (self.median_of(m, mode, server), self.median_of(m, Mode::Sign, server))
                {
                    (Some(e), Some(s)) if s > 0.0 => Some(e / s),
                    _ => None,
                };
                let (a, b) = (cost("smbvault"), cost("Samba"));
                if a.is_none() && b.is_none() {
                    continue;
                }
                let cell = |v: Option<f64>| v.map_or("–".into(), |v| format!("{v:.2}"));
                let label = m.describe(z).0;
                rows.push_str(&format!("| {label} | {} | {} | {} |\n", mode.describe(), cell(a), cell(b)));
            }
        }
        if rows.is_empty() {
            return None;
        }
        Some(format!(
            "encryption cost: encrypted throughput ÷ the same server's sign throughput (medians, this run; 1.00 = free)\n\n\
             | workload | mode | smbvault | Samba |\n|---|---|---:|---:|\n{rows}"
        ))
    }

    /// Every sample, for `--json`.
    pub fn json(&self) -> String {
        let mut rows = Vec::new();
        for ((m, mode), by) in &self.samples {
            for (server, v) in by {
                rows.push(format!(
                    "{{\"metric\":\"{m:?}\",\"mode\":\"{}\",\"encrypt\":{},\"server\":\"{server}\",\"samples\":{v:?},\"median\":{}}}",
                    mode.name(),
                    mode.encrypts(),
                    median(v)
                ));
            }
        }
        format!("[\n{}\n]\n", rows.join(",\n"))
    }
}

fn fmt(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// Median (mean of the middle two for an even count).
pub fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    match s.len() {
        0 => 0.0,
        n if n % 2 == 1 => s[n / 2],
        n => (s[n / 2 - 1] + s[n / 2]) / 2.0,
    }
}

/// Nearest-rank percentile of sorted samples.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}
