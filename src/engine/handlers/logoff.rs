//! LOGOFF (MS-SMB2 3.3.5.6) and connection teardown.

use std::net::SocketAddr;
use std::time::SystemTime;

use crate::engine::connection::ConnState;
use crate::engine::server::Server;

/// Closes every open and session of a connection that is going away.
pub fn close_all(_server: &Server, conn: &mut ConnState, _now: SystemTime, _peer: SocketAddr) {
    conn.opens.clear();
    conn.sessions.clear();
}
