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

use std::collections::HashMap;
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
        let w = self.map.entry(open).or_insert_with(|| Watch {
            share: spec.share,
            node: spec.node,
            dir: crate::types::fold_name(&spec.path),
            tree: spec.tree,
            filter: spec.filter,
            mailbox: mailbox.clone(),
            waiting: Vec::new(),
            changes: Vec::new(),
            limit: max_len,
            overflow: false,
        });
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
        }
        Answer::Wait
    }

    /// Reports a change of `path` (below the share root) to every watch
    /// that covers it and whose filter has one of `filter`'s bits.
    pub fn report(&mut self, share: ShareKey, path: &str, action: u32, filter: u32) {
        if self.map.is_empty() || path.is_empty() {
            return;
        }
        let upper = crate::types::fold_name(path);
        for w in self.map.values_mut() {
            if w.share != share || w.filter & filter == 0 {
                continue;
            }
            if relative(&w.dir, &upper, w.tree).is_none() {
                continue;
            }
            // The name keeps the case it has in `path`.
            let name = tail(path, &w.dir);
            w.push(NotifyEntry { action, name });
        }
    }

    /// A rename pair, reported together so that one response carries both.
    pub fn report_rename(&mut self, share: ShareKey, from: &str, to: &str, filter: u32) {
        use crate::wire::fscc::consts::notify_action as a;
        if self.map.is_empty() {
            return;
        }
        let (fu, tu) = (crate::types::fold_name(from), crate::types::fold_name(to));
        for w in self.map.values_mut() {
            if w.share != share || w.filter & filter == 0 {
                continue;
            }
            match (relative(&w.dir, &fu, w.tree), relative(&w.dir, &tu, w.tree)) {
                (Some(_), Some(_)) => {
                    let old = tail(from, &w.dir);
                    let new = tail(to, &w.dir);
                    w.changes.push(NotifyEntry { action: a::RENAMED_OLD_NAME, name: old });
                    w.push(NotifyEntry { action: a::RENAMED_NEW_NAME, name: new });
                }
                (Some(_), None) => w.push(NotifyEntry { action: a::REMOVED, name: tail(from, &w.dir) }),
                (None, Some(_)) => w.push(NotifyEntry { action: a::ADDED, name: tail(to, &w.dir) }),
                (None, None) => {}
            }
        }
    }

    /// CANCEL of a waiting request: true if it was one of ours.
    pub fn cancel(&mut self, async_id: u64) -> bool {
        for w in self.map.values_mut() {
            if let Some(pos) = w.waiting.iter().position(|(id, _)| *id == async_id) {
                w.waiting.remove(pos);
                w.mailbox.post(done(async_id, NtStatus::CANCELLED));
                return true;
            }
        }
        false
    }

    /// The handle closed: waiting requests end with STATUS_NOTIFY_CLEANUP.
    pub fn close(&mut self, open: OpenId) {
        if let Some(w) = self.map.remove(&open) {
            for (id, _) in w.waiting {
                w.mailbox.post(done(id, NtStatus::NOTIFY_CLEANUP));
            }
        }
    }

    /// The directory `node` became delete-pending: its watchers' waiting
    /// requests end with STATUS_DELETE_PENDING (`smb2.notify.rmdir*`).
    pub fn delete_pending(&mut self, org: OrgId, node: NodeId) {
        for w in self.map.values_mut() {
            if w.share.0 == org && w.node == node {
                for (id, _) in std::mem::take(&mut w.waiting) {
                    w.mailbox.post(done(id, NtStatus::DELETE_PENDING));
                }
            }
        }
    }
}

impl Watch {
    /// Adds a change, completing the oldest waiting request if any.
    fn push(&mut self, e: NotifyEntry) {
        self.changes.push(e);
        if !self.waiting.is_empty() {
            let (id, max) = self.waiting.remove(0);
            let changes = std::mem::take(&mut self.changes);
            let (status, data) = encode(&changes, max);
            self.mailbox.post(Notice::Notify { async_id: id, status, data });
            return;
        }
        let bytes: usize = self.changes.iter().map(|c| 12 + 2 * c.name.encode_utf16().count() + 3).sum();
        if bytes > self.limit as usize || self.changes.len() > MAX_BUFFERED {
            self.changes.clear();
            self.overflow = true;
        }
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
}
