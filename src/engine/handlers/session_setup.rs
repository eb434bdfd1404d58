//! SESSION_SETUP (MS-SMB2 3.3.5.5): SPNEGO/NTLMv2 against the accounts
//! store, key derivation, the encryption policy, re-authentication
//! (3.3.5.5.3); binds (3.3.5.5.2) are in `session_bind`.

use std::sync::Arc;

use crate::audit::{Event, EventKind, EventResult};
use crate::auth::{FailReason, NtlmServer, ServerNames, Step};
use crate::config::EncryptionPolicy;
use crate::crypto::{CipherId, SigningAlg};
use crate::engine::context::{Ctx, Reply, new_message};
use crate::engine::crypto_state::{PreauthTarget, SessionCrypto};
use crate::engine::services::{FailureOutcome, Principal};
use crate::engine::session::{Session, SessionState};
use crate::engine::status::{Error, Result};
use crate::engine::throttle::{PairOutcome, Policy};
use crate::types::FileTime;
use crate::wire::NtStatus;
use crate::wire::negotiate::{Dialect, caps};
use crate::wire::session_setup::{FLAG_BINDING, SessionSetupRequest, SessionSetupResponse, session_flags};

/// SESSION_SETUP.
pub fn session_setup(ctx: &mut Ctx<'_>) -> Result<Reply> {
    let req = SessionSetupRequest::decode(ctx.msg)?;
    // The response names the request's session unless a new one is made.
    ctx.conn.crypto.last_session_id = Some(ctx.hdr.session_id);
    if req.flags & FLAG_BINDING != 0 {
        return super::session_bind::bind(ctx, &req);
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
        && session.crypto.is_none()
        && let Some(h) = session.preauth.as_mut()
    {
        h.update(ctx.msg);
    }
    let original = session.principal.clone();
    let ntlm = match (&mut session.reauth, &mut session.state) {
        (Some(ntlm), _) => ntlm,
        (None, SessionState::InProgress(ntlm)) => ntlm,
        _ => return Err(NtStatus::REQUEST_NOT_ACCEPTED.into()),
    };
    match ntlm.step(&req.security_buffer, ctx.server.directory.credentials()) {
        Step::Continue(token) => {
            if original.is_none() {
                ctx.conn.crypto.hash_response = Some(PreauthTarget::Session(sid));
            }
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
            let who = Some((principal.org_id, format!("{}\\{}", principal.org, principal.user)));
            if let Some(first) = &original
                && (first.user_id != principal.user_id || first.org_id != principal.org_id)
            {
                // 3.3.5.5.3 lets a re-authentication carry another identity;
                // here a session is one user's for its life, or one session
                // could hold trees and opens of two users (or organizations)
                // and move data between them. The session stays its first
                // user's, untouched.
                tracing::warn!(session = sid, user = principal.user_id.0, "re-authentication as another user refused");
                return reauth_refused(ctx, sid, who, "re-authentication as another user");
            }
            let on_record = || ctx.server.directory.failures_on_record(principal.user_id, ctx.now);
            if ctx.server.logons.locked_for(principal.user_id, ctx.peer.ip(), ctx.now, on_record) {
                // Smart lockout: too many failures from this address; the
                // right password does not help here (elsewhere it does).
                tracing::info!(user = principal.user_id.0, "logon refused: locked out for this address");
                return fail(ctx, sid, Some(principal.user_id), who, "locked out for this address", None);
            }
            if !ctx.server.directory.may_log_on(principal.user_id, ctx.now) {
                tracing::info!(user = principal.user_id.0, "logon refused: account disabled, locked or suspended");
                return fail(ctx, sid, Some(principal.user_id), who, "account disabled, locked out or suspended", None);
            }
            // The owner's logon does not clear the failures that keep
            // another address locked out (smart lockout).
            if !ctx.server.logons.succeeded(principal.user_id, ctx.peer.ip(), ctx.now) {
                ctx.server.directory.logon_succeeded(principal.user_id, ctx.now);
            }
            let reply = if original.is_some() {
                reauthenticated(ctx, sid, principal, auth.token)?
            } else {
                establish(ctx, sid, dialect, principal, &auth.session_key[..], auth.token)?
            };
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
            // A token that does not parse is STATUS_INVALID_PARAMETER, as
            // on Windows and Samba (smbtorture `smb2.session.ntlmssp_bug14932`:
            // an NTLMv2 response whose AV pairs overrun it).
            let status = (f.reason == FailReason::Malformed).then_some(NtStatus::INVALID_PARAMETER);
            fail(ctx, sid, user, who, &reason, status)
        }
    }
}

/// A new session (SessionId 0) or the next leg of one in progress; a valid
/// session re-authenticates in place.
fn start_or_continue(ctx: &mut Ctx<'_>) -> Result<u64> {
    let server = ctx.server;
    let ntlm = new_ntlm(ctx);
    if ctx.hdr.session_id == 0 {
        let sid = server.new_session_id();
        let mut s = Session::new(sid, ntlm, ctx.now);
        s.preauth = ctx.conn.crypto.preauth.clone();
        ctx.conn.sessions.insert(sid, s);
        ctx.conn.channel_sessions.insert(sid);
        return Ok(sid);
    }
    let s = ctx.conn.sessions.get_mut(&ctx.hdr.session_id).ok_or(Error::Status(NtStatus::USER_SESSION_DELETED))?;
    if s.is_valid() && s.reauth.is_none() {
        // Re-authentication (3.3.5.5.3): a new exchange on the same
        // session, which meanwhile stays valid for its user. Its legs were
        // signed or encrypted with the session's keys (`check_request`).
        s.reauth = Some(Box::new(ntlm));
    }
    Ok(s.id)
}

/// A fresh NTLM exchange with this server's names.
pub(super) fn new_ntlm(ctx: &Ctx<'_>) -> NtlmServer {
    let server = ctx.server;
    let names = ServerNames {
        netbios_computer: server.config.server.name.clone(),
        netbios_domain: server.config.server.name.clone(),
        dns_computer: server.config.server.name.to_lowercase(),
        dns_domain: String::new(),
    };
    let mut challenge = [0u8; 8];
    server.fill_random(&mut challenge);
    NtlmServer::new(challenge, FileTime::from_system(ctx.now), names)
}

/// True if the connection can carry SMB3 encryption (3.3.5.5).
fn client_can_encrypt(ctx: &Ctx<'_>) -> bool {
    match ctx.conn.neg.dialect {
        Some(Dialect::SMB311) => ctx.conn.crypto.cipher != 0,
        Some(d) if d.is_smb3() => ctx.conn.neg.client_capabilities & caps::ENCRYPTION != 0,
        _ => false,
    }
}

/// The cipher a session set up on this connection uses.
pub(super) fn cipher(ctx: &Ctx<'_>, dialect: Dialect) -> Option<CipherId> {
    match dialect {
        Dialect::SMB311 => CipherId::from_wire(ctx.conn.crypto.cipher),
        d if d.is_smb3() && ctx.conn.neg.client_capabilities & caps::ENCRYPTION != 0 => Some(CipherId::Aes128Ccm),
        _ => None,
    }
}

/// The signing algorithm a session set up on this connection uses.
pub(super) fn signing_alg(ctx: &Ctx<'_>, dialect: Dialect) -> SigningAlg {
    match dialect {
        Dialect::SMB311 => ctx.conn.crypto.signing_alg.and_then(SigningAlg::from_wire).unwrap_or(SigningAlg::AesCmac),
        d if d.is_smb3() => SigningAlg::AesCmac,
        _ => SigningAlg::HmacSha256,
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
    let cipher = cipher(ctx, dialect);
    let signing = signing_alg(ctx, dialect);
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
        let owner = (principal.org_id, principal.user_id);
        ctx.server.bindable.register(sid, &crypto, dialect, ctx.conn.group.clone(), owner);
        if crypto.can_encrypt() {
            ctx.conn.keys.register(sid, &crypto);
        }
        session.crypto = Some(crypto);
    }
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

/// A re-authentication of the session's own user succeeded. The session
/// keeps its keys and EncryptData (the client does not derive new ones,
/// MS-SMB2 3.2.5.3.2, so neither do we); its trees are re-checked against
/// the accounts as they are now, as a logon would check them.
fn reauthenticated(ctx: &mut Ctx<'_>, sid: u64, principal: Principal, token: Vec<u8>) -> Result<Reply> {
    let session = ctx.conn.sessions.get_mut(&sid).ok_or(Error::Status(NtStatus::USER_SESSION_DELETED))?;
    session.reauth = None;
    session.principal = Some(principal);
    let flags = if session.encrypt_data { session_flags::ENCRYPT_DATA } else { 0 };
    tracing::info!(session = sid, "session re-authenticated");
    crate::engine::revalidate::session(ctx.server, ctx.conn, sid, ctx.now, ctx.peer);
    if !ctx.conn.sessions.get(&sid).is_some_and(Session::is_valid) {
        return Err(NtStatus::NETWORK_SESSION_EXPIRED.into());
    }
    let mut out = new_message();
    SessionSetupResponse { session_flags: flags, security_buffer: token }.encode(&mut out);
    Ok(Reply::ok(out))
}

/// A re-authentication that authenticated someone else: refused, counted
/// as a logon failure in the audit log but not against the account (its
/// password was right), and the session goes on as its first user's.
fn reauth_refused(
    ctx: &mut Ctx<'_>,
    sid: u64,
    who: Option<(crate::types::OrgId, String)>,
    reason: &str,
) -> Result<Reply> {
    if let Some(s) = ctx.conn.sessions.get_mut(&sid) {
        s.reauth = None;
    }
    let policy = Policy::of(&ctx.server.live());
    record_failure(ctx, &policy, &who, reason, "STATUS_ACCESS_DENIED");
    ctx.conn.delay = Some(ctx.server.logons.delay(&policy, ctx.peer.ip(), ctx.now));
    Err(NtStatus::ACCESS_DENIED.into())
}

/// Failed logon: a new session is forgotten, a re-authenticated one ends.
/// The failure counts against the account; the answer is
/// STATUS_LOGON_FAILURE (`status` if given) after the configured delay
/// (unknown users alike).
fn fail(
    ctx: &mut Ctx<'_>,
    sid: u64,
    user: Option<crate::types::UserId>,
    who: Option<(crate::types::OrgId, String)>,
    reason: &str,
    status: Option<NtStatus>,
) -> Result<Reply> {
    if ctx.conn.sessions.get(&sid).is_some_and(|s| s.reauth.is_some()) {
        // A failed re-authentication ends the session (MS-SMB2 3.3.5.5.3)
        // as LOGOFF does: its opens close (pending CHANGE_NOTIFYs end with
        // STATUS_NOTIFY_CLEANUP) and it is dropped once those final
        // responses are signed (smbtorture `smb2.notify.invalid-reauth`,
        // `smb2.session.reauth6`). Only the session's own client can get
        // here: the legs of a re-authentication are signed or encrypted
        // with the session's keys (`security::check_request`), so an
        // injected leg is refused before it touches anything.
        crate::engine::teardown::close_session_opens(ctx.server, ctx.conn, sid, ctx.now, ctx.peer);
        if let Some(s) = ctx.conn.sessions.get_mut(&sid) {
            s.reauth = None;
            s.trees.clear();
        }
        ctx.conn.retire.push(sid);
    } else {
        ctx.conn.sessions.remove(&sid);
    }
    logon_failed(ctx, user, who, reason, status)
}

/// The accounting of a failed logon or bind: counted against the account
/// and address, audited, answered after the configured delay with
/// STATUS_LOGON_FAILURE (`status` if given).
pub(super) fn logon_failed(
    ctx: &mut Ctx<'_>,
    user: Option<crate::types::UserId>,
    who: Option<(crate::types::OrgId, String)>,
    reason: &str,
    status: Option<NtStatus>,
) -> Result<Reply> {
    let policy = Policy::of(&ctx.server.live());
    let ip = ctx.peer.ip();
    // Smart lockout: failures count per (account, address); only those
    // from addresses not yet locked out count towards the account-wide
    // lockout, so one address cannot lock the owner out everywhere.
    let pair = user.map(|u| ctx.server.logons.failed(&policy, u, ip, ctx.now));
    let locked = pair != Some(PairOutcome::AlreadyLocked)
        && ctx.server.directory.logon_failed(user, ctx.now) == FailureOutcome::LockedOut;
    let status = status.unwrap_or(NtStatus::LOGON_FAILURE);
    let denied = if status == NtStatus::LOGON_FAILURE { "STATUS_LOGON_FAILURE" } else { "STATUS_INVALID_PARAMETER" };
    record_failure(ctx, &policy, &who, reason, denied);
    if pair == Some(PairOutcome::LockedNow) && !locked {
        tracing::warn!(user = user.map(|u| u.0), "account locked out for one address after repeated failures");
        let ev = event(ctx, &who, EventKind::Lockout).result(EventResult::Denied("locked out for this address".into()));
        ctx.server.audit.record(ev);
    }
    if locked {
        tracing::warn!(user = user.map(|u| u.0), "account locked out after repeated failures");
        ctx.server.audit.record(event(ctx, &who, EventKind::Lockout).result(EventResult::Denied("locked out".into())));
    }
    // The connection is held this long (`net` reads nothing more from it),
    // longer for an address that keeps failing.
    ctx.conn.delay = Some(ctx.server.logons.delay(&policy, ip, ctx.now));
    Err(status.into())
}

/// An audit event about a logon by `who` (unknown users have no
/// organization: their failures go to the server log).
fn event(ctx: &Ctx<'_>, who: &Option<(crate::types::OrgId, String)>, kind: EventKind) -> Event {
    let mut ev = Event::new(ctx.now, kind).client(ctx.peer);
    if let Some((org, name)) = who {
        if org.0 != 0 {
            ev = ev.org(*org);
        }
        ev = ev.user(crate::printable::clip(name, crate::engine::throttle::MAX_LOGGED_NAME));
    }
    ev
}

/// Audits a failed logon: the first of a burst at once, the rest as one
/// summary when the burst ends (`engine::throttle`).
fn record_failure(
    ctx: &Ctx<'_>,
    policy: &Policy,
    who: &Option<(crate::types::OrgId, String)>,
    reason: &str,
    status: &str,
) {
    let ev = event(ctx, who, EventKind::LogonFailure { reason: reason.to_string() });
    let ev = ev.result(EventResult::Denied(status.into()));
    for e in ctx.server.logons.audit(policy, ev, ctx.peer.ip(), ctx.now) {
        ctx.server.audit.record(e);
    }
}
