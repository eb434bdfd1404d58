//! CREATE contexts (MS-SMB2 2.2.13.2, 2.2.14.2): the generic chain, and
//! typed payloads for the contexts we act on. A context's data is decoded
//! from `CreateContext::data` with the matching type's `decode`, and typed
//! payloads are encoded into a `Vec` that a `CreateContext` then borrows.
//!
//! Two contexts reuse other modules' codecs: "ExtA" data is a
//! FILE_FULL_EA_INFORMATION chain (`fscc::ea::FileFullEaInformation`), and
//! "SecD" data is a self-relative security descriptor, which the handler
//! decodes with `dtyp::SecurityDescriptor::parse`. "QFid" and "MxAc" requests may carry no
//! data at all.

use nom::number::complete::{le_u16, le_u32, le_u64};

use super::create::FileId;
use super::fscc::chain_entries;
use super::{DResult, DecodeError, Guid, NtStatus, PutLe, guid, pad_to, put_utf16le, utf16_len, utf16le};

/// Context names (MS-SMB2 2.2.13.2 table; AAPL from Apple's smb client).
pub mod names {
    #![expect(missing_docs, reason = "the constants carry the spec's names; the module doc cites the table")]
    pub const EXTA: &[u8] = b"ExtA";
    pub const SECD: &[u8] = b"SecD";
    pub const DHNQ: &[u8] = b"DHnQ";
    pub const DHNC: &[u8] = b"DHnC";
    pub const ALSI: &[u8] = b"AlSi";
    pub const MXAC: &[u8] = b"MxAc";
    pub const TWRP: &[u8] = b"TWrp";
    pub const QFID: &[u8] = b"QFid";
    pub const RQLS: &[u8] = b"RqLs";
    pub const DH2Q: &[u8] = b"DH2Q";
    pub const DH2C: &[u8] = b"DH2C";
    pub const AAPL: &[u8] = b"AAPL";
}

/// One SMB2_CREATE_CONTEXT: a name (usually 4 ASCII bytes, sometimes a
/// 16-byte GUID) and its data, both borrowed from the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CreateContext<'a> {
    /// Name.
    pub name: &'a [u8],
    /// Data.
    pub data: &'a [u8],
}

impl<'a> CreateContext<'a> {
    /// A context from a name and already-encoded data.
    pub fn new(name: &'a [u8], data: &'a [u8]) -> Self {
        Self { name, data }
    }
}

/// The first context called `name`.
pub fn find<'a, 'c>(ctxs: &'c [CreateContext<'a>], name: &[u8]) -> Option<&'c CreateContext<'a>> {
    ctxs.iter().find(|c| c.name == name)
}

/// Decodes a chain of contexts (the CreateContexts buffer). Next offsets
/// must be 8-byte multiples inside the buffer; each name and data must lie
/// inside its own entry.
pub fn decode_chain(buf: &[u8]) -> DResult<Vec<CreateContext<'_>>> {
    chain_entries(buf, 8)?.into_iter().map(decode_one).collect()
}

fn decode_one(e: &[u8]) -> DResult<CreateContext<'_>> {
    let (i, _next) = le_u32(e)?;
    let (i, name_offset) = le_u16(i)?;
    let (i, name_length) = le_u16(i)?;
    let (i, _reserved) = le_u16(i)?;
    let (i, data_offset) = le_u16(i)?;
    let (_, data_length) = le_u32(i)?;
    if name_length == 0 {
        return Err(DecodeError::BadLength);
    }
    let name = within(e, usize::from(name_offset), name_length as usize)?;
    let data = within(e, usize::from(data_offset), data_length as usize)?;
    Ok(CreateContext { name, data })
}

/// `len` bytes at `off` inside the entry, after its 16-byte header.
fn within(e: &[u8], off: usize, len: usize) -> DResult<&[u8]> {
    if len == 0 {
        return Ok(&[]);
    }
    if off < 16 {
        return Err(DecodeError::BadOffset);
    }
    e.get(off..off + len).ok_or(DecodeError::BadOffset)
}

/// Appends a chain. `out` must be 8-aligned relative to the SMB2 header
/// (its start) when called; every entry starts 8-aligned, name at +16 and
/// data at the next 8-byte boundary, the last entry unpadded.
pub fn encode_chain(out: &mut Vec<u8>, ctxs: &[CreateContext<'_>]) {
    let mut prev: Option<usize> = None;
    for c in ctxs {
        if let Some(p) = prev {
            pad_to(out, 8);
            let at = out.len();
            out.set_u32(p, (at - p) as u32);
        }
        let start = out.len();
        prev = Some(start);
        out.put_u32(0);
        out.put_u16(16);
        out.put_u16(c.name.len() as u16);
        out.put_u16(0);
        out.put_u16(0);
        out.put_u32(c.data.len() as u32);
        out.extend_from_slice(c.name);
        if !c.data.is_empty() {
            pad_to(out, 8);
            let off = out.len() - start;
            out.set_u16(start + 10, off as u16);
            out.extend_from_slice(c.data);
        }
    }
}

/// Reads a fixed-size array at the start of `b`.
fn array<const N: usize>(b: &[u8]) -> DResult<[u8; N]> {
    let mut a = [0u8; N];
    a.copy_from_slice(b.get(..N).ok_or(DecodeError::Truncated)?);
    Ok(a)
}

/// MxAc request (2.2.13.2.5): optional Timestamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MxAcRequest {
    /// Timestamp, if the client sent one.
    pub timestamp: Option<u64>,
}

impl MxAcRequest {
    /// Decodes the data (empty or 8 bytes).
    pub fn decode(d: &[u8]) -> DResult<Self> {
        if d.is_empty() {
            return Ok(Self { timestamp: None });
        }
        Ok(Self { timestamp: Some(le_u64(d)?.1) })
    }

    /// Appends the data.
    pub fn encode(&self, out: &mut Vec<u8>) {
        if let Some(t) = self.timestamp {
            out.put_u64(t);
        }
    }
}

/// MxAc response (2.2.14.2.5): QueryStatus and MaximalAccess.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MxAcResponse {
    #[expect(missing_docs, reason = "the names are the spec's; the doc comment above cites the table")]
    pub query_status: NtStatus,
    #[expect(missing_docs, reason = "the names are the spec's; the doc comment above cites the table")]
    pub maximal_access: u32,
}

impl MxAcResponse {
    /// Decodes 8 bytes.
    pub fn decode(d: &[u8]) -> DResult<Self> {
        let (i, status) = le_u32(d)?;
        let (_, maximal_access) = le_u32(i)?;
        Ok(Self { query_status: NtStatus(status), maximal_access })
    }

    /// Appends 8 bytes.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_u32(self.query_status.0);
        out.put_u32(self.maximal_access);
    }
}

/// QFid response (2.2.14.2.9): DiskFileId, VolumeId and 16 reserved bytes.
/// (The request has no data.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QFidResponse {
    #[expect(missing_docs, reason = "the names are the spec's; the doc comment above cites the table")]
    pub disk_file_id: u64,
    #[expect(missing_docs, reason = "the names are the spec's; the doc comment above cites the table")]
    pub volume_id: u64,
}

impl QFidResponse {
    /// Decodes 32 bytes.
    pub fn decode(d: &[u8]) -> DResult<Self> {
        let (i, disk_file_id) = le_u64(d)?;
        let (i, volume_id) = le_u64(i)?;
        array::<16>(i)?;
        Ok(Self { disk_file_id, volume_id })
    }

    /// Appends 32 bytes.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_u64(self.disk_file_id);
        out.put_u64(self.volume_id);
        out.put_zeros(16);
    }
}

/// DHnQ request (2.2.13.2.3): 16 reserved bytes. The response (2.2.14.2.3)
/// is 8 reserved bytes: use [`DurableV1::encode_response`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DurableV1;

impl DurableV1 {
    /// Checks the request data is 16 bytes.
    pub fn decode(d: &[u8]) -> DResult<Self> {
        if d.len() != 16 {
            return Err(DecodeError::BadLength);
        }
        Ok(Self)
    }

    /// Appends the 16-byte request.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_zeros(16);
    }

    /// Appends the 8-byte response.
    pub fn encode_response(out: &mut Vec<u8>) {
        out.put_zeros(8);
    }
}

/// DHnC request (2.2.13.2.4): the FileId of the durable open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DurableReconnectV1 {
    #[expect(missing_docs, reason = "the names are the spec's; the doc comment above cites the table")]
    pub file_id: FileId,
}

impl DurableReconnectV1 {
    /// Decodes 16 bytes.
    pub fn decode(d: &[u8]) -> DResult<Self> {
        Ok(Self { file_id: FileId::parse(d)?.1 })
    }

    /// Appends 16 bytes.
    pub fn encode(&self, out: &mut Vec<u8>) {
        self.file_id.encode(out);
    }
}

/// DH2Q request (2.2.13.2.11).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DurableRequestV2 {
    /// Timeout in milliseconds (0: server default).
    pub timeout: u32,
    /// Flags (SMB2_DHANDLE_FLAG_PERSISTENT 0x2).
    pub flags: u32,
    #[expect(missing_docs, reason = "the names are the spec's; the doc comment above cites the table")]
    pub create_guid: Guid,
}

impl DurableRequestV2 {
    /// SMB2_DHANDLE_FLAG_PERSISTENT.
    pub const FLAG_PERSISTENT: u32 = 0x2;

    /// Decodes 32 bytes.
    pub fn decode(d: &[u8]) -> DResult<Self> {
        let (i, timeout) = le_u32(d)?;
        let (i, flags) = le_u32(i)?;
        let (i, _reserved) = le_u64(i)?;
        let (_, create_guid) = guid(i)?;
        Ok(Self { timeout, flags, create_guid })
    }

    /// Appends 32 bytes.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_u32(self.timeout);
        out.put_u32(self.flags);
        out.put_u64(0);
        out.extend_from_slice(&self.create_guid.0);
    }
}

/// DH2Q response (2.2.14.2.12).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DurableResponseV2 {
    /// Timeout granted, milliseconds.
    pub timeout: u32,
    #[expect(missing_docs, reason = "the names are the spec's; the doc comment above cites the table")]
    pub flags: u32,
}

impl DurableResponseV2 {
    /// Decodes 8 bytes.
    pub fn decode(d: &[u8]) -> DResult<Self> {
        let (i, timeout) = le_u32(d)?;
        let (_, flags) = le_u32(i)?;
        Ok(Self { timeout, flags })
    }

    /// Appends 8 bytes.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_u32(self.timeout);
        out.put_u32(self.flags);
    }
}

/// DH2C request (2.2.13.2.12).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DurableReconnectV2 {
    #[expect(missing_docs, reason = "the names are the spec's; the doc comment above cites the table")]
    pub file_id: FileId,
    #[expect(missing_docs, reason = "the names are the spec's; the doc comment above cites the table")]
    pub create_guid: Guid,
    #[expect(missing_docs, reason = "the names are the spec's; the doc comment above cites the table")]
    pub flags: u32,
}

impl DurableReconnectV2 {
    /// Decodes 36 bytes.
    pub fn decode(d: &[u8]) -> DResult<Self> {
        let (i, file_id) = FileId::parse(d)?;
        let (i, create_guid) = guid(i)?;
        let (_, flags) = le_u32(i)?;
        Ok(Self { file_id, create_guid, flags })
    }

    /// Appends 36 bytes.
    pub fn encode(&self, out: &mut Vec<u8>) {
        self.file_id.encode(out);
        out.extend_from_slice(&self.create_guid.0);
        out.put_u32(self.flags);
    }
}

/// RqLs request and response, v1 (2.2.13.2.8, 32 bytes) or v2
/// (2.2.13.2.10, 52 bytes); the version is told apart by the data length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Lease {
    /// LeaseKey.
    pub key: [u8; 16],
    /// LeaseState (see `fscc::consts::lease`).
    pub state: u32,
    /// LeaseFlags.
    pub flags: u32,
    /// LeaseDuration (reserved, 0).
    pub duration: u64,
    /// The v2 fields, if this is a v2 lease.
    pub v2: Option<LeaseV2>,
}

/// The fields a v2 lease adds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LeaseV2 {
    /// ParentLeaseKey (valid with LEASE_FLAG_PARENT_LEASE_KEY_SET).
    pub parent_key: [u8; 16],
    /// Epoch.
    pub epoch: u16,
}

impl Lease {
    /// Decodes 32 (v1) or at least 52 (v2) bytes.
    pub fn decode(d: &[u8]) -> DResult<Self> {
        let key = array::<16>(d)?;
        let (i, state) = le_u32(&d[16..])?;
        let (i, flags) = le_u32(i)?;
        let (i, duration) = le_u64(i)?;
        let v2 = if d.len() >= 52 {
            let parent_key = array::<16>(i)?;
            let (_, epoch) = le_u16(&i[16..])?;
            Some(LeaseV2 { parent_key, epoch })
        } else if d.len() == 32 {
            None
        } else {
            return Err(DecodeError::BadLength);
        };
        Ok(Self { key, state, flags, duration, v2 })
    }

    /// Appends 32 or 52 bytes.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.key);
        out.put_u32(self.state);
        out.put_u32(self.flags);
        out.put_u64(self.duration);
        if let Some(v2) = &self.v2 {
            out.extend_from_slice(&v2.parent_key);
            out.put_u16(v2.epoch);
            out.put_u16(0);
        }
    }
}

/// Defines a context whose data is one u64.
macro_rules! u64_context {
    ($(#[$doc:meta])* $name:ident { $field:ident }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
        pub struct $name {
            #[expect(missing_docs, reason = "the names are the spec's; the doc comment above cites the table")]
            pub $field: u64,
        }

        impl $name {
            /// Decodes 8 bytes.
            pub fn decode(d: &[u8]) -> DResult<Self> {
                Ok(Self { $field: le_u64(d)?.1 })
            }

            /// Appends 8 bytes.
            pub fn encode(&self, out: &mut Vec<u8>) {
                out.put_u64(self.$field);
            }
        }
    };
}

u64_context!(
    /// TWrp request (2.2.13.2.7): open the snapshot taken at this FILETIME.
    Timewarp { timestamp }
);
u64_context!(
    /// AlSi request (2.2.13.2.6): initial allocation size.
    AllocationSizeContext { allocation_size }
);

/// AAPL command codes and bitmaps (Apple smb client `smb_2.h`, as Samba's
/// vfs_fruit implements them).
pub mod aapl {
    #![expect(missing_docs, reason = "the constants carry the spec's names; the module doc cites the table")]
    pub const SERVER_QUERY: u32 = 1;
    pub const RESOLVE_ID: u32 = 2;
    /// Request/reply bitmap.
    pub const SERVER_CAPS: u64 = 1;
    pub const VOLUME_CAPS: u64 = 2;
    pub const MODEL_INFO: u64 = 4;
    /// Server capabilities.
    pub const SUPPORTS_READ_DIR_ATTR: u64 = 1;
    pub const SUPPORTS_OSX_COPYFILE: u64 = 2;
    pub const UNIX_BASED: u64 = 4;
    pub const SUPPORTS_NFS_ACE: u64 = 8;
    /// Volume capabilities.
    pub const SUPPORT_RESOLVE_ID: u64 = 1;
    pub const CASE_SENSITIVE: u64 = 2;
    pub const FULL_SYNC: u64 = 4;
}

/// AAPL server query request: CommandCode 1, Reserved, RequestBitmap,
/// ClientCapabilities (24 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AaplServerQuery {
    #[expect(missing_docs, reason = "the names are the spec's; the doc comment above cites the table")]
    pub request_bitmap: u64,
    #[expect(missing_docs, reason = "the names are the spec's; the doc comment above cites the table")]
    pub client_caps: u64,
}

impl AaplServerQuery {
    /// Decodes the request; other command codes are `BadValue`.
    pub fn decode(d: &[u8]) -> DResult<Self> {
        let (i, cmd) = le_u32(d)?;
        let (i, _reserved) = le_u32(i)?;
        let (i, request_bitmap) = le_u64(i)?;
        let (_, client_caps) = le_u64(i)?;
        if cmd != aapl::SERVER_QUERY {
            return Err(DecodeError::BadValue);
        }
        Ok(Self { request_bitmap, client_caps })
    }

    /// Appends 24 bytes.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_u32(aapl::SERVER_QUERY);
        out.put_u32(0);
        out.put_u64(self.request_bitmap);
        out.put_u64(self.client_caps);
    }
}

/// AAPL server query response: CommandCode, Reserved, ReplyBitmap, then in
/// bitmap order ServerCaps (u64), VolumeCaps (u64), and the model as
/// Reserved u32, ModelStringLength u32, UTF-16 string.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AaplServerQueryResponse {
    #[expect(missing_docs, reason = "the names are the spec's; the doc comment above cites the table")]
    pub server_caps: Option<u64>,
    #[expect(missing_docs, reason = "the names are the spec's; the doc comment above cites the table")]
    pub volume_caps: Option<u64>,
    /// Model string shown by Finder (e.g. "MacSamba").
    pub model: Option<String>,
}

impl AaplServerQueryResponse {
    /// Appends the response; ReplyBitmap says which parts are present.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let mut bitmap = 0;
        bitmap |= if self.server_caps.is_some() { aapl::SERVER_CAPS } else { 0 };
        bitmap |= if self.volume_caps.is_some() { aapl::VOLUME_CAPS } else { 0 };
        bitmap |= if self.model.is_some() { aapl::MODEL_INFO } else { 0 };
        out.put_u32(aapl::SERVER_QUERY);
        out.put_u32(0);
        out.put_u64(bitmap);
        if let Some(c) = self.server_caps {
            out.put_u64(c);
        }
        if let Some(c) = self.volume_caps {
            out.put_u64(c);
        }
        if let Some(m) = &self.model {
            out.put_u32(0);
            out.put_u32(utf16_len(m) as u32);
            put_utf16le(out, m);
        }
    }

    /// Decodes the response (client side).
    pub fn decode(d: &[u8]) -> DResult<Self> {
        let (i, cmd) = le_u32(d)?;
        let (i, _reserved) = le_u32(i)?;
        let (mut i, bitmap) = le_u64(i)?;
        if cmd != aapl::SERVER_QUERY {
            return Err(DecodeError::BadValue);
        }
        let mut r = Self::default();
        if bitmap & aapl::SERVER_CAPS != 0 {
            let (rest, c) = le_u64(i)?;
            (i, r.server_caps) = (rest, Some(c));
        }
        if bitmap & aapl::VOLUME_CAPS != 0 {
            let (rest, c) = le_u64(i)?;
            (i, r.volume_caps) = (rest, Some(c));
        }
        if bitmap & aapl::MODEL_INFO != 0 {
            let (rest, _reserved) = le_u32(i)?;
            let (rest, len) = le_u32(rest)?;
            let s = rest.get(..len as usize).ok_or(DecodeError::BadLength)?;
            r.model = Some(utf16le(s)?);
        }
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The AAPL server query a Mac sends (layout as in Samba's vfs_fruit:
    /// 24 bytes of data after a 4-byte name padded to offset 24).
    #[test]
    fn decodes_a_mac_aapl_query() {
        let chain = crate::wire::hex_bytes(
            "00000000 1000 0400 0000 1800 18000000 4141504c 00000000
             01000000 00000000 0700000000000000 0f00000000000000",
        );
        let ctxs = decode_chain(&chain).unwrap();
        assert_eq!(ctxs.len(), 1);
        let c = find(&ctxs, names::AAPL).unwrap();
        let q = AaplServerQuery::decode(c.data).unwrap();
        assert_eq!(q.request_bitmap, 7);
        assert_eq!(q.client_caps, 0xf);
        let mut data = Vec::new();
        q.encode(&mut data);
        let mut out = Vec::new();
        encode_chain(&mut out, &[CreateContext::new(names::AAPL, &data)]);
        assert_eq!(out, chain);
    }

    /// CREATE requests smbtorture 4.17 sent (captures/smbtorture-lease-durable-v2.pcap,
    /// frames 20 and 490; field values as Wireshark decodes them): a v1
    /// lease request (smb2.lease.request), then DH2Q + RqLs
    /// (smb2.durable-v2-open.open-lease).
    #[test]
    fn decodes_smbtorture_lease_and_durable_v2_requests() {
        macro_rules! fixture {
            ($f:expr) => {
                include_bytes!(concat!("../../protocol-tests/fixtures/smbtorture-lease/", $f))
            };
        }
        let req = crate::wire::create::CreateRequest::decode(fixture!("20-create-lease-v1.bin")).unwrap();
        assert_eq!(req.name, "lease_request.dat");
        assert_eq!(req.requested_oplock_level, 0xff);
        let l = Lease::decode(find(&req.contexts, names::RQLS).unwrap().data).unwrap();
        // Lease Key e0ddf00d-0ffe-badc-f20f-221f01f02345 (GUID byte order on the wire).
        assert_eq!(l.key, crate::wire::hex_bytes("0df0dde0 fe0f dcba f20f 221f01f02345")[..]);
        assert_eq!((l.state, l.flags, l.duration, l.v2), (7, 0, 0, None));
        let mut enc = Vec::new();
        l.encode(&mut enc);
        assert_eq!(enc, find(&req.contexts, names::RQLS).unwrap().data);

        let req = crate::wire::create::CreateRequest::decode(fixture!("490-create-dh2q-lease.bin")).unwrap();
        let names_in_order: Vec<&[u8]> = req.contexts.iter().map(|c| c.name).collect();
        assert_eq!(names_in_order, [names::DH2Q, names::RQLS]);
        let d = DurableRequestV2::decode(find(&req.contexts, names::DH2Q).unwrap().data).unwrap();
        assert_eq!((d.timeout, d.flags), (0, 0));
        // Create Guid 856605eb-820a-4b67-91e2-746245c1f4fd.
        assert_eq!(d.create_guid.0[..], crate::wire::hex_bytes("eb056685 0a82 674b 91e2 746245c1f4fd")[..]);
        let l = Lease::decode(find(&req.contexts, names::RQLS).unwrap().data).unwrap();
        assert_eq!(l.key, crate::wire::hex_bytes("6cb3ee0e 0000 0000 934c 11f1ffffffff")[..]);
        assert_eq!(l.state, 7);
    }

    /// What smbclient / Windows put in a typical CREATE: MxAc (no data)
    /// then QFid (no data); Next = 24 (16 header + 4 name, padded).
    #[test]
    fn empty_data_contexts_chain() {
        let mut out = Vec::new();
        encode_chain(&mut out, &[CreateContext::new(names::MXAC, &[]), CreateContext::new(names::QFID, &[])]);
        assert_eq!(
            out,
            crate::wire::hex_bytes(
                "18000000 1000 0400 0000 0000 00000000 4d784163 00000000
                 00000000 1000 0400 0000 0000 00000000 51466964"
            )
        );
        let ctxs = decode_chain(&out).unwrap();
        assert_eq!(ctxs[1].name, names::QFID);
        assert!(ctxs[1].data.is_empty());
    }

    #[test]
    fn rejects_escaping_offsets() {
        let mut out = Vec::new();
        encode_chain(&mut out, &[CreateContext::new(names::ALSI, &[1, 2, 3, 4, 5, 6, 7, 8])]);
        let mut bad = out.clone();
        bad[10] = 0x20; // DataOffset past the end.
        assert_eq!(decode_chain(&bad), Err(DecodeError::BadOffset));
        let mut bad = out.clone();
        bad[4] = 4; // NameOffset inside the header.
        assert_eq!(decode_chain(&bad), Err(DecodeError::BadOffset));
        let mut bad = out.clone();
        bad[0] = 12; // Next not 8-aligned.
        assert_eq!(decode_chain(&bad), Err(DecodeError::BadOffset));
        assert_eq!(decode_chain(&out[..30]), Err(DecodeError::BadOffset));
    }

    fn arb_lease() -> impl Strategy<Value = Lease> {
        (any::<([u8; 16], u32, u32, u64)>(), proptest::option::of(any::<([u8; 16], u16)>())).prop_map(|(a, v2)| Lease {
            key: a.0,
            state: a.1,
            flags: a.2,
            duration: a.3,
            v2: v2.map(|(parent_key, epoch)| LeaseV2 { parent_key, epoch }),
        })
    }

    proptest! {
        #[test]
        fn chain_round_trips(v in proptest::collection::vec((proptest::collection::vec(any::<u8>(), 1..17), proptest::collection::vec(any::<u8>(), 0..40)), 0..5)) {
            let ctxs: Vec<CreateContext<'_>> = v.iter().map(|(n, d)| CreateContext::new(n, d)).collect();
            let mut out = Vec::new();
            encode_chain(&mut out, &ctxs);
            prop_assert_eq!(decode_chain(&out).unwrap(), ctxs);
        }

        #[test]
        fn typed_round_trip(l in arb_lease(), x in any::<(u32, u32, [u8; 16], u64, u64)>(), model in proptest::option::of("[a-zA-Z0-9 ]{0,16}"), caps in proptest::option::of(any::<u64>())) {
            let mut d = Vec::new();
            l.encode(&mut d);
            prop_assert_eq!(Lease::decode(&d).unwrap(), l);
            d.clear();
            let q = DurableRequestV2 { timeout: x.0, flags: x.1, create_guid: Guid(x.2) };
            q.encode(&mut d);
            prop_assert_eq!(DurableRequestV2::decode(&d).unwrap(), q);
            d.clear();
            let c = DurableReconnectV2 { file_id: FileId { persistent: x.3, volatile: x.4 }, create_guid: Guid(x.2), flags: x.1 };
            c.encode(&mut d);
            prop_assert_eq!(DurableReconnectV2::decode(&d).unwrap(), c);
            d.clear();
            let r = AaplServerQueryResponse { server_caps: caps, volume_caps: Some(x.3), model };
            r.encode(&mut d);
            prop_assert_eq!(AaplServerQueryResponse::decode(&d).unwrap(), r);
            d.clear();
            let m = MxAcResponse { query_status: NtStatus(x.0), maximal_access: x.1 };
            m.encode(&mut d);
            prop_assert_eq!(MxAcResponse::decode(&d).unwrap(), m);
            d.clear();
            let f = QFidResponse { disk_file_id: x.3, volume_id: x.4 };
            f.encode(&mut d);
            prop_assert_eq!(d.len(), 32);
            prop_assert_eq!(QFidResponse::decode(&d).unwrap(), f);
        }

        #[test]
        fn decoders_never_panic(b in proptest::collection::vec(any::<u8>(), 0..120)) {
            let _ = decode_chain(&b);
            let _ = Lease::decode(&b);
            let _ = AaplServerQueryResponse::decode(&b);
            let _ = AaplServerQuery::decode(&b);
            let _ = DurableReconnectV2::decode(&b);
            let _ = MxAcRequest::decode(&b);
        }
    }
}
