//! Per-command handlers (MS-SMB2 3.3.5.x). Each takes the request context and
//! returns a [`Reply`] or an [`Error`] that `engine::status` maps to NTSTATUS.
//!
//! The connection enters here only through [`dispatch`] and
//! [`dispatch_smb1`]; nothing below calls a handler (teardown, timers and
//! revalidation are `engine::teardown`'s). `protocol-tests/layering.rs`
//! checks both.

pub mod cancel;
pub mod change_notify;
pub mod close;
pub mod copychunk;
pub mod create;
pub mod create_disk;
pub mod create_durable;
mod create_plan;
pub mod create_view;
pub mod fsctl;
pub mod ioctl;
pub mod lock;
pub mod logoff;
pub mod negotiate;
pub mod netif;
pub mod oplock_break;
pub mod pipe;
pub mod query_dir;
pub mod query_info;
pub mod rename;
pub mod rw;
pub mod session_bind;
pub mod session_setup;
pub mod set_info;
pub mod tree;

use std::time::SystemTime;

use crate::engine::context::{ConnState, Ctx, Reply};
use crate::engine::server::Server;
use crate::engine::status::Result;
use crate::wire::NtStatus;
use crate::wire::header::Command;

/// An SMB1 NEGOTIATE, the only SMB1 message answered (MS-SMB2 3.3.5.3):
/// the response frame.
pub fn dispatch_smb1(server: &Server, conn: &mut ConnState, now: SystemTime, frame: &[u8]) -> Result<Vec<u8>> {
    negotiate::smb1(server, conn, now, frame)
}

/// Routes a validated request to its handler.
pub fn dispatch(ctx: &mut Ctx<'_>) -> Result<Reply> {
    match ctx.hdr.command {
        Command::NEGOTIATE => negotiate::negotiate(ctx),
        Command::SESSION_SETUP => session_setup::session_setup(ctx),
        Command::LOGOFF => logoff::logoff(ctx),
        Command::TREE_CONNECT => tree::connect(ctx),
        Command::TREE_DISCONNECT => tree::disconnect(ctx),
        Command::CREATE => create::create(ctx),
        Command::CLOSE => close::close(ctx),
        Command::READ => rw::read(ctx),
        Command::WRITE => rw::write(ctx),
        Command::FLUSH => rw::flush(ctx),
        Command::IOCTL => ioctl::ioctl(ctx),
        Command::LOCK => lock::lock(ctx),
        Command::CANCEL => cancel::cancel(ctx),
        Command::QUERY_DIRECTORY => query_dir::query_directory(ctx),
        Command::QUERY_INFO => query_info::query_info(ctx),
        Command::SET_INFO => set_info::set_info(ctx),
        Command::OPLOCK_BREAK => oplock_break::oplock_break(ctx),
        Command::CHANGE_NOTIFY => change_notify::change_notify(ctx),
        Command::ECHO => {
            let mut out = crate::engine::context::new_message();
            crate::wire::echo::EchoResponse.encode(&mut out);
            Ok(Reply::ok(out))
        }
        // Commands past OPLOCK_BREAK do not exist (MS-SMB2 3.3.5.2.6).
        c if c.0 > Command::OPLOCK_BREAK.0 => Err(NtStatus::INVALID_PARAMETER.into()),
        _ => Err(NtStatus::NOT_SUPPORTED.into()),
    }
}
