//! What the connection needs from a message before (or besides) its
//! command's codec: the payload size that CreditCharge must cover
//! (MS-SMB2 3.3.5.2.5), the FileId a request names, for the channel
//! sequence check (3.3.5.2.10) and for the related requests of a compound
//! (3.3.5.2.7.2), and the FileId a successful CREATE response carries
//! (2.2.14), which the rest of its compound uses.
//!
//! These are peeks at fixed offsets of the fixed part of a body, read
//! before the handler decodes the message; a message too short for a
//! field peeks as "none" (size 0, no FileId): the codec rejects it later.

use super::HEADER_LEN;
use super::create::FileId;
use super::header::Command;

fn le32(msg: &[u8], body_off: usize) -> Option<usize> {
    let b = msg.get(HEADER_LEN + body_off..HEADER_LEN + body_off + 4)?;
    Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
}

fn file_id_at(msg: &[u8], body_off: usize) -> Option<FileId> {
    let b = msg.get(HEADER_LEN + body_off..HEADER_LEN + body_off + 16)?;
    FileId::parse(b).ok().map(|(_, id)| id)
}

/// The payload size that CreditCharge must cover (MS-SMB2 3.3.5.2.5): the
/// larger of what the request carries and what the response may carry.
/// READ and WRITE: Length (2.2.19, 2.2.21, body offset 4); IOCTL:
/// InputCount and MaxOutputResponse (2.2.31, offsets 28 and 44);
/// QUERY_DIRECTORY: OutputBufferLength (2.2.33, 28); QUERY_INFO:
/// OutputBufferLength and InputBufferLength (2.2.37, 4 and 12);
/// CHANGE_NOTIFY: OutputBufferLength (2.2.35, 4); SET_INFO: BufferLength
/// (2.2.39, 4). Other commands: the bytes sent after the header.
pub fn payload_size(command: Command, msg: &[u8]) -> usize {
    let at = |off| le32(msg, off).unwrap_or(0);
    match command {
        Command::READ | Command::WRITE => at(4),
        Command::IOCTL => at(28).max(at(44)),
        Command::QUERY_DIRECTORY => at(28),
        Command::QUERY_INFO => at(4).max(at(12)),
        Command::CHANGE_NOTIFY | Command::SET_INFO => at(4),
        _ => msg.len().saturating_sub(HEADER_LEN),
    }
}

/// The most a request's response may carry beyond its fixed part, for
/// the size budget of a compound's responses (MS-SMB2 3.3.4.1.3): READ
/// Length, IOCTL MaxOutputResponse, QUERY_DIRECTORY and QUERY_INFO and
/// CHANGE_NOTIFY OutputBufferLength (offsets as for [`payload_size`]).
/// Other commands answer with a few hundred bytes at most: 0.
pub fn max_response_size(command: Command, msg: &[u8]) -> usize {
    let at = |off| le32(msg, off).unwrap_or(0);
    match command {
        Command::READ | Command::QUERY_INFO | Command::CHANGE_NOTIFY => at(4),
        Command::IOCTL => at(44),
        Command::QUERY_DIRECTORY => at(28),
        _ => 0,
    }
}

/// True when a LOCK request (MS-SMB2 2.2.26) may wait: its first element
/// (body offset 24, Flags at 16 within it) takes a lock without
/// SMB2_LOCKFLAG_FAIL_IMMEDIATELY. Only such a request goes asynchronous
/// (3.3.5.14); an unlock never does.
pub fn lock_may_wait(msg: &[u8]) -> bool {
    const SHARED_OR_EXCLUSIVE: usize = 0x1 | 0x2;
    const FAIL_IMMEDIATELY: usize = 0x10;
    le32(msg, 24 + 16).is_some_and(|f| f & SHARED_OR_EXCLUSIVE != 0 && f & FAIL_IMMEDIATELY == 0)
}

/// The FileId a request names explicitly: `None` for commands without
/// one and for the all-ones value of a related compound ("the previous
/// operation's FileId", MS-SMB2 3.3.5.2.7.2). Body offsets: 8 for CLOSE,
/// FLUSH, LOCK, IOCTL, QUERY_DIRECTORY, CHANGE_NOTIFY and OPLOCK_BREAK;
/// 16 for READ, WRITE and SET_INFO; 24 for QUERY_INFO.
pub fn request_file_id(command: Command, msg: &[u8]) -> Option<FileId> {
    let at = match command {
        Command::CLOSE
        | Command::FLUSH
        | Command::LOCK
        | Command::IOCTL
        | Command::QUERY_DIRECTORY
        | Command::CHANGE_NOTIFY
        | Command::OPLOCK_BREAK => 8,
        Command::READ | Command::WRITE | Command::SET_INFO => 16,
        Command::QUERY_INFO => 24,
        _ => return None,
    };
    file_id_at(msg, at).filter(|id| *id != FileId::ANY)
}

/// The FileId of a CREATE response message (MS-SMB2 2.2.14: body offset 64).
pub fn create_response_file_id(msg: &[u8]) -> Option<FileId> {
    file_id_at(msg, 64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::create::CreateResponse;
    use crate::wire::read::ReadRequest;
    use crate::wire::write::WriteRequest;

    /// Frames of captures/smbclient-SMB3_11-signed.pcap: the peeks agree
    /// with the full decoders on what smbclient sent.
    #[test]
    fn captured_requests() {
        let read = include_bytes!("../../protocol-tests/fixtures/smbclient-SMB3_11-signed/48-read-req.bin");
        let r = ReadRequest::decode(read).unwrap();
        assert_eq!(payload_size(Command::READ, read), r.length as usize);
        assert_eq!(request_file_id(Command::READ, read), Some(r.file_id));

        let write = include_bytes!("../../protocol-tests/fixtures/smbclient-SMB3_11-signed/40-write-req.bin");
        let w = WriteRequest::decode(write).unwrap();
        assert_eq!(payload_size(Command::WRITE, write), w.data.len());
        assert_eq!(request_file_id(Command::WRITE, write), Some(w.file_id));

        let resp = include_bytes!("../../protocol-tests/fixtures/smbclient-SMB3_11-signed/21-create-resp.bin");
        let c = CreateResponse::decode(resp).unwrap();
        assert_eq!(create_response_file_id(resp), Some(c.file_id));
        // CREATE names no FileId of its own.
        let req = include_bytes!("../../protocol-tests/fixtures/smbclient-SMB3_11-signed/20-create-req.bin");
        assert_eq!(request_file_id(Command::CREATE, req), None);
    }

    #[test]
    fn short_and_related_messages() {
        let mut msg = vec![0u8; HEADER_LEN + 8];
        assert_eq!(payload_size(Command::READ, &msg), 0);
        assert_eq!(request_file_id(Command::CLOSE, &msg), None);
        msg.extend_from_slice(&[0xff; 16]);
        // All ones: the related compound's previous FileId, not a FileId.
        assert_eq!(request_file_id(Command::CLOSE, &msg), None);
        msg[HEADER_LEN + 8] = 1;
        assert_eq!(request_file_id(Command::CLOSE, &msg).map(|f| f.volatile), Some(u64::MAX));
        assert_eq!(payload_size(Command::ECHO, &msg), 24);
        assert_eq!(create_response_file_id(&msg), None);
        assert_eq!(max_response_size(Command::CREATE, &msg), 0);
        assert!(!lock_may_wait(&msg));
    }

    /// The layout of MS-SMB2 2.2.26 and 2.2.26.1 (no LOCK in our
    /// captures): a blocking exclusive lock, one failing at once, an unlock.
    #[test]
    fn lock_elements() {
        let mut msg = vec![0u8; HEADER_LEN + 48];
        msg[HEADER_LEN] = 48; // StructureSize
        msg[HEADER_LEN + 2] = 1; // LockCount
        msg[HEADER_LEN + 24 + 16] = 0x2; // SMB2_LOCK_FLAG_EXCLUSIVE
        assert!(lock_may_wait(&msg));
        msg[HEADER_LEN + 24 + 16] = 0x12; // | FAIL_IMMEDIATELY
        assert!(!lock_may_wait(&msg));
        msg[HEADER_LEN + 24 + 16] = 0x4; // UNLOCK
        assert!(!lock_may_wait(&msg));
    }

    #[test]
    fn captured_read_response_budget() {
        let read = include_bytes!("../../protocol-tests/fixtures/smbclient-SMB3_11-signed/48-read-req.bin");
        let r = ReadRequest::decode(read).unwrap();
        assert_eq!(max_response_size(Command::READ, read), r.length as usize);
    }
}
