//! CLOSE (MS-SMB2 3.3.5.10) and the teardown of opens when their tree,
//! session or connection goes away.

use std::time::SystemTime;

use crate::engine::connection::{ConnState, Ctx, Reply};
use crate::engine::open::Open;
use crate::engine::server::Server;
use crate::engine::status::Result;
use crate::wire::close::{CloseRequest, CloseResponse};

/// CLOSE.
pub fn close(ctx: &mut Ctx<'_>) -> Result<Reply> {
    let req = CloseRequest::decode(ctx.msg)?;
    let id = ctx.resolve_file_id(req.file_id)?;
    let open = ctx
        .conn
        .opens
        .remove(&id)
        .ok_or(crate::wire::NtStatus::FILE_CLOSED)?;
    let resp = finish(ctx.server, open, ctx.now, req.flags);
    let mut body = crate::engine::connection::new_message();
    resp.encode(&mut body);
    Ok(Reply::ok(body))
}

/// Releases everything an open holds and returns the CLOSE response fields.
fn finish(_server: &Server, open: Open, _now: SystemTime, _flags: u16) -> CloseResponse {
    drop(open);
    CloseResponse::default()
}

/// Closes the opens of one tree (TREE_DISCONNECT).
pub fn close_tree_opens(
    server: &Server,
    conn: &mut ConnState,
    session_id: u64,
    tree_id: u32,
    now: SystemTime,
) {
    let ids: Vec<u64> = conn
        .opens
        .iter()
        .filter(|(_, o)| o.owned_by(session_id, tree_id))
        .map(|(k, _)| *k)
        .collect();
    for id in ids {
        if let Some(o) = conn.opens.remove(&id) {
            finish(server, o, now, 0);
        }
    }
}

/// Closes the opens of one session (LOGOFF, revocation).
pub fn close_session_opens(
    server: &Server,
    conn: &mut ConnState,
    session_id: u64,
    now: SystemTime,
) {
    let ids: Vec<u64> = conn
        .opens
        .iter()
        .filter(|(_, o)| o.session_id == session_id)
        .map(|(k, _)| *k)
        .collect();
    for id in ids {
        if let Some(o) = conn.opens.remove(&id) {
            finish(server, o, now, 0);
        }
    }
}
