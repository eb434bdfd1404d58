//! Invariants of the oplock/lease state under random traffic.

use super::harness::*;
use crate::engine::fsa::OpenId;
use crate::engine::fsa::access::*;
use crate::engine::fsa::lease::*;
use crate::engine::fsa::sharing::FILE_SHARE_READ;
use crate::engine::fsa::stream::*;

// ---- model-free invariants under random traffic ----------------------------

use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Op {
    Open { access: u8, request: u8, overwrite: bool, share_all: bool },
    Close(usize),
    AckAll,
    Write(usize),
    Timeout,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u8..3, 0u8..10, any::<bool>(), any::<bool>())
            .prop_map(|(access, request, overwrite, share_all)| Op::Open { access, request, overwrite, share_all }),
        2 => (0usize..8).prop_map(Op::Close),
        2 => Just(Op::AckAll),
        1 => (0usize..8).prop_map(Op::Write),
        1 => Just(Op::Timeout),
    ]
}

fn caching_of(g: CacheGrant) -> Caching {
    match g {
        CacheGrant::None => Caching::NONE,
        CacheGrant::Oplock(l) => Caching::from_oplock(l),
        CacheGrant::Lease(l) => l.state,
    }
}

proptest! {
    /// Write caching is exclusive: a holder with W that is not breaking
    /// shares the stream only with stat opens and opens of its own lease.
    /// Every parked CREATE is released once everything is closed.
    #[test]
    fn write_caching_is_exclusive(ops in proptest::collection::vec(op(), 1..60)) {
        let mut t = T::new();
        let mut open: Vec<(OpenId, u32, Option<LeaseId>)> = Vec::new();
        let mut parked: Vec<(OpenId, Req)> = Vec::new();
        let mut pending_breaks: Vec<Break> = Vec::new();
        for op in ops {
            let mut retry = Vec::new();
            match op {
                Op::Open { access, request, overwrite, share_all } => {
                    let access = [STAT, FILE_READ_DATA, FILE_ALL_ACCESS][usize::from(access)];
                    let request = match request {
                        0 => CacheRequest::None,
                        1 => oplock(level::II),
                        2 => oplock(level::EXCLUSIVE),
                        3 => oplock(level::BATCH),
                        n => lease(n % 3, ["R", "RH", "RW", "RWH"][usize::from(n % 4)]),
                    };
                    let r = Req { access, overwrite, share: if share_all { SHARE_ALL } else { FILE_SHARE_READ }, ..req(request) };
                    let (id, o) = t.open(r);
                    pending_breaks.extend(o.breaks);
                    match o.result {
                        OpenResult::Granted(_) => {
                            let l = match request { CacheRequest::Lease(l) => Some(l.id), _ => None };
                            open.push((id, access, l));
                        }
                        OpenResult::Wait => parked.push((id, r)),
                        OpenResult::Failed(_) => {}
                    }
                }
                Op::Close(i) => {
                    if i < open.len() {
                        let (id, _, _) = open.remove(i);
                        retry.extend(t.s.close(id).retry);
                    }
                }
                Op::AckAll => {
                    for b in std::mem::take(&mut pending_breaks) {
                        if let Break::Oplock { open: o, level, ack_required: true } = b
                            && let Ok((_, r)) = t.s.oplock_ack(o, level)
                        {
                            retry.extend(r);
                        }
                        if let Break::Lease { id, to, ack_required: true, .. } = b
                            && let Ok(a) = t.s.lease_ack(&id, to, t.now)
                        {
                            retry.extend(a.retry);
                            pending_breaks.extend(a.breaks);
                        }
                    }
                }
                Op::Write(i) => {
                    if let Some(&(id, access, _)) = open.get(i)
                        && access & FILE_WRITE_DATA != 0
                    {
                        pending_breaks.extend(t.s.before_write(id, 0, 1, t.now).expect("no locks"));
                    }
                }
                Op::Timeout => {
                    t.now += BREAK_TIMEOUT;
                    retry.extend(t.s.on_timer(t.now));
                }
            }
            for tok in retry {
                if let Some(pos) = parked.iter().position(|p| p.0 .0 == tok) {
                    let (id, r) = parked.remove(pos);
                    let o = t.attempt(id, &r, false);
                    pending_breaks.extend(o.breaks);
                    match o.result {
                        OpenResult::Granted(_) => {
                            let l = match r.request { CacheRequest::Lease(l) => Some(l.id), _ => None };
                            open.push((id, r.access, l));
                        }
                        OpenResult::Wait => parked.push((id, r)),
                        OpenResult::Failed(_) => {}
                    }
                }
            }
            for &(id, _, lease_id) in &open {
                let c = caching_of(t.s.cache.grant_of(id));
                if c.contains(Caching::W) && !t.s.cache.is_breaking(id) {
                    for &(other, access, l2) in &open {
                        let same = other == id || (lease_id.is_some() && l2 == lease_id);
                        prop_assert!(same || crate::engine::fsa::oplock::is_oplock_stat_open(access),
                            "{id:?} caches writes next to {other:?}");
                    }
                }
            }
        }
        // Once every granted open is closed nothing is left to wait for.
        for (id, _, _) in open {
            t.s.close(id);
        }
        for (pid, r) in parked {
            let o = t.attempt(pid, &r, false);
            prop_assert!(o.result != OpenResult::Wait, "{pid:?} still waits");
            t.s.close(pid);
        }
        prop_assert!(t.s.is_idle());
    }
}

/// Rough cost of an open decision on a busy stream (run with `--ignored
/// --nocapture`).
#[test]
#[ignore]
fn timing() {
    let mut t = T::new();
    for i in 0..100u8 {
        t.open(req(lease(i, "R")));
    }
    let start = std::time::Instant::now();
    let n = 10_000u32;
    for _ in 0..n {
        let (id, o) = t.open(req(CacheRequest::None));
        assert!(matches!(o.result, OpenResult::Granted(_)));
        t.s.close(id);
    }
    println!("100 leases held: open+close {:?} per round", start.elapsed() / n);
}
