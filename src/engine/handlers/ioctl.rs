//! IOCTL (MS-SMB2 3.3.5.15): pipe transceive, secure negotiate validation,
//! DFS referrals (refused), and the file-system controls.

use crate::engine::connection::{Ctx, Reply, new_message};
use crate::engine::status::{Error, Result};
use crate::wire::NtStatus;
use crate::wire::ioctl::{
    CtlCode, IoctlRequest, IoctlResponse, ValidateNegotiateInfoRequest, ValidateNegotiateInfoResponse,
};

/// SMB2_0_IOCTL_IS_FSCTL: the only valid Flags value (3.3.5.15).
const IOCTL_IS_FSCTL: u32 = 1;

/// IOCTL.
pub fn ioctl(ctx: &mut Ctx<'_>) -> Result<Reply> {
    let req = IoctlRequest::decode(ctx.msg)?;
    if req.flags != IOCTL_IS_FSCTL {
        return Err(NtStatus::NOT_SUPPORTED.into());
    }
    let max_out = req.max_output_response as usize;
    let (status, output) = match req.ctl_code {
        CtlCode::VALIDATE_NEGOTIATE_INFO => (NtStatus::SUCCESS, validate_negotiate(ctx, req.input, max_out)?),
        // We are not a DFS server (3.3.5.15.2).
        CtlCode::DFS_GET_REFERRALS | CtlCode::DFS_GET_REFERRALS_EX => {
            return Err(NtStatus::NOT_FOUND.into());
        }
        CtlCode::PIPE_TRANSCEIVE => {
            let id = ctx.resolve_file_id(req.file_id)?;
            super::pipe::transceive(ctx, id, req.input, max_out)?
        }
        _ => return Err(NtStatus::NOT_SUPPORTED.into()),
    };
    if output.len() > max_out {
        return Err(NtStatus::BUFFER_TOO_SMALL.into());
    }
    let mut out = new_message();
    IoctlResponse { ctl_code: req.ctl_code, file_id: req.file_id, input: &[], output: &output, flags: 0 }
        .encode(&mut out);
    Ok(Reply::Body(status, out))
}

/// FSCTL_VALIDATE_NEGOTIATE_INFO (3.3.5.15.12): the client checks that
/// nobody tampered with the NEGOTIATE exchange. Any mismatch drops the
/// connection; the response is signed like every 3.x response.
fn validate_negotiate(ctx: &mut Ctx<'_>, input: &[u8], max_out: usize) -> Result<Vec<u8>> {
    let neg = &ctx.conn.neg;
    let dialect = neg.dialect.ok_or(Error::Disconnect("no dialect"))?;
    if dialect == crate::wire::negotiate::Dialect::SMB311 {
        // 3.1.1 protects the negotiation with the preauth hash instead.
        return Err(Error::Disconnect("VALIDATE_NEGOTIATE_INFO on 3.1.1"));
    }
    let req = ValidateNegotiateInfoRequest::decode(input).map_err(|_| Error::Disconnect("bad validate negotiate"))?;
    let dialects: Vec<u16> = neg.client_dialects.iter().map(|d| d.0).collect();
    if req.capabilities != neg.client_capabilities
        || req.guid != neg.client_guid
        || req.security_mode != neg.client_security_mode
        || req.dialects != dialects
    {
        return Err(Error::Disconnect("VALIDATE_NEGOTIATE_INFO mismatch"));
    }
    if max_out < 24 {
        return Err(NtStatus::INVALID_PARAMETER.into());
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
