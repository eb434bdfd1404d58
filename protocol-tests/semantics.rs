//! Issue 5: Windows/NTFS semantics that smbtorture does not cover well,
//! end to end with Python smbprotocol (protocol-tests/python/semantics.py)
//! against the real server: Unicode normalization, forbidden and macOS
//! private-use characters, server-side copy under a new key, and state
//! shared between connections (delete-on-close, blocking locks).

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use common::*;

fn server() -> TestServer {
    let s = TestServer::start();
    s.add_user("DEFAULT\\alice", PASS);
    s
}

/// Runs one check of semantics.py as alice and returns its stdout.
fn check(s: &TestServer, name: &str, extra: &[&str]) -> String {
    check_as(s, "DEFAULT\\alice", name, extra)
}

fn check_as(s: &TestServer, user: &str, name: &str, extra: &[&str]) -> String {
    let port = s.port.to_string();
    let mut args = vec!["127.0.0.1", &port, "share", user, PASS, name];
    args.extend_from_slice(extra);
    let o = python("semantics.py", &args);
    let out = text(&o);
    assert!(o.status.success() && out.contains("ok"), "{name}: {out}");
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// パ written as U+30D1 (NFC, Windows) and as U+30CF U+309A (NFD, macOS)
/// is one file: the second spelling opens the first and cannot create a twin.
#[test]
fn nfc_and_nfd_japanese_names_reach_one_file() {
    check(&server(), "nfc", &[]);
}

/// `* ? < > | "` and control characters: STATUS_OBJECT_NAME_INVALID.
#[test]
fn forbidden_characters_are_refused() {
    check(&server(), "forbidden", &[]);
}

/// The private-use substitutes macOS sends for `: * ?` are stored and
/// listed exactly as sent.
#[test]
fn private_use_characters_are_kept() {
    check(&server(), "private", &[]);
}

/// The share permission is the ceiling: a user with read access to the
/// share reads, and every write, create, overwrite or delete is ACCESS_DENIED.
#[test]
fn read_only_share_user_cannot_modify() {
    let s = server();
    s.add_user("DEFAULT\\carol", PASS);
    s.admin(&["share", "grant", "--user", "carol", "share", "read"]);
    check(&s, "seed", &["seeded.txt"]);
    check_as(&s, "DEFAULT\\carol", "readonly", &["seeded.txt"]);
}

/// Delete-on-close from one connection waits for another connection's
/// handle; meanwhile opens get STATUS_DELETE_PENDING.
#[test]
fn delete_on_close_across_two_connections() {
    check(&server(), "doc", &[]);
}

/// A blocking LOCK on one connection goes pending and completes when
/// another connection unlocks.
#[test]
fn blocking_lock_completes_across_connections() {
    check(&server(), "lock", &[]);
}

/// FSCTL_SRV_COPYCHUNK_WRITE: the copy reads back identical, the plaintext
/// appears nowhere on disk, and no ciphertext of the source was duplicated
/// (the copy is re-encrypted under its own key with fresh IVs).
#[test]
fn server_side_copy_reencrypts() {
    let s = server();
    let out = check(&s, "copy", &["1048576"]);
    let mut lines = out.lines();
    let _sha = lines.next().expect("sha256 line");
    let window = hex::decode(lines.next().expect("plaintext window")).expect("hex");
    // Let the store commit so that both copies are on disk.
    std::thread::sleep(std::time::Duration::from_secs(3));
    let data = s.data_dir();
    assert!(grep_tree(&data, &window).is_empty(), "plaintext found in the data directory");
    // Chunk ciphertext lives in the organizations' segment files
    // (store/orgs/<org>/seg/); the SQLite journals legitimately repeat pages.
    let files: Vec<_> = all_files(&data.join("store/orgs"))
        .into_iter()
        .filter(|(p, _)| p.components().any(|c| c.as_os_str() == "seg"))
        .collect();
    assert!(files.iter().map(|(_, b)| b.len()).sum::<usize>() >= 2 << 20, "both copies should be in segments");
    if let Some((a, b)) = duplicated_run(&files, 1024) {
        panic!("the same 1 KiB of ciphertext is stored twice: {a} and {b}");
    }
}

fn all_files(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    walk(dir).into_iter().filter(|p| p.is_file()).filter_map(|p| std::fs::read(&p).ok().map(|b| (p, b))).collect()
}

/// Looks for a run of at least `min` identical high-entropy bytes stored at
/// two places: 32-byte windows at every 64th offset are indexed, every
/// offset of every file is looked up, and a hit is extended byte by byte.
fn duplicated_run(files: &[(PathBuf, Vec<u8>)], min: usize) -> Option<(String, String)> {
    const W: usize = 32;
    let varied = |w: &[u8]| {
        let mut seen = [false; 256];
        w.iter().filter(|&&b| !std::mem::replace(&mut seen[b as usize], true)).count() >= 24
    };
    let mut index: HashMap<&[u8], (usize, usize)> = HashMap::new();
    for (fi, (_, b)) in files.iter().enumerate() {
        for off in (0..b.len().saturating_sub(W)).step_by(64) {
            let w = &b[off..off + W];
            if varied(w) {
                index.entry(w).or_insert((fi, off));
            }
        }
    }
    for (fj, (pj, b)) in files.iter().enumerate() {
        for off in 0..b.len().saturating_sub(W) {
            let Some(&(fi, oi)) = index.get(&b[off..off + W]) else { continue };
            if fi == fj && oi == off {
                continue;
            }
            let a = &files[fi].1;
            let n = a[oi..].iter().zip(&b[off..]).take_while(|(x, y)| x == y).count();
            if n >= min {
                return Some((format!("{}@{oi}", files[fi].0.display()), format!("{}@{off}", pj.display())));
            }
        }
    }
    None
}

/// The detector above finds a copied run and ignores unrelated data.
#[test]
fn duplicate_detector_finds_copies() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    random_file(&a, 256 << 10, 7);
    random_file(&b, 256 << 10, 8);
    let mut files = vec![(a.clone(), std::fs::read(&a).unwrap()), (b.clone(), std::fs::read(&b).unwrap())];
    assert!(duplicated_run(&files, 1024).is_none());
    let run = files[0].1[5000..7000].to_vec();
    files[1].1[100_003..102_003].copy_from_slice(&run);
    assert!(duplicated_run(&files, 1024).is_some());
}
