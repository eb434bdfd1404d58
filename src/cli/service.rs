//! `smbvault status`, `smbvault session kick` and `smbvault config check`:
//! the running server is asked through its local control socket
//! (`service::control`); the configuration check needs no server.

use std::path::PathBuf;

use super::{CliError, Global};
use crate::engine::SessionReport;
use crate::service::control::{Request, ask};

/// Options of `smbvault status`.
#[derive(Debug, Clone, clap::Args)]
pub struct StatusArgs {}

/// `smbvault session …`
#[derive(Debug, Clone, clap::Subcommand)]
pub enum SessionCmd {
    /// End a session now (its connection is closed; the client sees the
    /// disconnect and may log on again). Recorded in the audit log.
    Kick {
        /// Session id as `smbvault status` shows it (0x… or decimal).
        id: String,
    },
}

/// `smbvault config …`
#[derive(Debug, Clone, clap::Subcommand)]
pub enum ConfigCmd {
    /// Validate a configuration file and print the effective settings
    /// (defaults filled in), with warnings about unwise combinations.
    Check {
        /// The file [default: --config, $SMBVAULT_CONFIG, /etc/smbvault/smbvault.toml].
        file: Option<PathBuf>,
    },
}

/// The administrator's organization when acting `--as` one (`None`: operator), and their name.
fn scope(g: &Global) -> Result<(Option<u64>, String), CliError> {
    if g.as_user.is_none() {
        return Ok((None, "operator".into()));
    }
    let ctx = super::context::Context::open(g)?;
    let admin = ctx.admin()?;
    Ok(match admin.actor() {
        crate::accounts::Actor::OrgAdmin { org, name, .. } => (Some(org.0), name.clone()),
        crate::accounts::Actor::Operator { name } => (None, name.clone()),
    })
}

/// `smbvault status [--json]`.
pub fn status(g: &Global, _a: &StatusArgs) -> Result<(), CliError> {
    let cfg = super::context::load_config(g)?;
    let (org, _) = scope(g)?;
    let v = ask(&cfg.control_socket(), &Request::Status { org }).map_err(CliError::new)?;
    let sessions: Vec<SessionReport> = serde_json::from_value(v["sessions"].clone())
        .map_err(|e| CliError::new(format!("unexpected answer from the server: {e}")))?;
    if g.json {
        println!("{}", serde_json::json!({ "sessions": sessions }));
        return Ok(());
    }
    print!("{}", status_text(&sessions));
    Ok(())
}

/// The table `smbvault status` prints.
pub fn status_text(sessions: &[SessionReport]) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    if sessions.is_empty() {
        out.push_str("no sessions\n");
        return out;
    }
    let _ = writeln!(
        out,
        "{:<18}  {:<16}  {:<12}  {:<21}  {:<7}  {:<7}  {:<12}  {:>6}",
        "SESSION", "USER", "ORG", "CLIENT", "DIALECT", "SIGNING", "ENCRYPTION", "IDLE"
    );
    for s in sessions {
        let enc = if s.encryption { s.cipher.clone().unwrap_or_else(|| "yes".into()) } else { "no".into() };
        let _ = writeln!(
            out,
            "{:<18}  {:<16}  {:<12}  {:<21}  {:<7}  {:<7}  {:<12}  {:>5}s",
            format!("{:#x}", s.id),
            s.user,
            s.org,
            s.client,
            s.dialect,
            if s.signing { "yes" } else { "no" },
            enc,
            s.idle_secs
        );
    }
    let opens: Vec<_> = sessions.iter().flat_map(|s| s.opens.iter().map(move |o| (s, o))).collect();
    if opens.is_empty() {
        out.push_str("\nno open files\n");
        return out;
    }
    let _ = writeln!(
        out,
        "\n{:<18}  {:<12}  {:<10}  {:<5}  {:<12}  {:<6}  PATH",
        "SESSION", "SHARE", "ACCESS", "SHARE", "CACHING", "LOCKS"
    );
    for (s, o) in opens {
        let locks = o
            .locks
            .iter()
            .map(|l| format!("{}@{}+{}", if l.exclusive { "x" } else { "s" }, l.offset, l.length))
            .collect::<Vec<_>>()
            .join(",");
        let path = if o.path.is_empty() { "\\".to_string() } else { format!("\\{}", o.path) };
        let _ = writeln!(
            out,
            "{:<18}  {:<12}  {:<10}  {:<5}  {:<12}  {:<6}  {}{}",
            format!("{:#x}", s.id),
            o.share,
            format!("{:#x}", o.access),
            o.share_mode,
            o.caching,
            if locks.is_empty() { "-".to_string() } else { locks },
            path,
            if o.directory { " (dir)" } else { "" }
        );
    }
    out
}

/// `smbvault session kick ID`.
pub fn session(g: &Global, c: &SessionCmd) -> Result<(), CliError> {
    let SessionCmd::Kick { id } = c;
    let parsed = match id.strip_prefix("0x").or_else(|| id.strip_prefix("0X")) {
        Some(h) => u64::from_str_radix(h, 16),
        None => id.parse(),
    };
    let session = parsed.map_err(|_| CliError {
        message: format!("session id {id}: not a number; copy it from `smbvault status` (e.g. 0x1a2b)"),
        code: 2,
    })?;
    let cfg = super::context::load_config(g)?;
    let (org, actor) = scope(g)?;
    let v = ask(&cfg.control_socket(), &Request::Kick { session, actor, org }).map_err(CliError::new)?;
    let k = &v["kicked"];
    let text = format!(
        "ended session {session:#x} of {}\\{} (its connection was closed)",
        k["org"].as_str().unwrap_or(""),
        k["user"].as_str().unwrap_or("")
    );
    super::output::Output { json: g.json }.done(&text, v);
    Ok(())
}

/// `smbvault config check [FILE]`.
pub fn config(g: &Global, c: &ConfigCmd) -> Result<(), CliError> {
    let ConfigCmd::Check { file } = c;
    let path = file.clone().unwrap_or_else(|| g.resolved_config());
    let checked = crate::service::check::check_file(&path).map_err(CliError::new)?;
    if g.json {
        println!(
            "{}",
            serde_json::json!({ "file": path, "ok": true, "warnings": checked.warnings, "config": checked.config })
        );
        return Ok(());
    }
    for w in &checked.warnings {
        eprintln!("warning: {w}");
    }
    let text = toml::to_string_pretty(&checked.config).map_err(|e| CliError::new(e.to_string()))?;
    println!("# {}: OK ({} warning(s)); effective configuration:\n", path.display(), checked.warnings.len());
    print!("{text}");
    Ok(())
}

/// Storage used by `orgs`: from the running server, which owns the data;
/// read directly when no server runs on this data directory.
pub fn org_usage(
    ctx: &super::context::Context,
    orgs: Vec<u64>,
) -> Result<Vec<crate::service::control::OrgUsage>, CliError> {
    if let Ok(_lock) = super::serve::lock_data_dir(&ctx.config.server.data_dir) {
        return Ok(orgs.into_iter().map(|o| crate::service::control::usage_of(ctx.store(), o)).collect());
    }
    let v = ask(&ctx.config.control_socket(), &Request::Usage { orgs }).map_err(CliError::new)?;
    serde_json::from_value(v["usage"].clone())
        .map_err(|e| CliError::new(format!("unexpected answer from the server: {e}")))
}
