//! `smbvault org ...`: organizations (tenants). All but `list` are for the operator.

use chrono::NaiveDate;
use clap::Subcommand;
use serde_json::json;

use super::confirm::ConfirmArgs;
use super::context::Context;
use super::output::{bytes_text, org_json, time_json, time_text};
use super::{CliError, Global};
use crate::accounts::{parse_retention, retention_str};
use crate::config::Retention;

/// Organization commands.
#[derive(Debug, Subcommand)]
pub enum OrgCmd {
    /// Create an organization; its name is the NTLM domain its users log on with.
    Add {
        /// 1-15 ASCII letters, digits, '-' or '_'.
        name: String,
        /// Storage quota, e.g. 500G, 2T or unlimited.
        #[arg(long)]
        quota: Option<String>,
        /// Audit retention: 1m, 3m, 6m, 12m or unlimited.
        #[arg(long)]
        retention: Option<String>,
    },
    /// List organizations.
    List,
    /// Rename an organization (users then log on as NEW\user).
    Rename {
        /// Current name.
        name: String,
        /// New name.
        new_name: String,
    },
    /// Suspend an organization: no logons, data kept.
    Suspend {
        /// Organization.
        name: String,
    },
    /// Resume a suspended organization.
    Resume {
        /// Organization.
        name: String,
    },
    /// Set the storage quota.
    SetQuota {
        /// Organization.
        name: String,
        /// Bytes, with optional K, M, G, T suffix (powers of 1024), or "unlimited".
        size: String,
    },
    /// Set the audit log retention.
    SetRetention {
        /// Organization.
        name: String,
        /// 1m, 3m, 6m, 12m, unlimited, or "default" for the server's.
        retention: String,
    },
    /// Let the organization's users log on as user@SUFFIX (a DNS domain
    /// the organization owns, e.g. acme.example); "none" removes it.
    SetUpnSuffix {
        /// Organization.
        name: String,
        /// DNS domain, or "none".
        suffix: String,
    },
    /// Storage used against the quota, files and last change (billing);
    /// every organization you may see, or ORG.
    Usage {
        /// Organization (default: all you administer).
        name: Option<String>,
    },
    /// Record the contract's last day; the data is erased `erase_after_days`
    /// (30) after it. Asks first (type the organization's name, or --yes).
    EndContract {
        /// Organization.
        name: String,
        /// Last day of the contract, YYYY-MM-DD (JST): from today to a year from now.
        date: String,
        /// Accept a day in the past (a contract that already ended; its
        /// erasure may then be due at once).
        #[arg(long)]
        allow_past: bool,
        /// --yes, --dry-run.
        #[command(flatten)]
        confirm: ConfirmArgs,
    },
    /// Cancel a recorded contract end (before the erasure ran).
    CancelEndContract {
        /// Organization.
        name: String,
    },
    /// Export the organization's files, decrypted, with names and
    /// modification times (to hand back before erasure); operator only,
    /// recorded in the organization's operation log. Works while the
    /// server runs.
    Export {
        /// Organization.
        name: String,
        /// An empty or new directory, or a FILE.tar (never overwritten).
        #[arg(long)]
        to: std::path::PathBuf,
    },
}

/// Longest notice `end-contract` accepts: a day further out is a typo.
const MAX_DAYS_AHEAD: i64 = 366;

/// Today's date in Japan, where contract days are counted.
fn today_jst() -> NaiveDate {
    crate::types::jst::at(std::time::SystemTime::now()).date_naive()
}

/// Checks a contract's last day: not in the past (unless `allow_past`),
/// not more than a year ahead. Exit code 2 (a bad argument) otherwise.
pub fn contract_day(d: &str, allow_past: bool) -> Result<NaiveDate, CliError> {
    let bad = |m: String| CliError { message: m, code: 2 };
    let day =
        d.parse::<NaiveDate>().map_err(|e| bad(format!("bad date {d:?} ({e}): use YYYY-MM-DD, e.g. 2027-03-31")))?;
    let today = today_jst();
    if day < today && !allow_past {
        return Err(bad(format!(
            "the contract end {day} is in the past (today is {today} in Japan): its data would be erased \
             at once; check the date, or pass --allow-past if the contract really ended then"
        )));
    }
    if (day - today).num_days() > MAX_DAYS_AHEAD {
        return Err(bad(format!(
            "the contract end {day} is more than a year from today ({today}, JST); check the date \
             (record it closer to the end)"
        )));
    }
    Ok(day)
}

/// "2027-05-01 00:00:00 JST".
pub fn exact_jst(t: std::time::SystemTime) -> String {
    crate::types::jst::at(t).format("%Y-%m-%d %H:%M:%S JST").to_string()
}

/// Parses "500G", "2TiB", "1048576" or "unlimited".
pub fn parse_size(s: &str) -> Result<Option<u64>, CliError> {
    if s.eq_ignore_ascii_case("unlimited") {
        return Ok(None);
    }
    let t = s.trim().trim_end_matches("iB").trim_end_matches(['B', 'b']);
    let (num, mul) = [('K', 10), ('M', 20), ('G', 30), ('T', 40)]
        .iter()
        .find_map(|&(c, shift)| {
            let n = t.strip_suffix(c).or_else(|| t.strip_suffix(c.to_ascii_lowercase()))?;
            Some((n, 1u64 << shift))
        })
        .unwrap_or((t, 1));
    num.trim()
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mul))
        .map(Some)
        .ok_or_else(|| CliError::new(format!("bad size {s:?}: use bytes or a number with K, M, G or T, or unlimited")))
}

fn retention_arg(s: &str) -> Result<Option<Retention>, CliError> {
    if s == "default" {
        return Ok(None);
    }
    Ok(Some(parse_retention(s)?))
}

/// Runs an `org` command.
pub fn run(g: &Global, cmd: &OrgCmd) -> Result<(), CliError> {
    let ctx = Context::open(g)?;
    let admin = ctx.admin()?;
    let out = ctx.out;
    match cmd {
        OrgCmd::Export { name, to } => {
            if g.as_user.is_some() {
                return Err(CliError {
                    message: "export writes on the server's disk: it is for the operator (run without --as)".into(),
                    code: 3,
                });
            }
            let o = admin.org(Some(name), "export")?;
            super::backup_remote::export(&ctx, &o, to)?;
        }
        OrgCmd::Add { name, quota, retention } => {
            let quota = quota.as_deref().map(parse_size).transpose()?;
            let retention = retention.as_deref().map(retention_arg).transpose()?;
            let prov = ctx.provisioner();
            let o = admin.org_add(name, prov.as_ref())?;
            if let Some(q) = quota {
                admin.org_set_quota(&o.name, q)?;
            }
            if let Some(r) = retention {
                admin.org_set_retention(&o.name, r)?;
            }
            let o = admin.org(Some(&o.name), "show")?;
            out.done(
                &format!("created organization {} (users log on as {}\\user)", o.name, o.name),
                org_json(&o, None),
            );
        }
        OrgCmd::Usage { name } => {
            let orgs = match name {
                Some(n) => vec![admin.org(Some(n), "usage")?],
                None => admin.org_list()?,
            };
            let usage = super::service::org_usage(&ctx, orgs.iter().map(|o| o.id.0).collect())?;
            let mut rows = Vec::new();
            let mut json = Vec::new();
            for (o, u) in orgs.iter().zip(&usage) {
                let pct = o.quota_bytes.filter(|q| *q > 0).map(|q| u.bytes as f64 * 100.0 / q as f64);
                rows.push(vec![
                    o.name.clone(),
                    bytes_text(Some(u.bytes)),
                    bytes_text(o.quota_bytes),
                    pct.map_or_else(|| "-".into(), |p| format!("{p:.1}%")),
                    u.files.to_string(),
                    u.directories.to_string(),
                    u.last_change
                        .clone()
                        .map_or_else(|| "-".into(), |t| t.chars().take(16).collect::<String>().replace('T', " ")),
                ]);
                json.push(serde_json::json!({
                    "org": o.name,
                    "org_id": o.id.0,
                    "bytes_used": u.bytes,
                    "quota_bytes": o.quota_bytes,
                    "files": u.files,
                    "directories": u.directories,
                    "last_change": u.last_change,
                }));
            }
            out.table(
                &["ORG", "USED", "QUOTA", "USE", "FILES", "DIRS", "LAST CHANGE (JST)"],
                &rows,
                serde_json::Value::Array(json),
            );
        }
        OrgCmd::List => {
            let orgs = admin.org_list()?;
            let acc = admin.accounts();
            let rows: Vec<Vec<String>> = orgs
                .iter()
                .map(|o| {
                    vec![
                        o.id.0.to_string(),
                        o.name.clone(),
                        if o.suspended { "suspended" } else { "active" }.into(),
                        bytes_text(o.quota_bytes),
                        o.retention.map_or("default", retention_str).into(),
                        acc.erasure_time(o).map_or_else(|| "-".into(), time_text),
                    ]
                })
                .collect();
            let json = orgs.iter().map(|o| org_json(o, acc.erasure_time(o))).collect();
            out.table(
                &["ID", "NAME", "STATE", "QUOTA", "RETENTION", "ERASE AT"],
                &rows,
                serde_json::Value::Array(json),
            );
        }
        OrgCmd::Rename { name, new_name } => {
            let o = admin.org_rename(name, new_name)?;
            out.done(&format!("renamed organization {name} to {}", o.name), org_json(&o, None));
        }
        OrgCmd::Suspend { name } | OrgCmd::Resume { name } => {
            let suspend = matches!(cmd, OrgCmd::Suspend { .. });
            admin.org_suspend(name, suspend)?;
            let word = if suspend { "suspended" } else { "resumed" };
            out.done(&format!("{word} organization {name}"), json!({ "org": name, "suspended": suspend }));
        }
        OrgCmd::SetQuota { name, size } => {
            let q = parse_size(size)?;
            admin.org_set_quota(name, q)?;
            out.done(&format!("quota of {name} is now {}", bytes_text(q)), json!({ "org": name, "quota_bytes": q }));
        }
        OrgCmd::SetRetention { name, retention } => {
            let r = retention_arg(retention)?;
            admin.org_set_retention(name, r)?;
            let shown = r.map_or("default", retention_str);
            out.done(&format!("audit retention of {name} is now {shown}"), json!({ "org": name, "retention": shown }));
        }
        OrgCmd::SetUpnSuffix { name, suffix } => {
            let s = (suffix != "none").then_some(suffix.as_str());
            admin.org_set_upn_suffix(name, s)?;
            let shown = s.map_or_else(|| "none".to_string(), |s| s.to_ascii_lowercase());
            out.done(&format!("UPN suffix of {name} is now {shown}"), json!({ "org": name, "upn_suffix": s }));
        }
        OrgCmd::EndContract { name, date, allow_past, confirm } => {
            let day = contract_day(date, *allow_past)?;
            let mut o = admin.org(Some(name), "end contract")?;
            o.contract_end = Some(day);
            let at = admin
                .accounts()
                .erasure_time(&o)
                .ok_or_else(|| CliError::new(format!("cannot compute the erasure time of {day}")))?;
            let what = format!(
                "end the contract of {} on {day}: at {} the server destroys its key and erases all its \
                 files, audit log, users and shares, in every backup too",
                o.name,
                exact_jst(at)
            );
            let j = json!({ "org": o.name, "contract_end": day.to_string(), "erase_at": time_json(at),
                            "dry_run": confirm.dry_run });
            if confirm.dry_run {
                out.done(&format!("dry run, nothing changed: would {what}"), j);
                return Ok(());
            }
            confirm.confirm(&what, &o.name)?;
            admin.org_end_contract(&o.name, Some(day))?;
            out.done(
                &format!(
                    "contract of {} ends {day}; its data will be erased at {} (cancel before then with \
                     `smbvault org cancel-end-contract {}`)",
                    o.name,
                    exact_jst(at),
                    o.name
                ),
                j,
            );
        }
        OrgCmd::CancelEndContract { name } => {
            admin.org_end_contract(name, None)?;
            out.done(
                &format!("contract end of {name} cancelled; nothing will be erased"),
                json!({ "org": name, "contract_end": null, "erase_at": null }),
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("unlimited").unwrap(), None);
        assert_eq!(parse_size("1024").unwrap(), Some(1024));
        assert_eq!(parse_size("2K").unwrap(), Some(2048));
        assert_eq!(parse_size("500G").unwrap(), Some(500 << 30));
        assert_eq!(parse_size("2TiB").unwrap(), Some(2 << 40));
        assert_eq!(parse_size("3GB").unwrap(), Some(3 << 30));
        assert!(parse_size("lots").is_err());
        assert!(parse_size("99999999999T").is_err());
    }
}
