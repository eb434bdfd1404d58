//! SET_INFO (MS-SMB2 3.3.5.21, MS-FSA 2.1.5.14): times and attributes,
//! delete disposition, end of file, allocation, position, mode, extended
//! attributes and security descriptors. Renames are in [`super::rename`].

use crate::audit::{EventKind, EventResult};
use crate::engine::acl;
use crate::engine::context::{Ctx, Reply, new_message};
use crate::engine::fsa::access::{self as fa, InfoType};
use crate::engine::fsa::sharing::{self, DeleteTarget};
use crate::engine::fsa::sid::Token;
use crate::engine::open::{FileOpen, frozen};
use crate::engine::pending::Rerun;
use crate::engine::pending::{PendingKind, PendingOp};
use crate::engine::server::Server;
use crate::engine::status::{Error, Result, info_length};
use crate::storage::MetaUpdate;
use crate::types::FileTime;
use crate::wire::NtStatus;
use crate::wire::dtyp::SecurityDescriptor;
use crate::wire::fscc::InfoClass;
use crate::wire::fscc::consts::{file_attributes, info_type, notify_filter};
use crate::wire::fscc::ea::FileFullEaInformation;
use crate::wire::fscc::file_info::{FileBasicInformation, FileModeInformation, FilePositionInformation};
use crate::wire::fscc::file_set::{
    FileAllocationInformation, FileDispositionInformation, FileDispositionInformationEx, FileEndOfFileInformation,
    FileRenameInformation,
};
use crate::wire::set_info::{SetInfoRequest, SetInfoResponse};

/// What the class handlers need besides the open.
pub struct Env<'a> {
    /// Shared state (open table).
    pub server: &'a Server,
    /// Now.
    pub now: FileTime,
    /// The caller's token.
    pub token: Token,
    /// Access granted to the open.
    pub granted: u32,
    /// The open's server-wide id.
    pub open_id: crate::engine::fsa::OpenId,
    /// The connection's ClientGuid (the open's lease is known by it).
    pub client: crate::wire::Guid,
    /// Set when the request must wait for lease breaks on this stream
    /// (the handler then fails with STATUS_PENDING).
    pub wait: std::cell::RefCell<Option<crate::engine::fsa::FileKey>>,
    /// What the connection negotiated through AAPL (macOS clients).
    pub aapl: crate::engine::aapl::Negotiated,
}

/// SET_INFO.
pub fn set_info(ctx: &mut Ctx<'_>) -> Result<Reply> {
    let r = set_info_inner(ctx);
    if let Err(e) = &r {
        crate::engine::audit::set_info_failed(ctx, e.status());
    }
    r
}

fn set_info_inner(ctx: &mut Ctx<'_>) -> Result<Reply> {
    let req = SetInfoRequest::decode(ctx.msg)?;
    let id = ctx.resolve_file_id(req.file_id)?;
    let principal = ctx.session()?.principal.clone().ok_or(Error::Status(NtStatus::ACCESS_DENIED))?;
    let (server, now) = (ctx.server, FileTime::from_system(ctx.now));
    let client = ctx.conn.neg.client_guid;
    let aapl = ctx.conn.aapl;
    let open = ctx.open_mut(id)?;
    let env = Env {
        server,
        now,
        token: acl::token(&principal),
        granted: open.granted_access,
        open_id: crate::engine::fsa::OpenId(open.file_id.persistent),
        client,
        wait: std::cell::RefCell::new(None),
        aapl,
    };
    let f = open.file_mut().ok_or(Error::Status(NtStatus::NOT_SUPPORTED))?;
    if f.view != 0 {
        view_refusal(req.info_type, InfoClass(req.file_info_class))?;
    }
    let (share, before) = (f.share.clone(), f.path.clone());
    let event = match req.info_type {
        info_type::FILE => match file_class(&env, f, InfoClass(req.file_info_class), req.data) {
            Err(_) if env.wait.borrow().is_some() => {
                let key = env.wait.borrow_mut().take().ok_or(Error::Status(NtStatus::INTERNAL_ERROR))?;
                return Ok(park(ctx, key));
            }
            r => r?,
        },
        info_type::SECURITY => {
            set_security(&env, f, req.additional_information, req.data)?;
            Some(EventKind::SetSecurity { share, path: before, security_info: req.additional_information })
        }
        info_type::FILESYSTEM | info_type::QUOTA => return Err(NtStatus::NOT_SUPPORTED.into()),
        _ => return Err(NtStatus::INVALID_PARAMETER.into()),
    };
    if let Some(ev) = event {
        ctx.audit(ev, EventResult::Ok);
    }
    let mut out = new_message();
    SetInfoResponse.encode(&mut out);
    Ok(Reply::ok(out))
}

/// A Previous Versions handle changes nothing (smbtorture
/// `smb2.twrp.write`, as Samba's vfs_shadow_copy2 and Windows answer):
/// renames and hard links leave the snapshot's volume (NOT_SAME_DEVICE),
/// every other change is MEDIA_WRITE_PROTECTED. The handle's own position
/// and mode may still be set.
fn view_refusal(kind: u8, class: InfoClass) -> Result<()> {
    match (kind, class) {
        (info_type::FILE, InfoClass::POSITION | InfoClass::MODE) => Ok(()),
        (info_type::FILE, InfoClass::RENAME | InfoClass::RENAME_EX | InfoClass::LINK) => {
            Err(NtStatus::NOT_SAME_DEVICE.into())
        }
        (info_type::FILE | info_type::SECURITY, _) => Err(NtStatus::MEDIA_WRITE_PROTECTED.into()),
        _ => Ok(()),
    }
}

/// A rename held up by handle lease breaks (smbtorture
/// `smb2.lease.rename_wait`): interim STATUS_PENDING; the request runs
/// again when the stream's caching state changes (MS-SMB2 3.3.4.2).
fn park(ctx: &mut Ctx<'_>, key: crate::engine::fsa::FileKey) -> Reply {
    let token = ctx.resume.unwrap_or_else(|| ctx.server.files.new_id());
    let mailbox = ctx.conn.mailbox.clone();
    ctx.server.files.with(|t| t.wait_on(&key, token, mailbox));
    if ctx.resume.is_none() {
        let rerun = Rerun { key, msg: ctx.msg.to_vec(), related_file_id: ctx.related_file_id, rest: None };
        let kind = PendingKind::Rerun(Box::new(rerun));
        ctx.conn.pending.insert(token, PendingOp { hdr: ctx.hdr.clone(), encrypted: ctx.encrypted, kind });
    }
    Reply::Pending(token)
}

/// A FILE class; returns the audit event it produced, if any.
fn file_class(env: &Env<'_>, f: &mut FileOpen, class: InfoClass, data: &[u8]) -> Result<Option<EventKind>> {
    fa::check_set_info(env.granted, InfoType::File, u32::from(class.0))?;
    match class {
        InfoClass::BASIC => {
            let b = FileBasicInformation::decode(data).map_err(info_length)?;
            set_basic(env, f, b)?;
            let t = |v: u64| if v == 0 || v >= u64::MAX - 1 { None } else { Some(FileTime(v)) };
            let (share, path) = (f.share.clone(), f.path.clone());
            Ok(Some(if b.file_attributes != 0 {
                EventKind::SetAttributes { share, path, attributes: b.file_attributes }
            } else {
                EventKind::SetTimes {
                    share,
                    path,
                    creation: t(b.times.creation),
                    last_access: t(b.times.last_access),
                    last_write: t(b.times.last_write),
                    change: t(b.times.change),
                }
            }))
        }
        InfoClass::RENAME | InfoClass::RENAME_EX => {
            let from = f.path.clone();
            super::rename::rename(env, f, FileRenameInformation::decode(data).map_err(info_length)?)?;
            Ok(Some(EventKind::Rename { share: f.share.clone(), from, to: f.path.clone() }))
        }
        _ => other_class(env, f, class, data).map(|()| None),
    }
}

fn other_class(env: &Env<'_>, f: &mut FileOpen, class: InfoClass, data: &[u8]) -> Result<()> {
    match class {
        InfoClass::DISPOSITION => {
            let d = FileDispositionInformation::decode(data).map_err(info_length)?;
            set_delete(env, f, d.delete_pending)
        }
        InfoClass::DISPOSITION_EX => {
            let d = FileDispositionInformationEx::decode(data).map_err(info_length)?;
            // FILE_DISPOSITION_DELETE is bit 0; FILE_DISPOSITION_IGNORE_READONLY_ATTRIBUTE
            // (0x10) deletes a read-only file too (MS-FSCC 2.4.12). POSIX
            // semantics are served as a classic delete-on-last-close.
            set_delete_ex(env, f, d.flags & 1 != 0, d.flags & 0x10 != 0)
        }
        InfoClass::END_OF_FILE => {
            let e = FileEndOfFileInformation::decode(data).map_err(info_length)?;
            set_size(env, f, e.end_of_file, false)
        }
        InfoClass::ALLOCATION => {
            let a = FileAllocationInformation::decode(data).map_err(info_length)?;
            set_size(env, f, a.allocation_size, true)
        }
        InfoClass::POSITION => {
            f.position = FilePositionInformation::decode(data).map_err(info_length)?.current_byte_offset;
            Ok(())
        }
        InfoClass::MODE => {
            let m = FileModeInformation::decode(data).map_err(info_length)?.mode;
            // Only the buffering and synchronous-I/O bits may be set (MS-FSCC 2.4.26).
            if m & !0x0000_003E != 0 {
                return Err(NtStatus::INVALID_PARAMETER.into());
            }
            f.mode = m;
            Ok(())
        }
        InfoClass::FULL_EA => {
            set_eas(f, FileFullEaInformation::decode(data)?)?;
            crate::engine::notify::modified(env.server, f, notify_filter::EA);
            Ok(())
        }
        InfoClass::VALID_DATA_LENGTH => Ok(()),
        // Hard links and short-name changes need privileges we never grant.
        InfoClass::LINK | InfoClass::SHORT_NAME => Err(NtStatus::NOT_SUPPORTED.into()),
        _ => Err(NtStatus::INVALID_INFO_CLASS.into()),
    }
}

/// FileEndOfFileInformation / FileAllocationInformation (MS-FSA
/// 2.1.5.14.1, 2.1.5.14.4). An allocation below the size truncates; above
/// it nothing is reserved (chunks are allocated when written).
fn set_size(env: &Env<'_>, f: &mut FileOpen, size: u64, allocation: bool) -> Result<()> {
    let c = f.content.clone().ok_or(Error::Status(NtStatus::INVALID_PARAMETER))?;
    if f.stream.as_deref().is_some_and(crate::engine::aapl::is_afp_info) {
        // Finder info keeps its one record (as on macOS): see aapl::afp_info_eof.
        return crate::engine::aapl::afp_info_eof(size);
    }
    crate::engine::times::settle(&env.server.files, &f.org, f.org_id, f.node, env.now, true)?;
    // Setting the size or allocation breaks read caching of other opens,
    // even when nothing changes (MS-FSA 2.1.4.12; smbtorture `smb2.oplock.batch12`).
    let now = env.server.files.instant(env.now.to_system());
    env.server.files.with(|t| {
        if t.get(&f.key).is_some() {
            let breaks = t.stream(&f.key).before_truncate(env.open_id, now);
            t.send_breaks(&f.key, breaks);
        }
    });
    if allocation {
        f.alloc_hint = size.div_ceil(4096) * 4096;
        if size >= c.len() {
            return Ok(());
        }
    }
    let before = c.len();
    c.set_len(size)?;
    crate::engine::times::on_write(&env.server.files, f, env.now);
    if before != size {
        crate::engine::notify::modified(env.server, f, notify_filter::SIZE);
    }
    Ok(())
}

/// Attribute bits a client may set with FileBasicInformation (MS-FSCC 2.6).
const SETTABLE: u32 = crate::engine::fileops::SETTABLE_ATTRIBUTES;

/// FileBasicInformation (MS-FSA 2.1.5.14.2): 0 leaves a field alone, -1
/// stops automatic updates of that time through this handle, -2 resumes
/// them (MS-FSCC 2.4.7). Any SET_INFO basic applies a pending write-time update.
fn set_basic(env: &Env<'_>, f: &mut FileOpen, b: FileBasicInformation) -> Result<()> {
    crate::engine::times::settle(&env.server.files, &f.org, f.org_id, f.node, env.now, true)?;
    let t = |v: u64| if v == 0 || v >= u64::MAX - 1 { None } else { Some(FileTime(v)) };
    for (v, bit) in
        [(b.times.last_access, frozen::ACCESS), (b.times.last_write, frozen::WRITE), (b.times.change, frozen::CHANGE)]
    {
        match v {
            u64::MAX => f.times.frozen |= bit,
            v if v == u64::MAX - 1 => f.times.frozen &= !bit,
            _ => {}
        }
    }
    let mut upd = MetaUpdate {
        created: t(b.times.creation),
        accessed: t(b.times.last_access),
        written: t(b.times.last_write),
        changed: t(b.times.change),
        attrs: None,
    };
    if upd.written.is_some() {
        crate::engine::times::force_write_time(&env.server.files, f);
    }
    let mut changed = 0;
    for (set, bit) in [
        (upd.created, notify_filter::CREATION),
        (upd.accessed, notify_filter::LAST_ACCESS),
        (upd.written, notify_filter::LAST_WRITE),
    ] {
        if set.is_some() {
            changed |= bit;
        }
    }
    if b.file_attributes != 0 {
        changed |= notify_filter::ATTRIBUTES;
        let a = b.file_attributes;
        if a & file_attributes::DIRECTORY != 0 && !f.is_dir {
            return Err(NtStatus::INVALID_PARAMETER.into());
        }
        if a & file_attributes::TEMPORARY != 0 && f.is_dir {
            return Err(NtStatus::INVALID_PARAMETER.into());
        }
        let keep = f.org.stat(f.node)?.attrs & file_attributes::SPARSE_FILE;
        let dir = if f.is_dir { file_attributes::DIRECTORY } else { 0 };
        upd.attrs = Some((a & SETTABLE) | keep | dir);
    }
    f.org.set_meta(f.node, &upd)?;
    if changed != 0 {
        crate::engine::notify::modified(env.server, f, changed);
    }
    Ok(())
}

/// FileDispositionInformation (MS-FSA 2.1.5.14.3): the delete happens at
/// the last close of the stream (or file), on whichever connection.
fn set_delete(env: &Env<'_>, f: &mut FileOpen, delete: bool) -> Result<()> {
    set_delete_ex(env, f, delete, false)
}

fn set_delete_ex(env: &Env<'_>, f: &mut FileOpen, delete: bool, ignore_read_only: bool) -> Result<()> {
    let m = f.org.stat(f.node)?;
    let target = DeleteTarget {
        granted: env.granted,
        read_only: m.attrs & file_attributes::READONLY != 0 && f.stream.is_none() && !ignore_read_only,
        is_directory: f.is_dir,
        dir_empty: !f.is_dir || f.org.list_after(f.node, None, 1)?.is_empty(),
        is_share_root: f.is_root(),
        share_writable: fa::share_writable(f.level),
    };
    sharing::check_set_disposition(&target, delete)?;
    env.server.files.with(|t| {
        t.stream(&f.key).shares.set_delete_pending(delete);
        if delete && f.is_dir {
            // Watchers of the directory learn it is going (smbtorture `smb2.notify.rmdir*`).
            t.watches.delete_pending(f.org_id, f.node);
        }
    });
    Ok(())
}

/// FileFullEaInformation: entries with an empty value delete that EA.
fn set_eas(f: &FileOpen, eas: FileFullEaInformation) -> Result<()> {
    let mut cur = f.org.get_eas(f.node)?;
    for e in eas.entries {
        let name = String::from_utf8(e.name).map_err(|_| Error::Status(NtStatus::INVALID_PARAMETER))?;
        cur.retain(|(n, _)| !n.eq_ignore_ascii_case(&name));
        if !e.value.is_empty() {
            cur.push((name.to_ascii_uppercase(), e.value));
        }
    }
    crate::engine::fileops::check_ea_set(&cur)?;
    f.org.set_eas(f.node, &cur)?;
    Ok(())
}

/// SECURITY (MS-SMB2 3.3.5.21.3): the parts named by AdditionalInformation
/// replace those of the object's descriptor; the rest stays.
fn set_security(env: &Env<'_>, f: &FileOpen, info: u32, data: &[u8]) -> Result<()> {
    fa::check_set_info(env.granted, InfoType::Security, info)?;
    let mut parts = info & super::create_plan::ALL_PARTS;
    if parts == 0 {
        return Ok(());
    }
    let mut given = SecurityDescriptor::parse(data).map_err(Error::Status)?;
    // NFS ACEs (macOS) are never stored; a mode ACE sets the read-only
    // attribute. A DACL of NFS ACEs only (a Mac's chmod) leaves the DACL
    // alone, as Samba's `fruit_fset_nt_acl` does.
    let aces = |sd: &SecurityDescriptor| sd.dacl.as_ref().map_or(0, |d| d.aces.len());
    let before = aces(&given);
    let nfs_mode = crate::engine::nfs_ace::take(&mut given);
    if before != 0 && aces(&given) == 0 {
        parts &= !fa::DACL_SECURITY_INFORMATION;
    }
    if let Some(mode) =
        nfs_mode.filter(|_| info & fa::DACL_SECURITY_INFORMATION != 0 && !f.is_dir && f.stream.is_none())
    {
        let attrs = f.org.stat(f.node)?.attrs;
        let want = if crate::engine::nfs_ace::read_only(mode) {
            attrs | file_attributes::READONLY
        } else {
            attrs & !file_attributes::READONLY
        };
        if want != attrs {
            f.org.set_meta(f.node, &MetaUpdate { attrs: Some(want), ..Default::default() })?;
        }
    }
    if parts == 0 {
        return Ok(());
    }
    acl::prepare_for_set(&mut given);
    if parts & fa::DACL_SECURITY_INFORMATION != 0 && given.control & crate::wire::dtyp::control::DACL_PRESENT == 0 {
        // Setting "no DACL" stores a NULL DACL: present, granting everyone
        // everything (MS-DTYP 2.4.6; smbtorture `smb2.create.nulldacl`).
        given.control |= crate::wire::dtyp::control::DACL_PRESENT;
        given.dacl = None;
    }
    let mut sd = acl::load(&f.org, f.org_id, f.node, f.is_dir, f.is_root())?;
    sd.apply(&given, parts, &env.token).map_err(Error::Status)?;
    f.org.set_security(f.node, &sd.encode(super::create_plan::ALL_PARTS))?;
    crate::engine::notify::modified(env.server, f, notify_filter::SECURITY);
    Ok(())
}
