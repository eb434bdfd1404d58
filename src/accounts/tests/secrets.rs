//! No password or NT hash in clear in the database files, and none in Debug output.

use super::{Fixture, PW};
use crate::accounts::{Role, password};

fn find(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

fn utf16(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(u16::to_le_bytes).collect()
}

#[test]
fn database_files_hold_no_password_or_unsealed_nt_hash() {
    let f = Fixture::new();
    let a = f.org("ACME");
    let pws = ["Sekrit-Passw0rd-One", "Zweites-Geheimnis-22", "パスワードSecret9"];
    let mut users = Vec::new();
    for (i, pw) in pws.iter().enumerate() {
        users.push(f.acc.add_user(a.id, &format!("user{i}"), Role::Member, pw).unwrap());
    }
    // A reset leaves the old hash in freed pages unless secure_delete works.
    f.acc.set_password(users[0].id, "Replaced-Passw0rd-X").unwrap();
    let all = [pws[0], pws[1], pws[2], "Replaced-Passw0rd-X", PW];

    let mut files = Vec::new();
    for ext in ["", "-wal", "-shm"] {
        let p = f.dir.path().join(format!("accounts.db{ext}"));
        if let Ok(b) = std::fs::read(&p) {
            files.push((p, b));
        }
    }
    assert!(files.iter().any(|(p, _)| p.to_string_lossy().ends_with("-wal")), "WAL mode");
    for (path, bytes) in &files {
        for pw in all {
            let nt = password::nt_hash(pw);
            let hex_lower = hex::encode(*nt);
            let hex_upper = hex_lower.to_uppercase();
            let what = path.display();
            assert!(!find(bytes, pw.as_bytes()), "{what}: password in clear");
            assert!(!find(bytes, &utf16(pw)), "{what}: password in UTF-16");
            assert!(!find(bytes, &nt[..]), "{what}: raw NT hash");
            assert!(!find(bytes, hex_lower.as_bytes()), "{what}: hex NT hash");
            assert!(!find(bytes, hex_upper.as_bytes()), "{what}: HEX NT hash");
        }
    }
}

#[test]
fn debug_output_hides_secrets() {
    let f = Fixture::new();
    let a = f.org("ACME");
    f.user(&a, "alice");
    let c = f.acc.resolve_logon("ACME", "alice").unwrap().unwrap();
    let dbg = format!("{c:?}");
    assert!(!dbg.contains(&hex::encode(*c.nt_hash)));
    assert!(!dbg.contains(&format!("{:?}", &c.nt_hash[..4])));
}

#[test]
fn sealed_hash_is_bound_to_its_user_row() {
    let f = Fixture::new();
    let a = f.org("ACME");
    let u1 = f.user(&a, "alice");
    let u2 = f.user(&a, "bob");
    // Copy alice's sealed hash onto bob's row: it must not open for bob.
    let conn = rusqlite::Connection::open(f.db_path()).unwrap();
    conn.execute(
        "UPDATE users SET nt_sealed = (SELECT nt_sealed FROM users WHERE id = ?1) WHERE id = ?2",
        [u1.id.0, u2.id.0],
    )
    .unwrap();
    assert!(f.acc.resolve_logon("ACME", "bob").is_err());
    assert!(f.acc.resolve_logon("ACME", "alice").unwrap().is_some());
}
