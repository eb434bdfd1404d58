//! SESSION_SETUP (MS-SMB2 3.3.5.5): SPNEGO/NTLMv2 against the accounts
//! store, key derivation, and the encryption policy.

use std::sync::Arc;
use std::time::Duration;

use crate::audit::{Event, EventKind, EventResult};
use crate::auth::{NtlmServer, ServerNames, Step};
use crate::config::EncryptionPolicy;
use crate::crypto::{CipherId, SigningAlg};
use crate::engine::context::{Ctx, Reply, new_message};
use crate::engine::crypto_state::{PreauthTarget, SessionCrypto};
use crate::engine::services::{FailureOutcome, Principal};
use crate::engine::session::{Session, SessionState};
use crate::engine::status::{Error, Result};
use crate::types::FileTime;
use crate::wire::NtStatus;
use crate::wire::negotiate::{Dialect, caps};
use crate::wire::session_setup::{FLAG_BINDING, SessionSetupRequest, SessionSetupResponse, session_flags};

/// SESSION_SETUP.
pub fn session_setup(ctx: &mut Ctx<'_>) -> Result<Reply> {
    let req = SessionSetupRequest::decode(ctx.msg)?;
    if req.flags & FLAG_BINDING != 0 {
        // Multichannel is not offered, so there is nothing to bind to.
        return Err(NtStatus::REQUEST_NOT_ACCEPTED.into());
    }
    if ctx.server.live().security.encryption == EncryptionPolicy::Required && !client_can_encrypt(ctx) {
        // 3.3.5.5: Server.EncryptData with RejectUnencryptedAccess and a
        // client that cannot encrypt.
        return Err(NtStatus::ACCESS_DENIED.into());
    }
    let sid = start_or_continue(ctx)?;
    ctx.conn.crypto.last_session_id = Some(sid);
    let dialect = ctx.conn.neg.dialect.unwrap_or(Dialect::SMB202);
    let session = ctx.conn.sessions.get_mut(&sid).ok_or(Error::Status(NtStatus::USER_SESSION_DELETED))?;
    if dialect == Dialect::SMB311
        && let Some(h) = session.preauth.as_mut()
    {
        h.update(ctx.msg);
    }
    let SessionState::InProgress(ntlm) = &mut session.state else {
        return Err(NtStatus::REQUEST_NOT_ACCEPTED.into());
    };
    match ntlm.step(&req.security_buffer, ctx.server.directory.credentials()) {
        Step::Continue(token) => {
            ctx.conn.crypto.hash_response = Some(PreauthTarget::Session(sid));
            let mut out = new_message();
            SessionSetupResponse { session_flags: 0, security_buffer: token }.encode(&mut out);
            Ok(Reply::Body(NtStatus::MORE_PROCESSING_REQUIRED, out))
        }
        Step::Done(auth) => {
            let principal = Principal {
                user_id: auth.credential.user_id,
                org_id: auth.credential.org_id,
                user: auth.credential.user.clone(),
                org: auth.credential.org.clone(),
            };
            if !ctx.server.directory.may_log_on(principal.user_id, ctx.now) {
                tracing::info!(user = principal.user_id.0, "logon refused: account disabled, locked or suspended");
                let who = Some((principal.org_id, format!("{}\\{}", principal.org, principal.user)));
                return fail(ctx, sid, Some(principal.user_id), who, "account disabled, locked out or suspended");
            }
            ctx.server.directory.logon_succeeded(principal.user_id, ctx.now);
            let reply = establish(ctx, sid, dialect, principal, &auth.session_key[..], auth.token)?;
            let s = ctx.conn.sessions.get(&sid).and_then(|s| s.crypto.clone().map(|c| (c, s.encrypt_data)));
            if let Some((c, enc)) = s {
                let kind = EventKind::LogonSuccess {
                    dialect: dialect.0,
                    signing: Some(format!("{:?}", c.signing_alg())),
                    encryption: if enc { c.cipher().map(|x| format!("{x:?}")) } else { None },
                };
                ctx.audit(kind, EventResult::Ok);
            }
            Ok(reply)
        }
        Step::Fail(f) => {
            tracing::info!(reason = ?f.reason, "logon failed");
            let cred = ctx.server.directory.credentials().lookup(&f.domain, &f.user).ok().flatten();
            let user = cred.as_ref().map(|c| c.user_id);
            let who = cred.as_ref().map(|c| (c.org_id, format!("{}\\{}", c.org, c.user)));
            let reason = format!("{:?}", f.reason);
            let (domain, name) = (f.domain.clone(), f.user.clone());
            let who = who.or(Some((crate::types::OrgId(0), format!("{domain}\\{name}"))));
            fail(ctx, sid, user, who, &reason)
        }
    }
}

/// A new session (SessionId 0) or the next leg of one in progress; a valid
/// session re-authenticates in place.
fn start_or_continue(ctx: &mut Ctx<'_>) -> Result<u64> {
    let server = ctx.server;
    let names = ServerNames {
        netbios_computer: server.config.server.name.clone(),
        netbios_domain: server.config.server.name.clone(),
        dns_computer: server.config.server.name.to_lowercase(),
        dns_domain: String::new(),
    };
    let mut challenge = [0u8; 8];
    server.fill_random(&mut challenge);
    let ntlm = NtlmServer::new(challenge, FileTime::from_system(ctx.now), names);
    if ctx.hdr.session_id == 0 {
        let sid = server.new_session_id();
        let mut s = Session::new(sid, ntlm, ctx.now);
        s.preauth = ctx.conn.crypto.preauth.clone();
        ctx.conn.sessions.insert(sid, s);
        return Ok(sid);
    }
    let s = ctx.conn.sessions.get_mut(&ctx.hdr.session_id).ok_or(Error::Status(NtStatus::USER_SESSION_DELETED))?;
    if s.is_valid() {
        // Re-authentication (3.3.5.5.1): a new exchange on the same session.
        s.state = SessionState::InProgress(Box::new(ntlm));
        s.preauth = ctx.conn.crypto.preauth.clone();
    }
    Ok(s.id)
}

/// True if the connection can carry SMB3 encryption (3.3.5.5).
fn client_can_encrypt(ctx: &Ctx<'_>) -> bool {
    match ctx.conn.neg.dialect {
        Some(Dialect::SMB311) => ctx.conn.crypto.cipher != 0,
        Some(d) if d.is_smb3() => ctx.conn.neg.client_capabilities & caps::ENCRYPTION != 0,
        _ => false,
    }
}

/// Authentication succeeded: derive keys, set the policy, answer signed.
fn establish(
    ctx: &mut Ctx<'_>,
    sid: u64,
    dialect: Dialect,
    principal: Principal,
    session_key: &[u8],
    token: Vec<u8>,
) -> Result<Reply> {
    let cipher = match dialect {
        Dialect::SMB311 => CipherId::from_wire(ctx.conn.crypto.cipher),
        d if d.is_smb3() && ctx.conn.neg.client_capabilities & caps::ENCRYPTION != 0 => Some(CipherId::Aes128Ccm),
        _ => None,
    };
    let signing = match dialect {
        Dialect::SMB311 => ctx.conn.crypto.signing_alg.and_then(SigningAlg::from_wire).unwrap_or(SigningAlg::AesCmac),
        d if d.is_smb3() => SigningAlg::AesCmac,
        _ => SigningAlg::HmacSha256,
    };
    let policy = ctx.server.live().security.encryption;
    let signing_required = ctx.server.config.security.signing_required || ctx.conn.neg.client_security_mode & 0x2 != 0;
    let session = ctx.conn.sessions.get_mut(&sid).ok_or(Error::Status(NtStatus::USER_SESSION_DELETED))?;
    if session.crypto.is_none() {
        let mut seed = [0u8; 16];
        ctx.server.fill_random(&mut seed);
        let crypto = SessionCrypto::derive(dialect, session_key, session.preauth.as_ref(), cipher, signing, seed);
        // Session.EncryptData (3.3.5.5.3): required or desired, when the
        // client can encrypt (a client that cannot was refused above when
        // encryption is required); SMB 2.x clients stay signed-only.
        session.encrypt_data = match policy {
            EncryptionPolicy::Required | EncryptionPolicy::Desired => crypto.can_encrypt(),
            EncryptionPolicy::Off => false,
        };
        let crypto = Arc::new(crypto);
        if crypto.can_encrypt() {
            ctx.conn.keys.register(sid, &crypto);
        }
        session.crypto = Some(crypto);
    }
    // A re-authentication keeps the session's keys and EncryptData: the
    // client does not derive new ones (MS-SMB2 3.2.5.3.2), so neither do we.
    let encrypt = session.encrypt_data;
    if let Some(c) = &session.crypto {
        tracing::info!(
            session = sid,
            dialect = %format!("{:x}", dialect.0),
            signing = ?c.signing_alg(),
            cipher = ?c.cipher(),
            encrypt_data = encrypt,
            "session established"
        );
    }
    session.state = SessionState::Valid;
    session.principal = Some(principal);
    // MS-SMB2 3.3.5.5.3: signing is required if the server requires it
    // (the default) or the client asked for it in NEGOTIATE.
    session.signing_required = signing_required;
    session.encrypt_data = encrypt;
    let mut out = new_message();
    let flags = if encrypt { session_flags::ENCRYPT_DATA } else { 0 };
    SessionSetupResponse { session_flags: flags, security_buffer: token }.encode(&mut out);
    Ok(Reply::ok(out))
}

/// Failed logon: forget the session, count the failure, answer
/// STATUS_LOGON_FAILURE after the configured delay (unknown users alike).
fn fail(
    ctx: &mut Ctx<'_>,
    sid: u64,
    user: Option<crate::types::UserId>,
    who: Option<(crate::types::OrgId, String)>,
    reason: &str,
) -> Result<Reply> {
    if ctx.conn.sessions.get(&sid).is_some_and(|s| s.crypto.is_some()) {
        // A failed re-authentication (3.3.5.5.1) ends the session as LOGOFF
        // does: its opens close (pending CHANGE_NOTIFYs end with
        // STATUS_NOTIFY_CLEANUP) and it is dropped once those final
        // responses are signed (smbtorture `smb2.notify.invalid-reauth`).
        crate::engine::teardown::close_session_opens(ctx.server, ctx.conn, sid, ctx.now, ctx.peer);
        if let Some(s) = ctx.conn.sessions.get_mut(&sid) {
            s.trees.clear();
        }
        ctx.conn.retire.push(sid);
    } else {
        ctx.conn.sessions.remove(&sid);
    }
    ctx.conn.crypto.last_session_id = Some(sid);
    let locked = ctx.server.directory.logon_failed(user, ctx.now) == FailureOutcome::LockedOut;
    // Unknown users have no organization: their failures go to the server log.
    let event = |kind| {
        let mut ev = Event::new(ctx.now, kind).client(ctx.peer);
        if let Some((org, name)) = &who {
            if org.0 != 0 {
                ev = ev.org(*org);
            }
            ev = ev.user(name.clone());
        }
        ev
    };
    ctx.server.audit.record(
        event(EventKind::LogonFailure { reason: reason.to_string() })
            .result(EventResult::Denied("STATUS_LOGON_FAILURE".into())),
    );
    if locked {
        tracing::warn!(user = user.map(|u| u.0), "account locked out after repeated failures");
        ctx.server.audit.record(event(EventKind::Lockout).result(EventResult::Denied("locked out".into())));
    }
    ctx.conn.delay = Some(Duration::from_millis(ctx.server.live().security.logon_failure_delay_ms));
    Err(NtStatus::LOGON_FAILURE.into())
}
