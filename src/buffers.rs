//! Large buffers, kept for the next use instead of going back to the
//! allocator.
//!
//! An 8 MiB WRITE arrives in an 8 MiB frame and an 8 MiB READ leaves in an
//! 8 MiB response. glibc serves allocations of that size with `mmap` and
//! gives them back with `munmap`, so each such message used to fault in
//! 2,048 fresh pages, zeroed by the kernel; on the benchmark VM (a virtio
//! balloon with free page reporting: freed memory goes back to the host,
//! and touching it again faults on the host too) each costs more than the
//! message's cryptography. Keeping frames and READ responses cut the
//! server's page faults over an `smbclient put` + `get` of 512 MiB from
//! 21,122 to 7,241 (docs/benchmarks.md, "Large buffers kept").
//!
//! Bounds: at most [`MAX_KEPT`] message buffers and [`MAX_BYTES`] of
//! capacity are kept for the whole process, whatever clients do; a buffer
//! that does not fit is freed as before. Only buffers of at least
//! [`MIN_KEPT`] are kept: smaller ones come from the allocator's arenas,
//! which reuse them anyway.
//!
//! A kept message buffer is handed out empty (`len` 0). Safe Rust cannot
//! read past a `Vec`'s length, so the bytes a previous message left in its
//! capacity (another tenant's, possibly) are never seen: whoever takes it
//! sees only what it writes itself.

use std::sync::Mutex;

/// A bounded set of kept buffers. Two exist: the message buffers below,
/// handed out empty, and the storage's record batches
/// (`storage/chunks.rs`), handed out with their old length.
pub struct Pool {
    bufs: Mutex<Vec<Vec<u8>>>,
    /// Smallest capacity worth keeping.
    min_kept: usize,
    /// Most buffers kept at once.
    max_kept: usize,
    /// Most bytes of capacity kept at once.
    max_bytes: usize,
    /// Keep a buffer's length (and the bytes in it) for the next user,
    /// who then need not initialize them again. Only for a pool whose
    /// bytes any later user may see (ciphertext); otherwise buffers are
    /// emptied when given back.
    keep_len: bool,
}

impl Pool {
    /// A pool with these bounds (see the fields).
    pub const fn new(min_kept: usize, max_kept: usize, max_bytes: usize, keep_len: bool) -> Self {
        Self { bufs: Mutex::new(Vec::new()), min_kept, max_kept, max_bytes, keep_len }
    }

    fn kept(&self) -> std::sync::MutexGuard<'_, Vec<Vec<u8>>> {
        self.bufs.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A buffer with room for at least `capacity` bytes: a kept one (the
    /// smallest that is large enough) or a new, empty one.
    pub fn take(&self, capacity: usize) -> Vec<u8> {
        if capacity >= self.min_kept {
            let mut pool = self.kept();
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
    pub fn give(&self, mut buf: Vec<u8>) {
        let cap = buf.capacity();
        if cap == 0 || cap < self.min_kept || cap > self.max_bytes {
            return;
        }
        if !self.keep_len {
            buf.clear();
        }
        let mut pool = self.kept();
        let mut kept: usize = pool.iter().map(Vec::capacity).sum();
        while pool.len() >= self.max_kept || kept + cap > self.max_bytes {
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

    /// Bytes of capacity kept now.
    pub fn kept_bytes(&self) -> usize {
        self.kept().iter().map(Vec::capacity).sum()
    }
}

/// Smallest message buffer worth keeping.
pub const MIN_KEPT: usize = 256 << 10;
/// Most message buffers kept at once.
pub const MAX_KEPT: usize = 16;
/// Most bytes of message buffer capacity kept at once.
pub const MAX_BYTES: usize = 64 << 20;

static MESSAGES: Pool = Pool::new(MIN_KEPT, MAX_KEPT, MAX_BYTES, false);

/// An empty message buffer with room for at least `capacity` bytes.
pub fn take(capacity: usize) -> Vec<u8> {
    MESSAGES.take(capacity)
}

/// Gives a message buffer back (emptied, if kept).
pub fn give(buf: Vec<u8>) {
    MESSAGES.give(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The pool is process-wide: the tests that fill it run one at a time.
    static SERIAL: Mutex<()> = Mutex::new(());

    fn drain() {
        MESSAGES.kept().clear();
    }

    fn kept_bytes() -> usize {
        MESSAGES.kept_bytes()
    }

    #[test]
    fn a_kept_buffer_comes_back_empty_with_its_capacity() {
        let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        drain();
        let mut b = take(1 << 20);
        b.extend_from_slice(&[0xAB; 1 << 20]);
        let at = b.as_ptr();
        give(b);
        let again = take(1 << 20);
        // The same allocation, not merely one of the same size.
        assert_eq!(again.as_ptr(), at, "the kept buffer is reused");
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
        assert_eq!(MESSAGES.kept().len(), MAX_KEPT);
        for _ in 0..2 * (MAX_BYTES >> 23) {
            give(Vec::with_capacity(8 << 20));
        }
        assert!(kept_bytes() <= MAX_BYTES, "{} bytes kept", kept_bytes());
        assert!(MESSAGES.kept().len() <= MAX_KEPT);
        // The large ones pushed the small ones out.
        assert!(MESSAGES.kept().iter().all(|b| b.capacity() >= 8 << 20));
        // A request larger than every kept buffer gets a new one.
        assert!(take(MAX_BYTES).capacity() >= MAX_BYTES);
        drain();
    }

    /// A pool that keeps lengths hands its bytes to the next user (the
    /// storage's ciphertext batches); it is bounded the same way.
    #[test]
    fn a_pool_that_keeps_lengths_returns_the_bytes_it_kept() {
        let pool = Pool::new(0, 2, 3 << 20, true);
        let mut b = pool.take(1 << 20);
        b.resize(1 << 20, 7);
        pool.give(b);
        let again = pool.take(1000);
        assert_eq!(again.len(), 1 << 20);
        assert!(again.iter().all(|x| *x == 7));
        pool.give(again);
        pool.give(vec![0; 2 << 20]);
        pool.give(vec![0; 2 << 20]);
        assert!(pool.kept_bytes() <= 3 << 20, "{}", pool.kept_bytes());
        assert_eq!(pool.take(1 << 20).len(), 2 << 20, "the 1 MiB one was pushed out");
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
