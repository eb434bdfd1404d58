//! Unit tests that need the module's internals (record locations, keys).

mod content;
mod iv;
mod namespace;
mod tamper;

use std::path::Path;
use std::sync::Arc;

use super::{NodeKind, OrgStore, RecordVersion, Store, StoreOptions};
use crate::keys::{Key32, MasterKey};
use crate::types::{FileTime, NodeId, OrgId};

pub(super) fn master() -> MasterKey {
    MasterKey::from_key(Key32::from_bytes([7; 32]))
}

thread_local! {
    /// Record version `quiet()` stores write (see `in_both_versions`).
    static WRITE_VERSION: std::cell::Cell<RecordVersion> = const { std::cell::Cell::new(RecordVersion::Gcm) };
}

/// Options for tests: no background thread, so nothing changes behind the
/// test's back.
pub(super) fn quiet() -> StoreOptions {
    StoreOptions { background: false, record_version: WRITE_VERSION.get(), ..StoreOptions::default() }
}

/// Runs `f` with stores writing record version 1 (what older stores hold),
/// then version 2.
pub(super) fn in_both_versions(f: impl Fn()) {
    for v in [RecordVersion::CtrHmac, RecordVersion::Gcm] {
        WRITE_VERSION.set(v);
        f();
    }
    WRITE_VERSION.set(RecordVersion::Gcm);
}

/// Runs `f` with READs forced through one path: records staged and copied
/// (`direct` false) or read in place after a zero-fill (true), whatever
/// their size (`content/read.rs`, `reads_direct`).
pub(super) fn with_read_path<T>(direct: bool, f: impl FnOnce() -> T) -> T {
    super::content::FORCE_DIRECT.with(|d| d.set(Some(direct)));
    let r = f();
    super::content::FORCE_DIRECT.with(|d| d.set(None));
    r
}

/// `read_append` of `off..off + len` after a prefix, into a buffer whose
/// spare capacity holds stale bytes (as a reused buffer would hold another
/// tenant's), once staged and once in place, which must agree: what it
/// appends is exactly the result, and a failure leaves the buffer as it was.
pub(super) fn read_append_both(c: &super::Content, off: u64, len: usize) -> Result<Vec<u8>, super::StorageError> {
    const PREFIX: usize = 5;
    let one = |direct| {
        let mut out = vec![0xA5; PREFIX + len + 200_000];
        out.truncate(PREFIX);
        let r = with_read_path(direct, || c.read_append(off, len, &mut out));
        match r {
            Ok(n) => assert_eq!(out.len(), PREFIX + n),
            Err(_) => assert_eq!(out.len(), PREFIX, "a failed read appends nothing (in place: {direct})"),
        }
        assert_eq!(out[..PREFIX], [0xA5; PREFIX], "the prefix is left alone (in place: {direct})");
        r.map(|_| out[PREFIX..].to_vec())
    };
    let staged = one(false);
    assert_eq!(one(true), staged, "off {off} len {len}: the in-place read agrees with the staged one");
    staged
}

pub(super) fn open(dir: &Path) -> Arc<Store> {
    Store::open(dir, &master(), quiet()).unwrap()
}

/// A store with organization 1 and a share root.
pub(super) fn setup(dir: &Path) -> (Arc<Store>, Arc<OrgStore>, NodeId) {
    setup_with(dir, quiet())
}

/// `setup` with other store options.
pub(super) fn setup_with(dir: &Path, opts: StoreOptions) -> (Arc<Store>, Arc<OrgStore>, NodeId) {
    let s = Store::open(dir, &master(), opts).unwrap();
    s.create_org(OrgId(1)).unwrap();
    let o = s.org(OrgId(1)).unwrap();
    let root = o.create_root(FileTime(1)).unwrap();
    (s, o, root)
}

/// Organization 1's segment directory under the store at `dir`.
pub(super) fn seg_dir(dir: &Path) -> std::path::PathBuf {
    dir.join("orgs").join(format!("{:016x}", 1)).join("seg")
}

pub(super) fn file(o: &OrgStore, dir: NodeId, name: &str) -> NodeId {
    o.create(dir, name, NodeKind::File, 0x20, FileTime(2)).unwrap()
}

/// The SMB engine shares these across threads.
#[test]
fn handles_are_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Store>();
    check::<OrgStore>();
    check::<super::Content>();
    check::<super::StorageError>();
}

pub(super) fn pattern(seed: u8, len: usize) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) ^ (i >> 8) as u8).collect()
}
