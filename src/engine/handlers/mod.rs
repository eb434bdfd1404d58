//! Per-command handlers (MS-SMB2 3.3.5.x). Each takes the request context and
//! returns a [`Reply`] or an [`Error`] that `engine::status` maps to NTSTATUS.

pub mod close;
pub mod create;
pub mod ioctl;
pub mod logoff;
pub mod negotiate;
pub mod pipe;
pub mod query_dir;
pub mod query_info;
pub mod rw;
pub mod session_setup;
pub mod set_info;
pub mod tree;

use crate::engine::connection::{Ctx, Reply};
use crate::engine::status::Result;
use crate::wire::header::{Command, Header};
use crate::wire::{HEADER_LEN, NtStatus};

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
        Command::QUERY_DIRECTORY => query_dir::query_directory(ctx),
        Command::QUERY_INFO => query_info::query_info(ctx),
        Command::SET_INFO => set_info::set_info(ctx),
        Command::ECHO => {
            let mut out = crate::engine::connection::new_message();
            crate::wire::echo::EchoResponse.encode(&mut out);
            Ok(Reply::ok(out))
        }
        _ => Err(NtStatus::NOT_SUPPORTED.into()),
    }
}

/// The ERROR response body (MS-SMB2 2.2.2): StructureSize 9, no error
/// contexts, ByteCount 0, and the one byte of ErrorData the size requires.
pub fn error_body() -> Vec<u8> {
    let mut m = crate::engine::connection::new_message();
    m.extend_from_slice(&[9, 0, 0, 0, 0, 0, 0, 0, 0]);
    m
}

fn le32(msg: &[u8], body_off: usize) -> usize {
    msg.get(HEADER_LEN + body_off..HEADER_LEN + body_off + 4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
        .unwrap_or(0)
}

/// The payload size that CreditCharge must cover (MS-SMB2 3.3.5.2.5): the
/// larger of what the request carries and what the response may carry.
pub fn payload_size(hdr: &Header, msg: &[u8]) -> usize {
    let sent = msg.len().saturating_sub(HEADER_LEN);
    match hdr.command {
        Command::READ | Command::WRITE => le32(msg, 4),
        Command::IOCTL => le32(msg, 28).max(le32(msg, 44)),
        Command::QUERY_DIRECTORY => le32(msg, 28),
        Command::QUERY_INFO => le32(msg, 4).max(le32(msg, 12)),
        Command::CHANGE_NOTIFY => le32(msg, 4),
        Command::SET_INFO => le32(msg, 4),
        _ => sent,
    }
}

/// The FileId in a successful CREATE response body (MS-SMB2 2.2.14, offset 64),
/// remembered for related compounds.
pub fn created_file_id(hdr: &Header, status: NtStatus, body: Option<&[u8]>) -> Option<(u64, u64)> {
    if hdr.command != Command::CREATE || status.is_error() {
        return None;
    }
    let b = body?.get(HEADER_LEN + 64..HEADER_LEN + 80)?;
    let p = u64::from_le_bytes(b[..8].try_into().ok()?);
    let v = u64::from_le_bytes(b[8..].try_into().ok()?);
    Some((p, v))
}
