//! Golden tests against `smbclient-list-shares.pcap` (smbclient 4.17 →
//! Samba 4.17, `smbclient -L`). The fixtures are the FSCTL_PIPE_TRANSCEIVE
//! input/output buffers of frames 17/21 (BIND, BIND_ACK) and 23/24
//! (NetShareEnumAll request/response), extracted byte for byte.

use super::bind::{NDR20, RESULT_ACCEPTANCE};
use super::ndr::NdrReader;
use super::open_pipe;
use super::pdu::{self, client};
use super::test_support::{Entry, decode_enum, response_stub, samba_dir};

const BIND_REQ: &[u8] = include_bytes!("../../protocol-tests/fixtures/rpc/bind-req.bin");
const BIND_ACK_SAMBA: &[u8] = include_bytes!("../../protocol-tests/fixtures/rpc/bind-ack-samba.bin");
const ENUM_REQ: &[u8] = include_bytes!("../../protocol-tests/fixtures/rpc/netshareenumall-req.bin");
const ENUM_RESP_SAMBA: &[u8] = include_bytes!("../../protocol-tests/fixtures/rpc/netshareenumall-resp-samba.bin");

/// Max Ioctl Out Size smbclient sent with both TRANSCEIVEs.
const MAX_OUT: usize = 4280;

#[test]
fn captured_bind_decodes() {
    let h = pdu::header(BIND_REQ).unwrap().unwrap();
    assert_eq!((h.ptype, h.pfc_flags, h.call_id), (pdu::PTYPE_BIND, 3, 1));
    assert_eq!(usize::from(h.frag_length), BIND_REQ.len());
    let b = pdu::parse_bind(BIND_REQ, &h).unwrap();
    assert_eq!((b.max_xmit_frag, b.max_recv_frag, b.assoc_group_id), (4280, 4280, 0));
    assert_eq!(b.contexts.len(), 1);
    assert_eq!(b.contexts[0].abstract_syntax, super::srvsvc::SYNTAX);
    assert_eq!(b.contexts[0].transfer_syntaxes, [NDR20]);
}

#[test]
fn captured_request_decodes() {
    let h = pdu::header(ENUM_REQ).unwrap().unwrap();
    let r = pdu::parse_request(ENUM_REQ, &h).unwrap();
    assert_eq!((h.call_id, r.context_id, r.opnum, r.alloc_hint), (2, 0, 15, 68));
    let mut n = NdrReader::new(r.stub);
    assert_eq!(n.unique_string().unwrap().as_deref(), Some("127.0.0.1"));
    assert_eq!((n.u32().unwrap(), n.u32().unwrap()), (1, 1)); // level, union arm
    assert!(n.pointer().unwrap()); // Ctr1
    assert_eq!(n.u32().unwrap(), 0); // count
    assert!(!n.pointer().unwrap()); // array
    assert_eq!(n.u32().unwrap(), u32::MAX); // PreferedMaximumLength
    assert!(n.pointer().unwrap());
    assert_eq!(n.u32().unwrap(), 0); // resume handle
    assert_eq!(n.referents(), 3);
}

/// The exchange as the SMB engine drives it: two TRANSCEIVEs.
#[test]
fn smbclient_list_shares_exchange() {
    let dir = samba_dir();
    let mut p = open_pipe("srvsvc").unwrap();

    let ack = p.transact(BIND_REQ, MAX_OUT, &dir).unwrap();
    assert!(!p.has_pending());
    let ours = client::parse_bind_ack(&ack);
    let samba = client::parse_bind_ack(BIND_ACK_SAMBA);
    // Server-specific: the association group id and the spelling of the
    // secondary address (Samba "\pipe\srvsvc", Windows "\PIPE\srvsvc").
    assert_ne!(ours.assoc_group_id, 0);
    assert!(ours.secondary_address.eq_ignore_ascii_case(&samba.secondary_address));
    assert_eq!(
        (ours.max_xmit_frag, ours.max_recv_frag, &ours.results),
        (samba.max_xmit_frag, samba.max_recv_frag, &samba.results)
    );
    assert_eq!(ours.results[0].result, RESULT_ACCEPTANCE);
    // Same header and layout: only the group id differs byte-wise.
    assert_eq!(ack.len(), BIND_ACK_SAMBA.len());
    assert_eq!(ack[..20], BIND_ACK_SAMBA[..20]);

    let resp = p.transact(ENUM_REQ, MAX_OUT, &dir).unwrap();
    assert!(!p.has_pending());
    // Referent ids continue from the request's, as Samba's do, so the whole
    // RESPONSE PDU is byte-identical.
    assert_eq!(resp, ENUM_RESP_SAMBA);
}

fn entry(name: &str, share_type: u32, comment: &str) -> Entry {
    Entry { name: Some(name.into()), share_type: Some(share_type), comment: Some(comment.into()), ..Entry::default() }
}

/// The decoded structure of Samba's answer, and ours, is what smbclient
/// prints for `-L`.
#[test]
fn samba_response_structure() {
    let expect = vec![
        entry("data", 0, ""),
        entry("data2", 0, ""),
        entry("enc", 0, ""),
        entry("hideunread", 0, ""),
        entry("IPC$", 0x8000_0003, "IPC Service (samba anchor)"),
    ];
    let samba = response_stub(&[ENUM_RESP_SAMBA.to_vec()], 2).unwrap();
    assert_eq!(decode_enum(&samba), (1, expect.clone(), 5, Some(0), 0));

    let dir = samba_dir();
    let mut p = open_pipe("SRVSVC").unwrap();
    p.write(BIND_REQ, &dir).unwrap();
    p.read(MAX_OUT).unwrap();
    p.write(ENUM_REQ, &dir).unwrap();
    let ours = response_stub(&[p.read(MAX_OUT).unwrap()], 2).unwrap();
    assert_eq!(decode_enum(&ours), (1, expect, 5, Some(0), 0));
}

/// The same exchange over WRITE + READ with small reads: a read never spans
/// two PDUs and a cut PDU is reported as a partial message.
#[test]
fn write_and_small_reads() {
    let dir = samba_dir();
    let mut p = open_pipe("\\PIPE\\srvsvc").unwrap();
    let mut stream = BIND_REQ.to_vec();
    stream.extend_from_slice(ENUM_REQ);
    p.write(&stream, &dir).unwrap();
    let mut got = vec![];
    let mut reads = 0;
    loop {
        let chunk = p.read(100).unwrap();
        if chunk.is_empty() {
            break;
        }
        reads += 1;
        got.extend_from_slice(&chunk);
        let at_boundary = got.len() == 68 || got.len() == 68 + ENUM_RESP_SAMBA.len();
        assert_eq!(p.partial_message_pending(), !at_boundary, "after {} bytes", got.len());
    }
    assert_eq!(reads, 1 + 4);
    assert_eq!(&got[68..], ENUM_RESP_SAMBA);
}
