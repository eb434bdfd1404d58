//! `StorageError`: what the storage engine reports to the SMB engine.
//!
//! Messages never carry file names, keys or paths: the SMB layer maps a
//! variant to an NTSTATUS (`engine/status.rs`) and details go to tracing.

use crate::keys::KeyError;

/// Why a storage operation failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum StorageError {
    /// The node, stream, organization or content does not exist (or was deleted).
    #[error("no such object")]
    NotFound,
    /// The name exists already (compared case-insensitively, after NFC).
    #[error("an object with that name exists")]
    Exists,
    /// A directory that must be empty is not.
    #[error("directory not empty")]
    NotEmpty,
    /// A directory was required.
    #[error("not a directory")]
    NotADirectory,
    /// A file was required.
    #[error("is a directory")]
    IsADirectory,
    /// The name is empty, too long, "." / "..", or has a forbidden character.
    #[error("invalid name")]
    InvalidName,
    /// An argument is out of range: offset past the maximum file size, a
    /// move of a directory into itself, renaming a root.
    #[error("invalid argument")]
    InvalidArgument,
    /// Stored data failed authentication (tampered, swapped, replayed,
    /// truncated). Never returned together with data.
    #[error("stored data failed its integrity check")]
    Integrity,
    /// The organization's quota does not allow the allocation.
    #[error("quota exceeded")]
    QuotaExceeded,
    /// An operating-system I/O error.
    #[error("I/O error ({0:?})")]
    Io(std::io::ErrorKind),
    /// The metadata database failed (details were logged).
    #[error("metadata database error")]
    Database,
}

impl From<std::io::Error> for StorageError {
    fn from(e: std::io::Error) -> Self {
        tracing::warn!(error = %e, "storage I/O error");
        StorageError::Io(e.kind())
    }
}

impl From<rusqlite::Error> for StorageError {
    fn from(e: rusqlite::Error) -> Self {
        // SQLite messages name tables and columns, never user data: the
        // names and contents it holds are ciphertext.
        tracing::error!(error = %e, "storage metadata database error");
        StorageError::Database
    }
}

impl From<KeyError> for StorageError {
    fn from(_: KeyError) -> Self {
        tracing::error!("a sealed storage value failed authentication");
        StorageError::Integrity
    }
}

/// Shorthand used throughout the module.
pub type Result<T> = std::result::Result<T, StorageError>;

/// True when SQLite refused a row because of a UNIQUE constraint.
pub(crate) fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(
        e,
        rusqlite::Error::SqliteFailure(f, _)
            if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                || f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
    )
}
