//! SMB2 LOGOFF (MS-SMB2 2.2.7, 2.2.8): empty bodies.

use super::echo::empty_message;

/// SMB2 LOGOFF Request (MS-SMB2 2.2.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LogoffRequest;

/// SMB2 LOGOFF Response (MS-SMB2 2.2.8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LogoffResponse;

empty_message!(LogoffRequest, LogoffResponse);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let mut out = vec![0u8; 64];
        LogoffResponse.encode(&mut out);
        assert_eq!(LogoffRequest::decode(&out), Ok(LogoffRequest));
    }
}
