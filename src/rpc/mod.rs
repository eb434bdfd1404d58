//! DCE/RPC over SMB2 named pipes (MS-RPCE over MS-SMB2 "ncacn_np"), so that
//! `smbclient -L //server` and Explorer's `\\server` view can list shares.
//!
//! Sans-IO: the engine opens a [`Pipe`] when a client creates a file on
//! IPC$ and feeds it the bytes of SMB2 WRITE / FSCTL_PIPE_TRANSCEIVE; the
//! pipe answers with the bytes for READ / the IOCTL output. Nothing here
//! does I/O, reads clocks or knows about sessions: the engine passes a
//! [`ShareDirectory`] that already holds only what the user may see.
//!
//! - [`pdu`]: connection-oriented PDU codec (C706 12.6, MS-RPCE 2.2.2).
//! - [`bind`]: presentation context negotiation (NDR 2.0 only, NDR64
//!   rejected, bind time feature negotiation answered).
//! - [`endpoint`]: the pipe state machine: framing, request reassembly,
//!   response fragmentation, faults.
//! - [`ndr`]: NDR 2.0 primitives.
//! - [`srvsvc`] / [`share_info`]: MS-SRVS NetrShareEnum, NetrShareGetInfo,
//!   NetrServerGetInfo. [`wkssvc`]: MS-WKST NetrWkstaGetInfo.
//!
//! Engine contract (MS-SMB2 3.3.5.9, 3.3.5.12, 3.3.5.13, 3.3.5.15.1):
//! - CREATE on IPC$: [`open_pipe`]; `None` → STATUS_OBJECT_NAME_NOT_FOUND.
//! - WRITE: [`Pipe::write`]; the full length counts as written.
//! - READ: [`Pipe::read`] with the request's Length; STATUS_BUFFER_OVERFLOW
//!   when [`Pipe::partial_message_pending`] is true afterwards (message-mode
//!   pipe), else STATUS_SUCCESS. Empty result on a healthy pipe: nothing is
//!   queued (Windows would pend the READ; no RPC client issues one).
//! - IOCTL FSCTL_PIPE_TRANSCEIVE: [`Pipe::transact`] with MaxOutputResponse;
//!   STATUS_BUFFER_OVERFLOW when [`Pipe::has_pending`] is true afterwards
//!   (the client READs the rest, as against Samba).
//! - Errors: [`RpcError::Busy`] → STATUS_PIPE_BUSY, [`RpcError::Overflow`] →
//!   STATUS_INSUFFICIENT_RESOURCES, [`RpcError::Protocol`] and
//!   [`RpcError::Disconnected`] → STATUS_PIPE_DISCONNECTED.

pub mod bind;
pub mod endpoint;
pub mod ndr;
pub mod pdu;
pub mod share_info;
pub mod srvsvc;
pub mod wkssvc;

#[cfg(test)]
mod golden;
#[cfg(test)]
mod test_support;
#[cfg(test)]
mod tests;

/// `STYPE_DISKTREE`: a disk share (MS-SRVS 2.2.2.4).
pub const STYPE_DISKTREE: u32 = 0;
/// `STYPE_IPC`: the IPC$ share (MS-SRVS 2.2.2.4).
pub const STYPE_IPC: u32 = 3;
/// `STYPE_SPECIAL`: administrative/hidden share bit, set on IPC$.
pub const STYPE_SPECIAL: u32 = 0x8000_0000;

/// One share as srvsvc reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShareInfo {
    /// Share name as the client types it (`data`, `経理`, `IPC$`).
    pub name: String,
    /// [`STYPE_DISKTREE`], or `STYPE_IPC | STYPE_SPECIAL` for IPC$.
    pub share_type: u32,
    /// Free-text remark shown by Explorer and `smbclient -L`.
    pub comment: String,
    /// Local path for levels 2 and 502: a placeholder such as `C:\`, never
    /// a real server path.
    pub path: String,
}

/// What srvsvc and wkssvc may reveal to the caller. The engine builds one per
/// call from the session: the shares of the user's organization plus IPC$.
pub trait ShareDirectory {
    /// Shares visible to the logged-on user, in display order, IPC$ included.
    fn shares(&self) -> Vec<ShareInfo>;
    /// NetBIOS-style server name (SERVER_INFO_10x, WKSTA_INFO_100).
    fn server_name(&self) -> String;
    /// Workgroup or domain name (WKSTA_INFO_100 wki100_langroup).
    fn domain_name(&self) -> String {
        "WORKGROUP".to_string()
    }
}

/// Named pipes a client may ask for on IPC$.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PipeName {
    /// `srvsvc`: MS-SRVS, share enumeration.
    Srvsvc,
    /// `wkssvc`: MS-WKST, workstation information.
    Wkssvc,
    /// `lsarpc`: MS-LSAD/LSAT; recognized but not served yet.
    Lsarpc,
    /// `samr`: MS-SAMR; recognized but not served yet.
    Samr,
}

impl PipeName {
    /// Parses a CREATE name on IPC$, case-insensitively. Accepts the bare
    /// name (what SMB2 clients send) and a `\PIPE\` or `\` prefix.
    pub fn parse(name: &str) -> Option<PipeName> {
        let n = name.trim_start_matches('\\');
        let n = match n.get(..5) {
            Some(p) if p.eq_ignore_ascii_case("pipe\\") => &n[5..],
            _ => n,
        };
        [
            ("srvsvc", PipeName::Srvsvc),
            ("wkssvc", PipeName::Wkssvc),
            ("lsarpc", PipeName::Lsarpc),
            ("samr", PipeName::Samr),
        ]
        .into_iter()
        .find(|(s, _)| n.eq_ignore_ascii_case(s))
        .map(|(_, p)| p)
    }

    /// Whether [`open_pipe`] serves this pipe.
    pub fn is_served(self) -> bool {
        matches!(self, PipeName::Srvsvc | PipeName::Wkssvc)
    }
}

/// Opens a served pipe by its CREATE name (case-insensitive); `None` for
/// unknown or unserved pipes, which the engine answers with
/// STATUS_OBJECT_NAME_NOT_FOUND.
pub fn open_pipe(name: &str) -> Option<Box<dyn Pipe>> {
    let pipe = endpoint::NamedPipe::open(PipeName::parse(name)?)?;
    Some(Box::new(pipe))
}

/// An open named pipe on IPC$: a DCE/RPC server endpoint for one client.
pub trait Pipe: Send {
    /// Consumes bytes written by the client (SMB2 WRITE). Any number of whole
    /// or partial PDUs; answers are queued for [`Pipe::read`].
    fn write(&mut self, data: &[u8], dir: &dyn ShareDirectory) -> Result<(), RpcError>;
    /// Takes up to `max` bytes of the next queued PDU (SMB2 READ). Never
    /// returns bytes of two PDUs at once (message-mode pipe); responses larger
    /// than the negotiated max_xmit_frag are already split into fragments.
    fn read(&mut self, max: usize) -> Result<Vec<u8>, RpcError>;
    /// FSCTL_PIPE_TRANSCEIVE (MS-FSCC 2.3.49): write `data`, then read up to
    /// `max_out` bytes. Fails with [`RpcError::Busy`] while unread data is
    /// queued, as Windows does.
    fn transact(&mut self, data: &[u8], max_out: usize, dir: &dyn ShareDirectory) -> Result<Vec<u8>, RpcError>;
    /// Whether response bytes are waiting to be read.
    fn has_pending(&self) -> bool;
    /// Whether the last read stopped inside a PDU (message not complete).
    fn partial_message_pending(&self) -> bool;
}

/// Why a pipe operation failed. `Copy` and free of strings; details go to
/// tracing in the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RpcError {
    /// The written bytes are not DCE/RPC PDUs (wrong version, big-endian,
    /// frag_length < 16). The pipe is now disconnected.
    Protocol,
    /// Too much unread response data is queued; the client must read first.
    Overflow,
    /// TRANSCEIVE while earlier response data is still unread.
    Busy,
    /// The pipe was shut after a protocol error (a BIND_NAK or FAULT with
    /// disconnect semantics was queued); only queued bytes can still be read.
    Disconnected,
}

impl std::fmt::Display for RpcError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self, f)
    }
}

impl std::error::Error for RpcError {}

/// A call that ends in a FAULT PDU instead of a RESPONSE (C706 12.6.4.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Fault {
    pub(crate) status: u32,
    /// PFC_DID_NOT_EXECUTE: the server never ran the call.
    pub(crate) did_not_execute: bool,
}

impl Fault {
    /// nca_s_op_rng_error: the opnum is not in the interface (C706 Appendix E).
    pub(crate) const OP_RNG_ERROR: Fault = Fault { status: 0x1c01_0002, did_not_execute: true };
    /// RPC_X_BAD_STUB_DATA: the stub could not be unmarshalled (MS-RPCE 3.1.1.5.5.1).
    pub(crate) const BAD_STUB_DATA: Fault = Fault { status: 0x0000_06f7, did_not_execute: false };
}

impl From<ndr::NdrError> for Fault {
    fn from(_: ndr::NdrError) -> Self {
        Fault::BAD_STUB_DATA
    }
}
