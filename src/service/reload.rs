//! SIGHUP: read the configuration file again and apply what can change
//! while clients are connected. Never stops the server: a broken file is
//! reported and the running configuration stays.
//!
//! Applied live: `[accounts]` password and lockout policy,
//! `security.encryption` (default share policy, for new sessions and tree
//! connects) and `security.logon_failure_delay_ms`, `server.max_connections`,
//! `[log] level`, `audit.default_retention`. Everything else is named as
//! needing a restart.

use std::path::PathBuf;
use std::sync::Arc;

use serde_json::Value;

use crate::app::AccountsDirectory;
use crate::config::{Config, Retention};
use crate::engine::Server;
use crate::service::logging::LogHandle;

/// Keys applied without a restart (dotted `section.key`).
pub const LIVE_KEYS: &[&str] = &[
    "accounts.password_min_length",
    "accounts.password_min_classes",
    "accounts.lockout_threshold",
    "accounts.lockout_window_secs",
    "accounts.lockout_duration_secs",
    "security.encryption",
    "security.logon_failure_delay_ms",
    "server.max_connections",
    "log.level",
    "audit.default_retention",
];

/// Keys that only matter on the very first start.
const FIRST_START_KEYS: &[&str] = &["accounts.default_org", "bootstrap.admin_user", "bootstrap.share"];

/// What a reload did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    /// `key: old -> new` for each setting applied.
    pub applied: Vec<String>,
    /// Settings that changed in the file but take effect only after a restart.
    pub restart: Vec<String>,
    /// Settings that changed but only matter on the first start.
    pub ignored: Vec<String>,
}

/// Everything a reload touches.
pub struct Reloader {
    /// The configuration file.
    pub path: PathBuf,
    /// Command-line overrides (`--data-dir`, `--listen`) applied to every load.
    pub overrides: Box<dyn Fn(&mut Config) + Send + Sync>,
    /// The engine's live configuration.
    pub server: Arc<Server>,
    /// Accounts policy and default share encryption.
    pub directory: Arc<AccountsDirectory>,
    /// The log filter.
    pub log: LogHandle,
    /// `audit.default_retention` as the audit writer reads it.
    pub retention: Arc<parking_lot::RwLock<Retention>>,
    /// True when `RUST_LOG` chose the level at start (then `log.level`
    /// changes still apply: the operator asked for it by reloading).
    pub env_log: bool,
}

impl Reloader {
    /// Loads the file again and applies it. Errors leave everything as it was.
    pub fn reload(&self) -> Result<Outcome, String> {
        let mut new = crate::service::check::check_file(&self.path)?.config;
        (self.overrides)(&mut new);
        let old = self.server.live();
        let out = diff(&old, &new);
        if out.applied.iter().any(|a| a.starts_with("log.level")) {
            self.log.set_level(&new.log.level)?;
        }
        // Only the live keys change: the rest stays what the server runs
        // with, so the next reload still names them as needing a restart.
        let running = apply_live(&old, &new);
        self.directory.reload(&running);
        *self.retention.write() = running.audit.default_retention;
        self.server.set_live(running);
        Ok(out)
    }
}

/// `old` with the [`LIVE_KEYS`] taken from `new`.
pub fn apply_live(old: &Config, new: &Config) -> Config {
    let mut c = old.clone();
    let a = &new.accounts;
    c.accounts.password_min_length = a.password_min_length;
    c.accounts.password_min_classes = a.password_min_classes;
    c.accounts.lockout_threshold = a.lockout_threshold;
    c.accounts.lockout_window_secs = a.lockout_window_secs;
    c.accounts.lockout_duration_secs = a.lockout_duration_secs;
    c.security.encryption = new.security.encryption;
    c.security.logon_failure_delay_ms = new.security.logon_failure_delay_ms;
    c.server.max_connections = new.server.max_connections;
    c.log.level = new.log.level.clone();
    c.audit.default_retention = new.audit.default_retention;
    c
}

/// Compares two configurations key by key.
pub fn diff(old: &Config, new: &Config) -> Outcome {
    let (a, b) = (flatten(old), flatten(new));
    let mut out = Outcome::default();
    for (k, v) in &b {
        let before = a.iter().find(|(ka, _)| ka == k).map(|(_, v)| v.clone()).unwrap_or(Value::Null);
        if &before == v {
            continue;
        }
        let line = format!("{k}: {} -> {}", show(&before), show(v));
        if LIVE_KEYS.contains(&k.as_str()) {
            out.applied.push(line);
        } else if FIRST_START_KEYS.contains(&k.as_str()) {
            out.ignored.push(line);
        } else {
            out.restart.push(line);
        }
    }
    out
}

fn show(v: &Value) -> String {
    match v {
        Value::Null => "(unset)".into(),
        other => other.to_string(),
    }
}

/// `section.key` → value, for every key of every section.
fn flatten(c: &Config) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    if let Ok(Value::Object(sections)) = serde_json::to_value(c) {
        for (s, v) in sections {
            if let Value::Object(keys) = v {
                for (k, v) in keys {
                    out.push((format!("{s}.{k}"), v));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diff_sorts_live_and_restart_keys() {
        let old = Config::default();
        let mut new = Config::default();
        new.accounts.lockout_threshold = 2;
        new.server.listen = "127.0.0.1:4450".parse().unwrap();
        new.bootstrap.share = "x".into();
        let d = diff(&old, &new);
        assert_eq!(d.applied, vec!["accounts.lockout_threshold: 5 -> 2".to_string()]);
        assert_eq!(d.restart, vec!["server.listen: \"0.0.0.0:445\" -> \"127.0.0.1:4450\"".to_string()]);
        assert_eq!(d.ignored.len(), 1);
        assert_eq!(diff(&old, &old), Outcome::default());
        // What runs after the reload: the live key changed, the rest did not,
        // so a second reload of the same file still names server.listen.
        let running = apply_live(&old, &new);
        assert_eq!(running.accounts.lockout_threshold, 2);
        assert_eq!(running.server.listen, old.server.listen);
        let again = diff(&running, &new);
        assert!(again.applied.is_empty() && again.restart.len() == 1, "{again:?}");
        // Every live key is applied by apply_live.
        let mut all = Config::default();
        all.accounts.password_min_length = 20;
        all.accounts.password_min_classes = 4;
        all.accounts.lockout_threshold = 9;
        all.accounts.lockout_window_secs = 9;
        all.accounts.lockout_duration_secs = 9;
        all.security.encryption = crate::config::EncryptionPolicy::Desired;
        all.security.logon_failure_delay_ms = 9;
        all.server.max_connections = 9;
        all.log.level = "debug".into();
        all.audit.default_retention = Retention::M1;
        assert_eq!(diff(&old, &all).applied.len(), LIVE_KEYS.len());
        assert_eq!(diff(&apply_live(&old, &all), &all), Outcome::default());
    }
}
