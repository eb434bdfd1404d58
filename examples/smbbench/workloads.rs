//! The workloads. Each runs against one server in one mode (signed or
//! sealed) and returns `(metric, value)` samples; see docs/benchmarks.md.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::client::transfer::{self, Pipeline};
use crate::client::{self, CreateSpec, Error, Tree};

use crate::mode::Mode;
use crate::report::Metric;
use crate::servers::{Target, memory};

/// Sizes and counts of one benchmark run.
#[derive(Debug, Clone)]
pub struct Sizes {
    /// Sequential file size.
    pub seq_bytes: u64,
    /// Requests in flight for the multi-credit client.
    pub depth: usize,
    /// Small files created, listed, stat'ed, read and deleted.
    pub small_files: usize,
    /// Size of each small file.
    pub small_size: usize,
    /// Concurrent clients of the mixed workload.
    pub clients: usize,
    /// How long the mixed workload runs.
    pub mixed_time: Duration,
    /// Each mixed client's file.
    pub mixed_file: u64,
    /// Size of each mixed read or write.
    pub mixed_io: u32,
    /// Idle connections for the memory measurement.
    pub idle: usize,
}

pub type Samples = Vec<(Metric, f64)>;

fn mib_per_s(bytes: u64, d: Duration) -> f64 {
    bytes as f64 / (1024.0 * 1024.0) / d.as_secs_f64()
}

/// Server CPU milliseconds per MiB moved.
fn ms_per_mib(cpu_ms: f64, bytes: u64) -> f64 {
    cpu_ms / (bytes as f64 / (1024.0 * 1024.0)).max(1e-9)
}

/// Wall time and server CPU (ms, `servers::cpu_ms`) of one timed phase.
/// CPU is sampled just outside the timed interval, while the workload's
/// connection is still open (Samba's per-connection smbd is alive then).
struct Phase {
    target: Target,
    cpu0: f64,
    start: Instant,
}

impl Phase {
    fn start(t: &Target) -> Self {
        let cpu0 = t.cpu_ms();
        Self { target: t.clone(), cpu0, start: Instant::now() }
    }

    fn end(self) -> (Duration, f64) {
        let took = self.start.elapsed();
        (took, self.target.cpu_ms() - self.cpu0)
    }
}

/// Logs on and connects the share for a mode; fails unless the session
/// negotiated exactly the mode's cipher and seals (so a server that picks
/// another cipher cannot pass its numbers off as this mode's).
pub async fn tree(t: &Target, mode: Mode) -> Result<Tree, Error> {
    let s = client::connect(&t.config(mode)).await?;
    let tree = s.tree_connect(t.share_for(mode)).await?;
    if let Some(want) = mode.cipher()
        && (tree.session_info().cipher != Some(want) || !tree.connection().encrypting())
    {
        return Err(Error::Protocol("the session did not negotiate and seal with the mode's cipher"));
    }
    Ok(tree)
}

/// Deterministic incompressible content: a 1 MiB xorshift block, with the
/// chunk's offset stamped in so no two chunks are equal.
pub fn pattern() -> Vec<u8> {
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    (0..(1 << 20) / 8)
        .flat_map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x.to_le_bytes()
        })
        .collect()
}

fn fill(pat: &[u8], offset: u64, buf: &mut [u8]) {
    let n = buf.len().min(pat.len());
    buf[..n].copy_from_slice(&pat[..n]);
    let stamp = offset.to_le_bytes();
    let k = buf.len().min(8);
    buf[..k].copy_from_slice(&stamp[..k]);
}

/// smbclient put and get of `src` (SMB 3.1.1, signing or sealing forced,
/// offering only the mode's cipher).
pub fn seq_smbclient(t: &Target, mode: Mode, src: &Path, bytes: u64) -> Result<Samples, String> {
    // smbclient is not a descendant of the server: only the server's CPU
    // counts, including its per-connection smbd reaped after the command.
    let run = |cmds: String| -> Result<(Duration, f64, f64), String> {
        let client0 = children_cpu_ms()?;
        let phase = Phase::start(t);
        let out = Command::new("smbclient")
            .arg(format!("//127.0.0.1/{}", t.share_for(mode)))
            .args(["-p", &t.addr.port().to_string(), "-U", &t.smbclient_user(), "-m", "SMB3_11"])
            .args(mode.smbclient_args())
            .args(["-c", &cmds])
            .output()
            .map_err(|e| format!("smbclient: {e}"))?;
        let (took, cpu) = phase.end();
        let client = children_cpu_ms()? - client0;
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        if !out.status.success() || text.contains("NT_STATUS_") {
            return Err(format!("smbclient {cmds}: {text}"));
        }
        Ok((took, cpu, client))
    };
    let (put, put_cpu, put_client) = run(format!("put {} seq-smbclient.bin", src.display()))?;
    let (get, get_cpu, get_client) = run("get seq-smbclient.bin /dev/null".into())?;
    run("del seq-smbclient.bin".into())?;
    Ok(vec![
        (Metric::SeqWriteSmbclient, mib_per_s(bytes, put)),
        (Metric::SeqWriteSmbclientCpu, ms_per_mib(put_cpu, bytes)),
        (Metric::SeqWriteSmbclientBusy, busy(put_client, put)),
        (Metric::SeqReadSmbclient, mib_per_s(bytes, get)),
        (Metric::SeqReadSmbclientCpu, ms_per_mib(get_cpu, bytes)),
        (Metric::SeqReadSmbclientBusy, busy(get_client, get)),
    ])
}

/// CPU time (user + system) of this process's children that have been
/// waited for, in ms (`cutime` + `cstime` of /proc/self/stat, proc(5)):
/// around a `Command::output()` it is that command's own CPU. The servers
/// are waited for only when they stop, and Samba's per-connection smbd
/// is not our child.
fn children_cpu_ms() -> Result<f64, String> {
    let stat = std::fs::read_to_string("/proc/self/stat").map_err(|e| format!("/proc/self/stat: {e}"))?;
    // Fields after the command name, which may hold spaces, in parentheses.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).ok_or("/proc/self/stat: no command name")?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    // cutime and cstime are fields 16 and 17, the 14th and 15th after ')'.
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).ok_or("/proc/self/stat: bad cutime");
    // USER_HZ, the unit of these fields, is 100 on every Linux ABI.
    Ok((ticks(13)? + ticks(14)?) * 10.0)
}

/// How busy the client kept its core: its CPU time over the wall time, in %.
fn busy(cpu_ms: f64, took: Duration) -> f64 {
    100.0 * cpu_ms / (took.as_secs_f64() * 1000.0).max(f64::MIN_POSITIVE)
}

/// Our client: write then read `bytes` with `depth` 1 MiB requests in flight.
pub async fn seq_client(t: &Target, mode: Mode, z: &Sizes, pat: &[u8]) -> Result<Samples, Error> {
    let tree = tree(t, mode).await?;
    let i = tree.session_info();
    eprintln!(
        "  {}: dialect {}, signing {:?}, cipher {:?}, sealed {}, max read/write {}/{} KiB",
        t.name,
        i.dialect.name(),
        i.signing,
        i.cipher,
        tree.connection().encrypting(),
        i.max_read >> 10,
        i.max_write >> 10
    );
    let p = Pipeline { chunk: 1 << 20, depth: z.depth };
    let f = tree.create("seq-client.bin", &CreateSpec::overwrite()).await?;
    let phase = Phase::start(t);
    let wrote = transfer::write_all(&tree, f.file_id, z.seq_bytes, p, |off, buf| fill(pat, off, buf)).await?;
    let (write_time, write_cpu) = phase.end();
    tree.close(f.file_id).await?;
    let f = tree.create("seq-client.bin", &CreateSpec::read()).await?;
    let mut bad = false;
    let phase = Phase::start(t);
    let read = transfer::read_all(&tree, f.file_id, z.seq_bytes, p, |off, data| {
        // Cheap integrity check: every chunk starts with its offset stamp.
        bad |= data.get(..8).is_some_and(|s| s != off.to_le_bytes());
    })
    .await?;
    let (read_time, read_cpu) = phase.end();
    tree.close(f.file_id).await?;
    tree.delete("seq-client.bin").await?;
    if wrote != z.seq_bytes || read != z.seq_bytes || bad {
        return Err(Error::Protocol("sequential transfer came back wrong"));
    }
    Ok(vec![
        (Metric::SeqWriteClient, mib_per_s(wrote, write_time)),
        (Metric::SeqWriteClientCpu, ms_per_mib(write_cpu, wrote)),
        (Metric::SeqReadClient, mib_per_s(read, read_time)),
        (Metric::SeqReadClientCpu, ms_per_mib(read_cpu, read)),
    ])
}

/// Small files, then metadata on the same directory: create+write+close,
/// list, stat (compound), open+read+close, delete (compound). One client,
/// one request at a time: each phase measures server latency per operation.
pub async fn small_files(t: &Target, mode: Mode, z: &Sizes, pat: &[u8]) -> Result<Samples, Error> {
    let tree = tree(t, mode).await?;
    let dir = format!("small-{}", std::process::id());
    tree.mkdir(&dir).await?;
    let names: Vec<String> = (0..z.small_files).map(|i| format!("{dir}\\f{i:06}.dat")).collect();
    let data = &pat[..z.small_size.min(pat.len())];
    let mut out = Vec::new();
    let n = names.len() as f64;

    let phase = Phase::start(t);
    for name in &names {
        let f = tree.create(name, &CreateSpec::overwrite()).await?;
        tree.write(f.file_id, 0, data).await?;
        tree.close(f.file_id).await?;
    }
    out.extend(per_op(phase, n, Metric::SmallCreate, Metric::SmallCreateCpu));

    const LISTINGS: usize = 3;
    let start = Instant::now();
    for _ in 0..LISTINGS {
        let entries = tree.list(&dir).await?;
        if entries.len() != names.len() + 2 {
            return Err(Error::Protocol("directory listing is missing entries"));
        }
    }
    out.push((Metric::DirList, n * LISTINGS as f64 / start.elapsed().as_secs_f64()));

    let phase = Phase::start(t);
    for name in &names {
        let info = tree.stat(name).await?;
        if info.standard.end_of_file != data.len() as u64 {
            return Err(Error::Protocol("stat reports the wrong size"));
        }
    }
    out.extend(per_op(phase, n, Metric::Stat, Metric::StatCpu));

    let phase = Phase::start(t);
    for name in &names {
        let f = tree.create(name, &CreateSpec::read()).await?;
        let r = tree.read(f.file_id, 0, data.len() as u32).await?;
        if client::read_data(&r)? != data {
            return Err(Error::Protocol("small file came back wrong"));
        }
        tree.close(f.file_id).await?;
    }
    out.extend(per_op(phase, n, Metric::SmallRead, Metric::SmallReadCpu));

    let phase = Phase::start(t);
    for name in &names {
        tree.delete(name).await?;
    }
    out.extend(per_op(phase, n, Metric::SmallDelete, Metric::SmallDeleteCpu));
    tree.delete(&dir).await?;
    Ok(out)
}

/// Operations per second and server CPU µs per operation of a phase of `n`
/// operations. (The directory listing is too short for 10 ms CPU ticks.)
fn per_op(phase: Phase, n: f64, rate: Metric, cpu: Metric) -> [(Metric, f64); 2] {
    let (took, cpu_ms) = phase.end();
    [(rate, n / took.as_secs_f64()), (cpu, cpu_ms * 1000.0 / n.max(1.0))]
}

/// `clients` connections, each reading and writing `mixed_io` blocks at
/// random aligned offsets of its own file (half reads, half writes, one
/// request at a time) for `mixed_time`.
pub async fn mixed(t: &Target, mode: Mode, z: &Sizes, pat: &[u8]) -> Result<Samples, Error> {
    let pat = Arc::new(pat.to_vec());
    let mut setup = Vec::new();
    for k in 0..z.clients {
        let tree = tree(t, mode).await?;
        let name = format!("mixed-{k}.bin");
        let f = tree.create(&name, &CreateSpec::overwrite()).await?;
        let p = Pipeline { chunk: 1 << 20, depth: 4 };
        transfer::write_all(&tree, f.file_id, z.mixed_file, p, |o, b| fill(&pat, o, b)).await?;
        setup.push((tree, f.file_id, name));
    }
    let phase = Phase::start(t);
    let start = Instant::now();
    let deadline = start + z.mixed_time;
    let mut tasks = tokio::task::JoinSet::new();
    for (k, (tree, fid, _)) in setup.iter().enumerate() {
        let (tree, fid, pat, z) = (tree.clone(), *fid, pat.clone(), z.clone());
        tasks.spawn(async move {
            let blocks = (z.mixed_file / u64::from(z.mixed_io)).max(1);
            let mut x = 0x2545_F491_4F6C_DD1Du64 ^ (k as u64 + 1).wrapping_mul(0x9E37_79B9);
            let (mut done, mut bytes) = (Vec::new(), 0u64);
            while Instant::now() < deadline {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let off = (x % blocks) * u64::from(z.mixed_io);
                let t0 = Instant::now();
                let is_read = x & (1 << 40) == 0;
                if is_read {
                    let r = tree.read(fid, off, z.mixed_io).await?;
                    bytes += client::read_data(&r)?.len() as u64;
                } else {
                    bytes += u64::from(tree.write(fid, off, &pat[..z.mixed_io as usize]).await?);
                }
                done.push(Sample {
                    start: (t0 - start).as_secs_f64() * 1e3,
                    latency: t0.elapsed().as_secs_f64() * 1e3,
                    is_read,
                });
            }
            Ok::<_, Error>((done, bytes))
        });
    }
    let (mut all, mut bytes) = (Vec::new(), 0u64);
    while let Some(r) = tasks.join_next().await {
        let (d, b) = r.map_err(|_| Error::Protocol("client task panicked"))??;
        all.extend(d);
        bytes += b;
    }
    // SMBBENCH_TRACE=file writes "start latency" per request, for looking
    // at when the slow ones happened.
    if let Some(path) = std::env::var_os("SMBBENCH_TRACE") {
        let text: String = all.iter().map(|r| format!("{:.3} {:.3}\n", r.start, r.latency)).collect();
        let _ = std::fs::write(path, text);
    }
    let stalls = stalls(&all, 2.0);
    let mut lat: Vec<f64> = all.iter().map(|r| r.latency).collect();
    let (mut rl, mut wl): (Vec<f64>, Vec<f64>) = (Vec::new(), Vec::new());
    for r in &all {
        if r.is_read { rl.push(r.latency) } else { wl.push(r.latency) }
    }
    if std::env::var_os("SMBBENCH_SPLIT").is_some() {
        rl.sort_by(f64::total_cmp);
        wl.sort_by(f64::total_cmp);
        let p = crate::report::percentile;
        eprintln!(
            "SPLIT reads n={} p50={:.2} p90={:.2} p99={:.2} max={:.1} | writes n={} p50={:.2} p90={:.2} p99={:.2} max={:.1}",
            rl.len(),
            p(&rl, 0.5),
            p(&rl, 0.9),
            p(&rl, 0.99),
            rl.last().copied().unwrap_or(0.0),
            wl.len(),
            p(&wl, 0.5),
            p(&wl, 0.9),
            p(&wl, 0.99),
            wl.last().copied().unwrap_or(0.0)
        );
    }
    let elapsed = start.elapsed();
    let (_, cpu_ms) = phase.end();
    let requests = lat.len().max(1) as f64;
    for (tree, fid, name) in &setup {
        tree.close(*fid).await?;
        tree.delete(name).await?;
    }
    lat.sort_by(f64::total_cmp);
    Ok(vec![
        (Metric::MixedThroughput, mib_per_s(bytes, elapsed)),
        (Metric::MixedP50, crate::report::percentile(&lat, 0.50)),
        (Metric::MixedP99, crate::report::percentile(&lat, 0.99)),
        (Metric::MixedCpu, cpu_ms * 1000.0 / requests),
        (Metric::MixedStalls, stalls as f64 / elapsed.as_secs_f64()),
    ])
}

/// One request of the mixed workload (ms from the start of the timed part).
struct Sample {
    start: f64,
    latency: f64,
    is_read: bool,
}

/// How many times `min_ms` or more passed between two consecutive
/// completions of any client's request.
fn stalls(all: &[Sample], min_ms: f64) -> usize {
    let mut done: Vec<f64> = all.iter().map(|r| r.start + r.latency).collect();
    done.sort_by(f64::total_cmp);
    done.windows(2).filter(|w| w[1] - w[0] >= min_ms).count()
}

/// Server memory with `idle` authenticated, tree-connected, idle
/// connections, per connection (RSS and PSS over the server's processes).
pub async fn idle_memory(t: &Target, z: &Sizes) -> Result<Samples, Error> {
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = memory(t.pid);
    let mut held = Vec::with_capacity(z.idle);
    let mut batch = tokio::task::JoinSet::new();
    for _ in 0..z.idle {
        let t = t.clone();
        batch.spawn(async move {
            let s = client::connect(&t.config(Mode::Sign)).await?;
            let tree = s.tree_connect(t.share).await?;
            Ok::<_, Error>((s, tree))
        });
        // Log on 16 at a time: Samba forks a process per connection.
        if batch.len() >= 16
            && let Some(r) = batch.join_next().await
        {
            held.push(r.map_err(|_| Error::Protocol("logon task panicked"))??);
        }
    }
    while let Some(r) = batch.join_next().await {
        held.push(r.map_err(|_| Error::Protocol("logon task panicked"))??);
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = memory(t.pid);
    eprintln!(
        "  {}: {} idle connections: RSS {} -> {} KiB, PSS {} -> {} KiB, processes {} -> {}",
        t.name,
        held.len(),
        before.rss_kib,
        after.rss_kib,
        before.pss_kib,
        after.pss_kib,
        before.processes,
        after.processes
    );
    let n = held.len().max(1) as f64;
    drop(held);
    Ok(vec![
        (Metric::IdleRss, after.rss_kib.saturating_sub(before.rss_kib) as f64 / n),
        (Metric::IdlePss, after.pss_kib.saturating_sub(before.pss_kib) as f64 / n),
        (Metric::IdleTotalRss, after.rss_kib as f64 / 1024.0),
    ])
}
