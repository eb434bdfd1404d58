//! Name resolution for NTLM and lockout with an injected clock.

use super::{Fixture, PW, t};
use crate::accounts::{LockoutState, password};

#[test]
fn resolves_org_backslash_user() {
    let f = Fixture::new();
    let acme = f.org("ACME");
    let alice = f.user(&acme, "Alice");
    let c = f.acc.resolve_logon("acme", "ALICE").unwrap().unwrap();
    assert_eq!((c.user_id, c.org_id), (alice.id, acme.id));
    assert_eq!((c.user.as_str(), c.org.as_str()), ("Alice", "ACME"));
    assert_eq!(*c.nt_hash, *password::nt_hash(PW));
    assert!(c.enabled && !c.org_suspended && c.locked_until.is_none());
    // Domain names an organization: no fallback to other organizations.
    let other = f.org("OTHER");
    f.user(&other, "bob");
    assert!(f.acc.resolve_logon("ACME", "bob").unwrap().is_none());
}

#[test]
fn resolves_user_at_org_with_any_domain() {
    let f = Fixture::new();
    let acme = f.org("ACME");
    let alice = f.user(&acme, "alice");
    for domain in ["", "WORKGROUP", "SMBVAULT", "OTHER"] {
        let c = f.acc.resolve_logon(domain, "alice@acme").unwrap().unwrap();
        assert_eq!(c.user_id, alice.id, "domain {domain:?}");
    }
    assert!(f.acc.resolve_logon("", "alice@nowhere").unwrap().is_none());
    // ORG\user typed into the user field also works.
    assert_eq!(f.acc.resolve_logon("", "ACME\\alice").unwrap().unwrap().user_id, alice.id);
}

#[test]
fn domainless_logons_use_only_the_configured_organization() {
    let f = Fixture::new();
    let a = f.org("ACME");
    let b = f.org("BETA");
    let alice = f.user(&a, "alice");
    let carol_a = f.user(&a, "carol");
    let bea = f.user(&b, "bea");
    let mut cfg = crate::config::AccountsConfig { domainless_org: Some("ACME".into()), ..Default::default() };
    f.acc.set_config(&cfg);
    for domain in ["WORKGROUP", "", ".", "SMBVAULT", "MYLAPTOP"] {
        assert_eq!(f.acc.resolve_logon(domain, "Alice").unwrap().unwrap().user_id, alice.id);
        assert_eq!(f.acc.resolve_logon(domain, "carol").unwrap().unwrap().user_id, carol_a.id);
        // BETA's user is never found by searching other tenants, even
        // though her name is unique on the server.
        assert!(f.acc.resolve_logon(domain, "bea").unwrap().is_none());
    }
    // Adding a carol to BETA changes nothing for ACME's domainless carol.
    let carol_b = f.user(&b, "carol");
    assert_eq!(f.acc.resolve_logon("WORKGROUP", "carol").unwrap().unwrap().user_id, carol_a.id);
    assert_eq!(f.acc.resolve_logon("BETA", "carol").unwrap().unwrap().user_id, carol_b.id);
    assert_eq!(f.acc.resolve_logon("BETA", "bea").unwrap().unwrap().user_id, bea.id);
    // No domainless organization configured: such logons fail.
    cfg.domainless_org = Some(String::new());
    f.acc.set_config(&cfg);
    assert!(f.acc.resolve_logon("WORKGROUP", "alice").unwrap().is_none());
    assert_eq!(f.acc.resolve_logon("ACME", "alice").unwrap().unwrap().user_id, alice.id);
    // Absent: the bootstrap organization (default_org, DEFAULT here, which
    // this fixture does not have).
    cfg.domainless_org = None;
    f.acc.set_config(&cfg);
    assert!(f.acc.resolve_logon("WORKGROUP", "alice").unwrap().is_none());
}

#[test]
fn upn_suffix_selects_the_organization() {
    let f = Fixture::new();
    let a = f.org("ACME");
    let b = f.org("BETA");
    let alice = f.user(&a, "alice");
    let alice_b = f.user(&b, "alice");
    f.acc.set_org_upn_suffix(a.id, Some("acme.example")).unwrap();
    for user in ["alice@acme.example", "alice@ACME.Example", "alice@acme"] {
        assert_eq!(f.acc.resolve_logon("", user).unwrap().unwrap().user_id, alice.id, "{user}");
    }
    assert_eq!(f.acc.resolve_logon("acme.example", "alice").unwrap().unwrap().user_id, alice.id);
    assert_eq!(f.acc.resolve_logon("", "alice@beta").unwrap().unwrap().user_id, alice_b.id);
    assert!(f.acc.resolve_logon("", "alice@globex.example").unwrap().is_none());
    // One suffix, one organization.
    assert!(matches!(
        f.acc.set_org_upn_suffix(b.id, Some("acme.example")),
        Err(crate::accounts::AccountsError::Exists { .. })
    ));
    assert!(crate::accounts::names::upn_suffix("no dots").is_err());
    assert!(crate::accounts::names::upn_suffix("-bad.example").is_err());
    assert_eq!(crate::accounts::names::upn_suffix(" ACME.Example ").unwrap(), "acme.example");
}

#[test]
fn japanese_names_resolve_case_insensitively() {
    let f = Fixture::new();
    let a = f.org("ACME");
    let u = f.user(&a, "山田Taro");
    assert_eq!(f.acc.resolve_logon("ACME", "山田TARO").unwrap().unwrap().user_id, u.id);
}

#[test]
fn disabled_user_and_suspended_org_are_not_enabled() {
    let f = Fixture::new();
    let a = f.org("ACME");
    let u = f.user(&a, "alice");
    f.acc.set_user_enabled(u.id, false).unwrap();
    assert!(!f.acc.resolve_logon("ACME", "alice").unwrap().unwrap().enabled);
    f.acc.set_user_enabled(u.id, true).unwrap();
    f.acc.set_org_suspended(a.id, true).unwrap();
    let c = f.acc.resolve_logon("ACME", "alice").unwrap().unwrap();
    assert!(!c.enabled && c.org_suspended);
}

#[test]
fn lockout_after_threshold_within_window_and_auto_unlock() {
    let f = Fixture::new();
    let a = f.org("ACME");
    let u = f.user(&a, "alice");
    let cfg = f.acc.config().clone();
    assert_eq!((cfg.lockout_threshold, cfg.lockout_window_secs, cfg.lockout_duration_secs), (5, 600, 900));
    for i in 1..5u32 {
        let s = f.acc.record_logon_failure(u.id, t(u64::from(i) * 100)).unwrap();
        assert_eq!(s, LockoutState::Counting { failures: i, threshold: 5 });
    }
    let s = f.acc.record_logon_failure(u.id, t(500)).unwrap();
    assert_eq!(s, LockoutState::LockedNow { until: t(1400) });
    assert!(f.acc.is_locked(u.id, t(501)).unwrap());
    assert_eq!(f.acc.record_logon_failure(u.id, t(600)).unwrap(), LockoutState::AlreadyLocked { until: t(1400) });
    assert_eq!(f.acc.resolve_logon("ACME", "alice").unwrap().unwrap().locked_until, Some(t(1400)));
    // The lock lifts by itself; counting starts afresh.
    assert!(f.acc.is_locked(u.id, t(1399)).unwrap());
    assert!(!f.acc.is_locked(u.id, t(1400)).unwrap());
    let s = f.acc.record_logon_failure(u.id, t(1500)).unwrap();
    assert_eq!(s, LockoutState::Counting { failures: 1, threshold: 5 });
}

#[test]
fn failures_outside_the_window_do_not_accumulate() {
    let f = Fixture::new();
    let a = f.org("ACME");
    let u = f.user(&a, "alice");
    // One failure every 150 s: at most 4 inside any 600 s window.
    for i in 0..20u64 {
        let s = f.acc.record_logon_failure(u.id, t(i * 150)).unwrap();
        assert!(matches!(s, LockoutState::Counting { failures, .. } if failures <= 4), "{i}: {s:?}");
    }
    assert!(!f.acc.is_locked(u.id, t(20 * 150)).unwrap());
}

#[test]
fn success_resets_and_admin_unlocks() {
    let f = Fixture::new();
    let a = f.org("ACME");
    let u = f.user(&a, "alice");
    for i in 0..4 {
        f.acc.record_logon_failure(u.id, t(i)).unwrap();
    }
    f.acc.record_logon_success(u.id, t(5)).unwrap();
    assert_eq!(f.acc.record_logon_failure(u.id, t(6)).unwrap(), LockoutState::Counting { failures: 1, threshold: 5 });
    for i in 7..11 {
        f.acc.record_logon_failure(u.id, t(i)).unwrap();
    }
    assert!(f.acc.is_locked(u.id, t(11)).unwrap());
    f.acc.unlock(u.id).unwrap();
    assert!(!f.acc.is_locked(u.id, t(11)).unwrap());
    assert_eq!(f.acc.resolve_logon("ACME", "alice").unwrap().unwrap().locked_until, None);
}

#[test]
fn logon_bookkeeping_does_not_bump_revision() {
    let f = Fixture::new();
    let a = f.org("ACME");
    let u = f.user(&a, "alice");
    let r = f.acc.revision().unwrap();
    f.acc.record_logon_failure(u.id, t(0)).unwrap();
    f.acc.record_logon_success(u.id, t(1)).unwrap();
    assert_eq!(f.acc.revision().unwrap(), r);
}

/// The console's password check counts in the same lockout as SMB logons
/// (`record_logon_failure`, what the SMB path calls) and refuses a locked
/// account before looking at the password.
#[test]
fn sign_in_shares_the_smb_lockout() {
    use crate::accounts::SignInRefusal;
    let f = Fixture::new();
    let a = f.org("ACME");
    let u = f.user(&a, "alice");
    for i in 1..5u64 {
        f.acc.record_logon_failure(u.id, t(i * 10)).unwrap(); // four SMB failures
    }
    let e = f.acc.check_sign_in("ACME\\alice", "wrong", t(60)).unwrap().unwrap_err();
    assert_eq!((e.refusal, e.locked_now), (SignInRefusal::BadPassword, true));
    let e = f.acc.check_sign_in("alice@ACME", PW, t(70)).unwrap().unwrap_err();
    assert_eq!(e.refusal, SignInRefusal::LockedOut, "right password, locked account");
    assert!(f.acc.resolve_logon("ACME", "alice").unwrap().unwrap().locked_until.is_some(), "SMB sees the lock");
    // Unknown names and a missing organization look alike to the caller.
    for spec in ["ACME\\nobody", "NOORG\\alice", "alice"] {
        assert_eq!(f.acc.check_sign_in(spec, PW, t(70)).unwrap().unwrap_err().refusal, SignInRefusal::UnknownUser);
    }
    let ok = f.acc.check_sign_in("ACME\\alice", PW, t(2000)).unwrap().unwrap();
    assert_eq!(ok.id, u.id);
}
