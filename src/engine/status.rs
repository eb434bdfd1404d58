//! The one place where errors become NTSTATUS codes. Handlers return
//! `Result<_, Error>`; nothing else in the crate picks a status for an error.

use crate::storage::StorageError;
use crate::wire::{DecodeError, NtStatus};

/// Why a request failed.
#[derive(Debug)]
pub enum Error {
    /// A protocol outcome decided by a handler (e.g. STATUS_OBJECT_NAME_NOT_FOUND).
    Status(NtStatus),
    /// The request's bytes were malformed (MS-SMB2 3.3.5.2.6: INVALID_PARAMETER).
    Decode(DecodeError),
    /// The storage engine failed.
    Storage(StorageError),
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

impl From<StorageError> for Error {
    fn from(e: StorageError) -> Self {
        Error::Storage(e)
    }
}

impl Error {
    /// The status sent to the client. Details stay in tracing.
    pub fn status(&self) -> NtStatus {
        match self {
            Error::Status(s) => *s,
            Error::Decode(_) => NtStatus::INVALID_PARAMETER,
            Error::Storage(e) => storage_status(*e),
            Error::Disconnect(_) => NtStatus::INVALID_PARAMETER,
        }
    }
}

/// A FILE or FS information buffer too short for its class is
/// STATUS_INFO_LENGTH_MISMATCH, not INVALID_PARAMETER (MS-FSA 2.1.5.14:
/// "If InputBufferSize is less than the size of the structure").
pub fn info_length(_: DecodeError) -> Error {
    Error::Status(NtStatus::INFO_LENGTH_MISMATCH)
}

/// Storage outcomes as Windows reports the matching NTFS condition.
/// Integrity failures (tampered or unreadable chunks) are I/O errors:
/// never data.
fn storage_status(e: StorageError) -> NtStatus {
    match e {
        StorageError::NotFound => NtStatus::OBJECT_NAME_NOT_FOUND,
        StorageError::Exists => NtStatus::OBJECT_NAME_COLLISION,
        StorageError::NotEmpty => NtStatus::DIRECTORY_NOT_EMPTY,
        StorageError::NotADirectory => NtStatus::NOT_A_DIRECTORY,
        StorageError::IsADirectory => NtStatus::FILE_IS_A_DIRECTORY,
        StorageError::InvalidName => NtStatus::OBJECT_NAME_INVALID,
        StorageError::InvalidArgument => NtStatus::INVALID_PARAMETER,
        StorageError::QuotaExceeded => NtStatus::DISK_FULL,
        StorageError::Io(std::io::ErrorKind::StorageFull) => NtStatus::DISK_FULL,
        StorageError::Integrity | StorageError::Io(_) | StorageError::Database => NtStatus::IO_DEVICE_ERROR,
    }
}

/// Shorthand for handlers.
pub type Result<T> = std::result::Result<T, Error>;
