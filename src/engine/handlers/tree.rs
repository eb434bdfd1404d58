//! TREE_CONNECT (MS-SMB2 3.3.5.7) and TREE_DISCONNECT (3.3.5.8).

use crate::audit::{EventKind, EventResult};
use crate::config::EncryptionPolicy;
use crate::engine::context::{Ctx, Reply};
use crate::engine::services::Access;
use crate::engine::session::{Tree, TreeKind};
use crate::engine::status::{Error, Result};
use crate::wire::NtStatus;
use crate::wire::fscc::consts::access;
use crate::wire::tree_connect::{TreeConnectRequest, TreeConnectResponse, share_flags, share_type};
use crate::wire::tree_disconnect::TreeDisconnectResponse;

/// TREE_CONNECT: IPC$ or a disk share of the session's organization.
pub fn connect(ctx: &mut Ctx<'_>) -> Result<Reply> {
    let req = TreeConnectRequest::decode(ctx.msg)?;
    let share = req.server_and_share().map(|(_, s)| s.to_string()).unwrap_or_default();
    let r = connect_inner(ctx, &req);
    let result = match &r {
        Ok(_) => EventResult::Ok,
        Err(e) => crate::engine::audit::result_of(e.status()),
    };
    ctx.audit(EventKind::TreeConnect { share }, result);
    r
}

fn connect_inner(ctx: &mut Ctx<'_>, req: &TreeConnectRequest) -> Result<Reply> {
    let (_server, share_name) = req.server_and_share().ok_or(Error::Status(NtStatus::BAD_NETWORK_NAME))?;
    let session = ctx.session()?;
    let principal = session.principal.clone().ok_or(Error::Status(NtStatus::ACCESS_DENIED))?;
    let session_encrypts = session.encrypt_data;
    let can_encrypt = session.crypto.as_ref().is_some_and(|c| c.can_encrypt());
    let (tree, resp) = if share_name.eq_ignore_ascii_case("IPC$") {
        let tree = Tree { kind: TreeKind::Ipc, access: Access::Read, encrypt_data: session_encrypts };
        let resp = TreeConnectResponse {
            share_type: share_type::PIPE,
            share_flags: if session_encrypts { share_flags::ENCRYPT_DATA } else { 0 },
            capabilities: 0,
            maximal_access: access::FILE_ALL_ACCESS,
        };
        (tree, resp)
    } else {
        let dir = &ctx.server.directory;
        // The session's organization selects the share (names are per
        // organization); the org check stays as a second guard.
        let mut share = dir
            .find_share(principal.org_id, share_name)
            .filter(|s| s.org_id == principal.org_id)
            .ok_or(Error::Status(NtStatus::BAD_NETWORK_NAME))?;
        let level = dir.access(&share, principal.user_id);
        if level == Access::None {
            return Err(NtStatus::ACCESS_DENIED.into());
        }
        ctx.server.share_root(&mut share)?;
        let policy = share.encryption.unwrap_or(ctx.server.live().security.encryption);
        let encrypt = match policy {
            EncryptionPolicy::Required if !can_encrypt => {
                // MS-SMB2 3.3.5.7: Share.EncryptData and the client cannot encrypt.
                return Err(NtStatus::ACCESS_DENIED.into());
            }
            EncryptionPolicy::Required => true,
            EncryptionPolicy::Desired => can_encrypt,
            EncryptionPolicy::Off => session_encrypts,
        };
        let mut flags = share_flags::MANUAL_CACHING;
        if encrypt {
            flags |= share_flags::ENCRYPT_DATA;
        }
        if share.access_based_enum {
            // MS-SMB2 2.2.10: listings are filtered (handlers::query_dir).
            flags |= share_flags::ACCESS_BASED_DIRECTORY_ENUM;
        }
        let resp = TreeConnectResponse {
            share_type: share_type::DISK,
            share_flags: flags,
            capabilities: 0,
            maximal_access: maximal_access(level),
        };
        (Tree { kind: TreeKind::Disk(share), access: level, encrypt_data: encrypt }, resp)
    };
    let session = ctx.session_mut()?;
    let tree_id = session.add_tree(tree);
    ctx.conn.reply_tree_id = Some(tree_id);
    let mut body = crate::engine::context::new_message();
    resp.encode(&mut body);
    Ok(Reply::ok(body))
}

/// The maximal access a share permission allows (TreeConnect.MaximalAccess).
pub fn maximal_access(level: Access) -> u32 {
    match level {
        Access::None => 0,
        Access::Read => access::FILE_GENERIC_READ | access::FILE_GENERIC_EXECUTE,
        Access::ReadWrite | Access::Admin => access::FILE_ALL_ACCESS,
    }
}

/// TREE_DISCONNECT: closes the tree's opens, then the tree.
pub fn disconnect(ctx: &mut Ctx<'_>) -> Result<Reply> {
    let (sid, tid) = (ctx.hdr.session_id, ctx.hdr.tree_id);
    crate::engine::teardown::close_tree_opens(ctx.server, ctx.conn, sid, tid, ctx.now, ctx.peer);
    let session = ctx.session_mut()?;
    let tree = session.trees.remove(&tid).ok_or(Error::Status(NtStatus::NETWORK_NAME_DELETED))?;
    ctx.audit(EventKind::TreeDisconnect { share: tree.share_name().to_string() }, EventResult::Ok);
    let mut body = crate::engine::context::new_message();
    TreeDisconnectResponse.encode(&mut body);
    Ok(Reply::ok(body))
}
