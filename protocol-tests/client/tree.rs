//! File operations on a connected share: CREATE, CLOSE, READ, WRITE,
//! QUERY_DIRECTORY, QUERY_INFO, and compounds for stat and delete
//! (MS-SMB2 3.2.4.3 – 3.2.4.14).

use std::sync::Arc;

use super::conn::{Connection, Pending, Request};
use super::session::SessionInfo;
use super::{Error, Response};
use smbvault::wire::NtStatus;
use smbvault::wire::close::CloseRequest;
use smbvault::wire::create::{CreateRequest, CreateResponse, FileId};
use smbvault::wire::fscc::InfoClass;
use smbvault::wire::fscc::consts::{
    access, create_disposition, create_options, file_attributes, info_type, share_access,
};
use smbvault::wire::fscc::consts::{impersonation, oplock};
use smbvault::wire::fscc::dir_info::{DirEntry, decode_entries};
use smbvault::wire::fscc::file_info::FileAllInformation;
use smbvault::wire::header::Command;
use smbvault::wire::query_directory::{QueryDirectoryRequest, QueryDirectoryResponse, flags as qd_flags};
use smbvault::wire::query_info::{QueryInfoRequest, QueryInfoResponse};
use smbvault::wire::read::{ReadRequest, ReadResponse};
use smbvault::wire::tree_connect::TreeConnectResponse;
use smbvault::wire::write::{WriteRequest, WriteResponse};

/// Output buffer for QUERY_DIRECTORY: 64 KiB, one credit (smbclient asks the same).
const DIR_BUFFER: u32 = 65536;
/// Output buffer for QUERY_INFO.
const INFO_BUFFER: u32 = 4096;

/// The parameters of a CREATE (MS-SMB2 2.2.13) that callers choose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CreateSpec {
    /// DesiredAccess.
    pub desired_access: u32,
    /// FileAttributes for a new file.
    pub file_attributes: u32,
    /// ShareAccess.
    pub share_access: u32,
    /// CreateDisposition.
    pub disposition: u32,
    /// CreateOptions.
    pub options: u32,
}

impl CreateSpec {
    /// Open an existing file for reading.
    pub fn read() -> Self {
        Self {
            desired_access: access::FILE_GENERIC_READ,
            file_attributes: 0,
            share_access: share_access::READ | share_access::WRITE,
            disposition: create_disposition::OPEN,
            options: create_options::NON_DIRECTORY_FILE,
        }
    }

    /// Create or truncate a file for reading and writing.
    pub fn overwrite() -> Self {
        Self {
            desired_access: access::FILE_GENERIC_READ | access::FILE_GENERIC_WRITE,
            file_attributes: file_attributes::ARCHIVE,
            disposition: create_disposition::OVERWRITE_IF,
            ..Self::read()
        }
    }

    /// Open an existing file for reading and writing.
    pub fn read_write() -> Self {
        Self { disposition: create_disposition::OPEN, ..Self::overwrite() }
    }

    /// Open attributes only (what `stat` needs).
    pub fn attributes() -> Self {
        Self {
            desired_access: access::FILE_READ_ATTRIBUTES,
            share_access: share_access::ALL,
            options: 0,
            ..Self::read()
        }
    }

    /// Open a directory for listing.
    pub fn directory() -> Self {
        Self {
            desired_access: access::FILE_LIST_DIRECTORY | access::FILE_READ_ATTRIBUTES | access::SYNCHRONIZE,
            share_access: share_access::ALL,
            options: create_options::DIRECTORY_FILE,
            ..Self::read()
        }
    }

    /// Create a directory, or open it if it exists.
    pub fn mkdir() -> Self {
        Self {
            disposition: create_disposition::OPEN_IF,
            file_attributes: file_attributes::DIRECTORY,
            ..Self::directory()
        }
    }

    /// Open a file or empty directory to delete it on close (as smbclient's `del`).
    pub fn delete() -> Self {
        Self {
            desired_access: access::DELETE | access::FILE_READ_ATTRIBUTES,
            share_access: share_access::ALL,
            options: create_options::DELETE_ON_CLOSE,
            ..Self::read()
        }
    }
}

/// An open file or directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Open {
    /// The handle.
    pub file_id: FileId,
    /// EndOfFile at open.
    pub end_of_file: u64,
    /// CreateAction (opened, created, overwritten).
    pub create_action: u32,
    /// FileAttributes.
    pub file_attributes: u32,
}

/// A connected share.
#[derive(Clone)]
pub struct Tree {
    conn: Arc<Connection>,
    id: u32,
    connect: TreeConnectResponse,
    info: Arc<SessionInfo>,
}

impl Tree {
    pub(crate) fn new(conn: Arc<Connection>, id: u32, connect: TreeConnectResponse, info: Arc<SessionInfo>) -> Self {
        Self { conn, id, connect, info }
    }

    /// TreeId.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// The TREE_CONNECT response (share type, flags, maximal access).
    pub fn connect_response(&self) -> &TreeConnectResponse {
        &self.connect
    }

    /// The session's negotiated parameters.
    pub fn session_info(&self) -> &SessionInfo {
        &self.info
    }

    /// The connection, for raw or pipelined requests.
    pub fn connection(&self) -> &Arc<Connection> {
        &self.conn
    }

    /// A CREATE request for `path` (relative to the share, `\` separated).
    pub fn create_request(&self, path: &str, spec: &CreateSpec) -> Request {
        let req = CreateRequest {
            requested_oplock_level: oplock::NONE,
            impersonation_level: impersonation::IMPERSONATION,
            desired_access: spec.desired_access,
            file_attributes: spec.file_attributes,
            share_access: spec.share_access,
            create_disposition: spec.disposition,
            create_options: spec.options,
            name: path.to_string(),
            ..CreateRequest::default()
        };
        Request::new(Command::CREATE, self.id, |o| req.encode(o))
    }

    /// CREATE.
    pub async fn create(&self, path: &str, spec: &CreateSpec) -> Result<Open, Error> {
        let resp = self.conn.call(self.create_request(path, spec)).await?.ok()?;
        open_from(&resp)
    }

    /// A CLOSE request.
    pub fn close_request(&self, file_id: FileId) -> Request {
        Request::new(Command::CLOSE, self.id, |o| CloseRequest { flags: 0, file_id }.encode(o))
    }

    /// CLOSE.
    pub async fn close(&self, file_id: FileId) -> Result<(), Error> {
        self.conn.call(self.close_request(file_id)).await?.ok()?;
        Ok(())
    }

    /// A READ request (its charge covers `length`).
    pub fn read_request(&self, file_id: FileId, offset: u64, length: u32) -> Request {
        let req = ReadRequest { padding: 0x50, length, offset, file_id, ..ReadRequest::default() };
        Request::new(Command::READ, self.id, |o| req.encode(o)).expect(length)
    }

    /// Sends a READ without waiting (pipelining).
    pub async fn send_read(&self, file_id: FileId, offset: u64, length: u32) -> Result<Pending, Error> {
        self.conn.send(self.read_request(file_id, offset, length)).await
    }

    /// READ; returns the response, whose data is [`read_data`].
    pub async fn read(&self, file_id: FileId, offset: u64, length: u32) -> Result<Response, Error> {
        self.send_read(file_id, offset, length).await?.wait().await?.ok()
    }

    /// A WRITE request.
    pub fn write_request(&self, file_id: FileId, offset: u64, data: &[u8]) -> Request {
        let req = WriteRequest { offset, file_id, data, ..WriteRequest::default() };
        Request::new(Command::WRITE, self.id, |o| req.encode(o)).payload(data.len() as u32)
    }

    /// Sends a WRITE without waiting (pipelining).
    pub async fn send_write(&self, file_id: FileId, offset: u64, data: &[u8]) -> Result<Pending, Error> {
        self.conn.send(self.write_request(file_id, offset, data)).await
    }

    /// WRITE; returns the count written.
    pub async fn write(&self, file_id: FileId, offset: u64, data: &[u8]) -> Result<u32, Error> {
        written(self.send_write(file_id, offset, data).await?.wait().await?)
    }

    /// One QUERY_DIRECTORY round; `None` once STATUS_NO_MORE_FILES.
    pub async fn query_directory(
        &self,
        file_id: FileId,
        class: InfoClass,
        pattern: &str,
        flags: u8,
    ) -> Result<Option<Vec<DirEntry>>, Error> {
        let req = QueryDirectoryRequest {
            file_information_class: class,
            flags,
            file_index: 0,
            file_id,
            pattern: pattern.to_string(),
            output_buffer_length: DIR_BUFFER,
        };
        let resp = self.conn.call(Request::new(Command::QUERY_DIRECTORY, self.id, |o| req.encode(o))).await?;
        if resp.status() == NtStatus::NO_MORE_FILES {
            return Ok(None);
        }
        let resp = resp.ok()?;
        Ok(Some(decode_entries(class, QueryDirectoryResponse::decode(resp.msg())?.data)?))
    }

    /// Lists a directory (`""` for the share root) with
    /// FileIdBothDirectoryInformation, as Windows does; `.` and `..` included.
    pub async fn list(&self, dir: &str) -> Result<Vec<DirEntry>, Error> {
        let d = self.create(dir, &CreateSpec::directory()).await?;
        let mut all = Vec::new();
        let mut flags = qd_flags::RESTART_SCANS;
        let result = loop {
            match self.query_directory(d.file_id, InfoClass::ID_BOTH_DIRECTORY, "*", flags).await {
                Ok(Some(batch)) => all.extend(batch),
                Ok(None) => break Ok(()),
                Err(e) => break Err(e),
            }
            flags = 0;
        };
        self.close(d.file_id).await?;
        result.map(|()| all)
    }

    /// A QUERY_INFO request for a file information class.
    pub fn query_info_request(&self, file_id: FileId, class: InfoClass) -> Request {
        let req = QueryInfoRequest {
            info_type: info_type::FILE,
            file_info_class: class.0,
            output_buffer_length: INFO_BUFFER,
            file_id,
            ..QueryInfoRequest::default()
        };
        Request::new(Command::QUERY_INFO, self.id, |o| req.encode(o)).expect(INFO_BUFFER)
    }

    /// QUERY_INFO (InfoType FILE); returns the raw MS-FSCC structure.
    pub async fn query_info(&self, file_id: FileId, class: InfoClass) -> Result<Vec<u8>, Error> {
        let resp = self.conn.call(self.query_info_request(file_id, class)).await?.ok()?;
        Ok(QueryInfoResponse::decode(resp.msg())?.data.to_vec())
    }

    /// FileAllInformation of `path` in one round trip: a related compound
    /// CREATE + QUERY_INFO + CLOSE (MS-SMB2 3.2.4.1.4), as Windows stats.
    pub async fn stat(&self, path: &str) -> Result<FileAllInformation, Error> {
        let reqs = vec![
            self.create_request(path, &CreateSpec::attributes()),
            self.query_info_request(FileId::ANY, InfoClass::ALL),
            self.close_request(FileId::ANY),
        ];
        let mut r = self.conn.compound(reqs, true).await?.into_iter();
        let (Some(c), Some(q), Some(_)) = (r.next(), r.next(), r.next()) else {
            return Err(Error::Protocol("short compound response"));
        };
        c.ok()?;
        let q = q.ok()?;
        Ok(FileAllInformation::decode(QueryInfoResponse::decode(q.msg())?.data)?)
    }

    /// Deletes a file or empty directory: CREATE with DELETE_ON_CLOSE and
    /// CLOSE, compounded.
    pub async fn delete(&self, path: &str) -> Result<(), Error> {
        let reqs = vec![self.create_request(path, &CreateSpec::delete()), self.close_request(FileId::ANY)];
        let mut r = self.conn.compound(reqs, true).await?.into_iter();
        let (Some(c), Some(cl)) = (r.next(), r.next()) else {
            return Err(Error::Protocol("short compound response"));
        };
        c.ok()?;
        cl.ok()?;
        Ok(())
    }

    /// Creates a directory (or opens an existing one) and closes it.
    pub async fn mkdir(&self, path: &str) -> Result<(), Error> {
        let d = self.create(path, &CreateSpec::mkdir()).await?;
        self.close(d.file_id).await
    }

    /// TREE_DISCONNECT.
    pub async fn disconnect(&self) -> Result<(), Error> {
        let req = Request::new(Command::TREE_DISCONNECT, self.id, |o| {
            smbvault::wire::tree_disconnect::TreeDisconnectRequest.encode(o)
        });
        self.conn.call(req).await?.ok()?;
        Ok(())
    }
}

fn open_from(resp: &Response) -> Result<Open, Error> {
    let c = CreateResponse::decode(resp.msg())?;
    Ok(Open {
        file_id: c.file_id,
        end_of_file: c.end_of_file,
        create_action: c.create_action,
        file_attributes: c.file_attributes,
    })
}

/// The data of a successful READ response.
pub fn read_data(resp: &Response) -> Result<&[u8], Error> {
    Ok(ReadResponse::decode(resp.msg())?.data)
}

/// The count of a WRITE response, or its error status.
pub fn written(resp: Response) -> Result<u32, Error> {
    let resp = resp.ok()?;
    Ok(WriteResponse::decode(resp.msg())?.count)
}
