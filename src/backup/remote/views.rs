//! Previous Versions over the remote backups: each organization's
//! generations as read-only views of its shares, for the SMB engine
//! (`engine::services::Snapshots`, implemented over this by `app.rs`).
//!
//! - Listing: the generations on the organization's target, each with its
//!   verified manifest. Manifests never change once written, so each is
//!   fetched once; the target is listed again after [`LIST_TTL`].
//! - Opening: a generation's meta.db alone (names, tree, descriptors) for
//!   listings and access checks, the whole generation when a file's
//!   contents are read. Both are downloaded into the local cache
//!   (`<remote_cache_dir>/views/<org>/<GEN>[.meta]`), every object checked
//!   against the manifest's SHA-256 and meta.db's seal, and opened with
//!   `Store::open_copy`. What the cache holds is what the data directory
//!   holds (encrypted records, meta.db with sealed names): the same threat
//!   model (docs/storage-format.md §1).
//! - Bounded: `[backup] previous_versions_cache_mib`. Past it, the least
//!   recently used generations no handle uses are closed and deleted.
//!   Downloads run one at a time server-wide, so hostile tenants cannot
//!   make the server fetch many generations at once.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{Meter, OrgManifest, Remote};
use crate::accounts::Accounts;
use crate::storage::{OrgStore, Store};
use crate::types::{NodeId, OrgId};

/// How long a listing of a target is used before it is listed again.
pub const LIST_TTL: Duration = Duration::from_secs(10);

struct Listing {
    at: Instant,
    /// Verified manifests, oldest first.
    gens: Vec<Arc<OrgManifest>>,
}

struct Cached {
    store: Arc<OrgStore>,
    dir: PathBuf,
    bytes: u64,
    used: Instant,
}

#[derive(Default)]
struct State {
    listings: HashMap<OrgId, Listing>,
    /// Manifests by (organization, generation): never change once written.
    manifests: HashMap<(OrgId, String), Arc<OrgManifest>>,
    /// Opened generations by (organization, generation, with contents).
    open: HashMap<(OrgId, String, bool), Cached>,
}

/// The remote backups as Previous Versions.
pub struct Views {
    remote: Arc<Remote>,
    accounts: Arc<Accounts>,
    store: Arc<Store>,
    limit: u64,
    state: parking_lot::Mutex<State>,
    /// One download at a time.
    fetching: parking_lot::Mutex<()>,
}

impl Views {
    /// `limit`: bytes the cache may hold (at least the generation in use).
    /// Clears what an earlier run left in the cache.
    pub fn new(remote: Arc<Remote>, accounts: Arc<Accounts>, store: Arc<Store>, limit: u64) -> Views {
        let _ = std::fs::remove_dir_all(remote.views_dir());
        Views { remote, accounts, store, limit, state: Default::default(), fetching: Default::default() }
    }

    /// The organization's verified generations, oldest first.
    fn generations(&self, org: OrgId) -> Vec<Arc<OrgManifest>> {
        if let Some(l) = self.state.lock().listings.get(&org)
            && l.at.elapsed() < LIST_TTL
        {
            return l.gens.clone();
        }
        let Ok(Some(ob)) = self.accounts.org_backup(org) else { return Vec::new() };
        let names = match self.remote.generation_names(org, &ob) {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(org = org.0, error = %e, "previous versions: cannot list the backup target");
                return Vec::new();
            }
        };
        let mut gens = Vec::new();
        for name in names {
            let known = self.state.lock().manifests.get(&(org, name.clone())).cloned();
            let m = match known {
                Some(m) => m,
                None => match self.remote.manifest(org, &ob, &name) {
                    Ok(m) => {
                        let m = Arc::new(m);
                        self.state.lock().manifests.insert((org, name), m.clone());
                        m
                    }
                    Err(e) => {
                        tracing::warn!(org = org.0, generation = %name, error = %e, "previous versions: manifest unusable");
                        continue;
                    }
                },
            };
            gens.push(m);
        }
        let mut st = self.state.lock();
        // Generations the retention deleted are forgotten.
        let kept: std::collections::HashSet<&str> = gens.iter().map(|m| m.generation.as_str()).collect();
        st.manifests.retain(|(o, g), _| *o != org || kept.contains(g.as_str()));
        st.listings.insert(org, Listing { at: Instant::now(), gens: gens.clone() });
        gens
    }

    fn share_root(m: &OrgManifest, share: &str) -> Option<NodeId> {
        let want = crate::types::fold_name(share);
        m.shares.iter().find(|s| crate::types::fold_name(&s.name) == want).map(|s| NodeId(s.root))
    }

    fn opened(&self, org: OrgId, m: &OrgManifest, data: bool) -> Option<Arc<OrgStore>> {
        let key = (org, m.generation.clone(), data);
        if let Some(c) = self.state.lock().open.get_mut(&key) {
            c.used = Instant::now();
            return Some(c.store.clone());
        }
        let _one = self.fetching.lock();
        if let Some(c) = self.state.lock().open.get_mut(&key) {
            c.used = Instant::now();
            return Some(c.store.clone());
        }
        let ob = self.accounts.org_backup(org).ok().flatten()?;
        let leaf = if data { m.generation.clone() } else { format!("{}.meta", m.generation) };
        let dir = self.remote.views_dir().join(format!("{:016x}", org.0)).join(leaf);
        let bytes = if data { m.size() } else { m.files.iter().filter(|f| f.path == "meta.db").map(|f| f.size).sum() };
        self.make_room(bytes);
        let fetched = self.remote.fetch_to(org, &ob, m, self.store.as_ref(), &dir, !data, &Meter::default());
        let dir = match fetched {
            Ok(d) => d,
            Err(e) => {
                tracing::error!(org = org.0, generation = %m.generation, error = %e, "previous versions: cannot fetch the generation");
                return None;
            }
        };
        let store = match self.store.open_copy(org, &dir) {
            Ok(s) => Arc::new(s),
            Err(e) => {
                tracing::error!(org = org.0, generation = %m.generation, error = %e, "previous versions: cannot open the generation");
                return None;
            }
        };
        tracing::info!(org = org.0, generation = %m.generation, contents = data, bytes, "previous versions: generation fetched");
        self.state.lock().open.insert(key, Cached { store: store.clone(), dir, bytes, used: Instant::now() });
        Some(store)
    }

    /// Closes and deletes least recently used generations no handle
    /// holds until `incoming` more bytes fit under the limit.
    fn make_room(&self, incoming: u64) {
        let mut st = self.state.lock();
        loop {
            let held: u64 = st.open.values().map(|c| c.bytes).sum();
            if held + incoming <= self.limit {
                return;
            }
            let victim = st
                .open
                .iter()
                .filter(|(_, c)| Arc::strong_count(&c.store) == 1)
                .min_by_key(|(_, c)| c.used)
                .map(|(k, _)| k.clone());
            let Some(k) = victim else { return };
            if let Some(c) = st.open.remove(&k) {
                drop(c.store);
                let _ = std::fs::remove_dir_all(&c.dir);
                tracing::info!(org = k.0.0, generation = %k.1, "previous versions: evicted from the cache");
            }
        }
    }

    /// Bytes the cache holds now (for tests and status).
    pub fn cached_bytes(&self) -> u64 {
        self.state.lock().open.values().map(|c| c.bytes).sum()
    }
}

impl Views {
    /// The times (Unix seconds) of the organization's generations that
    /// hold a share called `share`, newest first.
    pub fn times(&self, org: OrgId, share: &str) -> Vec<i64> {
        let mut t: Vec<i64> = self
            .generations(org)
            .iter()
            .filter(|m| Self::share_root(m, share).is_some())
            .map(|m| m.created_unix)
            .collect();
        t.sort_unstable_by(|a, b| b.cmp(a));
        t.dedup();
        t
    }

    /// The generation taken at `time` opened (with its contents when
    /// `data`), and the share's root in it.
    pub fn open(&self, org: OrgId, share: &str, time: i64, data: bool) -> Option<(Arc<OrgStore>, NodeId)> {
        // The newest generation of that second holding the share.
        let m = self
            .generations(org)
            .into_iter()
            .rev()
            .find(|m| m.created_unix == time && Self::share_root(m, share).is_some())?;
        let root = Self::share_root(&m, share)?;
        let store = self.opened(org, &m, data)?;
        Some((store, root))
    }
}
