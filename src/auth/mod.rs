//! placeholder until the auth branch lands: the contract from docs/architecture.md.
use zeroize::Zeroizing;

use crate::types::{OrgId, UserId};

/// A user's NTLM credential.
pub struct Credential {
    /// User id.
    pub user_id: UserId,
    /// Organization id.
    pub org_id: OrgId,
    /// Canonical user name.
    pub user: String,
    /// Organization name.
    pub org: String,
    /// MD4 of the UTF-16LE password.
    pub nt_hash: Zeroizing<[u8; 16]>,
}

/// Lookup failure.
#[derive(Debug)]
pub struct AuthError;

/// Where NTLM finds NT hashes.
pub trait CredentialSource {
    /// Looks up `domain\user` as the client sent them.
    fn lookup(&self, domain: &str, user: &str) -> Result<Option<Credential>, AuthError>;
}

/// SPNEGO NegTokenInit for the NEGOTIATE response (placeholder: empty).
pub fn initial_token() -> Vec<u8> {
    Vec::new()
}

/// Placeholder NTLM server.
pub struct NtlmServer;
