//! `smbvault backup ...`: database backups and, with `[backup]
//! data_target`, data backups (docs/backup.md). Operator only: a backup
//! holds every organization's metadata.

use std::time::{Instant, SystemTime};

use clap::Subcommand;
use serde_json::json;

use super::output::{Output, bytes_text, time_json, time_text};
use super::{CliError, Global};
use crate::backup::db::{DbBackups, Generation, default_dir};
use crate::config::Config;
use crate::keys::MasterKey;

/// Backup commands.
#[derive(Debug, Clone, Subcommand)]
pub enum BackupCmd {
    /// Make a database backup generation now (safe while the server runs).
    Now,
    /// Make a data backup generation now in `[backup] data_target`:
    /// databases and segment files (safe while the server runs).
    DataNow,
    /// List generations: time (JST), size, verification status.
    List {
        /// Data backup generations (`[backup] data_target`) instead.
        #[arg(long)]
        data: bool,
    },
    /// Check generations against their manifests (all, or GEN).
    Verify {
        /// Generation name as listed, e.g. 20261125T090000+0900.
        generation: Option<String>,
        /// Data backup generations (`[backup] data_target`) instead.
        #[arg(long)]
        data: bool,
    },
    /// Put a generation's databases back (the server must be stopped).
    /// Asks first (type the generation's name, or --yes).
    Restore {
        /// Generation name as listed, e.g. 20261125T090000+0900, or "latest".
        generation: String,
        /// A data backup generation: databases and segment files.
        #[arg(long)]
        data: bool,
        /// --yes, --dry-run.
        #[command(flatten)]
        confirm: super::confirm::ConfirmArgs,
        /// On a new machine: take the master key from this recovery file
        /// (`smbvault key export-recovery`; passphrase from
        /// SMBVAULT_RECOVERY_PASSPHRASE or the terminal). Without it, an empty
        /// data directory's master key is opened from the generation's slot
        /// file with the configured key file or passphrase. On a directory
        /// whose key was rotated after the generation was taken: the
        /// recovery file of the generation's (older) master key, needed only
        /// when the generation's slot file does not open with the key file.
        #[arg(long, value_name = "FILE")]
        recovery: Option<std::path::PathBuf>,
    },
    /// Remote backup targets (`[backup.targets]`) and how many
    /// organizations use each.
    Targets,
    /// Choose where ORG's remote backups go and how many generations are
    /// kept. The operator may choose any target; an organization's
    /// administrator one of `[backup] org_choosable_targets`.
    OrgTarget {
        /// Organization.
        org: String,
        /// Target name (default: keep the current one).
        target: Option<String>,
        /// Generations kept (default: `[backup] remote_generations`).
        #[arg(long)]
        generations: Option<u32>,
        /// Turn ORG's remote backups off (operator only; generations stay).
        #[arg(long, conflicts_with = "target")]
        off: bool,
    },
    /// Make a remote backup generation of ORG (default: every
    /// organization with a target) now (safe while the server runs).
    OrgNow {
        /// Organization.
        org: Option<String>,
    },
    /// List ORG's generations on its target, newest first.
    OrgList {
        /// Organization.
        org: String,
    },
    /// Download and check every object of ORG's generations (all, or GEN);
    /// exit 1 if any is damaged.
    OrgVerify {
        /// Organization.
        org: String,
        /// Generation name as listed.
        generation: Option<String>,
    },
    /// Restore one file or folder of ORG's generation GEN into its share
    /// under a new name (default `復元 <date>/…`), never overwriting;
    /// works while the server runs; recorded in ORG's operation log.
    RestoreFiles {
        /// Organization.
        org: String,
        /// Generation name as listed, or "latest".
        generation: String,
        /// SHARE/path/in/share (a file or a folder; SHARE alone: all of it).
        path: String,
        /// Put it at this path of the same share instead (must not exist).
        #[arg(long)]
        to: Option<String>,
    },
}

/// The configured database backups, MACed under `mk`.
pub fn db_backups(config: &Config, mk: &MasterKey) -> DbBackups {
    let data = &config.server.data_dir;
    DbBackups::new(
        data,
        default_dir(data, config.backup.db_dir.as_deref()),
        config.backup.db_generations,
        crate::backup::manifest::mac_key(mk),
    )
}

/// The configured data backups (`[backup] data_target`), if any.
pub fn data_backups(config: &Config, mk: &MasterKey) -> Option<DbBackups> {
    let target = config.backup.data_target.as_ref()?;
    let b = DbBackups::new(
        &config.server.data_dir,
        target.clone(),
        config.backup.data_generations,
        crate::backup::manifest::mac_key(mk),
    );
    Some(b.with_segments())
}

/// Runs one `backup` command.
pub fn run(g: &Global, cmd: &BackupCmd) -> Result<(), CliError> {
    if super::backup_remote::handles(cmd) {
        return super::backup_remote::run(g, cmd);
    }
    if let Some(who) = &g.as_user {
        return Err(CliError {
            message: format!(
                "backups are for the operator (they hold every organization's metadata); \
                 run without --as {who}, as the user that can read the master key file"
            ),
            code: 3,
        });
    }
    let config = super::context::load_config(g)?;
    let out = Output { json: g.json };
    if let BackupCmd::Restore { generation, data, confirm, recovery } = cmd
        && !crate::app::slots_path(&config).exists()
    {
        return restore_onto_empty(&config, generation, *data, confirm, recovery.as_deref(), out);
    }
    let mk = super::context::open_master_key(&config, false)?;
    let db = db_backups(&config, &mk);
    let data = data_backups(&config, &mk);
    let pick = |want_data: bool| -> Result<&DbBackups, CliError> {
        match (want_data, &data) {
            (false, _) => Ok(&db),
            (true, Some(d)) => Ok(d),
            (true, None) => Err(CliError::new(
                "data backups are off: set [backup] data_target (a directory on another disk) in the configuration",
            )),
        }
    };
    match cmd {
        BackupCmd::Now => now(&db, out),
        BackupCmd::DataNow => now(pick(true)?, out),
        BackupCmd::List { data } => list(pick(*data)?, out),
        BackupCmd::Verify { generation, data } => verify(pick(*data)?, generation.as_deref(), out),
        BackupCmd::Restore { generation, data, confirm, recovery } => {
            restore(&config, &mk, pick(*data)?, generation, confirm, recovery.as_deref(), out)
        }
        _ => super::backup_remote::run(g, cmd),
    }
}

fn size_of(g: &Generation) -> u64 {
    crate::backup::manifest::list_files(&g.dir)
        .iter()
        .filter_map(|f| std::fs::metadata(g.dir.join(f)).ok())
        .map(|m| m.len())
        .sum()
}

/// Bytes of files in `g` that no other generation shares (link count 1).
fn new_bytes_of(g: &Generation) -> u64 {
    use std::os::unix::fs::MetadataExt;
    crate::backup::manifest::list_files(&g.dir)
        .iter()
        .filter_map(|f| std::fs::metadata(g.dir.join(f)).ok())
        .filter(|m| m.nlink() == 1)
        .map(|m| m.len())
        .sum()
}

/// Bytes a new generation will roughly hold: the databases, and for data
/// backups the segments and audit logs (the progress display's total).
fn expected_size(b: &DbBackups) -> u64 {
    let data = b.data_dir();
    let mut n = ["accounts.db", "store/keys.db"]
        .iter()
        .filter_map(|f| std::fs::metadata(data.join(f)).ok())
        .map(|m| m.len())
        .sum();
    for f in crate::backup::manifest::list_files(&data.join("store").join("orgs")) {
        if f.ends_with("/meta.db") || (b.includes_segments() && f.ends_with(".seg")) {
            n += std::fs::metadata(data.join("store/orgs").join(&f)).map(|m| m.len()).unwrap_or(0);
        }
    }
    if b.includes_segments() {
        n += super::progress::dir_size(&data.join("audit"));
    }
    n
}

/// Progress of a generation being written: the size of its `.tmp-*` directory.
fn generation_progress(b: &DbBackups) -> super::progress::Progress {
    let dir = b.dir().to_path_buf();
    let total = expected_size(b);
    let seen = std::sync::atomic::AtomicU64::new(0);
    let label = if b.includes_segments() { "data backup" } else { "backup" };
    super::progress::Progress::start(
        label,
        Box::new(move || {
            let now: u64 = std::fs::read_dir(&dir)
                .map(|rd| {
                    rd.flatten()
                        .filter(|e| e.file_name().to_string_lossy().starts_with(".tmp-"))
                        .map(|e| super::progress::dir_size(&e.path()))
                        .sum()
                })
                .unwrap_or(0);
            let done = seen.fetch_max(now, std::sync::atomic::Ordering::Relaxed).max(now);
            (done, total.max(done))
        }),
    )
}

/// Progress of a restore: bytes of the generation's files written into
/// the data directory since it started.
fn restore_progress(g: &Generation, data: &std::path::Path) -> super::progress::Progress {
    let files: Vec<(std::path::PathBuf, u64)> = crate::backup::manifest::Manifest::read(&g.dir)
        .map(|m| m.files.into_iter().map(|f| (data.join(&f.path), f.size)).collect())
        .unwrap_or_default();
    let total = files.iter().map(|f| f.1).sum();
    let started = SystemTime::now() - std::time::Duration::from_secs(1);
    super::progress::Progress::start(
        "restore",
        Box::new(move || {
            let done = files
                .iter()
                .filter_map(|(p, size)| {
                    let m = std::fs::metadata(p).ok()?;
                    (m.modified().ok()? >= started).then_some(m.len().min(*size))
                })
                .sum();
            (done, total)
        }),
    )
}

fn now(b: &DbBackups, out: Output) -> Result<(), CliError> {
    let started = Instant::now();
    let p = generation_progress(b);
    let g = b.create(SystemTime::now());
    let g = match g {
        Ok(g) => {
            let size = size_of(&g);
            p.finish_at(size, size);
            g
        }
        Err(e) => {
            p.finish();
            return Err(CliError::new(format!("backup failed: {e}")));
        }
    };
    let ms = started.elapsed().as_millis() as u64;
    let size = size_of(&g);
    let new = new_bytes_of(&g);
    let shared = match b.includes_segments() {
        true => format!(", {} new, the rest shared with the previous generation", bytes_text(Some(new))),
        false => String::new(),
    };
    out.done(
        &format!("backup {} made in {} ({}{shared}, {ms} ms)", g.name, g.dir.display(), bytes_text(Some(size))),
        json!({ "generation": g.name, "dir": g.dir, "time": time_json(g.time), "size_bytes": size,
                "new_bytes": new, "data": b.includes_segments(), "ms": ms }),
    );
    Ok(())
}

fn list(b: &DbBackups, out: Output) -> Result<(), CliError> {
    let gens = b.list();
    let mut rows = Vec::new();
    let mut items = Vec::new();
    for g in gens.iter().rev() {
        let problems = b.verify(g);
        let size = size_of(g);
        let status = if problems.is_empty() { "ok" } else { "DAMAGED" };
        rows.push(vec![g.name.clone(), time_text(g.time), bytes_text(Some(size)), status.to_string()]);
        items.push(json!({
            "generation": g.name, "time": time_json(g.time), "size_bytes": size,
            "ok": problems.is_empty(), "problems": problems,
        }));
    }
    if gens.is_empty() && !out.json {
        let (what, cmd) = if b.includes_segments() { ("data", "data-now") } else { ("database", "now") };
        println!("no {what} backups in {} yet; make one with `smbvault backup {cmd}`", b.dir().display());
        return Ok(());
    }
    out.table(&["GENERATION", "TIME", "SIZE", "STATUS"], &rows, json!(items));
    Ok(())
}

fn verify(b: &DbBackups, name: Option<&str>, out: Output) -> Result<(), CliError> {
    let gens = match name {
        Some(n) => vec![b.find(n).map_err(CliError::new)?],
        None => b.list(),
    };
    let mut bad = Vec::new();
    let mut items = Vec::new();
    for g in &gens {
        let problems = b.verify(g);
        if !out.json {
            match problems.is_empty() {
                true => println!("{}: ok", g.name),
                false => println!("{}: DAMAGED: {}", g.name, problems.join("; ")),
            }
        }
        if !problems.is_empty() {
            bad.push(g.name.clone());
        }
        items.push(json!({ "generation": g.name, "ok": problems.is_empty(), "problems": problems }));
    }
    if out.json {
        println!("{}", json!(items));
    }
    if bad.is_empty() {
        return Ok(());
    }
    Err(CliError::new(format!(
        "{} of {} generations failed verification ({}): do not restore them; make a fresh one with `smbvault backup now`",
        bad.len(),
        gens.len(),
        bad.join(", ")
    )))
}

/// Disaster recovery (docs/backup.md): a data directory without a master
/// key (a new machine) is restored from a generation, the master key coming
/// from the recovery file, or else from the generation's own slot file
/// opened with the configured key file or passphrase. Afterwards the slot
/// file also opens with this machine's key file (made if missing).
fn restore_onto_empty(
    config: &Config,
    generation: &str,
    data: bool,
    confirm: &super::confirm::ConfirmArgs,
    recovery: Option<&std::path::Path>,
    out: Output,
) -> Result<(), CliError> {
    use crate::keys::MasterKey;
    let slots = crate::app::slots_path(config);
    if slots.exists() {
        return Err(CliError::new(format!(
            "the data directory {} already has a master key ({}); restore without --recovery",
            config.server.data_dir.display(),
            slots.display()
        )));
    }
    let unlock = crate::app::unlock_method(config);
    // Listing needs no key; the generation's keys.db then says which
    // master key it needs (keys::rotate).
    let probe = MasterKey::from_key(crate::keys::Key32::random());
    let pb = match data {
        true => data_backups(config, &probe)
            .ok_or_else(|| CliError::new("data backups are off: set [backup] data_target"))?,
        false => db_backups(config, &probe),
    };
    let g = find(&pb, generation)?;
    let mk = match recovery {
        Some(file) => {
            let pass = super::key::passphrase(super::key::RECOVERY_PASSPHRASE_ENV, "recovery passphrase")?;
            MasterKey::from_recovery(file, &pass).map_err(|e| CliError::new(e.to_string()))?
        }
        None => {
            let gen_slots = g.dir.join(crate::backup::db::SLOTS_FILE);
            MasterKey::open(&gen_slots, &unlock).map_err(|e| {
                CliError::new(format!(
                    "{e}; the data directory {} has no master key: restore with --recovery FILE \
                     (the file `smbvault key export-recovery` wrote), or configure the old key file",
                    config.server.data_dir.display()
                ))
            })?
        }
    };
    let mk = generation_key(&g, &mk, recovery)?;
    let b = match data {
        true => {
            data_backups(config, &mk).ok_or_else(|| CliError::new("data backups are off: set [backup] data_target"))?
        }
        false => db_backups(config, &mk),
    };
    super::serve::create_private_dir(&config.server.data_dir)?;
    restore(config, &mk, &b, generation, confirm, None, out)?;
    if confirm.dry_run {
        return Ok(());
    }
    // This machine's key file (or passphrase) must open the restored key.
    let kerr =
        |e: crate::keys::KeyError| CliError::new(format!("restored, but the key slot could not be written: {e}"));
    if MasterKey::open(&slots, &unlock).is_err() {
        match slots.exists() {
            true => mk.add_slot(&slots, &unlock).map_err(kerr)?,
            false => mk.write_new_slots(&slots, &unlock).map_err(kerr)?,
        }
    }
    let how = match &unlock {
        crate::keys::Unlock::KeyFile(p) => format!("the key file {}", p.display()),
        crate::keys::Unlock::Passphrase(_) => "the configured passphrase".into(),
    };
    if !out.json {
        println!("master key {} recovered; on this machine it opens with {how}", mk.key_id());
    }
    let source =
        recovery.map_or("the generation's slot file".to_string(), |f| format!("recovery file {}", f.display()));
    super::key::record(config, &mk, "key.recover", format!("master key {} recovered from {source}", mk.key_id()))
}

/// `mk` with the kept purpose keys of generation `g`, checked to open its
/// keys.db: a generation taken before a key rotation needs the master key
/// of its time (docs/backup.md, "Key rotation").
fn generation_key(g: &Generation, mk: &MasterKey, recovery: Option<&std::path::Path>) -> Result<MasterKey, CliError> {
    use crate::keys::rotate;
    let keys_db = g.dir.join(crate::backup::db::KEYS_DB);
    let wrong = || {
        CliError::new(format!(
            "generation {} was taken under another master key than {}, the key of {}: the master key was \
             rotated in between. Use the recovery file exported while the generation's key was in use \
             (before the rotation for older generations, after it for newer ones){}",
            g.name,
            mk.key_id(),
            recovery.map_or("the key file".to_string(), |f| format!("the recovery file {}", f.display())),
            if recovery.is_some() { "" } else { " with --recovery FILE" }
        ))
    };
    let cannot = |e: crate::keys::KeyError| CliError::new(format!("cannot read {}: {e}", keys_db.display()));
    match rotate::belongs_to(&keys_db, mk, true).map_err(cannot)? {
        true => rotate::load_kept(mk, &keys_db, true).map_err(cannot),
        false => Err(wrong()),
    }
}

/// For a restore over a data directory whose master key was rotated after
/// generation `g` was taken: the generation's own master key (from its
/// slot file with this machine's key file, or from `recovery`), to re-wrap
/// the restored keys.db under the current key. None when `g` already
/// belongs to `mk`.
fn older_generation_key(
    config: &Config,
    g: &Generation,
    mk: &MasterKey,
    recovery: Option<&std::path::Path>,
) -> Result<Option<MasterKey>, CliError> {
    let keys_db = g.dir.join(crate::backup::db::KEYS_DB);
    if crate::keys::rotate::belongs_to(&keys_db, mk, true).map_err(|e| CliError::new(e.to_string()))? {
        return Ok(None);
    }
    let old = match recovery {
        Some(file) => {
            let pass = super::key::passphrase(super::key::RECOVERY_PASSPHRASE_ENV, "recovery passphrase")?;
            MasterKey::from_recovery(file, &pass).map_err(|e| CliError::new(e.to_string()))?
        }
        None => MasterKey::open(&g.dir.join(crate::backup::db::SLOTS_FILE), &crate::app::unlock_method(config))
            .map_err(|e| {
                CliError::new(format!(
                    "generation {} was taken before the master key was rotated and its slot file does not open \
                     with this key file or passphrase ({e}): restore it with --recovery FILE, the recovery file \
                     exported before the rotation",
                    g.name
                ))
            })?,
    };
    generation_key(g, &old, recovery).map(Some)
}

/// The generation called `name`, or the newest for "latest".
fn find(b: &DbBackups, name: &str) -> Result<Generation, CliError> {
    if name == "latest" {
        return b.list().pop().ok_or_else(|| CliError::new(format!("no backup generations in {}", b.dir().display())));
    }
    b.find(name).map_err(CliError::new)
}

fn restore(
    config: &Config,
    mk: &MasterKey,
    b: &DbBackups,
    name: &str,
    confirm: &super::confirm::ConfirmArgs,
    recovery: Option<&std::path::Path>,
    out: Output,
) -> Result<(), CliError> {
    let g = find(b, name)?;
    let older = older_generation_key(config, &g, mk, recovery)?;
    let data = &config.server.data_dir;
    let what = format!(
        "replace the databases{} of {} with generation {} (taken {}); everything changed since is \
         lost (the replaced files are kept in {}/backups/replaced-<time>)",
        if b.includes_segments() { ", file contents and audit logs" } else { "" },
        data.display(),
        g.name,
        time_text(g.time),
        data.display()
    );
    if confirm.dry_run {
        let problems = b.verify(&g);
        let state = if problems.is_empty() {
            "it verifies".to_string()
        } else {
            format!("it is DAMAGED: {}", problems.join("; "))
        };
        out.done(
            &format!("dry run, nothing changed: would {what}; {state}"),
            json!({ "generation": g.name, "dry_run": true, "ok": problems.is_empty(), "problems": problems }),
        );
        return Ok(());
    }
    // Holding the server's lock for the whole restore also keeps a server
    // from starting in the middle of it.
    let _lock = super::serve::lock_data_dir(data).map_err(|_| {
        CliError::new(format!(
            "the server is running on {} (it holds server.lock): stop it first, then restore, then start it",
            data.display()
        ))
    })?;
    confirm.confirm(&what, &g.name)?;
    let p = restore_progress(&g, data);
    let r = crate::backup::restore::restore(b, &g, data, mk, &config.accounts, SystemTime::now());
    p.finish();
    let r = r.map_err(|e| CliError::new(format!("restore failed: {e}")))?;
    if let Some(old) = &older {
        // The generation predates a key rotation: its keys.db, now restored,
        // is re-wrapped under the current master key (no data rewritten).
        crate::keys::rotate::rewrap_keys_db(&data.join(crate::backup::db::KEYS_DB), old, mk.key()).map_err(|e| {
            CliError::new(format!(
                "restored, but keys.db could not be re-wrapped under the current master key: {e}; run the \
                 restore again"
            ))
        })?;
    }
    let erased: Vec<u64> = r.kept_erased.iter().map(|o| o.0).collect();
    out.done(
        &format!(
            "restored {} files from {} (taken {}); the replaced ones are in {}{}",
            r.files,
            g.name,
            time_text(g.time),
            r.replaced_dir.display(),
            if erased.is_empty() {
                String::new()
            } else {
                format!("; organizations erased since then stay erased: {erased:?}")
            }
        ),
        json!({ "generation": g.name, "files": r.files, "replaced_dir": r.replaced_dir, "kept_erased": erased }),
    );
    Ok(())
}
