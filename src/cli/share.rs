//! `smbvault share ...`: shares and per-share access for users and groups.

use clap::{Args, Subcommand};
use serde_json::json;

use super::context::Context;
use super::output::{access_json, share_json};
use super::{CliError, Global};
use crate::accounts::{Access, GranteeName, ShareChange, ShareOptions, encryption_str, parse_encryption};
use crate::config::EncryptionPolicy;

/// A user or a group (exactly one).
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct Who {
    /// A user of the share's organization.
    #[arg(long)]
    pub user: Option<String>,
    /// A group of the share's organization.
    #[arg(long)]
    pub group: Option<String>,
}

impl Who {
    fn name(&self) -> GranteeName<'_> {
        match (&self.user, &self.group) {
            (Some(u), _) => GranteeName::User(u),
            (None, g) => GranteeName::Group(g.as_deref().unwrap_or_default()),
        }
    }
}

/// Share commands.
#[derive(Debug, Subcommand)]
pub enum ShareCmd {
    /// Create a share (\\server\NAME) with a new, empty root directory.
    Add {
        /// Share name, unique in the organization (another organization
        /// may have a share of the same name: each sees only its own).
        name: String,
        /// Comment shown to clients.
        #[arg(long, default_value = "")]
        comment: String,
        /// required, desired, off, or inherit (the server's [security] encryption).
        #[arg(long, default_value = "inherit")]
        encryption: String,
        /// Access of the organization's users without an entry: none, read, read_write, admin.
        #[arg(long, default_value = "read_write")]
        default_access: String,
    },
    /// List shares.
    List,
    /// Remove a share (its files stay in storage unless --delete-data).
    Remove {
        /// Share name.
        name: String,
        /// Also delete every file of the share (asks first: type the
        /// share's name, or --yes).
        #[arg(long)]
        delete_data: bool,
        /// --yes, --dry-run.
        #[command(flatten)]
        confirm: super::confirm::ConfirmArgs,
    },
    /// Change a share's comment, encryption, default access, access-based
    /// enumeration or Previous Versions.
    Set {
        /// Share name.
        name: String,
        /// New comment.
        #[arg(long)]
        comment: Option<String>,
        /// required, desired, off or inherit.
        #[arg(long)]
        encryption: Option<String>,
        /// none, read, read_write or admin.
        #[arg(long)]
        default_access: Option<String>,
        /// on: listings show each user only the files and folders they
        /// may open for reading (access-based enumeration); off (default).
        #[arg(long, value_name = "on|off")]
        access_based_enumeration: Option<String>,
        /// on (default): the share's remote backup generations appear as
        /// Previous Versions (read only); off hides them.
        #[arg(long, value_name = "on|off")]
        previous_versions: Option<String>,
    },
    /// Set the access level of a user or group: none, read, read_write, admin.
    Grant {
        /// Share name.
        share: String,
        /// Whose access.
        #[command(flatten)]
        who: Who,
        /// none, read, read_write or admin.
        level: String,
    },
    /// Remove a user's or group's entry (they fall back to the share default).
    Revoke {
        /// Share name.
        share: String,
        /// Whose entry.
        #[command(flatten)]
        who: Who,
    },
    /// Show a share's access entries, or one user's effective access.
    Access {
        /// Share name.
        share: String,
        /// Show what this user may do (groups and default included).
        #[arg(long)]
        user: Option<String>,
    },
}

fn encryption_arg(s: &str) -> Result<Option<EncryptionPolicy>, CliError> {
    if s == "inherit" {
        return Ok(None);
    }
    Ok(Some(parse_encryption(s)?))
}

fn on_off(s: &str) -> Result<bool, CliError> {
    match s {
        "on" => Ok(true),
        "off" => Ok(false),
        _ => Err(crate::accounts::AccountsError::Invalid(format!("{s:?}: use on or off")).into()),
    }
}

/// Runs a `share` command.
pub fn run(g: &Global, cmd: &ShareCmd) -> Result<(), CliError> {
    let ctx = Context::open(g)?;
    let admin = ctx.admin()?;
    let out = ctx.out;
    match cmd {
        ShareCmd::Add { name, comment, encryption, default_access } => {
            let opts = ShareOptions {
                comment: comment.clone(),
                encryption: encryption_arg(encryption)?,
                default_access: Access::parse(default_access)?,
            };
            let prov = ctx.provisioner();
            let s = admin.share_add(g.org.as_deref(), name, &opts, prov.as_ref())?;
            out.done(&format!("added share \\\\{}\\{} for {}", ctx.config.server.name, s.name, s.org), share_json(&s));
        }
        ShareCmd::List => {
            let shares = admin.share_list(g.org.as_deref())?;
            let rows: Vec<Vec<String>> = shares
                .iter()
                .map(|s| {
                    vec![
                        s.name.clone(),
                        s.org.clone(),
                        s.encryption.map_or("inherit", encryption_str).into(),
                        s.default_access.as_str().into(),
                        if s.access_based_enum { "on" } else { "off" }.into(),
                        if s.previous_versions { "on" } else { "off" }.into(),
                        s.comment.clone(),
                    ]
                })
                .collect();
            let json = shares.iter().map(share_json).collect();
            out.table(
                &["SHARE", "ORG", "ENCRYPTION", "DEFAULT", "ABE", "PREV", "COMMENT"],
                &rows,
                serde_json::Value::Array(json),
            );
        }
        ShareCmd::Remove { name, delete_data, confirm } => {
            let s = admin.share(g.org.as_deref(), name, "remove share")?;
            let what = match delete_data {
                true => format!("remove share {} of {} and delete every file in it", s.name, s.org),
                false => format!("remove share {} of {} (its files stay in storage)", s.name, s.org),
            };
            if confirm.dry_run {
                out.done(
                    &format!("dry run, nothing changed: would {what}"),
                    json!({ "share": s.name, "delete_data": delete_data, "dry_run": true }),
                );
                return Ok(());
            }
            if *delete_data {
                confirm.confirm(&what, &s.name)?;
            }
            let prov = ctx.provisioner();
            let s = admin.share_remove(g.org.as_deref(), name, delete_data.then_some(prov.as_ref()))?;
            let tail = if *delete_data { " and its files" } else { " (files kept in storage)" };
            out.done(&format!("removed share {}{tail}", s.name), share_json(&s));
        }
        ShareCmd::Set { name, comment, encryption, default_access, access_based_enumeration, previous_versions } => {
            let ch = ShareChange {
                comment: comment.clone(),
                encryption: encryption.as_deref().map(encryption_arg).transpose()?,
                default_access: default_access.as_deref().map(Access::parse).transpose()?,
                access_based_enum: access_based_enumeration.as_deref().map(on_off).transpose()?,
                previous_versions: previous_versions.as_deref().map(on_off).transpose()?,
            };
            let s = admin.share_set(g.org.as_deref(), name, &ch)?;
            out.done(&format!("updated share {}", s.name), share_json(&s));
        }
        ShareCmd::Grant { share, who, level } => {
            let access = Access::parse(level)?;
            admin.share_grant(g.org.as_deref(), share, who.name(), access)?;
            let whom = who.user.clone().or(who.group.clone()).unwrap_or_default();
            out.done(
                &format!("{whom} now has {} access to {share}", access.as_str()),
                json!({ "share": share, "user": who.user, "group": who.group, "access": access.as_str() }),
            );
        }
        ShareCmd::Revoke { share, who } => {
            let removed = admin.share_revoke(g.org.as_deref(), share, who.name())?;
            let whom = who.user.clone().or(who.group.clone()).unwrap_or_default();
            let text = if removed {
                format!("removed the entry of {whom} on {share}")
            } else {
                format!("{whom} had no entry on {share}; nothing changed")
            };
            out.done(&text, json!({ "share": share, "user": who.user, "group": who.group, "removed": removed }));
        }
        ShareCmd::Access { share, user: Some(user) } => {
            let a = admin.share_effective(g.org.as_deref(), share, user)?;
            out.done(
                &format!("{user} has {} access to {share}", a.as_str()),
                json!({ "share": share, "user": user, "access": a.as_str() }),
            );
        }
        ShareCmd::Access { share, user: None } => {
            let (s, entries) = admin.share_access(g.org.as_deref(), share)?;
            let mut rows: Vec<Vec<String>> = entries
                .iter()
                .map(|e| {
                    let kind = if matches!(e.grantee, crate::accounts::Grantee::User(_)) { "user" } else { "group" };
                    vec![kind.into(), e.name.clone(), e.access.as_str().into()]
                })
                .collect();
            rows.push(vec!["default".into(), format!("(other {} users)", s.org), s.default_access.as_str().into()]);
            let json = json!({
                "share": share_json(&s),
                "entries": entries.iter().map(access_json).collect::<Vec<_>>(),
            });
            out.table(&["KIND", "NAME", "ACCESS"], &rows, json);
        }
    }
    Ok(())
}
