//! A killed server loses nothing it answered (docs/storage-format.md §8,
//! docs/audit-format.md): smbclient puts small and large files, overwrites,
//! renames, deletes, clears attributes (SET_INFO) and creates directories,
//! and Python smbprotocol sets security descriptors and EAs,
//! on the real binary; once
//! smbclient has its answers the server gets SIGKILL 0–500 ms later and is
//! started again. After every restart the share must hold exactly what was
//! answered (names, and contents byte for byte: a file is complete or
//! absent, never torn), the operation log must hold a record of every
//! answered operation, and `smbvault logs verify` must pass.

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use rand::{Rng, SeedableRng, rngs::StdRng};
use serde_json::Value;

const KILLS: usize = 60;
/// Every this many kills all file contents are compared (else only those
/// this round touched; names are compared every round).
const FULL_CHECK_EVERY: usize = 10;

/// What the share holds: name → contents (`None`: a directory).
type Model = BTreeMap<String, Option<Vec<u8>>>;
/// Files whose archive attribute was cleared (`setmode -a`) since their
/// last put.
type Cleared = BTreeSet<String>;

/// A record the operation log must hold: (event, path, detail).
type Want = (String, String, String);

fn alice(s: &TestServer, cmds: &str) -> std::process::Output {
    let o = s.smbclient("share", "DEFAULT\\alice", PASS, &[], cmds);
    let t = text(&o);
    assert!(o.status.success() && !t.contains("NT_STATUS_"), "smbclient {cmds:?}: {t}");
    o
}

fn content(rng: &mut StdRng, len: usize) -> Vec<u8> {
    let mut v = vec![0u8; len];
    rng.fill(&mut v[..]);
    v
}

/// One round's commands: 1–4 operations, applied to `model` and `want`
/// (the caller runs them; they count as answered once smbclient returns).
fn round(
    rng: &mut StdRng,
    n: usize,
    model: &mut Model,
    cleared: &mut Cleared,
    want: &mut Vec<Want>,
    touched: &mut Vec<String>,
    local: &Path,
) -> String {
    let mut cmds = Vec::new();
    for k in 0..rng.gen_range(1..=4) {
        let files: Vec<String> = model.iter().filter(|(_, v)| v.is_some()).map(|(n, _)| n.clone()).collect();
        let pick = if files.is_empty() { 0 } else { rng.gen_range(0..11) };
        let fresh = |rng: &mut StdRng| {
            if rng.gen_bool(0.3) { format!("報告書-{n}-{k}.txt") } else { format!("f{n}-{k}.bin") }
        };
        match pick {
            // put a new file: small (odd sizes around the 64 KiB chunk) or large
            0..=3 => {
                let len = if rng.gen_bool(0.25) { rng.gen_range(1 << 20..6 << 20) } else { rng.gen_range(0..200_000) };
                let name = fresh(rng);
                cleared.remove(&name);
                put(rng, &name, len, model, want, touched, local, &mut cmds);
            }
            // overwrite an existing file with new contents
            4..=5 => {
                let name = files[rng.gen_range(0..files.len())].clone();
                let len = rng.gen_range(0..300_000);
                cleared.remove(&name);
                put(rng, &name, len, model, want, touched, local, &mut cmds);
            }
            6 => {
                let from = files[rng.gen_range(0..files.len())].clone();
                let to = format!("r{n}-{k}-{from}");
                cmds.push(format!("rename \"{from}\" \"{to}\""));
                let v = model.remove(&from).unwrap();
                model.insert(to.clone(), v);
                if cleared.remove(&from) {
                    cleared.insert(to.clone());
                }
                want.push(("rename".into(), from, to.clone()));
                touched.push(to);
            }
            7..=8 => {
                let name = files[rng.gen_range(0..files.len())].clone();
                cmds.push(format!("del \"{name}\""));
                model.remove(&name);
                cleared.remove(&name);
                want.push(("delete".into(), name, String::new()));
            }
            // SET_INFO: clear the archive attribute
            9 => {
                let name = files[rng.gen_range(0..files.len())].clone();
                cmds.push(format!("setmode \"{name}\" -a"));
                // Clearing it again changes nothing and logs nothing.
                if !cleared.contains(&name) {
                    want.push(("set-attributes".into(), name.clone(), String::new()));
                }
                cleared.insert(name);
            }
            _ => {
                let name = format!("d{n}-{k}");
                cmds.push(format!("mkdir \"{name}\""));
                model.insert(name.clone(), None);
                want.push(("mkdir".into(), name, String::new()));
            }
        }
    }
    cmds.join("; ")
}

#[allow(clippy::too_many_arguments)]
fn put(
    rng: &mut StdRng,
    name: &str,
    len: usize,
    model: &mut Model,
    want: &mut Vec<Want>,
    touched: &mut Vec<String>,
    local: &Path,
    cmds: &mut Vec<String>,
) {
    let data = content(rng, len);
    let src = local.join(format!("src-{}", want.len()));
    std::fs::write(&src, &data).unwrap();
    cmds.push(format!("put \"{}\" \"{name}\"", src.display()));
    model.insert(name.to_string(), Some(data));
    want.push(("close".into(), name.to_string(), len.to_string()));
    touched.push(name.to_string());
}

/// Names on the share (`ls`), directories marked with a trailing `/`,
/// files without the archive attribute with a trailing `!`.
fn listing(s: &TestServer) -> Vec<String> {
    let o = alice(s, "ls");
    let mut names = Vec::new();
    for line in String::from_utf8_lossy(&o.stdout).lines() {
        // "  name   A   1234  Sun Dec  6 ..." (our names have no spaces)
        let cols: Vec<&str> = line.split_whitespace().collect();
        let attrs = |c: &str| !c.is_empty() && c.chars().all(|ch| "DAHSRN".contains(ch));
        if cols.len() < 3 || !attrs(cols[1]) || cols[0] == "." || cols[0] == ".." {
            continue;
        }
        let mark = if cols[1].contains('D') {
            "/"
        } else if cols[1].contains('A') {
            ""
        } else {
            "!"
        };
        names.push(format!("{}{mark}", cols[0]));
    }
    names.sort();
    names
}

fn expected_listing(model: &Model, cleared: &Cleared) -> Vec<String> {
    let mark = |n: &String, c: &Option<Vec<u8>>| match c {
        None => "/",
        Some(_) if cleared.contains(n) => "!",
        Some(_) => "",
    };
    let mut v: Vec<String> = model.iter().map(|(n, c)| format!("{n}{}", mark(n, c))).collect();
    v.sort();
    v
}

/// Downloads `names` and compares them with the model.
fn check_contents(s: &TestServer, model: &Model, names: &[String], local: &Path, round: usize) {
    let names: Vec<&String> = names.iter().filter(|n| matches!(model.get(*n), Some(Some(_)))).collect();
    for batch in names.chunks(40) {
        let mut cmds = Vec::new();
        for (i, n) in batch.iter().enumerate() {
            cmds.push(format!("get \"{n}\" \"{}\"", local.join(format!("got-{i}")).display()));
        }
        alice(s, &cmds.join("; "));
        for (i, n) in batch.iter().enumerate() {
            let got = std::fs::read(local.join(format!("got-{i}"))).unwrap();
            let exp = model[*n].as_ref().unwrap();
            assert!(got == *exp, "round {round}: {n} has {} bytes, {} answered (torn or stale)", got.len(), exp.len());
        }
    }
}

/// Every wanted record is in the operation log (as many times as wanted).
fn check_log(s: &TestServer, want: &[Want], round: usize) {
    let o = s.cli(&["logs", "operations", "--org", "DEFAULT", "--format", "jsonl", "--limit", "1000000"], None, &[]);
    assert!(o.status.success(), "logs operations: {}", text(&o));
    let mut have: HashMap<Want, usize> = HashMap::new();
    for l in String::from_utf8_lossy(&o.stdout).lines() {
        let v: Value = serde_json::from_str(l).unwrap();
        let s = |k: &str| v[k].as_str().unwrap_or("").to_string();
        let detail = match s("event").as_str() {
            "rename" => s("new_path"),
            "close" => v["bytes_written"].as_u64().unwrap_or(0).to_string(),
            _ => String::new(),
        };
        if v["result"] == "ok" {
            *have.entry((s("event"), s("path"), detail)).or_default() += 1;
        }
    }
    let mut need: HashMap<&Want, usize> = HashMap::new();
    for w in want {
        *need.entry(w).or_default() += 1;
    }
    for (w, n) in need {
        let got = have.get(w).copied().unwrap_or(0);
        assert!(got >= n, "round {round}: the operation log holds {got} of {n} answered {w:?}");
    }
    let o = s.cli(&["logs", "verify"], None, &[]);
    assert!(o.status.success(), "round {round}: logs verify: {}", text(&o));
}

#[test]
fn sigkill_after_answers_loses_nothing() {
    let started = Instant::now();
    let mut s = TestServer::start();
    s.add_user("DEFAULT\\alice", PASS);
    let local = tempfile::tempdir().unwrap();
    let seed: u64 = std::env::var("SMBVAULT_KILL_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or(0x6b11);
    let mut rng = StdRng::seed_from_u64(seed);
    let (mut model, mut cleared, mut want) = (Model::new(), Cleared::new(), Vec::new());
    let (mut ops, mut restart_ms) = (0usize, 0u128);
    for n in 0..KILLS {
        let mut touched = Vec::new();
        let cmds = round(&mut rng, n, &mut model, &mut cleared, &mut want, &mut touched, local.path());
        alice(&s, &cmds);
        ops += cmds.matches("; ").count() + 1;
        // Answered: kill 0–500 ms later.
        std::thread::sleep(Duration::from_millis(rng.gen_range(0..=500)));
        s.kill9();
        let t = Instant::now();
        s.spawn();
        restart_ms += t.elapsed().as_millis();

        assert_eq!(listing(&s), expected_listing(&model, &cleared), "round {n}: names after the restart ({cmds})");
        let names: Vec<String> =
            if (n + 1) % FULL_CHECK_EVERY == 0 { model.keys().cloned().collect() } else { touched };
        check_contents(&s, &model, &names, local.path(), n);
        check_log(&s, &want, n);
    }
    let files = model.values().filter(|v| v.is_some()).count();
    eprintln!(
        "{KILLS} kills after {ops} answered operations ({} logged records checked); {files} files and {} directories \
         checked; mean restart {} ms; {:.0} s in all",
        want.len(),
        model.len() - files,
        restart_ms / KILLS as u128,
        started.elapsed().as_secs_f64()
    );
}

/// The same bytes `flush_then_kill.py` writes.
fn py_data(seed: usize, size: usize) -> Vec<u8> {
    (0..size).map(|i| ((seed + i * 7 + (i >> 9)) & 0xff) as u8).collect()
}

/// A power loss keeps what FLUSH and WRITE_THROUGH made durable before they
/// were answered. Played like `tests/storage_crash.rs`: SIGKILL, then every
/// organization's `boot` file names another boot, so recovery cuts each
/// WAL back to its last durable commit (docs/storage-format.md §9). With
/// `commit_interval_secs = 60` no background commit covers the third file,
/// which must therefore be gone: the cut really happened.
#[test]
fn power_loss_keeps_flush_and_write_through() {
    let mut s = TestServer::start_with(Options {
        extra: vec!["[storage]\ncommit_interval_secs = 60".into()],
        ..Options::default()
    });
    s.add_user("DEFAULT\\alice", PASS);
    let size = 200_000;
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("protocol-tests/python/flush_then_kill.py");
    let mut child = std::process::Command::new("python3")
        .arg(script)
        .args(["127.0.0.1", &s.port.to_string(), "share", "DEFAULT\\alice", PASS, &size.to_string()])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3");
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(child.stdout.take().unwrap()), &mut line).unwrap();
    assert!(line.starts_with("done"), "client: {line:?}");
    s.kill9();
    let _ = child.kill();
    let _ = child.wait();
    let boots: Vec<_> =
        walk(&s.data_dir()).into_iter().filter(|p| p.file_name().is_some_and(|n| n == "boot")).collect();
    assert!(!boots.is_empty(), "no organization boot file");
    for b in &boots {
        std::fs::write(b, "another boot").unwrap();
    }
    s.spawn();
    // Organizations are opened (and recovered) on first use.
    let names = listing(&s);
    assert!(s.log_text().contains("restart of the machine"), "recovery did not cut: {}", s.log_text());
    assert!(!names.contains(&"unflushed.bin".to_string()), "a file no FLUSH covered survived the cut: {names:?}");
    let local = tempfile::tempdir().unwrap();
    for (seed, name) in [(1, "flushed.bin"), (2, "through.bin")] {
        let dst = local.path().join(name);
        alice(&s, &format!("get {name} \"{}\"", dst.display()));
        assert!(std::fs::read(&dst).unwrap() == py_data(seed, size), "{name} differs after the power loss");
    }
}

/// Runs `meta_then_kill.py`; for `set`, returns the child once it printed
/// "done" (every request answered), still connected.
fn meta_script(s: &TestServer, mode: &str, seed: usize, count: usize) -> (std::process::Child, String) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("protocol-tests/python/meta_then_kill.py");
    let mut child = std::process::Command::new("python3")
        .arg(script)
        .arg(mode)
        .args(["127.0.0.1", &s.port.to_string(), "share", "DEFAULT\\alice", PASS])
        .args([seed.to_string(), count.to_string()])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3");
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(child.stdout.take().unwrap()), &mut line).unwrap();
    (child, line.trim().to_string())
}

/// Security descriptors and extended attributes are metadata like names:
/// once SET_INFO was answered, a SIGKILL 0–500 ms later loses neither
/// (docs/storage-format.md §8), and their audit records are still chained
/// (`logs verify`).
#[test]
fn sigkill_keeps_answered_descriptors_and_eas() {
    const ROUNDS: usize = 10;
    const FILES: usize = 3;
    let mut s = TestServer::start();
    s.add_user("DEFAULT\\alice", PASS);
    // Setting a DACL takes WRITE_DAC, which only share administrators hold.
    s.admin(&["share", "grant", "--user", "alice", "share", "admin"]);
    let mut rng = StdRng::seed_from_u64(0x5d_ea);
    for round in 0..ROUNDS {
        let (mut child, line) = meta_script(&s, "set", round, FILES);
        assert_eq!(line, "done", "round {round}: set");
        std::thread::sleep(Duration::from_millis(rng.gen_range(0..=500)));
        s.kill9();
        let _ = child.kill();
        let _ = child.wait();
        s.spawn();
        for seed in 0..=round {
            let (mut child, line) = meta_script(&s, "check", seed, FILES);
            let _ = child.wait();
            assert_eq!(line, "ok", "round {round}: files of round {seed} after the restart");
        }
        let o = s.cli(&["logs", "verify"], None, &[]);
        assert!(o.status.success(), "round {round}: logs verify: {}", text(&o));
    }
}
