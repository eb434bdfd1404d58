//! SMB2 TREE_DISCONNECT (MS-SMB2 2.2.11, 2.2.12): empty bodies.

use super::echo::empty_message;

/// SMB2 TREE_DISCONNECT Request (MS-SMB2 2.2.11).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TreeDisconnectRequest;

/// SMB2 TREE_DISCONNECT Response (MS-SMB2 2.2.12).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TreeDisconnectResponse;

empty_message!(TreeDisconnectRequest, TreeDisconnectResponse);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::header::Header;

    /// Frames 16/17 of captures/smbclient-SMB3_11-signed.pcap.
    #[test]
    fn captured_tree_disconnect() {
        let req = include_bytes!("../../protocol-tests/fixtures/smbclient-SMB3_11-signed/16-tree_disconnect-req.bin");
        assert_eq!(TreeDisconnectRequest::decode(req), Ok(TreeDisconnectRequest));
        let msg = include_bytes!("../../protocol-tests/fixtures/smbclient-SMB3_11-signed/17-tree_disconnect-resp.bin");
        let mut out = Vec::new();
        Header::decode(msg).unwrap().encode(&mut out);
        TreeDisconnectResponse::decode(msg).unwrap().encode(&mut out);
        assert_eq!(out, msg);
    }
}
