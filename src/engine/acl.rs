//! Security descriptors of stored objects as the disk handlers use them:
//! the session's token, the effective descriptor of a node (stored, or the
//! default every object without one has), and the descriptor a new object
//! inherits (MS-DTYP 2.5.3.4 via [`fsa::sd::inherit`]).
//!
//! Objects created by smbvault store their descriptor at CREATE; share
//! roots and objects from before that have none and get the default: the
//! share root's descriptor ([`fsa::sd::share_root`]) or what a child of it
//! would inherit. Either way access stays capped by the share permission.

use crate::engine::fsa;
use crate::engine::fsa::sid::{RID_ORG_ADMINS, RID_ORG_USERS, Token};
use crate::engine::services::Principal;
use crate::engine::status::Result;
use crate::storage::OrgStore;
use crate::types::{NodeId, OrgId};
use crate::wire::dtyp::{SecurityDescriptor, Sid};

/// The access-check identity of a session's user.
pub fn token(p: &Principal) -> Token {
    Token::for_user(p.org_id, p.user_id, &[], false).unwrap_or_else(|| Token {
        // An id outside the SID scheme: only the organization's groups.
        user: Sid::org_member(p.org_id, RID_ORG_USERS),
        groups: vec![Sid::everyone(), Sid::authenticated_users()],
    })
}

/// The descriptor of an object that has none stored.
pub fn default_sd(org: OrgId, is_dir: bool, is_root: bool) -> SecurityDescriptor {
    let root = fsa::sd::share_root(org);
    if is_root {
        return root;
    }
    let admins = Sid::org_member(org, RID_ORG_ADMINS);
    let users = Sid::org_member(org, RID_ORG_USERS);
    fsa::sd::inherit(Some(&root), &admins, &users, is_dir)
}

/// The node's effective descriptor: the stored one if it parses, else the default.
///
/// A stored descriptor that does not parse denies access (an integrity
/// error, logged) instead of falling back to the permissive default: only
/// a node that never had one gets the default, and the storage's row MAC
/// proves which is which (storage/rowmac.rs).
pub fn load(org: &OrgStore, org_id: OrgId, node: NodeId, is_dir: bool, is_root: bool) -> Result<SecurityDescriptor> {
    Ok(match org.get_security(node)? {
        Some(bytes) => SecurityDescriptor::parse(&bytes).map_err(|_| {
            tracing::error!(org = org_id.0, node = node.0, "stored security descriptor does not parse: access denied");
            crate::storage::StorageError::Integrity
        })?,
        None => default_sd(org_id, is_dir, is_root),
    })
}

/// What the descriptor of `node` grants `token`.
pub fn granted(org: &OrgStore, org_id: OrgId, node: NodeId, is_dir: bool, is_root: bool, token: &Token) -> Result<u32> {
    Ok(load(org, org_id, node, is_dir, is_root)?.max_allowed(token))
}

/// The descriptor of a new object created by `token`'s user in `parent`.
/// Inherited ACEs carry INHERITED_ACE, and the child SE_DACL_AUTO_INHERITED,
/// only when the parent's DACL is auto-inherited itself (MS-DTYP 2.5.3.4.1
/// AutoInheritFlags; a DACL set over SMB without that flag passes plain
/// ACEs down, smbtorture `smb2.acls.INHERITANCE`).
pub fn for_new(parent: &SecurityDescriptor, token: &Token, org: OrgId, is_dir: bool) -> SecurityDescriptor {
    use crate::wire::dtyp::{Ace, ace_flags, control};
    let mut sd = fsa::sd::inherit(Some(parent), &token.user, &Sid::org_member(org, RID_ORG_USERS), is_dir);
    if parent.control & control::DACL_AUTO_INHERITED == 0 {
        sd.control &= !control::DACL_AUTO_INHERITED;
        if let Some(dacl) = sd.dacl.as_mut() {
            for ace in &mut dacl.aces {
                match ace {
                    Ace::Basic { flags, .. } | Ace::Other { flags, .. } => *flags &= !ace_flags::INHERITED,
                }
            }
        }
    }
    sd
}

/// Generic rights in the ACEs of a descriptor being set are stored mapped
/// to file rights (MS-DTYP 2.5.3.2.3; smbtorture `smb2.acls.GENERIC`),
/// except in inherit-only ACEs, which are mapped when they are inherited.
///
/// SE_DACL_AUTO_INHERITED is kept only when the client also set
/// SE_DACL_AUTO_INHERIT_REQ, which is itself never stored (as Windows;
/// smbtorture `smb2.acls.INHERITFLAGS`).
pub fn prepare_for_set(sd: &mut SecurityDescriptor) {
    use crate::wire::dtyp::{Ace, ace_flags, control};
    const DACL_AUTO_INHERIT_REQ: u16 = 0x0100;
    if sd.control & DACL_AUTO_INHERIT_REQ == 0 {
        sd.control &= !control::DACL_AUTO_INHERITED;
    }
    sd.control &= !DACL_AUTO_INHERIT_REQ;
    let Some(dacl) = sd.dacl.as_mut() else { return };
    for ace in &mut dacl.aces {
        if let Ace::Basic { flags, mask, .. } = ace
            && *flags & ace_flags::INHERIT_ONLY == 0
        {
            *mask = crate::engine::fsa::access::map_generic(*mask);
        }
    }
}
