//! Typed configuration, loaded from TOML (`config/smbvault.toml` documents every key).
//! No side effects here: loading and validating only.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Whole-server configuration.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Listener, names and data directory.
    pub server: ServerConfig,
    /// Transport security policy.
    pub security: SecurityConfig,
    /// Master key location and unlock method.
    pub keys: KeysConfig,
    /// Account policy: passwords and lockout.
    pub accounts: AccountsConfig,
    /// Audit log policy.
    pub audit: AuditConfig,
    /// Storage engine tuning.
    pub storage: StorageConfig,
    /// Backups.
    pub backup: BackupConfig,
    /// Shares created on first start (the default organization's).
    pub bootstrap: BootstrapConfig,
    /// Server diagnostics on stderr.
    pub log: LogConfig,
    /// Prometheus metrics and health endpoint.
    pub metrics: MetricsConfig,
    /// `[console]`: the HTTPS web console.
    pub console: ConsoleConfig,
    /// `[limits]`: what one connection may make the server hold.
    pub limits: LimitsConfig,
    /// `[locks]`: bounds on byte-range locks.
    pub locks: LocksConfig,
}

/// `[limits]`: per-connection budgets (issue 14). A hostile client can
/// make the server hold only this much; the defaults sit far above what
/// Windows, macOS and smbclient use. A request over a limit fails with the
/// status Windows uses (STATUS_INSUFFICIENT_RESOURCES, or
/// STATUS_TOO_MANY_OPENED_FILES for opens) and the connection goes on.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Responses queued for a connection (bytes) above which the server
    /// stops reading its requests until the client has taken them.
    pub send_queue_bytes: usize,
    /// Sessions per connection, authenticated or not.
    pub sessions_per_connection: usize,
    /// Logons under way (SESSION_SETUP not finished) per connection.
    pub sessions_in_progress: usize,
    /// A logon not finished this long after it began is dropped (seconds).
    pub session_setup_timeout_secs: u64,
    /// Tree connects per session.
    pub trees_per_session: usize,
    /// Open files, directories and pipes per session.
    pub opens_per_session: usize,
    /// Open files, directories and pipes per connection (all sessions).
    pub opens_per_connection: usize,
    /// Asynchronous requests (CHANGE_NOTIFY, blocking LOCK) waiting per connection.
    pub pending_per_connection: usize,
    /// Directory handles with a change-notify watch per connection.
    pub notify_watches_per_connection: usize,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            send_queue_bytes: 16 * 1024 * 1024,
            sessions_per_connection: 256,
            sessions_in_progress: 16,
            session_setup_timeout_secs: 60,
            trees_per_session: 256,
            opens_per_session: 16384,
            opens_per_connection: 65536,
            pending_per_connection: 1024,
            notify_watches_per_connection: 256,
        }
    }
}

/// `[locks]`: what one client may make the server hold in byte-range locks.
/// A LOCK request over either limit is answered STATUS_INSUFFICIENT_RESOURCES
/// and changes nothing.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LocksConfig {
    /// Locks one open may hold at a time.
    pub per_open: usize,
    /// Elements in one LOCK request (MS-SMB2 2.2.26 allows 65,535).
    pub elements_per_request: usize,
}

impl Default for LocksConfig {
    fn default() -> Self {
        Self { per_open: 10_000, elements_per_request: 4096 }
    }
}

/// `[console]`: the web console for organization administrators, staff
/// and the operator (HTTPS only).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConsoleConfig {
    /// Serve the console.
    pub enabled: bool,
    /// Address of its HTTPS listener (loopback by default: put a reachable
    /// address here, or a reverse proxy in front, on purpose).
    pub listen: SocketAddr,
    /// PEM certificate chain; with `key`. Unset: a self-signed certificate
    /// is created in `<data_dir>/console/` at first start.
    pub cert: Option<PathBuf>,
    /// PEM private key of `cert`.
    pub key: Option<PathBuf>,
    /// Host names (besides localhost and the listen address) the
    /// self-signed certificate is made for.
    pub hostnames: Vec<String>,
    /// A session unused this long is signed out (seconds).
    pub idle_timeout_secs: u64,
    /// A session ends this long after sign-in whatever its use (seconds).
    pub absolute_timeout_secs: u64,
}

impl Default for ConsoleConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            listen: SocketAddr::from(([127, 0, 0, 1], 8443)),
            cert: None,
            key: None,
            hostnames: Vec::new(),
            idle_timeout_secs: 900,
            absolute_timeout_secs: 8 * 3600,
        }
    }
}

/// `[log]`: the server's own diagnostics (not the audit log).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// tracing filter: "error", "warn", "info", "debug", "trace" or a
    /// directive list ("info,smbvault::net=debug"). `RUST_LOG` wins at start;
    /// SIGHUP applies this value.
    pub level: String,
    /// "text" (one human line per event) or "json" (one object per line).
    pub format: LogFormat,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self { level: "info".into(), format: LogFormat::Text }
    }
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines (colour only on a terminal).
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// `[metrics]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// Serve `/metrics` (Prometheus text format) and `/healthz`.
    pub enabled: bool,
    /// Address of the HTTP endpoint. Loopback by default: it is not
    /// authenticated, so expose it only to your monitoring network.
    pub listen: SocketAddr,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self { enabled: true, listen: SocketAddr::from(([127, 0, 0, 1], 9445)) }
    }
}

/// `[server]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Address to listen on. SMB clients (Windows) only use port 445.
    pub listen: SocketAddr,
    /// Where keys, databases, blobs and logs live.
    pub data_dir: PathBuf,
    /// NetBIOS-style server name announced in NTLM and srvsvc.
    pub name: String,
    /// Upper bound on concurrent connections.
    pub max_connections: usize,
    /// Upper bound on concurrent connections from one IP address.
    pub max_connections_per_ip: usize,
    /// A connection on which no session has been established yet (before
    /// NEGOTIATE, or between it and a finished logon) is closed after this
    /// long without a request (seconds).
    pub handshake_timeout_secs: u64,
    /// A logged-on connection with no open files and no waiting requests is
    /// closed after this long without a request (seconds; 0: never), like
    /// Windows' autodisconnect. Connections holding opens are kept; a peer
    /// that vanished is found by TCP keepalive.
    pub idle_timeout_secs: u64,
    /// Once a frame has begun, its 4-byte length and SMB2 header must arrive
    /// within this many seconds (slow senders holding connections).
    pub header_timeout_secs: u64,
    /// ... and the whole frame within this many seconds.
    pub frame_timeout_secs: u64,
    /// A response the client does not take (its TCP window stays shut) for
    /// this many seconds closes the connection.
    pub send_timeout_secs: u64,
    /// Local control socket of `smbvault status` and `session kick`
    /// (default `<data_dir>/control.sock`; mode 0600).
    pub control_socket: Option<PathBuf>,
    /// Offer SMB3 multichannel (SMB2_GLOBAL_CAP_MULTI_CHANNEL): a client
    /// may bind a session to further connections (MS-SMB2 3.3.5.5.2).
    pub multichannel: bool,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([0, 0, 0, 0], 445)),
            data_dir: PathBuf::from("data"),
            name: "SMBVAULT".into(),
            max_connections: 4096,
            max_connections_per_ip: 512,
            handshake_timeout_secs: 30,
            idle_timeout_secs: 900,
            header_timeout_secs: 10,
            frame_timeout_secs: 120,
            send_timeout_secs: 120,
            control_socket: None,
            multichannel: true,
        }
    }
}

/// Encryption policy (global and per share).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum EncryptionPolicy {
    /// Refuse clients and requests that are not encrypted (SMB 3.x only).
    #[default]
    Required,
    /// Encrypt when the client can; allow signed-only otherwise.
    Desired,
    /// Never require encryption (signing still required).
    Off,
}

/// `[security]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SecurityConfig {
    /// Default encryption policy for shares that do not set one.
    pub encryption: EncryptionPolicy,
    /// Lowest dialect accepted: "2.0.2", "2.1", "3.0", "3.0.2" or "3.1.1".
    pub min_dialect: String,
    /// Highest dialect offered.
    pub max_dialect: String,
    /// Require signed requests (always true in production; NTLMv2 only regardless).
    pub signing_required: bool,
    /// Delay before answering a failed logon (milliseconds); the connection
    /// is held meanwhile (nothing more is read from it).
    pub logon_failure_delay_ms: u64,
    /// Failed logons per client address at that delay; beyond, each adds one
    /// delay more (a token bucket refilled at one per delay).
    pub logon_failure_burst: u32,
    /// Longest delay after a failed logon (milliseconds).
    pub logon_failure_max_delay_ms: u64,
    /// A burst of failed logons of one account from one address is one
    /// audit record, then one summary once it has been quiet this long.
    pub logon_failure_audit_burst_secs: u64,
}

impl Default for SecurityConfig {
    fn default() -> Self {
        Self {
            encryption: EncryptionPolicy::Required,
            min_dialect: "2.0.2".into(),
            max_dialect: "3.1.1".into(),
            signing_required: true,
            logon_failure_delay_ms: 1500,
            logon_failure_burst: 10,
            logon_failure_max_delay_ms: 30_000,
            logon_failure_audit_burst_secs: 60,
        }
    }
}

/// `[keys]`
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct KeysConfig {
    /// Key file that unlocks the master key (default `<data_dir>/keys/master.key`).
    pub key_file: Option<PathBuf>,
    /// Name of an environment variable holding a passphrase that unlocks the
    /// master key instead of the key file.
    pub passphrase_env: Option<String>,
}

/// `[accounts]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AccountsConfig {
    /// Minimum password length.
    pub password_min_length: usize,
    /// Minimum number of character classes (lower, upper, digit, other).
    pub password_min_classes: usize,
    /// Failed logons within `lockout_window_secs` that lock an account. For
    /// SMB logons they count per client address ("smart lockout": the
    /// account is locked for that address only); the console counts them
    /// per account.
    pub lockout_threshold: u32,
    /// Failed SMB logons of one account from all addresses together (those
    /// not yet locked out) within the window that lock it for everyone.
    pub lockout_threshold_all_sources: u32,
    /// Window for counting failures (seconds).
    pub lockout_window_secs: u64,
    /// How long a lockout lasts before it lifts by itself (seconds).
    pub lockout_duration_secs: u64,
    /// Name of the organization created on first start.
    pub default_org: String,
    /// Where a logon whose domain names no organization (WORKGROUP, empty,
    /// the client's machine name) looks for its user: this organization
    /// only. Absent: `default_org`. Empty: such logons fail, and users must
    /// log on as ORG\user or user@ORG (or user@UPN-suffix).
    pub domainless_org: Option<String>,
}

impl AccountsConfig {
    /// The organization domainless logons resolve in, if any.
    pub fn domainless_org(&self) -> Option<&str> {
        match self.domainless_org.as_deref() {
            None => Some(&self.default_org),
            Some("") => None,
            Some(o) => Some(o),
        }
    }
}

impl Default for AccountsConfig {
    fn default() -> Self {
        Self {
            password_min_length: 10,
            password_min_classes: 3,
            lockout_threshold: 5,
            lockout_threshold_all_sources: 50,
            lockout_window_secs: 600,
            lockout_duration_secs: 900,
            default_org: "DEFAULT".into(),
            domainless_org: None,
        }
    }
}

/// Audit retention: whole months, or unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum Retention {
    /// 1 month.
    #[serde(rename = "1m")]
    M1,
    /// 3 months.
    #[serde(rename = "3m")]
    M3,
    /// 6 months.
    #[serde(rename = "6m")]
    M6,
    /// 12 months.
    #[default]
    #[serde(rename = "12m")]
    M12,
    /// Never purge.
    #[serde(rename = "unlimited")]
    Unlimited,
}

impl Retention {
    /// Months kept, or `None` for unlimited.
    pub fn months(self) -> Option<u32> {
        match self {
            Retention::M1 => Some(1),
            Retention::M3 => Some(3),
            Retention::M6 => Some(6),
            Retention::M12 => Some(12),
            Retention::Unlimited => None,
        }
    }
}

/// `[audit]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuditConfig {
    /// Record access and operation events.
    pub enabled: bool,
    /// Retention for organizations that do not set their own.
    pub default_retention: Retention,
    /// Longest time an event may wait in memory before it is durable (milliseconds).
    pub flush_interval_ms: u64,
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self { enabled: true, default_retention: Retention::M12, flush_interval_ms: 500 }
    }
}

/// `[storage]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StorageConfig {
    /// The most of an organization's segment bytes compaction leaves dead
    /// (per segment once the organization is quiet; storage/compact.rs).
    pub compact_dead_ratio: f64,
    /// Seconds between background commits of unflushed metadata.
    pub commit_interval_secs: u64,
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self { compact_dead_ratio: 0.5, commit_interval_secs: 2 }
    }
}

/// `[backup]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BackupConfig {
    /// Daily database backups kept (0: no scheduled backups).
    pub db_generations: u32,
    /// Where database backup generations live (default `<data_dir>/backups/db`).
    pub db_dir: Option<PathBuf>,
    /// Second location for data backups (none: disabled).
    pub data_target: Option<PathBuf>,
    /// Data backup generations kept.
    pub data_generations: u32,
    /// Days between a contract's end and the erasure of the organization's data.
    pub erase_after_days: u32,
    /// How often the running server looks for organizations due for
    /// erasure (it also looks at start).
    pub erase_check_interval_secs: u64,
    /// Remote backup targets by name (`[backup.targets.NAME]`).
    pub targets: std::collections::BTreeMap<String, crate::backup::remote::target::TargetConfig>,
    /// Targets an organization's administrator may choose
    /// (`smbvault backup org-target`); the operator may set any.
    pub org_choosable_targets: Vec<String>,
    /// Generations kept for an organization when none is given.
    pub remote_generations: u32,
    /// Hours between an organization's remote backups (0: none scheduled,
    /// unless `remote_at` is set).
    pub remote_interval_hours: u64,
    /// Time of day (JST, `HH:MM` or `HH:MM:SS`) at which every
    /// organization with a target gets its remote backup, daily; replaces
    /// `remote_interval_hours` when set.
    pub remote_at: Option<String>,
    /// Where fetched generations are cached (default `<data_dir>/backups/remote/cache`).
    pub remote_cache_dir: Option<PathBuf>,
    /// MiB of fetched generations kept for Previous Versions (least
    /// recently used ones not in use are deleted beyond it).
    pub previous_versions_cache_mib: u64,
}

impl Default for BackupConfig {
    fn default() -> Self {
        Self {
            db_generations: 7,
            db_dir: None,
            data_target: None,
            data_generations: 7,
            erase_after_days: 30,
            erase_check_interval_secs: 3600,
            targets: Default::default(),
            org_choosable_targets: Vec::new(),
            remote_generations: 7,
            remote_interval_hours: 24,
            remote_at: None,
            remote_cache_dir: None,
            previous_versions_cache_mib: 4096,
        }
    }
}

/// `[bootstrap]`: what the first start creates.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BootstrapConfig {
    /// Name of the first administrator.
    pub admin_user: String,
    /// Name of the default share.
    pub share: String,
}

impl Default for BootstrapConfig {
    fn default() -> Self {
        Self { admin_user: "admin".into(), share: "share".into() }
    }
}

/// A config problem, phrased so the operator knows what to change.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

impl Config {
    /// Reads and validates a TOML file. Relative `data_dir` is resolved
    /// against the config file's directory's parent when it starts with `./`
    /// is not special-cased: it is relative to the working directory.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigError(format!(
                "cannot read config file {}: {e}; pass --config with the path of smbvault.toml (or set SMBVAULT_CONFIG)",
                path.display()
            ))
        })?;
        let cfg: Config = toml::from_str(&text).map_err(|e| ConfigError(format!("{}: {e}", path.display())))?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks values that the types alone cannot.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let d = |s: &str| parse_dialect(s).is_some();
        if !d(&self.security.min_dialect) || !d(&self.security.max_dialect) {
            return Err(ConfigError(format!(
                "security.min_dialect/max_dialect must be one of 2.0.2, 2.1, 3.0, 3.0.2, 3.1.1 (got {:?}/{:?})",
                self.security.min_dialect, self.security.max_dialect
            )));
        }
        if parse_dialect(&self.security.min_dialect) > parse_dialect(&self.security.max_dialect) {
            return Err(ConfigError("security.min_dialect is above security.max_dialect".into()));
        }
        if self.locks.per_open == 0 || self.locks.elements_per_request == 0 {
            return Err(ConfigError("locks.per_open and locks.elements_per_request must be at least 1".into()));
        }
        if self.accounts.lockout_threshold == 0 || self.accounts.lockout_threshold_all_sources == 0 {
            return Err(ConfigError(
                "accounts.lockout_threshold and lockout_threshold_all_sources must be at least 1".into(),
            ));
        }
        if !(1..=4).contains(&self.accounts.password_min_classes) {
            return Err(ConfigError("accounts.password_min_classes must be 1 to 4".into()));
        }
        if self.server.name.is_empty() || self.server.name.len() > 15 {
            return Err(ConfigError("server.name must be 1 to 15 characters".into()));
        }
        if self.backup.erase_check_interval_secs == 0 {
            return Err(ConfigError("backup.erase_check_interval_secs must be at least 1".into()));
        }
        for (name, t) in &self.backup.targets {
            t.validate(name).map_err(ConfigError)?;
        }
        if let Some(t) = self.backup.org_choosable_targets.iter().find(|t| !self.backup.targets.contains_key(*t)) {
            return Err(ConfigError(format!(
                "backup.org_choosable_targets names {t:?}, which is not in [backup.targets]"
            )));
        }
        let l = &self.limits;
        for (name, v) in [
            ("limits.sessions_per_connection", l.sessions_per_connection),
            ("limits.sessions_in_progress", l.sessions_in_progress),
            ("limits.trees_per_session", l.trees_per_session),
            ("limits.opens_per_session", l.opens_per_session),
            ("limits.opens_per_connection", l.opens_per_connection),
            ("limits.pending_per_connection", l.pending_per_connection),
            ("limits.notify_watches_per_connection", l.notify_watches_per_connection),
            ("server.max_connections_per_ip", self.server.max_connections_per_ip),
        ] {
            if v == 0 {
                return Err(ConfigError(format!("{name} must be at least 1")));
            }
        }
        if l.send_queue_bytes < 64 * 1024 {
            return Err(ConfigError("limits.send_queue_bytes must be at least 65536".into()));
        }
        let s = &self.server;
        for (name, v) in [
            ("server.handshake_timeout_secs", s.handshake_timeout_secs),
            ("server.header_timeout_secs", s.header_timeout_secs),
            ("server.frame_timeout_secs", s.frame_timeout_secs),
            ("server.send_timeout_secs", s.send_timeout_secs),
            ("limits.session_setup_timeout_secs", l.session_setup_timeout_secs),
        ] {
            if v == 0 {
                return Err(ConfigError(format!("{name} must be at least 1")));
            }
        }
        if let Some(at) = &self.backup.remote_at
            && crate::backup::remote::schedule::parse_at(at).is_none()
        {
            return Err(ConfigError(format!("backup.remote_at must be HH:MM or HH:MM:SS (JST), got {at:?}")));
        }
        if self.backup.remote_generations == 0 {
            return Err(ConfigError("backup.remote_generations must be at least 1".into()));
        }
        Ok(())
    }

    /// `<data_dir>/control.sock` unless `server.control_socket` says otherwise.
    pub fn control_socket(&self) -> PathBuf {
        self.server.control_socket.clone().unwrap_or_else(|| self.server.data_dir.join("control.sock"))
    }

    /// `<data_dir>/keys/master.key` unless `keys.key_file` says otherwise.
    pub fn key_file(&self) -> PathBuf {
        self.keys.key_file.clone().unwrap_or_else(|| self.server.data_dir.join("keys").join("master.key"))
    }
}

/// Dialect number (0x0202 … 0x0311) from its dotted name.
pub fn parse_dialect(s: &str) -> Option<u16> {
    match s {
        "2.0.2" | "2.02" => Some(0x0202),
        "2.1" | "2.10" => Some(0x0210),
        "3.0" | "3.00" => Some(0x0300),
        "3.0.2" | "3.02" => Some(0x0302),
        "3.1.1" | "3.11" => Some(0x0311),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_config_parses() {
        let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/smbvault.toml");
        let c = Config::load(&p).unwrap();
        assert_eq!(c.security.encryption, EncryptionPolicy::Required);
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let e = toml::from_str::<Config>("[server]\nlisen = \"1.2.3.4:445\"").unwrap_err();
        assert!(e.to_string().contains("lisen"));
    }
}
