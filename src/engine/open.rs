//! Open files (MS-SMB2 3.3.1.10 Open).

/// An open handle.
pub struct Open {
    /// Session that owns it.
    pub session_id: u64,
    /// Tree it was opened on.
    pub tree_id: u32,
}
