//! The one place where errors become NTSTATUS codes. Handlers return
//! `Result<_, Error>`; nothing else in the crate picks a status for an error.

use crate::wire::{DecodeError, NtStatus};

/// Why a request failed.
#[derive(Debug)]
pub enum Error {
    /// A protocol outcome decided by a handler (e.g. STATUS_OBJECT_NAME_NOT_FOUND).
    Status(NtStatus),
    /// The request's bytes were malformed (MS-SMB2 3.3.5.2.6: INVALID_PARAMETER).
    Decode(DecodeError),
    /// The connection must be closed without an answer (MS-SMB2 3.3.5.2.x
    /// says "disconnect" for credit and sequence violations, bad signatures
    /// on a negotiate, an SMB1 message after negotiate, …).
    Disconnect(&'static str),
}

impl From<NtStatus> for Error {
    fn from(s: NtStatus) -> Self {
        Error::Status(s)
    }
}

impl From<DecodeError> for Error {
    fn from(e: DecodeError) -> Self {
        Error::Decode(e)
    }
}

impl Error {
    /// The status sent to the client. Details stay in tracing.
    pub fn status(&self) -> NtStatus {
        match self {
            Error::Status(s) => *s,
            Error::Decode(_) => NtStatus::INVALID_PARAMETER,
            Error::Disconnect(_) => NtStatus::INVALID_PARAMETER,
        }
    }
}

/// Shorthand for handlers.
pub type Result<T> = std::result::Result<T, Error>;
