//! `smbvault config check`: what `testparm` is to Samba. Parses and
//! validates a configuration file, names the line and key of the first
//! problem, and warns about settings that are legal but unwise together.

use std::path::Path;

use crate::config::{Config, EncryptionPolicy, parse_dialect};

/// A file that loaded, and what looks wrong in it.
#[derive(Debug)]
pub struct Checked {
    /// The effective configuration (defaults filled in).
    pub config: Config,
    /// Combinations that make no sense or weaken security.
    pub warnings: Vec<String>,
}

/// Reads and checks `path`. The error names the file, line and key.
pub fn check_file(path: &Path) -> Result<Checked, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    check_text(&path.display().to_string(), &text)
}

/// Checks configuration text; `name` is how errors refer to it.
pub fn check_text(name: &str, text: &str) -> Result<Checked, String> {
    let config: Config = toml::from_str(text).map_err(|e| {
        let msg = e.message().trim().to_string();
        let Some(span) = e.span() else {
            return format!("{name}: {msg}");
        };
        let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
        let key = unknown_field(&msg).or_else(|| key_at(text, line));
        match key {
            Some(k) => format!("{name}, line {line}, key {}: {msg}", qualified(text, line, &k)),
            None => format!("{name}, line {line}: {msg}"),
        }
    })?;
    if let Err(e) = config.validate() {
        let msg = e.to_string();
        let key = msg.split(|c: char| c.is_whitespace() || c == '/').next().unwrap_or("").to_string();
        return Err(match locate(text, &key) {
            Some(line) => format!("{name}, line {line}, key {key}: {msg}"),
            None => format!("{name}: {msg} (key {key}, not set in the file: its default)"),
        });
    }
    let warnings = warnings(&config);
    Ok(Checked { config, warnings })
}

/// "unknown field `lisen`, expected one of …" → `lisen`.
fn unknown_field(msg: &str) -> Option<String> {
    let rest = msg.strip_prefix("unknown field `")?;
    Some(rest.split('`').next()?.to_string())
}

/// The key assigned on `line` (1-based), if it is a `key = value` line.
fn key_at(text: &str, line: usize) -> Option<String> {
    let l = text.lines().nth(line.checked_sub(1)?)?;
    let (k, _) = l.split_once('=')?;
    let k = k.trim().trim_matches('"');
    (!k.is_empty() && !k.starts_with('[')).then(|| k.to_string())
}

/// `key` prefixed with the `[section]` in force at `line`.
fn qualified(text: &str, line: usize, key: &str) -> String {
    let section =
        text.lines().take(line).filter_map(|l| l.trim().strip_prefix('[').and_then(|l| l.split(']').next())).last();
    match section {
        Some(s) if !key.contains('.') => format!("{}.{key}", s.trim()),
        _ => key.to_string(),
    }
}

/// The line (1-based) where `section.key` is set.
fn locate(text: &str, dotted: &str) -> Option<usize> {
    let (section, key) = dotted.split_once('.')?;
    let mut current = String::new();
    for (i, l) in text.lines().enumerate() {
        let t = l.trim();
        if let Some(s) = t.strip_prefix('[').and_then(|s| s.split(']').next()) {
            current = s.trim().to_string();
        } else if current == section
            && let Some((k, _)) = t.split_once('=')
            && k.trim() == key
        {
            return Some(i + 1);
        }
    }
    None
}

/// Legal but unwise settings.
pub fn warnings(c: &Config) -> Vec<String> {
    let mut w = Vec::new();
    let min = parse_dialect(&c.security.min_dialect).unwrap_or(0x0202);
    if min < 0x0300 && c.security.encryption == EncryptionPolicy::Required {
        w.push(format!(
            "security.min_dialect = {:?} with security.encryption = \"required\": SMB 2.x clients cannot encrypt \
             and are refused anyway; set min_dialect = \"3.0\" (or encryption = \"desired\" to let them in signed)",
            c.security.min_dialect
        ));
    }
    if !c.security.signing_required {
        w.push("security.signing_required = false: unsigned sessions can be tampered with on the network".into());
    }
    if c.security.encryption == EncryptionPolicy::Off {
        w.push("security.encryption = \"off\": file contents cross the network in clear text".into());
    }
    if c.security.logon_failure_delay_ms < 500 {
        w.push(format!(
            "security.logon_failure_delay_ms = {}: a short delay makes password guessing faster",
            c.security.logon_failure_delay_ms
        ));
    }
    if c.accounts.lockout_threshold > 50 {
        w.push(format!(
            "accounts.lockout_threshold = {}: so many failures hardly slow down password guessing",
            c.accounts.lockout_threshold
        ));
    }
    if c.accounts.lockout_duration_secs == 0 {
        w.push("accounts.lockout_duration_secs = 0: a locked-out account is unlocked at once".into());
    }
    if c.accounts.password_min_length < 8 {
        w.push(format!("accounts.password_min_length = {}: shorter than 8", c.accounts.password_min_length));
    }
    if !c.audit.enabled {
        w.push("audit.enabled = false: no access or operation log is kept".into());
    }
    if c.backup.db_generations == 0 {
        w.push("backup.db_generations = 0: no scheduled database backups".into());
    }
    if c.server.data_dir.is_relative() {
        w.push(format!(
            "server.data_dir = {:?} is relative to the working directory; use an absolute path for a service",
            c.server.data_dir.display().to_string()
        ));
    }
    if c.metrics.enabled && !c.metrics.listen.ip().is_loopback() {
        w.push(format!(
            "metrics.listen = \"{}\": the metrics endpoint has no authentication; keep it on loopback or a monitoring network",
            c.metrics.listen
        ));
    }
    if c.metrics.enabled && c.metrics.listen.port() != 0 && c.metrics.listen.port() == c.server.listen.port() {
        w.push("metrics.listen and server.listen use the same port".into());
    }
    if let Some(var) = &c.keys.passphrase_env
        && std::env::var_os(var).is_none()
    {
        w.push(format!("keys.passphrase_env = {var:?}, but {var} is not set here: the key file will be used"));
    }
    w
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broken_files_name_line_and_key() {
        let e =
            check_text("f.toml", "[server]\nname = \"X\"\n\n[accounts]\nlockout_threshold = \"five\"\n").unwrap_err();
        assert!(e.contains("line 5") && e.contains("accounts.lockout_threshold"), "{e}");
        let e = check_text("f.toml", "[server]\nlisen = \"1.2.3.4:445\"\n").unwrap_err();
        assert!(e.contains("line 2") && e.contains("server.lisen"), "{e}");
        let e = check_text("f.toml", "[accounts]\n\nlockout_threshold = 0\n").unwrap_err();
        assert!(e.contains("line 3") && e.contains("accounts.lockout_threshold"), "{e}");
    }

    #[test]
    fn warns_about_dialect_and_encryption() {
        let c = check_text("f", "[security]\nmin_dialect = \"2.1\"\nencryption = \"required\"\n").unwrap();
        assert!(c.warnings.iter().any(|w| w.contains("min_dialect")), "{:?}", c.warnings);
        let c =
            check_text("f", "[server]\ndata_dir = \"/var/lib/smbvault\"\n[security]\nmin_dialect = \"3.0\"\n").unwrap();
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    }
}
