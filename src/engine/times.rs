//! Automatic LastWriteTime / ChangeTime updates as Windows makes them
//! (MS-FSA 2.1.5.3 and 2.1.4.17; the exact timing is what smbtorture
//! `smb2.timestamps` observes on Windows Server and Samba reproduces):
//!
//! - the first write through a handle moves the times about two seconds
//!   later, or at the next flush, size change, SET_INFO basic or close of
//!   the file, whichever comes first;
//! - later writes through the same handle move them at its close;
//! - a handle that sets LastWriteTime explicitly stops automatic updates
//!   for every handle until the file is closed; -1 freezes a time for the
//!   setting handle, -2 thaws it (MS-FSCC 2.4.7).
//!
//! The delayed update is applied lazily: whoever looks at the file after
//! its due time (a query, a listing, a close) writes it with the due time.

use crate::engine::files::Files;
use crate::engine::open::{FileOpen, frozen};
use crate::engine::status::Result;
use crate::storage::{MetaUpdate, OrgStore};
use crate::types::{FileTime, NodeId, OrgId};

/// Delay of the first write's update: 2 s, in FILETIME units.
const DELAY: u64 = 2 * 10_000_000;

/// A WRITE (or size change) through `f` changed the data.
pub fn on_write(files: &Files, f: &mut FileOpen, now: FileTime) {
    if f.times.frozen & frozen::WRITE != 0 {
        return;
    }
    if f.times.wrote {
        f.times.dirty = true;
        return;
    }
    f.times.wrote = true;
    files.with(|t| {
        let w = t.write_times(f.org_id, f.node);
        if !w.forced && w.due.is_none() {
            w.due = Some(FileTime(now.0.saturating_add(DELAY)));
        }
    });
}

/// Applies a pending delayed update: when it is due, or at once if `force`
/// (flush, size change, SET_INFO basic, close).
pub fn settle(files: &Files, org: &OrgStore, org_id: OrgId, node: NodeId, now: FileTime, force: bool) -> Result<()> {
    let at = files.with(|t| {
        let w = t.peek_write_times(org_id, node)?;
        let due = w.due?;
        if !force && due > now {
            return None;
        }
        t.write_times(org_id, node).due = None;
        Some(if due > now { now } else { due })
    });
    if let Some(at) = at {
        org.set_meta(node, &MetaUpdate { written: Some(at), changed: Some(at), ..Default::default() })?;
    }
    Ok(())
}

/// Applies a due update of `f`'s file before its metadata is read.
pub fn settle_due(files: &Files, f: &FileOpen, now: FileTime) -> Result<()> {
    settle(files, &f.org, f.org_id, f.node, now, false)
}

/// CLOSE: the pending update, then this handle's later writes.
pub fn on_close(files: &Files, f: &FileOpen, now: FileTime) -> Result<()> {
    settle(files, &f.org, f.org_id, f.node, now, true)?;
    let forced = files.with(|t| t.peek_write_times(f.org_id, f.node).is_some_and(|w| w.forced));
    if f.times.dirty && !forced && f.times.frozen & frozen::WRITE == 0 {
        f.org.set_meta(f.node, &MetaUpdate { written: Some(now), changed: Some(now), ..Default::default() })?;
    }
    Ok(())
}

/// SET_INFO basic set LastWriteTime explicitly: no more automatic updates
/// of it while the file stays open.
pub fn force_write_time(files: &Files, f: &FileOpen) {
    files.with(|t| {
        let w = t.write_times(f.org_id, f.node);
        w.forced = true;
        w.due = None;
    });
}
