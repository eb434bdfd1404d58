//! Failed logons, server-wide: slowing the guesser rather than locking out
//! the victim.
//!
//! - **Delay per source** (token bucket): each client address may fail
//!   `logon_failure_burst` times at the plain `logon_failure_delay_ms`;
//!   tokens come back at one per delay, and every failure beyond the bucket
//!   adds one delay more, up to `logon_failure_max_delay_ms`. The connection
//!   is held for the delay (`net` reads nothing more from it), so guesses
//!   sent in parallel on one connection wait in turn, and guesses from many
//!   connections of one address slow down together.
//! - **Smart lockout**: `[accounts] lockout_threshold` failures for one
//!   account from one address lock the account *for that address* (as
//!   Entra ID "smart lockout" and Windows' per-source lockout do); the
//!   owner logging on from elsewhere is not affected. Failures from
//!   addresses not (yet) locked out also count towards the account-wide
//!   lockout (`lockout_threshold_all_sources`, in the accounts database), so
//!   an account attacked from many addresses still locks.
//! - **One audit record per burst**: the first failure of an (account,
//!   address) pair is recorded at once; further failures within
//!   `logon_failure_audit_burst_secs` of the previous one are counted and
//!   recorded as one summary when the burst ends (see [`Logons::due`]).
//!
//! All state is in memory and bounded ([`MAX_ENTRIES`] per map); it is
//! forgotten on restart, like a Windows DC's soft state.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use parking_lot::Mutex;

use crate::audit::{Event, EventKind, EventResult};
use crate::types::{OrgId, UserId};

/// Entries kept per map at most (addresses, account-address pairs,
/// bursts); beyond it idle entries are pruned and new ones not tracked.
pub const MAX_ENTRIES: usize = 65_536;

/// Longest account name kept as a key or written to a log (bytes).
pub const MAX_LOGGED_NAME: usize = 256;

/// The settings in force (from `[security]` and `[accounts]`).
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    /// Plain delay after a failure.
    pub delay: Duration,
    /// Failures per address at the plain delay before it grows.
    pub burst: u32,
    /// Longest delay.
    pub max_delay: Duration,
    /// Failures of one account from one address that lock it for that address.
    pub pair_threshold: u32,
    /// Window in which those failures count.
    pub window: Duration,
    /// How long such a lock lasts.
    pub lock_for: Duration,
    /// A burst of audited failures ends after this long without one.
    pub burst_gap: Duration,
}

impl Policy {
    /// From the configuration.
    pub fn of(c: &crate::config::Config) -> Self {
        Self {
            delay: Duration::from_millis(c.security.logon_failure_delay_ms),
            burst: c.security.logon_failure_burst,
            max_delay: Duration::from_millis(c.security.logon_failure_max_delay_ms),
            pair_threshold: c.accounts.lockout_threshold,
            window: Duration::from_secs(c.accounts.lockout_window_secs),
            lock_for: Duration::from_secs(c.accounts.lockout_duration_secs),
            burst_gap: Duration::from_secs(c.security.logon_failure_audit_burst_secs),
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: SystemTime,
}

#[derive(Debug, Clone, Default)]
struct Pair {
    failures: Vec<SystemTime>,
    locked_until: Option<SystemTime>,
}

#[derive(Debug, Clone)]
struct Burst {
    /// The event of the first failure, kept for the summary.
    template: Event,
    last: SystemTime,
    more: u32,
}

/// What a failure of a known account from an address did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PairOutcome {
    /// Counted; also count it against the account as a whole.
    Counted,
    /// This failure locked the account for this address.
    LockedNow,
    /// The account was already locked for this address: not counted
    /// against the account as a whole (one address cannot lock it for all).
    AlreadyLocked,
}

#[derive(Default)]
struct Inner {
    sources: HashMap<IpAddr, Bucket>,
    pairs: HashMap<(UserId, IpAddr), Pair>,
    bursts: HashMap<(Option<OrgId>, String, IpAddr), Burst>,
}

/// The server-wide failed-logon state.
#[derive(Default)]
pub struct Logons {
    inner: Mutex<Inner>,
}

fn since(now: SystemTime, then: SystemTime) -> Duration {
    now.duration_since(then).unwrap_or_default()
}

impl Logons {
    /// A failed logon from `ip`: how long to hold the connection.
    pub fn delay(&self, p: &Policy, ip: IpAddr, now: SystemTime) -> Duration {
        let mut g = self.inner.lock();
        let cap = f64::from(p.burst.max(1));
        let per = p.delay.as_secs_f64().max(0.001);
        if g.sources.len() >= MAX_ENTRIES && !g.sources.contains_key(&ip) {
            g.sources.retain(|_, b| (b.tokens + since(now, b.at).as_secs_f64() / per) < cap);
        }
        if g.sources.len() >= MAX_ENTRIES && !g.sources.contains_key(&ip) {
            // Too many addresses tracked: the longest delay for newcomers.
            return p.max_delay;
        }
        let b = g.sources.entry(ip).or_insert(Bucket { tokens: cap, at: now });
        b.tokens = (b.tokens + since(now, b.at).as_secs_f64() / per).min(cap) - 1.0;
        b.at = now;
        let deficit = (-b.tokens).max(0.0);
        // Bounded below by the plain delay and above by the longest.
        p.delay.mul_f64(1.0 + deficit.min(1e6)).min(p.max_delay.max(p.delay))
    }

    /// True if `user` is locked out for logons from `ip`. `on_record` is
    /// asked only for a locked pair: false (the account's failures were
    /// cleared, by an administrator's unlock or a successful logon
    /// elsewhere) lifts the account's per-address locks.
    pub fn locked_for(&self, user: UserId, ip: IpAddr, now: SystemTime, on_record: impl FnOnce() -> bool) -> bool {
        let locked = {
            let g = self.inner.lock();
            g.pairs.get(&(user, ip)).and_then(|p| p.locked_until).is_some_and(|u| u > now)
        };
        if locked && !on_record() {
            self.unlock(user);
            return false;
        }
        locked
    }

    /// Counts a failure of `user` from `ip` (smart lockout).
    pub fn failed(&self, p: &Policy, user: UserId, ip: IpAddr, now: SystemTime) -> PairOutcome {
        let mut g = self.inner.lock();
        let key = (user, ip);
        if g.pairs.len() >= MAX_ENTRIES && !g.pairs.contains_key(&key) {
            g.pairs.retain(|_, e| {
                e.locked_until.is_some_and(|u| u > now) || e.failures.iter().any(|t| since(now, *t) < p.window)
            });
            if g.pairs.len() >= MAX_ENTRIES {
                return PairOutcome::Counted;
            }
        }
        let e = g.pairs.entry(key).or_default();
        if e.locked_until.is_some_and(|u| u > now) {
            return PairOutcome::AlreadyLocked;
        }
        e.locked_until = None;
        e.failures.retain(|t| since(now, *t) < p.window);
        e.failures.push(now);
        if e.failures.len() >= p.pair_threshold.max(1) as usize {
            e.failures.clear();
            e.locked_until = Some(now + p.lock_for);
            return PairOutcome::LockedNow;
        }
        PairOutcome::Counted
    }

    /// A successful logon of `user` from `ip` forgets that pair's failures.
    /// Returns true if another address is still locked out for the
    /// account: then the account's failures must stay on record (they are
    /// what keeps that lock, see [`Logons::locked_for`]).
    pub fn succeeded(&self, user: UserId, ip: IpAddr, now: SystemTime) -> bool {
        let mut g = self.inner.lock();
        g.pairs.remove(&(user, ip));
        g.pairs.iter().any(|((u, _), p)| *u == user && p.locked_until.is_some_and(|t| t > now))
    }

    /// An administrator unlocked the account: every address may try again.
    pub fn unlock(&self, user: UserId) {
        self.inner.lock().pairs.retain(|(u, _), _| *u != user);
    }

    /// After an accounts change: lifts the per-address locks of accounts
    /// whose failures are no longer on record (an administrator unlocked
    /// them). Called at most once per accounts revision.
    pub fn revalidate(&self, on_record: impl Fn(UserId) -> bool) {
        let users: Vec<UserId> = {
            let g = self.inner.lock();
            let mut v: Vec<UserId> =
                g.pairs.iter().filter(|(_, p)| p.locked_until.is_some()).map(|(k, _)| k.0).collect();
            v.sort_unstable_by_key(|u| u.0);
            v.dedup();
            v
        };
        for u in users {
            if !on_record(u) {
                self.unlock(u);
            }
        }
    }

    /// A failed-logon audit event: returned (to record now) if it starts a
    /// burst, otherwise counted into the burst's summary. Also returns the
    /// summaries of bursts that ended.
    pub fn audit(&self, p: &Policy, ev: Event, ip: IpAddr, now: SystemTime) -> Vec<Event> {
        let mut g = self.inner.lock();
        let mut out = ended(&mut g, now, p.burst_gap);
        let name = ev.user.as_deref().map(|u| clip(u, MAX_LOGGED_NAME).to_string()).unwrap_or_default();
        let key = (ev.org, name, ip);
        if let Some(b) = g.bursts.get_mut(&key) {
            b.more += 1;
            b.last = now;
            b.template.result = ev.result;
            b.template.kind = ev.kind;
            return out;
        }
        if g.bursts.len() < MAX_ENTRIES {
            g.bursts.insert(key, Burst { template: ev.clone(), last: now, more: 0 });
        }
        out.push(ev);
        out
    }

    /// Summaries of bursts that have ended by `now` (the connections' tick
    /// calls this, so a burst's summary is written within a second or so
    /// of its end).
    pub fn due(&self, p: &Policy, now: SystemTime) -> Vec<Event> {
        let Some(mut g) = self.inner.try_lock() else { return Vec::new() };
        if g.bursts.is_empty() {
            return Vec::new();
        }
        ended(&mut g, now, p.burst_gap)
    }
}

/// Removes the bursts quiet for `gap`; their summaries (for those with
/// failures after the first).
fn ended(g: &mut Inner, now: SystemTime, gap: Duration) -> Vec<Event> {
    let mut out = Vec::new();
    g.bursts.retain(|_, b| {
        if since(now, b.last) < gap {
            return true;
        }
        if b.more > 0 {
            let reason = match &b.template.kind {
                EventKind::LogonFailure { reason } => reason.clone(),
                _ => String::new(),
            };
            let mut ev = b.template.clone();
            ev.time = b.last;
            ev.kind = EventKind::LogonFailure {
                reason: format!("{} more failed logons in this burst, the last at this time ({reason})", b.more),
            };
            if matches!(ev.result, EventResult::Ok) {
                ev.result = EventResult::Denied("STATUS_LOGON_FAILURE".into());
            }
            out.push(ev);
        }
        false
    });
    out
}

/// One rule for cutting client-chosen text (printable.rs).
pub(crate) use crate::printable::clip;

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> Policy {
        Policy {
            delay: Duration::from_millis(1000),
            burst: 3,
            max_delay: Duration::from_secs(10),
            pair_threshold: 5,
            window: Duration::from_secs(600),
            lock_for: Duration::from_secs(900),
            burst_gap: Duration::from_secs(60),
        }
    }

    fn t(s: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000 + s)
    }

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 2));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 3));

    #[test]
    fn the_delay_grows_for_a_busy_source_only() {
        let l = Logons::default();
        let p = policy();
        let d: Vec<u64> = (0..6).map(|_| l.delay(&p, A, t(0)).as_millis() as u64).collect();
        assert_eq!(d, vec![1000, 1000, 1000, 2000, 3000, 4000]);
        assert_eq!(l.delay(&p, B, t(0)), Duration::from_secs(1), "another address is not slowed");
        for _ in 0..20 {
            l.delay(&p, A, t(0));
        }
        assert_eq!(l.delay(&p, A, t(0)), Duration::from_secs(10), "capped");
        // Tokens come back at one per delay.
        assert_eq!(l.delay(&p, A, t(100)), Duration::from_secs(1));
    }

    #[test]
    fn smart_lockout_is_per_source_and_lifts() {
        let l = Logons::default();
        let p = policy();
        let (alice, bob) = (UserId(1), UserId(2));
        for i in 0..4 {
            assert_eq!(l.failed(&p, alice, A, t(i)), PairOutcome::Counted);
        }
        assert_eq!(l.failed(&p, alice, A, t(4)), PairOutcome::LockedNow);
        assert!(l.locked_for(alice, A, t(5), || true));
        assert!(!l.locked_for(alice, B, t(5), || true), "the owner's own address is not locked");
        assert!(!l.locked_for(bob, A, t(5), || true));
        assert_eq!(l.failed(&p, alice, A, t(6)), PairOutcome::AlreadyLocked);
        assert!(!l.locked_for(alice, A, t(4 + 900), || true), "locks lift by themselves");
        // Failures outside the window do not add up.
        for i in 0..10 {
            assert_eq!(l.failed(&p, bob, A, t(i * 700)), PairOutcome::Counted);
        }
        assert!(l.succeeded(alice, B, t(5)), "the owner's logon from B leaves A locked");
        assert!(l.locked_for(alice, A, t(5), || true));
        assert!(!l.locked_for(alice, A, t(5), || false), "failures cleared by an administrator");
        assert!(!l.locked_for(alice, A, t(5), || true));
    }

    #[test]
    fn a_burst_is_one_record_and_one_summary() {
        let l = Logons::default();
        let p = policy();
        let ev = |s| {
            Event::new(t(s), EventKind::LogonFailure { reason: "bad password".into() })
                .user("x".repeat(40_000))
                .result(EventResult::Denied("STATUS_LOGON_FAILURE".into()))
        };
        assert_eq!(l.audit(&p, ev(0), A, t(0)).len(), 1);
        for s in 1..100 {
            assert!(l.audit(&p, ev(s), A, t(s)).is_empty());
        }
        assert!(l.due(&p, t(120)).is_empty(), "still going");
        let sum = l.due(&p, t(99 + 60));
        assert_eq!(sum.len(), 1);
        assert_eq!(sum[0].time, t(99));
        match &sum[0].kind {
            EventKind::LogonFailure { reason } => assert!(reason.starts_with("99 more failed logons"), "{reason}"),
            k => panic!("{k:?}"),
        }
        assert_eq!(l.audit(&p, ev(500), A, t(500)).len(), 1, "a new burst");
    }
}
