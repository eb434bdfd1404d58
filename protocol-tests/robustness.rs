//! Issue 3: bad input never wins. Garbage, truncated, oversized and mutated
//! frames on some connections must not disturb a transfer on another, and
//! nothing a client stored appears in clear under the data directory.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::*;

/// smbclient's real NEGOTIATE and SESSION_SETUP requests (from the captures).
const NEGOTIATE: &[u8] = include_bytes!("fixtures/smb311/frame4.bin");
const SETUP1: &[u8] = include_bytes!("fixtures/smb311/frame8.bin");

fn send_raw(port: u16, bytes: &[u8]) {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else { return };
    let _ = s.set_read_timeout(Some(Duration::from_millis(300)));
    let _ = s.write_all(bytes);
    let mut sink = [0u8; 4096];
    let _ = s.read(&mut sink);
}

fn framed(msg: &[u8]) -> Vec<u8> {
    let mut v = vec![0, (msg.len() >> 16) as u8, (msg.len() >> 8) as u8, msg.len() as u8];
    v.extend_from_slice(msg);
    v
}

/// A deterministic stream of hostile inputs.
fn hostile_inputs() -> Vec<Vec<u8>> {
    let mut rng: u64 = 0x5EED_1234_ABCD_0001;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let mut v: Vec<Vec<u8>> = vec![
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        vec![0x00, 0xFF, 0xFF, 0xFF], // oversized prefix
        vec![0x85, 0, 0, 0],          // NetBIOS keepalive-ish garbage
        framed(&NEGOTIATE[..40]),     // truncated header
        framed(&NEGOTIATE[..70]),     // truncated body
        {
            let mut f = framed(NEGOTIATE);
            f.truncate(f.len() - 10); // prefix promises more than is sent
            f
        },
        [framed(NEGOTIATE), framed(NEGOTIATE)].concat(), // second NEGOTIATE
        [framed(NEGOTIATE), framed(&[0xAAu8; 200])].concat(),
        [framed(NEGOTIATE), framed(SETUP1), framed(&SETUP1[..90])].concat(),
        framed(&[0xFD, b'S', b'M', b'B', 0, 0, 0, 0]), // transform before negotiate
        framed(&[0xFC, b'S', b'M', b'B', 1, 2, 3, 4]), // compression transform
    ];
    // Random single-byte and multi-byte mutations of real requests.
    for _ in 0..150 {
        let mut m = if next() % 2 == 0 { NEGOTIATE.to_vec() } else { SETUP1.to_vec() };
        for _ in 0..(1 + next() % 6) {
            let i = (next() as usize) % m.len();
            m[i] = next() as u8;
        }
        let seq = if next() % 3 == 0 { [framed(NEGOTIATE), framed(&m)].concat() } else { framed(&m) };
        v.push(seq);
    }
    for _ in 0..30 {
        let len = (next() % 2000) as usize;
        v.push((0..len).map(|_| next() as u8).collect());
    }
    v
}

#[test]
fn hostile_frames_do_not_disturb_a_transfer() {
    let s = TestServer::start();
    s.add_user("DEFAULT\\alice", PASS);
    let src = s.dir.path().join("big.bin");
    let want = random_file(&src, 200 << 20, 9);
    let back = s.dir.path().join("back.bin");
    let port = s.port;
    let (src2, back2) = (src.clone(), back.clone());
    let transfer = std::thread::spawn(move || {
        let cmds = format!("put {} big.bin; get big.bin {}", src2.display(), back2.display());
        smbclient(port, "share", "DEFAULT\\alice", PASS, &[], &cmds)
    });
    let inputs = hostile_inputs();
    let attackers: Vec<_> = inputs
        .chunks(inputs.len() / 4 + 1)
        .map(|chunk| {
            let chunk = chunk.to_vec();
            std::thread::spawn(move || {
                for bytes in chunk {
                    send_raw(port, &bytes);
                }
            })
        })
        .collect();
    for a in attackers {
        a.join().unwrap();
    }
    let out = transfer.join().unwrap();
    assert!(out.status.success(), "transfer failed: {}", text(&out));
    assert_eq!(sha256_file(&back), want, "transfer corrupted");
    // The server still serves new clients.
    let ls = s.smbclient("share", "DEFAULT\\alice", PASS, &[], "ls");
    assert!(ls.status.success() && text(&ls).contains("big.bin"), "{}", text(&ls));
    assert!(!s.log_text().contains("panicked"), "server panicked:\n{}", s.log_text());
}

/// After real traffic, no file content marker and no file name (ASCII or
/// Japanese, UTF-8 or UTF-16LE) appears anywhere under the data directory.
#[test]
fn nothing_in_clear_under_the_data_directory() {
    // Debug logging on: diagnostics must not carry names either.
    let mut s = TestServer::start_with(Options { log: Some("smbvault=debug".into()), ..Options::default() });
    s.add_user("DEFAULT\\alice", PASS);
    let marker = "CLEARTEXT-MARKER-93a1f0";
    let names = ["secret-plan-q7zxk.txt", "極秘計画書-q7zxk.txt"];
    let local = s.dir.path().join("m.txt");
    let body: String = std::iter::repeat_n(marker, 20_000).collect::<Vec<_>>().join("\n");
    std::fs::write(&local, &body).unwrap();
    let mut cmds = String::from("mkdir 部署フォルダ-q7zxk; ");
    for n in names {
        cmds += &format!("put {} \"{n}\"; put {} \"部署フォルダ-q7zxk\\{n}\"; ", local.display(), local.display());
    }
    let o = s.smbclient("share", "DEFAULT\\alice", PASS, &[], &cmds);
    assert!(o.status.success(), "{}", text(&o));
    let ls = s.smbclient("share", "DEFAULT\\alice", PASS, &[], "ls");
    assert!(text(&ls).contains("q7zxk"), "{}", text(&ls));
    s.stop_keep();
    let data = s.data_dir();
    let mut needles: Vec<Vec<u8>> = vec![marker.as_bytes().to_vec()];
    for n in names.iter().chain(["部署フォルダ-q7zxk"].iter()) {
        needles.push(n.as_bytes().to_vec());
        needles.push(utf16(n));
    }
    // Not hex digits: the data directory and the debug log hold hex ids
    // and digests, where a hex token can turn up by chance.
    needles.push(b"q7zxk".to_vec());
    needles.push(utf16("q7zxk"));
    let log = std::fs::read(&s.log).unwrap();
    assert!(log.len() > 1000, "debug log is empty?");
    for n in &needles {
        let hits = grep_tree(&data, n);
        assert!(hits.is_empty(), "{:?} found in clear in {hits:?}", String::from_utf8_lossy(n));
        assert!(!log.windows(n.len()).any(|w| w == &n[..]), "{:?} in the server's log", String::from_utf8_lossy(n));
    }
}
