//! `smbvault user ...`: user accounts. Users are named `ORG\user`,
//! `user@ORG`, or `user` with `--org` (default: your own organization).

use std::io::BufRead;
use std::time::SystemTime;

use clap::{Args, Subcommand};
use serde_json::json;
use zeroize::Zeroizing;

use super::context::{Context, NEW_PASSWORD_ENV, trim_newline};
use super::output::{time_text, user_json};
use super::{CliError, Global};
use crate::accounts::{Role, UserRecord, password};

/// Where a new password comes from: `--password-stdin`, `--generate`, or
/// the SMBVAULT_NEW_PASSWORD environment variable (never a command-line
/// argument, which other local users can read in the process list).
#[derive(Debug, Args)]
pub struct PasswordArgs {
    /// Read the password from the first line of standard input.
    #[arg(long, conflicts_with = "generate")]
    pub password_stdin: bool,
    /// Generate a strong password and print it once.
    #[arg(long)]
    pub generate: bool,
}

/// User commands.
#[derive(Debug, Subcommand)]
pub enum UserCmd {
    /// Add a user.
    Add {
        /// ORG\user, user@ORG, or user (with --org).
        user: String,
        /// member, org_admin or operator (operator: server-wide; only the operator may grant it).
        #[arg(long, default_value = "member", value_parser = ["member", "org_admin", "operator"])]
        role: String,
        /// Shorthand for --role org_admin.
        #[arg(long, conflicts_with = "role")]
        admin: bool,
        /// Password source.
        #[command(flatten)]
        pw: PasswordArgs,
    },
    /// Set a new password (also lifts a lockout).
    Passwd {
        /// The user.
        user: String,
        /// Password source.
        #[command(flatten)]
        pw: PasswordArgs,
    },
    /// Disable logons (open sessions end within a second).
    Disable {
        /// The user.
        user: String,
    },
    /// Enable logons again.
    Enable {
        /// The user.
        user: String,
    },
    /// Delete a user for good (asks first: type the user's name, or --yes).
    Delete {
        /// The user.
        user: String,
        /// --yes, --dry-run.
        #[command(flatten)]
        confirm: super::confirm::ConfirmArgs,
    },
    /// List users.
    List,
    /// Make a user an organization administrator.
    GrantAdmin {
        /// The user.
        user: String,
        /// Grant the server-wide operator role instead (operator only).
        #[arg(long)]
        operator: bool,
    },
    /// Make an administrator a plain member again.
    RevokeAdmin {
        /// The user.
        user: String,
    },
    /// Lift a lockout caused by failed logons.
    Unlock {
        /// The user.
        user: String,
    },
}

/// The new password and whether it was generated (then it is printed once).
fn new_password(pw: &PasswordArgs) -> Result<(Zeroizing<String>, bool), CliError> {
    if pw.password_stdin {
        let mut line = Zeroizing::new(String::new());
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|e| CliError::new(format!("cannot read the password from standard input: {e}")))?;
        trim_newline(&mut line);
        return Ok((line, false));
    }
    if pw.generate {
        return Ok((password::generate(), true));
    }
    match std::env::var(NEW_PASSWORD_ENV) {
        Ok(p) => Ok((Zeroizing::new(p), false)),
        Err(_) => Err(CliError::new(format!(
            "no password given: use --password-stdin, set {NEW_PASSWORD_ENV}, or --generate"
        ))),
    }
}

fn said(ctx: &Context, u: &UserRecord, text: String, generated: Option<&str>) {
    let mut j = user_json(u, SystemTime::now());
    let mut text = text;
    if let Some(p) = generated {
        j["generated_password"] = json!(p);
        text.push_str(&format!("\npassword (shown only now): {p}"));
    }
    ctx.out.done(&text, j);
}

/// Runs a `user` command.
pub fn run(g: &Global, cmd: &UserCmd) -> Result<(), CliError> {
    let ctx = Context::open(g)?;
    let admin = ctx.admin()?;
    let org = g.org.as_deref();
    let acc = admin.accounts();
    match cmd {
        UserCmd::Add { user, role, admin: as_admin, pw } => {
            let role = if *as_admin { Role::OrgAdmin } else { Role::parse(role)? };
            let (p, generated) = new_password(pw)?;
            let u = admin.user_add(org, user, role, &p)?;
            let text = format!("added user {} ({})", u.qualified(), role.as_str());
            said(&ctx, &u, text, generated.then_some(p.as_str()));
        }
        UserCmd::Passwd { user, pw } => {
            let (p, generated) = new_password(pw)?;
            let u = admin.user_passwd(org, user, &p)?;
            said(&ctx, &u, format!("password of {} changed", u.qualified()), generated.then_some(p.as_str()));
        }
        UserCmd::Disable { user } | UserCmd::Enable { user } => {
            let enable = matches!(cmd, UserCmd::Enable { .. });
            let u = admin.user_set_enabled(org, user, enable)?;
            let u = acc.user(u.id)?.unwrap_or(u);
            said(&ctx, &u, format!("{} {}", if enable { "enabled" } else { "disabled" }, u.qualified()), None);
        }
        UserCmd::Delete { user, confirm } => {
            let u = admin.user(user, org, "delete user")?;
            let what = format!("delete user {} ({}) for good", u.qualified(), u.role.as_str());
            if confirm.dry_run {
                ctx.out.done(
                    &format!("dry run, nothing changed: would {what}"),
                    json!({ "user": u.qualified(), "dry_run": true }),
                );
                return Ok(());
            }
            confirm.confirm(&what, &u.qualified())?;
            let u = admin.user_delete(org, user)?;
            said(&ctx, &u, format!("deleted user {}", u.qualified()), None);
        }
        UserCmd::List => {
            let users = admin.user_list(org)?;
            let now = SystemTime::now();
            let rows: Vec<Vec<String>> = users
                .iter()
                .map(|u| {
                    let state = match (u.enabled, u.locked_until.filter(|t| *t > now)) {
                        (false, _) => "disabled".to_string(),
                        (true, Some(t)) => format!("locked until {}", time_text(t)),
                        (true, None) => "enabled".to_string(),
                    };
                    vec![u.id.0.to_string(), u.qualified(), u.role.as_str().into(), state]
                })
                .collect();
            let json = users.iter().map(|u| user_json(u, now)).collect();
            ctx.out.table(&["ID", "USER", "ROLE", "STATE"], &rows, serde_json::Value::Array(json));
        }
        UserCmd::GrantAdmin { user, operator } => {
            let role = if *operator { Role::Operator } else { Role::OrgAdmin };
            let u = admin.user_set_role(org, user, role)?;
            let u = acc.user(u.id)?.unwrap_or(u);
            said(&ctx, &u, format!("{} is now {}", u.qualified(), role.as_str()), None);
        }
        UserCmd::RevokeAdmin { user } => {
            let u = admin.user_set_role(org, user, Role::Member)?;
            let u = acc.user(u.id)?.unwrap_or(u);
            said(&ctx, &u, format!("{} is now a member", u.qualified()), None);
        }
        UserCmd::Unlock { user } => {
            let u = admin.user_unlock(org, user)?;
            let u = acc.user(u.id)?.unwrap_or(u);
            said(&ctx, &u, format!("unlocked {}", u.qualified()), None);
        }
    }
    Ok(())
}
