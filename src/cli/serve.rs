//! `smbvault serve`: start the server on the configured data directory. The
//! first start creates the master key, the databases, the default
//! organization, its administrator (password printed once) and a share.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::SystemTime;

use super::{CliError, Global};
use crate::accounts::Accounts;
use crate::app;
use crate::audit::{AuditLog, AuditSink, NullSink};
use crate::config::Config;
use crate::engine::Server;
use crate::types::FileTime;

/// Options of `smbvault serve`.
#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on, overriding `server.listen` (e.g. 127.0.0.1:4450).
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// Create a new master key even though the data directory is not empty
    /// or a key file already exists (normally refused: a failed mount must
    /// not become a new, empty server).
    #[arg(long)]
    pub force_new_key: bool,
}

/// Runs the server until SIGINT or SIGTERM, then makes everything durable.
/// SIGHUP reloads the configuration file.
pub fn run(g: &Global, args: &ServeArgs) -> Result<(), CliError> {
    let mut config = super::context::load_config(g)?;
    if let Some(l) = args.listen {
        config.server.listen = l;
    }
    let log = crate::service::logging::init(config.log.format, &config.log.level);
    let env_log = std::env::var("RUST_LOG").is_ok_and(|v| !v.trim().is_empty());
    let (listen, data_dir) = (args.listen, g.data_dir.clone());
    let overrides: Box<dyn Fn(&mut Config) + Send + Sync> = Box::new(move |c: &mut Config| {
        if let Some(l) = listen {
            c.server.listen = l;
        }
        if let Some(d) = &data_dir {
            c.server.data_dir = d.clone();
        }
    });
    let data = config.server.data_dir.clone();
    create_private_dir(&data)?;
    let _lock = lock_data_dir(&data)?;
    if app::slots_path(&config).exists() {
        app::finish_interrupted_rotation(&config).map_err(CliError::new)?;
    }
    let (mk, created) = app::open_master_key_forced(&config, true, args.force_new_key, false).map_err(CliError::new)?;
    if created {
        println!(
            "created a new master key; its key file is {} (keep it off the data disk; for disaster \
             recovery run `smbvault key export-recovery FILE` and keep FILE off this machine)",
            config.key_file().display()
        );
    }
    if matches!(app::unlock_method(&config), crate::keys::Unlock::KeyFile(_)) {
        for w in crate::keys::custody::key_file_warnings(&config.key_file(), &data) {
            tracing::warn!("{w}");
            eprintln!("warning: {w}");
        }
    }
    let store = app::open_store(&config, &mk, true).map_err(CliError::new)?;
    let accounts = Arc::new(
        Accounts::open(&data.join("accounts.db"), &mk, &config.accounts)?
            .with_erase_after_days(config.backup.erase_after_days),
    );
    let prov = app::StoreProvisioner::new(store.clone(), SystemTime::now());
    if let Some(admin) = crate::accounts::bootstrap(&accounts, &prov, &config)? {
        println!(
            "first start: created organization {org}, administrator {org}\\{user} and share \\\\{host}\\{share}",
            org = admin.org,
            user = admin.user,
            host = config.server.name,
            share = admin.share
        );
        show_first_password(&data, &admin.user, admin.password.as_str())?;
    }
    // `audit.default_retention` is reloadable: the writer reads it here.
    let retention = Arc::new(parking_lot::RwLock::new(config.audit.default_retention));
    let audit_log: Option<Arc<AuditLog>> = if config.audit.enabled {
        let log = AuditLog::open(&crate::audit::audit_dir(&data), store.clone(), &mk, &config.audit)
            .map_err(|e| CliError::new(format!("cannot open the audit log: {e}")))?;
        let acc = accounts.clone();
        let default = retention.clone();
        log.set_retention(Arc::new(move |org| {
            acc.org(org).ok().flatten().and_then(|o| o.retention).unwrap_or(*default.read())
        }));
        Some(log)
    } else {
        None
    };
    let audit: Arc<dyn AuditSink> = match &audit_log {
        Some(l) => l.clone(),
        None => Arc::new(NullSink),
    };
    if let Some(w) = crate::audit::clock_sync_warning() {
        tracing::warn!("{w}");
    }
    let backups = Arc::new(super::backup::db_backups(&config, &mk));
    let data_backups = super::backup::data_backups(&config, &mk).map(Arc::new);
    let remote = (!config.backup.targets.is_empty()).then(|| Arc::new(super::backup_remote::remote(&config, &mk)));
    drop(mk);
    let eraser = Arc::new(crate::backup::erasure::Eraser {
        accounts: accounts.clone(),
        store: store.clone(),
        audit_log: audit_log.clone(),
        audit: audit.clone(),
        backups: Some(backups.clone()),
        data_backups: data_backups.clone(),
        remote: remote.clone(),
    });
    let directory = Arc::new(app::AccountsDirectory::new(accounts.clone(), &config));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::new(format!("cannot start the async runtime: {e}")))?;
    let path = g.resolved_config();
    let parts = Parts {
        config,
        directory,
        accounts,
        store: store.clone(),
        audit: audit.clone(),
        audit_log: audit_log.clone(),
        eraser,
        backups: [Some(backups), data_backups],
        reload: (path, overrides, log, retention, env_log),
    };
    let result = rt.block_on(serve(parts));
    // Graceful shutdown: every acknowledged write and every event durable.
    let flushed = store.flush_all();
    drop(audit);
    if let Some(log) = audit_log
        && let Err(e) = log.shutdown()
    {
        tracing::error!(error = %e, "audit log shutdown failed");
    }
    flushed.map_err(|e| CliError::new(format!("could not flush the store at shutdown: {e}")))?;
    if result.is_ok() {
        tracing::info!("stopped; store and audit log flushed");
    }
    result
}

type ReloadParts = (
    std::path::PathBuf,
    Box<dyn Fn(&mut Config) + Send + Sync>,
    crate::service::logging::LogHandle,
    Arc<parking_lot::RwLock<crate::config::Retention>>,
    bool,
);

/// What the async part of the server is made of.
struct Parts {
    config: Config,
    directory: Arc<app::AccountsDirectory>,
    accounts: Arc<Accounts>,
    store: Arc<crate::storage::Store>,
    audit: Arc<dyn AuditSink>,
    audit_log: Option<Arc<AuditLog>>,
    eraser: Arc<crate::backup::erasure::Eraser>,
    backups: [Option<Arc<crate::backup::db::DbBackups>>; 2],
    reload: ReloadParts,
}

async fn serve(p: Parts) -> Result<(), CliError> {
    let Parts { config, directory, accounts, store, audit, audit_log, eraser, backups, reload } = p;
    let remote_hours = config.backup.remote_interval_hours;
    let remote_at = config.backup.remote_at.as_deref().and_then(crate::backup::remote::schedule::parse_at);
    // Handlers first: SIGHUP's default action would end the process, and
    // systemd may send it as soon as we say READY.
    let handlers = crate::service::signals::Signals::install();
    let listen = config.server.listen;
    let listener = tokio::net::TcpListener::bind(listen).await.map_err(|e| bind_error(listen, &e))?;
    // A metrics port in use must not keep SMB clients out: say so and serve.
    let metrics_listener = if config.metrics.enabled {
        let m = config.metrics.listen;
        match tokio::net::TcpListener::bind(m).await {
            Ok(l) => Some(l),
            Err(e) => {
                tracing::error!(
                    address = %m,
                    error = %e,
                    "cannot listen for metrics; serving without /metrics and /healthz (change `[metrics] listen`)"
                );
                None
            }
        }
    } else {
        None
    };
    let control_path = config.control_socket();
    let mut guid = [0u8; 16];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut guid);
    let seed = rand::RngCore::next_u64(&mut rand::rngs::OsRng);
    let (erase_interval, db_on, data_on) =
        (config.backup.erase_check_interval_secs, config.backup.db_generations > 0, config.backup.data_generations > 0);
    let server = Arc::new(Server::new(
        config,
        directory.clone(),
        store.clone(),
        audit.clone(),
        guid,
        seed,
        FileTime::from_system(SystemTime::now()),
        Arc::new(|buf: &mut [u8]| rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, buf)),
    ));
    let metrics = server.metrics.clone();
    let console_backups = backups.clone();
    let remote = eraser.remote.clone();
    let console_remote = remote.clone();
    if let Some(r) = &remote {
        let limit = server.config.backup.previous_versions_cache_mib.max(1) << 20;
        let views = crate::backup::remote::views::Views::new(r.clone(), accounts.clone(), store.clone(), limit);
        server.set_snapshots(Arc::new(app::PreviousVersions(Arc::new(views))));
    }
    tokio::spawn(erase_periodically(eraser, erase_interval, metrics.clone()));
    let [db, data] = backups;
    // Database and data backups are sibling tasks: each has its own lock
    // file and target, so neither waits for the other.
    for (kind, b, on) in [(0, db, db_on), (1, data, data_on)] {
        if let Some(b) = b.filter(|_| on) {
            tokio::spawn(backup_daily(b, store.clone(), kind, metrics.clone()));
        }
    }
    match (remote, remote_at) {
        (Some(r), Some(at)) => {
            tokio::spawn(crate::backup::remote::schedule::run_daily_at(r, accounts.clone(), store.clone(), at));
        }
        (Some(r), None) if remote_hours > 0 => {
            let every = std::time::Duration::from_secs(remote_hours * 3600);
            tokio::spawn(crate::backup::remote::schedule::run(r, accounts.clone(), store.clone(), every));
        }
        _ => {}
    }
    let registry = Arc::new(crate::net::Registry::default());
    let control = {
        let src = Arc::new(crate::service::control::Sources {
            registry: registry.clone(),
            audit: audit.clone(),
            metrics: metrics.clone(),
            store: store.clone(),
        });
        let path = control_path.clone();
        tokio::spawn(async move {
            if let Err(e) = crate::service::control::serve(&path, src).await {
                tracing::error!(path = %path.display(), error = %e, "control socket failed; `smbvault status` is unavailable");
            }
        })
    };
    let ready = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let actual = listener.local_addr().map_err(|e| CliError::new(e.to_string()))?;
    if let Some(ml) = metrics_listener {
        let addr = ml.local_addr().map_err(|e| CliError::new(e.to_string()))?;
        let src = Arc::new(crate::service::http::Sources {
            server: server.clone(),
            accounts: accounts.clone(),
            audit: audit_log.clone(),
            ready: ready.clone(),
        });
        tokio::spawn(crate::service::http::serve(ml, src));
        println!("smbvault metrics on http://{addr}/metrics");
    }
    let console = crate::console::Console::new(
        accounts,
        audit.clone(),
        audit_log,
        server.clone(),
        console_backups,
        registry.clone(),
        console_remote,
    );
    start_console(server.live().as_ref(), console).await;
    let (path, overrides, log, retention, env_log) = reload;
    let reloader = crate::service::reload::Reloader {
        path,
        overrides,
        server: server.clone(),
        directory,
        log,
        retention,
        env_log,
    };
    println!("smbvault listening on {actual}");
    ready.store(true, std::sync::atomic::Ordering::Relaxed);
    crate::service::notify::ready(&format!("serving SMB on {actual}"));
    // `systemctl status` shows how busy the server is.
    let status_task = {
        let m = server.metrics.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(10));
            tick.tick().await;
            loop {
                tick.tick().await;
                let n = m.connections_open.load(std::sync::atomic::Ordering::Relaxed);
                crate::service::notify::status(&format!("serving SMB on {actual}: {n} connection(s)"));
            }
        })
    };
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let r2 = ready.clone();
    let signals = tokio::spawn(async move {
        handlers.wait(reloader).await;
        r2.store(false, std::sync::atomic::Ordering::Relaxed);
        crate::service::notify::stopping("stopping: finishing requests, flushing store and audit log");
        tracing::info!("shutting down: no new connections; finishing requests in flight");
        let _ = stop_tx.send(true);
    });
    let result = crate::net::serve(server, listener, registry, stop_rx)
        .await
        .map_err(|e| CliError::new(format!("server failed: {e}")));
    control.abort();
    signals.abort();
    status_task.abort();
    let _ = std::fs::remove_file(&control_path);
    result
}

/// Binds and serves the web console. Like the metrics endpoint, a console
/// that cannot start (port taken, unreadable certificate) is logged and
/// skipped: SMB clients must not be kept out by it.
async fn start_console(config: &Config, console: crate::console::Console) {
    if !config.console.enabled {
        return;
    }
    let addr = config.console.listen;
    let tls = match crate::console::tls::load(config) {
        Ok(t) => t,
        Err(e) => {
            tracing::error!(error = %e, "cannot set up TLS for the console; serving without it");
            eprintln!("warning: console not started: {e}");
            return;
        }
    };
    let listener = match tokio::net::TcpListener::bind(addr).await {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(address = %addr, error = %e, "cannot listen for the console; serving without it (change `[console] listen`)");
            return;
        }
    };
    let actual = listener.local_addr().unwrap_or(addr);
    if tls.created {
        println!("created a self-signed certificate for the console: {}", tls.cert_path.display());
    }
    println!("smbvault console on https://{actual}/ (certificate SHA-256 {})", tls.fingerprint);
    tokio::spawn(crate::console::serve(listener, tls.server, Arc::new(console)));
}

/// Erases organizations whose contract ended, at start and then every
/// `interval` seconds (on a blocking thread: shredding syncs files).
async fn erase_periodically(
    eraser: Arc<crate::backup::erasure::Eraser>,
    interval: u64,
    metrics: Arc<crate::metrics::Metrics>,
) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(interval.max(1)));
    loop {
        tick.tick().await;
        let e = eraser.clone();
        match tokio::task::spawn_blocking(move || e.erase_due(SystemTime::now())).await {
            Ok(Ok(done)) => {
                for o in done {
                    metrics.erasures_done.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    println!("erased organization #{} (contract ended)", o.id.0);
                }
            }
            Ok(Err(e)) => tracing::error!(error = %e, "organization erasure failed"),
            Err(e) => tracing::error!(error = %e, "organization erasure task failed"),
        }
    }
}

/// One backup (database, or data when `backups` includes segments) at
/// start when the newest is a day old (or there is none), then one a day;
/// older generations beyond `db_generations` / `data_generations` are
/// deleted. The store is flushed first so the backup holds every write
/// acknowledged so far, not only the last periodic commit.
async fn backup_daily(
    backups: Arc<crate::backup::db::DbBackups>,
    store: Arc<crate::storage::Store>,
    kind: usize,
    metrics: Arc<crate::metrics::Metrics>,
) {
    const DAY: std::time::Duration = std::time::Duration::from_secs(86_400);
    loop {
        let age = backups.newest_age(SystemTime::now());
        let wait = match age {
            Some(a) if a < DAY => DAY - a,
            _ => {
                let (b, s) = (backups.clone(), store.clone());
                let started = std::time::Instant::now();
                let run = move || {
                    s.flush_all().map_err(|e| format!("flush before backup: {e}"))?;
                    b.create(SystemTime::now())
                };
                let data = backups.includes_segments();
                let result = tokio::task::spawn_blocking(run).await;
                let unix = SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_secs() as i64;
                metrics.backup(kind, unix, matches!(result, Ok(Ok(_))));
                match result {
                    Ok(Ok(g)) => {
                        tracing::info!(generation = %g.name, data, ms = started.elapsed().as_millis() as u64, "backup made")
                    }
                    Ok(Err(e)) => tracing::error!(error = %e, data, "backup failed; retrying in an hour"),
                    Err(e) => tracing::error!(error = %e, data, "backup task failed; retrying in an hour"),
                }
                // After a failure, retry sooner than a day.
                match backups.newest_age(SystemTime::now()) {
                    Some(a) if a < DAY => DAY - a,
                    _ => std::time::Duration::from_secs(3600),
                }
            }
        };
        tokio::time::sleep(wait.max(std::time::Duration::from_secs(60))).await;
    }
}

/// The first administrator's password goes to the terminal, never to a
/// log: when standard output is not a terminal (a service journal, a
/// pipe), it is written to a 0600 file in the data directory instead and
/// only that file's path is printed.
fn show_first_password(data: &std::path::Path, user: &str, password: &str) -> Result<(), CliError> {
    use std::io::{IsTerminal, Write};
    use std::os::unix::fs::OpenOptionsExt;
    if std::io::stdout().is_terminal() {
        println!("administrator password: {password}");
        println!("(shown only once; change it with `smbvault user passwd {user}`)");
        return Ok(());
    }
    let path = data.join(FIRST_PASSWORD_FILE);
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&path)?;
        // A leftover from an earlier start may have other permissions.
        f.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
        f.write_all(format!("{password}\n").as_bytes())?;
        f.sync_all()
    };
    write().map_err(|e| {
        CliError::new(format!("cannot write the first administrator's password to {}: {e}", path.display()))
    })?;
    println!(
        "administrator password written to {} (mode 0600; read it, delete the file, and change the \
         password with `smbvault user passwd {user}`)",
        path.display()
    );
    Ok(())
}

/// File in the data directory that receives the first administrator's
/// password when `serve` does not run on a terminal.
pub const FIRST_PASSWORD_FILE: &str = "first-admin-password";

pub(crate) fn create_private_dir(dir: &std::path::Path) -> Result<(), CliError> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir).map_err(|e| {
        CliError::new(format!(
            "cannot create the data directory {}: {e}; set server.data_dir to a writable place",
            dir.display()
        ))
    })?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(|e| {
        CliError::new(format!(
            "cannot make the data directory {} private (mode 0700): {}",
            dir.display(),
            crate::keys::custody::permission_hint(dir, &e)
        ))
    })?;
    Ok(())
}

/// Only one server may own a data directory: the storage engine's crash
/// recovery assumes nobody else appends to its segments.
pub(crate) fn lock_data_dir(dir: &std::path::Path) -> Result<std::fs::File, CliError> {
    let path = dir.join("server.lock");
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| CliError::new(format!("cannot create {}: {e}", path.display())))?;
    f.try_lock().map_err(|_| {
        CliError::new(format!(
            "another smbvault server is already running on {}; stop it first or use another data directory",
            dir.display()
        ))
    })?;
    Ok(f)
}

/// Explains a bind failure, with the usual fix for port 445.
fn bind_error(addr: SocketAddr, e: &std::io::Error) -> CliError {
    let hint = match e.kind() {
        std::io::ErrorKind::PermissionDenied => "ports below 1024 need root or CAP_NET_BIND_SERVICE \
             (`sudo setcap cap_net_bind_service=+ep $(which smbvault)`), \
             or listen on a high port: `smbvault serve --listen 127.0.0.1:4450` \
             (Windows clients only use 445; smbclient takes `-p 4450`)"
            .to_string(),
        std::io::ErrorKind::AddrInUse => format!(
            "another program already listens on {addr} (Samba's smbd?). Stop it \
             (`systemctl stop smbd`) or choose another port with --listen"
        ),
        std::io::ErrorKind::AddrNotAvailable => {
            format!("{} is not an address of this machine; use 0.0.0.0 or a local address", addr.ip())
        }
        _ => "check the `server.listen` setting".to_string(),
    };
    CliError::new(format!("cannot listen on {addr}: {e}; {hint}"))
}
