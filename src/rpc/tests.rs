//! Behaviour of the pipe endpoint and the srvsvc/wkssvc calls, driven like a
//! client: PDUs in, PDUs out.

use super::bind::{NDR20, NDR64, uuid};
use super::ndr::NdrReader;
use super::pdu::{self, SyntaxId, client};
use super::test_support::*;
use super::{Pipe, PipeName, RpcError, open_pipe, srvsvc, wkssvc};

fn bound(name: &str, syntax: SyntaxId, dir: &Dir) -> Box<dyn Pipe> {
    let mut p = open_pipe(name).unwrap();
    p.write(&simple_bind(syntax), dir).unwrap();
    let ack = client::parse_bind_ack(&p.read(65536).unwrap());
    assert_eq!(ack.results[0].result, 0);
    p
}

fn many_shares(n: usize) -> Dir {
    let mut shares: Vec<_> =
        (0..n).map(|i| share(&format!("共有フォルダ{i:04}"), 0, &format!("部署 {i} の共有"))).collect();
    shares.push(share("IPC$", 0x8000_0003, "IPC Service"));
    Dir { shares, name: "VAULT".into() }
}

#[test]
fn pipe_names() {
    assert_eq!(PipeName::parse("SrvSvc"), Some(PipeName::Srvsvc));
    assert_eq!(PipeName::parse("\\pipe\\WKSSVC"), Some(PipeName::Wkssvc));
    assert_eq!(PipeName::parse("lsarpc"), Some(PipeName::Lsarpc));
    assert_eq!(PipeName::parse("srvsvc2"), None);
    assert_eq!(PipeName::parse("パイプ"), None);
    assert!(open_pipe("lsarpc").is_none());
    assert!(open_pipe("spoolss").is_none());
    assert!(open_pipe("wkssvc").is_some());
}

/// Windows 10/11 offers NDR, NDR64 and bind time features in one BIND.
#[test]
fn windows_style_bind() {
    let dir = samba_dir();
    let mut btfn = uuid(0x6cb7_1c2c, 0x9812, 0x4540, [0; 8]);
    btfn[8] = 3;
    let btfn = SyntaxId { uuid: btfn, version: 1 };
    let s = srvsvc::SYNTAX;
    let b = bind_pdu(pdu::PTYPE_BIND, 2, &[(0, s, vec![NDR20]), (1, s, vec![NDR64]), (2, s, vec![btfn])]);
    let mut p = open_pipe("srvsvc").unwrap();
    p.write(&b, &dir).unwrap();
    let ack = client::parse_bind_ack(&p.read(65536).unwrap());
    let r: Vec<_> = ack.results.iter().map(|r| (r.result, r.reason)).collect();
    assert_eq!(r, [(0, 0), (2, 2), (3, 3)]);
    assert_eq!(ack.secondary_address, "\\PIPE\\srvsvc");
    // Calls on the rejected NDR64 context fault with nca_s_unknown_if.
    let stub = enum_req(1, None);
    let hint = stub.len() as u32;
    p.write(&request_pdu(5, 1, 15, 3, hint, &stub), &dir).unwrap();
    assert_eq!(response_stub(&read_pdus(p.as_mut()), 5), Err(0x1c01_0003));
    assert_eq!(call(p.as_mut(), &dir, 6, 15, &stub).map(|s| decode_enum(&s).4), Ok(0));
}

#[test]
fn alter_context_adds_a_context() {
    let dir = samba_dir();
    let mut p = bound("srvsvc", srvsvc::SYNTAX, &dir);
    let alter = bind_pdu(pdu::PTYPE_ALTER_CONTEXT, 3, &[(7, srvsvc::SYNTAX, vec![NDR64, NDR20])]);
    p.write(&alter, &dir).unwrap();
    let resp = p.read(65536).unwrap();
    assert_eq!(resp[2], pdu::PTYPE_ALTER_CONTEXT_RESP);
    let ack = client::parse_bind_ack(&resp);
    assert_eq!((ack.secondary_address.as_str(), ack.results[0].result), ("", 0));
    assert_eq!(ack.results[0].transfer_syntax, NDR20);
    let stub = level_req(100);
    p.write(&request_pdu(4, 7, 21, 3, 0, &stub), &dir).unwrap();
    assert!(response_stub(&read_pdus(p.as_mut()), 4).is_ok());
}

#[test]
fn bind_errors_close_the_pipe() {
    let dir = samba_dir();
    // A REQUEST before any BIND.
    let mut p = open_pipe("srvsvc").unwrap();
    p.write(&request_pdu(1, 0, 15, 3, 0, &[]), &dir).unwrap();
    let nak = p.read(100).unwrap();
    assert_eq!((nak[2], nak[16]), (pdu::PTYPE_BIND_NAK, 4));
    assert_eq!(p.write(&simple_bind(srvsvc::SYNTAX), &dir), Err(RpcError::Disconnected));
    assert_eq!(p.read(100), Err(RpcError::Disconnected));
    // A second BIND.
    let mut p = bound("srvsvc", srvsvc::SYNTAX, &dir);
    p.write(&simple_bind(srvsvc::SYNTAX), &dir).unwrap();
    assert_eq!(p.read(100).unwrap()[2], pdu::PTYPE_BIND_NAK);
    // A BIND with DCE/RPC authentication.
    let mut b = simple_bind(srvsvc::SYNTAX);
    b[10] = 16;
    b.extend_from_slice(&[0; 24]);
    b[8] = u8::try_from(b.len()).unwrap();
    let mut p = open_pipe("srvsvc").unwrap();
    p.write(&b, &dir).unwrap();
    assert_eq!(p.read(100).unwrap()[16], 8);
    // Garbage that cannot be framed.
    let mut p = open_pipe("srvsvc").unwrap();
    assert_eq!(p.write(b"GET / HTTP/1.1\r\n", &dir), Err(RpcError::Protocol));
    assert_eq!(p.write(&simple_bind(srvsvc::SYNTAX), &dir), Err(RpcError::Disconnected));
}

#[test]
fn wrong_interface_is_rejected_in_bind_ack() {
    let dir = samba_dir();
    let mut p = open_pipe("srvsvc").unwrap();
    p.write(&simple_bind(wkssvc::SYNTAX), &dir).unwrap();
    let ack = client::parse_bind_ack(&p.read(65536).unwrap());
    assert_eq!((ack.results[0].result, ack.results[0].reason), (2, 1));
    // No context is bound, so a request faults but the pipe stays open.
    p.write(&request_pdu(2, 0, 15, 3, 0, &enum_req(1, None)), &dir).unwrap();
    assert_eq!(response_stub(&read_pdus(p.as_mut()), 2), Err(0x1c01_0003));
}

#[test]
fn unknown_opnum_and_bad_stub_fault() {
    let dir = samba_dir();
    let mut p = bound("srvsvc", srvsvc::SYNTAX, &dir);
    p.write(&request_pdu(9, 0, 99, 3, 0, &[]), &dir).unwrap();
    let f = p.read(100).unwrap();
    assert_eq!(f[3] & pdu::PFC_DID_NOT_EXECUTE, pdu::PFC_DID_NOT_EXECUTE);
    assert_eq!(response_stub(&[f], 9), Err(0x1c01_0002));
    let stub = enum_req(1, Some(0));
    assert_eq!(call(p.as_mut(), &dir, 10, 15, &stub[..stub.len() - 3]), Err(0x6f7));
    assert_eq!(call(p.as_mut(), &dir, 11, 16, &[1, 2, 3]), Err(0x6f7));
    // The pipe still works.
    assert!(call(p.as_mut(), &dir, 12, 15, &stub).is_ok());
    // wkssvc faults on opnums it does not serve.
    let mut w = bound("wkssvc", wkssvc::SYNTAX, &dir);
    assert_eq!(call(w.as_mut(), &dir, 2, 1, &[]), Err(0x1c01_0002));
}

/// A request split over fragments gives the same answer as in one piece.
#[test]
fn multi_fragment_request_is_reassembled() {
    let dir = samba_dir();
    let stub = enum_req(1, Some(0));
    let mut one = bound("srvsvc", srvsvc::SYNTAX, &dir);
    let expect = call(one.as_mut(), &dir, 2, 15, &stub).unwrap();

    let mut p = bound("srvsvc", srvsvc::SYNTAX, &dir);
    let hint = stub.len() as u32;
    let (a, rest) = stub.split_at(8);
    let (b, c) = rest.split_at(20);
    p.write(&request_pdu(2, 0, 15, 1, hint, a), &dir).unwrap();
    p.write(&request_pdu(2, 0, 15, 0, hint - 8, b), &dir).unwrap();
    assert!(!p.has_pending());
    p.write(&request_pdu(2, 0, 15, 2, hint - 28, c), &dir).unwrap();
    // Referent ids depend on what the request carried, not on fragmentation.
    assert_eq!(response_stub(&read_pdus(p.as_mut()), 2), Ok(expect));
}

#[test]
fn fragment_sequence_errors() {
    let dir = samba_dir();
    // A middle fragment without a first one.
    let mut p = bound("srvsvc", srvsvc::SYNTAX, &dir);
    p.write(&request_pdu(2, 0, 15, 0, 0, &[0; 8]), &dir).unwrap();
    assert_eq!(response_stub(&read_pdus(p.as_mut()), 2), Err(0x1c01_000b));
    assert_eq!(p.write(&[], &dir), Err(RpcError::Disconnected));
    // A different opnum in a continuation.
    let mut p = bound("srvsvc", srvsvc::SYNTAX, &dir);
    p.write(&request_pdu(2, 0, 15, 1, 16, &[0; 8]), &dir).unwrap();
    p.write(&request_pdu(2, 0, 16, 2, 8, &[0; 8]), &dir).unwrap();
    assert_eq!(response_stub(&read_pdus(p.as_mut()), 2), Err(0x1c01_000b));
    // An absurd alloc_hint.
    let mut p = bound("srvsvc", srvsvc::SYNTAX, &dir);
    p.write(&request_pdu(2, 0, 15, 1, u32::MAX, &[0; 8]), &dir).unwrap();
    assert_eq!(response_stub(&read_pdus(p.as_mut()), 2), Err(5));
}

/// 300 Japanese-named shares need several 4280-byte fragments.
#[test]
fn large_response_is_fragmented() {
    let dir = many_shares(300);
    let mut p = bound("srvsvc", srvsvc::SYNTAX, &dir);
    let stub = enum_req(1, None);
    let hint = stub.len() as u32;
    // TRANSCEIVE returns the first fragment; the rest is READ.
    let first = p.transact(&request_pdu(3, 0, 15, 3, hint, &stub), 4280, &dir).unwrap();
    assert!(p.has_pending() && !p.partial_message_pending());
    let mut pdus = vec![first];
    pdus.extend(read_pdus(p.as_mut()));
    assert!(pdus.len() > 5);
    for f in &pdus {
        assert!(f.len() <= 4280);
    }
    let body = &pdus[0][24..];
    assert_eq!(body.len() % 16, 0);
    let stub = response_stub(&pdus, 3).unwrap();
    let (_, entries, total, resume, status) = decode_enum(&stub);
    assert_eq!((entries.len(), total, resume, status), (301, 301, None, 0));
    assert_eq!(entries[299].name.as_deref(), Some("共有フォルダ0299"));
    assert_eq!(entries[299].comment.as_deref(), Some("部署 299 の共有"));
    assert_eq!(entries[300].share_type, Some(0x8000_0003));
}

#[test]
fn transceive_with_unread_data_is_busy() {
    let dir = many_shares(300);
    let mut p = bound("srvsvc", srvsvc::SYNTAX, &dir);
    let req = request_pdu(3, 0, 15, 3, 0, &enum_req(1, None));
    p.transact(&req, 4280, &dir).unwrap();
    assert_eq!(p.transact(&req, 4280, &dir), Err(RpcError::Busy));
}

#[test]
fn a_client_that_never_reads_is_stopped() {
    let dir = many_shares(2000);
    let mut p = bound("srvsvc", srvsvc::SYNTAX, &dir);
    let req = request_pdu(3, 0, 15, 3, 0, &enum_req(1, None));
    let stream: Vec<u8> = (0..200).flat_map(|_| req.clone()).collect();
    assert_eq!(p.write(&stream, &dir), Err(RpcError::Overflow));
    assert_eq!(p.write(&req, &dir), Err(RpcError::Disconnected));
}

#[test]
fn share_enum_levels() {
    let dir = samba_dir();
    let mut p = bound("srvsvc", srvsvc::SYNTAX, &dir);
    for (i, level) in [0u32, 1, 2, 501, 502].into_iter().enumerate() {
        let stub = call(p.as_mut(), &dir, 10 + i as u32, 15, &enum_req(level, Some(0))).unwrap();
        let (l, entries, total, resume, status) = decode_enum(&stub);
        assert_eq!((l, entries.len(), total, resume, status), (level, 5, 5, Some(0), 0));
        let ipc = &entries[4];
        assert_eq!(ipc.name.as_deref(), Some("IPC$"));
        assert_eq!(ipc.share_type.is_some(), level != 0);
        assert_eq!(ipc.path.as_deref(), matches!(level, 2 | 502).then_some("C:\\"));
        assert_eq!(ipc.flags, (level == 501).then_some(0));
        assert_eq!(ipc.max_uses, matches!(level, 2 | 502).then_some(u32::MAX));
    }
    // Resume from the fourth entry.
    let stub = call(p.as_mut(), &dir, 20, 15, &enum_req(1, Some(3))).unwrap();
    let (_, entries, total, ..) = decode_enum(&stub);
    assert_eq!((entries.len(), total), (2, 5));
    // Unsupported levels: ERROR_INVALID_LEVEL with an empty arm.
    for level in [503u32, 3, 1005] {
        let stub = call(p.as_mut(), &dir, 21, 15, &enum_req(level, None)).unwrap();
        assert_eq!(decode_enum(&stub), (level, vec![], 0, None, 124));
    }
    // An empty directory: no array at all.
    let empty = Dir { shares: vec![], name: "X".into() };
    let stub = call(p.as_mut(), &empty, 22, 15, &enum_req(1, None)).unwrap();
    assert_eq!(decode_enum(&stub), (1, vec![], 0, None, 0));
}

#[test]
fn share_get_info_levels() {
    let dir = many_shares(3);
    let mut p = bound("srvsvc", srvsvc::SYNTAX, &dir);
    for level in [0u32, 1, 2, 501, 502, 1005] {
        let stub = call(p.as_mut(), &dir, 2, 16, &get_info_req("共有フォルダ0001", level)).unwrap();
        let (e, status) = decode_get_info(&stub, level);
        let e = e.unwrap();
        assert_eq!(status, 0);
        assert_eq!(e.name.is_some(), level != 1005);
        assert_eq!(e.flags, matches!(level, 501 | 1005).then_some(0));
    }
    // Case-insensitive lookup.
    let stub = call(p.as_mut(), &dir, 3, 16, &get_info_req("ipc$", 1)).unwrap();
    let e = decode_get_info(&stub, 1).0.unwrap();
    assert_eq!((e.name.as_deref(), e.comment.as_deref()), (Some("IPC$"), Some("IPC Service")));
    // A share of another organization is simply not there.
    let stub = call(p.as_mut(), &dir, 4, 16, &get_info_req("other-org", 1)).unwrap();
    assert_eq!(decode_get_info(&stub, 1), (None, 2310));
    // Unsupported level.
    let stub = call(p.as_mut(), &dir, 5, 16, &get_info_req("ipc$", 7)).unwrap();
    assert_eq!(stub, [7, 0, 0, 0, 124, 0, 0, 0]);
}

fn server_info(stub: &[u8]) -> (u32, Vec<u32>, Vec<String>, u32) {
    let mut r = NdrReader::new(stub);
    let level = r.u32().unwrap();
    assert!(r.pointer().unwrap());
    let n_fields = match level {
        100 => 2,
        101 => 6,
        _ => 13,
    };
    let mut scalars = vec![];
    let mut strings = 0;
    for i in 0..n_fields {
        // sv10x_name, sv101_comment and sv102_userpath are the pointers.
        if i == 1 || i == 5 || i == 12 {
            assert!(r.pointer().unwrap());
            strings += 1;
        } else {
            scalars.push(r.u32().unwrap());
        }
    }
    let strings = (0..strings).map(|_| r.string().unwrap()).collect();
    (level, scalars, strings, r.u32().unwrap())
}

#[test]
fn server_get_info_levels() {
    let dir = samba_dir();
    let mut p = bound("srvsvc", srvsvc::SYNTAX, &dir);
    let s = call(p.as_mut(), &dir, 2, 21, &level_req(100)).unwrap();
    assert_eq!(server_info(&s), (100, vec![500], vec!["SAMBA".into()], 0));
    let s = call(p.as_mut(), &dir, 3, 21, &level_req(101)).unwrap();
    let (_, scalars, strings, st) = server_info(&s);
    assert_eq!((scalars, strings, st), (vec![500, 6, 1, 0x8003], vec!["SAMBA".into(), String::new()], 0));
    let s = call(p.as_mut(), &dir, 4, 21, &level_req(102)).unwrap();
    let (_, scalars, strings, st) = server_info(&s);
    assert_eq!((scalars.len(), strings.len(), st), (10, 3, 0));
    let s = call(p.as_mut(), &dir, 5, 21, &level_req(503)).unwrap();
    assert_eq!(s, [0xf7, 1, 0, 0, 0, 0, 0, 0, 124, 0, 0, 0]);
}

#[test]
fn wksta_get_info_100() {
    let dir = samba_dir();
    let mut p = bound("wkssvc", wkssvc::SYNTAX, &dir);
    let s = call(p.as_mut(), &dir, 2, 0, &level_req(100)).unwrap();
    let mut r = NdrReader::new(&s);
    assert_eq!(r.u32().unwrap(), 100);
    assert!(r.pointer().unwrap());
    assert_eq!(r.u32().unwrap(), 500);
    assert!(r.pointer().unwrap() && r.pointer().unwrap());
    assert_eq!((r.u32().unwrap(), r.u32().unwrap()), (6, 1));
    assert_eq!(r.string().unwrap(), "SAMBA");
    assert_eq!(r.string().unwrap(), "WORKGROUP");
    assert_eq!(r.u32().unwrap(), 0);
    let s = call(p.as_mut(), &dir, 3, 0, &level_req(102)).unwrap();
    assert_eq!(s, [102, 0, 0, 0, 0, 0, 0, 0, 124, 0, 0, 0]);
}

/// Bytes trickling in one at a time are framed like one big write.
#[test]
fn byte_at_a_time_writes() {
    let dir = samba_dir();
    let mut stream = simple_bind(srvsvc::SYNTAX);
    stream.extend(request_pdu(2, 0, 15, 3, 0, &enum_req(1, Some(0))));
    let mut p = open_pipe("srvsvc").unwrap();
    for b in &stream {
        p.write(std::slice::from_ref(b), &dir).unwrap();
    }
    let pdus = read_pdus(p.as_mut());
    assert_eq!(pdus.len(), 2);
    assert_eq!(decode_enum(&response_stub(&pdus[1..], 2).unwrap()).4, 0);
}

mod prop {
    use super::*;
    use proptest::prelude::*;

    fn valid_stream() -> Vec<u8> {
        let mut s = simple_bind(srvsvc::SYNTAX);
        s.extend(request_pdu(2, 0, 15, 3, 0, &enum_req(1, Some(0))));
        s.extend(request_pdu(3, 0, 16, 3, 0, &get_info_req("data", 2)));
        s.extend(request_pdu(4, 0, 21, 3, 0, &level_req(102)));
        s
    }

    fn drain(p: &mut dyn Pipe) {
        while let Ok(b) = p.read(1000) {
            if b.is_empty() {
                break;
            }
        }
    }

    proptest! {
        #[test]
        fn garbage_never_panics(data in proptest::collection::vec(any::<u8>(), 0..600)) {
            let dir = samba_dir();
            let mut p = open_pipe("srvsvc").unwrap();
            let _ = p.write(&data, &dir);
            drain(p.as_mut());
            let mut p = bound("srvsvc", srvsvc::SYNTAX, &dir);
            let _ = p.write(&data, &dir);
            drain(p.as_mut());
        }

        #[test]
        fn mutated_pdus_never_panic(edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8)) {
            let dir = samba_dir();
            let mut s = valid_stream();
            for (at, v) in edits {
                let n = s.len();
                s[at % n] = v;
            }
            let mut p = open_pipe("srvsvc").unwrap();
            let _ = p.write(&s, &dir);
            drain(p.as_mut());
        }

        #[test]
        fn garbage_stubs_fault_or_answer(op in 0u16..40, stub in proptest::collection::vec(any::<u8>(), 0..200)) {
            let dir = samba_dir();
            let mut p = bound("srvsvc", srvsvc::SYNTAX, &dir);
            p.write(&request_pdu(2, 0, op, 3, 0, &stub), &dir).unwrap();
            prop_assert!(p.has_pending());
            drain(p.as_mut());
            prop_assert!(p.write(&request_pdu(3, 0, 21, 3, 0, &level_req(100)), &dir).is_ok());
        }

        #[test]
        fn split_writes_give_the_same_answers(cuts in proptest::collection::vec(any::<usize>(), 0..10)) {
            let dir = samba_dir();
            let s = valid_stream();
            let mut whole = open_pipe("srvsvc").unwrap();
            whole.write(&s, &dir).unwrap();
            let expect = read_pdus(whole.as_mut());
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c % s.len()).collect();
            cuts.push(s.len());
            cuts.sort_unstable();
            let mut p = open_pipe("srvsvc").unwrap();
            let mut at = 0;
            for c in cuts {
                p.write(&s[at..c], &dir).unwrap();
                at = c;
            }
            let mut got = read_pdus(p.as_mut());
            // Only the association group id differs between pipes.
            got[0][20..24].copy_from_slice(&expect[0][20..24]);
            prop_assert_eq!(got, expect);
        }
    }
}

/// Windows may append a verification trailer (MS-RPCE 2.2.2.13) after the
/// [in] parameters, and any client may send an object UUID; neither changes
/// the answer.
#[test]
fn verification_trailer_and_object_uuid_are_ignored() {
    let dir = samba_dir();
    let stub = get_info_req("data", 1);
    let mut p = bound("srvsvc", srvsvc::SYNTAX, &dir);
    let expect = call(p.as_mut(), &dir, 2, 16, &stub).unwrap();

    let mut with_vt = stub.clone();
    with_vt.resize(stub.len().div_ceil(4) * 4, 0);
    with_vt.extend_from_slice(&[0x8a, 0xe3, 0x13, 0x71, 0x02, 0xf4, 0x36, 0x71]);
    with_vt.extend_from_slice(&[0x01, 0x40, 0x04, 0x00, 0x01, 0x00, 0x00, 0x00]); // BITMASK_1, last
    assert_eq!(call(p.as_mut(), &dir, 3, 16, &with_vt), Ok(expect.clone()));

    let mut obj = vec![0x42; 16];
    obj.extend_from_slice(&stub);
    let flags = 3 | pdu::PFC_OBJECT_UUID;
    p.write(&request_pdu(4, 0, 16, flags, 0, &obj), &dir).unwrap();
    assert_eq!(response_stub(&read_pdus(p.as_mut()), 4), Ok(expect));
}
