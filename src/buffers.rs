//! Large message buffers, kept for the next message instead of going back
//! to the allocator.
//!
//! An 8 MiB WRITE arrives in an 8 MiB frame and an 8 MiB READ leaves in an
//! 8 MiB response. glibc serves allocations of that size with `mmap` and
//! gives them back with `munmap`, so each such message used to fault in
//! 2,048 fresh pages, zeroed by the kernel. On the benchmark VM (a
//! virtio balloon with free page reporting: freed memory goes back to the
//! host, and touching it again faults on the host too) that was most of
//! the server CPU of `smbclient put` in some runs: 1.3-2.7 ms/MiB against
//! 1.0-1.3 with the memory kept (docs/benchmarks.md, "Large buffers kept").
//!
//! Bounds: at most [`MAX_KEPT`] buffers and [`MAX_BYTES`] of capacity are
//! kept for the whole process, whatever clients do; a buffer that does not
//! fit is freed as before. Only buffers of at least [`MIN_KEPT`] are kept:
//! smaller ones come from the allocator's arenas, which reuse them anyway.
//!
//! A kept buffer is handed out empty (`len` 0). Safe Rust cannot read past
//! a `Vec`'s length, so the bytes a previous message left in its capacity
//! (another tenant's, possibly) are never seen: whoever takes it sees only
//! what it writes itself.

use std::sync::Mutex;

/// Smallest capacity worth keeping.
pub const MIN_KEPT: usize = 256 << 10;
/// Most buffers kept at once.
pub const MAX_KEPT: usize = 16;
/// Most bytes of capacity kept at once.
pub const MAX_BYTES: usize = 64 << 20;

static POOL: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());

/// An empty buffer with room for at least `capacity` bytes: a kept one
/// (the smallest that is large enough) or a new one.
pub fn take(capacity: usize) -> Vec<u8> {
    if capacity >= MIN_KEPT {
        let mut pool = POOL.lock().unwrap_or_else(|e| e.into_inner());
        let best = pool
            .iter()
            .enumerate()
            .filter(|(_, b)| b.capacity() >= capacity)
            .min_by_key(|(_, b)| b.capacity())
            .map(|(i, _)| i);
        if let Some(i) = best {
            return pool.swap_remove(i);
        }
    }
    Vec::with_capacity(capacity)
}

/// Gives a buffer back. It is kept if it is large enough and fits the
/// bounds, where it may push out a smaller one; otherwise it is freed.
pub fn give(mut buf: Vec<u8>) {
    let cap = buf.capacity();
    if !(MIN_KEPT..=MAX_BYTES).contains(&cap) {
        return;
    }
    buf.clear();
    let mut pool = POOL.lock().unwrap_or_else(|e| e.into_inner());
    let mut kept: usize = pool.iter().map(Vec::capacity).sum();
    while pool.len() >= MAX_KEPT || kept + cap > MAX_BYTES {
        // Push out the smallest kept buffer if it is smaller than this one.
        let Some((i, small)) =
            pool.iter().enumerate().min_by_key(|(_, b)| b.capacity()).map(|(i, b)| (i, b.capacity()))
        else {
            break;
        };
        if small >= cap {
            return;
        }
        pool.swap_remove(i);
        kept -= small;
    }
    pool.push(buf);
}

/// Bytes of capacity kept now (tests, metrics).
pub fn kept_bytes() -> usize {
    POOL.lock().unwrap_or_else(|e| e.into_inner()).iter().map(Vec::capacity).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The pool is process-wide: the tests that fill it run one at a time.
    static SERIAL: Mutex<()> = Mutex::new(());

    fn drain() {
        POOL.lock().unwrap().clear();
    }

    #[test]
    fn a_kept_buffer_comes_back_empty_with_its_capacity() {
        let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        drain();
        let mut b = take(1 << 20);
        b.extend_from_slice(&[0xAB; 1 << 20]);
        let cap = b.capacity();
        give(b);
        let again = take(1 << 20);
        assert_eq!(again.capacity(), cap, "the kept buffer is reused");
        assert!(again.is_empty(), "its old bytes are out of reach");
        drain();
    }

    #[test]
    fn small_and_oversized_buffers_are_not_kept() {
        let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        drain();
        give(Vec::with_capacity(MIN_KEPT - 1));
        give(Vec::with_capacity(MAX_BYTES + 1));
        assert_eq!(kept_bytes(), 0);
        drain();
    }

    #[test]
    fn the_pool_stays_within_its_bounds_and_prefers_large_buffers() {
        let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        drain();
        for _ in 0..2 * MAX_KEPT {
            give(Vec::with_capacity(MIN_KEPT));
        }
        assert_eq!(POOL.lock().unwrap().len(), MAX_KEPT);
        for _ in 0..2 * (MAX_BYTES >> 23) {
            give(Vec::with_capacity(8 << 20));
        }
        assert!(kept_bytes() <= MAX_BYTES, "{} bytes kept", kept_bytes());
        assert!(POOL.lock().unwrap().len() <= MAX_KEPT);
        // The large ones pushed the small ones out.
        assert!(POOL.lock().unwrap().iter().all(|b| b.capacity() >= 8 << 20));
        // A request larger than every kept buffer gets a new one.
        assert!(take(MAX_BYTES).capacity() >= MAX_BYTES);
        drain();
    }

    #[test]
    fn take_picks_the_smallest_buffer_that_is_large_enough() {
        let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        drain();
        give(Vec::with_capacity(8 << 20));
        give(Vec::with_capacity(1 << 20));
        give(Vec::with_capacity(2 << 20));
        let b = take(1500 << 10);
        assert!(b.capacity() >= 2 << 20 && b.capacity() < 8 << 20, "got {}", b.capacity());
        drain();
    }
}
