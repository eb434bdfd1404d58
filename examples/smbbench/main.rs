//! smbbench: smbvault next to Samba on the same machine, same run, same
//! client. Starts both servers privately on loopback with fresh data
//! directories, runs every workload against each (alternating which goes
//! first), and prints a markdown table of medians.
//!
//! ```sh
//! ./protocol-tests/bench/run.sh            # builds release, runs everything (3 runs)
//! ./protocol-tests/bench/run.sh --quick    # small sizes, 1 run: a smoke test
//! ```
//! Workloads and how to read the table: docs/benchmarks.md.

// The load client lives with the tests, not in the server library.
#[path = "../../protocol-tests/client/mod.rs"]
#[allow(dead_code, unused_imports, reason = "smbbench and client_e2e each use part of the client's API")]
mod client;
mod mode;
mod report;
mod servers;
mod workloads;

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Parser;

use mode::Mode;
use report::Results;
use servers::{Samba, Smbvault, Target};
use workloads::Sizes;

/// Benchmarks smbvault against Samba.
#[derive(Debug, Parser)]
struct Args {
    /// Runs of each workload; the table shows medians.
    #[arg(long)]
    runs: Option<usize>,
    /// Small sizes and one run: a smoke test of the whole pipeline.
    #[arg(long)]
    quick: bool,
    /// Workload groups: smbclient, seq, small, mixed, memory.
    #[arg(long, value_delimiter = ',', default_value = "smbclient,seq,small,mixed,memory")]
    only: Vec<String>,
    /// Servers: smbvault, samba, samba-gocryptfs (Samba with its share on a
    /// gocryptfs mount: AES-256-GCM at rest).
    #[arg(long, value_delimiter = ',', default_value = "smbvault,samba,samba-gocryptfs")]
    servers: Vec<String>,
    /// Run the small-file, mixed and memory workloads against Samba on
    /// gocryptfs too (by default it runs only the sequential ones: its
    /// small-file creates crawl at about 10 files/s here, which would make
    /// a full run take hours).
    #[arg(long)]
    gocryptfs_all: bool,
    /// Modes: sign (SMB 3.1.1 signing), encrypt (SMB 3.1.1 sealing with
    /// AES-128-GCM), encrypt256 (SMB 3.1.1 sealing with AES-256-GCM).
    #[arg(long, value_enum, value_delimiter = ',', default_value = "sign,encrypt,encrypt256")]
    modes: Vec<Mode>,
    /// Scratch directory for data directories and test files (default /dev/shm, else the temp dir).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// smbvault binary (default: next to this example, target/release/smbvault).
    #[arg(long)]
    smbvault_bin: Option<PathBuf>,
    /// Samba start/stop script (default protocol-tests/bench/samba.sh).
    #[arg(long)]
    samba_script: Option<PathBuf>,
    /// Sequential file size in MiB (default 1024; quick 128).
    #[arg(long)]
    seq_mib: Option<u64>,
    /// 1 MiB requests in flight for the client's sequential transfers.
    #[arg(long, default_value_t = 8)]
    depth: usize,
    /// Small files (default 10000; quick 1000).
    #[arg(long)]
    small_files: Option<usize>,
    /// Concurrent clients of the mixed workload.
    #[arg(long, default_value_t = 32)]
    clients: usize,
    /// Seconds the mixed workload runs (default 10; quick 3).
    #[arg(long)]
    mixed_secs: Option<u64>,
    /// Idle connections for the memory measurement (default 1000; quick 100).
    #[arg(long)]
    idle: Option<usize>,
    /// Also write every sample as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
}

impl Args {
    fn sizes(&self) -> Sizes {
        let q = self.quick;
        Sizes {
            seq_bytes: self.seq_mib.unwrap_or(if q { 128 } else { 1024 }) << 20,
            depth: self.depth.max(1),
            small_files: self.small_files.unwrap_or(if q { 1000 } else { 10_000 }),
            small_size: 4096,
            clients: self.clients.max(1),
            mixed_time: Duration::from_secs(self.mixed_secs.unwrap_or(if q { 3 } else { 10 })),
            mixed_file: 8 << 20,
            mixed_io: 64 << 10,
            idle: self.idle.unwrap_or(if q { 100 } else { 1000 }),
        }
    }

    fn wants(&self, group: &str) -> bool {
        self.only.iter().any(|g| g == group)
    }

    /// `wants(group)` for target `t`: Samba on gocryptfs runs only the
    /// sequential groups unless `--gocryptfs-all`.
    fn wants_for(&self, t: &Target, group: &str) -> bool {
        self.wants(group)
            && (t.name != servers::GOCRYPTFS || self.gocryptfs_all || matches!(group, "smbclient" | "seq"))
    }
}

fn main() {
    let args = Args::parse();
    if let Err(e) = run(&args) {
        eprintln!("smbbench: {e}");
        std::process::exit(1);
    }
}

fn run(args: &Args) -> Result<(), String> {
    let z = args.sizes();
    let runs = args.runs.unwrap_or(if args.quick { 1 } else { 3 }).max(1);
    let base = args
        .dir
        .clone()
        .unwrap_or_else(|| if Path::new("/dev/shm").is_dir() { "/dev/shm".into() } else { std::env::temp_dir() })
        .join(format!("smbbench-{}", std::process::id()));
    std::fs::create_dir_all(&base).map_err(|e| format!("{}: {e}", base.display()))?;
    let _cleanup = RemoveOnDrop(base.clone());
    eprintln!("{}", machine());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;

    let vault = if args.servers.iter().any(|s| s == "smbvault") {
        let bin = args.smbvault_bin.clone().unwrap_or_else(default_bin);
        Some(Smbvault::start(&bin, &base.join("smbvault"))?)
    } else {
        None
    };
    let samba = if args.servers.iter().any(|s| s == "samba") {
        let script = args
            .samba_script
            .clone()
            .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("protocol-tests/bench/samba.sh"));
        Some(Samba::start(&script, &base.join("samba"), false)?)
    } else {
        None
    };
    let samba_gc = if args.servers.iter().any(|s| s == "samba-gocryptfs") {
        let script = args
            .samba_script
            .clone()
            .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("protocol-tests/bench/samba.sh"));
        Some(Samba::start(&script, &base.join("samba-gocryptfs"), true)?)
    } else {
        None
    };
    let targets: Vec<&Target> = vault
        .iter()
        .map(|v| &v.target)
        .chain(samba.iter().map(|s| &s.target))
        .chain(samba_gc.iter().map(|s| &s.target))
        .collect();
    for t in &targets {
        eprintln!("{} on {} (pid {})", t.name, t.addr, t.pid);
    }

    let mut results = Results::default();
    let pat = workloads::pattern();
    if args.wants("memory") {
        for t in targets.iter().filter(|t| args.wants_for(t, "memory")) {
            attempt(&mut results, t, Mode::Sign, "memory", || {
                rt.block_on(workloads::idle_memory(t, &z)).map_err(|e| e.to_string())
            });
        }
    }
    let src = base.join("seq-src.bin");
    if args.wants("smbclient") {
        write_source(&src, z.seq_bytes, &pat)?;
    }
    for run in 0..runs {
        // Alternate which server goes first so slow drifts in machine load
        // (other users of the box) do not favour one side.
        let mut order = targets.clone();
        if run % 2 == 1 {
            order.reverse();
        }
        for &mode in &args.modes {
            for t in &order {
                eprintln!("run {}/{runs} {} {}", run + 1, t.name, mode.name());
                if args.wants_for(t, "smbclient") {
                    attempt(&mut results, t, mode, "smbclient", || {
                        workloads::seq_smbclient(t, mode, &src, z.seq_bytes)
                    });
                }
                if args.wants_for(t, "seq") {
                    attempt(&mut results, t, mode, "seq", || {
                        rt.block_on(workloads::seq_client(t, mode, &z, &pat)).map_err(|e| e.to_string())
                    });
                }
                if args.wants_for(t, "small") {
                    attempt(&mut results, t, mode, "small", || {
                        rt.block_on(workloads::small_files(t, mode, &z, &pat)).map_err(|e| e.to_string())
                    });
                }
                if args.wants_for(t, "mixed") {
                    attempt(&mut results, t, mode, "mixed", || {
                        rt.block_on(workloads::mixed(t, mode, &z, &pat)).map_err(|e| e.to_string())
                    });
                }
            }
        }
    }
    println!("{}", results.table(&z));
    println!(
        "medians of {runs} run(s); ratio = how many times better smbvault is than that peer (throughput: \
         smbvault/peer; latency, CPU, memory: peer/smbvault)"
    );
    if let Some(cost) = results.encryption_cost(&z) {
        println!("\n{cost}");
    }
    for f in results.failures() {
        println!("failure: {f}");
    }
    if let Some(p) = &args.json {
        std::fs::write(p, results.json()).map_err(|e| format!("{}: {e}", p.display()))?;
    }
    drop(vault);
    drop(samba);
    drop(samba_gc);
    Ok(())
}

/// With `SMBBENCH_PERF=DIR`, samples the server's CPU (perf, cpu-clock
/// software event, so it also works in VMs without hardware counters)
/// while one workload runs, system-wide (Samba forks an smbd per connection):
/// filter with `perf report --pid PID` or `--comm smbd`.
struct Perf(Option<std::process::Child>);

impl Perf {
    fn start(t: &Target, mode: Mode, what: &str) -> Self {
        let Some(dir) = std::env::var_os("SMBBENCH_PERF") else { return Self(None) };
        let out = Path::new(&dir).join(format!("{}-{what}-{}.data", t.name, mode.name()));
        let mut cmd = std::process::Command::new("perf");
        cmd.args(["record", "-q", "-e", "cpu-clock", "-F", "999", "-o"]).arg(out);
        // System-wide: per-PID sampling misses threads and processes created later.
        cmd.arg("-a");
        // e.g. SMBBENCH_PERF_ARGS="--call-graph dwarf" for call stacks.
        if let Ok(extra) = std::env::var("SMBBENCH_PERF_ARGS") {
            cmd.args(extra.split_whitespace());
        }
        Self(cmd.stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null()).spawn().ok())
    }
}

impl Drop for Perf {
    fn drop(&mut self) {
        if let Some(c) = self.0.as_mut() {
            let _ = std::process::Command::new("kill").args(["-INT", &c.id().to_string()]).status();
            let _ = c.wait();
        }
    }
}

/// Runs a workload (under perf with `SMBBENCH_PERF`), once more if it
/// fails (a dropped connection on a loaded machine should not blank a
/// cell); every failure is reported and counted.
fn attempt(
    results: &mut Results,
    t: &Target,
    mode: Mode,
    what: &str,
    mut f: impl FnMut() -> Result<workloads::Samples, String>,
) {
    for k in 1..=2 {
        let r = {
            let _perf = Perf::start(t, mode, what);
            f()
        };
        match r {
            Ok(s) => {
                for (m, v) in &s {
                    eprintln!("  {:<8} {:<10} {m:?} = {v:.2}", t.name, mode.name());
                }
                results.add(t.name, mode, s);
                return;
            }
            Err(e) => {
                eprintln!("  {} {what} failed (attempt {k}): {e}", t.name);
                results.failed(t.name, mode, what, &e);
            }
        }
    }
}

/// `target/release/smbvault` next to `target/release/examples/smbbench`.
fn default_bin() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|p| Some(p.parent()?.parent()?.join("smbvault")))
        .unwrap_or_else(|| PathBuf::from("target/release/smbvault"))
}

/// The smbclient source file: `bytes` of stamped pattern.
fn write_source(path: &Path, bytes: u64, pat: &[u8]) -> Result<(), String> {
    use std::io::Write;
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).map_err(|e| e.to_string())?);
    let mut buf = pat.to_vec();
    let mut off = 0u64;
    while off < bytes {
        let n = (bytes - off).min(buf.len() as u64) as usize;
        buf[..8].copy_from_slice(&off.to_le_bytes());
        f.write_all(&buf[..n]).map_err(|e| e.to_string())?;
        off += n as u64;
    }
    f.flush().map_err(|e| e.to_string())
}

/// CPU model, cores, memory, kernel and Samba version, for the report.
fn machine() -> String {
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let cpu = read("/proc/cpuinfo")
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map_or(String::new(), |s| s.trim_start_matches([' ', '\t', ':']).to_string());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mem_kib: u64 = read("/proc/meminfo")
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    let kernel = read("/proc/sys/kernel/osrelease");
    let samba = std::process::Command::new("smbd")
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    format!(
        "machine: {cpu}, {cores} cores, {:.1} GiB RAM, kernel {}, {samba}",
        mem_kib as f64 / 1048576.0,
        kernel.trim()
    )
}

struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        if std::env::var_os("SMBBENCH_KEEP").is_none() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}
