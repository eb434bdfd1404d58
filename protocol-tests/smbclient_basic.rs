//! Issue 3 end to end: real smbclient against the real server binary.

mod common;

use common::*;

const DIALECTS: [&str; 5] = ["SMB2_02", "SMB2_10", "SMB3_00", "SMB3_02", "SMB3_11"];

/// Every dialect: ls, mkdir, put and get of a 100 MiB random file with an
/// identical SHA-256, allinfo, rename, del, rmdir.
#[test]
fn every_dialect_moves_100_mib_intact() {
    let s = TestServer::start_with(encryption_desired());
    s.add_user("DEFAULT\\alice", PASS);
    let src = s.dir.path().join("big.bin");
    let want = random_file(&src, 100 << 20, 3);
    for (i, m) in DIALECTS.iter().enumerate() {
        let back = s.dir.path().join(format!("back-{m}.bin"));
        let cmds = format!(
            "mkdir d{i}; cd d{i}; put {src} big.bin; ls; allinfo big.bin; get big.bin {back}; \
             rename big.bin renamed.bin; ls; del renamed.bin; cd ..; rmdir d{i}; ls",
            src = src.display(),
            back = back.display()
        );
        let o = s.smbclient("share", "DEFAULT\\alice", PASS, &["-m", m], &cmds);
        let out = text(&o);
        assert!(o.status.success(), "{m}: {out}");
        assert!(!out.contains("NT_STATUS_") || out.contains("getting alt name"), "{m}: {out}");
        assert!(out.contains("renamed.bin"), "{m}: rename not listed: {out}");
        assert!(out.contains("create_time:"), "{m}: allinfo: {out}");
        assert_eq!(sha256_file(&back), want, "{m}: content differs");
        let after = s.smbclient("share", "DEFAULT\\alice", PASS, &["-m", m], "ls");
        assert!(!text(&after).contains(&format!("d{i}")), "{m}: rmdir left the directory");
    }
}

/// Wrong password and unknown user both get LOGON_FAILURE; an unknown share
/// BAD_NETWORK_NAME; `smbclient -L` lists the shares over srvsvc.
#[test]
fn failures_and_share_list() {
    let s = TestServer::start();
    s.add_user("DEFAULT\\alice", PASS);
    let wrong = s.smbclient("share", "DEFAULT\\alice", "not-the-password", &[], "ls");
    assert!(text(&wrong).contains("NT_STATUS_LOGON_FAILURE"), "{}", text(&wrong));
    let unknown = s.smbclient("share", "DEFAULT\\nobody", PASS, &[], "ls");
    assert!(text(&unknown).contains("NT_STATUS_LOGON_FAILURE"), "{}", text(&unknown));
    let noshare = s.smbclient("nosuchshare", "DEFAULT\\alice", PASS, &[], "ls");
    assert!(text(&noshare).contains("NT_STATUS_BAD_NETWORK_NAME"), "{}", text(&noshare));
    let mut cmd = std::process::Command::new("smbclient");
    cmd.args(["-L", "//127.0.0.1", "-p", &s.port.to_string(), "-U", &format!("DEFAULT\\alice%{PASS}")]);
    let list = text(&timed_output(cmd, std::time::Duration::from_secs(60)));
    assert!(list.contains("share") && list.contains("Disk"), "{list}");
    assert!(list.contains("IPC$"), "{list}");
}

/// Eight clients at once, each putting and getting its own file.
#[test]
fn eight_parallel_clients() {
    let s = TestServer::start();
    s.add_user("DEFAULT\\alice", PASS);
    let port = s.port;
    let dir = s.dir.path().to_path_buf();
    let handles: Vec<_> = (0..8)
        .map(|i| {
            let dir = dir.clone();
            std::thread::spawn(move || {
                let src = dir.join(format!("p{i}.bin"));
                let back = dir.join(format!("p{i}.back"));
                let want = random_file(&src, (4 << 20) + i * 4099, 100 + i as u64);
                let cmds = format!("put {} p{i}.bin; get p{i}.bin {}", src.display(), back.display());
                let o = smbclient(port, "share", "DEFAULT\\alice", PASS, &[], &cmds);
                assert!(o.status.success(), "client {i}: {}", text(&o));
                assert_eq!(sha256_file(&back), want, "client {i}");
            })
        })
        .collect();
    for h in handles {
        h.join().expect("client thread");
    }
}

/// Python smbprotocol at 3.1.1 writes, reads back and deletes a 10 MiB file.
#[test]
fn python_smbprotocol_round_trip() {
    let s = TestServer::start();
    s.add_user("DEFAULT\\alice", PASS);
    let o = python("roundtrip.py", &["127.0.0.1", &s.port.to_string(), "share", "DEFAULT\\alice", PASS, "10485760"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("OK"), "{}", text(&o));
}
