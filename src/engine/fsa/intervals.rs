//! An interval tree: a treap ordered by (start, id), each node augmented
//! with the largest `last` of its subtree, so that "is there an interval
//! overlapping [qs, ql] whose value satisfies P" costs O(log n + k), k the
//! number of overlapping intervals looked at (CLRS 14.3). Byte-range locks
//! of one stream live here ([`super::locks`]): a client holding thousands
//! of locks no longer makes every lock, read and write scan all of them.
//!
//! Bounds are `i128` so that the MS-FSA 2.1.4.10 arithmetic of a lock
//! (`last = offset + length - 1`, which is `offset - 1` for a zero-length
//! lock) cannot wrap; overlap is `start <= q_last && last >= q_start`,
//! which is exactly `span_overlap` of `locks.rs` for every pair, zero-length
//! ones included. Priorities are a hash of the id, which the server
//! allocates, so a client cannot shape the tree into a list.

type Link<V> = Option<Box<Node<V>>>;

#[derive(Debug)]
struct Node<V> {
    start: i128,
    id: u64,
    last: i128,
    /// Largest `last` in this subtree.
    max_last: i128,
    prio: u64,
    value: V,
    left: Link<V>,
    right: Link<V>,
}

impl<V> Node<V> {
    fn key(&self) -> (i128, u64) {
        (self.start, self.id)
    }

    fn update(&mut self) {
        let mut m = self.last;
        if let Some(l) = &self.left {
            m = m.max(l.max_last);
        }
        if let Some(r) = &self.right {
            m = m.max(r.max_last);
        }
        self.max_last = m;
    }
}

/// Intervals `[start, last]` with a server-chosen unique id each.
#[derive(Debug)]
pub struct Intervals<V> {
    root: Link<V>,
    len: usize,
}

impl<V> Default for Intervals<V> {
    fn default() -> Self {
        Self { root: None, len: 0 }
    }
}

/// SplitMix64: a fixed, well-mixed priority for each id.
fn prio(id: u64) -> u64 {
    let mut z = id.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl<V> Intervals<V> {
    /// Number of intervals.
    pub fn len(&self) -> usize {
        self.len
    }

    /// No intervals.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Smallest start, if any.
    pub fn min_start(&self) -> Option<i128> {
        let mut n = self.root.as_deref()?;
        while let Some(l) = n.left.as_deref() {
            n = l;
        }
        Some(n.start)
    }

    /// Adds `[start, last]` under `id` (unique among the intervals held).
    pub fn insert(&mut self, start: i128, last: i128, id: u64, value: V) {
        let node = Box::new(Node { start, id, last, max_last: last, prio: prio(id), value, left: None, right: None });
        self.root = Some(insert(self.root.take(), node));
        self.len += 1;
    }

    /// Removes the interval with this start and id.
    pub fn remove(&mut self, start: i128, id: u64) -> Option<V> {
        let v = remove(&mut self.root, (start, id));
        if v.is_some() {
            self.len -= 1;
        }
        v
    }

    /// True if an interval overlapping `[q_start, q_last]` satisfies `pred`.
    pub fn any(&self, q_start: i128, q_last: i128, mut pred: impl FnMut(&V) -> bool) -> bool {
        any(&self.root, q_start, q_last, &mut pred)
    }
}

fn rotate_right<V>(mut n: Box<Node<V>>) -> Box<Node<V>> {
    let Some(mut l) = n.left.take() else { return n };
    n.left = l.right.take();
    n.update();
    l.right = Some(n);
    l.update();
    l
}

fn rotate_left<V>(mut n: Box<Node<V>>) -> Box<Node<V>> {
    let Some(mut r) = n.right.take() else { return n };
    n.right = r.left.take();
    n.update();
    r.left = Some(n);
    r.update();
    r
}

fn insert<V>(link: Link<V>, node: Box<Node<V>>) -> Box<Node<V>> {
    let Some(mut n) = link else { return node };
    if node.key() < n.key() {
        let child = insert(n.left.take(), node);
        let up = child.prio > n.prio;
        n.left = Some(child);
        n.update();
        if up { rotate_right(n) } else { n }
    } else {
        let child = insert(n.right.take(), node);
        let up = child.prio > n.prio;
        n.right = Some(child);
        n.update();
        if up { rotate_left(n) } else { n }
    }
}

/// Joins two treaps, every key of `a` below every key of `b`.
fn merge<V>(a: Link<V>, b: Link<V>) -> Link<V> {
    match (a, b) {
        (None, b) => b,
        (a, None) => a,
        (Some(mut a), Some(mut b)) => {
            if a.prio > b.prio {
                a.right = merge(a.right.take(), Some(b));
                a.update();
                Some(a)
            } else {
                b.left = merge(Some(a), b.left.take());
                b.update();
                Some(b)
            }
        }
    }
}

fn remove<V>(link: &mut Link<V>, key: (i128, u64)) -> Option<V> {
    let n = link.as_mut()?;
    let found = match key.cmp(&n.key()) {
        std::cmp::Ordering::Less => remove(&mut n.left, key),
        std::cmp::Ordering::Greater => remove(&mut n.right, key),
        std::cmp::Ordering::Equal => {
            let mut gone = link.take()?;
            *link = merge(gone.left.take(), gone.right.take());
            return Some(gone.value);
        }
    };
    n.update();
    found
}

fn any<V>(link: &Link<V>, qs: i128, ql: i128, pred: &mut impl FnMut(&V) -> bool) -> bool {
    let Some(n) = link.as_deref() else { return false };
    if n.max_last < qs {
        return false;
    }
    if any(&n.left, qs, ql, pred) {
        return true;
    }
    if n.start > ql {
        // Everything to the right starts later still.
        return false;
    }
    if n.last >= qs && pred(&n.value) {
        return true;
    }
    any(&n.right, qs, ql, pred)
}

#[cfg(test)]
mod tests {
    use super::{Intervals, Link};
    use proptest::prelude::*;

    fn depth<V>(l: &Link<V>) -> usize {
        l.as_deref().map_or(0, |n| 1 + depth(&n.left).max(depth(&n.right)))
    }

    #[test]
    fn stays_shallow_for_sorted_inserts() {
        let mut t = Intervals::default();
        for i in 0..100_000u64 {
            t.insert(i128::from(i) * 10, i128::from(i) * 10 + 4, i, ());
        }
        assert_eq!(t.len(), 100_000);
        let d = depth(&t.root);
        assert!(d < 60, "depth {d}");
        assert!(!t.any(55, 55, |_| true));
        assert!(t.any(54, 55, |_| true));
        assert_eq!(t.min_start(), Some(0));
    }

    #[test]
    fn a_long_interval_on_the_left_is_found() {
        let mut t = Intervals::default();
        t.insert(0, 1_000_000, 1, "long");
        for i in 2..1000u64 {
            t.insert(i128::from(i) * 100, i128::from(i) * 100, i, "short");
        }
        let mut seen = Vec::new();
        assert!(!t.any(999_999, 1_000_000, |v| {
            seen.push(*v);
            false
        }));
        assert_eq!(seen, vec!["long"]);
    }

    proptest! {
        /// Against a plain list: same answers and the same set after any
        /// sequence of inserts and removes.
        #[test]
        fn matches_a_list(ops in proptest::collection::vec((any::<bool>(), 0i64..40, 0i64..8, 0usize..64), 1..200)) {
            let mut t = Intervals::default();
            let mut list: Vec<(i128, i128, u64)> = Vec::new();
            let mut next = 0u64;
            for (add, s, len, pick) in ops {
                let (s, len) = (i128::from(s), i128::from(len));
                if add || list.is_empty() {
                    next += 1;
                    t.insert(s, s + len - 1, next, next);
                    list.push((s, s + len - 1, next));
                } else {
                    let (s, _, id) = list.remove(pick % list.len());
                    prop_assert_eq!(t.remove(s, id), Some(id));
                }
                prop_assert_eq!(t.len(), list.len());
                for q in 0..48i128 {
                    for ql in [q - 1, q, q + 3] {
                        let want: Vec<u64> = list.iter().filter(|x| x.0 <= ql && x.1 >= q).map(|x| x.2).collect();
                        let mut got = Vec::new();
                        t.any(q, ql, |v| { got.push(*v); false });
                        got.sort_unstable();
                        let mut w = want.clone();
                        w.sort_unstable();
                        prop_assert_eq!(got, w);
                    }
                }
                prop_assert_eq!(t.min_start(), list.iter().map(|x| x.0).min());
            }
        }
    }
}
