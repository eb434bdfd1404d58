//! Closing an open (MS-SMB2 3.3.5.10 with MS-FSA 2.1.5.4 cleanup): what
//! CLOSE does, and what happens to opens when their tree, session or
//! connection goes away or their durable timeout passes.

use std::net::SocketAddr;
use std::time::SystemTime;

use crate::audit::EventKind;
use crate::engine::audit;

use crate::engine::context::ConnState;
use crate::engine::fileops::{alloc, attributes, times};
use crate::engine::fsa::OpenId;
use crate::engine::open::{FileOpen, Open, OpenKind};
use crate::engine::server::Server;
use crate::storage::NodeKind;
use crate::types::{FileTime, NodeId};
use crate::wire::close::{CloseResponse, POSTQUERY_ATTRIB};

/// Releases everything an open holds; returns the CLOSE response fields and
/// the audit events the close produced (I/O summary, delete).
pub(crate) fn finish(server: &Server, open: Open, now: SystemTime, flags: u16) -> (CloseResponse, Vec<EventKind>) {
    let open_id = OpenId(open.file_id.persistent);
    match open.kind {
        OpenKind::Pipe(_) => (CloseResponse::default(), Vec::new()),
        OpenKind::File(f) => {
            let mut events = Vec::new();
            let st = f.stats;
            if st.reads > 0 || st.writes > 0 {
                events.push(EventKind::Close {
                    share: f.share.clone(),
                    path: f.path.clone(),
                    bytes_read: st.bytes_read,
                    reads: st.reads,
                    bytes_written: st.bytes_written,
                    writes: st.writes,
                });
            }
            let resp = match close_file(server, open_id, &f, FileTime::from_system(now), flags, &mut events) {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!(error = ?e, "close: storage error");
                    CloseResponse::default()
                }
            };
            (resp, events)
        }
    }
}

/// What the last close of a stream removes.
enum Removal {
    Nothing,
    Stream,
    File(Option<NodeId>),
}

/// Applies deferred updates of a disk open (write time, MS-FSA 2.1.5.4
/// cleanup), takes it out of the open table and, at the last close of a
/// delete-pending stream or file, deletes it.
fn close_file(
    server: &Server,
    open_id: OpenId,
    f: &FileOpen,
    now: FileTime,
    flags: u16,
    events: &mut Vec<EventKind>,
) -> crate::engine::status::Result<CloseResponse> {
    let times_result = crate::engine::times::on_close(&server.files, f, now);
    let removal = server.files.with(|t| {
        let out = t.stream(&f.key).close(open_id);
        t.complete(out.lock_completions);
        if let Some(id) = out.released_lease {
            t.leases.remove(&id);
        }
        t.clear_owner(open_id);
        t.durable.forget(open_id);
        t.watches.close(open_id);
        if f.is_dir && !out.delete && out.remaining > 0 && t.get(&f.key).is_some_and(|s| s.shares.delete_pending()) {
            // A delete-on-close handle of a watched directory closed.
            t.watches.delete_pending(f.org_id, f.node);
        }
        t.state_changed(&f.key, out.retry);
        t.drop_if_idle(&f.key);
        // A Mac metadata stream left without content is not there for
        // clients (aapl::hidden_stream): it goes at its last close.
        let empty_mac_stream = out.remaining == 0
            && f.stream
                .as_deref()
                .zip(f.content.as_ref())
                .is_some_and(|(s, c)| crate::engine::aapl::hidden_stream(s, c.len(), f.mac));
        // A resource fork stays delete-pending while open but is not deleted
        // at its last close, as on macOS (smbtorture `vfs.fruit` "create/setinfo
        // delete-on-close AFP_AfpResource", empty_stream T_DOC); a Mac
        // removes one by truncating it to 0.
        let keep_rsrc = f.stream.as_deref().is_some_and(crate::engine::aapl::is_afp_resource);
        let removal = last_close(t, f, (out.delete && !keep_rsrc) || empty_mac_stream, now);
        t.forget_times_if_closed(f.org_id, f.node);
        removal
    });
    times_result?;
    match removal {
        Removal::File(parent) => {
            events.push(EventKind::Delete { share: f.share.clone(), path: f.path.clone() });
            crate::engine::notify::removed(server, f, f.is_dir);
            if let Some(p) = parent {
                crate::engine::fileops::touch_dir(&f.org, p, now)?;
            }
            return Ok(CloseResponse::default());
        }
        Removal::Stream => {
            crate::engine::notify::stream_removed(server, f);
            return Ok(CloseResponse::default());
        }
        Removal::Nothing => {}
    }
    if f.stats.writes > 0 {
        // Explorer refreshes a file's row when its write time moves.
        crate::engine::notify::modified(server, f, crate::wire::fscc::consts::notify_filter::LAST_WRITE);
    }
    if flags & POSTQUERY_ATTRIB == 0 {
        return Ok(CloseResponse::default());
    }
    let meta = f.org.stat(f.node)?;
    let (size, allocation) = match (&f.content, meta.kind) {
        (Some(c), _) => (c.len(), c.alloc_size()),
        (None, NodeKind::Directory) => (0, 0),
        (None, NodeKind::File) => (meta.size, alloc(&meta)),
    };
    Ok(CloseResponse {
        flags: POSTQUERY_ATTRIB,
        times: times(&meta),
        allocation_size: allocation,
        end_of_file: size,
        file_attributes: attributes(&meta),
    })
}

/// Deletes what a last close leaves delete-pending, under the table lock
/// so that no open slips in between (MS-FSA 2.1.5.4). A file whose default
/// stream is deleted while named streams are still open goes when the last
/// of them closes; a non-empty directory stays (Windows ignores that failure).
fn last_close(t: &mut crate::engine::files::Table, f: &FileOpen, delete: bool, now: FileTime) -> Removal {
    let (org, node) = (f.org_id, f.node);
    let main = f.stream.is_none();
    let remove_file = |t: &mut crate::engine::files::Table| {
        t.set_doomed(org, node, false);
        let meta = f.org.stat(node).ok();
        let parent = meta.as_ref().and_then(|m| m.parent);
        match f.org.remove(node) {
            Ok(()) => {
                if let (Some(m), Some(p)) = (&meta, parent) {
                    t.tunnel_leave((org, p), &m.name, m.created, now);
                }
                Removal::File(parent)
            }
            Err(e) => {
                tracing::debug!(error = ?e, "delete on close failed");
                Removal::Nothing
            }
        }
    };
    if delete && main {
        if t.node_open(org, node) {
            t.set_doomed(org, node, true);
            return Removal::Nothing;
        }
        return remove_file(t);
    }
    let mut removal = Removal::Nothing;
    if delete
        && let Some(s) = &f.stream
        && f.org.remove_stream(node, &crate::engine::names::stream_to_store(s)).is_ok()
    {
        removal = Removal::Stream;
    }
    if t.is_doomed(org, node) && !t.node_open(org, node) {
        return remove_file(t);
    }
    removal
}

/// Closes a durable open whose connection went away and which was not
/// reconnected in time (MS-SMB2 3.3.2.x durable open scavenger timer).
pub fn close_detached(server: &Server, open: Open, now: SystemTime) {
    let _ = finish(server, open, now, 0);
}

/// Closes the opens of one tree (TREE_DISCONNECT).
pub fn close_tree_opens(
    server: &Server,
    conn: &mut ConnState,
    session_id: u64,
    tree_id: u32,
    now: SystemTime,
    peer: SocketAddr,
) {
    // TREE_DISCONNECT closes durable opens too (smbtorture `smb2.durable-open.reopen3`).
    close_matching(server, conn, now, peer, false, |o| o.owned_by(session_id, tree_id));
}

/// Closes the opens of one session (LOGOFF, revocation, disconnect).
pub fn close_session_opens(server: &Server, conn: &mut ConnState, session_id: u64, now: SystemTime, peer: SocketAddr) {
    // LOGOFF keeps durable opens for a reconnect (`smb2.durable-open.reopen4`).
    close_matching(server, conn, now, peer, true, |o| o.session_id == session_id);
}

fn close_matching(
    server: &Server,
    conn: &mut ConnState,
    now: SystemTime,
    peer: SocketAddr,
    keep_durable: bool,
    pick: impl Fn(&Open) -> bool,
) {
    let ids: Vec<u64> = conn.opens.iter().filter(|(_, o)| pick(o)).map(|(k, _)| *k).collect();
    for id in ids {
        // Durable opens outlive their session and connection.
        let kept = match conn.opens.remove(&id) {
            Some(o) if keep_durable => super::try_detach(server, o, now),
            other => other,
        };
        if let Some(o) = kept {
            let sid = o.session_id;
            let (_, events) = finish(server, o, now, 0);
            if let Some(s) = conn.sessions.get(&sid) {
                for ev in events {
                    audit::record_session(server, s, peer, now, ev);
                }
            }
        }
    }
}
