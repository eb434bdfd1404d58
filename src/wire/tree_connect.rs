//! SMB2 TREE_CONNECT (MS-SMB2 2.2.9, 2.2.10).

use nom::number::complete::{le_u8, le_u16, le_u32};

use super::{DResult, PutLe, body, buffer, check_structure_size, put_utf16le, utf16_len, utf16le};

/// Request Flags (3.1.1; Reserved before).
pub mod flags {
    #![expect(missing_docs, reason = "the constants carry the spec's names; the module doc cites the table")]
    pub const CLUSTER_RECONNECT: u16 = 0x0001;
    pub const REDIRECT_TO_OWNER: u16 = 0x0002;
    /// A TREE_CONNECT Request Extension (2.2.9.1) starts the Buffer. The path
    /// is still located by PathOffset/PathLength (3.3.5.7); we ignore the
    /// tree connect contexts (remoted identity is for cluster use).
    pub const EXTENSION_PRESENT: u16 = 0x0004;
}

/// ShareType (2.2.10).
pub mod share_type {
    #![expect(missing_docs, reason = "the constants carry the spec's names; the module doc cites the table")]
    pub const DISK: u8 = 0x01;
    pub const PIPE: u8 = 0x02;
    pub const PRINT: u8 = 0x03;
}

/// ShareFlags (2.2.10).
pub mod share_flags {
    #![expect(missing_docs, reason = "the constants carry the spec's names; the module doc cites the table")]
    pub const MANUAL_CACHING: u32 = 0x0000_0000;
    pub const AUTO_CACHING: u32 = 0x0000_0010;
    pub const VDO_CACHING: u32 = 0x0000_0020;
    pub const NO_CACHING: u32 = 0x0000_0030;
    pub const DFS: u32 = 0x0000_0001;
    pub const DFS_ROOT: u32 = 0x0000_0002;
    pub const RESTRICT_EXCLUSIVE_OPENS: u32 = 0x0000_0100;
    pub const FORCE_SHARED_DELETE: u32 = 0x0000_0200;
    pub const ALLOW_NAMESPACE_CACHING: u32 = 0x0000_0400;
    pub const ACCESS_BASED_DIRECTORY_ENUM: u32 = 0x0000_0800;
    pub const FORCE_LEVELII_OPLOCK: u32 = 0x0000_1000;
    pub const ENABLE_HASH_V1: u32 = 0x0000_2000;
    pub const ENABLE_HASH_V2: u32 = 0x0000_4000;
    /// The client must encrypt everything on this tree (3.x).
    pub const ENCRYPT_DATA: u32 = 0x0000_8000;
    pub const IDENTITY_REMOTING: u32 = 0x0004_0000;
    pub const COMPRESS_DATA: u32 = 0x0010_0000;
    pub const ISOLATED_TRANSPORT: u32 = 0x0020_0000;
}

/// Capabilities of the share (2.2.10).
pub mod share_caps {
    #![expect(missing_docs, reason = "the constants carry the spec's names; the module doc cites the table")]
    pub const DFS: u32 = 0x0000_0008;
    pub const CONTINUOUS_AVAILABILITY: u32 = 0x0000_0010;
    pub const SCALEOUT: u32 = 0x0000_0020;
    pub const CLUSTER: u32 = 0x0000_0040;
    pub const ASYMMETRIC: u32 = 0x0000_0080;
    pub const REDIRECT_TO_OWNER: u32 = 0x0000_0100;
}

/// SMB2 TREE_CONNECT Request (MS-SMB2 2.2.9).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TreeConnectRequest {
    /// Flags (see [`flags`]).
    pub flags: u16,
    /// The share path, "\\\\server\\share".
    pub path: String,
}

impl TreeConnectRequest {
    /// StructureSize.
    pub const STRUCTURE_SIZE: u16 = 9;

    /// Decodes the request in `msg`.
    pub fn decode(msg: &[u8]) -> DResult<Self> {
        check_structure_size(msg, Self::STRUCTURE_SIZE)?;
        let (i, _) = le_u16(body(msg)?)?;
        let (i, flags) = le_u16(i)?;
        let (i, path_offset) = le_u16(i)?;
        let (_, path_length) = le_u16(i)?;
        let path = utf16le(buffer(msg, path_offset.into(), path_length.into())?)?;
        Ok(Self { flags, path })
    }

    /// Appends the request body (never with an extension).
    pub fn encode(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.put_u16(Self::STRUCTURE_SIZE);
        out.put_u16(self.flags & !flags::EXTENSION_PRESENT);
        out.put_u16((start + 8) as u16);
        out.put_u16(utf16_len(&self.path) as u16);
        put_utf16le(out, &self.path);
    }

    /// Splits "\\\\server\\share" into ("server", "share") (3.3.5.7, MS-DTYP
    /// 2.2.57 UNC); `None` if the path has another form
    /// (STATUS_INVALID_PARAMETER).
    pub fn server_and_share(&self) -> Option<(&str, &str)> {
        let rest = self.path.strip_prefix("\\\\")?;
        let (server, share) = rest.split_once('\\')?;
        if server.is_empty() || share.is_empty() || share.contains('\\') {
            return None;
        }
        Some((server, share))
    }
}

/// SMB2 TREE_CONNECT Response (MS-SMB2 2.2.10).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TreeConnectResponse {
    /// ShareType (see [`share_type`]).
    pub share_type: u8,
    /// ShareFlags (see [`share_flags`]; ENCRYPT_DATA for encrypted shares).
    pub share_flags: u32,
    /// Capabilities (see [`share_caps`]).
    pub capabilities: u32,
    /// MaximalAccess of the user on the share root.
    pub maximal_access: u32,
}

impl TreeConnectResponse {
    /// StructureSize.
    pub const STRUCTURE_SIZE: u16 = 16;

    /// Appends the 16-byte body.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_u16(Self::STRUCTURE_SIZE);
        out.put_u8(self.share_type);
        out.put_u8(0);
        out.put_u32(self.share_flags);
        out.put_u32(self.capabilities);
        out.put_u32(self.maximal_access);
    }

    /// Decodes the response in `msg` (client side).
    pub fn decode(msg: &[u8]) -> DResult<Self> {
        check_structure_size(msg, Self::STRUCTURE_SIZE)?;
        let (i, _) = le_u16(body(msg)?)?;
        let (i, share_type) = le_u8(i)?;
        let (i, _reserved) = le_u8(i)?;
        let (i, share_flags) = le_u32(i)?;
        let (i, capabilities) = le_u32(i)?;
        let (_, maximal_access) = le_u32(i)?;
        Ok(Self { share_type, share_flags, capabilities, maximal_access })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::DecodeError;
    use crate::wire::header::Header;
    use proptest::prelude::*;

    /// Frames 18/19 of captures/smbclient-SMB3_11-signed.pcap.
    #[test]
    fn captured_tree_connect() {
        let req = include_bytes!("../../protocol-tests/fixtures/smbclient-SMB3_11-signed/18-tree_connect-req.bin");
        let r = TreeConnectRequest::decode(req).unwrap();
        assert_eq!(r.path, "\\\\127.0.0.1\\data");
        assert_eq!(r.server_and_share(), Some(("127.0.0.1", "data")));
        let mut out = vec![0u8; 64];
        r.encode(&mut out);
        assert_eq!(&out[64..], &req[64..]);

        let msg = include_bytes!("../../protocol-tests/fixtures/smbclient-SMB3_11-signed/19-tree_connect-resp.bin");
        let resp = TreeConnectResponse::decode(msg).unwrap();
        assert_eq!(
            resp,
            TreeConnectResponse {
                share_type: share_type::DISK,
                share_flags: 0,
                capabilities: 0,
                maximal_access: 0x001f_01ff
            }
        );
        let mut out = Vec::new();
        Header::decode(msg).unwrap().encode(&mut out);
        resp.encode(&mut out);
        assert_eq!(out, msg);
    }

    #[test]
    fn unc_forms() {
        let p = |s: &str| TreeConnectRequest { flags: 0, path: s.into() };
        assert_eq!(p("\\\\srv\\共有").server_and_share(), Some(("srv", "共有")));
        assert_eq!(p("\\srv\\x").server_and_share(), None);
        assert_eq!(p("\\\\srv\\").server_and_share(), None);
        assert_eq!(p("\\\\srv\\a\\b").server_and_share(), None);
    }

    #[test]
    fn rejects_path_outside_message() {
        let mut out = vec![0u8; 64];
        TreeConnectRequest { flags: 0, path: "\\\\h\\s".into() }.encode(&mut out);
        out.truncate(out.len() - 2);
        assert_eq!(TreeConnectRequest::decode(&out), Err(DecodeError::BadOffset));
    }

    proptest! {
        #[test]
        fn round_trips(f in 0u16..4, path in "[a-zA-Z0-9\\\\.\u{3041}-\u{3096}]{0,40}", r in any::<(u8, u32, u32, u32)>()) {
            let req = TreeConnectRequest { flags: f, path };
            let mut out = vec![0u8; 64];
            req.encode(&mut out);
            prop_assert_eq!(TreeConnectRequest::decode(&out).unwrap(), req);
            let resp = TreeConnectResponse { share_type: r.0, share_flags: r.1, capabilities: r.2, maximal_access: r.3 };
            let mut out = vec![0u8; 64];
            resp.encode(&mut out);
            prop_assert_eq!(TreeConnectResponse::decode(&out).unwrap(), resp);
        }

        #[test]
        fn decoders_never_panic(tail in proptest::collection::vec(any::<u8>(), 0..64)) {
            let mut m = vec![0u8; 64];
            m.extend_from_slice(&9u16.to_le_bytes());
            m.extend_from_slice(&tail);
            let _ = TreeConnectRequest::decode(&m);
            m[64] = 16;
            let _ = TreeConnectResponse::decode(&m);
        }
    }
}
