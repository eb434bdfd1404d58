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
    /// Bytes of file data (named streams included).
    pub bytes: u64,
    /// Named streams.
    pub streams: u64,
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
/// restore never overwrites. Data, named streams (of files and folders),
/// attributes, times and security descriptors are copied.
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
            c.bytes += copy_stream(src, node, dst, new, None, name, meter)?;
        }
    }
    for st in named_streams(src, node).map_err(|e| serr(name, e))? {
        c.streams += 1;
        c.bytes += copy_stream(src, node, dst, new, Some(&st), name, meter)?;
    }
    // Last, so writing the data did not move the times.
    dst.set_meta(new, &times(&m)).map_err(|e| serr(name, e))?;
    Ok(())
}

/// The named streams of a node, by their stored names (the default data
/// stream left out).
fn named_streams(s: &OrgStore, node: NodeId) -> Result<Vec<String>, StorageError> {
    Ok(s.list_streams(node)?.into_iter().map(|i| i.name).filter(|n| !n.is_empty()).collect())
}

/// Copies one stream (`None`: the data) of `node` to `new`; its length.
fn copy_stream(
    src: &OrgStore,
    node: NodeId,
    dst: &OrgStore,
    new: NodeId,
    stream: Option<&str>,
    name: &str,
    meter: &Meter,
) -> Result<u64, String> {
    let from = src.open_content(node, stream, false).map_err(|e| serr(name, e))?;
    let to = dst.open_content(new, stream, stream.is_some()).map_err(|e| serr(name, e))?;
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
    Ok(off)
}

/// Bytes of file data below `node` (for progress).
pub fn tree_size(s: &OrgStore, node: NodeId) -> u64 {
    let Ok(m) = s.stat(node) else { return 0 };
    match m.kind {
        NodeKind::File => s.list_streams(node).map(|v| v.iter().map(|i| i.size).sum()).unwrap_or(m.size),
        NodeKind::Directory => {
            let own: u64 = s.list_streams(node).map(|v| v.iter().map(|i| i.size).sum()).unwrap_or(0);
            own + s.list(node).unwrap_or_default().iter().map(|e| tree_size(s, e.meta.id)).sum::<u64>()
        }
    }
}

/// Where `org export` writes the files.
enum Sink {
    /// A directory (created; must be empty or absent).
    Dir(PathBuf),
    /// A tar file (GNU format: long and UTF-8 names).
    Tar(Box<tar::Builder<File>>),
}

/// `org export`'s output: each share as `<share>/…` with the files'
/// data, names and modification times, in a directory or a tar file.
///
/// Named streams (Windows alternate data streams such as
/// `Zone.Identifier`, macOS `AFP_AfpInfo` / `AFP_Resource`) go to a
/// sidecar folder: `.streams/000001`, `.streams/000002`, … hold their bytes
/// and `.streams/index.jsonl` says whose each is, one line per stream:
/// `{"path":"share/dir/file.txt","stream":"Zone.Identifier","data":"000001","size":26}`.
/// Why not `file.txt:stream` files: a colon is not allowed in Windows or
/// Finder file names, so the export would not unpack where customers
/// open it; why not extended attributes: tar tools and file systems
/// drop them or cap their size. The files themselves stay exactly what
/// staff saw; the streams are all kept, byte for byte, and a tool (or a
/// person with the index) can put them back.
pub struct Export {
    sink: Sink,
    /// One JSON line per named stream written.
    index: Vec<String>,
}

/// Name of the sidecar folder of named streams in an export.
pub const STREAMS_DIR: &str = ".streams";

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
            return Ok(Export { sink: Sink::Tar(Box::new(b)), index: Vec::new() });
        }
        if to.exists() && std::fs::read_dir(to).map_err(|e| e.to_string())?.next().is_some() {
            return Err(format!("{} exists and is not empty", to.display()));
        }
        std::fs::create_dir_all(to).map_err(|e| format!("{}: {e}", to.display()))?;
        Ok(Export { sink: Sink::Dir(to.to_path_buf()), index: Vec::new() })
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
                if let Sink::Dir(root) = &self.sink {
                    let _ = set_mtime(&root.join(rel), mtime);
                }
            }
            NodeKind::File => {
                c.files += 1;
                c.bytes += m.size;
                let content = s.open_content(node, None, false).map_err(|e| serr(rel, e))?;
                self.file(rel, m.size, mtime, &content, meter)?;
            }
        }
        for st in s.list_streams(node).map_err(|e| serr(rel, e))? {
            if st.name.is_empty() {
                continue;
            }
            c.streams += 1;
            c.bytes += st.size;
            let content = s.open_content(node, Some(&st.name), false).map_err(|e| serr(rel, e))?;
            let data = format!("{:06}", self.index.len() + 1);
            if self.index.is_empty() {
                self.dir(STREAMS_DIR, std::time::SystemTime::now())?;
            }
            self.file(&format!("{STREAMS_DIR}/{data}"), st.size, mtime, &content, meter)?;
            let line = serde_json::json!({
                "path": rel,
                "stream": crate::engine::names::stream_from_store(&st.name),
                "data": data,
                "size": st.size,
            });
            self.index.push(line.to_string());
        }
        Ok(())
    }

    fn file(
        &mut self,
        rel: &str,
        size: u64,
        mtime: std::time::SystemTime,
        content: &crate::storage::Content,
        meter: &Meter,
    ) -> Result<(), String> {
        let mut r = ContentReader { c: content, off: 0, meter };
        match &mut self.sink {
            Sink::Dir(root) => {
                let p = root.join(rel);
                let mut f = File::create(&p).map_err(|e| format!("{}: {e}", p.display()))?;
                std::io::copy(&mut r, &mut f).map_err(|e| format!("{}: {e}", p.display()))?;
                f.flush().map_err(|e| e.to_string())?;
                drop(f);
                set_mtime(&p, mtime)
            }
            Sink::Tar(b) => {
                let mut h = tar::Header::new_gnu();
                h.set_entry_type(tar::EntryType::Regular);
                h.set_size(size);
                h.set_mode(0o644);
                h.set_mtime(unix(mtime));
                b.append_data(&mut h, rel, &mut r).map_err(|e| format!("{rel}: {e}"))
            }
        }
    }

    fn dir(&mut self, rel: &str, mtime: std::time::SystemTime) -> Result<(), String> {
        match &mut self.sink {
            Sink::Dir(root) => std::fs::create_dir_all(root.join(rel)).map_err(|e| format!("{rel}: {e}")),
            Sink::Tar(b) => {
                let mut h = tar::Header::new_gnu();
                h.set_entry_type(tar::EntryType::Directory);
                h.set_size(0);
                h.set_mode(0o755);
                h.set_mtime(unix(mtime));
                b.append_data(&mut h, format!("{rel}/"), std::io::empty()).map_err(|e| format!("{rel}: {e}"))
            }
        }
    }

    /// Writes the streams' index and finishes a tar file (and syncs it).
    pub fn finish(mut self) -> Result<(), String> {
        if !self.index.is_empty() {
            let text = self.index.join("\n") + "\n";
            let rel = format!("{STREAMS_DIR}/index.jsonl");
            match &mut self.sink {
                Sink::Dir(root) => std::fs::write(root.join(&rel), &text).map_err(|e| format!("{rel}: {e}"))?,
                Sink::Tar(b) => {
                    let mut h = tar::Header::new_gnu();
                    h.set_entry_type(tar::EntryType::Regular);
                    h.set_size(text.len() as u64);
                    h.set_mode(0o644);
                    h.set_mtime(unix(std::time::SystemTime::now()));
                    b.append_data(&mut h, &rel, text.as_bytes()).map_err(|e| format!("{rel}: {e}"))?;
                }
            }
        }
        if let Sink::Tar(b) = self.sink {
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
