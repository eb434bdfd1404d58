//! `smbvault backup targets|org-target|org-now|org-list|org-verify|
//! restore-files` and `smbvault org export`: per-organization remote
//! backups (docs/backup.md "Remote backups"). An organization's
//! administrator (`--as ORG\admin`) may use them for their own
//! organization; choosing a target only from `[backup]
//! org_choosable_targets`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::SystemTime;

use serde_json::json;

use super::backup::BackupCmd;
use super::context::Context;
use super::output::{Output, bytes_text, time_json, time_text};
use super::progress::Progress;
use super::{CliError, Global};
use crate::accounts::{Actor, OrgBackup, OrgRecord};
use crate::backup::remote::ops::RestoreFiles;
use crate::backup::remote::{Meter, Remote, ShareEntry};
use crate::config::Config;
use crate::service::control::Request;

/// The configured remote backups, manifests MACed under the master key.
pub fn remote(config: &Config, mk: &crate::keys::MasterKey) -> Remote {
    Remote::new(
        &config.server.data_dir,
        config.backup.targets.clone(),
        config.backup.remote_cache_dir.clone(),
        crate::backup::manifest::mac_key(mk),
    )
}

/// Whether `cmd` is one of these commands.
pub fn handles(cmd: &BackupCmd) -> bool {
    matches!(
        cmd,
        BackupCmd::Targets
            | BackupCmd::OrgTarget { .. }
            | BackupCmd::OrgNow { .. }
            | BackupCmd::OrgList { .. }
            | BackupCmd::OrgVerify { .. }
            | BackupCmd::RestoreFiles { .. }
    )
}

fn cli(e: impl std::fmt::Display) -> CliError {
    CliError::new(e.to_string())
}

fn meter_progress(label: &str, m: &Arc<Meter>) -> Progress {
    let m = m.clone();
    Progress::start(label, Box::new(move || (m.done.load(Ordering::Relaxed), m.total.load(Ordering::Relaxed))))
}

/// The organization's setting, or why there is none.
fn setting(ctx: &Context, o: &OrgRecord) -> Result<OrgBackup, CliError> {
    ctx.accounts.org_backup(o.id)?.ok_or_else(|| {
        cli(format!(
            "organization {} has no remote backup target: choose one with `smbvault backup org-target {} TARGET`",
            o.name, o.name
        ))
    })
}

fn shares_of(ctx: &Context, o: &OrgRecord) -> Result<Vec<ShareEntry>, CliError> {
    Ok(ctx.accounts.list_shares(Some(o.id))?.into_iter().map(|s| ShareEntry { name: s.name, root: s.root.0 }).collect())
}

/// Runs one of these commands.
pub fn run(g: &Global, cmd: &BackupCmd) -> Result<(), CliError> {
    let ctx = Context::open(g)?;
    let mk = super::context::open_master_key(&ctx.config, false)?;
    let r = remote(&ctx.config, &mk);
    let admin = ctx.admin()?;
    let actor = admin.actor().name().to_string();
    let out = ctx.out;
    match cmd {
        BackupCmd::Targets => targets(&ctx, out),
        BackupCmd::OrgTarget { org, target, generations, off } => {
            let o = admin.org(Some(org), "choose the backup target")?;
            let cur = ctx.accounts.org_backup(o.id)?;
            if *off {
                if matches!(admin.actor(), Actor::OrgAdmin { .. }) {
                    return Err(cli("only the operator can turn an organization's remote backups off"));
                }
                ctx.accounts.set_org_backup(o.id, None, &actor, SystemTime::now())?;
                ctx.audit.org_event(o.id, &actor, "backup.target", "", "remote backups turned off", false);
                out.done(
                    &format!("{}: remote backups off (generations on the target are kept)", o.name),
                    json!({"org": o.name, "target": null}),
                );
                return Ok(());
            }
            let Some(t) = target.clone().or_else(|| cur.as_ref().map(|c| c.target.clone())) else {
                return Err(cli("name a target (see `smbvault backup targets`)"));
            };
            if !r.has_target(&t) {
                return Err(cli(format!("no target {t:?}; configured: {}", r.target_names().join(", "))));
            }
            if matches!(admin.actor(), Actor::OrgAdmin { .. }) && !ctx.config.backup.org_choosable_targets.contains(&t)
            {
                ctx.audit.org_event(o.id, &actor, "backup.target", &t, "refused: not offered to organizations", true);
                return Err(CliError {
                    message: format!(
                        "{t} is not offered to organizations; choose one of: {}",
                        ctx.config.backup.org_choosable_targets.join(", ")
                    ),
                    code: 3,
                });
            }
            let gens =
                generations.or(cur.as_ref().map(|c| c.generations)).unwrap_or(ctx.config.backup.remote_generations);
            if gens == 0 {
                return Err(cli("--generations must be at least 1"));
            }
            if let Some(c) = cur.as_ref().filter(|c| c.target != t) {
                eprintln!(
                    "note: generations already on {} stay there (delete them with the erasure or by hand); the next backup goes to {t}",
                    c.target
                );
            }
            ctx.accounts.set_org_backup(o.id, Some((&t, gens)), &actor, SystemTime::now())?;
            ctx.audit.org_event(o.id, &actor, "backup.target", &t, &format!("target {t}, {gens} generations"), false);
            out.done(
                &format!("{}: remote backups to {t}, {gens} generations kept", o.name),
                json!({"org": o.name, "target": t, "generations": gens}),
            );
            Ok(())
        }
        BackupCmd::OrgNow { org } => {
            let orgs: Vec<OrgRecord> = match org {
                Some(n) => vec![admin.org(Some(n), "back up")?],
                None => {
                    let with: Vec<_> = ctx.accounts.org_backups()?.into_iter().map(|b| b.org).collect();
                    ctx.accounts.list_orgs()?.into_iter().filter(|o| with.contains(&o.id)).collect()
                }
            };
            let mut items = Vec::new();
            for o in &orgs {
                let ob = setting(&ctx, o)?;
                let meter = Arc::new(Meter::default());
                let p = meter_progress(&format!("upload {} to {}", o.name, ob.target), &meter);
                let started = std::time::Instant::now();
                let res = r.backup_org(o.id, &ob, ctx.store().as_ref(), shares_of(&ctx, o)?, SystemTime::now(), &meter);
                p.finish();
                let rep = res.map_err(|e| cli(format!("{}: remote backup failed: {e}", o.name)))?;
                ctx.audit.org_event(
                    o.id,
                    &actor,
                    "backup.remote",
                    &rep.generation,
                    &format!("to {}: {} objects, {} bytes sent", ob.target, rep.uploaded_objects, rep.uploaded_bytes),
                    false,
                );
                if !out.json {
                    println!(
                        "{}: generation {} on {} ({} objects, {}; sent {} objects, {}{}; {} ms){}",
                        o.name,
                        rep.generation,
                        ob.target,
                        rep.objects,
                        bytes_text(Some(rep.bytes)),
                        rep.uploaded_objects,
                        bytes_text(Some(rep.uploaded_bytes)),
                        if rep.resumed_bytes > 0 {
                            format!(", {} resumed", bytes_text(Some(rep.resumed_bytes)))
                        } else {
                            String::new()
                        },
                        started.elapsed().as_millis(),
                        if rep.deleted_generations.is_empty() {
                            String::new()
                        } else {
                            format!("; deleted {}", rep.deleted_generations.join(", "))
                        },
                    );
                }
                items.push(json!({"org": o.name, "target": ob.target, "report": rep}));
            }
            if out.json {
                println!("{}", json!(items));
            } else if orgs.is_empty() {
                println!("no organization has a remote backup target");
            }
            Ok(())
        }
        BackupCmd::OrgList { org } => {
            let o = admin.org(Some(org), "list backups")?;
            let ob = setting(&ctx, &o)?;
            let gens = r.list(o.id, &ob).map_err(cli)?;
            let mut rows = Vec::new();
            let mut items = Vec::new();
            for (name, m) in gens.iter().rev() {
                match m {
                    Ok(m) => {
                        rows.push(vec![
                            name.clone(),
                            time_text(m.time()),
                            bytes_text(Some(m.size())),
                            m.files.len().to_string(),
                            "ok".into(),
                        ]);
                        items.push(json!({"generation": name, "time": time_json(m.time()), "size_bytes": m.size(), "objects": m.files.len(), "ok": true}));
                    }
                    Err(e) => {
                        rows.push(vec![name.clone(), String::new(), String::new(), String::new(), "DAMAGED".into()]);
                        items.push(json!({"generation": name, "ok": false, "problems": [e]}));
                    }
                }
            }
            out.table(&["GENERATION", "TIME", "SIZE", "OBJECTS", "MANIFEST"], &rows, json!(items));
            Ok(())
        }
        BackupCmd::OrgVerify { org, generation } => {
            let o = admin.org(Some(org), "verify backups")?;
            let ob = setting(&ctx, &o)?;
            let names: Vec<String> = match generation {
                Some(gn) => vec![gn.clone()],
                None => r.list(o.id, &ob).map_err(cli)?.into_iter().map(|(n, _)| n).collect(),
            };
            let mut bad = 0;
            let mut items = Vec::new();
            for n in &names {
                let problems = match r.manifest(o.id, &ob, n) {
                    Ok(m) => {
                        let meter = Arc::new(Meter::default());
                        let p = meter_progress(&format!("verify {n}"), &meter);
                        let v = r.verify(o.id, &ob, &m, ctx.store().as_ref(), &meter);
                        p.finish();
                        v
                    }
                    Err(e) => vec![e],
                };
                if !problems.is_empty() {
                    bad += 1;
                }
                if !out.json {
                    match problems.is_empty() {
                        true => println!("{n}: ok (every object checked)"),
                        false => println!("{n}: DAMAGED: {}", problems.join("; ")),
                    }
                }
                items.push(json!({"generation": n, "ok": problems.is_empty(), "problems": problems}));
            }
            if out.json {
                println!("{}", json!(items));
            }
            if bad > 0 {
                return Err(CliError { message: format!("{bad} generation(s) damaged"), code: 1 });
            }
            Ok(())
        }
        BackupCmd::RestoreFiles { org, generation, path, to } => {
            let o = admin.org(Some(org), "restore files")?;
            setting(&ctx, &o)?;
            let meter = Arc::new(Meter::default());
            let p = meter_progress(&format!("download {generation}"), &meter);
            let req = crate::backup::remote::ops::prepare(
                &r,
                &ctx.accounts,
                ctx.store().as_ref(),
                o.id,
                generation,
                path,
                to.clone(),
                &meter,
            );
            p.finish();
            let req: RestoreFiles = req.map_err(cli)?;
            let (share, rest) = (req.share.clone(), req.path.clone());
            let answer = long_op(
                &ctx,
                Request::RestoreFiles { req: req.clone(), actor: actor.clone() },
                "restore",
                o.id,
                &actor,
                &format!("{share}/{rest}"),
                "backup.restore_files",
                |store, meter| {
                    let rr = crate::backup::remote::ops::restore_files(store, &req, meter)?;
                    Ok(json!({"restored": rr, "generation": req.generation}))
                },
            )?;
            let rr = &answer["restored"];
            out.done(
                &format!(
                    "restored {share}/{rest} of {} to {} ({} files, {} folders, {}); nothing was overwritten",
                    req.generation,
                    rr["to"].as_str().unwrap_or(""),
                    rr["files"],
                    rr["folders"],
                    bytes_text(rr["bytes"].as_u64())
                ),
                answer.clone(),
            );
            Ok(())
        }
        _ => Err(cli("not a remote backup command")),
    }
}

fn targets(ctx: &Context, out: Output) -> Result<(), CliError> {
    let uses = ctx.accounts.org_backups()?;
    let mut rows = Vec::new();
    let mut items = Vec::new();
    for (name, t) in &ctx.config.backup.targets {
        let place = match t.kind {
            crate::backup::remote::target::TargetKind::S3 => format!(
                "s3 {} {}/{} ({})",
                t.endpoint.as_deref().unwrap_or(""),
                t.bucket.as_deref().unwrap_or(""),
                t.prefix,
                t.region.as_deref().unwrap_or("us-east-1")
            ),
            crate::backup::remote::target::TargetKind::Path => {
                format!("path {}", t.path.as_deref().map(|p| p.display().to_string()).unwrap_or_default())
            }
        };
        let n = uses.iter().filter(|u| &u.target == name).count();
        let offered = ctx.config.backup.org_choosable_targets.contains(name);
        rows.push(vec![name.clone(), place.clone(), n.to_string(), if offered { "yes" } else { "no" }.into()]);
        items.push(json!({"target": name, "where": place, "organizations": n, "org_choosable": offered}));
    }
    out.table(&["TARGET", "WHERE", "ORGS", "ORG-CHOOSABLE"], &rows, json!(items));
    Ok(())
}

/// Runs a data operation: through the running server (control socket), or,
/// when it is stopped, here with its lock held. Audited either way.
#[allow(clippy::too_many_arguments)]
fn long_op(
    ctx: &Context,
    req: Request,
    label: &str,
    org: crate::types::OrgId,
    actor: &str,
    target: &str,
    action: &str,
    offline: impl FnOnce(&crate::storage::Store, &Meter) -> Result<serde_json::Value, String>,
) -> Result<serde_json::Value, CliError> {
    let sock = ctx.config.control_socket();
    let reachable = std::os::unix::net::UnixStream::connect(&sock).is_ok();
    if reachable {
        let meter = Arc::new(Meter::default());
        let m = meter.clone();
        let p = meter_progress(label, &meter);
        let res = crate::service::control_backup::ask_long(&sock, &req, |d, t| {
            m.done.store(d, Ordering::Relaxed);
            m.total.store(t, Ordering::Relaxed);
        });
        // Quicker than the first progress line: the final one shows the result.
        if let Some(b) = res.as_ref().ok().and_then(|v| v.pointer("/restored/bytes").or(v.pointer("/exported/bytes"))) {
            let b = b.as_u64().unwrap_or(0);
            meter.done.store(b, Ordering::Relaxed);
            meter.total.store(b, Ordering::Relaxed);
        }
        p.finish();
        return res.map_err(|e| cli(format!("{label} failed: {e}")));
    }
    let data = &ctx.config.server.data_dir;
    let _lock = super::serve::lock_data_dir(data).map_err(|_| {
        cli(format!("the server holds {} but its control socket {} does not answer", data.display(), sock.display()))
    })?;
    let meter = Arc::new(Meter::default());
    let p = meter_progress(label, &meter);
    let res = offline(ctx.store(), &meter);
    p.finish();
    let detail = match &res {
        Ok(v) => v.to_string(),
        Err(e) => e.clone(),
    };
    ctx.audit.org_event(org, actor, action, target, &detail, res.is_err());
    res.map_err(|e| cli(format!("{label} failed: {e}")))
}

/// `smbvault org export ORG --to DIR|FILE.tar` (operator only).
pub fn export(ctx: &Context, o: &OrgRecord, to: &Path) -> Result<(), CliError> {
    let to: PathBuf = if to.is_absolute() { to.to_path_buf() } else { std::env::current_dir().map_err(cli)?.join(to) };
    let shares: Vec<(String, u64)> =
        ctx.accounts.list_shares(Some(o.id))?.into_iter().map(|s| (s.name, s.root.0)).collect();
    let req = Request::Export { org: o.id.0, shares: shares.clone(), to: to.clone(), actor: "operator".into() };
    let started = std::time::Instant::now();
    let target = to.display().to_string();
    let v = long_op(ctx, req, "export", o.id, "operator", &target, "org.export", |store, meter| {
        let c = crate::backup::remote::ops::export(store, o.id, &shares, &to, meter)?;
        Ok(json!({"exported": c}))
    })?;
    let c = &v["exported"];
    ctx.out.done(
        &format!(
            "exported {} to {}: {} files, {} folders, {} ({} ms)",
            o.name,
            to.display(),
            c["files"],
            c["folders"],
            bytes_text(c["bytes"].as_u64()),
            started.elapsed().as_millis()
        ),
        json!({"org": o.name, "to": to, "exported": c}),
    );
    Ok(())
}
