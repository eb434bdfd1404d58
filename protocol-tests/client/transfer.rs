//! Pipelined sequential transfers: several multi-credit READs or WRITEs in
//! flight on one connection (MS-SMB2 3.2.4.1.5), as Windows and smbclient
//! keep them, so throughput is bounded by the server rather than by the
//! round trip.

use std::collections::VecDeque;

use super::tree::{Tree, read_data, written};
use super::{Error, Pending};
use smbvault::wire::create::FileId;

/// How to split a transfer.
#[derive(Debug, Clone, Copy)]
pub struct Pipeline {
    /// Bytes per request (1 MiB by default; capped by MaxRead/WriteSize).
    pub chunk: u32,
    /// Requests in flight.
    pub depth: usize,
}

impl Default for Pipeline {
    fn default() -> Self {
        Self { chunk: 1 << 20, depth: 8 }
    }
}

/// Writes `total` bytes from offset 0; `fill(offset, buf)` provides each
/// chunk's content. Returns the bytes the server acknowledged.
pub async fn write_all(
    tree: &Tree,
    file_id: FileId,
    total: u64,
    p: Pipeline,
    mut fill: impl FnMut(u64, &mut [u8]),
) -> Result<u64, Error> {
    let chunk = p.chunk.min(tree.session_info().max_write).max(1);
    let mut buf = vec![0u8; chunk as usize];
    let mut queue: VecDeque<(Pending, u32)> = VecDeque::with_capacity(p.depth);
    let (mut sent, mut done) = (0u64, 0u64);
    while done < total {
        while sent < total && queue.len() < p.depth.max(1) {
            let n = (total - sent).min(u64::from(chunk)) as usize;
            fill(sent, &mut buf[..n]);
            queue.push_back((tree.send_write(file_id, sent, &buf[..n]).await?, n as u32));
            sent += n as u64;
        }
        let Some((pending, want)) = queue.pop_front() else { break };
        let got = written(pending.wait().await?)?;
        if got != want {
            return Err(Error::Protocol("short write"));
        }
        done += u64::from(got);
    }
    Ok(done)
}

/// Reads `total` bytes from offset 0, handing each chunk to `sink(offset, data)`
/// in order. Returns the bytes read (less than `total` at end of file).
pub async fn read_all(
    tree: &Tree,
    file_id: FileId,
    total: u64,
    p: Pipeline,
    mut sink: impl FnMut(u64, &[u8]),
) -> Result<u64, Error> {
    let chunk = p.chunk.min(tree.session_info().max_read).max(1);
    let mut queue: VecDeque<(Pending, u64)> = VecDeque::with_capacity(p.depth);
    let (mut sent, mut done) = (0u64, 0u64);
    loop {
        while sent < total && queue.len() < p.depth.max(1) {
            let n = (total - sent).min(u64::from(chunk)) as u32;
            queue.push_back((tree.send_read(file_id, sent, n).await?, sent));
            sent += u64::from(n);
        }
        let Some((pending, offset)) = queue.pop_front() else { break };
        let resp = pending.wait().await?;
        if resp.status() == smbvault::wire::NtStatus::END_OF_FILE {
            continue;
        }
        let resp = resp.ok()?;
        let data = read_data(&resp)?;
        sink(offset, data);
        done += data.len() as u64;
    }
    Ok(done)
}
