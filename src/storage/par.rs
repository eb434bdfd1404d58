//! Fork-join over one storage call's chunks: a 1 MiB read or write is 16
//! independent records to seal or open, so the calling thread takes one
//! share and a small pool of helper threads the rest.
//!
//! Why not rayon: its idle workers spin on `sched_yield` before they sleep.
//! With one 1 MiB request every 1–2 ms per connection, they never got to
//! sleep: 77 % of the server's context switches during a sequential write
//! were those yields, and the switches cost about 13 % of its CPU on the
//! 2-core benchmark machine (docs/benchmarks.md, "Encrypted throughput").
//! These helpers block on a channel instead, and are woken only for work.
//!
//! Jobs must not call back into this module (a helper waiting on helpers
//! could wait forever); storage calls never nest.

use std::sync::LazyLock;

/// Fewer items than this run on the caller alone: waking a helper costs
/// more than sealing or opening a record or two.
const MIN_ITEMS: usize = 3;

/// One helper per core beyond the caller's (none on a single core), and
/// how many there are.
static POOL: LazyLock<Option<(yastl::Pool, usize)>> = LazyLock::new(|| {
    let helpers = std::thread::available_parallelism().map_or(1, |n| n.get()) - 1;
    (helpers > 0)
        .then(|| (yastl::Pool::with_config(helpers, yastl::ThreadConfig::new().prefix("storage-par")), helpers))
});

/// `items.map(f)` in order, the work spread over the caller and the helpers.
pub(super) fn map<T: Send, R: Send>(items: Vec<T>, f: impl Fn(T) -> R + Sync) -> Vec<R> {
    let Some((pool, helpers)) = POOL.as_ref().filter(|_| items.len() >= MIN_ITEMS) else {
        return items.into_iter().map(f).collect();
    };
    let shares = (helpers + 1).min(items.len());
    let mut groups = split(items, shares);
    let mut outs: Vec<Vec<R>> = (0..shares).map(|_| Vec::new()).collect();
    let f = &f;
    pool.scoped(|scope| {
        let mut pairs = groups.drain(..).zip(outs.iter_mut());
        let mine = pairs.next();
        for (group, out) in pairs {
            scope.execute(move || *out = group.into_iter().map(f).collect());
        }
        // The caller's own share, while the helpers do theirs.
        if let Some((group, out)) = mine {
            *out = group.into_iter().map(f).collect();
        }
    });
    outs.into_iter().flatten().collect()
}

/// Runs `f` on every item (spread as [`map`]); the first error in item order wins.
pub(super) fn try_for_each<T: Send, E: Send>(items: Vec<T>, f: impl Fn(T) -> Result<(), E> + Sync) -> Result<(), E> {
    map(items, f).into_iter().collect()
}

/// `items` cut into `n` contiguous groups of nearly equal size.
fn split<T>(items: Vec<T>, n: usize) -> Vec<Vec<T>> {
    let (len, mut it) = (items.len(), items.into_iter());
    (0..n).map(|i| it.by_ref().take(len / n + usize::from(i < len % n)).collect()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn map_keeps_order_and_covers_every_item() {
        for n in [0usize, 1, 2, 3, 16, 17, 129] {
            let got = map((0..n).collect(), |x| x * 3);
            assert_eq!(got, (0..n).map(|x| x * 3).collect::<Vec<_>>(), "n = {n}");
        }
    }

    #[test]
    fn borrows_mutable_pieces_of_one_buffer() {
        let mut buf = vec![0u8; 1000];
        let pieces: Vec<(usize, &mut [u8])> = buf.chunks_mut(64).enumerate().collect();
        try_for_each(pieces, |(i, p)| {
            p.fill(i as u8);
            Ok::<(), ()>(())
        })
        .expect("no error");
        assert!(buf.chunks(64).enumerate().all(|(i, c)| c.iter().all(|b| *b == i as u8)));
    }

    #[test]
    fn first_error_in_item_order_wins() {
        let r = try_for_each((0..40).collect(), |x: i32| if x == 7 || x == 30 { Err(x) } else { Ok(()) });
        assert_eq!(r, Err(7));
    }

    #[test]
    fn caller_and_helpers_share_the_work() {
        if POOL.is_none() {
            return; // one core: everything runs on the caller, by design
        }
        let me = std::thread::current().id();
        let ids = map((0..64).collect(), |_: i32| {
            std::thread::sleep(std::time::Duration::from_millis(1));
            std::thread::current().id()
        });
        assert_eq!(ids[0], me, "the caller takes the first share");
        assert!(ids.iter().any(|t| *t != me), "no helper took a share");
        // Below MIN_ITEMS nothing is handed off.
        assert!(map(vec![1, 2], |_: i32| std::thread::current().id()).iter().all(|t| *t == me));
    }

    #[test]
    fn split_is_even_and_complete() {
        let g = split((0..10).collect::<Vec<_>>(), 3);
        assert_eq!(g, vec![vec![0, 1, 2, 3], vec![4, 5, 6], vec![7, 8, 9]]);
    }
}
