//! Reading a tree out of an organization store: a fetched backup
//! generation ([`crate::storage::Store::open_copy`]) or the live one.
//!
//! - [`restore_tree`]: copies a file or folder of a generation into the
//!   live share under a new name, never over anything (restore-files).
//! - [`Export`]: writes files decrypted, with names and modification
//!   times, into a directory or a tar file (`org export`).

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

use super::Meter;
use crate::storage::{Meta, MetaUpdate, NodeKind, OrgStore, StorageError};
use crate::types::{FileTime, NodeId};

/// Files and bytes copied.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Counts {
    /// Files.
    pub files: u64,
    /// Folders.
    pub folders: u64,
    /// Bytes of file data.
    pub bytes: u64,
}

fn serr(what: &str, e: StorageError) -> String {
    format!("{what}: {e}")
}

/// The node at `path` ('/'-separated, relative to `root`; "" is `root`).
pub fn resolve(s: &OrgStore, root: NodeId, path: &str) -> Result<NodeId, String> {
    let mut n = root;
    for part in path.split('/').filter(|p| !p.is_empty()) {
        n = s.lookup(n, part).map_err(|e| serr(path, e))?.ok_or_else(|| format!("{path}: not found"))?;
    }
    Ok(n)
}

/// Copies `src_node` of `src` (and everything below it) into `dst` under
/// `dst_parent` as `name`, which must not exist (`Exists` otherwise): a
/// restore never overwrites. Data, attributes, times and security
/// descriptors are copied; named streams are not.
pub fn restore_tree(
    src: &OrgStore,
    src_node: NodeId,
    dst: &OrgStore,
    dst_parent: NodeId,
    name: &str,
    meter: &Meter,
) -> Result<Counts, String> {
    let mut c = Counts::default();
    copy_node(src, src_node, dst, dst_parent, name, &mut c, meter)?;
    Ok(c)
}

fn times(m: &Meta) -> MetaUpdate {
    MetaUpdate {
        attrs: Some(m.attrs),
        created: Some(m.created),
        accessed: Some(m.accessed),
        written: Some(m.written),
        changed: Some(m.changed),
    }
}

fn copy_node(
    src: &OrgStore,
    node: NodeId,
    dst: &OrgStore,
    parent: NodeId,
    name: &str,
    c: &mut Counts,
    meter: &Meter,
) -> Result<(), String> {
    let m = src.stat(node).map_err(|e| serr(name, e))?;
    let now = FileTime::from_system(std::time::SystemTime::now());
    let new = dst.create(parent, name, m.kind, m.attrs, now).map_err(|e| serr(name, e))?;
    if let Ok(Some(sd)) = src.get_security(node) {
        dst.set_security(new, &sd).map_err(|e| serr(name, e))?;
    }
    match m.kind {
        NodeKind::Directory => {
            c.folders += 1;
            for e in src.list(node).map_err(|e| serr(name, e))? {
                copy_node(src, e.meta.id, dst, new, &e.name, c, meter)?;
            }
        }
        NodeKind::File => {
            c.files += 1;
            let from = src.open_content(node, None, false).map_err(|e| serr(name, e))?;
            let to = dst.open_content(new, None, false).map_err(|e| serr(name, e))?;
            let mut buf = vec![0u8; 1 << 20];
            let mut off = 0u64;
            loop {
                let n = from.read(off, &mut buf).map_err(|e| serr(name, e))?;
                if n == 0 {
                    break;
                }
                to.write(off, &buf[..n]).map_err(|e| serr(name, e))?;
                off += n as u64;
                meter.done.fetch_add(n as u64, Ordering::Relaxed);
            }
            to.flush().map_err(|e| serr(name, e))?;
            c.bytes += off;
        }
    }
    // Last, so writing the data did not move the times.
    dst.set_meta(new, &times(&m)).map_err(|e| serr(name, e))?;
    Ok(())
}

/// Bytes of file data below `node` (for progress).
pub fn tree_size(s: &OrgStore, node: NodeId) -> u64 {
    let Ok(m) = s.stat(node) else { return 0 };
    match m.kind {
        NodeKind::File => m.size,
        NodeKind::Directory => s.list(node).unwrap_or_default().iter().map(|e| tree_size(s, e.meta.id)).sum(),
    }
}

/// Where `org export` writes.
pub enum Export {
    /// A directory (created; must be empty or absent).
    Dir(PathBuf),
    /// A tar file (GNU format: long and UTF-8 names).
    Tar(Box<tar::Builder<File>>),
}

impl Export {
    /// `to` ending in `.tar` is a tar file (never overwritten), else a directory.
    pub fn create(to: &Path) -> Result<Export, String> {
        if to.extension().is_some_and(|e| e == "tar") {
            let f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(to)
                .map_err(|e| format!("{}: {e}", to.display()))?;
            let mut b = tar::Builder::new(f);
            b.mode(tar::HeaderMode::Complete);
            return Ok(Export::Tar(Box::new(b)));
        }
        if to.exists() && std::fs::read_dir(to).map_err(|e| e.to_string())?.next().is_some() {
            return Err(format!("{} exists and is not empty", to.display()));
        }
        std::fs::create_dir_all(to).map_err(|e| format!("{}: {e}", to.display()))?;
        Ok(Export::Dir(to.to_path_buf()))
    }

    /// Writes the tree under `node` as `rel` ('/'-separated).
    pub fn tree(&mut self, s: &OrgStore, node: NodeId, rel: &str, c: &mut Counts, meter: &Meter) -> Result<(), String> {
        let m = s.stat(node).map_err(|e| serr(rel, e))?;
        let mtime = m.written.to_system();
        match m.kind {
            NodeKind::Directory => {
                c.folders += 1;
                self.dir(rel, mtime)?;
                for e in s.list(node).map_err(|e| serr(rel, e))? {
                    if e.name.contains('/') || e.name == ".." || e.name == "." {
                        return Err(format!("{rel}: unexpected name {:?}", e.name));
                    }
                    self.tree(s, e.meta.id, &format!("{rel}/{}", e.name), c, meter)?;
                }
                if let Export::Dir(root) = self {
                    let _ = set_mtime(&root.join(rel), mtime);
                }
            }
            NodeKind::File => {
                c.files += 1;
                c.bytes += m.size;
                let content = s.open_content(node, None, false).map_err(|e| serr(rel, e))?;
                let mut r = ContentReader { c: &content, off: 0, meter };
                match self {
                    Export::Dir(root) => {
                        let p = root.join(rel);
                        let mut f = File::create(&p).map_err(|e| format!("{}: {e}", p.display()))?;
                        std::io::copy(&mut r, &mut f).map_err(|e| format!("{}: {e}", p.display()))?;
                        f.flush().map_err(|e| e.to_string())?;
                        drop(f);
                        set_mtime(&p, mtime)?;
                    }
                    Export::Tar(b) => {
                        let mut h = tar::Header::new_gnu();
                        h.set_entry_type(tar::EntryType::Regular);
                        h.set_size(m.size);
                        h.set_mode(0o644);
                        h.set_mtime(unix(mtime));
                        b.append_data(&mut h, rel, &mut r).map_err(|e| format!("{rel}: {e}"))?;
                    }
                }
            }
        }
        Ok(())
    }

    fn dir(&mut self, rel: &str, mtime: std::time::SystemTime) -> Result<(), String> {
        match self {
            Export::Dir(root) => std::fs::create_dir_all(root.join(rel)).map_err(|e| format!("{rel}: {e}")),
            Export::Tar(b) => {
                let mut h = tar::Header::new_gnu();
                h.set_entry_type(tar::EntryType::Directory);
                h.set_size(0);
                h.set_mode(0o755);
                h.set_mtime(unix(mtime));
                b.append_data(&mut h, format!("{rel}/"), std::io::empty()).map_err(|e| format!("{rel}: {e}"))
            }
        }
    }

    /// Finishes a tar file (and syncs it).
    pub fn finish(self) -> Result<(), String> {
        if let Export::Tar(b) = self {
            let f = b.into_inner().map_err(|e| e.to_string())?;
            f.sync_all().map_err(|e| e.to_string())?;
        }
        Ok(())
    }
}

fn unix(t: std::time::SystemTime) -> u64 {
    t.duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

fn set_mtime(p: &Path, t: std::time::SystemTime) -> Result<(), String> {
    let f = File::options().read(true).open(p).map_err(|e| format!("{}: {e}", p.display()))?;
    f.set_times(std::fs::FileTimes::new().set_modified(t)).map_err(|e| format!("{}: {e}", p.display()))
}

struct ContentReader<'a> {
    c: &'a crate::storage::Content,
    off: u64,
    meter: &'a Meter,
}

impl std::io::Read for ContentReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.c.read(self.off, buf).map_err(|e| std::io::Error::other(e.to_string()))?;
        self.off += n as u64;
        self.meter.done.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}
