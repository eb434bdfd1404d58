//! An SMB2/SMB3 client for load generation and end-to-end tests, built on
//! the server's own codecs (`wire`), transport crypto (`crypto`) and NTLM
//! initiator (`auth::initiator`). It is what `examples/smbbench` drives
//! against smbvault and Samba. Not part of the server library: the
//! benchmark and `protocol-tests/bench/client_e2e.rs` include it with
//! `#[path = ".../protocol-tests/client/mod.rs"] mod client;`.
//!
//! ```text
//! # async fn demo() -> Result<(), client::Error> {
//! use client::{self, Config, CreateSpec};
//! let cfg = Config::new("127.0.0.1:445".parse().unwrap(), "alice", "DEFAULT", "Passw0rd!-x");
//! let session = client::connect(&cfg).await?;
//! let tree = session.tree_connect("share").await?;
//! let f = tree.create("hello.txt", &CreateSpec::overwrite()).await?;
//! tree.write(f.file_id, 0, b"hi").await?;
//! tree.close(f.file_id).await?;
//! # Ok(()) }
//! ```
//!
//! Layers: `smbvault::auth::initiator` (sans-IO SPNEGO/NTLMv2 client), [`Connection`] (framing,
//! message ids and credits, signing and sealing, any number of requests in
//! flight), [`Session`] (NEGOTIATE, SESSION_SETUP, key schedule), [`Tree`]
//! (file operations) and [`transfer`] (pipelined sequential reads and writes).
//! Not a general-purpose client: no oplocks or leases, no DFS, no
//! reconnection, one session per connection.

mod conn;
mod session;
pub mod transfer;
mod tree;

pub use conn::{Connection, Pending, Request, Response};
pub use session::{Config, Session, SessionInfo, bind, connect, negotiated, start_logon};
pub use smbvault::auth::initiator::Credentials;
pub use tree::{CreateSpec, Open, Tree, read_data, written};

use smbvault::crypto::CryptoError;
use smbvault::wire::header::Command;
use smbvault::wire::{DecodeError, NtStatus};

impl From<smbvault::auth::initiator::AuthFailed> for Error {
    fn from(e: smbvault::auth::initiator::AuthFailed) -> Self {
        Error::Auth(e.0)
    }
}

/// Why a client operation failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The socket failed.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// The connection is gone (reader ended); the text says why.
    #[error("connection closed: {0}")]
    Closed(String),
    /// The server answered with an error status.
    #[error("{command:?} failed: {status:?}")]
    Status {
        /// The request's command.
        command: Command,
        /// What the server said.
        status: NtStatus,
    },
    /// A response did not decode.
    #[error("malformed response: {0}")]
    Decode(#[from] DecodeError),
    /// Logon failed on our side (bad token, bad MIC, …).
    #[error("authentication: {0}")]
    Auth(&'static str),
    /// Signing or encryption failed (bad signature, bad tag).
    #[error("crypto: {0}")]
    Crypto(#[from] CryptoError),
    /// The server broke a protocol rule we rely on.
    #[error("protocol: {0}")]
    Protocol(&'static str),
    /// No response within the configured time.
    #[error("timed out")]
    Timeout,
}
