//! Organizations, users, groups, shares, access and revision.

use chrono::NaiveDate;

use super::{Fixture, PW, t};
use crate::accounts::{Access, Accounts, AccountsError, Grantee, NewShare, Role, ShareRecord, bootstrap, password};
use crate::config::{AccountsConfig, Config, EncryptionPolicy, Retention};
use crate::keys::{Key32, MasterKey};
use crate::types::OrgId;

fn share(f: &Fixture, org: OrgId, name: &str) -> ShareRecord {
    let new =
        NewShare { org, name: name.into(), comment: "c".into(), encryption: None, default_access: Access::ReadWrite };
    f.acc.add_share(&new, &f.prov).unwrap()
}

#[test]
fn weak_passwords_are_refused_on_add_and_reset() {
    let f = Fixture::new();
    let a = f.org("ACME");
    let e = f.acc.add_user(a.id, "alice", Role::Member, "short").unwrap_err();
    assert!(matches!(e, AccountsError::WeakPassword(_)), "{e}");
    let e = f.acc.add_user(a.id, "alice", Role::Member, "Alice-2024-xyz").unwrap_err();
    assert!(e.to_string().contains("user name"), "{e}");
    let u = f.user(&a, "alice");
    assert!(f.acc.set_password(u.id, "nouppercase1").is_err());
    f.acc.set_password(u.id, "Another-Pass-77").unwrap();
    assert!(f.acc.verify_password(u.id, "Another-Pass-77").unwrap());
    assert!(!f.acc.verify_password(u.id, PW).unwrap());
    let c = f.acc.resolve_logon("ACME", "alice").unwrap().unwrap();
    assert_eq!(*c.nt_hash, *password::nt_hash("Another-Pass-77"));
}

#[test]
fn names_are_unique_case_insensitively_and_ids_never_reused() {
    let f = Fixture::new();
    let a = f.org("ACME");
    assert!(matches!(f.acc.create_org("acme", &f.prov), Err(AccountsError::Exists { .. })));
    let u1 = f.user(&a, "alice");
    assert!(matches!(f.acc.add_user(a.id, "ALICE", Role::Member, PW), Err(AccountsError::Exists { .. })));
    f.acc.delete_user(u1.id).unwrap();
    let u2 = f.user(&a, "alice");
    assert!(u2.id > u1.id, "user id reused");
    // Provisioning failure: no org row, and the id is not reused.
    f.prov.fail_from_now();
    assert!(matches!(f.acc.create_org("BETA", &f.prov), Err(AccountsError::Provision(_))));
    assert!(f.acc.find_org("BETA").unwrap().is_none());
    let p2 = crate::accounts::TestProvisioner::new();
    let b = f.acc.create_org("BETA", &p2).unwrap();
    assert!(b.id.0 > a.id.0);
}

#[test]
fn org_settings_round_trip() {
    let f = Fixture::new();
    let a = f.org("ACME");
    f.acc.rename_org(a.id, "ACME2").unwrap();
    f.acc.set_org_quota(a.id, Some(10 << 30)).unwrap();
    f.acc.set_org_retention(a.id, Some(Retention::M3)).unwrap();
    f.acc.set_org_suspended(a.id, true).unwrap();
    let o = f.acc.find_org("acme2").unwrap().unwrap();
    assert_eq!(
        (o.name.as_str(), o.quota_bytes, o.retention, o.suspended),
        ("ACME2", Some(10 << 30), Some(Retention::M3), true)
    );
    assert!(f.acc.find_org("ACME").unwrap().is_none());
    f.acc.set_org_retention(a.id, None).unwrap();
    assert_eq!(f.acc.org(a.id).unwrap().unwrap().retention, None);
}

#[test]
fn contract_end_schedules_erasure_30_days_later() {
    let f = Fixture::new();
    let a = f.org("ACME");
    f.org("BETA");
    let day = NaiveDate::from_ymd_opt(2025, 3, 31).unwrap();
    f.acc.end_contract(a.id, Some(day)).unwrap();
    // End of 2025-03-31 JST = 2025-03-31T15:00Z; +30 days = 2025-04-30T15:00Z.
    let due = crate::accounts::records::from_unix(1_746_025_200);
    let o = f.acc.org(a.id).unwrap().unwrap();
    assert_eq!(f.acc.erasure_time(&o), Some(due));
    assert!(f.acc.orgs_due_for_erasure(due - std::time::Duration::from_secs(1)).unwrap().is_empty());
    let list = f.acc.orgs_due_for_erasure(due).unwrap();
    assert_eq!(list.iter().map(|o| o.id).collect::<Vec<_>>(), vec![a.id]);
    f.acc.end_contract(a.id, None).unwrap();
    assert!(f.acc.orgs_due_for_erasure(due).unwrap().is_empty());
    // After shredding: data gone, name free, id not reused.
    f.user(&a, "alice");
    f.acc.mark_org_erased(a.id).unwrap();
    assert!(f.acc.find_org("ACME").unwrap().is_none());
    assert!(f.acc.resolve_logon("ACME", "alice").unwrap().is_none());
    let again = f.org("ACME");
    assert!(again.id.0 > a.id.0);
}

#[test]
fn share_names_are_unique_per_organization() {
    let f = Fixture::new();
    let a = f.org("ACME");
    let b = f.org("BETA");
    let s = share(&f, a.id, "Docs");
    let same_org = NewShare {
        org: a.id,
        name: "DOCS".into(),
        comment: String::new(),
        encryption: None,
        default_access: Access::Read,
    };
    assert!(matches!(f.acc.add_share(&same_org, &f.prov), Err(AccountsError::Exists { .. })));
    assert_eq!(f.prov.roots().len(), 1, "no orphan root left behind");
    // Another organization has its own "docs".
    let theirs = f.acc.add_share(&NewShare { org: b.id, ..same_org }, &f.prov).unwrap();
    assert_ne!(theirs.id, s.id);
    assert_eq!(f.prov.roots().len(), 2);
    let found = f.acc.find_share(a.id, "docs").unwrap().unwrap();
    assert_eq!((found.id, found.org_id, found.org.as_str()), (s.id, a.id, "ACME"));
    let found = f.acc.find_share(b.id, "Docs").unwrap().unwrap();
    assert_eq!((found.id, found.org_id, found.org.as_str()), (theirs.id, b.id, "BETA"));
    f.acc.set_share_encryption(s.id, Some(EncryptionPolicy::Desired)).unwrap();
    assert_eq!(f.acc.share(s.id).unwrap().unwrap().encryption, Some(EncryptionPolicy::Desired));
    assert_eq!(f.acc.share(theirs.id).unwrap().unwrap().encryption, None);
    assert_eq!(f.acc.list_shares(Some(b.id)).unwrap().len(), 1);
    f.acc.remove_share(s.id, Some(&f.prov)).unwrap();
    assert_eq!(f.prov.roots().len(), 1);
    assert!(f.acc.find_share(a.id, "docs").unwrap().is_none());
    assert!(f.acc.find_share(b.id, "docs").unwrap().is_some(), "the other tenant's share is untouched");
}

#[test]
fn effective_access_is_max_of_user_and_groups_and_isolated_per_org() {
    let f = Fixture::new();
    let a = f.org("ACME");
    let b = f.org("BETA");
    let s = share(&f, a.id, "docs");
    let alice = f.user(&a, "alice");
    let carol = f.user(&a, "carol");
    let mallory = f.user(&b, "mallory");
    // Default for members of the owning org; nothing for other orgs.
    assert_eq!(f.acc.effective_access(s.id, alice.id).unwrap(), Access::ReadWrite);
    assert_eq!(f.acc.effective_access(s.id, mallory.id).unwrap(), Access::None);
    // Other orgs' users and groups cannot even be granted.
    let e = f.acc.set_access(s.id, Grantee::User(mallory.id), Access::Admin).unwrap_err();
    assert!(matches!(e, AccountsError::Denied(_)));
    let bg = f.acc.add_group(b.id, "staff").unwrap();
    f.acc.add_group_member(bg.id, mallory.id).unwrap();
    assert!(f.acc.set_access(s.id, Grantee::Group(bg.id), Access::Admin).is_err());
    assert!(f.acc.add_group_member(bg.id, alice.id).is_err(), "cross-org membership");
    assert_eq!(f.acc.effective_access(s.id, mallory.id).unwrap(), Access::None);
    // Explicit entries replace the default; the highest wins.
    f.acc.set_access(s.id, Grantee::User(alice.id), Access::Read).unwrap();
    assert_eq!(f.acc.effective_access(s.id, alice.id).unwrap(), Access::Read);
    assert_eq!(f.acc.effective_access(s.id, carol.id).unwrap(), Access::ReadWrite);
    let g = f.acc.add_group(a.id, "admins").unwrap();
    f.acc.add_group_member(g.id, alice.id).unwrap();
    f.acc.set_access(s.id, Grantee::Group(g.id), Access::Admin).unwrap();
    assert_eq!(f.acc.effective_access(s.id, alice.id).unwrap(), Access::Admin);
    f.acc.remove_group_member(g.id, alice.id).unwrap();
    assert_eq!(f.acc.effective_access(s.id, alice.id).unwrap(), Access::Read);
    f.acc.set_access(s.id, Grantee::User(carol.id), Access::None).unwrap();
    assert_eq!(f.acc.effective_access(s.id, carol.id).unwrap(), Access::None);
    assert!(f.acc.revoke_access(s.id, Grantee::User(carol.id)).unwrap());
    assert_eq!(f.acc.effective_access(s.id, carol.id).unwrap(), Access::ReadWrite);
    f.acc.set_share_default_access(s.id, Access::Read).unwrap();
    assert_eq!(f.acc.effective_access(s.id, carol.id).unwrap(), Access::Read);
    // Disabled users and suspended orgs get nothing.
    f.acc.set_user_enabled(carol.id, false).unwrap();
    assert_eq!(f.acc.effective_access(s.id, carol.id).unwrap(), Access::None);
    f.acc.set_org_suspended(a.id, true).unwrap();
    assert_eq!(f.acc.effective_access(s.id, alice.id).unwrap(), Access::None);
    assert_eq!(f.acc.access_list(s.id).unwrap().len(), 2);
}

#[test]
fn revision_changes_on_every_mutation_even_from_another_connection() {
    let f = Fixture::new();
    let other = f.second();
    let mut last = f.acc.revision().unwrap();
    let mut check = |what: &str| {
        let r = f.acc.revision().unwrap();
        assert!(r > last, "{what} did not bump the revision");
        last = r;
    };
    let a = other.create_org("ACME", &f.prov).unwrap();
    check("create_org");
    let u = other.add_user(a.id, "alice", Role::Member, PW).unwrap();
    check("add_user");
    other.set_password(u.id, "Fresh-Pass-99").unwrap();
    check("set_password");
    other.set_user_enabled(u.id, false).unwrap();
    check("disable");
    other.set_role(u.id, Role::OrgAdmin).unwrap();
    check("set_role");
    other.unlock(u.id).unwrap();
    check("unlock");
    let g = other.add_group(a.id, "staff").unwrap();
    check("add_group");
    other.add_group_member(g.id, u.id).unwrap();
    check("add_group_member");
    let s = other
        .add_share(
            &NewShare {
                org: a.id,
                name: "docs".into(),
                comment: String::new(),
                encryption: None,
                default_access: Access::ReadWrite,
            },
            &f.prov,
        )
        .unwrap();
    check("add_share");
    other.set_access(s.id, Grantee::Group(g.id), Access::Read).unwrap();
    check("set_access");
    other.revoke_access(s.id, Grantee::Group(g.id)).unwrap();
    check("revoke_access");
    other.set_share_default_access(s.id, Access::Read).unwrap();
    check("set_share_default_access");
    other.remove_group_member(g.id, u.id).unwrap();
    check("remove_group_member");
    other.delete_group(g.id).unwrap();
    check("delete_group");
    other.remove_share(s.id, None).unwrap();
    check("remove_share");
    other.set_org_quota(a.id, Some(1)).unwrap();
    check("set_org_quota");
    other.set_org_retention(a.id, Some(Retention::Unlimited)).unwrap();
    check("set_org_retention");
    other.set_org_suspended(a.id, true).unwrap();
    check("suspend");
    other.rename_org(a.id, "ACME2").unwrap();
    check("rename_org");
    other.end_contract(a.id, NaiveDate::from_ymd_opt(2030, 1, 1)).unwrap();
    check("end_contract");
    other.delete_user(u.id).unwrap();
    check("delete_user");
    other.mark_org_erased(a.id).unwrap();
    check("mark_org_erased");
}

#[test]
fn wrong_master_key_is_refused_at_open() {
    let f = Fixture::new();
    let other = MasterKey::from_key(Key32::random());
    let e = Accounts::open(&f.db_path(), &other, &AccountsConfig::default()).err().unwrap();
    assert!(e.to_string().contains("different master key"), "{e}");
}

#[test]
fn bootstrap_creates_org_admin_and_share_once() {
    let f = Fixture::new();
    let cfg = Config::default();
    let g = bootstrap(&f.acc, &f.prov, &cfg).unwrap().unwrap();
    assert_eq!((g.org.as_str(), g.user.as_str(), g.share.as_str()), ("DEFAULT", "admin", "share"));
    assert!(!format!("{g:?}").contains(g.password.as_str()));
    let actor = f.acc.admin_login("DEFAULT\\admin", &g.password, t(0)).unwrap();
    assert!(matches!(actor, crate::accounts::Actor::OrgAdmin { .. }));
    let org = f.acc.find_org("DEFAULT").unwrap().unwrap();
    let s = f.acc.find_share(org.id, "share").unwrap().unwrap();
    let admin = f.acc.resolve_logon("DEFAULT", "admin").unwrap().unwrap();
    assert_eq!(f.acc.effective_access(s.id, admin.user_id).unwrap(), Access::ReadWrite);
    assert!(bootstrap(&f.acc, &f.prov, &cfg).unwrap().is_none());
}

#[test]
fn interrupted_bootstrap_resumes() {
    let f = Fixture::new();
    let cfg = Config::default();
    f.org("DEFAULT");
    let g = bootstrap(&f.acc, &f.prov, &cfg).unwrap().unwrap();
    assert_eq!(g.user, "admin");
    assert!(bootstrap(&f.acc, &f.prov, &cfg).unwrap().is_none());
}
