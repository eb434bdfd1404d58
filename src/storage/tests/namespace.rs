//! Names, tree operations, streams, security descriptors and EAs.

use super::*;
use crate::storage::{MetaUpdate, StorageError};

#[test]
fn composed_and_decomposed_japanese_resolve_to_one_entry() {
    let d = tempfile::tempdir().unwrap();
    let (_s, o, root) = setup(d.path());
    let composed = "パンフレット.docx"; // パ U+30D1
    let decomposed = "\u{30CF}\u{309A}ンフレット.docx"; // ハ U+30CF + ゚ U+309A
    let id = file(&o, root, decomposed);
    assert_eq!(o.lookup(root, composed).unwrap(), Some(id));
    assert_eq!(o.lookup(root, decomposed).unwrap(), Some(id));
    let r = o.create(root, composed, NodeKind::File, 0, FileTime(3));
    assert_eq!(r, Err(StorageError::Exists));
    // Stored as given, after NFC.
    assert_eq!(o.stat(id).unwrap().name, composed);
    // ガ (U+30AC) vs カ + ゛ (U+30AB U+3099), in a directory name.
    let dir = o.create(root, "\u{30AB}\u{3099}イド", NodeKind::Directory, 0x10, FileTime(3)).unwrap();
    assert_eq!(o.lookup(root, "ガイド").unwrap(), Some(dir));
}

#[test]
fn lookup_is_case_insensitive_and_listing_case_preserving() {
    let d = tempfile::tempdir().unwrap();
    let (_s, o, root) = setup(d.path());
    let id = file(&o, root, "Readme.TXT");
    assert_eq!(o.lookup(root, "README.txt").unwrap(), Some(id));
    assert_eq!(o.lookup(root, "readme.txt").unwrap(), Some(id));
    assert_eq!(o.lookup(root, "readme.tx").unwrap(), None);
    assert_eq!(o.create(root, "README.TXT", NodeKind::File, 0, FileTime(0)), Err(StorageError::Exists));
    let names: Vec<String> = o.list(root).unwrap().into_iter().map(|e| e.name).collect();
    assert_eq!(names, ["Readme.TXT"]);
    // Fullwidth and Greek letters fold too (NTFS upcase table).
    let g = file(&o, root, "σχέδιο");
    assert_eq!(o.lookup(root, "ΣΧΈΔΙΟ").unwrap(), Some(g));
}

#[test]
fn rename_changing_only_case_keeps_the_entry() {
    let d = tempfile::tempdir().unwrap();
    let (_s, o, root) = setup(d.path());
    let id = file(&o, root, "report.xlsx");
    o.rename(id, root, "Report.XLSX", false).unwrap();
    let list = o.list(root).unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].name, "Report.XLSX");
    assert_eq!(list[0].meta.id, id);
    assert_eq!(o.lookup(root, "REPORT.xlsx").unwrap(), Some(id));
    assert_eq!(o.path_of(id).unwrap(), "\\Report.XLSX");
}

#[test]
fn rename_move_and_replace_rules() {
    let d = tempfile::tempdir().unwrap();
    let (_s, o, root) = setup(d.path());
    let a = o.create(root, "a", NodeKind::Directory, 0x10, FileTime(1)).unwrap();
    let b = o.create(a, "b", NodeKind::Directory, 0x10, FileTime(1)).unwrap();
    let f = file(&o, root, "f.txt");
    let g = file(&o, root, "g.txt");
    o.open_content(g, None, false).unwrap().write(0, b"old g").unwrap();
    assert_eq!(o.rename(f, root, "G.TXT", false), Err(StorageError::Exists));
    o.rename(f, b, "moved.txt", false).unwrap();
    assert_eq!(o.path_of(f).unwrap(), "\\a\\b\\moved.txt");
    assert_eq!(o.lookup(root, "f.txt").unwrap(), None);
    // Replace: g's entry and content go away.
    let gc = o.open_content(g, None, false).unwrap();
    o.rename(f, root, "g.txt", true).unwrap();
    assert_eq!(o.lookup(root, "g.txt").unwrap(), Some(f));
    assert_eq!(o.stat(g), Err(StorageError::NotFound));
    assert_eq!(gc.write(0, b"x"), Err(StorageError::NotFound));
    // Directories cannot move below themselves; roots cannot move.
    assert_eq!(o.rename(a, b, "loop", false), Err(StorageError::InvalidArgument));
    assert_eq!(o.rename(root, a, "r", false), Err(StorageError::InvalidArgument));
    // Replacing a non-empty directory fails; an empty one works.
    let x = o.create(root, "x", NodeKind::Directory, 0x10, FileTime(1)).unwrap();
    assert_eq!(o.rename(x, root, "a", true), Err(StorageError::NotEmpty));
    assert_eq!(o.remove(a), Err(StorageError::NotEmpty));
    let e = o.create(root, "empty", NodeKind::Directory, 0x10, FileTime(1)).unwrap();
    o.rename(x, root, "EMPTY", true).unwrap();
    assert_eq!(o.stat(e), Err(StorageError::NotFound));
    assert_eq!(o.stat(x).unwrap().name, "EMPTY");
    // Files are not directories.
    assert_eq!(o.create(f, "c", NodeKind::File, 0, FileTime(1)), Err(StorageError::NotADirectory));
    assert_eq!(o.open_content(x, None, true).err(), Some(StorageError::IsADirectory));
}

#[test]
fn stat_set_meta_and_times_are_data() {
    let d = tempfile::tempdir().unwrap();
    let (_s, o, root) = setup(d.path());
    let f = o.create(root, "t", NodeKind::File, 0x20, FileTime(100)).unwrap();
    let m = o.stat(f).unwrap();
    assert_eq!((m.created, m.written, m.attrs, m.size, m.nlink), (FileTime(100), FileTime(100), 0x20, 0, 1));
    assert_eq!(m.parent, Some(root));
    let c = o.open_content(f, None, false).unwrap();
    c.write(0, &[1; 5000]).unwrap();
    let m2 = o.stat(f).unwrap();
    assert_eq!((m2.size, m2.alloc_size, m2.written), (5000, 8192, FileTime(100)));
    let upd = MetaUpdate { attrs: Some(0x21), written: Some(FileTime(7)), ..MetaUpdate::default() };
    o.set_meta(f, &upd).unwrap();
    let m3 = o.stat(f).unwrap();
    assert_eq!((m3.attrs, m3.written, m3.created), (0x21, FileTime(7), FileTime(100)));
    assert_eq!(o.set_meta(NodeId(999), &upd), Err(StorageError::NotFound));
}

#[test]
fn listing_pages_resume_without_repeats() {
    let d = tempfile::tempdir().unwrap();
    let (_s, o, root) = setup(d.path());
    for i in 0..100 {
        file(&o, root, &format!("ファイル{i:03}.txt"));
    }
    let all = o.list(root).unwrap();
    assert_eq!(all.len(), 100);
    let mut paged = Vec::new();
    let mut cursor = None;
    loop {
        let page = o.list_after(root, cursor.as_ref(), 7).unwrap();
        if page.is_empty() {
            break;
        }
        cursor = Some(page[page.len() - 1].cursor);
        paged.extend(page);
    }
    assert_eq!(paged, all);
    // A deleted entry's cursor still resumes at the right place.
    let mid = all[50].clone();
    o.remove(mid.meta.id).unwrap();
    let rest = o.list_after(root, Some(&mid.cursor), 1000).unwrap();
    assert_eq!(rest, all[51..]);
}

#[test]
fn named_streams_have_their_own_content() {
    let d = tempfile::tempdir().unwrap();
    let (_s, o, root) = setup(d.path());
    let f = file(&o, root, "doc.txt");
    let main = o.open_content(f, None, false).unwrap();
    main.write(0, b"main data").unwrap();
    assert_eq!(o.open_content(f, Some("Zone.Identifier"), false).err(), Some(StorageError::NotFound));
    let zi = o.open_content(f, Some("Zone.Identifier"), true).unwrap();
    zi.write(0, b"[ZoneTransfer]\r\nZoneId=3\r\n").unwrap();
    let again = o.open_content(f, Some("zone.identifier"), false).unwrap();
    assert!(Arc::ptr_eq(&zi, &again), "same stream shares one Content");
    assert_ne!(zi.debug_id(), main.debug_id());
    let streams = o.list_streams(f).unwrap();
    assert_eq!(streams.len(), 2);
    assert_eq!((streams[0].name.as_str(), streams[0].size), ("", 9));
    assert_eq!((streams[1].name.as_str(), streams[1].size), ("Zone.Identifier", 26));
    o.rename_stream(f, "ZONE.IDENTIFIER", "Other", false).unwrap();
    let mut buf = [0u8; 64];
    let n = o.open_content(f, Some("other"), false).unwrap().read(0, &mut buf).unwrap();
    assert_eq!(&buf[..n], b"[ZoneTransfer]\r\nZoneId=3\r\n");
    o.open_content(f, Some("third"), true).unwrap();
    assert_eq!(o.rename_stream(f, "third", "OTHER", false), Err(StorageError::Exists));
    o.rename_stream(f, "third", "OTHER", true).unwrap();
    assert_eq!(o.list_streams(f).unwrap().len(), 2);
    o.remove_stream(f, "other").unwrap();
    assert_eq!(o.remove_stream(f, "other"), Err(StorageError::NotFound));
    assert_eq!(o.list_streams(f).unwrap().len(), 1);
    // Directories carry named streams but no main data.
    let dir = o.create(root, "dir", NodeKind::Directory, 0x10, FileTime(1)).unwrap();
    o.open_content(dir, Some("meta"), true).unwrap().write(0, b"x").unwrap();
    assert_eq!(o.list_streams(dir).unwrap()[0].name, "meta");
}

#[test]
fn security_descriptors_and_eas_round_trip() {
    let d = tempfile::tempdir().unwrap();
    let (_s, o, root) = setup(d.path());
    let f = file(&o, root, "a");
    assert_eq!(o.get_security(f).unwrap(), None);
    o.set_security(f, &[1, 0, 4, 0x80, 9, 9]).unwrap();
    assert_eq!(o.get_security(f).unwrap(), Some(vec![1, 0, 4, 0x80, 9, 9]));
    assert!(o.get_eas(f).unwrap().is_empty());
    let eas = vec![("USER.ONE".to_string(), b"1".to_vec()), ("$KERNEL.X".into(), vec![0; 300])];
    o.set_eas(f, &eas).unwrap();
    assert_eq!(o.get_eas(f).unwrap(), eas);
    o.set_eas(f, &[]).unwrap();
    assert!(o.get_eas(f).unwrap().is_empty());
    assert_eq!(o.get_security(NodeId(12345)), Err(StorageError::NotFound));
}

#[test]
fn remove_deletes_everything_and_frees_usage() {
    let d = tempfile::tempdir().unwrap();
    let (_s, o, root) = setup(d.path());
    let f = file(&o, root, "big");
    let c = o.open_content(f, None, false).unwrap();
    c.write(0, &vec![5; 200_000]).unwrap();
    o.open_content(f, Some("s"), true).unwrap().write(0, &[1; 10]).unwrap();
    assert_eq!(o.usage().unwrap(), 200_704 + 4096);
    o.set_security(f, b"sd").unwrap();
    o.remove(f).unwrap();
    assert_eq!(o.usage().unwrap(), 0);
    assert_eq!(o.lookup(root, "big").unwrap(), None);
    assert_eq!(c.read(0, &mut [0; 4]), Err(StorageError::NotFound));
    assert_eq!(o.open_content(f, None, false).err(), Some(StorageError::NotFound));
}

/// EAs count in the organization's usage (and so its quota), are freed
/// with their file, and are counted again when the store is reopened.
#[test]
fn eas_count_in_usage_and_quota() {
    let d = tempfile::tempdir().unwrap();
    let (s, o, root) = setup(d.path());
    let f = file(&o, root, "ea");
    assert_eq!(o.usage().unwrap(), 0);
    o.set_eas(f, &[("BIG".to_string(), vec![7; 60_000])]).unwrap();
    let with = o.usage().unwrap();
    assert!((60_000..61_000).contains(&with), "{with}");
    o.set_eas(f, &[("BIG".to_string(), vec![7; 10_000])]).unwrap();
    let smaller = o.usage().unwrap();
    assert!((10_000..11_000).contains(&smaller), "{smaller}");
    o.set_quota(Some(20_000));
    assert_eq!(o.set_eas(f, &[("BIG".to_string(), vec![7; 30_000])]), Err(StorageError::QuotaExceeded));
    assert_eq!(o.usage().unwrap(), smaller, "a refused change is not counted");
    o.set_quota(None);
    let g = file(&o, root, "other");
    o.set_eas(g, &[("X".to_string(), vec![1; 5000])]).unwrap();
    o.remove(f).unwrap();
    let left = o.usage().unwrap();
    assert!((5000..6000).contains(&left), "{left}");
    s.flush_all().unwrap();
    drop((o, s));
    let s = super::open(d.path());
    let o = s.org(OrgId(1)).unwrap();
    assert_eq!(o.usage().unwrap(), left, "recounted on open");
}

#[test]
fn quota_limits_allocation() {
    let d = tempfile::tempdir().unwrap();
    let (_s, o, root) = setup(d.path());
    o.set_quota(Some(100_000));
    let c = o.open_content(file(&o, root, "q"), None, false).unwrap();
    c.write(0, &[1; 65536]).unwrap();
    assert_eq!(c.write(65536, &[1; 65536]), Err(StorageError::QuotaExceeded));
    c.write(0, &[2; 65536]).unwrap(); // overwriting needs no more space
    c.set_len(1 << 30).unwrap(); // holes are free
    o.set_quota(None);
    c.write(65536, &[1; 65536]).unwrap();
}

/// A write past the cached quota asks the quota's source again before it
/// is refused: a raise applies at once, a still-too-small quota refuses.
#[test]
fn quota_source_is_asked_before_refusing() {
    use std::sync::atomic::{AtomicU64, Ordering};
    let d = tempfile::tempdir().unwrap();
    let (_s, o, root) = setup(d.path());
    let current = Arc::new(AtomicU64::new(100_000));
    let src = current.clone();
    o.set_quota_source(Arc::new(move || Some(src.load(Ordering::SeqCst))));
    o.set_quota(Some(100_000));
    let c = o.open_content(file(&o, root, "q"), None, false).unwrap();
    c.write(0, &[1; 65536]).unwrap();
    assert_eq!(c.write(65536, &[1; 65536]), Err(StorageError::QuotaExceeded));
    current.store(150_000, Ordering::SeqCst); // raised by an administrator
    c.write(65536, &[1; 65536]).unwrap();
    assert_eq!(c.write(131_072, &[1; 65536]), Err(StorageError::QuotaExceeded));
}

#[test]
fn persists_across_reopen_and_shred_destroys_key() {
    let d = tempfile::tempdir().unwrap();
    let (s, o, root) = setup(d.path());
    let f = file(&o, root, "keep.txt");
    o.open_content(f, None, false).unwrap().write(10, b"persisted").unwrap();
    o.set_security(f, b"sd-bytes").unwrap();
    drop(o);
    s.close().unwrap();
    drop(s);
    let s = open(d.path());
    let o = s.org(OrgId(1)).unwrap();
    assert_eq!(o.lookup(root, "KEEP.TXT").unwrap(), Some(f));
    let mut buf = [9u8; 19];
    assert_eq!(o.open_content(f, None, false).unwrap().read(0, &mut buf).unwrap(), 19);
    assert_eq!(&buf, b"\0\0\0\0\0\0\0\0\0\0persisted");
    assert_eq!(o.get_security(f).unwrap().as_deref(), Some(&b"sd-bytes"[..]));
    // Shred.
    use crate::keys::OrgKeys;
    assert!(s.org_subkey(OrgId(1), "smbvault/org/audit-names").is_ok());
    let wrapped: Vec<u8> = rusqlite::Connection::open(d.path().join("keys.db"))
        .unwrap()
        .query_row("SELECT wrapped FROM org_keys WHERE org=1", [], |r| r.get(0))
        .unwrap();
    s.shred_org(OrgId(1)).unwrap();
    assert_eq!(o.stat(f), Err(StorageError::NotFound));
    assert_eq!(s.org(OrgId(1)).err(), Some(StorageError::NotFound));
    assert!(s.org_subkey(OrgId(1), "smbvault/org/audit-names").is_err());
    assert_eq!(s.create_org(OrgId(1)), Err(StorageError::Exists));
    assert!(!d.path().join("orgs").join(format!("{:016x}", 1)).exists());
    for entry in std::fs::read_dir(d.path()).unwrap() {
        let p = entry.unwrap().path();
        if p.is_file() {
            let bytes = std::fs::read(&p).unwrap();
            let found = bytes.windows(wrapped.len()).any(|w| w == wrapped.as_slice());
            assert!(!found, "wrapped org key still in {}", p.display());
        }
    }
}

#[test]
fn org_subkeys_differ_per_label_and_org() {
    use crate::keys::OrgKeys;
    let d = tempfile::tempdir().unwrap();
    let s = open(d.path());
    s.create_org(OrgId(1)).unwrap();
    s.create_org(OrgId(2)).unwrap();
    let a = s.org_subkey(OrgId(1), "x").unwrap();
    assert_eq!(a.expose(), s.org_subkey(OrgId(1), "x").unwrap().expose());
    s.org(OrgId(1)).unwrap(); // cached path gives the same key
    assert_eq!(a.expose(), s.org_subkey(OrgId(1), "x").unwrap().expose());
    assert_ne!(a.expose(), s.org_subkey(OrgId(1), "y").unwrap().expose());
    assert_ne!(a.expose(), s.org_subkey(OrgId(2), "x").unwrap().expose());
    assert!(s.org_subkey(OrgId(3), "x").is_err());
    assert_eq!(s.create_org(OrgId(1)), Err(StorageError::Exists));
}
