//! SESSION_SETUP with SMB2_SESSION_FLAG_BINDING (MS-SMB2 3.3.5.5.2): a
//! connection asks to become a channel of an existing session. The checks
//! against the session and the refusals are in `engine::binding`; here the
//! bind authenticates the session's own user, the channel's signing key is
//! derived (3.3.5.5.3 for a binding: from the bind's own session key and,
//! for 3.1.1, its own preauth hash), and the connection joins the session's
//! group once the answer, signed with that key, is out.

use std::sync::Arc;

use crate::auth::{FailReason, Step};
use crate::engine::binding::{self, Channel, InProgress};
use crate::engine::context::{Ctx, Reply, new_message};
use crate::engine::crypto_state::{PreauthTarget, SessionCrypto};
use crate::engine::group::Group;
use crate::engine::status::Result;
use crate::wire::NtStatus;
use crate::wire::negotiate::Dialect;
use crate::wire::session_setup::{SessionSetupRequest, SessionSetupResponse};

use super::session_setup::{cipher, logon_failed, new_ntlm, signing_alg};

/// A bind request: refused with the status the named session and this
/// connection call for, or one leg of the bind's authentication.
pub fn bind(ctx: &mut Ctx<'_>, req: &SessionSetupRequest) -> Result<Reply> {
    let sid = ctx.hdr.session_id;
    if sid == 0 {
        return Err(NtStatus::INVALID_PARAMETER.into());
    }
    if ctx.conn.on_channel(sid) {
        // Already a channel of this session (or one being set up here).
        return Err(NtStatus::REQUEST_NOT_ACCEPTED.into());
    }
    let Some((crypto, target)) = ctx.server.bindable.lookup(sid) else {
        return Err(NtStatus::USER_SESSION_DELETED.into());
    };
    if !(ctx.hdr.is_signed() && crypto.signer().verify(ctx.msg).is_ok()) {
        // Only a holder of the session's key learns that it exists (and
        // what its connection negotiated), and gets an answer signed with
        // that key: anybody else, another tenant probing session ids, is
        // answered as for a session that does not exist, unsigned. (Samba
        // answers an unsigned bind with INVALID_PARAMETER; every bind of
        // smbtorture is signed with the session's key.)
        return Err(NtStatus::USER_SESSION_DELETED.into());
    }
    // Refusals and the legs before the last are signed with the session's
    // key, as the client that signed the request expects (Samba bug 14512).
    ctx.conn.crypto.bind_key = Some((sid, crypto.clone()));
    let dialect = ctx.conn.neg.dialect.unwrap_or(Dialect::SMB202);
    let channel = Channel { dialect, signing: signing_alg(ctx, dialect), cipher: cipher(ctx, dialect) };
    if let Some(status) = binding::refusal(&crypto, target.dialect, &channel) {
        tracing::info!(session = sid, status = ?status, "session bind refused");
        return Err(status.into());
    }
    let group = target.group.upgrade().and_then(|g| g.downcast::<Group>().ok()).map(|g| Group::current(&g));
    let Some(group) = group.filter(|g| g.is_live() && ctx.server.config.server.multichannel) else {
        // No multichannel (3.3.5.5), or the session's last channel is going.
        tracing::info!(session = sid, "session bind refused (multichannel off or session going)");
        return Err(NtStatus::REQUEST_NOT_ACCEPTED.into());
    };
    if !group.has_room() {
        // Windows' and Samba's limit of 32 channels per session
        // (smbtorture `smb2.multichannel.generic.num_channels`).
        return Err(NtStatus::INSUFFICIENT_RESOURCES.into());
    }
    let mut b = match ctx.conn.binding.take() {
        Some(b) if b.session_id == sid => b,
        _ => Box::new(InProgress { session_id: sid, ntlm: new_ntlm(ctx), preauth: ctx.conn.crypto.preauth.clone() }),
    };
    if dialect == Dialect::SMB311
        && let Some(h) = b.preauth.as_mut()
    {
        h.update(ctx.msg);
    }
    match b.ntlm.step(&req.security_buffer, ctx.server.directory.credentials()) {
        Step::Continue(token) => {
            ctx.conn.binding = Some(b);
            ctx.conn.crypto.hash_response = Some(PreauthTarget::Binding);
            let mut out = new_message();
            SessionSetupResponse { session_flags: 0, security_buffer: token }.encode(&mut out);
            Ok(Reply::Body(NtStatus::MORE_PROCESSING_REQUIRED, out))
        }
        Step::Done(auth) => {
            let c = &auth.credential;
            if (c.org_id, c.user_id) != target.owner {
                // 3.3.5.5.2: the bind must authenticate the session's own
                // user (smbtorture `smb2.session.bind_different_user`).
                tracing::warn!(session = sid, user = c.user_id.0, "session bind as another user refused");
                return Err(NtStatus::ACCESS_DENIED.into());
            }
            if !ctx.server.directory.may_log_on(c.user_id, ctx.now) {
                return Err(NtStatus::ACCESS_DENIED.into());
            }
            let mut seed = [0u8; 16];
            ctx.server.fill_random(&mut seed);
            // Channel.SigningKey: the bind's keys, with the signing
            // algorithm this connection negotiated (as Samba: a CMAC
            // session may have an HMAC channel); sealing stays with the
            // session's keys.
            let alg = channel.signing;
            let key = SessionCrypto::derive(dialect, &auth.session_key[..], b.preauth.as_ref(), None, alg, seed);
            ctx.conn.crypto.channel_keys.insert(sid, Arc::new(key));
            if crypto.can_encrypt() {
                ctx.conn.keys.register(sid, &crypto);
            }
            ctx.conn.channel_sessions.insert(sid);
            ctx.conn.join = Some((group, sid));
            ctx.conn.crypto.last_session_id = Some(sid);
            tracing::info!(session = sid, peer = %ctx.peer, "session bound to a new channel");
            let mut out = new_message();
            SessionSetupResponse { session_flags: 0, security_buffer: auth.token }.encode(&mut out);
            Ok(Reply::ok(out))
        }
        Step::Fail(f) => {
            tracing::info!(reason = ?f.reason, "session bind authentication failed");
            let cred = ctx.server.directory.credentials().lookup(&f.domain, &f.user).ok().flatten();
            let user = cred.as_ref().map(|c| c.user_id);
            let who = cred.as_ref().map(|c| (c.org_id, format!("{}\\{}", c.org, c.user)));
            let status = (f.reason == FailReason::Malformed).then_some(NtStatus::INVALID_PARAMETER);
            logon_failed(ctx, user, who, &format!("bind: {:?}", f.reason), status)
        }
    }
}
