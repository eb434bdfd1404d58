//! The load client (`protocol-tests/client`) against the real smbvault binary and,
//! when smbd is installed and we are root, a private Samba: every dialect,
//! signing with each algorithm, sealing with each cipher, pipelined 1 MiB
//! transfers, listing, compound stat and delete, and a wrong password.

#[path = "../common/mod.rs"]
mod common;
// The load client is not part of the server library; the benchmark shares it.
#[path = "../client/mod.rs"]
#[allow(dead_code, unused_imports, reason = "smbbench and this test each use part of the client's API")]
mod client;

use std::net::SocketAddr;
use std::path::Path;

use client::transfer::{self, Pipeline};
use client::{Config, CreateSpec, Error, Tree};
use common::*;
use smbvault::crypto::{CipherId, SigningAlg};
use smbvault::wire::NtStatus;
use smbvault::wire::negotiate::Dialect;

const ALL: [Dialect; 5] = [Dialect::SMB202, Dialect::SMB21, Dialect::SMB30, Dialect::SMB302, Dialect::SMB311];

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

fn content(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) ^ (i >> 12) as u8).collect()
}

/// Writes, reads back, lists, stats and deletes one file; returns what the
/// session negotiated, for the caller's assertions.
async fn exercise(cfg: &Config, share: &str, size: usize) -> Result<(client::SessionInfo, bool), Error> {
    let session = client::connect(cfg).await?;
    let tree: Tree = session.tree_connect(share).await?;
    let dir = format!("e2e-{}", session.info().session_id);
    tree.mkdir(&dir).await?;
    let name = format!("{dir}\\data.bin");
    let data = content(size, cfg.dialects[0].0 as u8);
    let p = Pipeline { chunk: 1 << 20, depth: 4 };
    let f = tree.create(&name, &CreateSpec::overwrite()).await?;
    let wrote = transfer::write_all(&tree, f.file_id, size as u64, p, |o, b| {
        b.copy_from_slice(&data[o as usize..o as usize + b.len()]);
    })
    .await?;
    assert_eq!(wrote, size as u64);
    tree.close(f.file_id).await?;
    let f = tree.create(&name, &CreateSpec::read()).await?;
    assert_eq!(f.end_of_file, size as u64);
    let mut back = vec![0u8; size];
    transfer::read_all(&tree, f.file_id, size as u64, p, |o, d| {
        back[o as usize..o as usize + d.len()].copy_from_slice(d);
    })
    .await?;
    tree.close(f.file_id).await?;
    assert!(back == data, "content differs");
    let names: Vec<String> = tree.list(&dir).await?.into_iter().map(|e| e.name).collect();
    assert!(names.contains(&"data.bin".to_string()), "{names:?}");
    assert_eq!(tree.stat(&name).await?.standard.end_of_file, size as u64);
    tree.delete(&name).await?;
    let gone = tree.create(&name, &CreateSpec::read()).await;
    assert!(matches!(gone, Err(Error::Status { status: NtStatus::OBJECT_NAME_NOT_FOUND, .. })), "{gone:?}");
    tree.delete(&dir).await?;
    let sealed = tree.connection().encrypting();
    tree.disconnect().await?;
    session.logoff().await?;
    Ok((session.info().clone(), sealed))
}

fn cfg(addr: SocketAddr, domain: &str, pass: &str, dialect: Dialect) -> Config {
    let mut c = Config::new(addr, "alice", domain, pass);
    c.dialects = vec![dialect];
    c
}

/// Signing at every dialect; each 3.1.1 signing algorithm; then sealing
/// with each cipher on a server that requires encryption.
#[test]
fn against_smbvault() {
    let rt = rt();
    let plain = TestServer::start_with(Options { security: vec!["encryption = \"off\"".into()], ..Options::default() });
    plain.add_user("DEFAULT\\alice", PASS);
    let addr: SocketAddr = ([127, 0, 0, 1], plain.port).into();
    for d in ALL {
        let (info, sealed) = rt.block_on(exercise(&cfg(addr, "DEFAULT", PASS, d), "share", 3 << 20)).unwrap();
        assert_eq!((info.dialect, sealed), (d, false));
    }
    for alg in [SigningAlg::AesGmac, SigningAlg::AesCmac] {
        let mut c = cfg(addr, "DEFAULT", PASS, Dialect::SMB311);
        c.signing = vec![alg];
        let (info, _) = rt.block_on(exercise(&c, "share", 1 << 20)).unwrap();
        assert_eq!(info.signing, alg);
    }
    let bad = rt.block_on(client::connect(&cfg(addr, "DEFAULT", "wrong-password-1", Dialect::SMB311)));
    assert!(matches!(bad, Err(Error::Status { status: NtStatus::LOGON_FAILURE, .. })), "{:?}", bad.err());

    let enc = TestServer::start();
    enc.add_user("DEFAULT\\alice", PASS);
    let addr: SocketAddr = ([127, 0, 0, 1], enc.port).into();
    for cipher in [CipherId::Aes128Gcm, CipherId::Aes128Ccm, CipherId::Aes256Gcm, CipherId::Aes256Ccm] {
        let mut c = cfg(addr, "DEFAULT", PASS, Dialect::SMB311);
        c.ciphers = vec![cipher];
        let (info, sealed) = rt.block_on(exercise(&c, "share", 3 << 20)).unwrap();
        assert_eq!((info.cipher, sealed), (Some(cipher), true));
    }
    let (info, sealed) = rt.block_on(exercise(&cfg(addr, "DEFAULT", PASS, Dialect::SMB30), "share", 1 << 20)).unwrap();
    assert_eq!((info.cipher, sealed), (Some(CipherId::Aes128Ccm), true));
}

/// A private Samba started by protocol-tests/bench/samba.sh.
struct Samba(std::path::PathBuf, u16);

impl Samba {
    fn start(dir: &Path) -> Option<Self> {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("protocol-tests/bench/samba.sh");
        let port = std::net::TcpListener::bind("127.0.0.1:0").ok()?.local_addr().ok()?.port();
        let out =
            std::process::Command::new(&script).arg("up").arg(dir).arg(port.to_string()).arg(PASS).output().ok()?;
        out.status.success().then(|| Self(dir.to_path_buf(), port))
    }
}

impl Drop for Samba {
    fn drop(&mut self) {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("protocol-tests/bench/samba.sh");
        let _ = std::process::Command::new(script).arg("down").arg(&self.0).output();
    }
}

/// Samba accepts our NTLMv2, signatures and sealed messages at every
/// dialect. Skipped (with a note) when smbd is missing or we are not root.
#[test]
fn against_samba() {
    let have_smbd = std::process::Command::new("smbd").arg("--version").output().is_ok();
    let tmp = tempfile::tempdir().unwrap();
    let Some(samba) = have_smbd.then(|| Samba::start(tmp.path())).flatten() else {
        eprintln!("skipped: no smbd, or samba.sh could not start it (needs root)");
        return;
    };
    let rt = rt();
    let addr: SocketAddr = ([127, 0, 0, 1], samba.1).into();
    for d in ALL {
        let (info, sealed) = rt.block_on(exercise(&cfg(addr, "WORKGROUP", PASS, d), "data", 3 << 20)).unwrap();
        assert_eq!((info.dialect, sealed), (d, false));
    }
    for cipher in [CipherId::Aes128Gcm, CipherId::Aes256Ccm] {
        let mut c = cfg(addr, "WORKGROUP", PASS, Dialect::SMB311);
        c.ciphers = vec![cipher];
        // The [enc] share turns sealing on at TREE_CONNECT (SMB2_SHAREFLAG_ENCRYPT_DATA).
        let (info, sealed) = rt.block_on(exercise(&c, "enc", 3 << 20)).unwrap();
        assert_eq!((info.cipher, sealed), (Some(cipher), true));
    }
    let mut c = cfg(addr, "WORKGROUP", PASS, Dialect::SMB302);
    c.encrypt = true;
    let (_, sealed) = rt.block_on(exercise(&c, "data", 1 << 20)).unwrap();
    assert!(sealed);
    let bad = rt.block_on(client::connect(&cfg(addr, "WORKGROUP", "wrong-password-1", Dialect::SMB311)));
    assert!(matches!(bad, Err(Error::Status { status: NtStatus::LOGON_FAILURE, .. })), "{:?}", bad.err());
}
