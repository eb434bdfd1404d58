//! Per-command handlers (MS-SMB2 3.3.5.x). Each takes the request context and
//! returns a [`Reply`] or an [`Error`] that `engine::status` maps to NTSTATUS.

pub mod cancel;
pub mod change_notify;
pub mod close;
pub mod copychunk;
pub mod create;
pub mod create_disk;
pub mod create_durable;
mod create_plan;
pub mod fsctl;
pub mod ioctl;
pub mod lock;
pub mod logoff;
pub mod negotiate;
pub mod oplock_break;
pub mod pipe;
pub mod query_dir;
pub mod query_info;
pub mod rename;
pub mod rw;
pub mod session_setup;
pub mod set_info;
pub mod times;
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
        Command::LOCK => lock::lock(ctx),
        Command::CANCEL => cancel::cancel(ctx),
        Command::QUERY_DIRECTORY => query_dir::query_directory(ctx),
        Command::QUERY_INFO => query_info::query_info(ctx),
        Command::SET_INFO => set_info::set_info(ctx),
        Command::OPLOCK_BREAK => oplock_break::oplock_break(ctx),
        Command::CHANGE_NOTIFY => change_notify::change_notify(ctx),
        Command::ECHO => {
            let mut out = crate::engine::connection::new_message();
            crate::wire::echo::EchoResponse.encode(&mut out);
            Ok(Reply::ok(out))
        }
        // Commands past OPLOCK_BREAK do not exist (MS-SMB2 3.3.5.2.6).
        c if c.0 > Command::OPLOCK_BREAK.0 => Err(NtStatus::INVALID_PARAMETER.into()),
        _ => Err(NtStatus::NOT_SUPPORTED.into()),
    }
}

/// The success body of a request that completed asynchronously.
pub fn pending_body(kind: &crate::engine::connection::PendingKind) -> Vec<u8> {
    let mut m = crate::engine::connection::new_message();
    match kind {
        crate::engine::connection::PendingKind::Lock(_) => crate::wire::lock::LockResponse.encode(&mut m),
        crate::engine::connection::PendingKind::Notify => {
            crate::wire::change_notify::ChangeNotifyResponse { data: &[] }.encode(&mut m)
        }
        // A rerun request always finishes with its own response body.
        crate::engine::connection::PendingKind::Rerun(_) => return error_body(),
    }
    m
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

/// The FileId a request names explicitly (not the related-compound
/// all-ones value), so that a related request after it can use it
/// (MS-SMB2 3.3.5.2.7.2: "the FileId of the previous operation").
pub fn request_file_id(hdr: &Header, msg: &[u8]) -> Option<(u64, u64)> {
    let at = match hdr.command {
        Command::CLOSE
        | Command::FLUSH
        | Command::LOCK
        | Command::IOCTL
        | Command::QUERY_DIRECTORY
        | Command::CHANGE_NOTIFY
        | Command::OPLOCK_BREAK => 8,
        Command::READ | Command::WRITE | Command::SET_INFO => 16,
        Command::QUERY_INFO => 24,
        _ => return None,
    };
    let b = msg.get(HEADER_LEN + at..HEADER_LEN + at + 16)?;
    let p = u64::from_le_bytes(b[..8].try_into().ok()?);
    let v = u64::from_le_bytes(b[8..].try_into().ok()?);
    (p != u64::MAX || v != u64::MAX).then_some((p, v))
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
