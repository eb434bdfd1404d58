//! Sessions and tree connects (MS-SMB2 3.3.1.8, 3.3.1.10).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::SystemTime;

use crate::engine::crypto_state::SessionCrypto;
use crate::engine::services::{Access, Principal, ShareRecord};

/// Where a session is in its life (MS-SMB2 3.3.1.8 Session.State).
pub enum SessionState {
    /// SESSION_SETUP exchange under way.
    InProgress(Box<crate::auth::NtlmServer>),
    /// Authenticated.
    Valid,
    /// The user was disabled, deleted or lost access: every request gets
    /// STATUS_USER_SESSION_DELETED / NETWORK_SESSION_EXPIRED.
    Expired,
}

/// One SMB2 session on a connection.
pub struct Session {
    /// SessionId.
    pub id: u64,
    /// State.
    pub state: SessionState,
    /// Who logged on (set when Valid).
    pub principal: Option<Principal>,
    /// A re-authentication under way (MS-SMB2 3.3.5.5.3): the session stays
    /// Valid for its user meanwhile, and a failed exchange only drops this.
    pub reauth: Option<Box<crate::auth::NtlmServer>>,
    /// Keys, signing and encryption policy (set when Valid).
    pub crypto: Option<Arc<SessionCrypto>>,
    /// Preauth integrity hash of this session's setup (3.1.1 only).
    pub preauth: Option<crate::crypto::PreauthHash>,
    /// Requests must be signed (MS-SMB2 3.3.1.8 Session.SigningRequired).
    pub signing_required: bool,
    /// Every request and response on this session is encrypted (Session.EncryptData).
    pub encrypt_data: bool,
    /// Tree connects by TreeId.
    pub trees: HashMap<u32, Tree>,
    next_tree_id: u32,
    /// When the session was created.
    pub created: SystemTime,
    /// Connections it is set up or bound on (Session.ChannelList): it
    /// ends when the last of them goes (MS-SMB2 3.3.7.1).
    pub channels: usize,
}

impl Session {
    /// A session that has just started authenticating.
    pub fn new(id: u64, ntlm: crate::auth::NtlmServer, now: SystemTime) -> Self {
        Self {
            id,
            state: SessionState::InProgress(Box::new(ntlm)),
            principal: None,
            reauth: None,
            crypto: None,
            preauth: None,
            signing_required: true,
            encrypt_data: false,
            trees: HashMap::new(),
            next_tree_id: 1,
            created: now,
            channels: 1,
        }
    }

    /// True once authentication has succeeded and the session was not revoked.
    pub fn is_valid(&self) -> bool {
        matches!(self.state, SessionState::Valid)
    }

    /// Adds a tree connect and returns its TreeId.
    pub fn add_tree(&mut self, tree: Tree) -> u32 {
        // Tree ids are per session; skip 0 and all-ones, never reuse a live one.
        loop {
            let id = self.next_tree_id;
            self.next_tree_id = self.next_tree_id.wrapping_add(1);
            if id != 0 && id != u32::MAX && !self.trees.contains_key(&id) {
                self.trees.insert(id, tree);
                return id;
            }
        }
    }
}

/// What a tree connect points at.
#[derive(Debug, Clone)]
pub enum TreeKind {
    /// A disk share of the session's organization.
    Disk(ShareRecord),
    /// IPC$ for named pipes (srvsvc).
    Ipc,
}

/// A tree connect (MS-SMB2 3.3.1.10).
#[derive(Debug, Clone)]
pub struct Tree {
    /// The share.
    pub kind: TreeKind,
    /// The user's access level there.
    pub access: Access,
    /// Requests on this tree must be encrypted (TreeConnect.Share.EncryptData).
    pub encrypt_data: bool,
}

impl Tree {
    /// The share name for logs.
    pub fn share_name(&self) -> &str {
        match &self.kind {
            TreeKind::Disk(s) => &s.name,
            TreeKind::Ipc => "IPC$",
        }
    }
}
