//! SMB2 CANCEL (MS-SMB2 2.2.30): an empty body; the request to cancel is
//! named by the header's MessageId (sync) or AsyncId (async). There is no
//! response.

use super::echo::empty_message;

/// SMB2 CANCEL Request (MS-SMB2 2.2.30).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CancelRequest;

empty_message!(CancelRequest);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let mut out = vec![0u8; 64];
        CancelRequest.encode(&mut out);
        assert_eq!(out.len(), 68);
        assert_eq!(CancelRequest::decode(&out), Ok(CancelRequest));
    }
}
