//! Issue 5: what macOS Finder does, end to end with Python smbprotocol
//! (protocol-tests/python/mac.py) against the real server: the AAPL server
//! query, the AFP_AfpInfo and AFP_Resource streams, NFC/NFD names,
//! `.DS_Store` and `._` files, Finder tags, labels and comments, and a
//! 5,000-file folder listed in one enumeration with its Finder metadata
//! (READDIR_ATTR).

mod common;

use common::*;

fn server() -> TestServer {
    let s = TestServer::start();
    s.add_user("DEFAULT\\alice", PASS);
    s
}

/// Runs one check of mac.py as alice and returns its stdout.
fn check(s: &TestServer, name: &str, extra: &[&str]) -> String {
    let port = s.port.to_string();
    let mut args = vec!["127.0.0.1", &port, "share", "DEFAULT\\alice", PASS, name];
    args.extend_from_slice(extra);
    let o = python("mac.py", &args);
    let out = text(&o);
    assert!(o.status.success() && out.contains("ok"), "{name}: {out}");
    eprintln!("{name}: {}", String::from_utf8_lossy(&o.stdout).trim());
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The AAPL server query answers with READ_DIR_ATTR among the server
/// capabilities, the volume capabilities and the model string.
#[test]
fn aapl_server_query() {
    let out = check(&server(), "aapl", &[]);
    assert!(out.contains("model=smbvault"), "{out}");
}

/// Finder info and resource fork streams round-trip; a malformed AfpInfo
/// write is refused; an AfpInfo with empty FinderInfo deletes the stream.
#[test]
fn afp_info_and_resource_fork_streams() {
    check(&server(), "streams", &[]);
}

/// Issue 17: a file tagged (com.apple.metadata:_kMDItemUserTags, bytes from
/// a Mac), labelled red (Finder flags in AFP_AfpInfo, laid out as Samba's
/// smbtorture writes it) and commented (kMDItemFinderComment) the way
/// macOS does it lists with its label through READDIR_ATTR and reads back
/// intact on a new connection (sources of the bytes: mac.py `check_finder`).
#[test]
fn finder_tags_label_and_comment_round_trip() {
    let out = check(&server(), "finder", &[]);
    assert!(out.contains("label 6"), "{out}");
}

/// café and パスポート written in NFD (macOS) and NFC (Windows) reach one file.
#[test]
fn nfc_and_nfd_names_reach_one_file() {
    check(&server(), "nfc", &[]);
}

/// `.DS_Store` and `._name` files are ordinary files.
#[test]
fn ds_store_and_apple_double_files_are_ordinary() {
    check(&server(), "dotfiles", &[]);
}

/// A folder of 5,000 files is listed in one QUERY_DIRECTORY enumeration
/// with READDIR_ATTR data for every entry (max access, resource fork
/// length, compressed FinderInfo, mode); the time is printed.
#[test]
fn big_folder_lists_with_finder_metadata_in_one_pass() {
    let out = check(&server(), "bigdir", &["5000"]);
    assert!(out.contains("listed 5002 entries"), "{out}");
}
