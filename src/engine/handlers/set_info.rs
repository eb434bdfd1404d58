//! SET_INFO (MS-SMB2 3.3.5.21, MS-FSA 2.1.5.14): times and attributes,
//! rename and move, delete disposition, end of file, allocation, position,
//! mode, extended attributes and security descriptors.

use unicode_normalization::UnicodeNormalization;

use crate::audit::{EventKind, EventResult};
use crate::engine::connection::{Ctx, Reply, new_message};
use crate::engine::fileops;
use crate::engine::names;
use crate::engine::open::FileOpen;
use crate::engine::status::{Error, Result};
use crate::storage::{MetaUpdate, NodeKind};
use crate::types::FileTime;
use crate::wire::NtStatus;
use crate::wire::fscc::InfoClass;
use crate::wire::fscc::consts::{access, file_attributes, info_type};
use crate::wire::fscc::ea::FileFullEaInformation;
use crate::wire::fscc::file_info::{FileBasicInformation, FileModeInformation, FilePositionInformation};
use crate::wire::fscc::file_set::{
    FileAllocationInformation, FileDispositionInformation, FileDispositionInformationEx, FileEndOfFileInformation,
    FileRenameInformation,
};
use crate::wire::set_info::{SetInfoRequest, SetInfoResponse};

/// SET_INFO.
pub fn set_info(ctx: &mut Ctx<'_>) -> Result<Reply> {
    let req = SetInfoRequest::decode(ctx.msg)?;
    let id = ctx.resolve_file_id(req.file_id)?;
    let now = FileTime::from_system(ctx.now);
    let open = ctx.open_mut(id)?;
    let granted = open.granted_access;
    let f = open.file_mut().ok_or(Error::Status(NtStatus::NOT_SUPPORTED))?;
    let (share, before) = (f.share.clone(), f.path.clone());
    let event = match req.info_type {
        info_type::FILE => file_class(f, granted, InfoClass(req.file_info_class), req.data, now)?,
        info_type::SECURITY => {
            set_security(f, granted, req.additional_information, req.data)?;
            Some(EventKind::SetSecurity {
                share: share.clone(),
                path: before.clone(),
                security_info: req.additional_information,
            })
        }
        info_type::FILESYSTEM => return Err(NtStatus::NOT_SUPPORTED.into()),
        info_type::QUOTA => return Err(NtStatus::NOT_SUPPORTED.into()),
        _ => return Err(NtStatus::INVALID_PARAMETER.into()),
    };
    if let Some(ev) = event {
        ctx.audit(ev, EventResult::Ok);
    }
    let mut out = new_message();
    SetInfoResponse.encode(&mut out);
    Ok(Reply::ok(out))
}

fn need(granted: u32, bits: u32) -> Result<()> {
    if granted & bits == 0 { Err(NtStatus::ACCESS_DENIED.into()) } else { Ok(()) }
}

/// A FILE class; returns the audit event it produced, if any.
fn file_class(
    f: &mut FileOpen,
    granted: u32,
    class: InfoClass,
    data: &[u8],
    now: FileTime,
) -> Result<Option<EventKind>> {
    let short = |_| -> Error { NtStatus::INFO_LENGTH_MISMATCH.into() };
    match class {
        InfoClass::BASIC => {
            need(granted, access::FILE_WRITE_ATTRIBUTES)?;
            let b = FileBasicInformation::decode(data).map_err(short)?;
            set_basic(f, b, now)?;
            let t = |v: u64| if v == 0 || v >= u64::MAX - 1 { None } else { Some(FileTime(v)) };
            let (share, path) = (f.share.clone(), f.path.clone());
            return Ok(Some(if b.file_attributes != 0 {
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
            }));
        }
        InfoClass::RENAME => {
            need(granted, access::DELETE)?;
            let from = f.path.clone();
            rename(f, FileRenameInformation::decode(data)?, now)?;
            return Ok(Some(EventKind::Rename { share: f.share.clone(), from, to: f.path.clone() }));
        }
        _ => {}
    }
    other_class(f, granted, class, data).map(|()| None)
}

fn other_class(f: &mut FileOpen, granted: u32, class: InfoClass, data: &[u8]) -> Result<()> {
    let short = |_| -> Error { NtStatus::INFO_LENGTH_MISMATCH.into() };
    match class {
        InfoClass::DISPOSITION => {
            need(granted, access::DELETE)?;
            let d = FileDispositionInformation::decode(data).map_err(short)?;
            set_delete(f, d.delete_pending)
        }
        InfoClass::DISPOSITION_EX => {
            need(granted, access::DELETE)?;
            let d = FileDispositionInformationEx::decode(data).map_err(short)?;
            // FILE_DISPOSITION_DELETE is bit 0 (MS-FSCC 2.4.12).
            set_delete(f, d.flags & 1 != 0)
        }
        InfoClass::END_OF_FILE => {
            need(granted, access::FILE_WRITE_DATA)?;
            let e = FileEndOfFileInformation::decode(data).map_err(short)?;
            let c = f.content.clone().ok_or(Error::Status(NtStatus::INVALID_PARAMETER))?;
            c.set_len(e.end_of_file)?;
            f.written = true;
            Ok(())
        }
        InfoClass::ALLOCATION => {
            need(granted, access::FILE_WRITE_DATA)?;
            let a = FileAllocationInformation::decode(data).map_err(short)?;
            let c = f.content.clone().ok_or(Error::Status(NtStatus::INVALID_PARAMETER))?;
            // Allocation below the size truncates (MS-FSA 2.1.5.14.1); above it
            // nothing is reserved: chunks are allocated when written.
            if a.allocation_size < c.len() {
                c.set_len(a.allocation_size)?;
                f.written = true;
            }
            Ok(())
        }
        InfoClass::POSITION => {
            f.position = FilePositionInformation::decode(data).map_err(short)?.current_byte_offset;
            Ok(())
        }
        InfoClass::MODE => {
            let m = FileModeInformation::decode(data).map_err(short)?.mode;
            // Only the buffering and synchronous-I/O bits may be set (MS-FSCC 2.4.26).
            if m & !0x0000_003E != 0 {
                return Err(NtStatus::INVALID_PARAMETER.into());
            }
            f.mode = m;
            Ok(())
        }
        InfoClass::FULL_EA => {
            need(granted, access::FILE_WRITE_EA)?;
            set_eas(f, FileFullEaInformation::decode(data)?)
        }
        InfoClass::VALID_DATA_LENGTH => Ok(()),
        _ => Err(NtStatus::INVALID_INFO_CLASS.into()),
    }
}

/// FileBasicInformation: 0 leaves a field alone; -1 stops automatic
/// updates of that time for this handle (MS-FSCC 2.4.7).
fn set_basic(f: &mut FileOpen, b: FileBasicInformation, _now: FileTime) -> Result<()> {
    let t = |v: u64| {
        if v == 0 || v == u64::MAX || v == u64::MAX - 1 { None } else { Some(FileTime(v)) }
    };
    let mut upd = MetaUpdate {
        created: t(b.times.creation),
        accessed: t(b.times.last_access),
        written: t(b.times.last_write),
        changed: t(b.times.change),
        attrs: None,
    };
    if b.times.last_write != 0 {
        f.sticky_write_time = b.times.last_write != u64::MAX - 1;
    }
    if b.file_attributes != 0 {
        let a = b.file_attributes;
        if a & file_attributes::DIRECTORY != 0 && !f.is_dir {
            return Err(NtStatus::INVALID_PARAMETER.into());
        }
        if a & file_attributes::TEMPORARY != 0 && f.is_dir {
            return Err(NtStatus::INVALID_PARAMETER.into());
        }
        upd.attrs =
            Some(fileops::new_attributes(a, f.is_dir) & !file_attributes::ARCHIVE | (a & file_attributes::ARCHIVE));
    }
    f.org.set_meta(f.node, &upd)?;
    Ok(())
}

/// FileDispositionInformation (MS-FSA 2.1.5.14.3): a read-only file refuses,
/// a non-empty directory refuses; the delete happens at the last close.
fn set_delete(f: &mut FileOpen, delete: bool) -> Result<()> {
    if delete {
        let m = f.org.stat(f.node)?;
        if m.attrs & file_attributes::READONLY != 0 && f.stream.is_none() {
            return Err(NtStatus::CANNOT_DELETE.into());
        }
        if f.is_dir && !f.org.list_after(f.node, None, 1)?.is_empty() {
            return Err(NtStatus::DIRECTORY_NOT_EMPTY.into());
        }
        if m.parent.is_none() && f.stream.is_none() {
            // The share root cannot be deleted.
            return Err(NtStatus::CANNOT_DELETE.into());
        }
    }
    f.delete_on_close = delete;
    Ok(())
}

/// FileRenameInformation (MS-SMB2 3.3.5.21.1): the new name is relative to
/// the share root; ":name" renames a stream.
fn rename(f: &mut FileOpen, r: FileRenameInformation, now: FileTime) -> Result<()> {
    if r.root_directory != 0 {
        return Err(NtStatus::INVALID_PARAMETER.into());
    }
    let target: String = r.file_name.nfc().collect();
    if let Some(stream) = target.strip_prefix(':') {
        let from = f.stream.clone().unwrap_or_default();
        let to = stream.split(':').next().unwrap_or("").to_string();
        f.org.rename_stream(f.node, &from, &to, r.replace_if_exists)?;
        f.stream = if to.is_empty() { None } else { Some(to) };
        return Ok(());
    }
    let parsed = names::parse_target(&target).map_err(Error::Status)?;
    let (leaf, dirs) = parsed.components.split_last().ok_or(Error::Status(NtStatus::OBJECT_NAME_INVALID))?;
    let new_parent = fileops::walk(&f.org, f.root, dirs)?;
    let me = f.org.stat(f.node)?;
    let old_parent = me.parent.ok_or(Error::Status(NtStatus::ACCESS_DENIED))?;
    if let Some(existing) = f.org.lookup(new_parent, leaf)?
        && existing != f.node
    {
        if !r.replace_if_exists {
            return Err(NtStatus::OBJECT_NAME_COLLISION.into());
        }
        if f.org.stat(existing)?.kind == NodeKind::Directory {
            // Replacing a directory is never allowed (MS-FSA 2.1.5.14.11).
            return Err(NtStatus::ACCESS_DENIED.into());
        }
    }
    f.org.rename(f.node, new_parent, leaf, r.replace_if_exists)?;
    f.org.set_meta(f.node, &MetaUpdate { changed: Some(now), ..Default::default() })?;
    super::create::touch_dir(&f.org, old_parent, now)?;
    if new_parent != old_parent {
        super::create::touch_dir(&f.org, new_parent, now)?;
    }
    f.path = parsed.components.join("\\");
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
    f.org.set_eas(f.node, &cur)?;
    Ok(())
}

/// SECURITY: a well-formed self-relative descriptor, stored encrypted.
fn set_security(f: &FileOpen, granted: u32, info: u32, data: &[u8]) -> Result<()> {
    use crate::wire::fscc::consts::security_info as si;
    if info & (si::OWNER | si::GROUP) != 0 {
        need(granted, access::WRITE_OWNER)?;
    }
    if info & si::DACL != 0 {
        need(granted, access::WRITE_DAC)?;
    }
    if info & si::SACL != 0 {
        return Err(NtStatus::PRIVILEGE_NOT_HELD.into());
    }
    crate::wire::dtyp::validate_self_relative(data).map_err(|_| Error::Status(NtStatus::INVALID_SECURITY_DESCR))?;
    f.org.set_security(f.node, data)?;
    Ok(())
}
