//! Reporting changes to the change-notify watches (MS-FSA 2.1.4.1
//! FsRtlNotifyFullReportChange): what a create, delete, write or rename
//! through an open reports, and with which action and filter bits. The
//! watches themselves, and how a change completes a CHANGE_NOTIFY, are in
//! [`crate::engine::watches`].

use crate::engine::open::FileOpen;
use crate::engine::server::Server;
use crate::wire::fscc::consts::{notify_action as action, notify_filter as filter};

/// The path of an open's file (without `:stream`).
fn file_path(f: &FileOpen) -> &str {
    match f.path.find(':') {
        Some(i) => &f.path[..i],
        None => &f.path,
    }
}

fn name_filter(is_dir: bool) -> u32 {
    if is_dir { filter::DIR_NAME } else { filter::FILE_NAME }
}

/// A file or directory was created through `f`.
pub fn added(server: &Server, f: &FileOpen, is_dir: bool) {
    let path = file_path(f);
    server.files.with(|t| t.watches.report((f.org_id, f.root), path, action::ADDED, name_filter(is_dir)));
}

/// The file or directory of `f` was deleted.
pub fn removed(server: &Server, f: &FileOpen, is_dir: bool) {
    let path = file_path(f);
    server.files.with(|t| t.watches.report((f.org_id, f.root), path, action::REMOVED, name_filter(is_dir)));
}

/// The named stream of `f` was created.
pub fn stream_added(server: &Server, f: &FileOpen) {
    server.files.with(|t| t.watches.report((f.org_id, f.root), &f.path, action::ADDED_STREAM, filter::STREAM_NAME));
}

/// The named stream of `f` was deleted.
pub fn stream_removed(server: &Server, f: &FileOpen) {
    server.files.with(|t| t.watches.report((f.org_id, f.root), &f.path, action::REMOVED_STREAM, filter::STREAM_NAME));
}

/// Something about the file of `f` changed (`bits`: ATTRIBUTES, SIZE,
/// LAST_WRITE, ...); changes of a named stream are reported as stream changes.
pub fn modified(server: &Server, f: &FileOpen, bits: u32) {
    if f.stream.is_some() {
        let b = if bits & filter::SIZE != 0 { filter::STREAM_SIZE } else { filter::STREAM_WRITE };
        server.files.with(|t| t.watches.report((f.org_id, f.root), &f.path, action::MODIFIED_STREAM, b));
        return;
    }
    let path = file_path(f);
    server.files.with(|t| t.watches.report((f.org_id, f.root), path, action::MODIFIED, bits));
}

/// A file or directory moved from `from` to `to` (paths below the share
/// root). Windows also reports a renamed file as modified (its archive
/// bit is set): `smb2.notify.mask-change`.
pub fn renamed(server: &Server, f: &FileOpen, from: &str, to: &str) {
    server.files.with(|t| {
        let share = (f.org_id, f.root);
        t.watches.report_rename(share, from, to, name_filter(f.is_dir));
        if !f.is_dir {
            t.watches.report(share, to, action::MODIFIED, filter::ATTRIBUTES);
        }
    });
}
