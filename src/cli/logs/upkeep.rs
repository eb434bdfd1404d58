//! The log maintenance commands: `verify` (the chain, and against an
//! anchor), `anchor` (the chain heads to keep off the machine) and `purge`
//! (retention). Split from `cli/logs.rs`, which shows and exports events.

use super::*;

pub(super) fn verify(
    ctx: &LogsContext<'_>,
    log: &AuditLog,
    org: Option<&str>,
    out: &mut dyn Write,
) -> Result<(), LogsError> {
    let logs = scope(ctx, log, org)?;
    let mut problems = 0;
    let mut json = Vec::new();
    for l in logs {
        let rep = log.verify(Some(l))?;
        for r in rep.logs {
            let name = match r.log {
                LogId::Server => "server".to_string(),
                LogId::Org(o) => format!("{} ({})", org_label(ctx.orgs, Some(o)), r.log),
            };
            problems += r.problems.len();
            if ctx.json {
                json.push(serde_json::json!({
                    "log": r.log.to_string(),
                    "name": name,
                    "ok": r.problems.is_empty(),
                    "segments": r.segments,
                    "records": r.records,
                    "problems": r.problems.iter().map(|p| p.to_string()).collect::<Vec<_>>(),
                    "notes": r.notes,
                }));
                continue;
            }
            let status = if r.problems.is_empty() { "OK" } else { "FAILED" };
            writeln!(out, "{name}: {status}: {} segments, {} records", r.segments, r.records)?;
            for p in &r.problems {
                writeln!(out, "  PROBLEM: {p}")?;
            }
            for n in &r.notes {
                writeln!(out, "  note: {n}")?;
            }
        }
    }
    if ctx.json {
        writeln!(out, "{}", serde_json::json!({ "ok": problems == 0, "problems": problems, "logs": json }))?;
    }
    if problems > 0 { Err(LogsError::Tampered(problems)) } else { Ok(()) }
}

pub(super) fn anchor(
    ctx: &LogsContext<'_>,
    log: &AuditLog,
    file: Option<&std::path::Path>,
    out: &mut dyn Write,
) -> Result<(), LogsError> {
    if ctx.allowed_org.is_some() {
        return Err(LogsError::Forbidden("only the operator can anchor the audit logs".into()));
    }
    let a = crate::audit::anchor::Anchor::make(log, ctx.master, &|o| ctx.orgs.org_name(o), SystemTime::now())?;
    let text = serde_json::to_string_pretty(&a).map_err(|e| LogsError::Usage(e.to_string()))?;
    match file {
        None => writeln!(out, "{text}")?,
        Some(p) => {
            std::fs::write(p, format!("{text}\n"))?;
            writeln!(
                out,
                "wrote the anchor of {} logs to {} ({}); keep it off this machine, then check with \
                 `smbvault logs verify --anchor {}`",
                a.logs.len(),
                p.display(),
                a.created,
                p.display()
            )?;
        }
    }
    Ok(())
}

pub(super) fn verify_anchor(
    ctx: &LogsContext<'_>,
    log: &AuditLog,
    file: &std::path::Path,
    out: &mut dyn Write,
) -> Result<(), LogsError> {
    if ctx.allowed_org.is_some() {
        return Err(LogsError::Forbidden("only the operator can check audit anchors".into()));
    }
    let text = std::fs::read_to_string(file)
        .map_err(|e| LogsError::Usage(format!("cannot read the anchor {}: {e}", file.display())))?;
    let a = match crate::audit::anchor::Anchor::parse(&text, ctx.master) {
        Ok(a) => a,
        Err(e) => {
            writeln!(out, "anchor {}: FAILED: {e}", file.display())?;
            return Err(LogsError::Tampered(1));
        }
    };
    let erased = |o: OrgId| ctx.org_keys.org_subkey(o, "smbvault/org/audit-chain").is_err();
    let c = a.check(log, &erased)?;
    let status = if c.problems.is_empty() { "OK" } else { "FAILED" };
    writeln!(out, "anchor of {} ({} logs): {status}", a.created, a.logs.len())?;
    for p in &c.problems {
        writeln!(out, "  PROBLEM: {p}")?;
    }
    for n in &c.notes {
        writeln!(out, "  note: {n}")?;
    }
    if c.problems.is_empty() { Ok(()) } else { Err(LogsError::Tampered(c.problems.len())) }
}

pub(super) fn purge(
    ctx: &LogsContext<'_>,
    log: &AuditLog,
    confirm: &crate::cli::confirm::ConfirmArgs,
    clock_ok: bool,
    out: &mut dyn Write,
) -> Result<(), LogsError> {
    if ctx.allowed_org.is_some() {
        return Err(LogsError::Forbidden("only the operator can purge audit logs".into()));
    }
    let default = ctx.config.audit.default_retention;
    let now = SystemTime::now();
    let plan = log.purge_plan(now, &|o| ctx.orgs.retention(o).unwrap_or(default))?;
    let what: Vec<String> = plan
        .iter()
        .map(|(l, r, months)| {
            let m: Vec<String> = months.iter().map(|m| m.to_string()).collect();
            format!("{l}: {} (retention {r:?})", m.join(", "))
        })
        .collect();
    if ctx.json && (confirm.dry_run || what.is_empty()) {
        // The same answers as below, as one object: what would go, or nothing.
        let months: Vec<serde_json::Value> = plan
            .iter()
            .map(|(l, r, months)| {
                let m: Vec<String> = months.iter().map(|m| m.to_string()).collect();
                serde_json::json!({ "log": l.to_string(), "retention": format!("{r:?}"), "months": m })
            })
            .collect();
        let key = if confirm.dry_run { "would_purge" } else { "purged" };
        writeln!(out, "{}", serde_json::json!({ "dry_run": confirm.dry_run, key: months }))?;
        return Ok(());
    }
    if confirm.dry_run {
        match what.is_empty() {
            true => writeln!(out, "dry run: nothing to purge")?,
            false => writeln!(out, "dry run, nothing changed: would delete\n  {}", what.join("\n  "))?,
        }
        return Ok(());
    }
    if what.is_empty() {
        writeln!(out, "nothing to purge")?;
        return Ok(());
    }
    confirm
        .confirm(&format!("delete these months of audit log: {}", what.join("; ")), "purge")
        .map_err(|e| LogsError::NotConfirmed(e.message))?;
    let report = log.purge(now, &|o| ctx.orgs.retention(o).unwrap_or(default), clock_ok)?;
    if ctx.json {
        let logs: Vec<serde_json::Value> = report
            .logs
            .iter()
            .map(|p| {
                serde_json::json!({
                    "log": p.log.to_string(),
                    "months": p.months.iter().map(|m| m.to_string()).collect::<Vec<_>>(),
                    "bytes": p.bytes,
                    "retention": p.retention,
                    "error": p.error.as_ref().map(|e| e.to_string()),
                })
            })
            .collect();
        writeln!(out, "{}", serde_json::json!({ "purged": logs }))?;
        return Ok(());
    }
    if report.logs.is_empty() {
        writeln!(out, "nothing to purge")?;
    }
    for p in &report.logs {
        let months: Vec<String> = p.months.iter().map(|m| m.to_string()).collect();
        match &p.error {
            Some(e) => writeln!(out, "{}: purge failed: {e}", p.log)?,
            None => writeln!(
                out,
                "{}: removed {} ({} bytes, retention {})",
                p.log,
                months.join(", "),
                p.bytes,
                p.retention.months().map_or_else(|| "unlimited".to_string(), |m| format!("{m} months"))
            )?,
        }
    }
    Ok(())
}
