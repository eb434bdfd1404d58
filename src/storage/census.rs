//! What an organization stores, for `smbvault org usage` (billing,
//! quotas): bytes allocated, files and directories, last change. Counts
//! only; no name is decrypted.

use super::OrgStore;
use super::error::Result;
use crate::types::FileTime;

/// An organization's storage at a glance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Census {
    /// Bytes allocated by all content (what the quota counts).
    pub bytes: u64,
    /// Files (named streams not counted separately).
    pub files: u64,
    /// Directories, share roots included.
    pub directories: u64,
    /// Latest write or metadata change of any file or directory.
    pub last_change: Option<FileTime>,
}

impl OrgStore {
    /// Counts the organization's files and bytes.
    pub fn census(&self) -> Result<Census> {
        let bytes = self.usage()?;
        self.core.read(|db| {
            let (files, dirs, last): (i64, i64, Option<i64>) = db.conn.query_row(
                "SELECT COALESCE(SUM(kind = 1), 0), COALESCE(SUM(kind = 2), 0), MAX(MAX(written, changed)) FROM nodes",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )?;
            Ok(Census {
                bytes,
                files: files as u64,
                directories: dirs as u64,
                last_change: last.filter(|t| *t > 0).map(|t| FileTime(t as u64)),
            })
        })
    }
}
