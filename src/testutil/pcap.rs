//! A tiny classic-pcap reader for golden tests: walks Ethernet/IPv4/IPv6 TCP
//! segments, reassembles each direction of each TCP connection to a server
//! port, and splits the byte streams into Direct-TCP framed SMB2 messages
//! (MS-SMB2 2.1: one zero byte and a 24-bit big-endian length).
//!
//! Test-only code: it panics on files it does not understand, which is what a
//! golden test wants.

use std::collections::BTreeMap;

/// Which way a segment or frame travelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Dir {
    /// Client to server (requests).
    ToServer,
    /// Server to client (responses).
    ToClient,
}

/// One TCP segment with payload between a client port and the server port.
#[derive(Debug, Clone)]
pub(crate) struct Segment {
    /// Index of the pcap record (0-based; tshark's frame number minus one).
    pub record: usize,
    /// The client's port, which names the connection.
    pub client_port: u16,
    /// Direction.
    pub dir: Dir,
    /// TCP sequence number of the first payload byte.
    pub seq: u32,
    /// TCP flags byte (SYN = 0x02).
    pub flags: u8,
    /// Payload bytes.
    pub payload: Vec<u8>,
}

/// One reassembled Direct-TCP frame: a whole SMB2 message, a compound, or a
/// transform (encrypted) message.
#[derive(Debug, Clone)]
pub(crate) struct Frame {
    /// Index of the pcap record that completed the frame.
    pub record: usize,
    /// The client's port, which names the connection.
    pub client_port: u16,
    /// Direction.
    pub dir: Dir,
    /// The frame bytes without the 4-byte Direct-TCP prefix.
    pub bytes: Vec<u8>,
}

fn u16be(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn u32be(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// All pcap records' link-layer bytes, in file order.
fn records(file: &[u8]) -> Vec<Vec<u8>> {
    assert!(file.len() >= 24, "pcap too short");
    let magic = u32::from_le_bytes([file[0], file[1], file[2], file[3]]);
    let le = match magic {
        0xa1b2_c3d4 | 0xa1b2_3c4d => true,
        0xd4c3_b2a1 | 0x4d3c_b2a1 => false,
        _ => panic!("not a classic pcap file (pcapng is not supported)"),
    };
    let rd = |at: usize| {
        let b = [file[at], file[at + 1], file[at + 2], file[at + 3]];
        if le { u32::from_le_bytes(b) } else { u32::from_be_bytes(b) }
    };
    assert_eq!(rd(20), 1, "only Ethernet link type is supported");
    let mut out = Vec::new();
    let mut at = 24;
    while at + 16 <= file.len() {
        let incl = rd(at + 8) as usize;
        let start = at + 16;
        let end = start + incl;
        assert!(end <= file.len(), "truncated pcap record");
        out.push(file[start..end].to_vec());
        at = end;
    }
    out
}

/// Parses Ethernet + IP + TCP; returns (src port, dst port, seq, flags, payload).
fn tcp(frame: &[u8]) -> Option<(u16, u16, u32, u8, &[u8])> {
    let ethertype = u16be(frame, 12);
    let (ip, proto, ip_payload) = match ethertype {
        0x0800 => {
            let ip = &frame[14..];
            let ihl = usize::from(ip[0] & 0x0f) * 4;
            let total = usize::from(u16be(ip, 2));
            (ip, ip[9], &ip[ihl..total])
        }
        0x86dd => {
            let ip = &frame[14..];
            let plen = usize::from(u16be(ip, 4));
            (ip, ip[6], &ip[40..40 + plen])
        }
        _ => return None,
    };
    let _ = ip;
    if proto != 6 {
        return None;
    }
    let t = ip_payload;
    let off = usize::from(t[12] >> 4) * 4;
    Some((u16be(t, 0), u16be(t, 2), u32be(t, 4), t[13], &t[off..]))
}

/// Every TCP segment to or from `server_port`, in capture order (including
/// payload-less SYNs, whose sequence numbers anchor reassembly).
pub(crate) fn segments(file: &[u8], server_port: u16) -> Vec<Segment> {
    let mut out = Vec::new();
    for (record, f) in records(file).iter().enumerate() {
        let Some((sp, dp, seq, flags, payload)) = tcp(f) else {
            continue;
        };
        let (client_port, dir) = if dp == server_port {
            (sp, Dir::ToServer)
        } else if sp == server_port {
            (dp, Dir::ToClient)
        } else {
            continue;
        };
        out.push(Segment { record, client_port, dir, seq, flags, payload: payload.to_vec() });
    }
    out
}

/// Reassembles every direction of every connection and splits it into
/// Direct-TCP frames, returned in the order in which each frame's last byte
/// arrived (which interleaves requests and responses as on the wire).
/// Retransmitted bytes are dropped. Where the capture itself lost bytes,
/// the frames around the gap are skipped and reading resumes at the next
/// segment that starts with a Direct-TCP prefix and an SMB2 protocol id.
pub(crate) fn frames(file: &[u8], server_port: u16) -> Vec<Frame> {
    #[derive(Default)]
    struct Stream {
        next_seq: Option<u32>,
        buf: Vec<u8>,
    }
    let mut streams: BTreeMap<(u16, Dir), Stream> = BTreeMap::new();
    let mut out = Vec::new();
    for s in segments(file, server_port) {
        let st = streams.entry((s.client_port, s.dir)).or_default();
        if s.flags & 0x02 != 0 {
            st.next_seq = Some(s.seq.wrapping_add(1));
            continue;
        }
        if s.payload.is_empty() {
            continue;
        }
        if st.next_seq.is_none() && !starts_frame(&s.payload) {
            continue; // still looking for a frame start after a gap
        }
        let next = *st.next_seq.get_or_insert(s.seq);
        let mut skip = next.wrapping_sub(s.seq) as usize;
        if skip >= 1 << 31 {
            // Bytes missing from the capture (tcpdump dropped them): the
            // frame in progress is lost. Resynchronise at a segment that
            // starts a new frame.
            st.buf.clear();
            if !starts_frame(&s.payload) {
                st.next_seq = None;
                continue;
            }
            skip = 0;
        }
        if skip >= s.payload.len() {
            continue; // pure retransmission
        }
        st.buf.extend_from_slice(&s.payload[skip..]);
        st.next_seq = Some(s.seq.wrapping_add(s.payload.len() as u32));
        while st.buf.len() >= 4 {
            assert_eq!(st.buf[0], 0, "not a Direct-TCP session message");
            let len = (usize::from(st.buf[1]) << 16) | (usize::from(st.buf[2]) << 8) | usize::from(st.buf[3]);
            if st.buf.len() < 4 + len {
                break;
            }
            let bytes = st.buf[4..4 + len].to_vec();
            st.buf.drain(..4 + len);
            out.push(Frame { record: s.record, client_port: s.client_port, dir: s.dir, bytes });
        }
    }
    out
}

fn starts_frame(p: &[u8]) -> bool {
    p.len() >= 8 && p[0] == 0 && (p[4..8] == *b"\xfeSMB" || p[4..8] == *b"\xfdSMB")
}

/// Splits a compound frame into its messages using NextCommand (MS-SMB2
/// 3.2.4.1.4): each slice runs to the next message's start (padding
/// included), the last one to the end of the frame.
pub(crate) fn split_compound(frame: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut rest = frame;
    loop {
        assert!(rest.len() >= 64, "truncated SMB2 header in compound");
        let next = u32::from_le_bytes([rest[20], rest[21], rest[22], rest[23]]) as usize;
        if next == 0 {
            out.push(rest);
            return out;
        }
        let (this, tail) = rest.split_at(next);
        out.push(this);
        rest = tail;
    }
}

/// The capture named `name` (e.g. "smbclient-SMB3_11-signed.pcap"), committed
/// under `protocol-tests/fixtures/captures/` (copied from the team's shared
/// captures: real smbclient-to-Samba traffic with a known password).
pub(crate) fn capture(name: &str) -> Vec<u8> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("protocol-tests/fixtures/captures");
    std::fs::read(dir.join(name)).unwrap_or_else(|e| panic!("capture {name} in {}: {e}", dir.display()))
}

/// TCP port the captures' Samba server listened on (captures/README.md).
pub(crate) const CAPTURE_PORT: u16 = 4458;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_smb3_11_capture_frames() {
        let f = frames(&capture("smbclient-SMB3_11-signed.pcap"), CAPTURE_PORT);
        // NEGOTIATE request, then its response; both plain SMB2 messages.
        assert_eq!((f[0].dir, f[0].record), (Dir::ToServer, 3));
        assert_eq!(&f[0].bytes[..4], b"\xfeSMB");
        assert_eq!(f[1].dir, Dir::ToClient);
        assert_eq!(u16::from_le_bytes([f[1].bytes[12], f[1].bytes[13]]), 0);
        // tshark: frame 10 carries a 516-byte NetBIOS payload (AUTHENTICATE).
        assert_eq!(f[4].bytes.len(), 582 - 66 - 4);
        for fr in &f {
            for m in split_compound(&fr.bytes) {
                assert!(m.len() >= 64);
            }
        }
    }
}
