//! NEGOTIATE (MS-SMB2 3.3.5.4) and the SMB1 multi-protocol negotiate (3.3.5.3).

use std::time::SystemTime;

use crate::engine::context::{ConnState, Ctx, Reply};
use crate::engine::server::{MAX_IO, Server};
use crate::engine::status::{Error, Result};
use crate::types::FileTime;
use crate::wire::NtStatus;
use crate::wire::header::{Command, Header, flags};
use crate::wire::negotiate::{
    self as neg, Dialect, NegContext, NegotiateRequest, NegotiateResponse, Smb1Offer, caps, ctx, security_mode,
};

/// Dialects we implement, highest first.
pub(crate) const SUPPORTED: [Dialect; 5] =
    [Dialect::SMB311, Dialect::SMB302, Dialect::SMB30, Dialect::SMB21, Dialect::SMB202];

/// Ciphers we implement (MS-SMB2 2.2.3.1.2): AES-128-CCM 1, AES-128-GCM 2,
/// AES-256-CCM 3, AES-256-GCM 4.
const CIPHERS: [u16; 4] = [1, 2, 3, 4];
/// Signing algorithms (2.2.3.1.7): HMAC-SHA256 0, AES-CMAC 1, AES-GMAC 2.
const SIGNING_ALGS: [u16; 3] = [0, 1, 2];

/// STATUS_SMB_NO_PREAUTH_INTEGRITY_HASH_OVERLAP.
const NO_PREAUTH_OVERLAP: NtStatus = NtStatus(0xC05D_0000);

/// SMB2 NEGOTIATE.
pub fn negotiate(ctx: &mut Ctx<'_>) -> Result<Reply> {
    if ctx.conn.neg.dialect.is_some() {
        // A second NEGOTIATE on a connection is a protocol violation (3.3.5.4).
        return Err(Error::Disconnect("second NEGOTIATE"));
    }
    let req = NegotiateRequest::decode(ctx.msg)?;
    let server = ctx.server;
    let dialect = SUPPORTED
        .into_iter()
        .filter(|d| *d >= server.min_dialect && *d <= server.max_dialect)
        .find(|d| req.dialects.contains(d))
        .ok_or(Error::Status(NtStatus::NOT_SUPPORTED))?;
    let mut contexts = Vec::new();
    if dialect == Dialect::SMB311 {
        contexts = negotiate_contexts(ctx.server, ctx.conn, &req)?;
    }
    let resp = build_response(server, ctx.conn, ctx.now, dialect, &req, contexts);
    let mut body = crate::engine::context::new_message();
    resp.encode(&mut body);
    let conn = &mut ctx.conn;
    conn.neg.dialect = Some(dialect);
    conn.neg.client_guid = req.client_guid;
    conn.neg.client_capabilities = req.capabilities;
    conn.neg.client_security_mode = req.security_mode;
    conn.neg.client_dialects = req.dialects.clone();
    conn.neg.server_capabilities = resp.capabilities;
    conn.neg.server_security_mode = resp.security_mode;
    conn.neg.large_mtu = dialect >= Dialect::SMB21;
    if dialect == Dialect::SMB311 {
        // Preauth integrity (3.3.5.4): H(0^64 ‖ request), then the connection
        // layer chains in the response bytes exactly as they are sent.
        let mut h = crate::crypto::PreauthHash::new();
        h.update(ctx.msg);
        conn.crypto.preauth = Some(h);
        conn.crypto.hash_response = Some(crate::engine::crypto_state::PreauthTarget::Connection);
    }
    Ok(Reply::ok(body))
}

/// The SMB2 NEGOTIATE response to an SMB1 negotiate: header and body.
fn smb1_response(body: Vec<u8>) -> Vec<u8> {
    let h = Header { command: Command::NEGOTIATE, credits: 1, flags: flags::SERVER_TO_REDIR, ..Default::default() };
    let mut m = body;
    let mut hb = Vec::with_capacity(64);
    h.encode(&mut hb);
    m[..64].copy_from_slice(&hb);
    m
}

/// Validates the 3.1.1 contexts and picks cipher and signing algorithm (3.3.5.4).
fn negotiate_contexts(server: &Server, conn: &mut ConnState, req: &NegotiateRequest) -> Result<Vec<NegContext>> {
    let count = |t: u16| req.contexts.iter().filter(|c| c.context_type == t).count();
    if count(ctx::PREAUTH_INTEGRITY) != 1 || count(ctx::ENCRYPTION) > 1 || count(ctx::SIGNING) > 1 {
        return Err(NtStatus::INVALID_PARAMETER.into());
    }
    let pre = req.context(ctx::PREAUTH_INTEGRITY).ok_or(Error::Status(NtStatus::INVALID_PARAMETER))?;
    let (algs, _salt) = neg::decode_preauth(&pre.data)?;
    if !algs.contains(&neg::HASH_SHA512) {
        return Err(NO_PREAUTH_OVERLAP.into());
    }
    let mut salt = [0u8; 32];
    server.fill_random(&mut salt);
    let mut out = vec![NegContext { context_type: ctx::PREAUTH_INTEGRITY, data: neg::encode_preauth(&salt) }];
    if let Some(c) = req.context(ctx::ENCRYPTION) {
        // The client lists ciphers in its order of preference (3.3.5.4).
        let offered = neg::u16_list(&c.data)?;
        let chosen = offered.iter().copied().find(|id| CIPHERS.contains(id)).unwrap_or(0);
        conn.crypto.cipher = chosen;
        out.push(NegContext { context_type: ctx::ENCRYPTION, data: neg::encode_u16_list(&[chosen]) });
    }
    if let Some(c) = req.context(ctx::SIGNING) {
        let offered = neg::u16_list(&c.data)?;
        if offered.is_empty() {
            return Err(NtStatus::INVALID_PARAMETER.into());
        }
        // No overlap: fall back to AES-CMAC as if the context were absent.
        let chosen = offered.iter().copied().find(|id| SIGNING_ALGS.contains(id)).unwrap_or(1);
        conn.crypto.signing_alg = Some(chosen);
        out.push(NegContext { context_type: ctx::SIGNING, data: neg::encode_u16_list(&[chosen]) });
    }
    Ok(out)
}

fn build_response(
    server: &Server,
    conn: &ConnState,
    now: SystemTime,
    dialect: Dialect,
    req: &NegotiateRequest,
    contexts: Vec<NegContext>,
) -> NegotiateResponse {
    let mut capabilities = 0;
    if dialect >= Dialect::SMB21 {
        // Leases (MS-SMB2 3.3.5.4); no directory leasing.
        capabilities |= caps::LARGE_MTU | caps::LEASING;
    }
    if (dialect == Dialect::SMB30 || dialect == Dialect::SMB302) && req.capabilities & caps::ENCRYPTION != 0 {
        capabilities |= caps::ENCRYPTION;
    }
    if dialect.is_smb3() && server.config.server.multichannel {
        // Sessions may be bound to further connections (3.3.5.5.2).
        capabilities |= caps::MULTI_CHANNEL;
    }
    let _ = conn;
    let max = if dialect >= Dialect::SMB21 { MAX_IO } else { 65536 };
    NegotiateResponse {
        security_mode: server_security_mode(server),
        dialect,
        server_guid: server.guid,
        capabilities,
        max_transact_size: max,
        max_read_size: max,
        max_write_size: max,
        system_time: FileTime::from_system(now).0,
        server_start_time: 0,
        security_buffer: crate::auth::initial_token(),
        contexts,
    }
}

fn server_security_mode(server: &Server) -> u16 {
    let mut m = security_mode::SIGNING_ENABLED;
    if server.config.security.signing_required {
        m |= security_mode::SIGNING_REQUIRED;
    }
    m
}

/// SMB1 NEGOTIATE offering SMB2: answer with an SMB2 NEGOTIATE response
/// carrying the wildcard dialect 0x02FF, or 2.0.2 if that is all it offers.
pub fn smb1(server: &Server, conn: &mut ConnState, now: SystemTime, frame: &[u8]) -> Result<Vec<u8>> {
    let offer = neg::parse_smb1_negotiate(frame).map_err(|_| Error::Disconnect("bad SMB1 negotiate"))?;
    let dialect = match offer {
        Smb1Offer::Wildcard => Dialect::WILDCARD,
        Smb1Offer::Smb202 if server.min_dialect <= Dialect::SMB202 => Dialect::SMB202,
        _ => return Err(Error::Disconnect("SMB1 negotiate without an SMB2 dialect")),
    };
    // The SMB1 request used message id 0; grant one credit for the SMB2 NEGOTIATE.
    conn.credits.consume(0, 1);
    conn.credits.grant(1, 1, false);
    let req = NegotiateRequest { dialects: vec![dialect], ..Default::default() };
    let resp = build_response(server, conn, now, dialect, &req, Vec::new());
    if dialect == Dialect::SMB202 {
        conn.neg.dialect = Some(dialect);
        conn.neg.client_dialects = vec![dialect];
        conn.neg.server_security_mode = resp.security_mode;
    } else {
        conn.neg.smb1_upgraded = true;
    }
    let mut body = crate::engine::context::new_message();
    resp.encode(&mut body);
    Ok(smb1_response(body))
}
