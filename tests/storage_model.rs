//! Model-based test of the storage engine: random sequences of write, read,
//! truncate/extend, zero-range, rename (with replace and case changes),
//! delete, flush, compaction, clean reopen and simulated crash (a copy of
//! the files taken while the store is running) run against an in-memory
//! model, which they must match byte for byte.
//!
//! More cases: `PROPTEST_CASES=200 cargo test --test storage_model`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use proptest::prelude::*;
use smbvault::keys::{Key32, MasterKey};
use smbvault::storage::{Content, NodeKind, OrgStore, RecordVersion, Store, StoreOptions};
use smbvault::types::{FileTime, NodeId, OrgId};

const SLOTS: usize = 3;
const CHUNK: u64 = 65536;

#[derive(Debug, Clone)]
enum Op {
    Write { slot: usize, off: u64, len: usize, seed: u8 },
    Read { slot: usize, off: u64, len: usize },
    SetLen { slot: usize, len: u64 },
    Zero { slot: usize, off: u64, len: u64 },
    Rename { from: usize, to: usize, upper: bool },
    Delete { slot: usize },
    Flush,
    Compact,
    Migrate,
    Reopen,
    Crash,
}

/// Offsets that like chunk boundaries.
fn offset() -> impl Strategy<Value = u64> {
    prop_oneof![0u64..400_000, (0u64..7, -3i64..=3).prop_map(|(k, d)| (k * CHUNK).saturating_add_signed(d)),]
}

fn op() -> impl Strategy<Value = Op> {
    let slot = 0..SLOTS;
    prop_oneof![
        6 => (slot.clone(), offset(), prop_oneof![1usize..5000, 1usize..140_000], any::<u8>())
            .prop_map(|(slot, off, len, seed)| Op::Write { slot, off, len, seed }),
        2 => (slot.clone(), offset(), 1usize..140_000).prop_map(|(slot, off, len)| Op::Read { slot, off, len }),
        2 => (slot.clone(), offset()).prop_map(|(slot, len)| Op::SetLen { slot, len }),
        1 => (slot.clone(), offset(), 0u64..200_000).prop_map(|(slot, off, len)| Op::Zero { slot, off, len }),
        1 => (slot.clone(), slot.clone(), any::<bool>()).prop_map(|(from, to, upper)| Op::Rename { from, to, upper }),
        1 => slot.prop_map(|slot| Op::Delete { slot }),
        2 => Just(Op::Flush),
        1 => Just(Op::Compact),
        1 => Just(Op::Migrate),
        1 => Just(Op::Reopen),
        1 => Just(Op::Crash),
    ]
}

fn name(slot: usize, upper: bool) -> String {
    let n = format!("ファイル-{slot}.dat");
    if upper { n.to_uppercase() } else { n }
}

fn data(seed: u8, len: usize) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(seed | 1).wrapping_add(seed) ^ (i >> 9) as u8).collect()
}

fn options(record_version: RecordVersion) -> StoreOptions {
    // Small segments and eager compaction so compaction really moves data.
    StoreOptions {
        background: false,
        segment_size: 512 << 10,
        compact_min_dead: 0,
        record_version,
        ..StoreOptions::default()
    }
}

fn master() -> MasterKey {
    MasterKey::from_key(Key32::from_bytes([3; 32]))
}

struct Harness {
    dirs: Vec<tempfile::TempDir>,
    store: Option<Arc<Store>>,
    org: Option<Arc<OrgStore>>,
    root: NodeId,
    handles: [Option<Arc<Content>>; SLOTS],
    model: [Option<Vec<u8>>; SLOTS],
    durable: [Option<Vec<u8>>; SLOTS],
    /// Record version written now; `mixed` switches it at every reopen
    /// (a store written by the old format, served by the new one, and back).
    version: RecordVersion,
    mixed: bool,
}

impl Harness {
    fn new(version: RecordVersion, mixed: bool) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), &master(), options(version)).unwrap();
        store.create_org(OrgId(9)).unwrap();
        let org = store.org(OrgId(9)).unwrap();
        let root = org.create_root(FileTime(1)).unwrap();
        org.flush().unwrap();
        Harness {
            dirs: vec![dir],
            store: Some(store),
            org: Some(org),
            root,
            handles: Default::default(),
            model: Default::default(),
            durable: Default::default(),
            version,
            mixed,
        }
    }

    fn org(&self) -> &OrgStore {
        self.org.as_ref().unwrap()
    }

    fn path(&self) -> PathBuf {
        self.dirs.last().unwrap().path().to_path_buf()
    }

    fn handle(&mut self, slot: usize) -> Arc<Content> {
        if self.model[slot].is_none() {
            self.org().create(self.root, &name(slot, false), NodeKind::File, 0x20, FileTime(2)).unwrap();
            self.model[slot] = Some(Vec::new());
        }
        if self.handles[slot].is_none() {
            let node = self.org().lookup(self.root, &name(slot, true)).unwrap().unwrap();
            self.handles[slot] = Some(self.org().open_content(node, None, false).unwrap());
        }
        self.handles[slot].clone().unwrap()
    }

    fn apply(&mut self, op: &Op) {
        match *op {
            Op::Write { slot, off, len, seed } => {
                let c = self.handle(slot);
                let d = data(seed, len);
                c.write(off, &d).unwrap();
                let m = self.model[slot].as_mut().unwrap();
                let end = off as usize + len;
                if m.len() < end {
                    m.resize(end, 0);
                }
                m[off as usize..end].copy_from_slice(&d);
            }
            Op::Read { slot, off, len } => {
                let Some(m) = self.model[slot].clone() else {
                    return;
                };
                let mut buf = vec![0xAA; len];
                let n = self.handle(slot).read(off, &mut buf).unwrap();
                let want = m.get(off as usize..).map_or(&[][..], |t| &t[..t.len().min(len)]);
                assert_eq!(&buf[..n], want, "read {off}+{len}");
            }
            Op::SetLen { slot, len } => {
                if self.model[slot].is_none() {
                    return;
                }
                self.handle(slot).set_len(len).unwrap();
                self.model[slot].as_mut().unwrap().resize(len as usize, 0);
            }
            Op::Zero { slot, off, len } => {
                if self.model[slot].is_none() {
                    return;
                }
                self.handle(slot).zero_range(off, len).unwrap();
                let m = self.model[slot].as_mut().unwrap();
                let end = (off.saturating_add(len) as usize).min(m.len());
                if (off as usize) < end {
                    m[off as usize..end].fill(0);
                }
            }
            Op::Rename { from, to, upper } => self.rename(from, to, upper),
            Op::Delete { slot } => {
                if self.model[slot].is_none() {
                    return;
                }
                let node = self.org().lookup(self.root, &name(slot, false)).unwrap().unwrap();
                self.org().remove(node).unwrap();
                self.model[slot] = None;
                self.handles[slot] = None;
            }
            Op::Flush => {
                self.org().flush().unwrap();
                self.durable = self.model.clone();
            }
            Op::Compact => {
                self.store.as_ref().unwrap().compact_now().unwrap();
                self.durable = self.model.clone();
            }
            Op::Migrate => {
                self.org().migrate().unwrap();
                assert_eq!(self.org().v1_records().unwrap(), 0, "records left in version 1");
                self.durable = self.model.clone();
            }
            Op::Reopen => {
                self.close();
                self.durable = self.model.clone();
                self.reopen(self.path());
            }
            Op::Crash => {
                let snap = tempfile::tempdir().unwrap();
                copy_tree(&self.path(), snap.path());
                self.handles = Default::default();
                self.org = None;
                // Not `close`: the crashed process never committed again.
                std::mem::forget(self.store.take());
                self.model = self.durable.clone();
                let p = snap.path().to_path_buf();
                self.dirs.push(snap);
                self.reopen(p);
            }
        }
    }

    fn rename(&mut self, from: usize, to: usize, upper: bool) {
        if self.model[from].is_none() {
            return;
        }
        let node = self.org().lookup(self.root, &name(from, !upper)).unwrap().unwrap();
        self.org().rename(node, self.root, &name(to, upper), true).unwrap();
        if from != to {
            self.model[to] = self.model[from].take();
            self.handles[to] = self.handles[from].take();
        }
        let listed = self.org().list(self.root).unwrap();
        assert!(listed.iter().any(|e| e.name == name(to, upper) && e.meta.id == node), "case preserved");
    }

    fn close(&mut self) {
        self.handles = Default::default();
        self.org = None;
        if let Some(s) = self.store.take() {
            s.close().unwrap();
        }
    }

    fn reopen(&mut self, dir: PathBuf) {
        if self.mixed {
            self.version = match self.version {
                RecordVersion::CtrHmac => RecordVersion::Gcm,
                RecordVersion::Gcm => RecordVersion::CtrHmac,
            };
        }
        let store = Store::open(&dir, &master(), options(self.version)).unwrap();
        self.org = Some(store.org(OrgId(9)).unwrap());
        self.store = Some(store);
        for slot in 0..SLOTS {
            self.verify(slot);
        }
    }

    fn verify(&mut self, slot: usize) {
        let found = self.org().lookup(self.root, &name(slot, true)).unwrap();
        let Some(m) = self.model[slot].clone() else {
            assert_eq!(found, None, "slot {slot} should not exist");
            return;
        };
        let node = found.unwrap_or_else(|| panic!("slot {slot} missing"));
        assert_eq!(self.org().stat(node).unwrap().size, m.len() as u64);
        let c = self.handle(slot);
        let mut buf = vec![0xAA; m.len() + 100];
        let n = c.read(0, &mut buf).unwrap();
        assert_eq!(n, m.len(), "size of slot {slot}");
        assert!(buf[..n] == m[..], "content of slot {slot} differs");
    }
}

fn copy_tree(from: &Path, to: &Path) {
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

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, max_shrink_iters: 200, ..ProptestConfig::default() })]

    #[test]
    fn storage_matches_model(ops in proptest::collection::vec(op(), 1..50)) {
        run(Harness::new(RecordVersion::Gcm, false), &ops);
    }

    /// Version 1 records first, then both versions in turn (the version
    /// switches at every reopen and crash), migration and compaction
    /// between them: the store reads what the model says throughout.
    #[test]
    fn both_record_versions_match_model(ops in proptest::collection::vec(op(), 1..50)) {
        let mut h = Harness::new(RecordVersion::CtrHmac, true);
        run_ops(&mut h, &ops);
        // Then the new binary migrates everything and still reads it all.
        h.close();
        h.version = RecordVersion::CtrHmac;
        h.reopen(h.path());
        h.org().migrate().unwrap();
        prop_assert_eq!(h.org().v1_records().unwrap(), 0);
        for slot in 0..SLOTS {
            h.verify(slot);
        }
        h.close();
        h.reopen(h.path());
    }
}

fn run(mut h: Harness, ops: &[Op]) {
    run_ops(&mut h, ops);
    h.close();
    h.reopen(h.path());
}

fn run_ops(h: &mut Harness, ops: &[Op]) {
    {
        for op in ops {
            h.apply(op);
            match *op {
                Op::Write { slot, .. } | Op::SetLen { slot, .. } | Op::Zero { slot, .. } | Op::Delete { slot } => {
                    h.verify(slot)
                }
                Op::Rename { from, to, .. } => {
                    h.verify(from);
                    h.verify(to);
                }
                _ => {}
            }
        }
    }
}
