//! Upgrade path of the record format (docs/storage-format.md §12): a data
//! directory written by the release before record version 2 (all records
//! AES-256-CTR + HMAC-SHA256; `protocol-tests/fixtures/store-format1.tar`,
//! made by `make_format1_fixture` below with that release's binary) is
//! served by this binary byte for byte, before and after `smbvault storage
//! migrate`; the migration asks first, is audited, and leaves only
//! version 2 (XAES-256-GCM) records; and a damaged record fails closed, as
//! an I/O error and never as other bytes, in both formats.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use smbvault::storage::debug::{OVERHEAD, SEG_HEADER_LEN, record_plen, record_version};

const FIXTURE: &str = "protocol-tests/fixtures/store-format1.tar";
const SHARE: &str = "docs";
const USER: &str = "ACME\\alice";

/// (name on the share, length, seed of `random_file`): partial, whole and
/// many chunks, a Japanese name, a subdirectory.
const FILES: [(&str, usize, u64); 5] = [
    ("small.txt", 10, 1),
    ("report.bin", 300 * 1024 + 17, 2),
    ("日本語の資料.txt", 70_000, 3),
    ("dir/inner.bin", 65_536, 4),
    ("big.bin", (1 << 20) + 123, 5),
];

fn ok(o: &std::process::Output, what: &str) -> String {
    assert!(o.status.success(), "{what}: {}", text(o));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn expected(work: &Path) -> Vec<String> {
    FILES.iter().map(|(_, len, seed)| random_file(&work.join(format!("want{seed}")), *len, *seed)).collect()
}

/// Reads every file over SMB; returns each one's SHA-256 or the error text.
fn read_all(s: &TestServer, work: &Path, tag: &str) -> Vec<Result<String, String>> {
    FILES
        .iter()
        .map(|(name, _, seed)| {
            let local = work.join(format!("{tag}{seed}"));
            let _ = std::fs::remove_file(&local);
            let o = s.smbclient(SHARE, USER, PASS, &[], &format!("get \"{name}\" \"{}\"", local.display()));
            let t = text(&o);
            if o.status.success() && !t.contains("NT_STATUS_") { Ok(sha256_file(&local)) } else { Err(t) }
        })
        .collect()
}

/// The storage segments (not the audit logs, also `*.seg`).
fn segments(data: &Path) -> Vec<PathBuf> {
    walk(&data.join("store/orgs")).into_iter().filter(|p| p.extension().is_some_and(|e| e == "seg")).collect()
}

/// (version 1, version 2) records in every segment; with `flip`, one
/// ciphertext bit of every record is flipped too.
fn scan(data: &Path, flip: bool) -> (usize, usize) {
    let (mut v1, mut v2) = (0, 0);
    for p in segments(data) {
        let mut b = std::fs::read(&p).unwrap();
        let mut pos = SEG_HEADER_LEN as usize;
        while pos + OVERHEAD <= b.len() {
            let plen = record_plen(&b[pos..]).expect("record header") as usize;
            match record_version(&b[pos..]) {
                Some(1) => v1 += 1,
                Some(2) => v2 += 1,
                v => panic!("record version {v:?} in {}", p.display()),
            }
            if flip {
                b[pos + 64 + plen / 2] ^= 0x20;
            }
            pos += plen + OVERHEAD;
        }
        if flip {
            std::fs::write(&p, &b).unwrap();
        }
    }
    (v1, v2)
}

fn copy_dir(from: &Path, to: &Path) {
    let _ = std::fs::remove_dir_all(to);
    let st = Command::new("cp").arg("-a").arg(from).arg(to).status().unwrap();
    assert!(st.success());
}

/// Every damaged file fails to read (an I/O error), none reads other bytes.
fn all_fail_closed(s: &mut TestServer, work: &Path, tag: &str) {
    s.spawn();
    for (r, (name, ..)) in read_all(s, work, tag).into_iter().zip(FILES) {
        let e = r.expect_err(&format!("{tag}: {name} read despite a damaged record"));
        assert!(e.contains("NT_STATUS_IO_DEVICE_ERROR") || e.contains("NT_STATUS_"), "{tag}: {name}: {e}");
    }
    s.stop();
    assert!(s.log_text().contains("stored chunk failed its integrity check"), "{tag}: logged");
}

#[test]
fn a_format1_store_is_served_byte_for_byte_before_and_after_migrate() {
    let work = tempfile::tempdir().unwrap();
    let want = expected(work.path());
    let mut s = TestServer::unstarted(Options::default());
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let st = Command::new("tar").arg("-xf").arg(root.join(FIXTURE)).arg("-C").arg(s.dir.path()).status().unwrap();
    assert!(st.success(), "unpack the fixture");
    let data = s.data_dir();
    let (v1, v2) = scan(&data, false);
    assert!(v1 >= 25 && v2 == 0, "the fixture holds only version 1 records: {v1} {v2}");

    // 1. The new binary serves the old store as it is.
    s.spawn();
    let got = read_all(&s, work.path(), "before");
    for ((g, w), (name, ..)) in got.iter().zip(&want).zip(FILES) {
        assert_eq!(g.as_ref().map_err(Clone::clone), Ok(w), "before migrate: {name}");
    }
    // New writes are version 2, next to the version 1 records.
    let extra = work.path().join("new.bin");
    let extra_sum = random_file(&extra, 200_000, 9);
    ok(&s.smbclient(SHARE, USER, PASS, &[], &format!("put \"{}\" new.bin", extra.display())), "put");
    s.stop();
    let (v1b, v2b) = scan(&data, false);
    assert_eq!(v1b, v1, "reading rewrites nothing");
    assert!(v2b >= 4, "new records are version 2: {v2b}");

    // 2. Damaged version 1 records fail closed (on a copy).
    let keep = s.dir.path().join("data.keep");
    copy_dir(&data, &keep);
    scan(&data, true);
    all_fail_closed(&mut s, work.path(), "tampered-v1");
    copy_dir(&keep, &data);

    // 3. `storage migrate` asks first; --dry-run counts; --yes migrates.
    let o = s.cli(&["storage", "migrate"], None, &[]);
    assert_eq!(o.status.code(), Some(4), "refused without confirmation: {}", text(&o));
    assert!(text(&o).contains("not confirmed"), "{}", text(&o));
    let o = s.cli(&["storage", "migrate", "--dry-run"], None, &[]);
    assert!(ok(&o, "dry run").contains(&format!("rewrite {v1} record(s)")), "{}", text(&o));
    assert_eq!(scan(&data, false).0, v1, "a dry run changes nothing");
    let out = ok(&s.cli(&["storage", "migrate", "--yes"], None, &[]), "migrate");
    assert!(out.contains(&format!("{v1} record(s)")), "{out}");
    let (v1c, v2c) = scan(&data, false);
    assert_eq!(v1c, 0, "no version 1 record is left");
    assert!(v2c >= v1 + v2b, "{v2c}");
    let again = ok(&s.cli(&["storage", "migrate", "--yes"], None, &[]), "migrate again");
    assert!(again.contains("nothing to migrate"), "{again}");
    let srv = ok(&s.cli(&["logs", "operations", "--org", "server", "--format", "jsonl"], None, &[]), "server log");
    assert!(srv.contains("\"storage.migrate\""), "the migration is audited: {srv}");

    // 4. Served byte for byte after the migration.
    s.spawn();
    let o = s.cli(&["storage", "migrate", "--yes"], None, &[]);
    assert!(!o.status.success() && text(&o).contains("server is running"), "{}", text(&o));
    let got = read_all(&s, work.path(), "after");
    for ((g, w), (name, ..)) in got.iter().zip(&want).zip(FILES) {
        assert_eq!(g.as_ref().map_err(Clone::clone), Ok(w), "after migrate: {name}");
    }
    let back = work.path().join("new.back");
    ok(&s.smbclient(SHARE, USER, PASS, &[], &format!("get new.bin \"{}\"", back.display())), "get new");
    assert_eq!(sha256_file(&back), extra_sum);
    s.stop();

    // 5. Damaged version 2 records fail closed too.
    scan(&data, true);
    all_fail_closed(&mut s, work.path(), "tampered-v2");
}

/// Writes the fixture with the binary in `SMBVAULT_TEST_BIN` (the release
/// before record version 2):
/// `SMBVAULT_TEST_BIN=/path/to/old/smbvault cargo test --release --test upgrade -- --ignored`.
#[test]
#[ignore = "writes protocol-tests/fixtures/store-format1.tar with an old binary"]
fn make_format1_fixture() {
    assert!(std::env::var("SMBVAULT_TEST_BIN").is_ok(), "set SMBVAULT_TEST_BIN to the old binary");
    let work = tempfile::tempdir().unwrap();
    let s = TestServer::start();
    s.admin(&["org", "add", "ACME"]);
    s.add_user(USER, PASS);
    s.admin(&["share", "add", SHARE, "--org", "ACME"]);
    ok(&s.smbclient(SHARE, USER, PASS, &[], "mkdir dir"), "mkdir");
    for (name, len, seed) in FILES {
        let local = work.path().join(format!("f{seed}"));
        random_file(&local, len, seed);
        ok(&s.smbclient(SHARE, USER, PASS, &[], &format!("put \"{}\" \"{name}\"", local.display())), "put");
    }
    let mut s = s;
    s.stop();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let st = Command::new("tar")
        .arg("-cf")
        .arg(root.join(FIXTURE))
        .arg("-C")
        .arg(s.dir.path())
        .args(["--owner=0", "--group=0", "--exclude=server.lock", "data", "keys"])
        .status()
        .unwrap();
    assert!(st.success());
}
