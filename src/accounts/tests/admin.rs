//! Scoping of organization administrators, and the events they produce.

use super::{Fixture, PW, t};
use crate::accounts::{
    Access, AccountsError, Actor, Admin, AdminAction, GranteeName, RecordingAudit, Role, ShareOptions,
};

/// ACME (admin boss, member alice, share acme-docs) and BETA (member bob, share beta-docs).
fn two_orgs(f: &Fixture, audit: &RecordingAudit) {
    let op = Admin::new(&f.acc, Actor::operator(), audit);
    op.org_add("ACME", &f.prov).unwrap();
    op.org_add("BETA", &f.prov).unwrap();
    op.user_add(Some("ACME"), "boss", Role::OrgAdmin, PW).unwrap();
    op.user_add(None, "alice@ACME", Role::Member, PW).unwrap();
    op.user_add(None, "BETA\\bob", Role::Member, PW).unwrap();
    op.share_add(Some("ACME"), "acme-docs", &ShareOptions::default(), &f.prov).unwrap();
    op.share_add(Some("BETA"), "beta-docs", &ShareOptions::default(), &f.prov).unwrap();
    audit.take();
}

fn denied<T: std::fmt::Debug>(r: Result<T, AccountsError>) -> String {
    match r {
        Err(AccountsError::Denied(m)) => m,
        other => panic!("expected Denied, got {other:?}"),
    }
}

#[test]
fn org_admin_sees_and_changes_only_own_org() {
    let f = Fixture::new();
    let audit = RecordingAudit::default();
    two_orgs(&f, &audit);
    let adm = Admin::login(&f.acc, "ACME\\boss", PW, t(0), &audit).unwrap();
    assert!(matches!(adm.actor(), Actor::OrgAdmin { .. }));

    // Listings are limited to ACME.
    assert_eq!(adm.org_list().unwrap().iter().map(|o| o.name.as_str()).collect::<Vec<_>>(), ["ACME"]);
    assert_eq!(adm.user_list(None).unwrap().len(), 2);
    assert!(adm.user_list(None).unwrap().iter().all(|u| u.org == "ACME"));
    assert_eq!(adm.share_list(None).unwrap().len(), 1);

    // Another org (existing or not) is refused the same way.
    let m = denied(adm.user_list(Some("BETA")));
    assert!(m.contains("administers organization ACME only"), "{m}");
    denied(adm.user_list(Some("NOSUCHORG")));
    denied(adm.user_add(None, "BETA\\eve", Role::Member, PW));
    denied(adm.user_passwd(None, "bob@BETA", "Whatever-Pass-1"));
    denied(adm.user_set_enabled(Some("BETA"), "bob", false));
    denied(adm.share_grant(Some("BETA"), "beta-docs", GranteeName::User("alice"), Access::Read));
    denied(adm.share_remove(Some("BETA"), "beta-docs", None));
    // Unqualified, another tenant's share name is simply not there: the
    // same answer as for a name nobody uses.
    for name in ["beta-docs", "no-such-share"] {
        let e = adm.share_grant(None, name, GranteeName::User("alice"), Access::Read).unwrap_err();
        assert!(matches!(e, AccountsError::NotFound { what: "share", .. }), "{e:?}");
    }
    denied(adm.group_add(Some("BETA"), "g"));

    // Operator-only actions.
    denied(adm.org_add("GAMMA", &f.prov));
    denied(adm.org_suspend("ACME", true));
    denied(adm.org_set_quota("ACME", Some(1)));
    denied(adm.user_add(None, "root", Role::Operator, PW));

    // No self-lockout.
    denied(adm.user_set_enabled(None, "boss", false));
    denied(adm.user_delete(None, "boss"));
    denied(adm.user_set_role(None, "boss", Role::Member));

    // Own org works, and is audited.
    adm.user_add(None, "dave", Role::Member, PW).unwrap();
    adm.user_set_enabled(None, "alice", false).unwrap();
    adm.group_add(None, "staff").unwrap();
    adm.group_member(None, "staff", "dave", true).unwrap();
    adm.share_grant(None, "acme-docs", GranteeName::Group("staff"), Access::Read).unwrap();
    assert_eq!(adm.share_effective(None, "acme-docs", "dave").unwrap(), Access::Read);

    let ev = audit.take();
    let denials = ev.iter().filter(|e| matches!(e.action, AdminAction::Denied { .. })).count();
    assert!(denials >= 10, "every refusal is audited ({denials})");
    assert!(ev.iter().all(|e| e.actor == "ACME\\boss"));
    assert!(ev.iter().any(|e| e.action == AdminAction::UserAdded { user: "ACME\\dave".into(), role: Role::Member }));
    assert!(
        ev.iter().any(|e| matches!(&e.action, AdminAction::AccessSet { principal, .. } if principal == "group staff"))
    );
}

#[test]
fn org_admin_cannot_touch_operator_accounts() {
    let f = Fixture::new();
    let audit = RecordingAudit::default();
    two_orgs(&f, &audit);
    let op = Admin::new(&f.acc, Actor::operator(), &audit);
    op.user_add(Some("ACME"), "root", Role::Operator, PW).unwrap();
    let adm = Admin::login(&f.acc, "boss@acme", PW, t(0), &audit).unwrap();
    denied(adm.user_passwd(None, "root", "Other-Pass-123"));
    denied(adm.user_delete(None, "root"));
    // An operator account acts server-wide.
    let root = Admin::login(&f.acc, "ACME\\root", PW, t(0), &audit).unwrap();
    assert!(matches!(root.actor(), Actor::Operator { .. }));
    assert_eq!(root.user_list(Some("BETA")).unwrap().len(), 1);
}

#[test]
fn admin_login_refuses_members_wrong_passwords_and_counts_failures() {
    let f = Fixture::new();
    let audit = RecordingAudit::default();
    two_orgs(&f, &audit);
    denied(Admin::login(&f.acc, "ACME\\alice", PW, t(0), &audit).map(|_| ()));
    let m = denied(Admin::login(&f.acc, "ACME\\boss", "wrong-Password-1", t(0), &audit).map(|_| ()));
    assert!(!m.contains("wrong-Password-1"));
    denied(Admin::login(&f.acc, "ACME\\nobody", PW, t(0), &audit).map(|_| ()));
    assert!(matches!(f.acc.admin_login("boss", PW, t(0)), Err(AccountsError::Invalid(_))));
    for i in 1..5 {
        let _ = Admin::login(&f.acc, "ACME\\boss", "wrong-Password-1", t(i), &audit);
    }
    let m = denied(f.acc.admin_login("ACME\\boss", PW, t(10)).map(|_| ()));
    assert!(m.contains("locked"), "{m}");
    let logins = audit.take();
    let failed = AdminAction::AdminLogin { user: "ACME\\boss".into(), ok: false };
    assert!(logins.iter().any(|e| e.action == failed && e.org.is_some()), "failures filed under ACME");
    let locked: Vec<_> = logins.iter().filter(|e| matches!(e.action, AdminAction::LockedOut { .. })).collect();
    assert_eq!(locked.len(), 1, "exactly the fifth failure locks: {logins:?}");
}

#[test]
fn operator_needs_org_when_ambiguous() {
    let f = Fixture::new();
    let audit = RecordingAudit::default();
    let op = Admin::new(&f.acc, Actor::operator(), &audit);
    op.org_add("ACME", &f.prov).unwrap();
    // One org: implied.
    op.user_add(None, "alice", Role::Member, PW).unwrap();
    op.org_add("BETA", &f.prov).unwrap();
    let e = op.user_add(None, "bob", Role::Member, PW).unwrap_err();
    assert!(e.to_string().contains("--org"), "{e}");
    assert!(matches!(op.user_add(Some("ACME"), "BETA\\bob", Role::Member, PW), Err(AccountsError::Invalid(_))));
    assert_eq!(op.user_list(None).unwrap().len(), 1);
    let when = op.org_end_contract("BETA", chrono::NaiveDate::from_ymd_opt(2030, 1, 31)).unwrap();
    assert!(when.is_some());
}
