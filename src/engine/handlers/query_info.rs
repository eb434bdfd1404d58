//! QUERY_INFO (MS-SMB2 3.3.5.20): file, file-system and security
//! information of an open (MS-FSCC 2.4, 2.5; MS-DTYP 2.4.6).

use crate::engine::context::{Ctx, Reply, new_message};
use crate::engine::fileops::{alloc, attributes, times};
use crate::engine::fsa::access as fa;
use crate::engine::names;
use crate::engine::open::{FileOpen, Open};
use crate::engine::status::{Error, Result};
use crate::storage::{Meta, NodeKind};
use crate::wire::NtStatus;
use crate::wire::fscc::consts::{access, info_type};
use crate::wire::fscc::ea::{FileFullEaInformation, FullEa};
use crate::wire::fscc::file_info::*;
use crate::wire::fscc::fs_info::{self, *};
use crate::wire::fscc::{FsInfoClass, InfoClass};
use crate::wire::query_info::{QueryInfoRequest, QueryInfoResponse};

/// Bytes per allocation unit reported to clients (4 KiB clusters).
const CLUSTER: u64 = 4096;

/// QUERY_INFO.
pub fn query_info(ctx: &mut Ctx<'_>) -> Result<Reply> {
    let req = QueryInfoRequest::decode(ctx.msg)?;
    let id = ctx.resolve_file_id(req.file_id)?;
    // The quota is read from the accounts database: only for the
    // file-system classes that report it (it was 4 % of a stat's CPU).
    let org = ctx.session()?.principal.as_ref().map(|p| p.org_id);
    let smb311 = ctx.conn.neg.dialect == Some(crate::wire::negotiate::Dialect::SMB311);
    let nfs_ace = ctx.conn.aapl.nfs_ace;
    let open = ctx.conn.opens.get(&id).ok_or(Error::Status(NtStatus::FILE_CLOSED))?;
    let Some(f) = open.file() else {
        return Err(NtStatus::NOT_SUPPORTED.into());
    };
    let now = crate::types::FileTime::from_system(ctx.now);
    crate::engine::times::settle_due(&ctx.server.files, f, now)?;
    let (data, fixed) = match req.info_type {
        info_type::FILE => {
            let class = InfoClass(req.file_info_class);
            if class == InfoClass::NORMALIZED_NAME && !smb311 {
                // MS-SMB2 3.3.5.20.1: only for the 3.1.1 dialect.
                return Err(NtStatus::NOT_SUPPORTED.into());
            }
            if class != InfoClass::EA {
                // FileEaInformation needs no access (smbtorture `smb2.getinfo.getinfo_access`).
                fa::check_query_info(open.granted_access, fa::InfoType::File, u32::from(class.0))?;
            }
            let pending = ctx.server.files.with(|t| t.get(&f.key).is_some_and(|s| s.shares.delete_pending()));
            file_class(open, f, class, pending)?
        }
        info_type::FILESYSTEM => {
            let class = FsInfoClass(req.file_info_class);
            let data = fs_class(f, class, ctx.server.quota_of(org), ctx.server)?;
            let fixed = fs_fixed_len(class).unwrap_or(data.len());
            (data, fixed)
        }
        info_type::SECURITY => {
            fa::check_query_info(open.granted_access, fa::InfoType::Security, req.additional_information)?;
            let data = security(f, req.additional_information, nfs_ace)?;
            let fixed = data.len();
            (data, fixed)
        }
        info_type::QUOTA => return Err(NtStatus::NOT_SUPPORTED.into()),
        _ => return Err(NtStatus::INVALID_PARAMETER.into()),
    };
    let max = req.output_buffer_length as usize;
    let (status, data) = if data.len() > max {
        if req.info_type == info_type::SECURITY {
            // 3.3.5.20.3: tell the client the size it needs.
            let mut out = new_message();
            crate::wire::error::ErrorResponse::encode_buffer_too_small(data.len() as u32, &mut out);
            return Ok(Reply::Body(NtStatus::BUFFER_TOO_SMALL, out));
        }
        if max < fixed.min(data.len()) {
            // Not even the fixed part fits (smbtorture `smb2.getinfo.*_buffercheck`).
            return Err(NtStatus::INFO_LENGTH_MISMATCH.into());
        }
        (NtStatus::BUFFER_OVERFLOW, &data[..max])
    } else {
        (NtStatus::SUCCESS, &data[..])
    };
    let mut out = new_message();
    QueryInfoResponse { data }.encode(&mut out);
    Ok(Reply::Body(status, out))
}

/// Sizes of the open's data (the stream's, for a stream open).
/// An `AFP_AfpInfo` open always holds one record as far as clients can
/// tell (reads return the empty record until one is written; Samba
/// `fruit_fstat_meta_stream`, smbtorture `vfs.fruit.empty_stream`).
fn sizes(f: &FileOpen, m: &Meta) -> (u64, u64) {
    match &f.content {
        Some(_) if f.stream.as_deref().is_some_and(crate::engine::aapl::is_afp_info) => {
            let len = crate::engine::aapl::AFP_INFO_LEN as u64;
            (len, len)
        }
        Some(c) => (c.alloc_size().max(f.alloc_hint), c.len()),
        None => (alloc(m), if m.kind == NodeKind::Directory { 0 } else { m.size }),
    }
}

fn basic(m: &Meta) -> FileBasicInformation {
    FileBasicInformation { times: times(m), file_attributes: attributes(m) }
}

fn standard(f: &FileOpen, m: &Meta, delete_pending: bool) -> FileStandardInformation {
    let (allocation_size, end_of_file) = sizes(f, m);
    // A delete-pending file has no links left (as Samba reports it; smbtorture `smb2.setinfo`).
    let number_of_links = if delete_pending { 0 } else { 1 };
    FileStandardInformation { allocation_size, end_of_file, number_of_links, delete_pending, directory: f.is_dir }
}

/// The open's current path below the share root, `\`-separated, without a
/// leading separator (renames by other handles included), with `:stream`.
fn current_path(f: &FileOpen) -> String {
    let mut p =
        f.org.path_of(f.node).map(|p| p.trim_start_matches('\\').to_string()).unwrap_or_else(|_| f.path.clone());
    if let Some(s) = &f.stream {
        // The stream's name as it was created, not as this open spelt it.
        let want = crate::types::fold_name(s);
        let stored = f.org.list_streams(f.node).ok().and_then(|l| {
            l.into_iter().map(|i| names::stream_from_store(&i.name)).find(|n| crate::types::fold_name(n) == want)
        });
        p.push(':');
        p.push_str(stored.as_deref().unwrap_or(s.as_str()));
    }
    p
}

/// The fixed part of a variable-length FILE class: a buffer at least this
/// long gets STATUS_BUFFER_OVERFLOW and a truncated answer, a shorter one
/// STATUS_INFO_LENGTH_MISMATCH (MS-SMB2 3.3.5.20.1).
fn file_fixed_len(class: InfoClass) -> Option<usize> {
    Some(match class {
        InfoClass::ALL => 104,
        InfoClass::ALTERNATE_NAME | InfoClass::NORMALIZED_NAME | InfoClass::NAME => 8,
        InfoClass::STREAM => 32,
        InfoClass::FULL_EA => 8,
        _ => return None,
    })
}

/// The same for FILESYSTEM classes (MS-SMB2 3.3.5.20.2).
fn fs_fixed_len(class: FsInfoClass) -> Option<usize> {
    Some(match class {
        FsInfoClass::VOLUME => 24,
        FsInfoClass::ATTRIBUTE => 16,
        _ => return None,
    })
}

/// A FILE class: the bytes and the length of their fixed part.
fn file_class(open: &Open, f: &FileOpen, class: InfoClass, pending: bool) -> Result<(Vec<u8>, usize)> {
    let m = f.org.stat(f.node)?;
    let mut out = Vec::new();
    match class {
        InfoClass::BASIC => basic(&m).encode(&mut out),
        InfoClass::STANDARD => standard(f, &m, pending).encode(&mut out),
        InfoClass::INTERNAL => FileInternalInformation { index_number: m.id.0 }.encode(&mut out),
        InfoClass::EA => FileEaInformation { ea_size: ea_size(f)? }.encode(&mut out),
        InfoClass::ACCESS => FileAccessInformation { access_flags: open.granted_access }.encode(&mut out),
        InfoClass::POSITION => FilePositionInformation { current_byte_offset: f.position }.encode(&mut out),
        InfoClass::MODE => FileModeInformation { mode: f.mode }.encode(&mut out),
        InfoClass::ALIGNMENT => FileAlignmentInformation { alignment_requirement: 0 }.encode(&mut out),
        InfoClass::ALL => {
            FileAllInformation {
                basic: basic(&m),
                standard: standard(f, &m, pending),
                internal: FileInternalInformation { index_number: m.id.0 },
                ea: FileEaInformation { ea_size: ea_size(f)? },
                access: FileAccessInformation { access_flags: open.granted_access },
                position: FilePositionInformation { current_byte_offset: f.position },
                mode: FileModeInformation { mode: f.mode },
                alignment: FileAlignmentInformation { alignment_requirement: 0 },
                name: FileNameInformation { file_name: format!("\\{}", current_path(f)) },
            }
            .encode(&mut out);
        }
        InfoClass::ALTERNATE_NAME => {
            // The 8.3 name; a name that is already 8.3 is its own alternate (as Samba).
            let leaf = m.name.clone();
            let file_name = crate::engine::names::short_name(&leaf).unwrap_or(leaf);
            FileNameInformation { file_name }.encode(&mut out);
        }
        InfoClass::NORMALIZED_NAME => {
            FileNameInformation { file_name: current_path(f) }.encode(&mut out);
        }
        InfoClass::STREAM => {
            streams(f, &m)?.encode(&mut out);
        }
        InfoClass::NETWORK_OPEN => {
            let (allocation_size, end_of_file) = sizes(f, &m);
            FileNetworkOpenInformation {
                times: times(&m),
                allocation_size,
                end_of_file,
                file_attributes: attributes(&m),
            }
            .encode(&mut out);
        }
        InfoClass::ATTRIBUTE_TAG => {
            FileAttributeTagInformation { file_attributes: attributes(&m), reparse_tag: 0 }.encode(&mut out);
        }
        InfoClass::COMPRESSION => {
            let (_, end_of_file) = sizes(f, &m);
            FileCompressionInformation { compressed_file_size: end_of_file, ..Default::default() }.encode(&mut out);
        }
        InfoClass::ID => {
            let mut file_id = [0u8; 16];
            file_id[..8].copy_from_slice(&m.id.0.to_le_bytes());
            FileIdInformation { volume_serial_number: u64::from(volume_serial(f)), file_id }.encode(&mut out);
        }
        InfoClass::FULL_EA => {
            if open.granted_access & access::FILE_READ_EA == 0 {
                return Err(NtStatus::ACCESS_DENIED.into());
            }
            let eas = f.org.get_eas(f.node)?;
            if eas.is_empty() {
                return Err(NtStatus::NO_EAS_ON_FILE.into());
            }
            let entries = eas.into_iter().map(|(n, v)| FullEa { flags: 0, name: n.into_bytes(), value: v }).collect();
            FileFullEaInformation { entries }.encode(&mut out);
        }
        _ => return Err(NtStatus::INVALID_INFO_CLASS.into()),
    }
    let fixed = file_fixed_len(class).unwrap_or(out.len());
    Ok((out, fixed))
}

/// Size of the EA list as FileEaInformation reports it.
fn ea_size(f: &FileOpen) -> Result<u32> {
    let eas = f.org.get_eas(f.node)?;
    if eas.is_empty() {
        return Ok(0);
    }
    let entries: Vec<FullEa> =
        eas.into_iter().map(|(n, v)| FullEa { flags: 0, name: n.into_bytes(), value: v }).collect();
    Ok(FileFullEaInformation { entries }.encoded_len() as u32)
}

/// FileStreamInformation: `::$DATA` for a file, then each named stream.
fn streams(f: &FileOpen, m: &Meta) -> Result<FileStreamInformation> {
    let mut entries = Vec::new();
    for mut s in f.org.list_streams(f.node)? {
        s.name = names::stream_from_store(&s.name);
        if s.name.is_empty() {
            if m.kind == NodeKind::Directory {
                continue;
            }
            entries.push(StreamEntry { name: "::$DATA".into(), size: s.size, allocation_size: s.alloc_size });
        } else if !crate::engine::aapl::hidden_stream(&s.name, s.size, f.mac) {
            entries.push(StreamEntry {
                name: format!(":{}:$DATA", s.name),
                size: s.size,
                allocation_size: s.alloc_size,
            });
        }
    }
    if m.kind == NodeKind::File && !entries.iter().any(|e| e.name == "::$DATA") {
        entries.insert(0, StreamEntry { name: "::$DATA".into(), size: m.size, allocation_size: m.alloc_size });
    }
    Ok(FileStreamInformation { entries })
}

/// A stable per-share volume serial number.
fn volume_serial(f: &FileOpen) -> u32 {
    (f.root.0 as u32) ^ ((f.org_id.0 as u32).rotate_left(16)) ^ 0x5356_4C54
}

/// A FILESYSTEM class (MS-FSCC 2.5).
fn fs_class(f: &FileOpen, class: FsInfoClass, quota: Option<u64>, server: &crate::engine::Server) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    let (total, free) = capacity(f, quota, server)?;
    match class {
        FsInfoClass::VOLUME => FileFsVolumeInformation {
            volume_creation_time: server.start_time.0,
            volume_serial_number: volume_serial(f),
            supports_objects: false,
            // The share name, as Samba labels its volumes (and a label keeps
            // the answer at least as long as smbtorture's fixed part).
            volume_label: f.share.chars().take(32).collect(),
        }
        .encode(&mut out),
        FsInfoClass::SIZE => FileFsSizeInformation {
            total_allocation_units: total / CLUSTER,
            available_allocation_units: free / CLUSTER,
            sectors_per_allocation_unit: (CLUSTER / 512) as u32,
            bytes_per_sector: 512,
        }
        .encode(&mut out),
        FsInfoClass::FULL_SIZE => FileFsFullSizeInformation {
            total_allocation_units: total / CLUSTER,
            caller_available_allocation_units: free / CLUSTER,
            actual_available_allocation_units: free / CLUSTER,
            sectors_per_allocation_unit: (CLUSTER / 512) as u32,
            bytes_per_sector: 512,
        }
        .encode(&mut out),
        FsInfoClass::ATTRIBUTE => FileFsAttributeInformation {
            file_system_attributes: fs_info::fs_attributes::CASE_PRESERVED_NAMES
                | fs_info::fs_attributes::UNICODE_ON_DISK
                | fs_info::fs_attributes::PERSISTENT_ACLS
                | fs_info::fs_attributes::SUPPORTS_SPARSE_FILES
                | fs_info::fs_attributes::NAMED_STREAMS
                | fs_info::fs_attributes::SUPPORTS_EXTENDED_ATTRIBUTES
                | fs_info::fs_attributes::SUPPORTS_OBJECT_IDS,
            // Not FILE_SUPPORTS_ENCRYPTION: that announces EFS, which we do
            // not offer (the store encrypts everything anyway), nor
            // compression, reparse points, hard links or open-by-id.
            maximum_component_name_length: 255,
            file_system_name: "NTFS".into(),
        }
        .encode(&mut out),
        FsInfoClass::DEVICE => FileFsDeviceInformation {
            device_type: fs_info::device::FILE_DEVICE_DISK,
            characteristics: fs_info::device::FILE_DEVICE_IS_MOUNTED,
        }
        .encode(&mut out),
        FsInfoClass::SECTOR_SIZE => FileFsSectorSizeInformation {
            logical_bytes_per_sector: 512,
            physical_bytes_per_sector_for_atomicity: 4096,
            physical_bytes_per_sector_for_performance: 4096,
            fs_effective_physical_bytes_per_sector_for_atomicity: 4096,
            flags: 0x3,
            byte_offset_for_sector_alignment: 0,
            byte_offset_for_partition_alignment: 0,
        }
        .encode(&mut out),
        FsInfoClass::CONTROL => {
            // No per-user quotas (the organization's quota shows in the
            // sizes): default threshold and limit "none" (MS-FSCC 2.5.2).
            FileFsControlInformation { values: [0, 0, 0, u64::MAX, u64::MAX], file_system_control_flags: 0 }
                .encode(&mut out);
        }
        FsInfoClass::OBJECT_ID => {
            let mut object_id = [0u8; 16];
            object_id[..8].copy_from_slice(&f.root.0.to_le_bytes());
            object_id[8..].copy_from_slice(&f.org_id.0.to_le_bytes());
            FileFsObjectIdInformation { object_id, extended_info: [0; 48] }.encode(&mut out);
        }
        _ => return Err(NtStatus::INVALID_INFO_CLASS.into()),
    }
    Ok(out)
}

/// (total, free) bytes: the organization's quota when it has one, else the
/// file system holding the data directory.
fn capacity(f: &FileOpen, quota: Option<u64>, server: &crate::engine::Server) -> Result<(u64, u64)> {
    let used = f.org.usage()?;
    if let Some(q) = quota {
        return Ok((q, q.saturating_sub(used)));
    }
    Ok(server.disk_space().unwrap_or((1 << 40, (1u64 << 40).saturating_sub(used))))
}

/// The security descriptor with only the requested parts (MS-SMB2 3.3.5.20.3).
/// A Mac that negotiated NFS ACEs also reads the UNIX owner, group and
/// mode in the DACL ([`crate::engine::nfs_ace`]).
fn security(f: &FileOpen, additional: u32, nfs_ace: bool) -> Result<Vec<u8>> {
    let mut sd = crate::engine::acl::load(&f.org, f.org_id, f.node, f.is_dir, f.is_root())?;
    if nfs_ace && additional & fa::DACL_SECURITY_INFORMATION != 0 {
        let mode = crate::engine::aapl::unix_mode(&f.org.stat(f.node)?);
        crate::engine::nfs_ace::add(&mut sd, u32::from(mode));
    }
    Ok(sd.encode(additional))
}
