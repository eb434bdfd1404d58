//! Logon: NEGOTIATE with 3.1.1 contexts (MS-SMB2 3.2.4.2.2), SESSION_SETUP
//! with SPNEGO/NTLMv2 (3.2.4.2.3, 3.2.5.3), the client's key schedule
//! (3.2.5.3.1) and TREE_CONNECT (3.2.4.2.4).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, SystemTime};

use rand::RngCore;
use zeroize::Zeroizing;

use super::conn::{Connection, Request, Security};
use super::tree::Tree;
use super::{Error, Response};
use smbvault::auth::initiator::{ClientRandom, Credentials, NtlmClient};
use smbvault::crypto::{CipherId, Decryptor, Encryptor, KeyDerivation, PreauthHash, SessionKeys, SigningAlg};
use smbvault::types::FileTime;
use smbvault::wire::header::Command;
use smbvault::wire::negotiate::{
    self, Dialect, NegContext, NegotiateRequest, NegotiateResponse, caps, ctx, security_mode,
};
use smbvault::wire::session_setup::{SessionSetupRequest, SessionSetupResponse, session_flags};
use smbvault::wire::tree_connect::{TreeConnectRequest, TreeConnectResponse, share_flags};
use smbvault::wire::{Guid, NtStatus};

/// How to reach and log on to a server.
#[derive(Debug, Clone)]
pub struct Config {
    /// Server address.
    pub addr: SocketAddr,
    /// Host name for UNC paths (`\\host\share`) and the NTLM target name.
    pub host: String,
    /// Who logs on.
    pub creds: Credentials,
    /// Dialects offered, any order (the server picks).
    pub dialects: Vec<Dialect>,
    /// Ciphers offered in 3.1.1, preferred first.
    pub ciphers: Vec<CipherId>,
    /// Signing algorithms offered in 3.1.1, preferred first.
    pub signing: Vec<SigningAlg>,
    /// Seal every request after logon even if the server does not ask.
    pub encrypt: bool,
    /// Longest wait for any one response.
    pub timeout: Duration,
}

impl Config {
    /// Defaults: every dialect 2.0.2–3.1.1, AES-128-GCM first (as Windows
    /// and smbclient offer), AES-GMAC signing first, no forced encryption.
    pub fn new(addr: SocketAddr, user: &str, domain: &str, password: &str) -> Self {
        Self {
            addr,
            host: addr.ip().to_string(),
            creds: Credentials { user: user.into(), domain: domain.into(), password: Zeroizing::new(password.into()) },
            dialects: vec![Dialect::SMB202, Dialect::SMB21, Dialect::SMB30, Dialect::SMB302, Dialect::SMB311],
            ciphers: vec![CipherId::Aes128Gcm, CipherId::Aes128Ccm, CipherId::Aes256Gcm, CipherId::Aes256Ccm],
            signing: vec![SigningAlg::AesGmac, SigningAlg::AesCmac],
            encrypt: false,
            timeout: Duration::from_secs(120),
        }
    }
}

/// What NEGOTIATE and SESSION_SETUP settled.
#[derive(Debug, Clone)]
pub struct SessionInfo {
    /// The dialect.
    pub dialect: Dialect,
    /// The cipher, if encryption is possible.
    pub cipher: Option<CipherId>,
    /// The signing algorithm.
    pub signing: SigningAlg,
    /// MaxReadSize.
    pub max_read: u32,
    /// MaxWriteSize.
    pub max_write: u32,
    /// MaxTransactSize.
    pub max_transact: u32,
    /// SessionId.
    pub session_id: u64,
    /// The server asked for encryption of the whole session.
    pub encrypt_data: bool,
    /// The NEGOTIATE response's Capabilities.
    pub server_capabilities: u32,
}

/// A logged-on session on one connection (a bound channel is a `Session`
/// of its own, with the same SessionId).
pub struct Session {
    conn: Arc<Connection>,
    info: Arc<SessionInfo>,
    host: String,
    keys: Arc<KeyMaterial>,
}

/// What a bind needs to sign with the session's key and to seal with the
/// session's keys on the new channel.
struct KeyMaterial {
    /// The logon's NTLM session key.
    session_key: Zeroizing<[u8; 16]>,
    /// The logon's preauth hash (3.1.1).
    preauth: Option<PreauthHash>,
}

/// Connects, negotiates and logs on.
pub async fn connect(cfg: &Config) -> Result<Session, Error> {
    let stream = tokio::time::timeout(cfg.timeout, tokio::net::TcpStream::connect(cfg.addr))
        .await
        .map_err(|_| Error::Timeout)??;
    let conn = Arc::new(Connection::new(stream, cfg.timeout));
    let (neg, mut preauth) = negotiate(&conn, cfg).await?;
    let (info, keys) = session_setup(&conn, cfg, &neg, &mut preauth).await?;
    Ok(Session { conn, info: Arc::new(info), host: cfg.host.clone(), keys: Arc::new(keys) })
}

/// Opens a new connection and binds `session` to it (MS-SMB2 3.2.4.1.7,
/// 3.2.5.3.1: SMB2_SESSION_FLAG_BINDING, the legs signed with the session's
/// key, the channel's signing key from this authentication) as `cfg`'s
/// user. Returns the session as seen on the new channel, or the server's
/// refusal as `Error::Status`.
pub async fn bind(cfg: &Config, session: &Session) -> Result<Session, Error> {
    let stream = tokio::time::timeout(cfg.timeout, tokio::net::TcpStream::connect(cfg.addr))
        .await
        .map_err(|_| Error::Timeout)??;
    let conn = Arc::new(Connection::new(stream, cfg.timeout));
    let (neg, mut preauth) = negotiate(&conn, cfg).await?;
    let info = session.info();
    if neg.resp.dialect != info.dialect {
        return Err(Error::Protocol("bind on another dialect"));
    }
    let main = session_keys(&session.keys, info.dialect, info.cipher);
    let sid = info.session_id;
    conn.set_session_id(sid);
    conn.set_security(Security {
        session_id: sid,
        signer: Some(main.signer(info.signing)),
        encryptor: None,
        decryptor: None,
        encrypt: AtomicBool::new(false),
        binding: true,
    });
    let rand_in = ClientRandom { client_challenge: random(), session_key: Zeroizing::new(random()) };
    let now = FileTime::from_system(SystemTime::now());
    let mut ntlm = NtlmClient::new(cfg.creds.clone(), "SMBBENCH", &cfg.host, rand_in, now);
    let smb311 = info.dialect == Dialect::SMB311;
    let (sent, resp) = conn.call_logged(bind_request(ntlm.initial_token())).await?;
    let resp = resp.expect(NtStatus::MORE_PROCESSING_REQUIRED)?;
    // The interim response is signed with the session's key.
    main.signer(info.signing).verify(resp.msg())?;
    if smb311 {
        preauth.update(&sent);
        preauth.update(resp.msg());
    }
    let token = ntlm.respond(&SessionSetupResponse::decode(resp.msg())?.security_buffer)?;
    let (sent, resp) = conn.call_logged(bind_request(token)).await?;
    let resp = resp.ok()?;
    if smb311 {
        preauth.update(&sent);
    }
    let ss = SessionSetupResponse::decode(resp.msg())?;
    ntlm.finish(&ss.security_buffer)?;
    let key = ntlm.session_key().ok_or(Error::Auth("no session key"))?;
    let kd = if smb311 { KeyDerivation::Smb311(&preauth) } else { KeyDerivation::Smb30 };
    // Channel.SigningKey (3.2.5.3.1): this authentication's key, this
    // connection's signing algorithm.
    let channel = SessionKeys::derive(key, kd, None).signer(neg.signing);
    check_final_signature(&resp, &channel, info.dialect)?;
    conn.set_security(Security {
        session_id: sid,
        signer: Some(channel),
        encryptor: main.decrypt.as_ref().map(|k| Encryptor::new(k, random())),
        decryptor: main.encrypt.as_ref().map(Decryptor::new),
        encrypt: AtomicBool::new(session.conn.encrypting()),
        binding: false,
    });
    Ok(Session { conn, info: session.info.clone(), host: cfg.host.clone(), keys: session.keys.clone() })
}

/// The session's keys again, from what its logon left.
fn session_keys(m: &KeyMaterial, dialect: Dialect, cipher: Option<CipherId>) -> SessionKeys {
    let kd = match (dialect, &m.preauth) {
        (Dialect::SMB311, Some(h)) => KeyDerivation::Smb311(h),
        (d, _) if d.is_smb3() => KeyDerivation::Smb30,
        _ => KeyDerivation::Smb2,
    };
    SessionKeys::derive(&m.session_key[..], kd, cipher)
}

fn bind_request(token: Vec<u8>) -> Request {
    let req = SessionSetupRequest {
        flags: smbvault::wire::session_setup::FLAG_BINDING,
        security_mode: security_mode::SIGNING_ENABLED as u8,
        capabilities: 0,
        previous_session_id: 0,
        security_buffer: token,
    };
    Request::new(Command::SESSION_SETUP, 0, |o| req.encode(o))
}

impl Session {
    /// What was negotiated.
    pub fn info(&self) -> &SessionInfo {
        &self.info
    }

    /// The connection, for raw requests.
    pub fn connection(&self) -> &Arc<Connection> {
        &self.conn
    }

    /// TREE_CONNECT to `\\host\share`. Turns sealing on when the share
    /// requires it (SMB2_SHAREFLAG_ENCRYPT_DATA, MS-SMB2 3.2.5.5).
    pub async fn tree_connect(&self, share: &str) -> Result<Tree, Error> {
        let path = format!("\\\\{}\\{}", self.host, share);
        let req = Request::new(Command::TREE_CONNECT, 0, |o| TreeConnectRequest { flags: 0, path }.encode(o));
        let resp = self.conn.call(req).await?.ok()?;
        let tc = TreeConnectResponse::decode(resp.msg())?;
        if tc.share_flags & share_flags::ENCRYPT_DATA != 0 && !self.conn.encrypting() {
            self.conn.require_encryption()?;
        }
        Ok(Tree::new(self.conn.clone(), resp.header().tree_id, tc, self.info.clone()))
    }

    /// LOGOFF (MS-SMB2 2.2.7).
    pub async fn logoff(&self) -> Result<(), Error> {
        let req = Request::new(Command::LOGOFF, 0, |o| smbvault::wire::logoff::LogoffRequest.encode(o));
        self.conn.call(req).await?.ok()?;
        Ok(())
    }
}

/// What NEGOTIATE settled (before logon).
struct Negotiated {
    resp: NegotiateResponse,
    cipher: Option<CipherId>,
    signing: SigningAlg,
}

fn random<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    rand::rngs::OsRng.fill_bytes(&mut b);
    b
}

/// NEGOTIATE (MS-SMB2 3.2.4.2.2.2): 3.1.1 contexts for preauth integrity,
/// encryption and signing; the preauth hash covers request and response.
async fn negotiate(conn: &Connection, cfg: &Config) -> Result<(Negotiated, PreauthHash), Error> {
    let wire_ids = |ids: Vec<u16>| negotiate::encode_u16_list(&ids);
    let contexts = if cfg.dialects.contains(&Dialect::SMB311) {
        vec![
            NegContext { context_type: ctx::PREAUTH_INTEGRITY, data: negotiate::encode_preauth(&random::<32>()) },
            NegContext {
                context_type: ctx::ENCRYPTION,
                data: wire_ids(cfg.ciphers.iter().map(|c| c.wire_id()).collect()),
            },
            NegContext {
                context_type: ctx::SIGNING,
                data: wire_ids(cfg.signing.iter().map(|s| s.wire_id()).collect()),
            },
        ]
    } else {
        Vec::new()
    };
    let req = NegotiateRequest {
        security_mode: security_mode::SIGNING_ENABLED,
        capabilities: caps::LARGE_MTU | caps::ENCRYPTION,
        client_guid: Guid(random()),
        dialects: cfg.dialects.clone(),
        contexts,
    };
    let (sent, resp) = conn.call_logged(Request::new(Command::NEGOTIATE, 0, |o| req.encode(o))).await?;
    let resp = resp.ok()?;
    let mut preauth = PreauthHash::new();
    preauth.update(&sent);
    preauth.update(resp.msg());
    let neg = NegotiateResponse::decode(resp.msg())?;
    if !cfg.dialects.contains(&neg.dialect) {
        return Err(Error::Protocol("server chose a dialect we did not offer"));
    }
    let first_id = |t: u16| -> Result<Option<u16>, Error> {
        match neg.contexts.iter().find(|c| c.context_type == t) {
            Some(c) => Ok(negotiate::u16_list(&c.data)?.first().copied()),
            None => Ok(None),
        }
    };
    let (cipher, signing) = match neg.dialect {
        Dialect::SMB311 => (
            first_id(ctx::ENCRYPTION)?.and_then(CipherId::from_wire),
            first_id(ctx::SIGNING)?.and_then(SigningAlg::from_wire).unwrap_or(SigningAlg::AesCmac),
        ),
        d if d.is_smb3() => {
            (Some(CipherId::Aes128Ccm).filter(|_| neg.capabilities & caps::ENCRYPTION != 0), SigningAlg::AesCmac)
        }
        _ => (None, SigningAlg::HmacSha256),
    };
    conn.set_multi_credit(neg.dialect >= Dialect::SMB21);
    Ok((Negotiated { resp: neg, cipher, signing }, preauth))
}

/// Connects and negotiates only (hostile-client tests).
pub async fn negotiated(cfg: &Config) -> Result<Arc<Connection>, Error> {
    let stream = tokio::time::timeout(cfg.timeout, tokio::net::TcpStream::connect(cfg.addr))
        .await
        .map_err(|_| Error::Timeout)??;
    let conn = Arc::new(Connection::new(stream, cfg.timeout));
    negotiate(&conn, cfg).await?;
    Ok(conn)
}

/// Starts a logon (SessionId 0, first leg only) that is never finished:
/// the server's status. Hostile-client tests: a logon under way holds
/// server state before anyone authenticated.
pub async fn start_logon(conn: &Connection, cfg: &Config) -> Result<NtStatus, Error> {
    let rand_in = ClientRandom { client_challenge: random(), session_key: Zeroizing::new(random()) };
    let now = FileTime::from_system(SystemTime::now());
    let ntlm = NtlmClient::new(cfg.creds.clone(), "SMBBENCH", &cfg.host, rand_in, now);
    Ok(conn.call(setup_request(ntlm.initial_token())).await?.status())
}

/// Two SESSION_SETUP legs (MS-SMB2 3.2.5.3), then keys and signing.
async fn session_setup(
    conn: &Connection,
    cfg: &Config,
    neg: &Negotiated,
    preauth: &mut PreauthHash,
) -> Result<(SessionInfo, KeyMaterial), Error> {
    let rand_in = ClientRandom { client_challenge: random(), session_key: Zeroizing::new(random()) };
    let now = FileTime::from_system(SystemTime::now());
    let mut ntlm = NtlmClient::new(cfg.creds.clone(), "SMBBENCH", &cfg.host, rand_in, now);
    let smb311 = neg.resp.dialect == Dialect::SMB311;

    let (sent, resp) = conn.call_logged(setup_request(ntlm.initial_token())).await?;
    let resp = resp.expect(NtStatus::MORE_PROCESSING_REQUIRED)?;
    let session_id = resp.header().session_id;
    conn.set_session_id(session_id);
    if smb311 {
        preauth.update(&sent);
        preauth.update(resp.msg());
    }
    let token = ntlm.respond(&SessionSetupResponse::decode(resp.msg())?.security_buffer)?;
    let (sent, resp) = conn.call_logged(setup_request(token)).await?;
    let resp = resp.ok()?;
    if smb311 {
        preauth.update(&sent); // the final response is not hashed (3.2.5.3.1)
    }
    let ss = SessionSetupResponse::decode(resp.msg())?;
    ntlm.finish(&ss.security_buffer)?;
    if ss.session_flags & (session_flags::IS_GUEST | session_flags::IS_NULL) != 0 {
        return Err(Error::Auth("server made this a guest or anonymous session"));
    }
    let key = ntlm.session_key().ok_or(Error::Auth("no session key"))?;
    let kd = match neg.resp.dialect {
        Dialect::SMB311 => KeyDerivation::Smb311(preauth),
        d if d.is_smb3() => KeyDerivation::Smb30,
        _ => KeyDerivation::Smb2,
    };
    let keys = SessionKeys::derive(key, kd, neg.cipher);
    let signer = keys.signer(neg.signing);
    check_final_signature(&resp, &signer, neg.resp.dialect)?;
    let encrypt_data = ss.session_flags & session_flags::ENCRYPT_DATA != 0;
    if (cfg.encrypt || encrypt_data) && keys.encrypt.is_none() {
        return Err(Error::Protocol("encryption wanted but not negotiated"));
    }
    conn.set_security(Security {
        session_id,
        signer: Some(signer),
        // The client seals with the client-to-server key, which the
        // server-side `SessionKeys` calls `decrypt`, and opens with `encrypt`.
        encryptor: keys.decrypt.as_ref().map(|k| Encryptor::new(k, random())),
        decryptor: keys.encrypt.as_ref().map(Decryptor::new),
        encrypt: AtomicBool::new(cfg.encrypt || encrypt_data),
        binding: false,
    });
    let material = KeyMaterial { session_key: Zeroizing::new(*key), preauth: smb311.then(|| preauth.clone()) };
    let info = SessionInfo {
        dialect: neg.resp.dialect,
        cipher: neg.cipher,
        signing: neg.signing,
        max_read: neg.resp.max_read_size,
        max_write: neg.resp.max_write_size,
        max_transact: neg.resp.max_transact_size,
        session_id,
        encrypt_data,
        server_capabilities: neg.resp.capabilities,
    };
    Ok((info, material))
}

fn setup_request(token: Vec<u8>) -> Request {
    let req = SessionSetupRequest {
        flags: 0,
        security_mode: security_mode::SIGNING_ENABLED as u8,
        capabilities: 0,
        previous_session_id: 0,
        security_buffer: token,
    };
    Request::new(Command::SESSION_SETUP, 0, |o| req.encode(o))
}

/// The final SESSION_SETUP response is signed with the new key from 3.0 on
/// (MS-SMB2 3.3.5.5.3); checking it proves both sides derived the same keys.
fn check_final_signature(resp: &Response, signer: &smbvault::crypto::Signer, d: Dialect) -> Result<(), Error> {
    if resp.header().is_signed() {
        signer.verify(resp.msg())?;
    } else if d.is_smb3() {
        return Err(Error::Protocol("final SESSION_SETUP response is not signed"));
    }
    Ok(())
}
