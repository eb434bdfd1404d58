//! The running server's remote backups: each organization with a target
//! gets a generation when its newest is `every` old (or it has none),
//! checked at start and every ten minutes; or, with `[backup] remote_at`,
//! every day at that time (JST). Work runs on a blocking thread, one
//! organization at a time; a failure is retried at the next check (an
//! interrupted upload resumes where it stopped).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::{Meter, Remote, ShareEntry};
use crate::accounts::Accounts;
use crate::storage::Store;
use crate::types::OrgId;

/// How often due organizations are looked for.
const CHECK: Duration = Duration::from_secs(600);

/// `HH:MM` or `HH:MM:SS`.
pub fn parse_at(s: &str) -> Option<chrono::NaiveTime> {
    chrono::NaiveTime::parse_from_str(s, "%H:%M:%S").or_else(|_| chrono::NaiveTime::parse_from_str(s, "%H:%M")).ok()
}

/// How long from `now` until the next `at` o'clock, JST (today's if it is
/// still ahead, else tomorrow's).
pub fn until_next(at: chrono::NaiveTime, now: SystemTime) -> Duration {
    let local = crate::types::jst::at(now);
    let today = local.date_naive().and_time(at);
    let mut next = today.and_local_timezone(*local.offset()).single().unwrap_or(local);
    if next <= local {
        next += chrono::Duration::days(1);
    }
    (next - local).to_std().unwrap_or_default()
}

/// Runs forever at `at` each day (spawned by `serve` when `remote_at` is set).
pub async fn run_daily_at(remote: Arc<Remote>, accounts: Arc<Accounts>, store: Arc<Store>, at: chrono::NaiveTime) {
    loop {
        let wait = until_next(at, SystemTime::now());
        tracing::info!(at = %at, in_secs = wait.as_secs(), "next scheduled remote backup");
        tokio::time::sleep(wait).await;
        let (r, a, s) = (remote.clone(), accounts.clone(), store.clone());
        // Every organization with a target is due at its time of day.
        let pass = tokio::task::spawn_blocking(move || pass(&r, &a, &s, Duration::ZERO, HashMap::new())).await;
        if let Err(e) = pass {
            tracing::error!(error = %e, "remote backup task failed");
        }
        // Not twice in the same second.
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Runs forever (spawned by `serve`).
pub async fn run(remote: Arc<Remote>, accounts: Arc<Accounts>, store: Arc<Store>, every: Duration) {
    // Newest generation per organization, learned from the target once.
    let mut newest: HashMap<OrgId, SystemTime> = HashMap::new();
    loop {
        let (r, a, s) = (remote.clone(), accounts.clone(), store.clone());
        let known = newest.clone();
        let pass = tokio::task::spawn_blocking(move || pass(&r, &a, &s, every, known)).await;
        match pass {
            Ok(updated) => newest = updated,
            Err(e) => tracing::error!(error = %e, "remote backup task failed"),
        }
        tokio::time::sleep(CHECK).await;
    }
}

fn pass(
    remote: &Remote,
    accounts: &Accounts,
    store: &Store,
    every: Duration,
    mut newest: HashMap<OrgId, SystemTime>,
) -> HashMap<OrgId, SystemTime> {
    let Ok(all) = accounts.org_backups() else { return newest };
    for ob in all {
        let org = ob.org;
        if let std::collections::hash_map::Entry::Vacant(slot) = newest.entry(org) {
            match remote.list(org, &ob) {
                Ok(gens) => {
                    if let Some(t) = gens.iter().filter_map(|(_, m)| m.as_ref().ok()).map(|m| m.time()).max() {
                        slot.insert(t);
                    }
                }
                Err(e) => {
                    tracing::warn!(org = org.0, target = %ob.target, error = %e, "cannot list remote backups");
                    continue;
                }
            }
        }
        let due = newest.get(&org).is_none_or(|t| t.elapsed().unwrap_or_default() >= every);
        if !due {
            continue;
        }
        // Every acknowledged write of the organization in its meta.db.
        if let Ok(o) = store.org(org)
            && let Err(e) = o.flush()
        {
            tracing::error!(org = org.0, error = %e, "flush before the remote backup failed");
            continue;
        }
        let shares = accounts
            .list_shares(Some(org))
            .map(|v| v.into_iter().map(|s| ShareEntry { name: s.name, root: s.root.0 }).collect())
            .unwrap_or_default();
        let now = SystemTime::now();
        match remote.backup_org(org, &ob, store, shares, now, &Meter::default()) {
            Ok(r) => {
                newest.insert(org, now);
                tracing::info!(org = org.0, generation = %r.generation, sent = r.uploaded_bytes, "remote backup made");
            }
            Err(e) => {
                tracing::error!(org = org.0, target = %ob.target, error = %e, "remote backup failed; retrying later")
            }
        }
    }
    newest
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_time_of_day_in_jst() {
        // 2026-12-06 10:00:00 JST.
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_796_518_800);
        assert_eq!(until_next(parse_at("10:00:05").unwrap(), now), Duration::from_secs(5));
        assert_eq!(until_next(parse_at("09:59").unwrap(), now), Duration::from_secs(86_400 - 60));
        assert_eq!(until_next(parse_at("10:00").unwrap(), now), Duration::from_secs(86_400));
        assert!(parse_at("25:00").is_none() && parse_at("noon").is_none());
    }
}
