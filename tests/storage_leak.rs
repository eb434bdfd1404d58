//! Leak test: distinctive markers in file and directory names, stream
//! names, EAs, security descriptors and content (ASCII and Japanese) must
//! not appear anywhere under the data directory, in UTF-8 or UTF-16
//! (either byte order): not in segments, meta.db, keys.db, WAL or shm.

use std::path::Path;

use smbvault::keys::{Key32, MasterKey};
use smbvault::storage::{NodeKind, Store, StoreOptions};
use smbvault::types::{FileTime, OrgId};

const MARKERS: [&str; 3] = ["MARKER-7f3a", "機密マーカー", "marker-7f3a"];

fn encodings(s: &str) -> Vec<Vec<u8>> {
    let le: Vec<u8> = s.encode_utf16().flat_map(u16::to_le_bytes).collect();
    let be: Vec<u8> = s.encode_utf16().flat_map(u16::to_be_bytes).collect();
    vec![s.as_bytes().to_vec(), le, be]
}

fn scan(dir: &Path, needles: &[Vec<u8>], seen: &mut usize) {
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let name = e.file_name().to_string_lossy().into_owned();
        for m in MARKERS {
            assert!(!name.to_lowercase().contains(&m.to_lowercase()), "marker in file name {name}");
        }
        if e.file_type().unwrap().is_dir() {
            scan(&e.path(), needles, seen);
            continue;
        }
        let bytes = std::fs::read(e.path()).unwrap();
        *seen += 1;
        for n in needles {
            let hit = bytes.windows(n.len()).position(|w| w == n.as_slice());
            assert!(hit.is_none(), "marker found in {} at {hit:?}", e.path().display());
        }
    }
}

#[test]
fn markers_never_reach_the_disk_in_clear() {
    let tmp = tempfile::tempdir().unwrap();
    let mk = MasterKey::from_key(Key32::random());
    let s = Store::open(tmp.path(), &mk, StoreOptions::default()).unwrap();
    s.create_org(OrgId(1)).unwrap();
    let o = s.org(OrgId(1)).unwrap();
    let root = o.create_root(FileTime(1)).unwrap();
    let dir = o.create(root, "機密マーカー フォルダ MARKER-7f3a", NodeKind::Directory, 0x10, FileTime(1)).unwrap();
    let mut content = Vec::new();
    for m in MARKERS {
        for e in encodings(m) {
            content.extend_from_slice(&e);
            content.push(b' ');
        }
    }
    let big: Vec<u8> = content.iter().copied().cycle().take(300_000).collect();
    for (i, name) in
        ["MARKER-7f3a.txt", "機密マーカー.docx", "\u{30CF}\u{309A}-機密マーカー-MARKER-7f3a.xlsx"].iter().enumerate()
    {
        let f = o.create(dir, name, NodeKind::File, 0x20, FileTime(2)).unwrap();
        let c = o.open_content(f, None, false).unwrap();
        c.write(0, &content).unwrap(); // small file
        if i == 0 {
            c.write(1000, &big).unwrap(); // multi-chunk
            c.write(5, b"MARKER-7f3a").unwrap(); // read-modify-write
        }
        let st = o.open_content(f, Some("機密マーカー:MARKER-7f3a"), true);
        assert!(st.is_err(), "':' is not allowed in a stream name");
        o.open_content(f, Some("MARKER-7f3a 機密マーカー"), true).unwrap().write(0, &content).unwrap();
        o.set_security(f, &content).unwrap();
        o.set_eas(f, &[("MARKER-7f3a".into(), content.clone()), ("機密マーカー".into(), b"x".to_vec())]).unwrap();
        o.rename(f, dir, &format!("renamed {name}"), false).unwrap();
    }
    let copy_src = o.lookup(dir, "RENAMED MARKER-7F3A.TXT").unwrap().unwrap();
    let copy_dst = o.create(root, "copy MARKER-7f3a", NodeKind::File, 0x20, FileTime(3)).unwrap();
    let src = o.open_content(copy_src, None, false).unwrap();
    src.copy_to(0, &o.open_content(copy_dst, None, false).unwrap(), 0, u64::MAX).unwrap();
    o.flush().unwrap();

    let mut needles = Vec::new();
    for m in MARKERS {
        needles.extend(encodings(m));
    }
    let mut seen = 0;
    scan(tmp.path(), &needles, &mut seen); // while open: WAL and shm present
    assert!(seen >= 5, "scanned only {seen} files");
    // Sanity: the data really is there.
    let mut buf = vec![0; content.len()];
    o.open_content(copy_dst, None, false).unwrap().read(1000, &mut buf).unwrap();
    assert_eq!(buf, big[..content.len()]);
    drop((src, o));
    s.close().unwrap();
    drop(s);
    scan(tmp.path(), &needles, &mut seen);
}
