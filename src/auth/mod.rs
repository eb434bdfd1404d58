//! Server side of SPNEGO (RFC 4178, MS-SPNG) carrying NTLMSSP (MS-NLMP),
//! NTLMv2 only. Sans-IO: the caller passes in the server challenge (random)
//! and the time, and looks up credentials through [`CredentialSource`].
//!
//! ```text
//! NEGOTIATE response   SecurityBuffer = initial_token()
//! SESSION_SETUP #1     server.step(token) -> Continue(challenge token)  (STATUS_MORE_PROCESSING_REQUIRED)
//! SESSION_SETUP #2     server.step(token) -> Done(Authenticated)        (STATUS_SUCCESS, token in response)
//!                                          | Fail(AuthFailure)          (STATUS_LOGON_FAILURE, …)
//! ```
//! Refused: NTLMv1 and LM responses, anonymous and guest logons, OEM-only
//! clients, clients without extended session security.

pub(crate) mod der;
pub mod initiator;
pub(crate) mod ntlm;
pub(crate) mod ntlm_crypto;
mod server;
pub(crate) mod spnego;
// The web console's second factor (RFC 6238); NTLM itself has none.
pub mod totp;

#[cfg(test)]
pub(crate) mod capture_tests;
#[cfg(test)]
mod fuzz_tests;

use zeroize::Zeroizing;

use crate::types::{OrgId, UserId};

pub use ntlm_crypto::nt_hash;
pub use server::NtlmServer;
pub use spnego::initial_token;

/// An account's logon secret as the accounts store hands it out.
#[derive(Clone)]
pub struct Credential {
    /// The account.
    pub user_id: UserId,
    /// Its organization.
    pub org_id: OrgId,
    /// Canonical user name (as stored, not as typed).
    pub user: String,
    /// Canonical organization name.
    pub org: String,
    /// MD4(UTF-16LE(password)), see [`nt_hash`].
    pub nt_hash: Zeroizing<[u8; 16]>,
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credential")
            .field("user_id", &self.user_id)
            .field("org_id", &self.org_id)
            .field("user", &self.user)
            .field("org", &self.org)
            .finish_non_exhaustive()
    }
}

/// Why a credential lookup failed (as opposed to "no such user").
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// The account exists but is locked out (too many failures).
    #[error("account locked out")]
    LockedOut,
    /// The account (or its organization) is disabled.
    #[error("account disabled")]
    Disabled,
    /// The store could not answer.
    #[error("credential store failed: {0}")]
    Store(String),
}

/// Where NTLM finds NT hashes. Implemented by the accounts store, which
/// resolves `ORG\user`, `user@org` and unknown domains itself.
pub trait CredentialSource {
    /// Looks up an account by the domain and user name exactly as the client
    /// sent them in AUTHENTICATE. `Ok(None)`: no such account.
    fn lookup(&self, domain: &str, user: &str) -> Result<Option<Credential>, AuthError>;
}

/// The names the server announces in the NTLM CHALLENGE's TargetInfo
/// (MS-NLMP 2.2.1.2). Standalone servers use the computer name as the
/// NetBIOS domain name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerNames {
    /// MsvAvNbComputerName (also the TargetName).
    pub netbios_computer: String,
    /// MsvAvNbDomainName.
    pub netbios_domain: String,
    /// MsvAvDnsComputerName.
    pub dns_computer: String,
    /// MsvAvDnsDomainName (may be empty).
    pub dns_domain: String,
}

/// What [`NtlmServer::step`] asks the caller to do next.
#[derive(Debug)]
pub enum Step {
    /// Reply with this token and STATUS_MORE_PROCESSING_REQUIRED.
    Continue(Vec<u8>),
    /// Authentication succeeded: reply with `token` and STATUS_SUCCESS.
    Done(Box<Authenticated>),
    /// Authentication failed: reply with an error status and no token.
    Fail(AuthFailure),
}

/// A successful logon.
pub struct Authenticated {
    /// The final SPNEGO token (accept-completed, with the server's
    /// mechListMIC when one is due); empty for raw NTLMSSP clients.
    pub token: Vec<u8>,
    /// The account that logged on.
    pub credential: Credential,
    /// ExportedSessionKey: the GSS session key the SMB keys derive from.
    pub session_key: Zeroizing<[u8; 16]>,
    /// User name as the client sent it.
    pub client_user: String,
    /// Domain as the client sent it.
    pub client_domain: String,
    /// Workstation name as the client sent it.
    pub workstation: String,
}

impl std::fmt::Debug for Authenticated {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticated")
            .field("credential", &self.credential)
            .field("client_user", &self.client_user)
            .field("client_domain", &self.client_domain)
            .field("workstation", &self.workstation)
            .finish_non_exhaustive()
    }
}

/// A failed logon, for the status code and the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthFailure {
    /// Why.
    pub reason: FailReason,
    /// User name as the client sent it (empty if never parsed).
    pub user: String,
    /// Domain as the client sent it (empty if never parsed).
    pub domain: String,
}

/// Why a logon failed. The engine maps these to NTSTATUS: most become
/// STATUS_LOGON_FAILURE; `LockedOut` → STATUS_ACCOUNT_LOCKED_OUT, `Disabled`
/// → STATUS_ACCOUNT_DISABLED, `Malformed`/`UnexpectedToken` → STATUS_INVALID_PARAMETER,
/// `StoreError` → STATUS_INTERNAL_ERROR.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FailReason {
    /// A token could not be parsed.
    Malformed,
    /// A token arrived in the wrong state (e.g. AUTHENTICATE first).
    UnexpectedToken,
    /// The client offered no mechanism we support (only NTLMSSP is).
    NoCommonMechanism,
    /// The client wants something we refuse: OEM strings or no extended session security.
    Unsupported,
    /// Anonymous (null session) logon.
    Anonymous,
    /// An NTLMv1 or LM-only response.
    NtlmV1Refused,
    /// No such account.
    UnknownUser,
    /// Wrong password (NTProofStr mismatch).
    BadPassword,
    /// The AUTHENTICATE MIC or the SPNEGO mechListMIC is wrong or missing:
    /// the exchange was tampered with.
    MicMismatch,
    /// The account is locked out.
    LockedOut,
    /// The account is disabled.
    Disabled,
    /// The credential store failed.
    StoreError,
}
