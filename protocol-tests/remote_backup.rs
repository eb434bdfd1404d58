//! Per-organization remote backups against a real S3-compatible server
//! (Garage, started by the test on loopback; docs/backup.md "Remote
//! backups"): two organizations to two buckets, generations listed and
//! verified, a corrupted object detected, an interrupted upload resumed,
//! the second generation sending only what changed, erasure emptying the
//! organization's part of the bucket; restore-files while another
//! organization's transfer goes on; org export byte for byte.

mod common;

use std::time::{Duration, Instant};

use common::garage::Garage;
use common::*;
use serde_json::Value;
use smbvault::backup::remote::objects::{ObjectInfo, ObjectStore};
use smbvault::backup::remote::s3::{S3Params, S3Store};

fn config(g: &Garage, extra: &str) -> Options {
    let cred = g.credentials_file();
    let target = |name: &str, bucket: &str, prefix: &str| {
        format!(
            "[backup.targets.{name}]\nkind = \"s3\"\nendpoint = {:?}\nregion = \"garage\"\nbucket = {bucket:?}\n\
             prefix = {prefix:?}\ncredentials_file = {cred:?}\nparallel = 1\npart_size_mib = 5\npiece_size_mib = 8\n",
            g.endpoint
        )
    };
    Options {
        extra: vec![
            format!(
                "[backup]\nerase_check_interval_secs = 1\nremote_interval_hours = 0\norg_choosable_targets = [\"osaka\"]\n{extra}"
            ),
            target("tokyo", "tokyo", "sv/"),
            target("osaka", "osaka", ""),
        ],
        ..Options::default()
    }
}

/// A client of our own bucket, to look at it (and damage it) as the test.
fn bucket(g: &Garage, name: &str, prefix: &str) -> S3Store {
    let p = S3Params {
        endpoint: g.endpoint.clone(),
        region: "garage".into(),
        bucket: name.into(),
        prefix: prefix.into(),
        path_style: true,
        part_size: 5 << 20,
    };
    S3Store::new(&p, &g.key_id, &g.secret).unwrap()
}

fn org_id(s: &TestServer, name: &str) -> u64 {
    let v: Value = serde_json::from_str(&s.admin(&["--json", "org", "list"])).unwrap();
    v.as_array().unwrap().iter().find(|o| o["name"] == name).unwrap()["id"].as_u64().unwrap()
}

fn org_now(s: &TestServer, org: &str, env: &[(&str, &str)]) -> Result<Value, String> {
    let o = s.cli(&["--json", "backup", "org-now", org], None, env);
    eprintln!("org-now {org}: {}", String::from_utf8_lossy(&o.stderr).trim());
    if !o.status.success() {
        return Err(text(&o));
    }
    let v: Value = serde_json::from_slice(&o.stdout).map_err(|e| format!("{e}: {}", text(&o)))?;
    Ok(v[0]["report"].clone())
}

fn put(s: &TestServer, share: &str, user: &str, local: &std::path::Path, remote: &str) {
    let o = s.smbclient(share, user, PASS, &[], &format!("put \"{}\" \"{remote}\"", local.display()));
    assert!(o.status.success() && !text(&o).contains("NT_STATUS"), "put {remote}: {}", text(&o));
}

fn sum(objs: &[ObjectInfo]) -> u64 {
    objs.iter().map(|o| o.size).sum()
}

#[test]
fn remote_backups_on_garage() {
    let g = Garage::start();
    g.bucket("tokyo");
    g.bucket("osaka");
    let s = TestServer::start_with(config(&g, ""));
    for org in ["ACME", "BETA"] {
        s.admin(&["org", "add", org]);
        s.add_user(&format!("{org}\\alice"), PASS);
        s.admin(&["share", "add", &format!("{}docs", org.to_lowercase()), "--org", org]);
    }
    let o = s.cli(
        &["user", "add", "BETA\\boss", "--role", "org_admin", "--password-stdin"],
        Some(&format!("{PASS}\n")),
        &[],
    );
    assert!(o.status.success(), "{}", text(&o));
    let work = tempfile::tempdir().unwrap();
    let big = work.path().join("big.bin");
    random_file(&big, 20_000_000, 1);
    put(&s, "acmedocs", "ACME\\alice", &big, "big.bin");
    let small = work.path().join("b.bin");
    random_file(&small, 1_000_000, 2);
    put(&s, "betadocs", "BETA\\alice", &small, "見積書.bin");

    // The operator chooses any target; BETA's administrator only an offered one.
    s.admin(&["backup", "org-target", "ACME", "tokyo", "--generations", "2"]);
    let env = [("SMBVAULT_ADMIN_PASSWORD", PASS)];
    let o = s.cli(&["--as", "BETA\\boss", "backup", "org-target", "BETA", "tokyo"], None, &env);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    let o = s.cli(&["--as", "BETA\\boss", "backup", "org-target", "BETA", "osaka"], None, &env);
    assert!(o.status.success(), "{}", text(&o));
    let o = s.cli(&["--as", "BETA\\boss", "backup", "org-target", "ACME", "osaka"], None, &env);
    assert!(!o.status.success(), "another organization's target: {}", text(&o));
    let targets = s.admin(&["backup", "targets"]);
    assert!(targets.contains("tokyo") && targets.contains("osaka"), "{targets}");

    std::thread::sleep(Duration::from_secs(3)); // the server's commit interval
    let r1 = org_now(&s, "ACME", &[]).unwrap();
    let rb = org_now(&s, "BETA", &[]).unwrap();
    eprintln!("ACME first: {r1}\nBETA first: {rb}");
    let (acme, beta) = (org_id(&s, "ACME"), org_id(&s, "BETA"));
    let tokyo = bucket(&g, "tokyo", "");
    let osaka = bucket(&g, "osaka", "");
    let acme_pre = format!("sv/orgs/{acme:016x}/");
    let beta_pre = format!("orgs/{beta:016x}/");
    // Two organizations, two buckets: each holds only its organization.
    let t_all = tokyo.list("").unwrap();
    let o_all = osaka.list("").unwrap();
    assert!(!t_all.is_empty() && t_all.iter().all(|o| o.key.starts_with(&acme_pre)), "{t_all:?}");
    assert!(!o_all.is_empty() && o_all.iter().all(|o| o.key.starts_with(&beta_pre)), "{o_all:?}");
    assert!(sum(&t_all) > 20_000_000, "the segments went to tokyo: {}", sum(&t_all));
    // Ciphertext only: the file's bytes are nowhere in the bucket.
    let needle = &std::fs::read(&big).unwrap()[5_000_000..5_000_064];
    for o in &t_all {
        let mut v = Vec::new();
        tokyo.get_to(&o.key, &mut v).unwrap();
        assert!(!v.windows(64).any(|w| w == needle), "{} holds plaintext", o.key);
    }

    // Second generation after a small change: only the changed piece of the
    // active segment, meta.db and the manifest are sent.
    let change = work.path().join("c.bin");
    random_file(&change, 100_000, 3);
    put(&s, "acmedocs", "ACME\\alice", &change, "small.bin");
    std::thread::sleep(Duration::from_secs(3));
    let before = tokyo.list("").unwrap();
    let r2 = org_now(&s, "ACME", &[]).unwrap();
    let after = tokyo.list("").unwrap();
    let new: Vec<&ObjectInfo> = after.iter().filter(|o| !before.contains(o)).collect();
    let new_bytes: u64 = new.iter().map(|o| o.size).sum();
    eprintln!(
        "second generation: {} objects ({} bytes) new in the bucket of {} ({} bytes); report {r2}",
        new.len(),
        new_bytes,
        after.len(),
        sum(&after)
    );
    assert!(new_bytes < 8_000_000, "only what changed was uploaded: {new_bytes} bytes new");
    assert!(new.len() <= 3, "new piece, meta.db, manifest: {new:?}");
    assert_eq!(r2["uploaded_bytes"].as_u64().unwrap(), new_bytes, "the report counts what the bucket gained");
    assert!(r2["bytes"].as_u64().unwrap() > 20_000_000, "the generation still covers everything");

    // Each generation listed and verified.
    let list: Value = serde_json::from_str(&s.admin(&["--json", "backup", "org-list", "ACME"])).unwrap();
    let gens: Vec<String> =
        list.as_array().unwrap().iter().map(|g| g["generation"].as_str().unwrap().to_string()).collect();
    assert_eq!(gens.len(), 2, "{list}");
    assert!(
        gens.contains(&r1["generation"].as_str().unwrap().to_string())
            && gens.contains(&r2["generation"].as_str().unwrap().to_string())
    );
    let out = s.admin(&["backup", "org-verify", "ACME"]);
    assert_eq!(out.matches(": ok").count(), 2, "{out}");

    // A corrupted object is detected: by verify, and a restore refuses.
    let victim = after.iter().filter(|o| o.key.contains("/objects/")).max_by_key(|o| o.size).unwrap().clone();
    let mut orig = Vec::new();
    tokyo.get_to(&victim.key, &mut orig).unwrap();
    let mut bad = orig.clone();
    bad[orig.len() / 2] ^= 0x55;
    let up = smbvault::backup::remote::objects::Uploader::new(None, work.path()).unwrap();
    tokyo.put(&victim.key, &bad, &up).unwrap();
    let o = s.cli(&["backup", "org-verify", "ACME"], None, &[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("corrupted"), "{}", text(&o));
    let o = s.cli(&["backup", "restore-files", "ACME", "latest", "acmedocs/big.bin"], None, &[]);
    assert!(!o.status.success() && text(&o).contains("corrupted"), "{}", text(&o));
    tokyo.put(&victim.key, &orig, &up).unwrap();
    assert!(s.admin(&["backup", "org-verify", "ACME"]).matches(": ok").count() == 2);

    // An interrupted upload resumes: a new 20 MB file, the first run stops
    // after 12 MiB were sent, the second sends only the rest.
    let more = work.path().join("more.bin");
    random_file(&more, 20_000_000, 4);
    put(&s, "acmedocs", "ACME\\alice", &more, "more.bin");
    std::thread::sleep(Duration::from_secs(3));
    let err = org_now(&s, "ACME", &[("SMBVAULT_TEST_UPLOAD_FAIL_AFTER", "12582912")]).unwrap_err();
    assert!(err.contains("interrupted"), "{err}");
    let r3 = org_now(&s, "ACME", &[]).unwrap();
    eprintln!("after the interruption: {r3}");
    let sent = r3["uploaded_bytes"].as_u64().unwrap();
    // From scratch it would be about 24 MB (three new 8 MiB pieces and more).
    assert!(sent < 16_000_000, "the resumed run sent only what was missing: {sent}");
    // Retention (2 generations): the first is gone, its unused objects too.
    let list: Value = serde_json::from_str(&s.admin(&["--json", "backup", "org-list", "ACME"])).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 2, "{list}");
    assert!(!list.to_string().contains(r1["generation"].as_str().unwrap()), "{list}");
    assert_eq!(s.admin(&["backup", "org-verify", "ACME"]).matches(": ok").count(), 2);

    // Erasure at contract end deletes BETA's objects from its bucket.
    s.admin(&["org", "end-contract", "BETA", "2000-01-31", "--allow-past", "--yes"]);
    let started = Instant::now();
    loop {
        let left = osaka.list("").unwrap();
        if left.is_empty() {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "BETA's objects are still there: {left:?}\n{}",
            s.log_text()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(tokyo.list(&acme_pre).unwrap().len() > 2, "ACME's backups are untouched");
}

/// smbclient with TZ=UTC (its `utimes` reads times in local time).
fn smbclient_utc(s: &TestServer, share: &str, user: &str, cmds: &str) -> std::process::Output {
    let mut cmd = std::process::Command::new("smbclient");
    cmd.arg(format!("//127.0.0.1/{share}"))
        .args(["-p", &s.port.to_string(), "-U", &format!("{user}%{PASS}"), "-c", cmds])
        .env("TZ", "UTC")
        .stdin(std::process::Stdio::null());
    timed_output(cmd, Duration::from_secs(600))
}

fn get(s: &TestServer, share: &str, user: &str, remote: &str, local: &std::path::Path) -> Vec<u8> {
    let _ = std::fs::remove_file(local);
    let o = s.smbclient(share, user, PASS, &[], &format!("get \"{remote}\" \"{}\"", local.display()));
    assert!(o.status.success() && !text(&o).contains("NT_STATUS"), "get {remote}: {}", text(&o));
    std::fs::read(local).unwrap()
}

fn mtime(p: &std::path::Path) -> u64 {
    std::fs::metadata(p).unwrap().modified().unwrap().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

#[test]
fn restore_files_and_export_while_serving() {
    let g = Garage::start();
    g.bucket("tokyo");
    g.bucket("osaka");
    let s = TestServer::start_with(config(&g, ""));
    for org in ["ACME", "BETA"] {
        s.admin(&["org", "add", org]);
        s.add_user(&format!("{org}\\alice"), PASS);
        s.admin(&["share", "add", &format!("{}docs", org.to_lowercase()), "--org", org]);
    }
    let work = tempfile::tempdir().unwrap();
    let invoice = work.path().join("inv.txt");
    std::fs::write(&invoice, "請求書 2026年11月分: 合計 ¥123,456\n".repeat(100)).unwrap();
    let big = work.path().join("big.bin");
    random_file(&big, 3_000_000, 21);
    let o = s.smbclient(
        "acmedocs",
        "ACME\\alice",
        PASS,
        &[],
        &format!(
            "mkdir 経理; mkdir 経理\\2026; put \"{}\" \"経理\\2026\\請求書.txt\"; put \"{}\" \"経理\\2026\\big.bin\"; put \"{}\" top.txt",
            invoice.display(),
            big.display(),
            invoice.display()
        ),
    );
    assert!(o.status.success() && !text(&o).contains("NT_STATUS"), "{}", text(&o));
    // A named stream on the invoice: restored and exported with it.
    let tax = work.path().join("tax.txt");
    std::fs::write(&tax, "課税 10%\n").unwrap();
    let o = s.smbclient(
        "acmedocs",
        "ACME\\alice",
        PASS,
        &[],
        &format!("put \"{}\" \"経理\\2026\\請求書.txt:税区分\"", tax.display()),
    );
    assert!(o.status.success() && !text(&o).contains("NT_STATUS"), "put a stream: {}", text(&o));
    // A known modification time (2025-04-01 09:30:00 UTC) for the export.
    let o =
        smbclient_utc(&s, "acmedocs", "ACME\\alice", "utimes \"経理\\2026\\請求書.txt\" -1 -1 25:04:01-09:30:00 -1");
    assert!(o.status.success() && !text(&o).contains("NT_STATUS"), "utimes: {}", text(&o));
    s.admin(&["backup", "org-target", "ACME", "tokyo"]);
    std::thread::sleep(Duration::from_secs(3));
    let r = org_now(&s, "ACME", &[]).unwrap();
    let generation = r["generation"].as_str().unwrap().to_string();

    // After the backup: the invoice is overwritten, big.bin deleted.
    let newer = work.path().join("new.txt");
    std::fs::write(&newer, "訂正版\n").unwrap();
    let o = s.smbclient(
        "acmedocs",
        "ACME\\alice",
        PASS,
        &[],
        &format!("put \"{}\" \"経理\\2026\\請求書.txt\"; del \"経理\\2026\\big.bin\"", newer.display()),
    );
    assert!(o.status.success() && !text(&o).contains("NT_STATUS"), "{}", text(&o));

    // BETA keeps transferring (put, get, compare) during the whole restore.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let transfer = {
        let (stop, port, dir) = (stop.clone(), s.port, work.path().to_path_buf());
        std::thread::spawn(move || {
            let src = dir.join("beta.bin");
            let sha = random_file(&src, 8_000_000, 22);
            let mut rounds = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) || rounds.is_empty() {
                let t0 = Instant::now();
                let back = dir.join("beta.back");
                let _ = std::fs::remove_file(&back);
                let o = smbclient(
                    port,
                    "betadocs",
                    "BETA\\alice",
                    PASS,
                    &[],
                    &format!("put \"{}\" beta.bin; get beta.bin \"{}\"", src.display(), back.display()),
                );
                let ok = o.status.success() && !text(&o).contains("NT_STATUS") && sha256_file(&back) == sha;
                rounds.push((t0, Instant::now(), ok, text(&o)));
            }
            rounds
        })
    };
    std::thread::sleep(Duration::from_millis(300));
    let t_restore = Instant::now();
    let o = s.cli(&["--json", "backup", "restore-files", "ACME", &generation, "acmedocs/経理"], None, &[]);
    let t_restored = Instant::now();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let rounds = transfer.join().unwrap();
    assert!(o.status.success(), "restore-files: {}", text(&o));
    eprintln!("restore-files: {} ms; {}", (t_restored - t_restore).as_millis(), String::from_utf8_lossy(&o.stderr));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let date = format!("{}-{}-{}", &generation[..4], &generation[4..6], &generation[6..8]);
    let folder = format!("復元 {date}");
    assert_eq!(v["restored"]["to"], format!("acmedocs/{folder}/経理"), "{v}");
    assert_eq!(v["restored"]["files"], 2, "{v}");
    // The other organization's transfers all succeeded, one of them while
    // the restore ran.
    assert!(
        rounds.iter().all(|r| r.2),
        "BETA's transfer was disturbed: {:?}",
        rounds.iter().map(|r| &r.3).collect::<Vec<_>>()
    );
    assert!(rounds.iter().any(|r| r.0 < t_restored && r.1 > t_restore), "a transfer overlapped the restore");
    eprintln!("BETA transfer rounds during the test: {}", rounds.len());

    // Byte-identical to the generation; the current files untouched.
    let back = work.path().join("back");
    assert_eq!(
        get(&s, "acmedocs", "ACME\\alice", &format!("{folder}\\経理\\2026\\請求書.txt"), &back),
        std::fs::read(&invoice).unwrap()
    );
    assert_eq!(
        sha256_file(&{
            get(&s, "acmedocs", "ACME\\alice", &format!("{folder}\\経理\\2026\\big.bin"), &back);
            back.clone()
        }),
        sha256_file(&big)
    );
    assert_eq!(
        get(&s, "acmedocs", "ACME\\alice", "経理\\2026\\請求書.txt", &back),
        b"\xe8\xa8\x82\xe6\xad\xa3\xe7\x89\x88\n"
    );
    // The named stream came back with the file.
    assert_eq!(
        get(&s, "acmedocs", "ACME\\alice", &format!("{folder}\\経理\\2026\\請求書.txt:税区分"), &back),
        "課税 10%\n".as_bytes()
    );
    assert_eq!(v["restored"]["streams"], 1, "{v}");
    // Again: a new name, never over the first restore; --to an existing path is refused.
    let v: Value =
        serde_json::from_str(&s.admin(&["--json", "backup", "restore-files", "ACME", "latest", "acmedocs/経理"]))
            .unwrap();
    assert_eq!(v["restored"]["to"], format!("acmedocs/{folder}/経理 (2)"), "{v}");
    let o = s.cli(
        &["backup", "restore-files", "ACME", "latest", "acmedocs/top.txt", "--to", "経理/2026/請求書.txt"],
        None,
        &[],
    );
    assert!(!o.status.success() && text(&o).contains("never overwrites"), "{}", text(&o));
    assert_eq!(get(&s, "acmedocs", "ACME\\alice", "経理\\2026\\請求書.txt", &back), "訂正版\n".as_bytes());
    // In ACME's operation log, not in BETA's.
    let ops = s.admin(&["logs", "operations", "--org", "ACME", "--format", "jsonl"]);
    assert!(ops.contains("backup.restore_files"), "{ops}");
    let ops_b = s.admin(&["logs", "operations", "--org", "BETA", "--format", "jsonl"]);
    assert!(!ops_b.contains("backup.restore_files"), "{ops_b}");

    // Export: decrypted files with names and modification times, to a
    // directory and to a tar file, byte for byte.
    let dir = work.path().join("export");
    let out = s.admin(&["org", "export", "ACME", "--to", dir.to_str().unwrap()]);
    eprintln!("{out}");
    let inv = dir.join("acmedocs/経理/2026/請求書.txt");
    assert_eq!(std::fs::read(&inv).unwrap(), "訂正版\n".as_bytes());
    assert_eq!(std::fs::read(dir.join("acmedocs/top.txt")).unwrap(), std::fs::read(&invoice).unwrap());
    let r_inv = dir.join(format!("acmedocs/{folder}/経理/2026/請求書.txt"));
    assert_eq!(std::fs::read(&r_inv).unwrap(), std::fs::read(&invoice).unwrap());
    assert_eq!(sha256_file(&dir.join(format!("acmedocs/{folder}/経理/2026/big.bin"))), sha256_file(&big));
    // Named streams: in the .streams sidecar, named in its index.
    let index = std::fs::read_to_string(dir.join(".streams/index.jsonl")).unwrap();
    let streams: Vec<Value> = index.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    for p in ["acmedocs/経理/2026/請求書.txt".to_string(), format!("acmedocs/{folder}/経理/2026/請求書.txt")]
    {
        let e = streams.iter().find(|e| e["path"] == p.as_str()).unwrap_or_else(|| panic!("{p} in {index}"));
        assert_eq!(e["stream"], "税区分", "{e}");
        let data = std::fs::read(dir.join(".streams").join(e["data"].as_str().unwrap())).unwrap();
        assert_eq!(data, "課税 10%\n".as_bytes(), "{e}");
    }
    // The restored copy kept the generation's modification time.
    assert_eq!(mtime(&r_inv), 1_743_499_800, "2025-04-01 09:30:00 UTC");
    let tar = work.path().join("acme.tar");
    s.admin(&["org", "export", "ACME", "--to", tar.to_str().unwrap()]);
    let x = work.path().join("x");
    std::fs::create_dir(&x).unwrap();
    let o = std::process::Command::new("tar").arg("-xf").arg(&tar).arg("-C").arg(&x).output().unwrap();
    assert!(o.status.success(), "tar: {}", text(&o));
    for f in walk(&dir).into_iter().filter(|f| f.is_file()) {
        let rel = f.strip_prefix(&dir).unwrap();
        let t = x.join(rel);
        assert_eq!(sha256_file(&f), sha256_file(&t), "{}", rel.display());
        if !rel.ends_with("index.jsonl") {
            assert_eq!(mtime(&f), mtime(&t), "{}", rel.display());
        }
    }
    let data_files = walk(&dir).into_iter().filter(|f| f.is_file() && !f.starts_with(dir.join(".streams"))).count();
    assert_eq!(data_files, 6, "{:?}", walk(&dir));
    let o = s.cli(&["org", "export", "ACME", "--to", tar.to_str().unwrap()], None, &[]);
    assert!(!o.status.success(), "an existing tar is never overwritten");
    let ops = s.admin(&["logs", "operations", "--org", "ACME", "--format", "jsonl"]);
    assert!(ops.contains("org.export"), "{ops}");
}

/// The server's own schedule (`[backup] remote_at`, a time of day in JST)
/// makes a generation by itself at that time, not before; the target's
/// `bandwidth_kib` holds uploads to that rate (measured on `org-now`).
#[test]
fn scheduled_backup_and_bandwidth_limit() {
    let g = Garage::start();
    g.bucket("tokyo");
    g.bucket("osaka");
    // 20 s ahead, JST, to the second.
    let at = chrono::DateTime::from_timestamp(chrono::Utc::now().timestamp() + 20, 0).unwrap();
    let at_jst = (at + chrono::Duration::hours(9)).format("%H:%M:%S").to_string();
    let mut opts = config(&g, &format!("remote_at = {at_jst:?}\n"));
    // The limit: 1 MiB/s on tokyo (the test's other settings as the others).
    opts.extra[1].push_str("bandwidth_kib = 1024\n");
    let s = TestServer::start_with(opts);
    s.admin(&["org", "add", "ACME"]);
    s.add_user("ACME\\alice", PASS);
    s.admin(&["share", "add", "acmedocs", "--org", "ACME"]);
    let work = tempfile::tempdir().unwrap();
    let f1 = work.path().join("one.bin");
    random_file(&f1, 3_000_000, 31);
    put(&s, "acmedocs", "ACME\\alice", &f1, "one.bin");
    s.admin(&["backup", "org-target", "ACME", "tokyo"]);
    let tokyo = bucket(&g, "tokyo", "");
    let generations = || tokyo.list("").unwrap().into_iter().filter(|o| o.key.contains("/generations/")).count();
    assert!(chrono::Utc::now() < at, "the set-up took longer than the lead time; nothing may run before it");
    assert_eq!(generations(), 0, "nothing before the scheduled time");
    // Wait for it: at the time, plus the 3 MB upload at 1 MiB/s.
    let started = Instant::now();
    while generations() == 0 {
        assert!(started.elapsed() < Duration::from_secs(90), "no scheduled backup:\n{}", s.log_text());
        std::thread::sleep(Duration::from_millis(250));
    }
    let seen = chrono::Utc::now();
    eprintln!("scheduled for {at} (JST {at_jst}); generation in the bucket at {seen}");
    assert!(seen >= at, "the generation appeared before its time");
    assert!(s.log_text().contains("remote backup made"), "{}", s.log_text());
    let list: Value = serde_json::from_str(&s.admin(&["--json", "backup", "org-list", "ACME"])).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");

    // Bandwidth: 6 MB of new data (and the changed meta.db) sent at no
    // more than 1 MiB/s, allowing the throttle's one second of burst
    // (objects.rs `Throttle`: a token bucket one second deep), and not far
    // below it either.
    let f2 = work.path().join("two.bin");
    random_file(&f2, 6_000_000, 32);
    put(&s, "acmedocs", "ACME\\alice", &f2, "two.bin");
    std::thread::sleep(Duration::from_secs(3));
    let t0 = Instant::now();
    let r = org_now(&s, "ACME", &[]).unwrap();
    let secs = t0.elapsed().as_secs_f64();
    let sent = r["uploaded_bytes"].as_u64().unwrap() as f64;
    let rate = sent / secs / 1_048_576.0;
    eprintln!("org-now sent {sent} bytes in {secs:.2} s: {rate:.3} MiB/s (limit 1 MiB/s)");
    assert!(sent > 6_000_000.0, "{r}");
    assert!(sent <= 1_048_576.0 * (secs + 1.0) * 1.02, "the limit held: {rate:.3} MiB/s over {secs:.2} s");
    assert!(rate >= 0.5, "the upload was not needlessly slow: {rate:.3} MiB/s");
}
