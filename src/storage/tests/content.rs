//! Content streams: offsets, holes, truncation, zeroing, copies,
//! compaction and concurrent writers.

use super::*;
use crate::storage::{CHUNK_SIZE, StorageError};
use std::time::Duration;

fn read_all(c: &crate::storage::Content) -> Vec<u8> {
    let mut v = vec![0xEE; c.len() as usize + 10];
    let n = c.read(0, &mut v).unwrap();
    v.truncate(n);
    assert_eq!(read_append_both(c, 0, c.len() as usize + 10).unwrap(), v);
    v
}

/// READ responses are filled by `read_append` with no zero-fill first:
/// every byte it appends is the stream's (stored chunks, the unsealed
/// tail, holes as zeros), at any offset and length, short at the end.
#[test]
fn read_append_writes_exactly_the_stream() {
    in_both_versions(|| {
        let d = tempfile::tempdir().unwrap();
        let (_s, o, root) = setup(d.path());
        let c = o.open_content(file(&o, root, "f"), None, false).unwrap();
        let mut model = pattern(4, 3 * 65536 + 1000); // chunks 0..2 whole, 3 partial
        c.write(0, &model).unwrap();
        c.flush().unwrap();
        model.resize(400_000, 0); // chunks 4..5 holes
        c.write(400_000, &pattern(5, 30_000)).unwrap(); // chunk 6: tail, unsealed
        model.extend_from_slice(&pattern(5, 30_000));
        c.write(70_000, &pattern(6, 4096)).unwrap(); // seals the tail; chunk 1 partial tail
        model[70_000..74_096].copy_from_slice(&pattern(6, 4096));
        for (off, len) in [
            (0, model.len() + 99),
            (0, 65536),
            (65536, 2 * 65536),
            (1, 65536),
            (65_530, 20),
            (196_000, 300_000),
            (262_144, 131_072),
            (399_990, 50_000),
            (model.len() - 3, 10),
            (model.len(), 10),
            (5, 0),
        ] {
            let end = (off + len).min(model.len()).max(off);
            assert_eq!(
                read_append_both(&c, off as u64, len).unwrap(),
                model[off.min(model.len())..end],
                "off {off} len {len}"
            );
        }
    });
}

#[test]
fn writes_at_any_offset_and_sparse_holes() {
    let d = tempfile::tempdir().unwrap();
    let (_s, o, root) = setup(d.path());
    let c = o.open_content(file(&o, root, "f"), None, false).unwrap();
    let mut model = Vec::new();
    let put = |model: &mut Vec<u8>, off: usize, data: &[u8]| {
        c.write(off as u64, data).unwrap();
        if model.len() < off + data.len() {
            model.resize(off + data.len(), 0);
        }
        model[off..off + data.len()].copy_from_slice(data);
    };
    put(&mut model, 0, b"x");
    put(&mut model, 100_000, &pattern(1, 70_000)); // spans chunks 1..2
    put(&mut model, 65_530, &pattern(2, 12)); // across a boundary, RMW
    put(&mut model, 1_000_000, b"tail"); // far: chunks between are holes
    assert_eq!(read_all(&c), model);
    assert_eq!(c.len(), 1_000_004);
    // Holes are not allocated: chunks 0,1,2 and 15.
    let chunk = CHUNK_SIZE;
    assert_eq!(c.allocated_ranges(0, u64::MAX).unwrap(), vec![(0, 3 * chunk), (15 * chunk, 1_000_004 - 15 * chunk)]);
    assert_eq!(c.alloc_size(), 65536 + 65536 + 40960 + 20480);
    // Unaligned reads, short read at EOF, nothing past it.
    let mut buf = vec![0; 100];
    assert_eq!(c.read(999_950, &mut buf).unwrap(), 54);
    assert_eq!(&buf[..54], &model[999_950..]);
    assert_eq!(c.read(1_000_004, &mut buf).unwrap(), 0);
    assert_eq!(c.write(crate::storage::MAX_FILE_SIZE, b"x"), Err(StorageError::InvalidArgument));
}

#[test]
fn truncate_then_extend_reads_zeros() {
    let d = tempfile::tempdir().unwrap();
    let (_s, o, root) = setup(d.path());
    let c = o.open_content(file(&o, root, "f"), None, false).unwrap();
    c.write(0, &pattern(3, 200_000)).unwrap();
    c.set_len(70_000).unwrap();
    assert_eq!(c.len(), 70_000);
    c.set_len(300_000).unwrap();
    let all = read_all(&c);
    assert_eq!(&all[..70_000], &pattern(3, 200_000)[..70_000]);
    assert!(all[70_000..].iter().all(|&b| b == 0), "stale bytes after truncate+extend");
    assert_eq!(c.alloc_size(), 65536 + 8192);
    c.set_len(0).unwrap();
    assert_eq!((c.len(), c.alloc_size()), (0, 0));
    assert_eq!(o.usage().unwrap(), 0);
}

#[test]
fn zero_range_makes_holes_and_zeros_edges() {
    let d = tempfile::tempdir().unwrap();
    let (_s, o, root) = setup(d.path());
    let c = o.open_content(file(&o, root, "f"), None, false).unwrap();
    let mut model = pattern(4, 300_000);
    c.write(0, &model).unwrap();
    c.zero_range(1000, 200_000).unwrap();
    model[1000..201_000].fill(0);
    assert_eq!(read_all(&c), model);
    // Chunks 1 and 2 became holes; 0 and 3 are still stored.
    let chunk = CHUNK_SIZE;
    assert_eq!(c.allocated_ranges(0, 1 << 20).unwrap(), vec![(0, chunk), (3 * chunk, 300_000 - 3 * chunk)]);
    c.zero_range(250_000, 1 << 30).unwrap(); // past EOF: clipped, size kept
    model[250_000..].fill(0);
    assert_eq!(read_all(&c), model);
    assert_eq!(c.len(), 300_000);
}

#[test]
fn copy_to_reencrypts_and_handles_overlap() {
    let d = tempfile::tempdir().unwrap();
    let (_s, o, root) = setup(d.path());
    let src = o.open_content(file(&o, root, "src"), None, false).unwrap();
    let dst = o.open_content(file(&o, root, "dst"), None, false).unwrap();
    let data = pattern(5, 3 << 20);
    src.write(0, &data).unwrap();
    assert_eq!(src.copy_to(0, &dst, 10, 5 << 20).unwrap(), 3 << 20);
    let got = read_all(&dst);
    assert_eq!(&got[10..], &data[..]);
    // The copy has its own records (own key, fresh IVs).
    let (_, _, _, seq_src) = src.debug_location(0).unwrap().unwrap();
    let (_, _, _, seq_dst) = dst.debug_location(0).unwrap().unwrap();
    assert_ne!(seq_src, seq_dst);
    // Overlapping copy inside one file behaves like memmove.
    src.copy_to(0, &src, 100_000, 2 << 20).unwrap();
    let mut model = data.clone();
    model.copy_within(0..2 << 20, 100_000);
    assert_eq!(read_all(&src), model);
}

#[test]
fn concurrent_writers_on_one_content() {
    let d = tempfile::tempdir().unwrap();
    let (_s, o, root) = setup(d.path());
    let c = o.open_content(file(&o, root, "f"), None, false).unwrap();
    std::thread::scope(|sc| {
        for t in 0..4u8 {
            let c = c.clone();
            sc.spawn(move || {
                for i in 0..40u64 {
                    // Interleaved 1000-byte slots: every byte has one writer.
                    let off = (i * 4 + u64::from(t)) * 1000;
                    c.write(off, &[t + 1; 1000]).unwrap();
                }
            });
        }
    });
    let all = read_all(&c);
    assert_eq!(all.len(), 160_000);
    for (slot, bytes) in all.chunks(1000).enumerate() {
        assert!(bytes.iter().all(|&b| b == (slot % 4) as u8 + 1), "slot {slot}");
    }
}

#[test]
fn compaction_reclaims_overwritten_chunks() {
    let d = tempfile::tempdir().unwrap();
    let (s, o, root) = setup_with(d.path(), compacting());
    let c = o.open_content(file(&o, root, "f"), None, false).unwrap();
    let keep = o.open_content(file(&o, root, "keep"), None, false).unwrap();
    keep.write(0, &pattern(9, 300_000)).unwrap();
    for round in 0..20u8 {
        c.write(0, &pattern(round, 256 * 1024)).unwrap();
    }
    o.flush().unwrap();
    let seg_dir = seg_dir(d.path());
    let disk = |dir: &std::path::Path| -> u64 {
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().metadata().unwrap().len()).sum()
    };
    let before = disk(&seg_dir);
    s.compact_now().unwrap();
    // The files kept for reuse go once unused past their time.
    o.core.expire_spare(std::time::Duration::ZERO).unwrap();
    let after = disk(&seg_dir);
    assert!(after < before / 3, "segments {before} -> {after} bytes");
    assert_eq!(read_all(&c), pattern(19, 256 * 1024));
    assert_eq!(read_all(&keep), pattern(9, 300_000));
    // And everything survives a reopen after compaction.
    drop((c, keep, o));
    s.close().unwrap();
    drop(s);
    let s = open(d.path());
    let o = s.org(OrgId(1)).unwrap();
    let f = o.lookup(root, "f").unwrap().unwrap();
    assert_eq!(read_all(&o.open_content(f, None, false).unwrap()), pattern(19, 256 * 1024));
}

/// A size the write-back tail grew in memory, within the same allocation
/// and after an overwrite that changed neither, reaches the `contents` row.
#[test]
fn sizes_reach_the_row_around_overwrites_in_place() {
    let d = tempfile::tempdir().unwrap();
    let (s, o, root) = setup(d.path());
    let f = file(&o, root, "f");
    let c = o.open_content(f, None, false).unwrap();
    c.write(0, &pattern(1, 65536)).unwrap();
    c.write(65536, &pattern(2, 300)).unwrap();
    c.flush().unwrap();
    c.write(0, &pattern(3, 65536)).unwrap(); // whole chunk, same size and allocation
    c.write(65836, &pattern(5, 100)).unwrap(); // the tail grows the size, not the allocation
    c.flush().unwrap();
    assert_eq!(o.stat(f).unwrap().size, 65936);
    drop((c, o, s));
    let s = open(d.path());
    let o = s.org(OrgId(1)).unwrap();
    let got = read_all(&o.open_content(f, None, false).unwrap());
    assert_eq!(got.len(), 65936);
    assert_eq!(got[..65536], pattern(3, 65536)[..]);
    assert_eq!(got[65836..], pattern(5, 100)[..]);
}

/// 1 MiB segments, compacted however little of them is dead.
fn compacting() -> StoreOptions {
    StoreOptions { segment_size: 1 << 20, compact_min_dead: 0, ..quiet() }
}

/// Overwrites `c` 20 times with 256 KiB (chunk 0 last holds
/// `pattern(19, ..)`): several segments, all but the newest dead.
fn overwrite(o: &OrgStore, c: &crate::storage::Content) {
    for round in 0..20u8 {
        c.write(0, &pattern(round, 256 * 1024)).unwrap();
    }
    o.flush().unwrap();
}

/// Name → (inode, length) of every segment file.
fn seg_files(dir: &std::path::Path) -> std::collections::HashMap<String, (u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .map(|e| (e.file_name().into_string().unwrap(), e.metadata().unwrap()))
        .map(|(n, m)| (n, (m.ino(), m.len())))
        .collect()
}

/// A compacted-away segment file becomes the next new segment (same
/// inode, nothing freed and allocated again), and the old records in it
/// never show: reads see the new data, and a crash cuts the file back to
/// what was committed.
#[test]
fn compacted_segment_files_are_reused_and_cut_back_by_recovery() {
    let d = tempfile::tempdir().unwrap();
    let (s, o, root) = setup_with(d.path(), compacting());
    let c = o.open_content(file(&o, root, "f"), None, false).unwrap();
    overwrite(&o, &c);
    let dir = seg_dir(d.path());
    let before = seg_files(&dir);
    s.compact_now().unwrap();
    let compacted = seg_files(&dir);
    assert!(compacted.len() < before.len() - 1, "segments {before:?} -> {compacted:?}");
    // One new segment's worth of writes: its file is one we had.
    let g = o.open_content(file(&o, root, "g"), None, false).unwrap();
    let model = pattern(77, 1 << 20);
    g.write(0, &model).unwrap();
    o.flush().unwrap();
    let after = seg_files(&dir);
    // A file we had (same inode) under a new segment's name.
    let reused =
        after.iter().any(|(n, (ino, _))| !compacted.contains_key(n) && compacted.values().any(|v| v.0 == *ino));
    assert!(reused, "no segment file was reused: {compacted:?} -> {after:?}");
    assert_eq!(read_all(&g), model);
    assert_eq!(read_all(&c), pattern(19, 256 * 1024));
    // Crash while writing into the reused file: what was committed reads
    // back, and no file is longer than its committed length afterwards.
    g.write(0, &pattern(78, 200_000)).unwrap();
    let crashed = tempfile::tempdir().unwrap();
    copy_tree(d.path(), crashed.path());
    drop((c, g, o, s));
    let s = Store::open(crashed.path(), &master(), compacting()).unwrap();
    let o = s.org(OrgId(1)).unwrap();
    let g = o.open_content(o.lookup(root, "g").unwrap().unwrap(), None, false).unwrap();
    assert_eq!(read_all(&g), model);
    let c = o.open_content(o.lookup(root, "f").unwrap().unwrap(), None, false).unwrap();
    assert_eq!(read_all(&c), pattern(19, 256 * 1024));
    let total: u64 = seg_files(&seg_dir(crashed.path())).values().map(|v| v.1).sum();
    assert!(total <= 3 << 20, "recovery left {total} bytes of segment files");
}

/// Up to `MAX_SPARES` compacted-away files are kept: a write of two new
/// segments' worth goes into two files we had, and spares left unused
/// past their time are deleted.
#[test]
fn two_compacted_segment_files_are_kept_and_expire_unused() {
    use crate::storage::org::MAX_SPARES;
    assert_eq!(MAX_SPARES, 2);
    let d = tempfile::tempdir().unwrap();
    let (s, o, root) = setup_with(d.path(), compacting());
    let c = o.open_content(file(&o, root, "f"), None, false).unwrap();
    overwrite(&o, &c);
    let dir = seg_dir(d.path());
    s.compact_now().unwrap();
    let compacted = seg_files(&dir);
    // Two files more than the segments in use: the spares.
    assert_eq!(compacted.len(), o.core.segments().len() + MAX_SPARES, "{compacted:?}");
    let g = o.open_content(file(&o, root, "g"), None, false).unwrap();
    // In 256 KiB writes: a segment ends where a write would pass its size.
    let model = pattern(91, 5 << 19);
    for (i, piece) in model.chunks(256 << 10).enumerate() {
        g.write((i as u64) << 18, piece).unwrap();
    }
    o.flush().unwrap();
    let after = seg_files(&dir);
    let reused: std::collections::HashSet<u64> = after
        .iter()
        .filter(|(n, (ino, _))| !compacted.contains_key(*n) && compacted.values().any(|v| v.0 == *ino))
        .map(|(_, (ino, _))| *ino)
        .collect();
    assert_eq!(reused.len(), MAX_SPARES, "{compacted:?} -> {after:?}");
    assert_eq!(read_all(&g), model);
    assert_eq!(read_all(&c), pattern(19, 256 * 1024));
    // Spares kept again, then left unused past their time: deleted.
    overwrite(&o, &c);
    s.compact_now().unwrap();
    assert_eq!(seg_files(&dir).len(), o.core.segments().len() + MAX_SPARES);
    o.core.expire_spare(std::time::Duration::ZERO).unwrap();
    assert_eq!(seg_files(&dir).len(), o.core.segments().len());
    assert_eq!(read_all(&g), model);
}

/// Compacted-away segments that readers still hold are deleted, not
/// reused: a reader keeps reading the records it found there, never a new
/// segment's bytes at the same offsets.
#[test]
fn a_held_segment_file_is_never_reused() {
    let d = tempfile::tempdir().unwrap();
    let (s, o, root) = setup_with(d.path(), compacting());
    let c = o.open_content(file(&o, root, "f"), None, false).unwrap();
    c.write(0, &pattern(0, 256 * 1024)).unwrap();
    c.flush().unwrap();
    let (path, off, plen, _) = c.debug_location(0).unwrap().unwrap();
    let mut record = vec![0u8; crate::storage::record::ChunkKeys::record_len(plen as usize)];
    std::fs::File::open(&path).and_then(|f| std::os::unix::fs::FileExt::read_exact_at(&f, &mut record, off)).unwrap();
    overwrite(&o, &c);
    // Every segment held, as by a reader between finding a record and reading it.
    let held = o.core.segments();
    let before = seg_files(&seg_dir(d.path()));
    s.compact_now().unwrap();
    assert!(!path.exists(), "the first segment was not compacted away");
    // New segments' worth of writes, after a spare would have been kept.
    let g = o.open_content(file(&o, root, "g"), None, false).unwrap();
    g.write(0, &pattern(77, 2 << 20)).unwrap();
    o.flush().unwrap();
    let first = held.iter().find(|s| s.path() == path).unwrap();
    let mut again = vec![0u8; record.len()];
    first.read_at(&mut again, off).unwrap();
    assert!(again == record, "a held segment's record changed under its reader");
    for (name, (ino, _)) in seg_files(&seg_dir(d.path())) {
        let was = before.iter().find(|(_, v)| v.0 == ino).map(|(n, _)| n);
        assert!(was.is_none_or(|n| *n == name), "held file {was:?} became segment {name}");
    }
    assert_eq!(read_all(&c), pattern(19, 256 * 1024));
    assert_eq!(read_all(&g), pattern(77, 2 << 20));
}

#[test]
fn unflushed_changes_vanish_and_flushed_stay_after_crash() {
    let d = tempfile::tempdir().unwrap();
    let (s, o, root) = setup(d.path());
    let f = file(&o, root, "f");
    let c = o.open_content(f, None, false).unwrap();
    c.write(0, b"flushed").unwrap();
    c.flush().unwrap();
    c.write(0, b"NOT-YET").unwrap();
    file(&o, root, "unflushed-name");
    // A crash keeps exactly what is in the files now: copy them while the
    // store is still open (the connection holds its write lock).
    let crashed = tempfile::tempdir().unwrap();
    copy_tree(d.path(), crashed.path());
    drop((c, o, s));
    let s = open(crashed.path());
    let o = s.org(OrgId(1)).unwrap();
    assert_eq!(o.lookup(root, "unflushed-name").unwrap(), None);
    assert_eq!(read_all(&o.open_content(f, None, false).unwrap()), b"flushed");
}

fn copy_tree(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

#[test]
fn small_sequential_writes_seal_each_chunk_once() {
    let d = tempfile::tempdir().unwrap();
    let (_s, o, root) = setup(d.path());
    let f = file(&o, root, "f");
    let c = o.open_content(f, None, false).unwrap();
    let data = pattern(8, 40 * 4096);
    for (i, page) in data.chunks(4096).enumerate() {
        c.write(i as u64 * 4096, page).unwrap();
    }
    // Chunks 0 and 1 were sealed when the writes moved on; chunk 2 is
    // still the in-memory tail, yet size, stat, listing and reads see it.
    assert!(c.debug_location(1).unwrap().is_some());
    assert!(c.debug_location(2).unwrap().is_none());
    assert_eq!(c.len(), 40 * 4096);
    assert_eq!(o.stat(f).unwrap().size, 40 * 4096);
    assert_eq!(o.list(root).unwrap()[0].meta.size, 40 * 4096);
    assert_eq!(o.list_streams(f).unwrap()[0].size, 40 * 4096);
    assert_eq!(c.alloc_size(), 40 * 4096);
    assert_eq!(c.allocated_ranges(0, 1 << 20).unwrap(), vec![(0, 40 * 4096)]);
    assert_eq!(read_all(&c), data);
    c.flush().unwrap();
    assert!(c.debug_location(2).unwrap().is_some());
    let seg_dir = seg_dir(d.path());
    assert_eq!(super::iv::scan_ivs(&seg_dir).len(), 3, "one record per chunk");
}

#[test]
fn closing_the_last_handle_seals_the_tail() {
    let d = tempfile::tempdir().unwrap();
    let (s, o, root) = setup(d.path());
    let f = file(&o, root, "f");
    let c = o.open_content(f, None, false).unwrap();
    c.write(10, b"tail bytes").unwrap();
    let again = o.open_content(f, None, false).unwrap();
    drop(c); // another handle is open: nothing happens yet
    assert!(again.debug_location(0).unwrap().is_none());
    drop(again);
    let c = o.open_content(f, None, false).unwrap();
    assert!(c.debug_location(0).unwrap().is_some());
    assert_eq!(read_all(&c), b"\0\0\0\0\0\0\0\0\0\0tail bytes");
    drop((c, o));
    s.close().unwrap();
}

#[test]
fn background_thread_seals_old_tails_and_commits() {
    let d = tempfile::tempdir().unwrap();
    let opts = StoreOptions { commit_interval: std::time::Duration::from_millis(100), ..StoreOptions::default() };
    let s = Store::open(d.path(), &master(), opts).unwrap();
    s.create_org(OrgId(1)).unwrap();
    let o = s.org(OrgId(1)).unwrap();
    let root = o.create_root(FileTime(1)).unwrap();
    let c = o.open_content(file(&o, root, "f"), None, false).unwrap();
    c.write(0, b"kept open").unwrap();
    std::thread::sleep(std::time::Duration::from_millis(600));
    assert!(c.debug_location(0).unwrap().is_some(), "tail sealed by the background thread");
    // And committed: a crash now keeps it.
    let crashed = tempfile::tempdir().unwrap();
    copy_tree(d.path(), crashed.path());
    drop((c, o, s));
    let s = open(crashed.path());
    let o = s.org(OrgId(1)).unwrap();
    let f = o.lookup(root, "f").unwrap().unwrap();
    assert_eq!(read_all(&o.open_content(f, None, false).unwrap()), b"kept open");
}

#[test]
fn many_threads_share_one_org_store() {
    let d = tempfile::tempdir().unwrap();
    let opts = StoreOptions { segment_size: 256 << 10, compact_min_dead: 0, ..quiet() };
    let s = Store::open(d.path(), &master(), opts).unwrap();
    s.create_org(OrgId(1)).unwrap();
    let o = s.org(OrgId(1)).unwrap();
    let root = o.create_root(FileTime(1)).unwrap();
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|sc| {
        let workers: Vec<_> = (0..3u8)
            .map(|t| {
                let o = &o;
                sc.spawn(move || {
                    for i in 0..60u32 {
                        let name = format!("t{t}-{i}.bin");
                        let f = file(o, root, &name);
                        let c = o.open_content(f, None, false).unwrap();
                        c.write(0, &pattern(t, 5000 + i as usize * 300)).unwrap();
                        c.write(100, b"patched").unwrap();
                        if i % 3 == 0 {
                            o.rename(f, root, &format!("T{t}-{i}.renamed"), false).unwrap();
                        }
                        if i % 5 == 0 {
                            o.remove(f).unwrap();
                        }
                    }
                })
            })
            .collect();
        sc.spawn(|| {
            while !stop.load(std::sync::atomic::Ordering::Acquire) {
                let listed = o.list(root).unwrap();
                assert!(listed.iter().all(|e| e.name.starts_with('t') || e.name.starts_with('T')));
                o.flush().unwrap();
                o.compact().unwrap();
            }
        });
        for w in workers {
            w.join().unwrap();
        }
        stop.store(true, std::sync::atomic::Ordering::Release);
    });
    let listed = o.list(root).unwrap();
    assert_eq!(listed.len(), 3 * 48);
    for e in listed {
        let c = o.open_content(e.meta.id, None, false).unwrap();
        let (t, i): (u8, usize) = {
            let stem = e.name[1..].split(['.']).next().unwrap();
            let (t, i) = stem.split_once('-').unwrap();
            (t.parse().unwrap(), i.parse().unwrap())
        };
        let mut want = pattern(t, 5000 + i * 300);
        want[100..107].copy_from_slice(b"patched");
        assert_eq!(read_all(&c), want, "{}", e.name);
    }
}

/// The chunk location cache of an open stream stays right while
/// compaction moves its records: first still pointing at the old copy (the
/// old segment is retired but not yet deleted), then at a deleted segment
/// (falls back to the index), and our own writes after the move win.
#[test]
fn location_cache_survives_compaction() {
    let d = tempfile::tempdir().unwrap();
    let opts = StoreOptions { segment_size: 1 << 20, compact_min_dead: 0, ..quiet() };
    let s = Store::open(d.path(), &master(), opts).unwrap();
    s.create_org(OrgId(1)).unwrap();
    let o = s.org(OrgId(1)).unwrap();
    let root = o.create_root(FileTime(1)).unwrap();
    let keep = o.open_content(file(&o, root, "keep"), None, false).unwrap();
    let churn = o.open_content(file(&o, root, "churn"), None, false).unwrap();
    keep.write(0, &pattern(7, 400_000)).unwrap();
    assert_eq!(read_all(&keep), pattern(7, 400_000)); // cache filled
    for round in 0..24u8 {
        churn.write(0, &pattern(round, 200_000)).unwrap();
    }
    o.flush().unwrap();
    // Move everything once, without the commit that deletes old segments.
    while o.core.compact_step(false).unwrap() {}
    assert_eq!(read_all(&keep), pattern(7, 400_000));
    assert_eq!(read_all(&churn), pattern(23, 200_000));
    keep.write(65_536, &pattern(8, 70_000)).unwrap();
    o.core.commit().unwrap();
    let mut want = pattern(7, 400_000);
    want[65_536..135_536].copy_from_slice(&pattern(8, 70_000));
    assert_eq!(read_all(&keep), want);
    assert_eq!(read_all(&churn), pattern(23, 200_000));
    // A fresh handle (empty cache) agrees with the index.
    drop(keep);
    let again = o.open_content(o.lookup(root, "keep").unwrap().unwrap(), None, false).unwrap();
    assert_eq!(read_all(&again), want);
}

/// While clients write, background compaction leaves a mostly dead
/// segment alone as long as the organization as a whole is within
/// `compact_dead_ratio`, and takes it once the organization is past it; an
/// explicit compaction, and the background one once the organization is
/// quiet, apply the ratio segment by segment.
#[test]
fn compaction_under_writes_waits_for_the_organization_bound() {
    // The first segment holds five copies of churn, four of them dead;
    // keep, live, follows in the next one: `keep` bytes of it.
    let store = |keep_len: usize, quiet: Duration| {
        let d = tempfile::tempdir().unwrap();
        let (s, o, root) = setup_with(d.path(), StoreOptions { compact_quiet: quiet, ..compacting() });
        let churn = o.open_content(file(&o, root, "churn"), None, false).unwrap();
        let keep = o.open_content(file(&o, root, "keep"), None, false).unwrap();
        for round in 0..5u8 {
            churn.write(0, &pattern(round, 200_000)).unwrap();
        }
        keep.write(0, &pattern(9, keep_len)).unwrap();
        o.flush().unwrap();
        // No segment is empty: whatever is compacted had live records.
        let active = o.core.active_id();
        assert!(
            o.core.segments().iter().all(|s| s.id == active || s.live.load(std::sync::atomic::Ordering::Acquire) > 0)
        );
        (d, s, o, churn)
    };
    let busy = Duration::from_secs(3600);
    // The writes just made make the organization busy; within the bound
    // (0.8 of 4.1 MB dead).
    let (_d, _s, o, churn) = store(3 << 20, busy);
    assert!(!o.core.compact_step(true).unwrap(), "compacted while the organization is within its bound");
    assert!(o.core.compact_step(false).unwrap(), "an explicit compaction left a mostly dead segment");
    assert_eq!(read_all(&churn), pattern(4, 200_000));
    let (_d, _s, o, churn) = store(3 << 20, Duration::ZERO);
    assert!(o.core.compact_step(true).unwrap(), "a quiet organization kept a mostly dead segment");
    assert_eq!(read_all(&churn), pattern(4, 200_000));
    // Past the bound (0.8 of 1.1 MB dead).
    let (_d, _s, o, churn) = store(100_000, busy);
    assert!(o.core.compact_step(true).unwrap(), "nothing compacted past the organization's bound");
    assert_eq!(read_all(&churn), pattern(4, 200_000));

    // Past the bound because of dead records in the active segment: a
    // mostly live segment is not copied for them (it would be, over and
    // over, while the writes go on).
    let d = tempfile::tempdir().unwrap();
    let opts = StoreOptions { segment_size: 8 << 20, compact_quiet: busy, ..compacting() };
    let (_s, o, root) = setup_with(d.path(), opts);
    let keep = o.open_content(file(&o, root, "keep"), None, false).unwrap();
    let churn = o.open_content(file(&o, root, "churn"), None, false).unwrap();
    keep.write(0, &pattern(1, 3 << 20)).unwrap();
    keep.write(0, &pattern(2, 300_000)).unwrap(); // about 10 % of it dead
    o.core.roll_active().unwrap();
    for round in 0..20u8 {
        churn.write(0, &pattern(round, 200_000)).unwrap();
    }
    o.flush().unwrap();
    assert!(!o.core.compact_step(true).unwrap(), "copied a mostly live segment");
}

/// `write_consuming` (a WRITE's own buffer, sealed where it lies) stores
/// exactly what `write` stores, for writes at any offset and length
/// (whole chunks, partial ones merged with stored bytes or the tail,
/// several batches) in both record versions; what stays behind in the
/// caller's buffer of a whole chunk is not its plaintext, and no
/// plaintext reaches the segments.
#[test]
fn write_consuming_stores_what_write_stores() {
    use rand::{Rng, SeedableRng};
    in_both_versions(|| {
        let d = tempfile::tempdir().unwrap();
        let (_s, o, root) = setup(d.path());
        let by_copy = o.open_content(file(&o, root, "a"), None, false).unwrap();
        let in_place = o.open_content(file(&o, root, "b"), None, false).unwrap();
        let mut rng = rand::rngs::StdRng::seed_from_u64(22);
        let mut model = Vec::new();
        let chunk = CHUNK_SIZE as usize;
        for i in 0..60u8 {
            let (off, len) = match i % 4 {
                0 => (rng.gen_range(0..40) * chunk, rng.gen_range(1..=20) * chunk), // whole chunks
                1 => (rng.gen_range(0..2_600_000), rng.gen_range(1..300_000)),      // anywhere
                2 => (rng.gen_range(0..2_600_000), rng.gen_range(1..5_000)),        // tails, RMW
                _ => (rng.gen_range(0..40) * chunk + rng.gen_range(0..chunk), 9 << 20), // over a batch
            };
            let data = pattern(i, len);
            by_copy.write(off as u64, &data).unwrap();
            let mut buf = data.clone();
            in_place.write_consuming(off as u64, &mut buf).unwrap();
            if model.len() < off + len {
                model.resize(off + len, 0);
            }
            model[off..off + len].copy_from_slice(&data);
            if i % 4 == 0 && quiet().record_version == crate::storage::RecordVersion::Gcm {
                assert!(buf.chunks(chunk).zip(data.chunks(chunk)).all(|(sealed, plain)| sealed != plain));
            }
            if i % 7 == 0 {
                in_place.flush().unwrap();
            }
        }
        assert_eq!(read_all(&by_copy), model);
        assert_eq!(read_all(&in_place), model);
        in_place.flush().unwrap();
        let needle = &pattern(0, 4096)[1000..1064];
        for e in std::fs::read_dir(seg_dir(d.path())).unwrap() {
            let bytes = std::fs::read(e.unwrap().path()).unwrap();
            assert!(!bytes.windows(needle.len()).any(|w| w == needle), "plaintext in a segment");
        }
    });
}
