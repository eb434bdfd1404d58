//! Issue 15 end to end: re-authentication on an established session
//! (MS-SMB2 3.3.5.5.3) with Python smbprotocol against the real binary. A
//! session stays its first user's: re-authenticating as a user of another
//! organization fails and leaves the session's tree and handles working for
//! the original user; an unsigned, unencrypted leg on an encrypted session
//! is refused without closing anything; the same user re-authenticates; a
//! bind naming the session from another tenant's connection, without the
//! session's key, is answered as for a session that does not exist.
//! The `bind_negative_*` answers are measured with smbtorture `smb2.session`
//! (protocol-tests/torture/results.md).

mod common;

use common::*;

#[test]
fn reauthentication_keeps_the_session_to_its_user() {
    // The default policy: encryption and signing required.
    let s = TestServer::start();
    s.add_user("DEFAULT\\alice", PASS);
    s.admin(&["org", "add", "BETA"]);
    s.add_user("BETA\\mallory", PASS);
    let port = s.port.to_string();
    let o = python("reauth.py", &["127.0.0.1", &port, "share", "DEFAULT\\alice", PASS, "BETA\\mallory", PASS]);
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    for line in [
        "OK an unsigned bind naming the session is answered as for no session",
        "OK re-authentication as BETA\\mallory refused",
        "OK an unsigned, unencrypted re-authentication leg is refused",
        "OK re-authentication as DEFAULT\\alice succeeded",
    ] {
        assert!(out.contains(line), "missing {line:?} in:\n{out}");
    }
    let log = std::fs::read_to_string(&s.log).unwrap_or_default();
    assert!(log.contains("re-authentication as another user refused"), "server log:\n{log}");
}
