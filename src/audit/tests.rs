//! Whole-log tests: round trips, filters, reopening, two writers on one
//! directory, shredded organizations and retention with an injected clock.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::*;
use crate::config::{AuditConfig, Retention};
use crate::keys::{Key32, MasterKey};
use crate::types::{FileTime, OrgId};
use testing::MemOrgKeys;

pub(super) const ORG: OrgId = OrgId(7);

pub(super) struct Fixture {
    pub(super) dir: tempfile::TempDir,
    pub(super) keys: Arc<MemOrgKeys>,
    pub(super) mk: MasterKey,
    pub(super) cfg: AuditConfig,
}

impl Fixture {
    pub(super) fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
            keys: Arc::new(MemOrgKeys::new(Key32::from_bytes([3; 32]))),
            mk: MasterKey::from_key(Key32::from_bytes([9; 32])),
            cfg: AuditConfig { flush_interval_ms: 50, ..AuditConfig::default() },
        }
    }
    pub(super) fn path(&self) -> &Path {
        self.dir.path()
    }
    pub(super) fn open(&self) -> Arc<AuditLog> {
        AuditLog::open(self.path(), self.keys.clone(), &self.mk, &self.cfg).unwrap()
    }
    pub(super) fn org_dir(&self) -> std::path::PathBuf {
        self.path().join("org-7")
    }
}

pub(super) fn t(s: &str) -> SystemTime {
    parse_time(s).unwrap()
}

pub(super) fn client() -> SocketAddr {
    "192.0.2.10:50123".parse().unwrap()
}

pub(super) fn open_ev(time: SystemTime, path: &str) -> Event {
    Event::new(
        time,
        EventKind::Open {
            share: "経理".into(),
            path: path.into(),
            desired_access: 0x0012_0089,
            granted_access: 0x0012_0089,
            disposition: "open".into(),
            created: false,
        },
    )
    .org(ORG)
    .user("alice")
    .client(client())
    .session(0x1234)
}

pub(super) fn all(log: &AuditLog, l: LogId, q: &Query) -> Vec<StoredEvent> {
    let mut v = Vec::new();
    log.query(l, q, &mut |e| {
        v.push(e);
        true
    })
    .unwrap();
    v
}

fn every_kind(time: SystemTime) -> Vec<Event> {
    let s = |x: &str| x.to_string();
    let kinds = vec![
        EventKind::LogonSuccess {
            dialect: 0x0311,
            signing: Some(s("AES-128-GMAC")),
            encryption: Some(s("AES-128-GCM")),
        },
        EventKind::LogonFailure { reason: s("bad password") },
        EventKind::Lockout,
        EventKind::Logoff,
        EventKind::SessionExpired,
        EventKind::Disconnect,
        EventKind::TreeConnect { share: s("経理") },
        EventKind::TreeDisconnect { share: s("経理") },
        EventKind::Open {
            share: s("経理"),
            path: s("見積/2026.xlsx"),
            desired_access: 1,
            granted_access: 0,
            disposition: s("open_if"),
            created: true,
        },
        EventKind::Close {
            share: s("経理"),
            path: s("a.txt"),
            bytes_read: 1 << 40,
            reads: 3,
            bytes_written: 0,
            writes: 0,
        },
        EventKind::Rename { share: s("経理"), from: s("a.txt"), to: s("アーカイブ/a.txt") },
        EventKind::Delete { share: s("経理"), path: s("b.txt") },
        EventKind::Mkdir { share: s("経理"), path: s("新しいフォルダー") },
        EventKind::SetAttributes { share: s("経理"), path: s("c"), attributes: 0x20 },
        EventKind::SetTimes {
            share: s("経理"),
            path: s("c"),
            creation: Some(FileTime(133_000_000_000_000_000)),
            last_access: None,
            last_write: Some(FileTime(1)),
            change: None,
        },
        EventKind::SetSecurity { share: s("経理"), path: s("c"), security_info: 4 },
        EventKind::Copy { share: s("経理"), from: s("x"), to: s("y"), bytes: 99 },
        EventKind::Admin { action: s("user.create"), target: s("bob"), detail: s("role=member") },
    ];
    kinds
        .into_iter()
        .enumerate()
        .map(|(i, k)| {
            let r = match i % 3 {
                0 => EventResult::Ok,
                1 => EventResult::Denied("STATUS_ACCESS_DENIED".into()),
                _ => EventResult::Failed("disk full".into()),
            };
            Event::new(time + Duration::from_millis(i as u64), k)
                .org(ORG)
                .user("Alice")
                .client("[2001:db8::1]:445".parse().unwrap())
                .session(i as u64)
                .result(r)
        })
        .collect()
}

#[test]
fn every_kind_round_trips() {
    let f = Fixture::new();
    let log = f.open();
    let evs = every_kind(t("2026-11-25T17:00:00.123"));
    for e in &evs {
        log.record(e.clone());
    }
    log.flush().unwrap();
    let got = all(&log, LogId::Org(ORG), &Query::default());
    assert_eq!(got.len(), evs.len());
    for (i, (g, e)) in got.iter().zip(&evs).enumerate() {
        assert_eq!(&g.event, e);
        assert_eq!(g.seq, i as u64 + 1);
    }
    assert!(log.verify(None).unwrap().ok());
    assert_eq!(log.stats().written, evs.len() as u64);
}

#[test]
fn filters_select_exactly() {
    let f = Fixture::new();
    let log = f.open();
    let base = t("2026-11-25T09:00");
    for ev in every_kind(base) {
        log.record(ev);
    }
    log.record(open_ev(base + Duration::from_secs(3600), "見積/2027.xlsx").user("bob"));
    log.record(open_ev(base + Duration::from_secs(7200), "other/見積.xlsx"));
    log.flush().unwrap();
    let l = LogId::Org(ORG);
    let n = |q: Query| all(&log, l, &q).len();
    assert_eq!(n(Query { category: Some(Category::Access), ..Query::default() }), 8);
    assert_eq!(n(Query { user: Some("BOB".into()), ..Query::default() }), 1);
    assert_eq!(n(Query { kinds: vec!["open".into()], ..Query::default() }), 3);
    assert_eq!(n(Query { result: Some(ResultClass::Denied), ..Query::default() }), 6);
    assert_eq!(n(Query { since: Some(base + Duration::from_secs(3600)), ..Query::default() }), 2);
    assert_eq!(n(Query { until: Some(base + Duration::from_secs(3600)), ..Query::default() }), 18);
    // Share-relative and share-qualified prefixes, either slash, any case.
    assert_eq!(n(Query { path_prefix: Some("見積/".into()), ..Query::default() }), 2);
    assert_eq!(n(Query { path_prefix: Some("\\経理\\見積".into()), ..Query::default() }), 2);
    assert_eq!(n(Query { path_prefix: Some("アーカイブ".into()), ..Query::default() }), 1);
    assert_eq!(n(Query { path_prefix: Some("bob".into()), ..Query::default() }), 1); // admin target
    assert_eq!(n(Query { limit: Some(5), ..Query::default() }), 5);
    assert!(log.query(l, &Query { kinds: vec!["nope".into()], ..Query::default() }, &mut |_| true).is_err());
}

#[test]
fn reopen_continues_the_chain_across_months() {
    let f = Fixture::new();
    for (i, m) in ["2026-09-10", "2026-10-10", "2026-11-10"].iter().enumerate() {
        let log = f.open();
        for j in 0..10 {
            log.record(open_ev(t(m) + Duration::from_secs(j), &format!("f{i}-{j}")));
        }
        log.shutdown().unwrap();
    }
    let log = f.open();
    let got = all(&log, LogId::Org(ORG), &Query::default());
    assert_eq!(got.iter().map(|e| e.seq).collect::<Vec<_>>(), (1..=30).collect::<Vec<_>>());
    let rep = log.verify(None).unwrap();
    assert!(rep.ok(), "{rep:?}");
    assert_eq!(rep.logs[0].segments, 3);
}

#[test]
fn two_writers_share_a_directory() {
    let f = Fixture::new();
    let a = f.open();
    let b = f.open();
    let base = t("2026-11-25T10:00");
    for i in 0..200u64 {
        let w = if i % 3 == 0 { &b } else { &a };
        w.record(open_ev(base + Duration::from_millis(i), &format!("p{i}")));
        if i % 17 == 0 {
            w.flush().unwrap();
        }
    }
    a.flush().unwrap();
    b.flush().unwrap();
    let got = all(&a, LogId::Org(ORG), &Query::default());
    assert_eq!(got.len(), 200);
    assert_eq!(got.last().map(|e| e.seq), Some(200));
    let rep = a.verify(None).unwrap();
    assert!(rep.ok(), "{rep:?}");
}

#[test]
fn shredded_org_goes_to_server_log_without_names() {
    let f = Fixture::new();
    f.keys.shred(OrgId(99));
    let log = f.open();
    let ev = Event::new(t("2026-11-25T10:00"), EventKind::Delete { share: "s".into(), path: "secret".into() })
        .org(OrgId(99));
    log.record(ev);
    log.record(
        Event::new(t("2026-11-25T10:01"), EventKind::LogonFailure { reason: "unknown user".into() }).user("mallory"),
    );
    log.flush().unwrap();
    let got = all(&log, LogId::Server, &Query::default());
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].event.org, Some(OrgId(99)));
    assert_eq!(got[0].event.kind, EventKind::Delete { share: String::new(), path: String::new() });
    assert_eq!(got[1].event.user.as_deref(), Some("mallory"));
    assert!(log.logs().unwrap() == vec![LogId::Server]);
}

#[test]
fn events_become_durable_without_flush() {
    let f = Fixture::new();
    let log = f.open();
    log.record(open_ev(t("2026-11-25T10:00"), "x"));
    // flush_interval_ms is 50: the writer syncs and writes the head by itself.
    std::thread::sleep(Duration::from_millis(400));
    let other = f.open();
    assert_eq!(all(&other, LogId::Org(ORG), &Query::default()).len(), 1);
    let head = std::fs::read(f.org_dir().join("head")).unwrap();
    assert!(head.len() >= 96);
}

fn months_left(f: &Fixture) -> Vec<String> {
    segment::list_segments(&f.org_dir()).unwrap().iter().map(|m| m.to_string()).collect()
}

/// One event per month from 2025-01 to 2026-11, purge at 2026-11-25 17:00 JST.
#[test]
fn retention_purges_exactly_the_expired_months() {
    let now = t("2026-11-25T17:00");
    for (r, first_kept) in [
        (Retention::M1, Some("2026-10")),
        (Retention::M3, Some("2026-08")),
        (Retention::M6, Some("2026-05")),
        (Retention::M12, Some("2025-11")),
        (Retention::Unlimited, None),
    ] {
        let f = Fixture::new();
        let log = f.open();
        let mut all_months = Vec::new();
        for m in 0..23u32 {
            let month = Month::new(2025, 1).0 + m;
            let month = Month(month);
            all_months.push(month.to_string());
            let at = jst::from_unix_ms(month.start_ms() + 3_600_000);
            log.record(open_ev(at, &format!("m{month}")));
            log.flush().unwrap();
        }
        log.record(Event::new(now, EventKind::Logoff)); // server log, 12m default
        log.flush().unwrap();
        let rep = log.purge(now, &|_| r, true).unwrap();
        log.flush().unwrap();
        let want: Vec<String> =
            all_months.iter().filter(|m| first_kept.is_none_or(|k| m.as_str() >= k)).cloned().collect();
        assert_eq!(months_left(&f), want, "{r:?}");
        let purged = rep.logs.iter().find(|p| p.log == LogId::Org(ORG)).map_or(0, |p| p.months.len());
        assert_eq!(purged, all_months.len() - want.len(), "{r:?}");
        let v = log.verify(None).unwrap();
        assert!(v.ok(), "{r:?}: {v:?}");
        // The remaining records and the purge event are all readable.
        let got = all(&log, LogId::Org(ORG), &Query::default());
        assert_eq!(got.len(), want.len() + usize::from(!rep.logs.is_empty()), "{r:?}");
        // Purging again removes nothing; writing after a purge still verifies.
        let again = log.purge(now, &|_| r, true).unwrap();
        assert!(again.logs.iter().all(|p| p.months.is_empty()), "{r:?}");
        log.record(open_ev(now + Duration::from_secs(1), "after"));
        log.shutdown().unwrap();
        let log = f.open();
        assert!(log.verify(None).unwrap().ok(), "{r:?}");
    }
}

#[test]
fn retention_boundary_is_the_jst_month_start() {
    let r = Retention::M1;
    assert_eq!(first_kept_month(t("2026-11-01T00:00:00.000"), r), Some(Month::new(2026, 10)));
    assert_eq!(first_kept_month(t("2026-10-31T23:59:59.999"), r), Some(Month::new(2026, 9)));
    // 2026-10-31T15:00Z is already November in Tokyo.
    assert_eq!(first_kept_month(t("2026-10-31T15:00:00Z"), r), Some(Month::new(2026, 10)));
    assert_eq!(first_kept_month(t("2027-01-15"), Retention::M12), Some(Month::new(2026, 1)));
    assert_eq!(first_kept_month(t("2027-01-15"), Retention::Unlimited), None);
}

#[test]
fn purge_of_every_month_then_new_events_chain_on() {
    let f = Fixture::new();
    let log = f.open();
    log.record(open_ev(t("2026-01-10"), "old"));
    log.flush().unwrap();
    // Idle for months: everything is expired, including the newest segment.
    let now = t("2026-06-10");
    let rep = log.purge(now, &|_| Retention::M1, true).unwrap();
    assert_eq!(rep.logs.iter().map(|p| p.months.len()).sum::<usize>(), 1);
    log.record(open_ev(now, "new"));
    log.flush().unwrap();
    let v = log.verify(None).unwrap();
    assert!(v.ok(), "{v:?}");
    let seqs: Vec<u64> = all(&log, LogId::Org(ORG), &Query::default()).iter().map(|e| e.seq).collect();
    assert_eq!(seqs, vec![2, 3]); // purge event, then "new"
}

/// Another process starts a new month (written, not yet synced) while this
/// one still has the old month cached: it must notice and chain after it.
#[test]
fn writer_notices_a_month_started_by_another_process() {
    let mut f = Fixture::new();
    f.cfg.flush_interval_ms = 1000;
    let a = f.open();
    let b = f.open();
    a.record(open_ev(t("2026-11-30T10:00"), "nov"));
    a.flush().unwrap();
    b.record(open_ev(t("2026-11-30T11:00"), "nov-b"));
    b.flush().unwrap();
    a.record(open_ev(t("2026-11-30T12:00"), "nov-a")); // a now holds the newest head
    a.flush().unwrap();
    // 1024 pending events make b's writer write a December block at once,
    // without a sync (its deadline is a second away).
    for i in 0..1024 {
        b.record(open_ev(t("2026-12-01T00:00") + Duration::from_millis(i), "dec-b"));
    }
    std::thread::sleep(Duration::from_millis(300));
    a.record(open_ev(t("2026-12-01T01:00"), "dec-a"));
    a.flush().unwrap();
    b.flush().unwrap();
    let got = all(&a, LogId::Org(ORG), &Query::default());
    assert_eq!(got.len(), 1028);
    assert_eq!(a.stats().lost + b.stats().lost, 0);
    let rep = a.verify(None).unwrap();
    assert!(rep.ok(), "{rep:?}");
}

/// A clock that jumped forward must not delete months that are not due:
/// the purge refuses until the operator confirms the time.
#[test]
fn purge_refuses_after_a_forward_clock_jump_until_confirmed() {
    let f = Fixture::new();
    let log = f.open();
    let real_now = SystemTime::now();
    log.record(open_ev(real_now, "today"));
    log.flush().unwrap();
    // Within the margin: fine (and nothing is due).
    assert!(log.purge(real_now + Duration::from_secs(86_400), &|_| Retention::M1, false).is_ok());
    // Months later by the clock, with no write since: refused, nothing deleted.
    let jumped = real_now + Duration::from_secs(200 * 86_400);
    let before = months_left(&f);
    match log.purge(jumped, &|_| Retention::M1, false) {
        Err(AuditError::ClockJump(m)) => assert!(m.contains("--clock-ok"), "{m}"),
        other => panic!("not refused: {other:?}"),
    }
    assert_eq!(months_left(&f), before);
    // Confirmed: the purge runs.
    let rep = log.purge(jumped, &|_| Retention::M1, true).unwrap();
    assert!(rep.logs.iter().any(|p| !p.months.is_empty()));
}
