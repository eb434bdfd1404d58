//! SIDs, security descriptors, the access check and inheritance
//! (MS-DTYP 2.4.2, 2.4.6, 2.5.3.2, 2.5.3.4).

use proptest::prelude::*;

use crate::engine::fsa::access::*;
use crate::engine::fsa::sd::*;
use crate::engine::fsa::sid::*;
use crate::types::{OrgId, UserId};
use crate::wire::NtStatus;
use crate::wire::dtyp::*;

const ORG: OrgId = OrgId(0x1_0000_0007);

fn alice() -> Token {
    Token::for_user(ORG, UserId(5), &[3], false).expect("fits")
}

fn dacl(aces: Vec<Ace>) -> SecurityDescriptor {
    SecurityDescriptor {
        control: control::DACL_PRESENT,
        owner: Some(Sid::user(ORG, UserId(99)).expect("fits")),
        group: None,
        dacl: Some(Acl { revision: 2, aces }),
        sacl: None,
    }
}

#[test]
fn sid_text_and_binary() {
    let s = Sid::user(ORG, UserId(5)).expect("fits");
    assert_eq!(s.to_string(), "S-1-5-21-1397572182-1-7-1005");
    let mut b = Vec::new();
    s.encode(&mut b);
    assert_eq!(b.len(), s.encoded_len());
    assert_eq!(&b[..8], &[1, 5, 0, 0, 0, 0, 0, 5]);
    assert_eq!(Sid::parse(&b), Ok((s.clone(), 28)));
    let g = Sid::group(ORG, 3).expect("fits");
    assert_eq!(g.to_string(), "S-1-5-21-1397572182-1-7-1073741827");
    assert_eq!(Sid::org_member(ORG, RID_ORG_USERS).to_string(), "S-1-5-21-1397572182-1-7-513");
    assert_eq!(Sid::everyone().to_string(), "S-1-1-0");
    assert!(Sid::user(ORG, UserId(u64::from(RID_GROUP_BASE))).is_none());
    assert_eq!(Sid::parse(&b[..20]), Err(NtStatus::INVALID_SID));
    assert_eq!(Sid::parse(&[2, 0, 0, 0, 0, 0, 0, 0]), Err(NtStatus::INVALID_SID));
}

#[test]
fn token_contents() {
    let t = alice();
    assert!(t.has(&Sid::everyone()));
    assert!(t.has(&Sid::authenticated_users()));
    assert!(t.has(&Sid::org_member(ORG, RID_ORG_USERS)));
    assert!(t.has(&Sid::group(ORG, 3).expect("fits")));
    assert!(!t.has(&Sid::org_member(ORG, RID_ORG_ADMINS)));
    let admin = Token::for_user(ORG, UserId(5), &[], true).expect("fits");
    assert!(admin.has(&Sid::org_member(ORG, RID_ORG_ADMINS)));
}

/// The descriptor smb2.maximum_allowed creates: one ACE, Authenticated
/// Users FILE_GENERIC_READ, written byte by byte.
#[test]
fn parse_hand_built_descriptor() {
    let bytes: Vec<u8> = vec![
        1, 0, 0x04, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x14, 0, 0, 0, // header
        2, 0, 0x1c, 0, 1, 0, 0, 0, // ACL
        0, 0, 0x14, 0, 0x89, 0, 0x12, 0, // ACE header + mask
        1, 1, 0, 0, 0, 0, 0, 5, 11, 0, 0, 0, // S-1-5-11
    ];
    let sd = SecurityDescriptor::parse(&bytes).expect("valid");
    assert_eq!(sd.owner, None);
    let acl = sd.dacl.as_ref().expect("dacl");
    assert_eq!(acl.aces, vec![Ace::allow(Sid::authenticated_users(), FILE_GENERIC_READ, 0)]);
    assert_eq!(sd.max_allowed(&alice()), FILE_GENERIC_READ);
    assert_eq!(sd.encode(DACL_SECURITY_INFORMATION), bytes);
}

#[test]
fn access_check_order_and_owner() {
    let me = Sid::user(ORG, UserId(5)).expect("fits");
    // Deny before allow wins, allow before deny wins.
    let sd = dacl(vec![Ace::deny(me.clone(), FILE_WRITE_DATA, 0), Ace::allow(Sid::everyone(), FILE_ALL_ACCESS, 0)]);
    assert_eq!(sd.max_allowed(&alice()), FILE_ALL_ACCESS & !FILE_WRITE_DATA);
    let sd = dacl(vec![Ace::allow(Sid::everyone(), FILE_ALL_ACCESS, 0), Ace::deny(me.clone(), FILE_WRITE_DATA, 0)]);
    assert_eq!(sd.max_allowed(&alice()), FILE_ALL_ACCESS);
    // Inherit-only ACEs do not apply; generic masks are mapped.
    let sd = dacl(vec![
        Ace::allow(me.clone(), FILE_ALL_ACCESS, ace_flags::INHERIT_ONLY | ace_flags::OBJECT_INHERIT),
        Ace::allow(me.clone(), GENERIC_READ, 0),
    ]);
    assert_eq!(sd.max_allowed(&alice()), FILE_GENERIC_READ);
    // Someone else's ACE does nothing; an empty DACL grants nothing.
    let other = Sid::user(ORG, UserId(6)).expect("fits");
    assert_eq!(dacl(vec![Ace::allow(other, FILE_ALL_ACCESS, 0)]).max_allowed(&alice()), 0);
    // The owner may always read and change the DACL ...
    let mut owned = dacl(vec![]);
    owned.owner = Some(me.clone());
    assert_eq!(owned.max_allowed(&alice()), READ_CONTROL | WRITE_DAC);
    // ... unless an OWNER RIGHTS ACE says otherwise, or a deny comes first.
    owned.dacl = Some(Acl { revision: 2, aces: vec![Ace::allow(Sid::owner_rights(), READ_CONTROL, 0)] });
    assert_eq!(owned.max_allowed(&alice()), READ_CONTROL);
    owned.dacl = Some(Acl { revision: 2, aces: vec![Ace::deny(me, WRITE_DAC, 0)] });
    assert_eq!(owned.max_allowed(&alice()), READ_CONTROL);
    // A NULL DACL grants everything.
    let null = SecurityDescriptor { control: control::DACL_PRESENT, ..Default::default() };
    assert_eq!(null.max_allowed(&alice()), FILE_ALL_ACCESS);
}

#[test]
fn inheritance_from_share_root() {
    let root = share_root(ORG);
    let me = Sid::user(ORG, UserId(5)).expect("fits");
    let grp = Sid::org_member(ORG, RID_ORG_USERS);
    assert_eq!(root.max_allowed(&alice()), FILE_ALL_ACCESS);
    let file = inherit(Some(&root), &me, &grp, false);
    assert_eq!(file.owner.as_ref(), Some(&me));
    let aces = &file.dacl.as_ref().expect("dacl").aces;
    assert_eq!(aces.len(), 4, "three OI|CI ACEs and CREATOR OWNER as the owner");
    assert!(aces.iter().all(|a| a.flags() == ace_flags::INHERITED));
    assert!(aces.contains(&Ace::allow(me.clone(), FILE_ALL_ACCESS, ace_flags::INHERITED)));
    assert_eq!(file.max_allowed(&alice()), FILE_ALL_ACCESS);
    let dir = inherit(Some(&root), &me, &grp, true);
    let daces = &dir.dacl.as_ref().expect("dacl").aces;
    assert_eq!(daces.len(), 5, "CREATOR OWNER splits into effective + template");
    assert!(daces.contains(&Ace::allow(
        Sid::creator_owner(),
        FILE_ALL_ACCESS,
        ace_flags::INHERITED | ace_flags::INHERIT_ONLY | ace_flags::OBJECT_INHERIT | ace_flags::CONTAINER_INHERIT
    )));
    // A grandchild file still gets everything.
    let child = inherit(Some(&dir), &me, &grp, false);
    assert_eq!(child.dacl.as_ref().expect("dacl").aces.len(), 4);
    // Nothing inheritable: owner and SYSTEM only.
    let plain = inherit(None, &me, &grp, false);
    assert_eq!(plain.max_allowed(&alice()), FILE_ALL_ACCESS);
    let bob = Token::for_user(ORG, UserId(6), &[], false).expect("fits");
    assert_eq!(plain.max_allowed(&bob), 0);
}

#[test]
fn set_security_rules() {
    let me = Sid::user(ORG, UserId(5)).expect("fits");
    let mut sd = inherit(None, &me, &Sid::org_member(ORG, RID_ORG_USERS), false);
    let new = dacl(vec![Ace::allow(Sid::everyone(), FILE_GENERIC_READ, 0)]);
    sd.apply(&new, DACL_SECURITY_INFORMATION, &alice()).expect("dacl");
    assert_eq!(sd.dacl, new.dacl);
    assert_eq!(sd.owner.as_ref(), Some(&me), "owner untouched");
    // Taking ownership for someone else needs a privilege we never grant.
    assert_eq!(sd.apply(&new, OWNER_SECURITY_INFORMATION, &alice()), Err(INVALID_OWNER));
    let to_group = SecurityDescriptor { owner: Some(Sid::group(ORG, 3).expect("fits")), ..Default::default() };
    assert_eq!(sd.apply(&to_group, OWNER_SECURITY_INFORMATION, &alice()), Ok(()));
    // QUERY_INFO returns only the requested parts.
    let owner_only = SecurityDescriptor::parse(&sd.encode(OWNER_SECURITY_INFORMATION)).expect("valid");
    assert_eq!(owner_only.dacl, None);
    assert_eq!(owner_only.owner, to_group.owner);
}

#[test]
fn rejects_bad_offsets() {
    let good = share_root(ORG).encode(0x0F);
    assert!(SecurityDescriptor::parse(&good).is_ok());
    for cut in [0, 10, 19, 30, good.len() - 1] {
        assert!(SecurityDescriptor::parse(&good[..cut]).is_err(), "cut at {cut}");
    }
    let mut bad = good.clone();
    bad[16] = 0xF0; // DACL offset beyond the end
    assert!(SecurityDescriptor::parse(&bad).is_err());
    let mut bad = good.clone();
    bad[16] = 3; // DACL offset inside the header
    bad[17..20].fill(0);
    assert!(SecurityDescriptor::parse(&bad).is_err());
}

fn sid_strategy() -> impl Strategy<Value = Sid> {
    (0u64..6, proptest::collection::vec(any::<u32>(), 0..6)).prop_map(|(a, s)| Sid::new(a, &s).expect("small"))
}

fn ace_strategy() -> impl Strategy<Value = Ace> {
    prop_oneof![
        (any::<bool>(), any::<u8>(), any::<u32>(), sid_strategy())
            .prop_map(|(allow, f, m, s)| { if allow { Ace::allow(s, m, f) } else { Ace::deny(s, m, f) } }),
        (5u8..20, any::<u8>(), proptest::collection::vec(any::<u8>(), 0..24)).prop_map(|(t, f, body)| Ace::Other {
            ace_type: t,
            flags: f,
            body
        }),
    ]
}

proptest! {
    #[test]
    fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = SecurityDescriptor::parse(&bytes);
        let _ = Acl::parse(&bytes);
        let _ = Sid::parse(&bytes);
    }

    #[test]
    fn encode_parse_round_trip(
        owner in proptest::option::of(sid_strategy()),
        group in proptest::option::of(sid_strategy()),
        aces in proptest::collection::vec(ace_strategy(), 0..8),
    ) {
        let sd = SecurityDescriptor {
            control: control::DACL_PRESENT,
            owner,
            group,
            dacl: Some(Acl { revision: 2, aces }),
            sacl: None,
        };
        let bytes = sd.encode(0x0F);
        let back = SecurityDescriptor::parse(&bytes).expect("own encoding parses");
        prop_assert_eq!(back.owner, sd.owner);
        prop_assert_eq!(back.group, sd.group);
        prop_assert_eq!(back.dacl, sd.dacl);
    }
}
