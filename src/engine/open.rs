//! Open handles (MS-SMB2 3.3.1.10 Open). Each lives in its connection's
//! table under its volatile FileId.

use crate::wire::create::FileId;

/// What an open refers to.
pub enum OpenKind {
    /// A named pipe on IPC$ (DCE/RPC endpoint).
    Pipe(Box<dyn crate::rpc::Pipe>),
}

/// An open handle.
pub struct Open {
    /// FileId returned to the client.
    pub file_id: FileId,
    /// Session that owns it.
    pub session_id: u64,
    /// Tree it was opened on.
    pub tree_id: u32,
    /// Access granted at open (MS-SMB2 3.3.1.10 Open.GrantedAccess).
    pub granted_access: u32,
    /// The object.
    pub kind: OpenKind,
}

impl Open {
    /// True if the open belongs to this session and tree (MS-SMB2 3.3.5.x:
    /// "if the Open is not found, or Open.Session/TreeConnect differ → FILE_CLOSED").
    pub fn owned_by(&self, session_id: u64, tree_id: u32) -> bool {
        self.session_id == session_id && self.tree_id == tree_id
    }
}
