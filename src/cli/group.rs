//! `smbvault group ...`: groups of users within an organization (`--org`).

use clap::Subcommand;
use serde_json::json;

use super::context::Context;
use super::output::group_json;
use super::{CliError, Global};

/// Group commands.
#[derive(Debug, Subcommand)]
pub enum GroupCmd {
    /// Create a group.
    Add {
        /// Group name.
        name: String,
    },
    /// Delete a group (its share permissions go with it).
    Delete {
        /// Group name.
        name: String,
    },
    /// List groups and their members.
    List,
    /// Add a user to a group.
    AddMember {
        /// Group name.
        group: String,
        /// The user (same organization).
        user: String,
    },
    /// Remove a user from a group.
    RemoveMember {
        /// Group name.
        group: String,
        /// The user.
        user: String,
    },
}

/// Runs a `group` command.
pub fn run(g: &Global, cmd: &GroupCmd) -> Result<(), CliError> {
    let ctx = Context::open(g)?;
    let admin = ctx.admin()?;
    let org = g.org.as_deref();
    match cmd {
        GroupCmd::Add { name } => {
            let gr = admin.group_add(org, name)?;
            ctx.out.done(&format!("added group {}", gr.name), group_json(&gr));
        }
        GroupCmd::Delete { name } => {
            let gr = admin.group_delete(org, name)?;
            ctx.out.done(&format!("deleted group {}", gr.name), group_json(&gr));
        }
        GroupCmd::List => {
            let groups = admin.group_list(org)?;
            let rows: Vec<Vec<String>> =
                groups.iter().map(|g| vec![g.id.0.to_string(), g.name.clone(), g.members.join(", ")]).collect();
            let json = groups.iter().map(group_json).collect();
            ctx.out.table(&["ID", "GROUP", "MEMBERS"], &rows, serde_json::Value::Array(json));
        }
        GroupCmd::AddMember { group, user } | GroupCmd::RemoveMember { group, user } => {
            let add = matches!(cmd, GroupCmd::AddMember { .. });
            admin.group_member(org, group, user, add)?;
            let text = if add { format!("added {user} to {group}") } else { format!("removed {user} from {group}") };
            ctx.out.done(&text, json!({ "group": group, "user": user, "member": add }));
        }
    }
    Ok(())
}
