//! IOCTL (MS-SMB2 3.3.5.15): pipe transceive, secure negotiate validation,
//! DFS referrals (refused), network interfaces (refused: no multichannel)
//! and the file-system controls of [`super::fsctl`] and [`super::copychunk`].

use crate::engine::context::{Ctx, Reply, new_message};
use crate::engine::status::{Error, Result};
use crate::wire::NtStatus;
use crate::wire::ioctl::{
    CtlCode, IoctlRequest, IoctlResponse, ValidateNegotiateInfoRequest, ValidateNegotiateInfoResponse,
};

/// SMB2_0_IOCTL_IS_FSCTL: the only valid Flags value (3.3.5.15).
const IOCTL_IS_FSCTL: u32 = 1;
/// Size of a VALIDATE_NEGOTIATE_INFO response (MS-SMB2 2.2.32.6).
const VALIDATE_NEGOTIATE_RESPONSE_LEN: usize = 24;

/// Largest input or output we accept (Connection.MaxTransactSize).
const MAX_TRANSACT: u32 = crate::engine::server::MAX_IO;

/// What an IOCTL produced: status, output, and whether a too-small
/// output buffer should be reported instead of truncating.
pub struct Output {
    /// SUCCESS or a warning (BUFFER_OVERFLOW).
    pub status: NtStatus,
    /// The output buffer.
    pub data: Vec<u8>,
}

impl Output {
    /// A successful output.
    pub fn ok(data: Vec<u8>) -> Self {
        Self { status: NtStatus::SUCCESS, data }
    }
}

/// IOCTL.
pub fn ioctl(ctx: &mut Ctx<'_>) -> Result<Reply> {
    let req = IoctlRequest::decode(ctx.msg)?;
    if req.flags != IOCTL_IS_FSCTL {
        return Err(NtStatus::NOT_SUPPORTED.into());
    }
    // 3.3.5.15: buffers beyond Connection.MaxTransactSize.
    if req.input.len() as u32 > MAX_TRANSACT || req.max_output_response > MAX_TRANSACT {
        return Err(NtStatus::INVALID_PARAMETER.into());
    }
    let max_out = req.max_output_response as usize;
    let out = match req.ctl_code {
        CtlCode::VALIDATE_NEGOTIATE_INFO => Output::ok(validate_negotiate(ctx, req.input, max_out)?),
        // We are not a DFS server (3.3.5.15.2).
        CtlCode::DFS_GET_REFERRALS | CtlCode::DFS_GET_REFERRALS_EX => {
            return Err(NtStatus::NOT_FOUND.into());
        }
        CtlCode::QUERY_NETWORK_INTERFACE_INFO => Output::ok(super::netif::query(ctx, req.file_id)?),
        CtlCode::PIPE_TRANSCEIVE => {
            let id = ctx.resolve_file_id(req.file_id)?;
            let (status, data) = super::pipe::transceive(ctx, id, req.input, max_out)?;
            Output { status, data }
        }
        CtlCode::SRV_COPYCHUNK | CtlCode::SRV_COPYCHUNK_WRITE => {
            return super::copychunk::copychunk(ctx, &req);
        }
        _ => super::fsctl::file_fsctl(ctx, &req)?,
    };
    if out.data.len() > max_out {
        return Err(NtStatus::BUFFER_TOO_SMALL.into());
    }
    respond(&req, out)
}

/// The IOCTL response: no input echoed, the output (MS-SMB2 2.2.32).
pub fn respond(req: &IoctlRequest<'_>, out: Output) -> Result<Reply> {
    let mut msg = new_message();
    IoctlResponse { ctl_code: req.ctl_code, file_id: req.file_id, input: &[], output: &out.data, flags: 0 }
        .encode(&mut msg);
    Ok(Reply::Body(out.status, msg))
}

/// FSCTL_VALIDATE_NEGOTIATE_INFO (3.3.5.15.12): the client checks that
/// nobody tampered with the NEGOTIATE exchange (3.0 and 3.0.2; 2.x clients
/// may ask too). Every mismatch drops the connection, as the spec says; the
/// answer is signed (or sealed) like every response of the session, which
/// the client insists on (3.2.5.14.12).
fn validate_negotiate(ctx: &mut Ctx<'_>, input: &[u8], max_out: usize) -> Result<Vec<u8>> {
    use crate::wire::negotiate::Dialect;
    let neg = &ctx.conn.neg;
    let dialect = neg.dialect.ok_or(Error::Disconnect("no dialect"))?;
    if dialect == Dialect::SMB311 {
        // 3.1.1 protects the negotiation with the preauth hash instead.
        return Err(Error::Disconnect("VALIDATE_NEGOTIATE_INFO on 3.1.1"));
    }
    if max_out < VALIDATE_NEGOTIATE_RESPONSE_LEN {
        return Err(Error::Disconnect("VALIDATE_NEGOTIATE_INFO: MaxOutputResponse too small"));
    }
    let req = ValidateNegotiateInfoRequest::decode(input).map_err(|_| Error::Disconnect("bad validate negotiate"))?;
    let dialects: Vec<u16> = neg.client_dialects.iter().map(|d| d.0).collect();
    // We implement 3.1.1, so the list must be exactly Connection.ClientDialects,
    // and the greatest dialect we would pick from it must be the one we did.
    let server = ctx.server;
    let best = crate::engine::handlers::negotiate::SUPPORTED
        .into_iter()
        .filter(|d| *d >= server.min_dialect && *d <= server.max_dialect)
        .find(|d| req.dialects.contains(&d.0));
    if req.dialects != dialects
        || best != Some(dialect)
        || req.guid != neg.client_guid
        || req.security_mode != neg.client_security_mode
        || req.capabilities != neg.client_capabilities
    {
        tracing::warn!(peer = %ctx.peer, "VALIDATE_NEGOTIATE_INFO does not match the negotiation: disconnecting");
        return Err(Error::Disconnect("VALIDATE_NEGOTIATE_INFO mismatch"));
    }
    let resp = ValidateNegotiateInfoResponse {
        capabilities: neg.server_capabilities,
        guid: ctx.server.guid,
        security_mode: neg.server_security_mode,
        dialect: dialect.0,
    };
    let mut out = Vec::new();
    resp.encode(&mut out);
    Ok(out)
}
