use std::collections::BTreeMap;

use rusqlite::Connection;
use zeroize::Zeroizing;

use super::*;

struct Dir {
    _d: tempfile::TempDir,
    slots: PathBuf,
    keys_db: PathBuf,
    kf: Unlock,
}

/// A data directory with a master key and one organization key in keys.db.
fn setup() -> (Dir, MasterKey, Key32) {
    let d = tempfile::tempdir().unwrap();
    let slots = d.path().join("keys/master.slots");
    let kf = Unlock::KeyFile(d.path().join("master.key"));
    let (mk, _) = MasterKey::open_or_create(&slots, &kf).unwrap();
    let keys_db = d.path().join("keys.db");
    let c = Connection::open(&keys_db).unwrap();
    c.execute_batch("CREATE TABLE org_keys(org INTEGER PRIMARY KEY, wrapped BLOB NOT NULL);").unwrap();
    let org = Key32::random();
    let w = SealKey::new(&mk.derive(crate::storage::ORG_WRAP_LABEL)).wrap_key(&crate::storage::org_key_ad(7), &org);
    c.execute("INSERT INTO org_keys VALUES(7, ?1)", [w]).unwrap();
    (Dir { _d: d, slots, keys_db, kf }, mk, org)
}

fn org_key(keys_db: &Path, mk: &MasterKey) -> Result<Key32, KeyError> {
    let c = Connection::open(keys_db).unwrap();
    let w: Vec<u8> = c.query_row("SELECT wrapped FROM org_keys WHERE org=7", [], |r| r.get(0)).unwrap();
    SealKey::new(&mk.derive(crate::storage::ORG_WRAP_LABEL)).unwrap_key(&crate::storage::org_key_ad(7), &w)
}

fn kept_of(mk: &MasterKey) -> BTreeMap<&'static str, [u8; 32]> {
    KEPT_LABELS.iter().map(|l| (*l, *mk.derive(l).expose())).collect()
}

#[test]
fn rotation_keeps_purpose_keys_and_org_keys_and_drops_the_old_key() {
    let (d, old, org) = setup();
    let before = kept_of(&old);
    let r = rotate(&d.slots, &d.keys_db, &old, std::slice::from_ref(&d.kf)).unwrap();
    assert!(r.first && r.slots == 1 && r.org_keys == 1);
    assert!(!pending_path(&d.slots).exists());
    let new = load_kept(&MasterKey::open(&d.slots, &d.kf).unwrap(), &d.keys_db, false).unwrap();
    assert_ne!(new.key().expose(), old.key().expose());
    assert_ne!(new.key_id(), old.key_id());
    assert_eq!(new.key().expose(), r.key.key().expose());
    assert_eq!(kept_of(&new), before, "audit, manifest, NT-hash and anchor keys unchanged");
    assert_eq!(org_key(&d.keys_db, &new).unwrap().expose(), org.expose());
    assert!(org_key(&d.keys_db, &old).is_err(), "no longer wrapped under the old key");
    // The old key opens nothing here any more.
    assert!(load_kept(&old, &d.keys_db, false).is_err());
    assert!(!belongs_to(&d.keys_db, &old, false).unwrap());
    assert!(belongs_to(&d.keys_db, &new, false).unwrap());
    // A second rotation re-wraps the kept keys.
    let r2 = rotate(&d.slots, &d.keys_db, &new, std::slice::from_ref(&d.kf)).unwrap();
    assert!(!r2.first);
    let third = load_kept(&MasterKey::open(&d.slots, &d.kf).unwrap(), &d.keys_db, false).unwrap();
    assert_eq!(kept_of(&third), before);
    assert_eq!(org_key(&d.keys_db, &third).unwrap().expose(), org.expose());
}

#[test]
fn a_passphrase_slot_must_be_opened_to_rotate() {
    let (d, old, _) = setup();
    let pp = Unlock::Passphrase(Zeroizing::new("a long enough passphrase".into()));
    old.add_slot(&d.slots, &pp).unwrap();
    let before = std::fs::read(&d.slots).unwrap();
    let e = rotate(&d.slots, &d.keys_db, &old, std::slice::from_ref(&d.kf)).unwrap_err();
    assert!(e.to_string().contains("remove-passphrase"), "{e}");
    assert_eq!(std::fs::read(&d.slots).unwrap(), before, "nothing changed");
    assert!(!pending_path(&d.slots).exists());
    assert!(org_key(&d.keys_db, &old).is_ok());
    let r = rotate(&d.slots, &d.keys_db, &old, &[d.kf.clone(), pp.clone()]).unwrap();
    assert_eq!(r.slots, 2);
    assert_eq!(MasterKey::open(&d.slots, &pp).unwrap().key().expose(), r.key.key().expose());
}

#[test]
fn an_interrupted_rotation_leaves_one_working_key() {
    // Killed before keys.db committed: the old key stays.
    let (d, old, org) = setup();
    let pending = pending_path(&d.slots);
    old.write_rotated_slots(&d.slots, &Key32::random(), std::slice::from_ref(&d.kf), &pending).unwrap();
    assert!(finish_pending(&d.slots, &d.keys_db, &d.kf).unwrap().unwrap().starts_with("undid"));
    assert!(!pending.exists());
    let mk = load_kept(&MasterKey::open(&d.slots, &d.kf).unwrap(), &d.keys_db, false).unwrap();
    assert_eq!(mk.key().expose(), old.key().expose());
    assert_eq!(org_key(&d.keys_db, &mk).unwrap().expose(), org.expose());
    // Killed after keys.db committed, before the rename: the new key wins.
    let new = Key32::random();
    old.write_rotated_slots(&d.slots, &new, std::slice::from_ref(&d.kf), &pending).unwrap();
    rewrap_keys_db(&d.keys_db, &old, &new).unwrap();
    assert!(MasterKey::open(&d.slots, &d.kf).unwrap().key().expose() == old.key().expose());
    assert!(finish_pending(&d.slots, &d.keys_db, &d.kf).unwrap().unwrap().starts_with("completed"));
    let mk = load_kept(&MasterKey::open(&d.slots, &d.kf).unwrap(), &d.keys_db, false).unwrap();
    assert_eq!(mk.key().expose(), new.expose());
    assert_eq!(org_key(&d.keys_db, &mk).unwrap().expose(), org.expose());
    assert_eq!(finish_pending(&d.slots, &d.keys_db, &d.kf).unwrap(), None);
}

#[test]
fn nt_hash_label_is_kept() {
    assert!(KEPT_LABELS.contains(&crate::accounts::NT_HASH_LABEL));
}
