//! `SecurityDescriptor::parse` (MS-DTYP 2.4.6) on hostile bytes, the way a
//! CREATE SD context or a SET_INFO(SECURITY) hands them in: whatever parses
//! must re-encode to bytes that parse to the same descriptor, and the access
//! check, SET_INFO merge and inheritance run on it without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use smbvault::engine::acl;
use smbvault::engine::fsa::sd;
use smbvault::engine::fsa::sid::Token;
use smbvault::types::{OrgId, UserId};
use smbvault::wire::dtyp::{SecurityDescriptor, control};

/// OWNER | GROUP | DACL | SACL (MS-DTYP 2.4.7).
const ALL: u32 = 0x0f;

fuzz_target!(|data: &[u8]| {
    // First byte: SET_INFO's AdditionalInformation and the directory flag;
    // the rest is the descriptor.
    let Some((&sel, bytes)) = data.split_first() else { return };
    let Ok(sd) = SecurityDescriptor::parse(bytes) else { return };

    // Round trip: encode(all parts) parses back to the same descriptor
    // (the encoder always sets SE_SELF_RELATIVE), and encoding is stable.
    let enc = sd.encode(ALL);
    let back = SecurityDescriptor::parse(&enc).expect("our own encoding must parse");
    let mut want = sd.clone();
    want.control |= control::SELF_RELATIVE;
    assert_eq!(back, want, "round trip changed the descriptor");
    assert_eq!(back.encode(ALL), enc, "encoding is not stable");
    // Partial encodings (QUERY_INFO with fewer parts) parse too.
    let secinfo = u32::from(sel & 0x0f);
    SecurityDescriptor::parse(&sd.encode(secinfo)).expect("a partial encoding must parse");

    // What the engine does with a client's descriptor.
    let org = OrgId(1 + u64::from(sel >> 6));
    let token = Token::for_user(org, UserId(7), &[3], sel & 0x10 != 0).expect("token");
    let _ = sd.max_allowed(&token);
    let is_dir = sel & 0x20 != 0;
    let mut set = sd.clone();
    acl::prepare_for_set(&mut set);
    let mut stored = acl::default_sd(org, is_dir, false);
    if stored.apply(&set, secinfo, &token).is_ok() {
        let _ = stored.max_allowed(&token);
        SecurityDescriptor::parse(&stored.encode(ALL)).expect("a merged descriptor must encode");
    }
    // Inheritance: the descriptor as a parent's.
    let child = acl::for_new(&sd, &token, org, is_dir);
    let _ = child.max_allowed(&token);
    SecurityDescriptor::parse(&child.encode(ALL)).expect("an inherited descriptor must encode");
    let grand = sd::inherit(Some(&child), &token.user, &token.groups[0], !is_dir);
    let _ = grand.max_allowed(&token);
});
