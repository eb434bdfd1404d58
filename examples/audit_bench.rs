//! Audit log benchmark: what recording costs the request path, how fast the
//! writer makes events durable, how big the log gets, and how long queries
//! over a busy organization's month take.
//!
//! Run (optimized; debug builds run unoptimized HMAC/AES):
//!
//! ```text
//! cargo run --release --example audit_bench -- [RECORDS] [DIR]
//! ```
//!
//! RECORDS defaults to 1,000,000 (one organization, one JST month); DIR to a
//! temporary directory.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use smbvault::audit::testing::MemOrgKeys;
use smbvault::audit::{AuditLog, AuditSink, Event, EventKind, EventResult, LogId, Month, Query, ResultClass};
use smbvault::config::AuditConfig;
use smbvault::keys::{Key32, MasterKey};
use smbvault::types::OrgId;

const ORG: OrgId = OrgId(1);

/// A plausible mix: opens and closes dominate, some renames, deletes,
/// directory creations, denied opens and logons.
fn event(i: u64, time: SystemTime) -> Event {
    let dir = ["経理/2026", "営業/見積", "総務", "開発/src", "人事/給与"][(i % 5) as usize];
    let path = format!("{dir}/ファイル{:05}.xlsx", i % 20_000);
    let share = "共有".to_string();
    let kind = match i % 20 {
        0..=8 => EventKind::Open {
            share,
            path,
            desired_access: 0x0012_0089,
            granted_access: 0x0012_0089,
            disposition: "open".into(),
            created: false,
        },
        9..=16 => {
            EventKind::Close { share, path, bytes_read: 65536 * (i % 7), reads: i % 7, bytes_written: 0, writes: 0 }
        }
        17 => EventKind::Rename { share, from: path.clone(), to: format!("{path}.bak") },
        18 => EventKind::Delete { share, path },
        _ => EventKind::LogonSuccess {
            dialect: 0x0311,
            signing: Some("AES-128-GMAC".into()),
            encryption: Some("AES-128-GCM".into()),
        },
    };
    let result = if i % 50 == 7 { EventResult::Denied("STATUS_ACCESS_DENIED".into()) } else { EventResult::Ok };
    Event::new(time, kind)
        .org(ORG)
        .user(format!("user{:02}", i % 50))
        .client(
            format!("10.1.{}.{}:{}", (i / 250) % 250, i % 250, 50000 + i % 1000)
                .parse()
                .unwrap_or_else(|_| unreachable!()),
        )
        .session(0x1000 + i % 500)
        .result(result)
}

fn dir_size(p: &std::path::Path) -> u64 {
    let mut n = 0;
    for e in std::fs::read_dir(p).into_iter().flatten().flatten() {
        let md = e.metadata().map(|m| if m.is_dir() { dir_size(&e.path()) } else { m.len() });
        n += md.unwrap_or(0);
    }
    n
}

fn main() {
    let mut args = std::env::args().skip(1);
    let n: u64 = args.next().and_then(|a| a.replace('_', "").parse().ok()).unwrap_or(1_000_000);
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let dir = args.next().map(std::path::PathBuf::from).unwrap_or_else(|| tmp.path().to_path_buf());
    let keys = Arc::new(MemOrgKeys::new(Key32::random()));
    let mk = MasterKey::from_key(Key32::random());
    let cfg = AuditConfig::default();
    let log = AuditLog::open(&dir, keys.clone(), &mk, &cfg).unwrap_or_else(|e| panic!("{e}"));

    // Events spread evenly over November 2026 (JST).
    let month = Month::new(2026, 11);
    let start = month.start_ms();
    let span = month.next().start_ms() - start;
    let at = |i: u64| SystemTime::UNIX_EPOCH + Duration::from_millis((start + (i as i64 * span) / n as i64) as u64);

    println!("audit_bench: {n} records, one organization, {month} (JST), dir {}", dir.display());
    // 1. Cost of record() on the calling thread (events built beforehand).
    let chunk = 100_000.min(n);
    let (mut spent, mut sent) = (Duration::ZERO, 0u64);
    let t_all = Instant::now();
    while sent < n {
        let evs: Vec<Event> = (sent..(sent + chunk).min(n)).map(|i| event(i, at(i))).collect();
        let k = evs.len() as u64;
        let t = Instant::now();
        for ev in evs {
            log.record(ev);
        }
        spent += t.elapsed();
        sent += k;
    }
    let t_flush = Instant::now();
    log.flush().unwrap_or_else(|e| panic!("{e}"));
    let durable = t_all.elapsed();
    println!(
        "record():            {:>8.0} ns/event on the calling thread ({:.1} M events/s)",
        spent.as_nanos() as f64 / n as f64,
        n as f64 / spent.as_secs_f64() / 1e6
    );
    println!(
        "durable throughput:  {:>8.0} events/s ({} events durable {:.2} s after the first record; final flush waited {:.2} s; includes building events)",
        n as f64 / durable.as_secs_f64(),
        n,
        durable.as_secs_f64(),
        t_flush.elapsed().as_secs_f64()
    );
    let bytes = dir_size(&dir);
    println!(
        "log volume:          {:>8.1} MB per million operations ({} bytes, {:.0} B/record)",
        bytes as f64 * 1e6 / n as f64 / 1e6,
        bytes,
        bytes as f64 / n as f64
    );

    // 2. Queries over the month.
    let l = LogId::Org(ORG);
    let day = |d: u32, h: u32| {
        smbvault::audit::parse_time(&format!("2026-11-{d:02}T{h:02}:00")).unwrap_or_else(|e| panic!("{e}"))
    };
    let queries: Vec<(&str, Query)> = vec![
        ("one hour (index)", Query { since: Some(day(18, 14)), until: Some(day(18, 15)), ..Query::default() }),
        (
            "one day, one user",
            Query { since: Some(day(18, 0)), until: Some(day(19, 0)), user: Some("user07".into()), ..Query::default() },
        ),
        ("month, one user", Query { user: Some("user07".into()), ..Query::default() }),
        ("month, denied", Query { result: Some(ResultClass::Denied), ..Query::default() }),
        ("month, type=rename,delete", Query { kinds: vec!["rename".into(), "delete".into()], ..Query::default() }),
        (
            "month, path prefix 共有/人事/給与/ファイル0001",
            Query { path_prefix: Some("共有/人事/給与/ファイル0001".into()), ..Query::default() },
        ),
        (
            "month, user + path + denied",
            Query {
                user: Some("user07".into()),
                path_prefix: Some("営業/".into()),
                result: Some(ResultClass::Denied),
                ..Query::default()
            },
        ),
        ("month, first 100 of all", Query { limit: Some(100), ..Query::default() }),
    ];
    for (name, q) in queries {
        let t = Instant::now();
        let mut found = 0u64;
        let st = log
            .query(l, &q, &mut |_| {
                found += 1;
                true
            })
            .unwrap_or_else(|e| panic!("{e}"));
        println!(
            "query {:<45} {:>8.1} ms  {:>7} matches, {:>7} examined, {:>5} blocks read, {:>5} skipped",
            name,
            t.elapsed().as_secs_f64() * 1e3,
            found,
            st.examined,
            st.blocks_read,
            st.blocks_skipped
        );
    }
    let t = Instant::now();
    let rep = log.verify(Some(l)).unwrap_or_else(|e| panic!("{e}"));
    println!(
        "verify:              {:>8.1} ms for {} records, ok={}",
        t.elapsed().as_secs_f64() * 1e3,
        rep.logs[0].records,
        rep.ok()
    );
    log.shutdown().unwrap_or_else(|e| panic!("{e}"));
}
