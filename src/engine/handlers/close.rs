//! CLOSE (MS-SMB2 3.3.5.10) and the teardown of opens when their tree,
//! session or connection goes away.

use std::net::SocketAddr;
use std::time::SystemTime;

use crate::audit::{EventKind, EventResult};
use crate::engine::audit;

use crate::engine::connection::{ConnState, Ctx, Reply, new_message};
use crate::engine::fileops::{alloc, attributes, times};
use crate::engine::open::{FileOpen, Open, OpenKind};
use crate::engine::server::Server;
use crate::engine::status::Result;
use crate::storage::{MetaUpdate, NodeKind};
use crate::types::FileTime;
use crate::wire::NtStatus;
use crate::wire::close::{CloseRequest, CloseResponse, POSTQUERY_ATTRIB};

/// CLOSE.
pub fn close(ctx: &mut Ctx<'_>) -> Result<Reply> {
    let req = CloseRequest::decode(ctx.msg)?;
    let id = ctx.resolve_file_id(req.file_id)?;
    let open = ctx.conn.opens.remove(&id).ok_or(NtStatus::FILE_CLOSED)?;
    let (resp, events) = finish(ctx.server, open, ctx.now, req.flags);
    for ev in events {
        ctx.audit(ev, EventResult::Ok);
    }
    let mut out = new_message();
    resp.encode(&mut out);
    Ok(Reply::ok(out))
}

/// Releases everything an open holds; returns the CLOSE response fields and
/// the audit events the close produced (I/O summary, delete).
fn finish(_server: &Server, open: Open, now: SystemTime, flags: u16) -> (CloseResponse, Vec<EventKind>) {
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
            let resp = match close_file(&f, FileTime::from_system(now), flags, &mut events) {
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

/// Applies deferred updates of a disk open: LastWriteTime after writes
/// (MS-FSA 2.1.5.4: updated at close unless the client fixed it), delete on close.
fn close_file(
    f: &FileOpen,
    now: FileTime,
    flags: u16,
    events: &mut Vec<EventKind>,
) -> crate::engine::status::Result<CloseResponse> {
    if f.written && !f.sticky_write_time {
        f.org.set_meta(f.node, &MetaUpdate { written: Some(now), changed: Some(now), ..Default::default() })?;
    }
    if f.delete_on_close {
        let parent = f.org.stat(f.node)?.parent;
        let gone = match &f.stream {
            Some(s) => f.org.remove_stream(f.node, s).map(|()| false),
            None => f.org.remove(f.node).map(|()| true),
        };
        match gone {
            Ok(true) => {
                events.push(EventKind::Delete { share: f.share.clone(), path: f.path.clone() });
                if let Some(p) = parent {
                    super::create::touch_dir(&f.org, p, now)?;
                }
                return Ok(CloseResponse::default());
            }
            Ok(false) => {}
            Err(e) => tracing::debug!(error = ?e, "delete on close failed"),
        }
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

/// Closes the opens of one tree (TREE_DISCONNECT).
pub fn close_tree_opens(
    server: &Server,
    conn: &mut ConnState,
    session_id: u64,
    tree_id: u32,
    now: SystemTime,
    peer: SocketAddr,
) {
    close_matching(server, conn, now, peer, |o| o.owned_by(session_id, tree_id));
}

/// Closes the opens of one session (LOGOFF, revocation, disconnect).
pub fn close_session_opens(server: &Server, conn: &mut ConnState, session_id: u64, now: SystemTime, peer: SocketAddr) {
    close_matching(server, conn, now, peer, |o| o.session_id == session_id);
}

fn close_matching(
    server: &Server,
    conn: &mut ConnState,
    now: SystemTime,
    peer: SocketAddr,
    pick: impl Fn(&Open) -> bool,
) {
    let ids: Vec<u64> = conn.opens.iter().filter(|(_, o)| pick(o)).map(|(k, _)| *k).collect();
    for id in ids {
        if let Some(o) = conn.opens.remove(&id) {
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
