//! Throughput of the encrypted storage engine next to the raw speed of its
//! cipher construction, measured in the same run.
//!
//! ```text
//! cargo run --release --example storage_bench [-- --mib 1024 --dir /path --skip rand,small]
//! ```
//!
//! 1. Raw AES-256-CTR + HMAC-SHA256 (encrypt-then-MAC) over 64 KiB chunks
//!    on one core: the ceiling for one core of work.
//! 2. Sequential write of `--mib` MiB in 1 MiB writes (what Windows
//!    Explorer sends), then one flush; sequential read back.
//! 3. Random 4 KiB writes into that file (each one a read-modify-write of
//!    a 64 KiB chunk), then random 4 KiB reads.
//! 4. Sequential 4 KiB writes (each a read-modify-write of its chunk).
//! 5. 10,000 small files: create + 4 KiB write + close, no flush; then the
//!    flush, and a listing of the directory. The same loop on plain ext4
//!    files (open/write/close, no fsync) in the same run, for comparison.
//!
//! "cores" is process CPU time divided by wall time: above 1.0 means the
//! work ran on more than one core.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use aes::Aes256;
use ctr::cipher::{KeyIvInit, StreamCipher};
use hmac::{Hmac, Mac};
use rand::{Rng, RngCore, SeedableRng};
use sha2::Sha256;
use smbvault::keys::{Key32, MasterKey};
use smbvault::storage::{Content, NodeKind, OrgStore, Store, StoreOptions};
use smbvault::types::{FileTime, NodeId, OrgId};

const MIB: f64 = 1024.0 * 1024.0;

/// Process CPU time (user + system) from /proc/self/stat, in seconds.
fn cpu_time() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the ")" that ends the command name; utime and stime are
    // fields 14 and 15 of the whole line, in clock ticks (100 per second).
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let field = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    (field(11) + field(12)) as f64 / 100.0
}

/// Runs `f`, returns (result, wall seconds, cores used).
fn timed<T>(f: impl FnOnce() -> T) -> (T, f64, f64) {
    let (c0, t0) = (cpu_time(), Instant::now());
    let v = f();
    let wall = t0.elapsed().as_secs_f64();
    (v, wall, (cpu_time() - c0) / wall)
}

/// Raw encrypt-then-MAC of 64 KiB chunks on `threads` threads, MiB/s in
/// total.
fn raw_etm_speed(threads: usize) -> f64 {
    let t0 = Instant::now();
    let chunks: u64 = std::thread::scope(|sc| {
        let hs: Vec<_> = (0..threads).map(|_| sc.spawn(raw_etm_loop)).collect();
        hs.into_iter().map(|h| h.join().expect("raw loop")).sum()
    });
    chunks as f64 * 65536.0 / MIB / t0.elapsed().as_secs_f64()
}

fn raw_etm_loop() -> u64 {
    let key = [7u8; 32];
    let mut buf = vec![0x5au8; 65536];
    let t0 = Instant::now();
    let mut n = 0u64;
    while t0.elapsed() < Duration::from_millis(1500) {
        let mut iv = [0u8; 16];
        rand::rngs::OsRng.fill_bytes(&mut iv);
        ctr::Ctr128BE::<Aes256>::new(&key.into(), &iv.into()).apply_keystream(&mut buf);
        let mut m = <Hmac<Sha256> as Mac>::new_from_slice(&key).expect("any key length");
        m.update(&iv);
        m.update(&buf);
        std::hint::black_box(m.finalize());
        n += 1;
    }
    n
}

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1).cloned())
}

fn main() {
    let mib: u64 = arg("--mib").and_then(|v| v.parse().ok()).unwrap_or(1024);
    let skip = arg("--skip").unwrap_or_default();
    let run = |phase: &str| !skip.split(',').any(|s| s == phase);
    let tmp = tempfile::tempdir_in(arg("--dir").map(PathBuf::from).unwrap_or_else(std::env::temp_dir))
        .expect("temporary directory");
    println!("storage_bench: {mib} MiB, data in {}", tmp.path().display());

    let raw = if run("raw") { raw_etm_speed(1) } else { f64::NAN };
    println!("raw AES-256-CTR+HMAC-SHA256, 64 KiB chunks, 1 core: {raw:8.0} MiB/s");
    if run("raw2") {
        let raw2 = raw_etm_speed(2);
        println!("  same on 2 threads at once:        {raw2:8.0} MiB/s  ({:.2}x one core)", raw2 / raw);
    }

    let mk = MasterKey::from_key(Key32::random());
    let store = Store::open(tmp.path(), &mk, StoreOptions::default()).expect("open store");
    store.create_org(OrgId(1)).expect("create org");
    let org = store.org(OrgId(1)).expect("org");
    let root = org.create_root(FileTime(1)).expect("root");
    let node = org.create(root, "big.bin", NodeKind::File, 0x20, FileTime(1)).expect("create");
    let big = org.open_content(node, None, false).expect("open");

    // Sequential write, 1 MiB at a time.
    let mib = if run("seq") { mib } else { 0 };
    let mut block = vec![0u8; 1 << 20];
    rand::rngs::StdRng::seed_from_u64(1).fill_bytes(&mut block);
    let (_, wall, cores) = timed(|| {
        for i in 0..mib {
            block[0..8].copy_from_slice(&i.to_le_bytes());
            big.write(i << 20, &block).expect("write");
        }
    });
    let seq_w = mib as f64 / wall;
    println!(
        "sequential write, 1 MiB writes:     {seq_w:8.0} MiB/s  ({:.0}% of raw 1-core, cores {cores:.2})",
        100.0 * seq_w / raw
    );
    let (_, flush, _) = timed(|| big.flush().expect("flush"));
    println!(
        "  then flush (fdatasync + commit):  {flush:8.2} s   => {:.0} MiB/s incl. flush",
        mib as f64 / (wall + flush)
    );

    // Sequential read.
    if run("read") {
        seq_read(&big, mib, raw);
    }
    if run("rand") {
        random_io(&big, mib);
    }
    if run("seq4k") {
        seq_small_writes(&big);
    }
    drop(big);
    if run("small") {
        let plain = if run("plain") { tmp.path().join("plain") } else { PathBuf::new() };
        small_files(&org, root, &plain);
    }
    store.close().expect("close");
}

fn seq_read(big: &Content, mib: u64, raw: f64) {
    let mut block = vec![0u8; 1 << 20];
    let (_, wall, cores) = timed(|| {
        for i in 0..mib {
            assert_eq!(big.read(i << 20, &mut block).expect("read"), 1 << 20);
            assert_eq!(block[0..8], i.to_le_bytes());
        }
    });
    let seq_r = mib as f64 / wall;
    println!(
        "sequential read, 1 MiB reads:       {seq_r:8.0} MiB/s  ({:.0}% of raw 1-core, cores {cores:.2})",
        100.0 * seq_r / raw
    );
}

/// Random 4 KiB writes and reads.
fn random_io(big: &Content, mib: u64) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(2);
    let n = 20_000;
    let page = [0xA5u8; 4096];
    let (_, wall, cores) = timed(|| {
        for _ in 0..n {
            let off = rng.gen_range(0..(mib << 8)) << 12;
            big.write(off, &page).expect("write");
        }
    });
    println!(
        "random 4 KiB writes:                {:8.0} IOPS   ({:.1} MiB/s, cores {cores:.2})",
        n as f64 / wall,
        n as f64 * 4096.0 / MIB / wall
    );
    let mut page = [0u8; 4096];
    let (_, wall, _) = timed(|| {
        for _ in 0..n {
            let off = rng.gen_range(0..(mib << 8)) << 12;
            big.read(off, &mut page).expect("read");
        }
    });
    println!("random 4 KiB reads:                 {:8.0} IOPS", n as f64 / wall);
    let (_, flush, _) = timed(|| big.flush().expect("flush"));
    println!("  then flush:                       {flush:8.2} s");
}

/// 64 MiB in 4 KiB sequential writes (an application writing small buffers).
fn seq_small_writes(big: &Content) {
    let page = [0x3Cu8; 4096];
    let n = 16 * 1024;
    let (_, wall, cores) = timed(|| {
        for i in 0..n {
            big.write(i << 12, &page).expect("write");
        }
    });
    println!(
        "sequential 4 KiB writes:            {:8.0} MiB/s  ({:.0} IOPS, cores {cores:.2})",
        n as f64 * 4096.0 / MIB / wall,
        n as f64 / wall
    );
}

/// The small-file loop on plain files in `dir`: what ext4 does without us.
fn plain_small_files(dir: &std::path::Path) -> f64 {
    use std::io::Write;
    std::fs::create_dir_all(dir).expect("mkdir");
    let four_k = vec![0x42u8; 4096];
    let (_, wall, _) = timed(|| {
        for i in 0..10_000 {
            let mut f = std::fs::File::create(dir.join(format!("ファイル-{i:05}.txt"))).expect("create");
            f.write_all(&four_k).expect("write");
        }
    });
    10_000.0 / wall
}

/// 10,000 × (create + 4 KiB write + close), then flush and list.
fn small_files(org: &OrgStore, root: NodeId, plain_dir: &std::path::Path) {
    let dir = org.create(root, "small", NodeKind::Directory, 0x10, FileTime(1)).expect("mkdir");
    let four_k = vec![0x42u8; 4096];
    let files = 10_000;
    let (_, wall, cores) = timed(|| {
        for i in 0..files {
            let f =
                org.create(dir, &format!("ファイル-{i:05}.txt"), NodeKind::File, 0x20, FileTime(2)).expect("create");
            org.open_content(f, None, false).expect("open").write(0, &four_k).expect("write");
        }
    });
    println!("small files (create+4 KiB+close):   {:8.0} files/s  (cores {cores:.2})", files as f64 / wall);
    let (_, flush, _) = timed(|| org.flush().expect("flush"));
    println!(
        "  then flush:                       {flush:8.3} s   => {:.0} files/s incl. flush",
        files as f64 / (wall + flush)
    );
    let (list, wall, _) = timed(|| org.list(dir).expect("list"));
    println!("list 10,000-entry directory:        {:8.1} ms ({} entries)", wall * 1000.0, list.len());
    if !plain_dir.as_os_str().is_empty() {
        println!("same loop on plain files (no crypto, no fsync): {:6.0} files/s", plain_small_files(plain_dir));
    }
}
