//! `resolve_logon` latency with 1 organization vs 100 organizations x 100
//! users: it must not grow with the number of tenants (every lookup is one
//! indexed query plus one HMAC + AES-CTR unseal).
//!
//! Run: `cargo run --release --example accounts_bench`. The database lives
//! on /dev/shm when available so that creating 10,000 users (one fsync'd
//! transaction each) does not dominate; lookups hit the page cache either way.

use std::time::{Duration, Instant};

use rand::Rng;
use smbvault::accounts::{Accounts, HashCost, Role, TestProvisioner};
use smbvault::config::AccountsConfig;
use smbvault::keys::{Key32, MasterKey};

/// Builds the (domain, user) pair a client would send for org `o`, user `u`.
type NameForm = dyn Fn(usize, usize) -> (String, String);

const USERS_PER_ORG: usize = 100;
const LOOKUPS: usize = 5_000;
const PW: &str = "Bench-Passw0rd-1";

fn build(orgs: usize) -> (tempfile::TempDir, Accounts) {
    let base = if std::path::Path::new("/dev/shm").is_dir() { "/dev/shm" } else { "/tmp" };
    let dir = tempfile::tempdir_in(base).expect("temp dir");
    let mk = MasterKey::from_key(Key32::random());
    let acc = Accounts::open(&dir.path().join("accounts.db"), &mk, &AccountsConfig::default())
        .expect("open")
        .with_hash_cost(HashCost::InsecureFast);
    let prov = TestProvisioner::new();
    let t = Instant::now();
    for o in 0..orgs {
        let org = acc.create_org(&format!("ORG{o}"), &prov).expect("org");
        for u in 0..USERS_PER_ORG {
            acc.add_user(org.id, &format!("u{o}x{u}"), Role::Member, PW).expect("user");
        }
    }
    eprintln!("  built {orgs} org(s) x {USERS_PER_ORG} users in {:.1?}", t.elapsed());
    (dir, acc)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(i).copied().unwrap_or_default()
}

/// Times `LOOKUPS` calls of `f` on random (org, user) pairs; returns (median, p99).
fn measure(orgs: usize, mut f: impl FnMut(usize, usize)) -> (Duration, Duration) {
    let mut rng = rand::thread_rng();
    for _ in 0..200 {
        f(rng.gen_range(0..orgs), rng.gen_range(0..USERS_PER_ORG)); // warm up caches
    }
    let mut times: Vec<Duration> = (0..LOOKUPS)
        .map(|_| {
            let (o, u) = (rng.gen_range(0..orgs), rng.gen_range(0..USERS_PER_ORG));
            let t = Instant::now();
            f(o, u);
            t.elapsed()
        })
        .collect();
    times.sort();
    (percentile(&times, 0.5), percentile(&times, 0.99))
}

fn report(orgs: usize) {
    println!("{orgs} org(s) x {USERS_PER_ORG} users = {} users", orgs * USERS_PER_ORG);
    let (_dir, acc) = build(orgs);
    let forms: [(&str, &NameForm); 4] = [
        ("ORG\\user", &|o, u| (format!("org{o}"), format!("U{o}X{u}"))),
        ("user@org (domain \"\")", &|o, u| (String::new(), format!("u{o}x{u}@ORG{o}"))),
        ("WORKGROUP\\user fallback", &|o, u| ("WORKGROUP".into(), format!("u{o}x{u}"))),
        ("unknown user", &|o, _| (format!("ORG{o}"), "nobody".into())),
    ];
    for (name, form) in forms {
        let (med, p99) = measure(orgs, |o, u| {
            let (d, n) = form(o, u);
            let c = acc.resolve_logon(&d, &n).expect("resolve");
            assert_eq!(c.is_some(), name != "unknown user", "{name} {d}\\{n}");
        });
        println!("  resolve_logon {name:<26} median {med:>9.1?}  p99 {p99:>9.1?}");
    }
    let (med, p99) = measure(orgs, |_, _| {
        acc.revision().expect("revision");
    });
    println!("  revision()                              median {med:>9.1?}  p99 {p99:>9.1?}");
}

fn main() {
    report(1);
    report(100);
}
