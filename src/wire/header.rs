//! The 64-byte SMB2 packet header, sync and async forms (MS-SMB2 2.2.1).

use nom::bytes::complete::tag;
use nom::number::complete::{le_u16, le_u32, le_u64};

use super::{DResult, DecodeError, HEADER_LEN, NtStatus, PutLe};

/// Protocol id of a plain SMB2 message: 0xFE 'S' 'M' 'B'.
pub const PROTOCOL_ID: [u8; 4] = [0xfe, b'S', b'M', b'B'];
/// Protocol id of a transform (encrypted) message: 0xFD 'S' 'M' 'B' (2.2.41).
pub const TRANSFORM_ID: [u8; 4] = [0xfd, b'S', b'M', b'B'];
/// Protocol id of a compression transform (2.2.42): we never negotiate it.
pub const COMPRESSION_ID: [u8; 4] = [0xfc, b'S', b'M', b'B'];
/// Protocol id of an SMB1 message (only the multi-protocol NEGOTIATE is accepted).
pub const SMB1_ID: [u8; 4] = [0xff, b'S', b'M', b'B'];

/// The ProtocolId a message starts with ([`PROTOCOL_ID`], [`TRANSFORM_ID`],
/// [`COMPRESSION_ID`], [`SMB1_ID`] or anything else), if it has four bytes.
pub fn protocol_id(msg: &[u8]) -> Option<[u8; 4]> {
    msg.get(..4).and_then(|b| b.try_into().ok())
}

/// SMB2 command code (MS-SMB2 2.2.1.2). A newtype so unknown codes survive decoding.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Command(pub u16);

#[expect(missing_docs, reason = "the names are the spec's; the doc comment above cites the table")]
impl Command {
    pub const NEGOTIATE: Self = Self(0x0000);
    pub const SESSION_SETUP: Self = Self(0x0001);
    pub const LOGOFF: Self = Self(0x0002);
    pub const TREE_CONNECT: Self = Self(0x0003);
    pub const TREE_DISCONNECT: Self = Self(0x0004);
    pub const CREATE: Self = Self(0x0005);
    pub const CLOSE: Self = Self(0x0006);
    pub const FLUSH: Self = Self(0x0007);
    pub const READ: Self = Self(0x0008);
    pub const WRITE: Self = Self(0x0009);
    pub const LOCK: Self = Self(0x000A);
    pub const IOCTL: Self = Self(0x000B);
    pub const CANCEL: Self = Self(0x000C);
    pub const ECHO: Self = Self(0x000D);
    pub const QUERY_DIRECTORY: Self = Self(0x000E);
    pub const CHANGE_NOTIFY: Self = Self(0x000F);
    pub const QUERY_INFO: Self = Self(0x0010);
    pub const SET_INFO: Self = Self(0x0011);
    pub const OPLOCK_BREAK: Self = Self(0x0012);

    /// The spec name, for logs.
    pub fn name(self) -> &'static str {
        const NAMES: [&str; 19] = [
            "NEGOTIATE",
            "SESSION_SETUP",
            "LOGOFF",
            "TREE_CONNECT",
            "TREE_DISCONNECT",
            "CREATE",
            "CLOSE",
            "FLUSH",
            "READ",
            "WRITE",
            "LOCK",
            "IOCTL",
            "CANCEL",
            "ECHO",
            "QUERY_DIRECTORY",
            "CHANGE_NOTIFY",
            "QUERY_INFO",
            "SET_INFO",
            "OPLOCK_BREAK",
        ];
        NAMES.get(usize::from(self.0)).copied().unwrap_or("UNKNOWN")
    }
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}(0x{:04x})", self.name(), self.0)
    }
}

/// Header flags (MS-SMB2 2.2.1.2).
pub mod flags {
    /// Response (server to client).
    pub const SERVER_TO_REDIR: u32 = 0x0000_0001;
    /// Async header form: AsyncId replaces Reserved+TreeId.
    pub const ASYNC_COMMAND: u32 = 0x0000_0002;
    /// Part of a related compound: use the previous message's ids.
    pub const RELATED_OPERATIONS: u32 = 0x0000_0004;
    /// The message is signed.
    pub const SIGNED: u32 = 0x0000_0008;
    /// Priority mask (3.1.1).
    pub const PRIORITY_MASK: u32 = 0x0000_0070;
    /// DFS operation.
    pub const DFS_OPERATIONS: u32 = 0x1000_0000;
    /// Replay of an earlier request (3.x).
    pub const REPLAY_OPERATION: u32 = 0x2000_0000;
}

/// A decoded SMB2 header. `tree_id` is meaningful only for sync messages and
/// `async_id` only for async ones (flag ASYNC_COMMAND).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Header {
    /// CreditCharge: credits this request consumes (1 for ≤ 64 KiB payloads).
    pub credit_charge: u16,
    /// Status in responses; ChannelSequence (+Reserved) in 3.x requests.
    pub status: NtStatus,
    /// The command.
    pub command: Command,
    /// CreditRequest in requests, CreditResponse in responses.
    pub credits: u16,
    /// Flags (see [`flags`]).
    pub flags: u32,
    /// Offset of the next message of a compound, 8-aligned, or 0.
    pub next_command: u32,
    /// MessageId.
    pub message_id: u64,
    /// AsyncId for async messages.
    pub async_id: u64,
    /// TreeId for sync messages.
    pub tree_id: u32,
    /// SessionId.
    pub session_id: u64,
    /// Signature (zero when unsigned).
    pub signature: [u8; 16],
}

impl Default for Command {
    fn default() -> Self {
        Command::NEGOTIATE
    }
}

impl Header {
    /// True for the async header form.
    pub fn is_async(&self) -> bool {
        self.flags & flags::ASYNC_COMMAND != 0
    }

    /// True if this message is part of a related compound chain.
    pub fn is_related(&self) -> bool {
        self.flags & flags::RELATED_OPERATIONS != 0
    }

    /// True if the SIGNED flag is set.
    pub fn is_signed(&self) -> bool {
        self.flags & flags::SIGNED != 0
    }

    /// Decodes the first 64 bytes of `msg`.
    pub fn decode(msg: &[u8]) -> DResult<Self> {
        if msg.len() < HEADER_LEN {
            return Err(DecodeError::Truncated);
        }
        let (i, _) = tag::<_, _, nom::error::Error<&[u8]>>(&PROTOCOL_ID[..])(msg).map_err(|_| DecodeError::BadValue)?;
        let (i, structure_size) = le_u16(i)?;
        if structure_size != 64 {
            return Err(DecodeError::BadStructureSize);
        }
        let (i, credit_charge) = le_u16(i)?;
        let (i, status) = le_u32(i)?;
        let (i, command) = le_u16(i)?;
        let (i, credits) = le_u16(i)?;
        let (i, flags_) = le_u32(i)?;
        let (i, next_command) = le_u32(i)?;
        let (i, message_id) = le_u64(i)?;
        let (async_id, tree_id, i) = if flags_ & flags::ASYNC_COMMAND != 0 {
            let (i, a) = le_u64(i)?;
            (a, 0, i)
        } else {
            let (i, _reserved) = le_u32(i)?;
            let (i, t) = le_u32(i)?;
            (0, t, i)
        };
        let (i, session_id) = le_u64(i)?;
        let mut signature = [0u8; 16];
        signature.copy_from_slice(i.get(..16).ok_or(DecodeError::Truncated)?);
        Ok(Self {
            credit_charge,
            status: NtStatus(status),
            command: Command(command),
            credits,
            flags: flags_,
            next_command,
            message_id,
            async_id,
            tree_id,
            session_id,
            signature,
        })
    }

    /// Appends the 64-byte encoding to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&PROTOCOL_ID);
        out.put_u16(64);
        out.put_u16(self.credit_charge);
        out.put_u32(self.status.0);
        out.put_u16(self.command.0);
        out.put_u16(self.credits);
        out.put_u32(self.flags);
        out.put_u32(self.next_command);
        out.put_u64(self.message_id);
        if self.is_async() {
            out.put_u64(self.async_id);
        } else {
            out.put_u32(0);
            out.put_u32(self.tree_id);
        }
        out.put_u64(self.session_id);
        out.extend_from_slice(&self.signature);
    }
}

/// Byte offsets of header fields that are patched after encoding.
pub mod offsets {
    /// Status (u32).
    pub const STATUS: usize = 8;
    /// Command (u16).
    pub const COMMAND: usize = 12;
    /// Flags (u32).
    pub const FLAGS: usize = 16;
    /// NextCommand (u32).
    pub const NEXT_COMMAND: usize = 20;
    /// Signature (16 bytes).
    pub const SIGNATURE: usize = 48;
}

/// Clears NextCommand of the last message in a compound buffer (when the
/// last response of a chain was skipped, the one before it must not point
/// on; MS-SMB2 3.3.4.1.3).
pub fn end_compound(out: &mut [u8]) {
    let mut pos = 0usize;
    loop {
        let next = out
            .get(pos + offsets::NEXT_COMMAND..pos + offsets::NEXT_COMMAND + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
            .unwrap_or(0);
        if next == 0 || pos + next >= out.len() {
            if next != 0 {
                out[pos + offsets::NEXT_COMMAND..pos + offsets::NEXT_COMMAND + 4].copy_from_slice(&[0; 4]);
            }
            return;
        }
        pos += next;
    }
}

/// What the AES-GMAC signing nonce is built from (MS-SMB2 3.1.4.1): the
/// raw MessageId bytes, Flags and Command of the message at the start of
/// `msg`, read without decoding the rest (signing runs before and after the
/// codec). `None` if `msg` is shorter than a header.
pub fn gmac_nonce_fields(msg: &[u8]) -> Option<([u8; 8], u32, Command)> {
    let h = msg.get(..HEADER_LEN)?;
    let flags = u32::from_le_bytes([h[16], h[17], h[18], h[19]]);
    let command = Command(u16::from_le_bytes([h[12], h[13]]));
    let mut message_id = [0u8; 8];
    message_id.copy_from_slice(&h[24..32]);
    Some((message_id, flags, command))
}

/// The length of the message at the start of `rest` (`rest_len` bytes) in
/// a compound chain, from its NextCommand (MS-SMB2 3.3.5.2.7): all of it
/// when NextCommand is 0; otherwise NextCommand, which must be 8-aligned,
/// at least a header and within `rest`. `None` when it is not.
pub fn chained_len(next_command: u32, rest_len: usize) -> Option<usize> {
    match next_command as usize {
        0 => Some(rest_len),
        n if n.is_multiple_of(8) && n >= HEADER_LEN && n <= rest_len => Some(n),
        _ => None,
    }
}

/// The messages of a compound chain, each from its header to the next one
/// ([`chained_len`]); `None` if a header is short or a NextCommand is bad
/// (the engine refuses such a chain when it handles it).
pub fn chain_messages(msg: &[u8]) -> Option<Vec<&[u8]>> {
    let mut out = Vec::new();
    let mut rest = msg;
    loop {
        let h = rest.get(..HEADER_LEN)?;
        let at = offsets::NEXT_COMMAND;
        let next = u32::from_le_bytes([h[at], h[at + 1], h[at + 2], h[at + 3]]);
        let len = chained_len(next, rest.len())?;
        out.push(&rest[..len]);
        if next == 0 {
            return Some(out);
        }
        // A NextCommand that points at the end names a message that is not there.
        rest = &rest[len..];
    }
}

/// The Command of the message at the start of `msg`, if it has a header.
pub fn command_of(msg: &[u8]) -> Option<Command> {
    let h = msg.get(..HEADER_LEN)?;
    Some(Command(u16::from_le_bytes([h[offsets::COMMAND], h[offsets::COMMAND + 1]])))
}

/// Sets NextCommand of the message at the start of `msg` (MS-SMB2 2.2.1).
pub fn set_next_command(msg: &mut [u8], next: u32) {
    msg[offsets::NEXT_COMMAND..offsets::NEXT_COMMAND + 4].copy_from_slice(&next.to_le_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::hex_bytes;

    /// NEGOTIATE request header from captures/smbclient-SMB3_11-signed.pcap (frame 4).
    #[test]
    fn decodes_captured_negotiate_header() {
        let h = hex_bytes(
            "fe534d42 4000 0000 00000000 0000 1f00 00000000 00000000
             0000000000000000 00000000 00000000 0000000000000000
             00000000000000000000000000000000",
        );
        let hd = Header::decode(&h).unwrap();
        assert_eq!(hd.command, Command::NEGOTIATE);
        assert_eq!(hd.credits, 31);
        let mut back = Vec::new();
        hd.encode(&mut back);
        assert_eq!(back, h);
    }

    #[test]
    fn splits_compound_chains_and_refuses_bad_offsets() {
        let mut a = vec![0u8; 72];
        a[..4].copy_from_slice(&PROTOCOL_ID);
        a[12] = 0x08; // READ
        a[20] = 72; // NextCommand
        let mut b = vec![0u8; 70];
        b[..4].copy_from_slice(&PROTOCOL_ID);
        b[12] = 0x09; // WRITE
        let chain = [a.clone(), b.clone()].concat();
        let msgs = chain_messages(&chain).expect("well formed");
        assert_eq!(msgs.len(), 2);
        assert_eq!((msgs[0].len(), msgs[1].len()), (72, 70));
        assert_eq!(command_of(msgs[0]), Some(Command::READ));
        assert_eq!(command_of(msgs[1]), Some(Command::WRITE));
        for bad in [71u8, 8, 200] {
            let mut c = chain.clone();
            c[20] = bad;
            assert_eq!(chain_messages(&c), None, "NextCommand {bad}");
        }
        // NextCommand pointing exactly at the end names a message that is not there.
        assert_eq!(chain_messages(&a), None);
        assert_eq!(chained_len(72, 72), Some(72));
        assert_eq!((chained_len(0, 70), chained_len(64, 70), chained_len(72, 70)), (Some(70), Some(64), None));
        assert_eq!(chain_messages(&chain[..63]), None);
        assert_eq!(command_of(&chain[..10]), None);
    }

    #[test]
    fn rejects_bad_magic_and_size() {
        let mut h = vec![0u8; 64];
        assert_eq!(Header::decode(&h), Err(DecodeError::BadValue));
        h[..4].copy_from_slice(&PROTOCOL_ID);
        h[4] = 63;
        assert_eq!(Header::decode(&h), Err(DecodeError::BadStructureSize));
        assert_eq!(Header::decode(&h[..63]), Err(DecodeError::Truncated));
    }

    #[test]
    fn async_form_round_trips() {
        let hd = Header {
            command: Command::LOCK,
            flags: flags::ASYNC_COMMAND | flags::SERVER_TO_REDIR,
            async_id: 0x1122_3344_5566_7788,
            message_id: 9,
            session_id: 5,
            status: NtStatus::PENDING,
            ..Default::default()
        };
        let mut v = Vec::new();
        hd.encode(&mut v);
        assert_eq!(v.len(), 64);
        assert_eq!(Header::decode(&v).unwrap(), hd);
    }
}
