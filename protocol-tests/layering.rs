//! Structure checks over the source text (issue 13), run by the README test
//! command like every other test:
//!
//! - `engine_rooms_have_one_way_doors`: the modules directly under
//!   `src/engine/` (a file `x.rs` or a folder `x/`, a "room") import each
//!   other without a cycle; `context` imports no handler, teardown or
//!   connection code; only `connection` calls into `handlers`, and only
//!   through `dispatch`.
//! - `byte_offsets_are_read_in_wire`: outside `src/wire/`, no little-endian
//!   integer is read from bytes (`from_le_bytes`) except in the files of
//!   [`LE_READS_ALLOWED`] (formats other than SMB2 frames, with their own
//!   codecs), and no SMB2 header or body offset is sliced (`HEADER_LEN + n`,
//!   `[64..]`): every byte offset and length of a frame is read by a codec
//!   in `src/wire/`. Unit-test modules (`#[cfg(test)]` to the end of a
//!   file) are not checked.
//!
//! Reading `use` lines is cheaper than `cargo modules` and needs nothing
//! installed. What counts as an import: every `crate::engine::NAME` path
//! (in `use` lines and inline, grouped `crate::engine::{a, b::C}` too) and
//! `super::NAME` where `super` is `engine` itself. Comments are skipped.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir).expect("read_dir").map(|e| e.expect("entry").path()).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

/// The source without comments (line comments, doc comments and block
/// comments), line numbers kept.
fn code_lines(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut in_block = false;
    for (i, line) in text.lines().enumerate() {
        let mut code = String::new();
        let mut rest = line;
        loop {
            if in_block {
                match rest.find("*/") {
                    Some(j) => {
                        rest = &rest[j + 2..];
                        in_block = false;
                    }
                    None => break,
                }
            } else {
                let line_c = rest.find("//");
                let block_c = rest.find("/*");
                match (line_c, block_c) {
                    (Some(l), Some(b)) if b < l => {
                        code.push_str(&rest[..b]);
                        rest = &rest[b + 2..];
                        in_block = true;
                    }
                    (Some(l), _) => {
                        code.push_str(&rest[..l]);
                        break;
                    }
                    (None, Some(b)) => {
                        code.push_str(&rest[..b]);
                        rest = &rest[b + 2..];
                        in_block = true;
                    }
                    (None, None) => {
                        code.push_str(rest);
                        break;
                    }
                }
            }
        }
        out.push((i + 1, code));
    }
    out
}

fn ident_at(s: &str) -> &str {
    let end = s.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(s.len());
    &s[..end]
}

/// The first path segment of each item of a `{a::X, b, c::{D, E}}` group
/// starting right after its `{`.
fn group_heads(s: &str) -> Vec<String> {
    let mut heads = Vec::new();
    let mut depth = 0usize;
    let mut at_item = true;
    let mut i = 0;
    let b = s.as_bytes();
    while i < b.len() {
        match b[i] {
            b'{' => depth += 1,
            b'}' if depth == 0 => break,
            b'}' => depth -= 1,
            b',' if depth == 0 => at_item = true,
            c if at_item && (c.is_ascii_alphabetic() || c == b'_') => {
                let id = ident_at(&s[i..]);
                heads.push(id.to_string());
                i += id.len();
                at_item = false;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    heads
}

/// One import: the room imported, with where it is imported.
struct Edge {
    to: String,
    file: String,
    line: usize,
    text: String,
}

/// Rooms (modules directly under `src/engine/`) and their imports of each other.
fn engine_graph() -> (BTreeSet<String>, BTreeMap<String, Vec<Edge>>) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/engine");
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    let rooms: BTreeSet<String> = files
        .iter()
        .filter_map(|p| {
            let rel = p.strip_prefix(&root).ok()?;
            let first = rel.components().next()?.as_os_str().to_str()?.to_string();
            let room = first.strip_suffix(".rs").unwrap_or(&first).to_string();
            (room != "mod").then_some(room)
        })
        .collect();
    let mut edges: BTreeMap<String, Vec<Edge>> = BTreeMap::new();
    for p in &files {
        let rel = p.strip_prefix(&root).expect("under root");
        let parts: Vec<String> = rel.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect();
        let first = parts[0].strip_suffix(".rs").unwrap_or(&parts[0]).to_string();
        if first == "mod" {
            continue;
        }
        // The file's module path below `engine` (`x/mod.rs` is `x`).
        let mut module: Vec<String> = parts.iter().map(|s| s.strip_suffix(".rs").unwrap_or(s).to_string()).collect();
        if module.last().is_some_and(|m| m == "mod") {
            module.pop();
        }
        let text = std::fs::read_to_string(p).expect("read");
        let file = format!("src/engine/{}", rel.display());
        for (line, code) in code_lines(&text) {
            let mut targets: Vec<String> = Vec::new();
            let mut s = code.as_str();
            while let Some(j) = s.find("crate::engine::") {
                s = &s[j + "crate::engine::".len()..];
                if let Some(g) = s.strip_prefix('{') {
                    targets.extend(group_heads(g));
                } else {
                    targets.push(ident_at(s).to_string());
                }
            }
            let mut s = code.as_str();
            while let Some(j) = s.find("super::") {
                let before_ok = j == 0 || !code.as_bytes()[code.len() - s.len() + j - 1].is_ascii_alphanumeric();
                s = &s[j..];
                let mut n = 0;
                while let Some(r) = s.strip_prefix("super::") {
                    s = r;
                    n += 1;
                }
                if before_ok && n == module.len() {
                    // `super` is `engine` itself: the next name is a room.
                    if let Some(g) = s.strip_prefix('{') {
                        targets.extend(group_heads(g));
                    } else {
                        targets.push(ident_at(s).to_string());
                    }
                }
            }
            for t in targets {
                if t != first && rooms.contains(&t) {
                    edges.entry(first.clone()).or_default().push(Edge {
                        to: t,
                        file: file.clone(),
                        line,
                        text: code.trim().to_string(),
                    });
                }
            }
        }
    }
    (rooms, edges)
}

/// A cycle among the rooms, if any (as a path that starts and ends at the same room).
fn find_cycle(rooms: &BTreeSet<String>, adj: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    // 0 unvisited, 1 on the stack, 2 done.
    fn dfs(
        v: &str,
        adj: &BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<String, u8>,
        stack: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        state.insert(v.to_string(), 1);
        stack.push(v.to_string());
        for w in adj.get(v).into_iter().flatten() {
            match state.get(w.as_str()).copied().unwrap_or(0) {
                1 => {
                    let start = stack.iter().position(|x| x == w).expect("on stack");
                    let mut cycle = stack[start..].to_vec();
                    cycle.push(w.clone());
                    return Some(cycle);
                }
                0 => {
                    if let Some(c) = dfs(w, adj, state, stack) {
                        return Some(c);
                    }
                }
                _ => {}
            }
        }
        stack.pop();
        state.insert(v.to_string(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for r in rooms {
        if state.get(r.as_str()).copied().unwrap_or(0) == 0 {
            let mut stack = Vec::new();
            if let Some(c) = dfs(r, adj, &mut state, &mut stack) {
                return Some(c);
            }
        }
    }
    None
}

/// Rooms by layer: each room's layer is one more than the highest layer it imports.
fn layers(rooms: &BTreeSet<String>, adj: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    let mut level: BTreeMap<String, usize> = BTreeMap::new();
    let mut changed = true;
    while changed {
        changed = false;
        for r in rooms {
            let l = adj.get(r).into_iter().flatten().map(|d| level.get(d).map_or(0, |x| x + 1)).max().unwrap_or(0);
            if level.get(r) != Some(&l) {
                level.insert(r.clone(), l);
                changed = true;
            }
        }
    }
    let mut out: Vec<Vec<String>> = Vec::new();
    for (r, l) in level {
        if out.len() <= l {
            out.resize(l + 1, Vec::new());
        }
        out[l].push(r);
    }
    out
}

#[test]
fn engine_rooms_have_one_way_doors() {
    let (rooms, edges) = engine_graph();
    assert!(rooms.len() > 20 && rooms.contains("handlers") && rooms.contains("context"), "rooms found: {rooms:?}");
    let adj: BTreeMap<String, BTreeSet<String>> =
        edges.iter().map(|(k, v)| (k.clone(), v.iter().map(|e| e.to.clone()).collect())).collect();
    if let Some(cycle) = find_cycle(&rooms, &adj) {
        let mut why = String::new();
        for w in cycle.windows(2) {
            let e = edges[&w[0]].iter().find(|e| e.to == w[1]).expect("edge");
            why.push_str(&format!("  {} -> {}: {}:{}: {}\n", w[0], w[1], e.file, e.line, e.text));
        }
        panic!("import cycle among src/engine's modules: {}\n{why}", cycle.join(" -> "));
    }
    println!("src/engine: {} modules, no import cycle; layers from the bottom:", rooms.len());
    for (i, l) in layers(&rooms, &adj).iter().enumerate() {
        println!("  {i}: {}", l.join(" "));
    }

    // The context types are a leaf below handlers, teardown and the connection.
    for e in edges.get("context").into_iter().flatten() {
        assert!(
            !matches!(e.to.as_str(), "handlers" | "teardown" | "connection"),
            "context must not import {}: {}:{}: {}",
            e.to,
            e.file,
            e.line,
            e.text
        );
    }
    // Handlers are entered only through `dispatch` (and its SMB1 twin), by the connection.
    for (from, es) in &edges {
        for e in es.iter().filter(|e| e.to == "handlers") {
            assert_eq!(from, "connection", "only the connection calls handlers: {}:{}: {}", e.file, e.line, e.text);
        }
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/engine/connection");
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    for p in files {
        let text = std::fs::read_to_string(&p).expect("read");
        for (line, code) in code_lines(&text) {
            let mut s = code.as_str();
            while let Some(j) = s.find("handlers::") {
                s = &s[j + "handlers::".len()..];
                let name = ident_at(s);
                assert!(
                    matches!(name, "dispatch" | "dispatch_smb1"),
                    "{}:{line}: the connection calls handlers::{name}, not dispatch",
                    p.display()
                );
            }
        }
    }
}

/// Files outside `src/wire/` that may still read little-endian integers,
/// with the reason; anything else fails. These are not SMB2 frames:
/// formats of their own with their own codecs and tests.
const LE_READS_ALLOWED: &[(&str, &str)] = &[
    ("src/audit/", "the audit log's own on-disk segment format (audit/codec.rs)"),
    ("src/auth/ntlm.rs", "NTLMSSP messages, carried opaque inside SESSION_SETUP (auth/ntlm.rs is their codec)"),
    ("src/crypto/aead.rs", "the nonce counter's seed (bytes from the RNG), not a message"),
    ("src/rpc/", "DCE/RPC PDUs and NDR over the named pipes (rpc/ is their codec)"),
    ("src/testutil/", "test helpers reading captures"),
];

/// `needle` in `code`, not as the tail of a longer name (`TRANSFORM_HEADER_LEN`).
fn has_word(code: &str, needle: &str) -> bool {
    code.match_indices(needle)
        .any(|(i, _)| !code[..i].chars().next_back().is_some_and(|c| c.is_ascii_alphanumeric() || c == '_'))
}

#[test]
fn byte_offsets_are_read_in_wire() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut found = Vec::new();
    let mut checked = 0;
    for p in files {
        let rel = format!("src/{}", p.strip_prefix(&src).expect("under src").display());
        if rel.starts_with("src/wire/") {
            continue;
        }
        let allowed = LE_READS_ALLOWED.iter().any(|(prefix, _)| rel.starts_with(prefix));
        let text = std::fs::read_to_string(&p).expect("read");
        checked += 1;
        for (line, code) in code_lines(&text) {
            if code.trim() == "#[cfg(test)]" {
                // Unit tests below may poke at bytes (tampering, golden values).
                break;
            }
            let le = code.contains("from_le_bytes") && !allowed;
            // A header or body offset sliced from an SMB2 message: `HEADER_LEN + 8`,
            // `msg[64..]` (`storage/` has a record header of its own by that name).
            let offset = !rel.starts_with("src/storage/")
                && (has_word(&code, "HEADER_LEN +") || code.contains("[64..") || has_word(&code, "[HEADER_LEN.."));
            if le || offset {
                found.push(format!("{rel}:{line}: {}", code.trim()));
            }
        }
    }
    assert!(checked > 100, "only {checked} files read");
    assert!(
        found.is_empty(),
        "byte offsets read outside src/wire/ (move them into the command's codec):\n{}",
        found.join("\n")
    );
    println!("{checked} files outside src/wire/ read; no from_le_bytes outside the allowed formats, no header offsets");
}
