//! File-system semantics Windows clients rely on, as pure state machines
//! (MS-FSA object-store algorithms, MS-SMB2 server rules, and smbtorture's
//! view of Windows where the two differ). No I/O, no clocks: time comes in
//! as `now: Instant`, results come out as values the engine turns into
//! responses and notifications.
//!
//! | module      | what                                                         |
//! |-------------|--------------------------------------------------------------|
//! | [`locks`]   | byte-range locks, SMB2 LOCK rules, blocked-lock queue, lock sequences |
//! | [`intervals`] | the interval tree the locks of a stream are kept in |
//! | [`sharing`] | share modes, delete-pending, delete-on-close, read-only/overwrite rules |
//! | [`access`]  | access masks, generic mapping, MAXIMUM_ALLOWED, share permission masks, per-command checks |
//! | [`sid`], [`sd`] | SIDs and the smbvault SID scheme, security descriptors, access check, inheritance |
//! | [`lease`]   | oplock/lease vocabulary, [`lease::LeaseDirectory`]       |
//! | [`oplock`]  | per-stream oplock/lease grant, break and acknowledgment logic |
//! | [`stream`]  | [`stream::StreamState`]: all of the above for one stream, in CREATE order |
//!
//! # How the engine uses it
//!
//! The server keeps one `HashMap<FileKey, StreamState>` (behind a lock,
//! shared by all connections) and one [`lease::LeaseDirectory`]. An entry
//! is created on first open and dropped when [`stream::StreamState::is_idle`].
//!
//! **TREE_CONNECT**: `access::share_mask(perm)` is MaximalAccess and the cap
//! of every open on the tree.
//!
//! **CREATE** (MS-SMB2 3.3.5.9), for an existing object:
//! 1. `acl = sd.max_allowed(&token)` for the object, `parent_delete_child`
//!    from the parent's SD; `granted = access::open_existing(desired,
//!    &ExistingObject{..})?`; for a new object `access::check_create_in`
//!    on the parent then `access::open_new`. MxAc context:
//!    `ExistingObject::maximal_access()`.
//! 2. Overwrite dispositions: `sharing::check_overwrite(attrs, new_attrs)?`.
//!    FILE_DELETE_ON_CLOSE: `sharing::check_create_delete_on_close(..)?`.
//! 3. With a lease context: `lease_dir.check(&id, &key)?`.
//! 4. `stream.begin_open(&OpenRequest{..}, now)`: send every
//!    `outcome.breaks` (see below); `Granted(grant)` → answer with
//!    `grant.oplock_level()` and, for a lease, the lease context, then
//!    `lease_dir.insert(id, key)`; `Wait` → interim STATUS_PENDING, keep the
//!    request by its token; `Failed(status)` → answer the status.
//!    If a later step of the CREATE fails, call `stream.close(open)`.
//! 5. Parked CREATEs come back as tokens in `retry` lists (from CLOSE,
//!    acknowledgments, timers): rerun step 4 with `first_attempt: false`.
//!    A CANCEL of a parked CREATE: `stream.unpark(token)`, answer CANCELLED.
//!
//! **READ**: `access::check_read(granted)?`, `stream.check_read(open, off, len)?`.
//!
//! **WRITE**: `access::check_write(granted)?` (append-only handles write at
//! EOF), `breaks = stream.before_write(open, off, len, now)?`.
//!
//! **LOCK** (MS-SMB2 3.3.5.14): directories are INVALID_DEVICE_REQUEST;
//! `(reply, breaks) = stream.lock(open, &LockRequest{elements,
//! lock_sequence, check_sequence, token: async_id}, allocation, now)`.
//! `reply.status == None` → interim STATUS_PENDING with that async id.
//! Every `Completion` in `reply.completed` (and in CLOSE / unlock results)
//! finishes an earlier pending LOCK with its status. CANCEL of a pending
//! LOCK: `stream.locks.cancel(token)` → answer CANCELLED.
//! `check_sequence` = open is resilient/durable/persistent, or dialect 3.x
//! with multichannel advertised.
//!
//! **SET_INFO** (MS-SMB2 3.3.5.21): `access::check_set_info(granted, kind,
//! class)?`; disposition: `sharing::check_set_disposition(&target, flag)?`
//! then `stream.shares.set_delete_pending(flag)`; end-of-file/allocation:
//! `stream.before_truncate(open, now)`; rename/delete of a file with other
//! clients' handle leases: `stream.cache.break_handle_caching(own, now)`
//! (wait for acknowledgment if it says so); any change inside a directory:
//! parent `cache.break_parent_leases(parent_key_of_request, now)`.
//! Security: `SecurityDescriptor::parse`, `apply`, `encode`.
//!
//! **QUERY_INFO**: `access::check_query_info(granted, kind, class)?`.
//!
//! **CLOSE**: `out = stream.close(open)`; finish `out.lock_completions`,
//! delete the stream/file if `out.delete`, `lease_dir.remove` the
//! `out.released_lease`, rerun `out.retry`.
//!
//! **OPLOCK_BREAK** (MS-SMB2 3.3.5.22): oplock ack →
//! `stream.oplock_ack(open, level)` = (OplockLevel for the response,
//! retry); lease ack → `lease_dir.lookup(&id)` (none:
//! OBJECT_NAME_NOT_FOUND), then `stream.lease_ack(&id, state, now)`.
//!
//! **Breaks** ([`lease::Break`]): `Oplock{open, level, ack_required}` →
//! OPLOCK_BREAK notification (MS-SMB2 3.3.4.6) with that open's FileId on
//! its connection; `Lease{id, opens, from, to, epoch, ack_required}` → one
//! LEASE_BREAK notification (3.3.4.7) on the connection of the first of
//! `opens` still connected.
//!
//! **Timers**: keep `stream.next_deadline()` in a timer index; when it
//! passes call `stream.on_timer(now)` and rerun the returned tokens.
//!
//! **Identities**: [`sid`] documents the SID scheme (organization domain
//! `S-1-5-21-1397572182-H-L`, user RID 1000 + id, group RID 2^30 + id);
//! build a session's [`sid::Token`] once at SESSION_SETUP. Share roots get
//! [`sd::share_root`], new objects [`sd::inherit`] from their parent.
//!
//! # Conventions and gaps
//!
//! - Pass `CacheRequest::None` for directories unless the client sent a V2
//!   lease context and directory leasing was negotiated.
//! - Share modes, locks and caching are per stream. Deleting or renaming a
//!   file whose other streams are open (MS-FSA: SHARING_VIOLATION unless
//!   those opens share delete) is the engine's check over the file's keys.
//! - MAXIMUM_ALLOWED | GENERIC_EXECUTE on a file whose DACL grants only
//!   read is ACCESS_DENIED here and on Samba, OK on Windows.
//! - No privileges (backup, restore, take ownership, security) are ever
//!   granted; ACCESS_SYSTEM_SECURITY is PRIVILEGE_NOT_HELD.

pub mod access;
pub mod intervals;
pub mod lease;
pub mod locks;
pub mod oplock;
pub mod sd;
pub mod sharing;
pub mod sid;
pub mod stream;

use crate::types::{NodeId, OrgId};

/// Server-wide identity of an open: the engine's persistent FileId (it
/// stays the same across a durable reconnect, so locks and leases do too).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OpenId(pub u64);

/// Key of the open-file table: one stream of one node of one organization.
/// Nodes keep their id across renames, so renames never move state.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FileKey {
    /// Organization.
    pub org: OrgId,
    /// Node (file or directory).
    pub node: NodeId,
    /// Named stream, case-folded; `None` for the default data stream
    /// (and for directories).
    pub stream: Option<String>,
    /// 0 for the live file system; for a Previous Versions view, the
    /// generation's time (its nodes reuse the live ids, so the key must
    /// tell them apart: an open of an old version never meets the share
    /// modes, locks or leases of today's file).
    pub view: i64,
}

impl FileKey {
    /// The key for `stream` of a node: `""`, `"::$DATA"`, `":$DATA"` and
    /// `"$DATA"` name the default stream; a trailing `":$DATA"` is dropped and the
    /// rest folded like every name (`types::fold_name`: stream names compare case-insensitively).
    pub fn new(org: OrgId, node: NodeId, stream: &str) -> Self {
        let s = stream.strip_prefix(':').unwrap_or(stream);
        let s = if s.eq_ignore_ascii_case("$DATA") { "" } else { strip_suffix_ci(s, ":$DATA") };
        let stream = if s.is_empty() { None } else { Some(crate::types::fold_name(s)) };
        Self { org, node, stream, view: 0 }
    }

    /// The same key in the view of the generation taken at `view`.
    pub fn in_view(mut self, view: i64) -> Self {
        self.view = view;
        self
    }

    /// The default stream of the same node, in the same view.
    pub fn main(&self) -> Self {
        Self { org: self.org, node: self.node, stream: None, view: self.view }
    }
}

fn strip_suffix_ci<'a>(s: &'a str, suffix: &str) -> &'a str {
    let n = suffix.len();
    if s.len() >= n && s.is_char_boundary(s.len() - n) {
        let (head, tail) = s.split_at(s.len() - n);
        if tail.eq_ignore_ascii_case(suffix) {
            return head;
        }
    }
    s
}

#[cfg(test)]
mod tests;
