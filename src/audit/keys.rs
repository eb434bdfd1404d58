//! The keys of one log. An organization's log is keyed from the
//! organization's key (so shredding the organization also makes its log's
//! names unreadable and its chain unforgeable by anyone); the server log is
//! keyed from the master key.
//!
//! - chain: HMAC-SHA256 key of the record chain and segment anchors
//!   (`org_subkey(org, "smbvault/org/audit-chain")`, server:
//!   `MasterKey::derive("smbvault/mk/audit-chain")`);
//! - names: AES-256-CTR key for the names of a block, derived from
//!   `org_subkey(org, "smbvault/org/audit-names")` (server: `.../mk/audit-names`);
//! - head, checkpoint, index: HMAC keys derived from the chain key, one per
//!   kind of small signed file, so that no key serves two purposes.

use aes::Aes256;
use ctr::cipher::{KeyIvInit, StreamCipher};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::keys::{Key32, KeyError, MasterKey, OrgKeys};
use crate::types::OrgId;

type HmacSha256 = Hmac<Sha256>;
type Aes256Ctr = ctr::Ctr128BE<Aes256>;

/// Which log: the server-wide one or an organization's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LogId {
    /// Operator events and events without an organization.
    Server,
    /// One organization's log.
    Org(OrgId),
}

impl LogId {
    /// The organization, if any.
    pub fn org(self) -> Option<OrgId> {
        match self {
            LogId::Server => None,
            LogId::Org(o) => Some(o),
        }
    }

    /// Directory name under the audit directory: `server` or `org-<id>`.
    pub fn dir_name(self) -> String {
        match self {
            LogId::Server => "server".into(),
            LogId::Org(o) => format!("org-{}", o.0),
        }
    }

    /// Inverse of [`LogId::dir_name`].
    pub fn from_dir_name(s: &str) -> Option<LogId> {
        if s == "server" {
            return Some(LogId::Server);
        }
        let id = s.strip_prefix("org-")?;
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        id.parse().ok().map(|n| LogId::Org(OrgId(n)))
    }

    /// 9 bytes binding MACs to this log: kind and org id.
    pub(crate) fn tag(self) -> [u8; 9] {
        let mut t = [0u8; 9];
        if let LogId::Org(o) = self {
            t[0] = 1;
            t[1..].copy_from_slice(&o.0.to_le_bytes());
        }
        t
    }
}

impl std::fmt::Display for LogId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.dir_name())
    }
}

/// All keys of one log, with HMAC states keyed once and cloned per use.
pub(crate) struct LogKeys {
    pub(crate) log: LogId,
    chain: HmacSha256,
    head: HmacSha256,
    checkpoint: HmacSha256,
    index: HmacSha256,
    names: Key32,
}

fn hmac(k: &Key32) -> HmacSha256 {
    <HmacSha256 as Mac>::new_from_slice(k.expose()).unwrap_or_else(|_| unreachable!("HMAC takes any key length"))
}

impl LogKeys {
    fn from_roots(log: LogId, chain: Key32, names: Key32) -> Self {
        let ctx = log.tag();
        Self {
            log,
            chain: hmac(&chain),
            head: hmac(&chain.derive("smbvault/audit/head", &ctx)),
            checkpoint: hmac(&chain.derive("smbvault/audit/checkpoint", &ctx)),
            index: hmac(&chain.derive("smbvault/audit/index", &ctx)),
            names: names.derive("smbvault/audit/names-aes-256-ctr", &ctx),
        }
    }

    /// Keys of the server log.
    pub(crate) fn server(mk: &MasterKey) -> Self {
        Self::from_roots(LogId::Server, mk.derive("smbvault/mk/audit-chain"), mk.derive("smbvault/mk/audit-names"))
    }

    /// Keys of `org`'s log; fails if the organization has no key.
    pub(crate) fn org(keys: &dyn OrgKeys, org: OrgId) -> Result<Self, KeyError> {
        Ok(Self::from_roots(
            LogId::Org(org),
            keys.org_subkey(org, "smbvault/org/audit-chain")?,
            keys.org_subkey(org, "smbvault/org/audit-names")?,
        ))
    }

    /// A fresh chain HMAC (for records and anchors).
    pub(crate) fn chain(&self) -> HmacSha256 {
        self.chain.clone()
    }

    /// MAC of a small signed file: head, checkpoint or index entry.
    pub(crate) fn file_mac(&self, which: FileMac, data: &[u8]) -> [u8; 32] {
        let mut m = match which {
            FileMac::Head => self.head.clone(),
            FileMac::Checkpoint => self.checkpoint.clone(),
            FileMac::Index => self.index.clone(),
        };
        m.update(data);
        m.finalize().into_bytes().into()
    }

    /// Encrypts or decrypts (CTR is its own inverse) a block's names.
    pub(crate) fn names_xor(&self, iv: &[u8; 16], buf: &mut [u8]) {
        let mut c = Aes256Ctr::new(self.names.expose().into(), iv.into());
        c.apply_keystream(buf);
    }
}

/// Which small-file MAC key.
#[derive(Clone, Copy)]
pub(crate) enum FileMac {
    Head,
    Checkpoint,
    Index,
}

/// Constant-time comparison of two MACs.
pub(crate) fn mac_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}
