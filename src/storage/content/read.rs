//! Reading a `Content`: whole chunks decrypted where their bytes go in
//! the caller's buffer, the write-back tail's plaintext, and holes as
//! zeros. A READ response is filled by `read_append`: staged record by
//! record for small reads, read in place on all cores for large ones.

use zeroize::Zeroize;

use crate::storage::chunks::{Loc, split};
use crate::storage::error::Result;
use crate::storage::par;
use crate::storage::record::{CHUNK, Staged};

use super::{Content, State};

#[cfg(test)]
thread_local! {
    /// Forces either READ path on the test's thread (`reads_direct`), so
    /// that the tests' small files go through both.
    pub(in crate::storage) static FORCE_DIRECT: std::cell::Cell<Option<bool>> = const { std::cell::Cell::new(None) };
}

/// Whether a read of `n` bytes lands its records in place (`append_locked`).
fn reads_direct(n: usize) -> bool {
    #[cfg(test)]
    if let Some(forced) = FORCE_DIRECT.with(|f| f.get()) {
        return forced;
    }
    n >= DIRECT_READ
}

/// Reads of at least this many bytes land each record in place after a
/// zero-fill instead of staging it (`append_locked`). Measured on the
/// 2-core benchmark VM (docs/benchmarks.md, stop 18): smbclient get (8 MiB
/// READs) gained 1–6 % in place; 1 MiB READs lost 3–4 %, so they stage.
const DIRECT_READ: usize = 2 << 20;

impl Content {
    /// Reads up to `buf.len()` bytes at `off`; returns fewer at end of file
    /// (0 at or past it). Holes read as zeros.
    pub fn read(&self, off: u64, buf: &mut [u8]) -> Result<usize> {
        let st = self.state.read();
        self.check()?;
        if off >= st.sz.size || buf.is_empty() {
            return Ok(0);
        }
        let n = (st.sz.size - off).min(buf.len() as u64) as usize;
        let pieces = split(off, &mut buf[..n]);
        let (first, last) = (off / CHUNK, (off + n as u64 - 1) / CHUNK);
        let rows = self.locate_if(&st.sz, first, last)?;
        let tail = st.tail.as_ref();
        let work = |(idx, from, out): (u64, usize, &mut [u8])| -> Result<()> {
            let avail = if let Some(t) = tail.filter(|t| t.idx == idx) {
                let avail = t.buf.len().saturating_sub(from).min(out.len());
                if avail > 0 {
                    out[..avail].copy_from_slice(&t.buf[from..from + avail]);
                }
                avail
            } else if let Some(loc) = rows.get(&idx) {
                let avail = (loc.plen as usize).saturating_sub(from).min(out.len());
                if avail > 0 {
                    self.read_chunk(idx, loc, from, &mut out[..avail])?;
                }
                avail
            } else {
                0
            };
            out[avail..].fill(0);
            Ok(())
        };
        par::try_for_each(pieces, work)?;
        Ok(n)
    }

    /// Appends the bytes at `off..off + len` (fewer at the end of the
    /// stream) to `out` and returns how many. For a READ response: every
    /// appended byte is written here, as plaintext or as a hole's zeros,
    /// so `out` needs no zero-fill by the caller and the old contents of a
    /// reused buffer's capacity can never be sent. Whole stored chunks are
    /// decrypted in place, where their ciphertext was appended (small
    /// reads) or read (large ones, after a zero-fill here). On error `out`
    /// is wiped back to its length on entry.
    pub fn read_append(&self, off: u64, len: usize, out: &mut Vec<u8>) -> Result<usize> {
        let st = self.state.read();
        self.check()?;
        if off >= st.sz.size || len == 0 {
            return Ok(0);
        }
        let n = (st.sz.size - off).min(len as u64) as usize;
        let start = out.len();
        out.reserve(n);
        let r = self.append_locked(&st, off, n, out);
        if r.is_err() {
            out[start..].zeroize();
            out.truncate(start);
        }
        debug_assert!(r.is_err() || out.len() == start + n);
        r.map(|()| n)
    }

    fn append_locked(&self, st: &State, off: u64, n: usize, out: &mut Vec<u8>) -> Result<()> {
        enum Job<'a> {
            /// A whole chunk whose ciphertext pass 1 appended.
            Staged(Staged),
            /// A whole chunk, its record read with the ciphertext in place.
            Direct(&'a Loc),
            /// Part of a chunk (or a record that did not stage): read,
            /// verified and decrypted apart.
            Read(usize, &'a Loc),
        }
        let (first, last) = (off / CHUNK, (off + n as u64 - 1) / CHUNK);
        let rows = self.locate_if(&st.sz, first, last)?;
        let tail = st.tail.as_ref();
        let start = out.len();
        // A large read is zero-filled first and every record is then read
        // where its bytes go, on all cores: its serial pass (each record
        // read into a staging buffer and copied over, 2.2 ms of an 8 MiB
        // READ) took longer than the fill. A small one is quicker staged:
        // its pass is short and the fill would be extra work.
        let direct = reads_direct(n);
        if direct {
            out.resize(start + n, 0);
        }
        // Pass 1, in order: put every piece in place (tail plaintext,
        // zeros, or, for a small read, ciphertext to decrypt in place),
        // noting where the work is.
        let mut jobs: Vec<(u64, usize, usize, Job<'_>)> = Vec::new();
        let mut pos = off;
        while pos < off + n as u64 {
            let (idx, from) = (pos / CHUNK, (pos % CHUNK) as usize);
            let take = (CHUNK as usize - from).min((off + n as u64 - pos) as usize);
            let at = start + (pos - off) as usize;
            if let Some(t) = tail.filter(|t| t.idx == idx) {
                let avail = t.buf.len().saturating_sub(from).min(take);
                let piece = &t.buf[from..from + avail];
                if direct { out[at..at + avail].copy_from_slice(piece) } else { out.extend_from_slice(piece) }
            } else if let Some(loc) = rows.get(&idx) {
                let avail = (loc.plen as usize).saturating_sub(from).min(take);
                let whole = from == 0 && avail == loc.plen as usize;
                let job = match (whole, direct) {
                    (true, true) => Some(Job::Direct(loc)),
                    (true, false) => self.append_chunk(idx, loc, out)?.map(Job::Staged),
                    (false, _) => None,
                };
                match job {
                    Some(job) => jobs.push((idx, at, avail, job)),
                    None if avail > 0 => {
                        if !direct {
                            out.resize(at + avail, 0);
                        }
                        jobs.push((idx, at, avail, Job::Read(from, loc)));
                    }
                    None => {}
                }
            }
            if !direct {
                out.resize(at + take, 0);
            }
            pos += take as u64;
        }
        // Pass 2, spread over the cores: each piece decrypted where it lies.
        let mut pieces = Vec::with_capacity(jobs.len());
        let (mut rest, mut base) = (&mut out[start..], start);
        for (idx, at, len, job) in jobs {
            let (piece, r) = std::mem::take(&mut rest)[at - base..].split_at_mut(len);
            pieces.push((idx, piece, job));
            (rest, base) = (r, at + len);
        }
        par::try_for_each(pieces, |(idx, piece, job)| match job {
            Job::Staged(s) => self.open_appended(idx, &s, piece),
            Job::Direct(loc) => self.read_direct(idx, loc, piece),
            Job::Read(from, loc) => self.read_chunk(idx, loc, from, piece),
        })
    }
}
