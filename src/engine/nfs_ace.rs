//! NFS ACEs for macOS clients (AAPL SUPPORTS_NFS_ACE, as Samba's
//! vfs_fruit `fruit:nfs_aces`): the DACL a Mac reads carries the file's
//! UNIX owner, group and mode as three deny ACEs with an empty mask whose
//! trustees are S-1-5-88-1-<uid>, S-1-5-88-2-<gid> and S-1-5-88-3-<mode>
//! (Samba `global_sid_Unix_NFS_Users/Groups/Mode`, libcli/security). Finder
//! shows the POSIX permissions from them, and `chmod` on a Mac sends a DACL
//! with a new mode ACE.
//!
//! smbvault has no UNIX identities: the uid and gid are the last
//! sub-authority (the RID) of the owner and group SIDs, and the mode is the
//! one READDIR_ATTR reports ([`crate::engine::aapl::unix_mode`]), derived
//! from the read-only attribute. Setting a mode ACE sets that attribute:
//! no write bit makes a file read-only, any write bit makes it writable.
//! The NFS ACEs are never stored: they are taken out of every DACL a
//! client sets and added to the one a negotiating Mac reads.

use crate::wire::dtyp::{Ace, SecurityDescriptor, Sid};

/// S-1-5-88: Samba's "Unix NFS" authority prefix.
const NFS_RID: u32 = 88;
/// Second sub-authority of the owner (uid) SID.
const NFS_USERS: u32 = 1;
/// Second sub-authority of the group (gid) SID.
const NFS_GROUPS: u32 = 2;
/// Second sub-authority of the mode SID.
const NFS_MODE: u32 = 3;

fn nfs_sid(kind: u32, value: u32) -> Option<Sid> {
    Sid::new(5, &[NFS_RID, kind, value])
}

/// The kind and value of an NFS ACE trustee (S-1-5-88-kind-value).
fn nfs_parts(sid: &Sid) -> Option<(u32, u32)> {
    match sid.subs() {
        [NFS_RID, kind, value] if sid.authority() == 5 => Some((*kind, *value)),
        _ => None,
    }
}

/// The RID of a SID, as its UNIX id.
fn unix_id(sid: Option<&Sid>) -> u32 {
    sid.and_then(|s| s.subs().last().copied()).unwrap_or(0)
}

/// Appends the owner, group and mode ACEs to `sd`'s DACL (Samba
/// `fruit_fget_nt_acl`). A NULL DACL stays NULL: it grants everything.
pub fn add(sd: &mut SecurityDescriptor, mode: u32) {
    let (uid, gid) = (unix_id(sd.owner.as_ref()), unix_id(sd.group.as_ref()));
    let Some(dacl) = sd.dacl.as_mut() else { return };
    for (kind, value) in [(NFS_MODE, mode), (NFS_USERS, uid), (NFS_GROUPS, gid)] {
        if let Some(sid) = nfs_sid(kind, value) {
            dacl.aces.push(Ace::deny(sid, 0, 0));
        }
    }
}

/// Takes every NFS ACE out of `sd`'s DACL (Samba
/// `remove_virtual_nfs_aces`) and returns the mode of the last mode ACE,
/// if there was one (Samba `check_ms_nfs`).
pub fn take(sd: &mut SecurityDescriptor) -> Option<u32> {
    let dacl = sd.dacl.as_mut()?;
    let mut mode = None;
    dacl.aces.retain(|a| match a {
        Ace::Basic { sid, .. } => match nfs_parts(sid) {
            Some((NFS_MODE, m)) => {
                mode = Some(m);
                false
            }
            Some(_) => false,
            None => true,
        },
        Ace::Other { .. } => true,
    });
    mode
}

/// The read-only attribute a mode asks for: no write bit for anyone.
pub fn read_only(mode: u32) -> bool {
    mode & 0o222 == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::dtyp::Acl;

    /// A DACL as smbtorture `vfs.fruit` "NFS ACE entries" sends it back:
    /// ours plus two S-1-5-88-1-27 and two S-1-5-88-2-300 deny ACEs.
    #[test]
    fn nfs_aces_are_added_once_and_never_kept() {
        let owner = Sid::new(5, &[21, 1, 2, 3, 1001]).unwrap();
        let group = Sid::new(5, &[21, 1, 2, 3, 513]).unwrap();
        let mut sd = SecurityDescriptor {
            owner: Some(owner.clone()),
            group: Some(group),
            dacl: Some(Acl { revision: 2, aces: vec![Ace::allow(owner, 0x1f01ff, 0)] }),
            ..Default::default()
        };
        add(&mut sd, 0o100644);
        let aces = &sd.dacl.as_ref().unwrap().aces;
        assert_eq!(aces.len(), 4);
        assert_eq!(aces[1], Ace::deny(Sid::new(5, &[88, 3, 0o100644]).unwrap(), 0, 0));
        assert_eq!(aces[2], Ace::deny(Sid::new(5, &[88, 1, 1001]).unwrap(), 0, 0));
        assert_eq!(aces[3], Ace::deny(Sid::new(5, &[88, 2, 513]).unwrap(), 0, 0));
        let extra = Ace::deny(Sid::new(5, &[88, 1, 27]).unwrap(), 0, 0);
        sd.dacl.as_mut().unwrap().aces.extend([extra.clone(), extra]);
        assert_eq!(take(&mut sd), Some(0o100644));
        assert_eq!(sd.dacl.as_ref().unwrap().aces.len(), 1);
        assert_eq!(take(&mut sd), None);
        assert!(read_only(0o100444) && !read_only(0o100644));
    }
}
