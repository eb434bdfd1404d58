//! QUERY_DIRECTORY (MS-SMB2 3.3.5.18): listings with wildcards (`*`, `?`,
//! `<`, `>`, `"`), resumable across requests. The enumeration keeps the
//! storage cursor of the last entry returned and reads on from there, so
//! entries deleted meanwhile (by any handle) are not returned and the
//! metadata is current; "." and ".." come first.

use unicode_normalization::UnicodeNormalization;

use crate::engine::context::{Ctx, Reply, new_message};
use crate::engine::fileops::{alloc, attributes, times};
use crate::engine::fsa::access as fa;
use crate::engine::open::{DirEnum, FileOpen};
use crate::engine::status::{Error, Result};
use crate::storage::{DirEntry, Meta, NodeKind};
use crate::wire::NtStatus;
use crate::wire::fscc::InfoClass;
use crate::wire::fscc::dir_info::{self, DirWriter};
use crate::wire::query_directory::{QueryDirectoryRequest, QueryDirectoryResponse, flags};

/// Largest OutputBufferLength we serve (Windows clients ask for 64 KiB to 1 MiB).
const MAX_OUTPUT: u32 = 8 * 1024 * 1024;
/// Entries read from storage per step.
const BATCH: usize = 256;

/// QUERY_DIRECTORY.
pub fn query_directory(ctx: &mut Ctx<'_>) -> Result<Reply> {
    let req = QueryDirectoryRequest::decode(ctx.msg)?;
    let id = ctx.resolve_file_id(req.file_id)?;
    // macOS READDIR_ATTR (see `engine::aapl`): FileIdBothDirectoryInformation
    // entries carry each one's Mac metadata and maximal access.
    let mac = if ctx.conn.aapl.readdir_attr && req.file_information_class == InfoClass::ID_BOTH_DIRECTORY {
        ctx.session()?.principal.as_ref().map(crate::engine::acl::token)
    } else {
        None
    };
    // Access-based enumeration: the user's token, to hide entries their
    // descriptor does not let them read (one descriptor check per entry).
    let abe = match &ctx.tree()?.kind {
        crate::engine::session::TreeKind::Disk(s) if s.access_based_enum => {
            ctx.session()?.principal.as_ref().map(crate::engine::acl::token)
        }
        _ => None,
    };
    let open = ctx.open_mut(id)?;
    let granted = open.granted_access;
    let f = open.file_mut().ok_or(Error::Status(NtStatus::INVALID_PARAMETER))?;
    if !f.is_dir {
        return Err(NtStatus::INVALID_PARAMETER.into());
    }
    fa::check_list_directory(granted)?;
    if !dir_info::is_directory_class(req.file_information_class) {
        return Err(NtStatus::INVALID_INFO_CLASS.into());
    }
    if req.output_buffer_length == 0 || req.output_buffer_length > MAX_OUTPUT {
        return Err(NtStatus::INVALID_PARAMETER.into());
    }
    let restart = req.flags & (flags::RESTART_SCANS | flags::REOPEN) != 0;
    let first = f.dir_enum.is_none() || restart;
    if first {
        // A pattern longer than any name is refused (issue 14: the matcher
        // runs once per entry, so its cost is bounded by the name limit).
        if req.pattern.encode_utf16().count() > crate::wire::fscc::wildcard::MAX_PATTERN_UTF16 {
            return Err(NtStatus::OBJECT_NAME_INVALID.into());
        }
        let pattern = if req.pattern.is_empty() { "*".to_string() } else { req.pattern.nfc().collect() };
        f.dir_enum = Some(DirEnum::new(pattern));
    }
    let mut w = DirWriter::new(req.file_information_class, req.output_buffer_length as usize)
        .ok_or(Error::Status(NtStatus::INVALID_INFO_CLASS))?;
    let single = req.flags & flags::RETURN_SINGLE_ENTRY != 0;
    let mut e = f.dir_enum.take().ok_or(Error::Status(NtStatus::INTERNAL_ERROR))?;
    let mut mac = match mac {
        Some(token) => Some(MacAttrs::new(f, token)?),
        None => None,
    };
    let filled = fill(f, &mut e, &mut w, single, mac.as_mut(), abe.as_ref());
    let found_any = e.found_any;
    let stopped_on_full = matches!(filled, Ok(Fill::Full));
    f.dir_enum = Some(e);
    filled?;
    if w.is_empty() {
        return Err(if stopped_on_full {
            // Not even one entry fits (3.3.5.18).
            NtStatus::INFO_LENGTH_MISMATCH
        } else if first && !found_any {
            NtStatus::NO_SUCH_FILE
        } else {
            NtStatus::NO_MORE_FILES
        }
        .into());
    }
    let mut data = w.into_bytes();
    if let Some(m) = &mac {
        crate::engine::aapl::patch_id_both(&mut data, &m.attrs);
    }
    let mut out = new_message();
    QueryDirectoryResponse { data: &data }.encode(&mut out);
    Ok(Reply::ok(out))
}

/// Why filling stopped.
enum Fill {
    /// The buffer (or the single-entry request) is full.
    Full,
    /// The enumeration has no more entries.
    End,
}

/// Adds entries to `w` from where the enumeration stands.
fn fill(
    f: &FileOpen,
    e: &mut DirEnum,
    w: &mut DirWriter,
    single: bool,
    mut mac: Option<&mut MacAttrs>,
    abe: Option<&crate::engine::fsa::sid::Token>,
) -> Result<Fill> {
    // "." and "..", then (for a pattern without wildcards) one lookup, or
    // the directory in the store's stable order.
    while e.dots < 2 {
        let (name, meta) = if e.dots == 0 { (".", f.org.stat(f.node)?) } else { ("..", parent_meta(f)?) };
        if crate::engine::names::matches(&e.pattern, name) {
            e.found_any = true;
            if !w.push(&wire_entry(name, &meta)) {
                return Ok(Fill::Full);
            }
            if let Some(m) = mac.as_deref_mut() {
                m.add(f, &meta);
            }
            e.dots += 1;
            if single {
                return Ok(Fill::Full);
            }
        } else {
            e.dots += 1;
        }
    }
    if e.done {
        return Ok(Fill::End);
    }
    if !has_wildcards(&e.pattern) {
        e.done = true;
        if let Some(n) = crate::engine::fileops::lookup(&f.org, f.node, &e.pattern)? {
            let meta = f.org.stat(n)?;
            if !readable(f, &meta, abe) {
                return Ok(Fill::End);
            }
            e.found_any = true;
            if !w.push(&wire_entry(&meta.name, &meta)) {
                e.done = false;
                return Ok(Fill::Full);
            }
            if let Some(m) = mac.as_deref_mut() {
                m.add(f, &meta);
            }
        }
        return Ok(Fill::End);
    }
    loop {
        let batch = f.org.list_after(f.node, e.cursor.as_ref(), BATCH)?;
        if batch.is_empty() {
            e.done = true;
            return Ok(Fill::End);
        }
        for entry in batch {
            if matches(&e.pattern, &entry) && readable(f, &entry.meta, abe) {
                e.found_any = true;
                if !w.push(&wire_entry(&entry.name, &entry.meta)) {
                    return Ok(Fill::Full);
                }
                if let Some(m) = mac.as_deref_mut() {
                    m.add(f, &entry.meta);
                }
            }
            e.cursor = Some(entry.cursor);
            if single && !w.is_empty() {
                return Ok(Fill::Full);
            }
        }
    }
}

/// The Mac metadata of the entries written, in order (READDIR_ATTR).
struct MacAttrs {
    token: crate::engine::fsa::sid::Token,
    share: u32,
    parent_delete_child: bool,
    attrs: Vec<crate::engine::aapl::EntryAttr>,
}

impl MacAttrs {
    fn new(f: &FileOpen, token: crate::engine::fsa::sid::Token) -> Result<Self> {
        let dir_acl = crate::engine::acl::granted(&f.org, f.org_id, f.node, true, f.is_root(), &token)?;
        Ok(Self {
            token,
            share: fa::share_mask(f.level),
            parent_delete_child: dir_acl & fa::FILE_DELETE_CHILD != 0,
            attrs: Vec::new(),
        })
    }

    /// The entry's maximal access (MS-SMB2 2.2.14.2.5 rules) and its streams.
    fn add(&mut self, f: &FileOpen, m: &Meta) {
        let is_dir = m.kind == NodeKind::Directory;
        let acl = crate::engine::acl::granted(&f.org, f.org_id, m.id, is_dir, m.id == f.root, &self.token).unwrap_or(0);
        let obj = fa::ExistingObject {
            share: self.share,
            acl,
            parent_delete_child: self.parent_delete_child,
            read_only_file: false,
        };
        self.attrs.push(crate::engine::aapl::entry_attr(&f.org, m, obj.maximal_access()));
    }
}

/// Whether an entry is listed: always, unless access-based enumeration is
/// on, then only if the user's token may open it for reading (the same
/// descriptor evaluation and share mask as CREATE). A descriptor that
/// cannot be read hides the entry.
fn readable(f: &FileOpen, m: &Meta, abe: Option<&crate::engine::fsa::sid::Token>) -> bool {
    let Some(token) = abe else { return true };
    let is_dir = m.kind == NodeKind::Directory;
    crate::engine::acl::granted(&f.org, f.org_id, m.id, is_dir, m.id == f.root, token)
        .is_ok_and(|acl| fa::abe_visible(acl & fa::share_mask(f.level)))
}

/// The pattern matches the name or its 8.3 alternate (MS-FSA 2.1.5.6.3).
fn matches(pattern: &str, e: &DirEntry) -> bool {
    crate::engine::names::matches(pattern, &e.name)
        || crate::engine::names::short_name(&e.name).is_some_and(|s| crate::engine::names::matches(pattern, &s))
}

fn has_wildcards(p: &str) -> bool {
    p.contains(['*', '?', '<', '>', '"'])
}

fn parent_meta(f: &FileOpen) -> Result<Meta> {
    let me = f.org.stat(f.node)?;
    match me.parent {
        Some(p) if f.node != f.root => Ok(f.org.stat(p)?),
        _ => Ok(me),
    }
}

fn wire_entry(name: &str, m: &Meta) -> dir_info::DirEntry {
    let dir = m.kind == NodeKind::Directory;
    dir_info::DirEntry {
        file_index: 0,
        times: times(m),
        end_of_file: if dir { 0 } else { m.size },
        allocation_size: alloc(m),
        file_attributes: attributes(m),
        ea_size: 0,
        reparse_tag: 0,
        file_id: m.id.0,
        short_name: crate::engine::names::short_name(name).unwrap_or_default(),
        name: name.to_string(),
    }
}
