//! Identifiers shared by several layers. Plain newtypes so that an organization id
//! can never be passed where a user id is expected.

/// An organization (tenant). Assigned by the accounts store, never reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OrgId(pub u64);

/// A user account. Assigned by the accounts store, never reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UserId(pub u64);

/// A share. Assigned by the accounts store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ShareId(pub u64);

/// A file or directory in an organization's namespace. Stable for the life of
/// the object (it survives renames); reported to clients as the file id
/// (MS-FSCC 2.4.20 FileInternalInformation IndexNumber).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(pub u64);

/// Windows FILETIME: 100-nanosecond intervals since 1601-01-01 UTC (MS-DTYP 2.3.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct FileTime(pub u64);

impl FileTime {
    /// Seconds between 1601-01-01 and 1970-01-01.
    const UNIX_EPOCH_SECS: u64 = 11_644_473_600;

    /// Converts a system time (clocks are read by the caller, never here).
    pub fn from_system(t: std::time::SystemTime) -> Self {
        let d = t.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        Self((d.as_secs() + Self::UNIX_EPOCH_SECS) * 10_000_000 + u64::from(d.subsec_nanos()) / 100)
    }

    /// Back to a system time (saturating at the Unix epoch).
    pub fn to_system(self) -> std::time::SystemTime {
        let secs = (self.0 / 10_000_000).saturating_sub(Self::UNIX_EPOCH_SECS);
        let nanos = (self.0 % 10_000_000) * 100;
        std::time::UNIX_EPOCH + std::time::Duration::new(secs, nanos as u32)
    }
}
