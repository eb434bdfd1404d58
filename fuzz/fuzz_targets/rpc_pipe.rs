//! The DCE/RPC named pipes (`rpc::open_pipe`: srvsvc, wkssvc) as SMB2
//! WRITE, READ and FSCTL_PIPE_TRANSCEIVE drive them.
//!
//! Input: one byte choosing the pipe (even: srvsvc, odd: wkssvc), then
//! operations, each a code byte, a u16-LE length and that many payload
//! bytes (fewer at the end of the input):
//! - code & 3 == 0: WRITE the payload;
//! - 1: READ with Length = the payload's first two bytes (LE, 0 if absent);
//! - 2: TRANSCEIVE the payload, MaxOutputResponse = 4280 << (code >> 6);
//! - 3: READ until the pipe has nothing queued (at most 64 reads).
#![no_main]

use libfuzzer_sys::fuzz_target;
use smbvault::rpc::{STYPE_DISKTREE, STYPE_IPC, STYPE_SPECIAL, ShareDirectory, ShareInfo, open_pipe};

struct Dir;

impl ShareDirectory for Dir {
    fn shares(&self) -> Vec<ShareInfo> {
        let share = |name: &str, share_type, comment: &str| ShareInfo {
            name: name.into(),
            share_type,
            comment: comment.into(),
            path: "C:\\".into(),
        };
        vec![
            share("data", STYPE_DISKTREE, ""),
            share("経理", STYPE_DISKTREE, "経理部の共有フォルダ"),
            share("IPC$", STYPE_IPC | STYPE_SPECIAL, "IPC Service"),
        ]
    }
    fn server_name(&self) -> String {
        "SMBVAULT".into()
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, mut rest)) = data.split_first() else { return };
    let name = if which & 1 == 0 { "srvsvc" } else { "\\PIPE\\wkssvc" };
    let mut pipe = open_pipe(name).expect("a served pipe");
    while let Some((&code, tail)) = rest.split_first() {
        let Some((len, tail)) = tail.split_first_chunk::<2>() else { return };
        let n = usize::from(u16::from_le_bytes(*len)).min(tail.len());
        let (payload, tail) = tail.split_at(n);
        rest = tail;
        match code & 3 {
            0 => {
                let _ = pipe.write(payload, &Dir);
            }
            1 => {
                let max = payload.first_chunk::<2>().map_or(0, |b| u16::from_le_bytes(*b));
                if let Ok(out) = pipe.read(usize::from(max)) {
                    assert!(out.len() <= usize::from(max), "READ returned more than asked");
                }
            }
            2 => {
                let max = 4280usize << (code >> 6);
                if let Ok(out) = pipe.transact(payload, max, &Dir) {
                    assert!(out.len() <= max, "TRANSCEIVE returned more than asked");
                }
            }
            _ => {
                for _ in 0..64 {
                    if !pipe.has_pending() || pipe.read(4280).is_err() {
                        break;
                    }
                }
            }
        }
    }
});
