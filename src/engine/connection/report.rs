//! What `smbvault status` shows of one connection: its sessions, their
//! open files (paths as the client named them, i.e. decrypted, shown only
//! to the operator or the organization's own administrator), caching
//! state and byte-range locks. Built on request from the connection's own
//! task, so the request path pays nothing for it.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::Connection;
use crate::engine::fsa::lease::{CacheGrant, Caching, level};

/// One established session.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionReport {
    /// SessionId (what `smbvault session kick` takes).
    pub id: u64,
    /// User name.
    pub user: String,
    /// Organization name.
    pub org: String,
    /// Organization id.
    pub org_id: u64,
    /// Client address and port.
    pub client: String,
    /// Negotiated dialect ("3.1.1").
    pub dialect: String,
    /// Requests and responses are signed.
    pub signing: bool,
    /// Traffic is encrypted (session-wide or on some share).
    pub encryption: bool,
    /// The cipher, when encrypted.
    pub cipher: Option<String>,
    /// Seconds since the connection last sent a request.
    pub idle_secs: u64,
    /// When the session logged on (JST).
    pub logged_on: String,
    /// Shares connected.
    pub shares: Vec<String>,
    /// Open files and directories.
    pub opens: Vec<OpenReport>,
}

/// One open handle.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OpenReport {
    /// FileId (persistent half).
    pub file_id: u64,
    /// Share name.
    pub share: String,
    /// Path below the share root (`\`-separated; "" is the root).
    pub path: String,
    /// A directory.
    pub directory: bool,
    /// Granted access mask.
    pub access: u32,
    /// Share mode the open allows others: R, W, D or "-".
    pub share_mode: String,
    /// Oplock ("batch", "exclusive", "level2") or lease ("lease RWH"), or "none".
    pub caching: String,
    /// Byte-range locks held through this open.
    pub locks: Vec<LockReport>,
}

/// One byte-range lock.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LockReport {
    /// First byte.
    pub offset: u64,
    /// Length in bytes.
    pub length: u64,
    /// Exclusive (write) lock; else shared.
    pub exclusive: bool,
}

impl Connection {
    /// The connection's established sessions; `idle` is how long ago it
    /// last received a request (the network shell knows).
    pub fn report(&mut self, idle: Duration) -> Vec<SessionReport> {
        self.with_group(|c| c.report_in_group(idle))
    }

    fn report_in_group(&self, idle: Duration) -> Vec<SessionReport> {
        let st = &self.state;
        let dialect = st.neg.dialect.map(dialect_name).unwrap_or_default();
        let mut out = Vec::new();
        for s in st.sessions.values().filter(|s| st.on_channel(s.id)) {
            let (Some(p), true) = (&s.principal, s.is_valid()) else { continue };
            let encrypted_trees = s.trees.values().any(|t| t.encrypt_data);
            let cipher = s.crypto.as_ref().and_then(|c| c.cipher()).map(cipher_name);
            let mut opens: Vec<OpenReport> = st
                .opens
                .values()
                .filter(|o| o.session_id == s.id)
                .filter_map(|o| {
                    let f = o.file()?;
                    let id = crate::engine::files::open_id(o.file_id.persistent);
                    let (caching, locks) = self.server.files.with(|t| match t.get(&f.key) {
                        Some(stream) => (caching_name(stream.cache.grant_of(id)), stream.locks.lock().held_by(id)),
                        None => ("none".to_string(), Vec::new()),
                    });
                    Some(OpenReport {
                        file_id: o.file_id.persistent,
                        share: f.share.clone(),
                        path: match &f.stream {
                            Some(sname) => format!("{}:{sname}", f.path),
                            None => f.path.clone(),
                        },
                        directory: f.is_dir,
                        access: o.granted_access,
                        share_mode: share_mode(f.share_access),
                        caching,
                        locks: locks
                            .into_iter()
                            .map(|(offset, length, exclusive)| LockReport { offset, length, exclusive })
                            .collect(),
                    })
                })
                .collect();
            opens.sort_by(|a, b| (&a.share, &a.path).cmp(&(&b.share, &b.path)));
            let mut shares: Vec<String> = s.trees.values().map(|t| t.share_name().to_string()).collect();
            shares.sort();
            out.push(SessionReport {
                id: s.id,
                user: p.user.clone(),
                org: p.org.clone(),
                org_id: p.org_id.0,
                client: self.peer.to_string(),
                dialect: dialect.clone(),
                signing: s.signing_required,
                encryption: s.encrypt_data || encrypted_trees,
                cipher,
                idle_secs: idle.as_secs(),
                logged_on: crate::audit::format_jst(s.created),
                shares,
                opens,
            });
        }
        out.sort_by_key(|s| s.id);
        out
    }

    /// True if `session_id` is one of this connection's sessions.
    pub fn has_session(&mut self, session_id: u64) -> bool {
        self.with_group(|c| c.state.sessions.contains_key(&session_id) && c.state.on_channel(session_id))
    }

    /// The user of a session, for the audit event of a kick.
    pub fn session_principal(&mut self, session_id: u64) -> Option<crate::engine::services::Principal> {
        self.with_group(|c| c.state.sessions.get(&session_id).and_then(|s| s.principal.clone()))
    }
}

fn cipher_name(c: crate::crypto::CipherId) -> String {
    use crate::crypto::CipherId as C;
    match c {
        C::Aes128Ccm => "AES-128-CCM",
        C::Aes128Gcm => "AES-128-GCM",
        C::Aes256Ccm => "AES-256-CCM",
        C::Aes256Gcm => "AES-256-GCM",
    }
    .into()
}

fn dialect_name(d: crate::wire::negotiate::Dialect) -> String {
    match d.0 {
        0x0202 => "2.0.2".into(),
        0x0210 => "2.1".into(),
        0x0300 => "3.0".into(),
        0x0302 => "3.0.2".into(),
        0x0311 => "3.1.1".into(),
        x => format!("{x:#06x}"),
    }
}

/// FILE_SHARE_READ/WRITE/DELETE as "RWD" (MS-SMB2 2.2.13).
fn share_mode(bits: u32) -> String {
    let s: String = [(1, 'R'), (2, 'W'), (4, 'D')].iter().filter(|(b, _)| bits & b != 0).map(|(_, c)| *c).collect();
    if s.is_empty() { "-".into() } else { s }
}

fn caching_name(g: CacheGrant) -> String {
    match g {
        CacheGrant::None => "none".into(),
        CacheGrant::Oplock(level::BATCH) => "batch".into(),
        CacheGrant::Oplock(level::EXCLUSIVE) => "exclusive".into(),
        CacheGrant::Oplock(level::II) => "level2".into(),
        CacheGrant::Oplock(l) => format!("oplock {l:#x}"),
        CacheGrant::Lease(l) => format!("lease {:?}", l.state as Caching),
    }
}
