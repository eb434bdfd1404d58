//! Making a generation: meta.db snapshotted and sealed, the segments it
//! references cut into pieces and hashed, only the pieces the target does
//! not hold yet uploaded (in parallel, within the target's bandwidth), the
//! manifest last, then the retention (`retention.rs`).

use std::collections::{BTreeSet, HashMap};
use std::fs::File;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::SystemTime;

use sha2::{Digest, Sha256};

use super::manifest::{FORMAT, ObjectEntry, OrgManifest, Piece, SEAL_LABEL, ShareEntry, seal};
use super::objects::{self, ObjectStore, Uploader};
use super::target::TargetConfig;
use super::{Meter, OrgBackup, Remote, Report, org_dir_key, sha_hex};
use crate::backup::db::{create_private_dir, format_name};
use crate::keys::OrgKeys;
use crate::types::OrgId;

impl Remote {
    /// Makes a new generation of `org` on its target, then applies the
    /// retention. `shares`: the organization's shares now.
    pub fn backup_org(
        &self,
        org: OrgId,
        ob: &OrgBackup,
        keys: &dyn OrgKeys,
        shares: Vec<ShareEntry>,
        now: SystemTime,
        meter: &Meter,
    ) -> Result<Report, String> {
        let _lock = self.lock(org)?;
        let (store, tcfg) = self.open(&ob.target)?;
        let name = format_name(now);
        let work = self.state_dir.join(format!("work-{:016x}", org.0));
        let _ = std::fs::remove_dir_all(&work);
        create_private_dir(&work)?;
        let run = Run { remote: self, org, ob, keys, now, meter, store: &*store, target: tcfg, name, work };
        let res = run.run(shares);
        let work = run.work;
        let _ = std::fs::remove_dir_all(&work);
        res
    }
}

/// One backup run: what every step of it needs.
struct Run<'a> {
    remote: &'a Remote,
    org: OrgId,
    ob: &'a OrgBackup,
    keys: &'a dyn OrgKeys,
    now: SystemTime,
    meter: &'a Meter,
    store: &'a dyn ObjectStore,
    target: &'a TargetConfig,
    /// The new generation's name.
    name: String,
    /// Scratch directory (meta.db snapshot, its sealed copy).
    work: PathBuf,
}

impl Run<'_> {
    /// Makes the generation holding `shares`, then applies the retention.
    fn run(&self, shares: Vec<ShareEntry>) -> Result<Report, String> {
        let Run { remote, org, ob, keys, now, meter, store, target: tcfg, ref name, ref work } = *self;
        let org_rel = format!("store/orgs/{:016x}", org.0);
        let src_meta = remote.data_dir.join(&org_rel).join("meta.db");
        if !src_meta.is_file() {
            return Err(format!("organization #{} has no data yet", org.0));
        }
        let meta = work.join("meta.db");
        let seal_key = keys.org_subkey(org, SEAL_LABEL).map_err(|e| e.to_string())?;
        // Snapshot meta.db, then open every segment it references (a
        // segment compacted away in between: snapshot again).
        let seg_dir = remote.data_dir.join(&org_rel).join("seg");
        let mut opened = None;
        for _ in 0..crate::backup::data::ATTEMPTS {
            let _ = std::fs::remove_file(&meta);
            crate::backup::db::snapshot(&src_meta, &meta).map_err(|e| format!("cannot snapshot meta.db: {e}"))?;
            let segs = crate::backup::data::committed_segments(&meta)?;
            let all: std::io::Result<Vec<_>> = segs
                .iter()
                .map(|(n, len)| Ok((n.clone(), *len, File::open(seg_dir.join(format!("{n}.seg")))?)))
                .collect();
            match all {
                Ok(v) => {
                    opened = Some(v);
                    break;
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(format!("cannot open a segment: {e}")),
            }
        }
        let opened = opened.ok_or("segments kept vanishing during the backup")?;
        let plain = std::fs::read(&meta).map_err(|e| e.to_string())?;
        let sealed = seal(&seal_key, org, name, &plain)?;
        let sealed_path = work.join("meta.db.sealed");
        std::fs::write(&sealed_path, &sealed).map_err(|e| e.to_string())?;

        let base = org_dir_key(org);
        let existing: HashMap<String, u64> = store
            .list(&format!("{base}objects/"))?
            .into_iter()
            .filter_map(|o| o.key.strip_prefix(&format!("{base}objects/")).map(|k| (k.to_string(), o.size)))
            .collect();
        let meta_sha = sha_hex(&sealed);
        let mut files = vec![ObjectEntry {
            path: "meta.db".into(),
            size: sealed.len() as u64,
            pieces: vec![Piece { sha256: meta_sha.clone(), size: sealed.len() as u64 }],
        }];
        let piece = tcfg.piece_size_mib.max(1) << 20;
        let mut jobs: Vec<(String, Arc<File>, u64, u64)> = Vec::new();
        for (n, len, f) in opened {
            let actual = f.metadata().map_err(|e| e.to_string())?.len();
            if actual < len {
                return Err(format!("seg/{n}.seg: {actual} bytes on disk, {len} committed"));
            }
            let f = Arc::new(f);
            let mut pieces = Vec::new();
            let mut off = 0;
            while off < len {
                let plen = (len - off).min(piece);
                let sha = hash_range(&f, off, plen)?;
                jobs.push((sha.clone(), f.clone(), off, plen));
                pieces.push(Piece { sha256: sha, size: plen });
                off += plen;
            }
            files.push(ObjectEntry { path: format!("seg/{n}.seg"), size: len, pieces });
        }
        let sealed_file = Arc::new(File::open(&sealed_path).map_err(|e| e.to_string())?);
        jobs.push((meta_sha, sealed_file, 0, sealed.len() as u64));
        // Only what the store does not have yet (same name, same size).
        let mut seen = BTreeSet::new();
        jobs.retain(|(sha, _, _, len)| existing.get(sha) != Some(len) && seen.insert(sha.clone()));
        meter.total.store(jobs.iter().map(|j| j.3).sum(), Ordering::Relaxed);
        let mut up = Uploader::new(tcfg.bandwidth(), &remote.state_dir.join(format!("target-{}", ob.target)))?;
        up.progress = meter.done.clone();
        let report = Arc::new(parking_lot::Mutex::new(Report::default()));
        let queue = parking_lot::Mutex::new(jobs);
        let first_err = parking_lot::Mutex::new(None::<String>);
        std::thread::scope(|s| {
            for _ in 0..tcfg.parallel {
                s.spawn(|| {
                    loop {
                        if first_err.lock().is_some() {
                            return;
                        }
                        let Some((sha, f, off, len)) = queue.lock().pop() else { return };
                        match store.put_file(&format!("{base}objects/{sha}"), &f, off, len, &up) {
                            Ok(sent) => {
                                let mut r = report.lock();
                                r.uploaded_objects += 1;
                                r.uploaded_bytes += sent.bytes;
                                r.resumed_bytes += sent.resumed;
                            }
                            Err(e) => {
                                first_err.lock().get_or_insert(e);
                                return;
                            }
                        }
                    }
                });
            }
        });
        if let Some(e) = first_err.into_inner() {
            return Err(format!("upload to {} failed (the next run resumes): {e}", store.describe()));
        }
        let created = crate::types::jst::at(now);
        let mut m = OrgManifest {
            format: FORMAT,
            org: org.0,
            generation: name.to_string(),
            created: created.to_rfc3339(),
            created_unix: created.timestamp(),
            shares,
            files,
            mac: String::new(),
        };
        m.seal(&remote.mac_key);
        let text = serde_json::to_vec_pretty(&m).map_err(|e| e.to_string())?;
        store.put(&format!("{base}generations/{name}.json"), &text, &up)?;
        let mut r = Arc::try_unwrap(report).map(|m| m.into_inner()).unwrap_or_default();
        r.uploaded_bytes += text.len() as u64;
        r.generation = name.to_string();
        r.objects = m.files.iter().map(|f| f.pieces.len()).sum();
        r.bytes = m.size();
        let (gens, objs) = remote.retain(store, org, ob.generations)?;
        r.deleted_generations = gens;
        r.deleted_objects = objs;
        tracing::info!(org = org.0, generation = %name, target = %ob.target, uploaded = r.uploaded_bytes, "remote backup generation made");
        Ok(r)
    }
}

fn hash_range(f: &File, start: u64, len: u64) -> Result<String, String> {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut off = 0;
    while off < len {
        let n = (len - off).min(buf.len() as u64) as usize;
        objects::read_range(f, start + off, &mut buf[..n])?;
        h.update(&buf[..n]);
        off += n as u64;
    }
    Ok(hex::encode(h.finalize()))
}
