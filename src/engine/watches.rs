//! Change notification (MS-SMB2 3.3.5.19, MS-FSA 2.1.5.10 and 2.1.4.1
//! FsRtlNotifyFullReportChange), as Windows behaves under smbtorture's
//! `smb2.notify`:
//!
//! - the first CHANGE_NOTIFY on a directory handle starts a watch with its
//!   CompletionFilter and WATCH_TREE flag; they stay fixed until the handle
//!   closes (`smb2.notify.mask-change`);
//! - from then on, changes below the directory are buffered while no
//!   request waits, and the next request returns them at once; a buffer
//!   that outgrows the request's OutputBufferLength turns into
//!   STATUS_NOTIFY_ENUM_DIR ("too many changes, re-read the directory");
//! - several requests may wait on one handle: each change completes the
//!   oldest;
//! - CLOSE (and tree disconnect, logoff) completes waiting requests with
//!   STATUS_NOTIFY_CLEANUP, CANCEL with STATUS_CANCELLED, and the watched
//!   directory becoming delete-pending with STATUS_DELETE_PENDING.
//!
//! Changes are matched by path below the share root (what every open
//! knows), case-insensitively, the way Samba's notify does. The watches
//! live in the server-wide open table, so a change made on any connection
//! reaches every watcher; completions go to the watcher's mailbox.
//!
//! This file keeps the watches; `engine::notify` reports changes to them.
//! They are indexed by share and watched directory, so that a change looks
//! at the watches of its own ancestors only (not at every watch of the
//! server, under the open table's lock), and by AsyncId and node for
//! CANCEL and delete-pending.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use crate::engine::fsa::OpenId;
use crate::engine::mailbox::{Mailbox, Notice};
use crate::types::{NodeId, OrgId};
use crate::wire::NtStatus;
use crate::wire::change_notify::{NotifyEntry, encode_notify};

/// Buffered changes kept per watch at most, whatever the buffer size
/// (beyond it the watch overflows into NOTIFY_ENUM_DIR).
const MAX_BUFFERED: usize = 4096;

/// A share as changes are scoped: organization and root directory.
pub type ShareKey = (OrgId, NodeId);

/// What the first CHANGE_NOTIFY on a handle asked for.
#[derive(Debug, Clone)]
pub struct WatchSpec {
    /// The share the handle was opened on.
    pub share: ShareKey,
    /// The watched directory.
    pub node: NodeId,
    /// Its path below the share root (`\`-separated, "" for the root).
    pub path: String,
    /// SMB2_WATCH_TREE.
    pub tree: bool,
    /// CompletionFilter.
    pub filter: u32,
}

struct Watch {
    share: ShareKey,
    node: NodeId,
    /// Upper-cased path, for matching.
    dir: String,
    tree: bool,
    filter: u32,
    mailbox: Arc<Mailbox>,
    /// Waiting requests, oldest first: (AsyncId, OutputBufferLength).
    waiting: Vec<(u64, u32)>,
    changes: Vec<NotifyEntry>,
    /// OutputBufferLength of the latest request: the buffer's limit.
    limit: u32,
    overflow: bool,
}

/// Every watch of the server, by the open (directory handle) it belongs to.
#[derive(Default)]
pub struct Watches {
    map: HashMap<OpenId, Watch>,
    /// Share → watched directory (upper-cased path) → its watches.
    by_dir: HashMap<ShareKey, HashMap<String, HashSet<OpenId>>>,
    /// Watched directory node → its watches (delete-pending).
    by_node: HashMap<(OrgId, NodeId), HashSet<OpenId>>,
    /// AsyncId of a waiting request → its watch (CANCEL).
    by_async: HashMap<u64, OpenId>,
}

/// What a CHANGE_NOTIFY request gets right away.
#[derive(Debug, PartialEq, Eq)]
pub enum Answer {
    /// Complete now with this status and output buffer.
    Now(NtStatus, Vec<u8>),
    /// Wait (the request goes asynchronous under its AsyncId).
    Wait,
}

impl Watches {
    /// No watch exists (changes need not be reported at all).
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// `open` has a watch (counted against a connection's budget).
    pub fn contains(&self, open: OpenId) -> bool {
        self.map.contains_key(&open)
    }

    /// A CHANGE_NOTIFY request on `open` (a directory handle). With
    /// `async_id` None the request may not wait (it is then not queued).
    pub fn request(
        &mut self,
        open: OpenId,
        spec: &WatchSpec,
        max_len: u32,
        async_id: Option<u64>,
        mailbox: &Arc<Mailbox>,
    ) -> Answer {
        let w = match self.map.entry(open) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => {
                let dir = crate::types::fold_name(&spec.path);
                self.by_dir.entry(spec.share).or_default().entry(dir.clone()).or_default().insert(open);
                self.by_node.entry((spec.share.0, spec.node)).or_default().insert(open);
                e.insert(Watch {
                    share: spec.share,
                    node: spec.node,
                    dir,
                    tree: spec.tree,
                    filter: spec.filter,
                    mailbox: mailbox.clone(),
                    waiting: Vec::new(),
                    changes: Vec::new(),
                    limit: max_len,
                    overflow: false,
                })
            }
        };
        w.limit = max_len;
        if w.overflow {
            w.overflow = false;
            w.changes.clear();
            return Answer::Now(NtStatus::NOTIFY_ENUM_DIR, Vec::new());
        }
        if !w.changes.is_empty() {
            let changes = std::mem::take(&mut w.changes);
            let (status, data) = encode(&changes, max_len);
            return Answer::Now(status, data);
        }
        if let Some(id) = async_id {
            w.waiting.push((id, max_len));
            self.by_async.insert(id, open);
        }
        Answer::Wait
    }

    /// Watches whose directory is `upper` (upper-cased) or one of its
    /// ancestors in `share`: the only ones a change of `upper` can concern.
    /// O(path depth + those watches).
    fn candidates(&self, share: ShareKey, upper: &str, out: &mut Vec<OpenId>) {
        let Some(dirs) = self.by_dir.get(&share) else { return };
        let ends = upper.match_indices('\\').map(|(i, _)| i);
        for end in std::iter::once(0).chain(ends) {
            if let Some(ids) = upper.get(..end).and_then(|d| dirs.get(d)) {
                out.extend(ids.iter().copied());
            }
        }
    }

    fn push(&mut self, open: OpenId, e: NotifyEntry) {
        if let Some(id) = self.map.get_mut(&open).and_then(|w| w.push(e)) {
            self.by_async.remove(&id);
        }
    }

    /// Reports a change of `path` (below the share root) to every watch
    /// that covers it and whose filter has one of `filter`'s bits.
    pub fn report(&mut self, share: ShareKey, path: &str, action: u32, filter: u32) {
        if self.map.is_empty() || path.is_empty() {
            return;
        }
        let upper = crate::types::fold_name(path);
        let mut ids = Vec::new();
        self.candidates(share, &upper, &mut ids);
        for open in ids {
            let Some(w) = self.map.get(&open) else { continue };
            if w.share != share || w.filter & filter == 0 {
                continue;
            }
            if relative(&w.dir, &upper, w.tree).is_none() {
                continue;
            }
            // The name keeps the case it has in `path`.
            let name = tail(path, &w.dir);
            self.push(open, NotifyEntry { action, name });
        }
    }

    /// A rename pair, reported together so that one response carries both.
    pub fn report_rename(&mut self, share: ShareKey, from: &str, to: &str, filter: u32) {
        use crate::wire::fscc::consts::notify_action as a;
        if self.map.is_empty() {
            return;
        }
        let (fu, tu) = (crate::types::fold_name(from), crate::types::fold_name(to));
        let mut ids = Vec::new();
        self.candidates(share, &fu, &mut ids);
        self.candidates(share, &tu, &mut ids);
        ids.sort_unstable_by_key(|o| o.0);
        ids.dedup();
        for open in ids {
            let Some(w) = self.map.get_mut(&open) else { continue };
            if w.share != share || w.filter & filter == 0 {
                continue;
            }
            let e = match (relative(&w.dir, &fu, w.tree), relative(&w.dir, &tu, w.tree)) {
                (Some(_), Some(_)) => {
                    let old = tail(from, &w.dir);
                    let new = tail(to, &w.dir);
                    w.changes.push(NotifyEntry { action: a::RENAMED_OLD_NAME, name: old });
                    NotifyEntry { action: a::RENAMED_NEW_NAME, name: new }
                }
                (Some(_), None) => NotifyEntry { action: a::REMOVED, name: tail(from, &w.dir) },
                (None, Some(_)) => NotifyEntry { action: a::ADDED, name: tail(to, &w.dir) },
                (None, None) => continue,
            };
            self.push(open, e);
        }
    }

    /// CANCEL of a waiting request: true if it was one of ours.
    pub fn cancel(&mut self, async_id: u64) -> bool {
        let Some(open) = self.by_async.remove(&async_id) else { return false };
        let Some(w) = self.map.get_mut(&open) else { return false };
        let Some(pos) = w.waiting.iter().position(|(id, _)| *id == async_id) else { return false };
        w.waiting.remove(pos);
        w.mailbox.post(done(async_id, NtStatus::CANCELLED));
        true
    }

    /// The handle closed: waiting requests end with STATUS_NOTIFY_CLEANUP.
    pub fn close(&mut self, open: OpenId) {
        let Some(w) = self.map.remove(&open) else { return };
        if let Some(dirs) = self.by_dir.get_mut(&w.share) {
            if let Some(ids) = dirs.get_mut(&w.dir) {
                ids.remove(&open);
                if ids.is_empty() {
                    dirs.remove(&w.dir);
                }
            }
            if dirs.is_empty() {
                self.by_dir.remove(&w.share);
            }
        }
        let node = (w.share.0, w.node);
        if let Some(ids) = self.by_node.get_mut(&node) {
            ids.remove(&open);
            if ids.is_empty() {
                self.by_node.remove(&node);
            }
        }
        for (id, _) in w.waiting {
            self.by_async.remove(&id);
            w.mailbox.post(done(id, NtStatus::NOTIFY_CLEANUP));
        }
    }

    /// The directory `node` became delete-pending: its watchers' waiting
    /// requests end with STATUS_DELETE_PENDING (`smb2.notify.rmdir*`).
    pub fn delete_pending(&mut self, org: OrgId, node: NodeId) {
        let Some(ids) = self.by_node.get(&(org, node)) else { return };
        for open in ids {
            let Some(w) = self.map.get_mut(open) else { continue };
            for (id, _) in std::mem::take(&mut w.waiting) {
                self.by_async.remove(&id);
                w.mailbox.post(done(id, NtStatus::DELETE_PENDING));
            }
        }
    }

    /// Number of watches (tests, diagnostics).
    pub fn len(&self) -> usize {
        self.map.len()
    }
}

impl Watch {
    /// Adds a change, completing the oldest waiting request if any (its
    /// AsyncId is returned).
    fn push(&mut self, e: NotifyEntry) -> Option<u64> {
        self.changes.push(e);
        if !self.waiting.is_empty() {
            let (id, max) = self.waiting.remove(0);
            let changes = std::mem::take(&mut self.changes);
            let (status, data) = encode(&changes, max);
            self.mailbox.post(Notice::Notify { async_id: id, status, data });
            return Some(id);
        }
        let bytes: usize = self.changes.iter().map(|c| 12 + 2 * c.name.encode_utf16().count() + 3).sum();
        if bytes > self.limit as usize || self.changes.len() > MAX_BUFFERED {
            self.changes.clear();
            self.overflow = true;
        }
        None
    }
}

fn done(async_id: u64, status: NtStatus) -> Notice {
    Notice::Notify { async_id, status, data: Vec::new() }
}

/// The records, or NOTIFY_ENUM_DIR when they do not fit (MS-SMB2 3.3.5.19).
fn encode(changes: &[NotifyEntry], max_len: u32) -> (NtStatus, Vec<u8>) {
    let mut data = Vec::new();
    if encode_notify(changes, max_len as usize, &mut data) {
        (NtStatus::SUCCESS, data)
    } else {
        (NtStatus::NOTIFY_ENUM_DIR, Vec::new())
    }
}

/// The part of `path` a watch on `dir` reports: the name in `dir` itself,
/// or (with WATCH_TREE) the path below it. Both are upper-cased.
fn relative<'a>(dir: &str, path: &'a str, tree: bool) -> Option<&'a str> {
    let rest = if dir.is_empty() { path } else { path.strip_prefix(dir)?.strip_prefix('\\')? };
    (!rest.is_empty() && (tree || !rest.contains('\\'))).then_some(rest)
}

/// `path` without the components of `dir` (matched before, case-insensitively).
fn tail(path: &str, dir: &str) -> String {
    if dir.is_empty() {
        return path.to_string();
    }
    let n = dir.split('\\').count();
    path.splitn(n + 1, '\\').nth(n).unwrap_or_default().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::change_notify::decode_notify;
    use crate::wire::fscc::consts::{notify_action as a, notify_filter as f};

    const SHARE: ShareKey = (OrgId(1), NodeId(1));

    fn spec(path: &str, tree: bool, filter: u32) -> WatchSpec {
        WatchSpec { share: SHARE, node: NodeId(5), path: path.into(), tree, filter }
    }

    fn notices(mb: &Mailbox) -> Vec<(u64, NtStatus, Vec<NotifyEntry>)> {
        mb.take()
            .into_iter()
            .filter_map(|n| match n {
                Notice::Notify { async_id, status, data } => {
                    Some((async_id, status, decode_notify(&data).unwrap_or_default()))
                }
                _ => None,
            })
            .collect()
    }

    #[test]
    fn buffered_changes_return_at_once_and_waiting_requests_complete() {
        let mb = Arc::new(Mailbox::default());
        let mut w = Watches::default();
        let s = spec("Base", false, f::FILE_NAME | f::DIR_NAME);
        assert_eq!(w.request(OpenId(1), &s, 1000, Some(10), &mb), Answer::Wait);
        w.report(SHARE, "base\\Sub", a::ADDED, f::DIR_NAME);
        let got = notices(&mb);
        assert_eq!(got, vec![(10, NtStatus::SUCCESS, vec![NotifyEntry { action: a::ADDED, name: "Sub".into() }])]);
        // Not waiting: buffered; deeper changes need WATCH_TREE.
        w.report(SHARE, "BASE\\x.txt", a::REMOVED, f::FILE_NAME);
        w.report(SHARE, "BASE\\Sub\\y.txt", a::ADDED, f::FILE_NAME);
        w.report(SHARE, "other\\z.txt", a::ADDED, f::FILE_NAME);
        w.report(SHARE, "BASE\\attr.txt", a::MODIFIED, f::ATTRIBUTES);
        match w.request(OpenId(1), &s, 1000, Some(11), &mb) {
            Answer::Now(NtStatus::SUCCESS, data) => {
                assert_eq!(
                    decode_notify(&data).unwrap(),
                    vec![NotifyEntry { action: a::REMOVED, name: "x.txt".into() }]
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn overflow_cancel_cleanup_and_delete_pending() {
        let mb = Arc::new(Mailbox::default());
        let mut w = Watches::default();
        let s = spec("", true, f::FILE_NAME);
        assert_eq!(w.request(OpenId(1), &s, 100, Some(1), &mb), Answer::Wait);
        assert!(w.cancel(1));
        assert_eq!(notices(&mb), vec![(1, NtStatus::CANCELLED, vec![])]);
        for i in 0..20 {
            w.report(SHARE, &format!("d\\file{i}.txt"), a::ADDED, f::FILE_NAME);
        }
        assert_eq!(w.request(OpenId(1), &s, 100, Some(2), &mb), Answer::Now(NtStatus::NOTIFY_ENUM_DIR, Vec::new()));
        assert_eq!(w.request(OpenId(1), &s, 100, Some(3), &mb), Answer::Wait);
        w.delete_pending(OrgId(1), NodeId(5));
        assert_eq!(notices(&mb), vec![(3, NtStatus::DELETE_PENDING, vec![])]);
        assert_eq!(w.request(OpenId(1), &s, 100, Some(4), &mb), Answer::Wait);
        w.close(OpenId(1));
        assert_eq!(notices(&mb), vec![(4, NtStatus::NOTIFY_CLEANUP, vec![])]);
        assert!(w.is_empty());
    }

    #[test]
    fn renames_within_and_across_directories() {
        let mb = Arc::new(Mailbox::default());
        let mut w = Watches::default();
        let s = spec("A", false, f::FILE_NAME);
        assert_eq!(w.request(OpenId(1), &s, 1000, Some(1), &mb), Answer::Wait);
        w.report_rename(SHARE, "a\\old.txt", "A\\New.txt", f::FILE_NAME);
        let got = notices(&mb);
        assert_eq!(
            got[0].2,
            vec![
                NotifyEntry { action: a::RENAMED_OLD_NAME, name: "old.txt".into() },
                NotifyEntry { action: a::RENAMED_NEW_NAME, name: "New.txt".into() }
            ]
        );
        w.report_rename(SHARE, "A\\New.txt", "B\\New.txt", f::FILE_NAME);
        match w.request(OpenId(1), &s, 1000, Some(2), &mb) {
            Answer::Now(_, data) => {
                assert_eq!(
                    decode_notify(&data).unwrap(),
                    vec![NotifyEntry { action: a::REMOVED, name: "New.txt".into() }]
                );
            }
            other => panic!("{other:?}"),
        }
    }

    /// The index: a change reaches the watches of its ancestors (WATCH_TREE
    /// ones) and of its parent, in its own share only; closing a watch
    /// leaves no index entry behind; CANCEL finds a request by its AsyncId.
    #[test]
    fn index_by_share_and_directory() {
        let mb = Arc::new(Mailbox::default());
        let mut w = Watches::default();
        let other: ShareKey = (OrgId(2), NodeId(1));
        let n = 2000u64;
        for i in 0..n {
            let s = WatchSpec {
                share: SHARE,
                node: NodeId(100 + i),
                path: format!("d{i}"),
                tree: false,
                filter: f::FILE_NAME,
            };
            assert_eq!(w.request(OpenId(i), &s, 1000, Some(10_000 + i), &mb), Answer::Wait);
        }
        let tree = spec("", true, f::FILE_NAME);
        assert_eq!(w.request(OpenId(n), &tree, 1000, Some(1), &mb), Answer::Wait);
        let foreign = WatchSpec { share: other, node: NodeId(5), path: "d7".into(), tree: false, filter: f::FILE_NAME };
        assert_eq!(w.request(OpenId(n + 1), &foreign, 1000, Some(2), &mb), Answer::Wait);
        w.report(SHARE, "D7\\New.txt", a::ADDED, f::FILE_NAME);
        let mut got: Vec<u64> = notices(&mb).into_iter().map(|x| x.0).collect();
        got.sort_unstable();
        assert_eq!(got, vec![1, 10_007]);
        w.report(SHARE, "d8\\sub\\deep.txt", a::ADDED, f::FILE_NAME);
        assert!(notices(&mb).is_empty(), "d8 is not a tree watch, the root watch has no request waiting");
        assert!(w.cancel(10_009));
        assert!(!w.cancel(10_009));
        assert_eq!(notices(&mb), vec![(10_009, NtStatus::CANCELLED, vec![])]);
        for i in 0..=n + 1 {
            w.close(OpenId(i));
        }
        assert!(w.is_empty());
        assert!(w.by_dir.is_empty() && w.by_node.is_empty() && w.by_async.is_empty());
    }
}
