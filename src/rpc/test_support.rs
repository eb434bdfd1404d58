//! Test helpers: a client-side encoder for BIND/REQUEST PDUs and NDR
//! decoders for the answers, so tests read our output the way a client does.

use super::bind::NDR20;
use super::ndr::{NdrReader, NdrWriter};
use super::pdu::{self, SyntaxId, client};
use super::{Pipe, ShareDirectory, ShareInfo};
use crate::wire::PutLe;

/// A directory with fixed content.
pub(crate) struct Dir {
    pub(crate) shares: Vec<ShareInfo>,
    pub(crate) name: String,
}

impl ShareDirectory for Dir {
    fn shares(&self) -> Vec<ShareInfo> {
        self.shares.clone()
    }
    fn server_name(&self) -> String {
        self.name.clone()
    }
}

pub(crate) fn share(name: &str, share_type: u32, comment: &str) -> ShareInfo {
    ShareInfo { name: name.to_string(), share_type, comment: comment.to_string(), path: "C:\\".to_string() }
}

/// The shares the Samba server in `smbclient-list-shares.pcap` returned.
pub(crate) fn samba_dir() -> Dir {
    Dir {
        shares: vec![
            share("data", 0, ""),
            share("data2", 0, ""),
            share("enc", 0, ""),
            share("hideunread", 0, ""),
            share("IPC$", 0x8000_0003, "IPC Service (samba anchor)"),
        ],
        name: "SAMBA".to_string(),
    }
}

fn header(ptype: u8, flags: u8, call_id: u32) -> Vec<u8> {
    let mut out = vec![5, 0, ptype, flags, 0x10, 0, 0, 0, 0, 0, 0, 0];
    out.put_u32(call_id);
    out
}

fn finish(mut out: Vec<u8>) -> Vec<u8> {
    let n = u16::try_from(out.len()).unwrap();
    out.set_u16(8, n);
    out
}

/// A BIND (or ALTER_CONTEXT with `ptype` 14) offering `(id, abstract, transfers)`.
pub(crate) fn bind_pdu(ptype: u8, call_id: u32, ctxs: &[(u16, SyntaxId, Vec<SyntaxId>)]) -> Vec<u8> {
    let mut out = header(ptype, 3, call_id);
    out.put_u16(4280);
    out.put_u16(4280);
    out.put_u32(0);
    out.put_u8(u8::try_from(ctxs.len()).unwrap());
    out.put_zeros(3);
    for (id, abs, ts) in ctxs {
        out.put_u16(*id);
        out.put_u8(u8::try_from(ts.len()).unwrap());
        out.put_u8(0);
        out.extend_from_slice(&abs.uuid);
        out.put_u32(abs.version);
        for t in ts {
            out.extend_from_slice(&t.uuid);
            out.put_u32(t.version);
        }
    }
    finish(out)
}

pub(crate) fn simple_bind(syntax: SyntaxId) -> Vec<u8> {
    bind_pdu(pdu::PTYPE_BIND, 1, &[(0, syntax, vec![NDR20])])
}

/// One REQUEST fragment.
pub(crate) fn request_pdu(call_id: u32, ctx: u16, opnum: u16, flags: u8, hint: u32, stub: &[u8]) -> Vec<u8> {
    let mut out = header(pdu::PTYPE_REQUEST, flags, call_id);
    out.put_u32(hint);
    out.put_u16(ctx);
    out.put_u16(opnum);
    out.extend_from_slice(stub);
    finish(out)
}

/// Reads every queued PDU, checking that reads never span two PDUs.
pub(crate) fn read_pdus(p: &mut dyn Pipe) -> Vec<Vec<u8>> {
    let mut pdus = vec![];
    while p.has_pending() {
        let b = p.read(65536).unwrap();
        let h = pdu::header(&b).unwrap().unwrap();
        assert_eq!(usize::from(h.frag_length), b.len());
        pdus.push(b);
    }
    pdus
}

/// Reassembles RESPONSE fragments into a stub, checking flags and alloc_hint;
/// `Err(status)` for a FAULT.
pub(crate) fn response_stub(pdus: &[Vec<u8>], call_id: u32) -> Result<Vec<u8>, u32> {
    let mut stub = vec![];
    let n = pdus.len();
    for (i, p) in pdus.iter().enumerate() {
        match client::parse_response(p) {
            Ok(r) => {
                assert_eq!(r.hdr.call_id, call_id);
                assert_eq!(r.hdr.pfc_flags & 1 != 0, i == 0, "first flag");
                assert_eq!(r.hdr.pfc_flags & 2 != 0, i + 1 == n, "last flag");
                assert!(usize::try_from(r.alloc_hint).unwrap() >= r.stub.len());
                stub.extend_from_slice(&r.stub);
            }
            Err((h, status)) => {
                assert_eq!((h.call_id, n), (call_id, 1));
                return Err(status);
            }
        }
    }
    Ok(stub)
}

/// Writes one single-fragment call and returns the response stub.
pub(crate) fn call(p: &mut dyn Pipe, dir: &Dir, call_id: u32, opnum: u16, stub: &[u8]) -> Result<Vec<u8>, u32> {
    let hint = u32::try_from(stub.len()).unwrap();
    p.write(&request_pdu(call_id, 0, opnum, 3, hint, stub), dir).unwrap();
    response_stub(&read_pdus(p), call_id)
}

fn server_unc(w: &mut NdrWriter) {
    w.pointer(true);
    w.string("\\\\127.0.0.1");
}

/// NetrShareEnum request stub.
pub(crate) fn enum_req(level: u32, resume: Option<u32>) -> Vec<u8> {
    let mut w = NdrWriter::new(0);
    server_unc(&mut w);
    w.u32(level);
    w.u32(level);
    // An empty container, for levels whose union arm is a pointer.
    if super::share_info::is_pointer_arm(level) {
        w.pointer(true);
        w.u32(0);
        w.pointer(false);
    }
    w.u32(u32::MAX);
    w.pointer(resume.is_some());
    if let Some(r) = resume {
        w.u32(r);
    }
    w.finish()
}

/// NetrShareGetInfo request stub.
pub(crate) fn get_info_req(name: &str, level: u32) -> Vec<u8> {
    let mut w = NdrWriter::new(0);
    server_unc(&mut w);
    w.string(name);
    w.u32(level);
    w.finish()
}

/// NetrServerGetInfo / NetrWkstaGetInfo request stub.
pub(crate) fn level_req(level: u32) -> Vec<u8> {
    let mut w = NdrWriter::new(0);
    server_unc(&mut w);
    w.u32(level);
    w.finish()
}

/// A decoded SHARE_INFO_<level>.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Entry {
    pub(crate) name: Option<String>,
    pub(crate) share_type: Option<u32>,
    pub(crate) comment: Option<String>,
    pub(crate) path: Option<String>,
    pub(crate) flags: Option<u32>,
    pub(crate) max_uses: Option<u32>,
}

fn opt_string(r: &mut NdrReader<'_>, present: bool) -> Option<String> {
    present.then(|| r.string().unwrap())
}

/// Fixed part of one SHARE_INFO; returns the entry and which strings follow.
fn fixed(r: &mut NdrReader<'_>, level: u32) -> (Entry, [bool; 3]) {
    let mut e = Entry::default();
    if level == 1005 {
        e.flags = Some(r.u32().unwrap());
        return (e, [false; 3]);
    }
    let name = r.pointer().unwrap();
    if level == 0 {
        return (e, [name, false, false]);
    }
    e.share_type = Some(r.u32().unwrap());
    let comment = r.pointer().unwrap();
    let mut path = false;
    match level {
        501 => e.flags = Some(r.u32().unwrap()),
        2 | 502 => {
            r.u32().unwrap();
            e.max_uses = Some(r.u32().unwrap());
            r.u32().unwrap();
            path = r.pointer().unwrap();
            assert!(!r.pointer().unwrap(), "passwd");
            if level == 502 {
                assert_eq!(r.u32().unwrap(), 0);
                assert!(!r.pointer().unwrap(), "security descriptor");
            }
        }
        _ => {}
    }
    (e, [name, comment, path])
}

fn deferred(r: &mut NdrReader<'_>, e: &mut Entry, p: [bool; 3]) {
    e.name = opt_string(r, p[0]);
    e.comment = opt_string(r, p[1]);
    e.path = opt_string(r, p[2]);
}

/// (entries, total_entries, resume handle, status) of a NetrShareEnum answer.
pub(crate) fn decode_enum(stub: &[u8]) -> (u32, Vec<Entry>, u32, Option<u32>, u32) {
    let mut r = NdrReader::new(stub);
    let level = r.u32().unwrap();
    assert_eq!(r.u32().unwrap(), level);
    let mut entries = vec![];
    if super::share_info::is_pointer_arm(level) && r.pointer().unwrap() {
        let count = r.u32().unwrap();
        if r.pointer().unwrap() {
            assert_eq!(r.u32().unwrap(), count);
            let fixed: Vec<_> = (0..count).map(|_| fixed(&mut r, level)).collect();
            for (mut e, p) in fixed {
                deferred(&mut r, &mut e, p);
                entries.push(e);
            }
        }
    }
    let total = r.u32().unwrap();
    let resume = r.pointer().unwrap().then(|| r.u32().unwrap());
    let status = r.u32().unwrap();
    assert!(r.u32().is_err(), "trailing bytes");
    (level, entries, total, resume, status)
}

/// (entry, status) of a NetrShareGetInfo answer.
pub(crate) fn decode_get_info(stub: &[u8], level: u32) -> (Option<Entry>, u32) {
    let mut r = NdrReader::new(stub);
    assert_eq!(r.u32().unwrap(), level);
    let entry = r.pointer().unwrap().then(|| {
        let (mut e, p) = fixed(&mut r, level);
        deferred(&mut r, &mut e, p);
        e
    });
    let status = r.u32().unwrap();
    assert!(r.u32().is_err(), "trailing bytes");
    (entry, status)
}
