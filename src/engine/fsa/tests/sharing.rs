//! Share modes and delete-on-close against smbtorture `smb2.sharemode`,
//! `smb2.deny` and `smb2.delete-on-close-perms`.

use crate::engine::fsa::OpenId;
use crate::engine::fsa::access::*;
use crate::engine::fsa::sharing::*;
use crate::wire::NtStatus;

fn share(s: &str) -> u32 {
    s.chars()
        .map(|c| match c {
            'R' => FILE_SHARE_READ,
            'W' => FILE_SHARE_WRITE,
            'D' => FILE_SHARE_DELETE,
            _ => 0,
        })
        .fold(0, |a, b| a | b)
}

const ALL: u32 = FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE;

fn entry(open: u64, access: u32, share: u32) -> ShareEntry {
    ShareEntry { open: OpenId(open), access, share, delete_on_close: false }
}

/// smbtorture `sharemode_table` (source4/torture/smb2/sharemode.c):
/// (share mode of one open, access mask of the other, expect success).
const SHAREMODE_TABLE: &[(&str, u32, bool)] = &[
    ("R", FILE_READ_DATA, true),
    ("R", FILE_WRITE_DATA, false),
    ("R", FILE_APPEND_DATA, false),
    ("R", FILE_READ_EA, true),
    ("R", FILE_WRITE_EA, true),
    ("R", FILE_EXECUTE, true),
    ("R", FILE_READ_ATTRIBUTES, true),
    ("R", FILE_WRITE_ATTRIBUTES, true),
    ("R", DELETE, false),
    ("R", READ_CONTROL, true),
    ("R", WRITE_DAC, true),
    ("R", WRITE_OWNER, true),
    ("R", SYNCHRONIZE, true),
    ("W", FILE_READ_DATA, false),
    ("W", FILE_WRITE_DATA, true),
    ("W", FILE_APPEND_DATA, true),
    ("W", FILE_READ_EA, true),
    ("W", FILE_WRITE_EA, true),
    ("W", FILE_EXECUTE, false),
    ("W", FILE_READ_ATTRIBUTES, true),
    ("W", FILE_WRITE_ATTRIBUTES, true),
    ("W", DELETE, false),
    ("W", READ_CONTROL, true),
    ("W", WRITE_DAC, true),
    ("W", WRITE_OWNER, true),
    ("W", SYNCHRONIZE, true),
    ("D", FILE_READ_DATA, false),
    ("D", FILE_WRITE_DATA, false),
    ("D", FILE_APPEND_DATA, false),
    ("D", FILE_READ_EA, true),
    ("D", FILE_WRITE_EA, true),
    ("D", FILE_EXECUTE, false),
    ("D", FILE_READ_ATTRIBUTES, true),
    ("D", FILE_WRITE_ATTRIBUTES, true),
    ("D", DELETE, true),
    ("D", READ_CONTROL, true),
    ("D", WRITE_DAC, true),
    ("D", WRITE_OWNER, true),
    ("D", SYNCHRONIZE, true),
    ("RW", FILE_READ_DATA, true),
    ("RW", FILE_WRITE_DATA, true),
    ("RW", FILE_APPEND_DATA, true),
    ("RW", FILE_READ_EA, true),
    ("RW", FILE_WRITE_EA, true),
    ("RW", FILE_EXECUTE, true),
    ("RW", FILE_READ_ATTRIBUTES, true),
    ("RW", FILE_WRITE_ATTRIBUTES, true),
    ("RW", DELETE, false),
    ("RW", READ_CONTROL, true),
    ("RW", WRITE_DAC, true),
    ("RW", WRITE_OWNER, true),
    ("RW", SYNCHRONIZE, true),
    ("RD", FILE_READ_DATA, true),
    ("RD", FILE_WRITE_DATA, false),
    ("RD", FILE_APPEND_DATA, false),
    ("RD", FILE_READ_EA, true),
    ("RD", FILE_WRITE_EA, true),
    ("RD", FILE_EXECUTE, true),
    ("RD", FILE_READ_ATTRIBUTES, true),
    ("RD", FILE_WRITE_ATTRIBUTES, true),
    ("RD", DELETE, true),
    ("RD", READ_CONTROL, true),
    ("RD", WRITE_DAC, true),
    ("RD", WRITE_OWNER, true),
    ("RD", SYNCHRONIZE, true),
    ("WD", FILE_READ_DATA, false),
    ("WD", FILE_WRITE_DATA, true),
    ("WD", FILE_APPEND_DATA, true),
    ("WD", FILE_READ_EA, true),
    ("WD", FILE_WRITE_EA, true),
    ("WD", FILE_EXECUTE, false),
    ("WD", FILE_READ_ATTRIBUTES, true),
    ("WD", FILE_WRITE_ATTRIBUTES, true),
    ("WD", DELETE, true),
    ("WD", READ_CONTROL, true),
    ("WD", WRITE_DAC, true),
    ("WD", WRITE_OWNER, true),
    ("WD", SYNCHRONIZE, true),
    ("RWD", FILE_READ_DATA, true),
    ("RWD", FILE_WRITE_DATA, true),
    ("RWD", FILE_APPEND_DATA, true),
    ("RWD", FILE_READ_EA, true),
    ("RWD", FILE_WRITE_EA, true),
    ("RWD", FILE_EXECUTE, true),
    ("RWD", FILE_READ_ATTRIBUTES, true),
    ("RWD", FILE_WRITE_ATTRIBUTES, true),
    ("RWD", DELETE, true),
    ("RWD", READ_CONTROL, true),
    ("RWD", WRITE_DAC, true),
    ("RWD", WRITE_OWNER, true),
    ("RWD", SYNCHRONIZE, true),
    ("R", FILE_READ_DATA, true),
    ("R", FILE_READ_DATA | FILE_WRITE_DATA, false),
    ("R", FILE_READ_DATA | FILE_APPEND_DATA, false),
    ("R", FILE_READ_DATA | FILE_READ_EA, true),
    ("R", FILE_READ_DATA | FILE_WRITE_EA, true),
    ("R", FILE_READ_DATA | FILE_EXECUTE, true),
    ("R", FILE_READ_DATA | FILE_READ_ATTRIBUTES, true),
    ("R", FILE_READ_DATA | FILE_WRITE_ATTRIBUTES, true),
    ("R", FILE_READ_DATA | DELETE, false),
    ("R", FILE_READ_DATA | READ_CONTROL, true),
    ("R", FILE_READ_DATA | WRITE_DAC, true),
    ("R", FILE_READ_DATA | WRITE_OWNER, true),
    ("R", FILE_READ_DATA | SYNCHRONIZE, true),
    ("W", FILE_WRITE_DATA | FILE_READ_DATA, false),
    ("W", FILE_WRITE_DATA, true),
    ("W", FILE_WRITE_DATA | FILE_APPEND_DATA, true),
    ("W", FILE_WRITE_DATA | FILE_READ_EA, true),
    ("W", FILE_WRITE_DATA | FILE_WRITE_EA, true),
    ("W", FILE_WRITE_DATA | FILE_EXECUTE, false),
    ("W", FILE_WRITE_DATA | FILE_READ_ATTRIBUTES, true),
    ("W", FILE_WRITE_DATA | FILE_WRITE_ATTRIBUTES, true),
    ("W", FILE_WRITE_DATA | DELETE, false),
    ("W", FILE_WRITE_DATA | READ_CONTROL, true),
    ("W", FILE_WRITE_DATA | WRITE_DAC, true),
    ("W", FILE_WRITE_DATA | WRITE_OWNER, true),
    ("W", FILE_WRITE_DATA | SYNCHRONIZE, true),
    ("RW", FILE_READ_DATA, true),
    ("RW", FILE_READ_DATA | FILE_WRITE_DATA, true),
    ("RW", FILE_READ_DATA | FILE_APPEND_DATA, true),
    ("RW", FILE_READ_DATA | FILE_READ_EA, true),
    ("RW", FILE_READ_DATA | FILE_WRITE_EA, true),
    ("RW", FILE_READ_DATA | FILE_EXECUTE, true),
    ("RW", FILE_READ_DATA | FILE_READ_ATTRIBUTES, true),
    ("RW", FILE_READ_DATA | FILE_WRITE_ATTRIBUTES, true),
    ("RW", FILE_READ_DATA | DELETE, false),
    ("RW", FILE_READ_DATA | READ_CONTROL, true),
    ("RW", FILE_READ_DATA | WRITE_DAC, true),
    ("RW", FILE_READ_DATA | WRITE_OWNER, true),
    ("RW", FILE_READ_DATA | SYNCHRONIZE, true),
    ("RD", FILE_READ_DATA, true),
    ("RD", FILE_READ_DATA | FILE_WRITE_DATA, false),
    ("RD", FILE_READ_DATA | FILE_APPEND_DATA, false),
    ("RD", FILE_READ_DATA | FILE_READ_EA, true),
    ("RD", FILE_READ_DATA | FILE_WRITE_EA, true),
    ("RD", FILE_READ_DATA | FILE_EXECUTE, true),
    ("RD", FILE_READ_DATA | FILE_READ_ATTRIBUTES, true),
    ("RD", FILE_READ_DATA | FILE_WRITE_ATTRIBUTES, true),
    ("RD", FILE_READ_DATA | DELETE, true),
    ("RD", FILE_READ_DATA | READ_CONTROL, true),
    ("RD", FILE_READ_DATA | WRITE_DAC, true),
    ("RD", FILE_READ_DATA | WRITE_OWNER, true),
    ("RD", FILE_READ_DATA | SYNCHRONIZE, true),
    ("WD", FILE_WRITE_DATA | FILE_READ_DATA, false),
    ("WD", FILE_WRITE_DATA, true),
    ("WD", FILE_WRITE_DATA | FILE_APPEND_DATA, true),
    ("WD", FILE_WRITE_DATA | FILE_READ_EA, true),
    ("WD", FILE_WRITE_DATA | FILE_WRITE_EA, true),
    ("WD", FILE_WRITE_DATA | FILE_EXECUTE, false),
    ("WD", FILE_WRITE_DATA | FILE_READ_ATTRIBUTES, true),
    ("WD", FILE_WRITE_DATA | FILE_WRITE_ATTRIBUTES, true),
    ("WD", FILE_WRITE_DATA | DELETE, true),
    ("WD", FILE_WRITE_DATA | READ_CONTROL, true),
    ("WD", FILE_WRITE_DATA | WRITE_DAC, true),
    ("WD", FILE_WRITE_DATA | WRITE_OWNER, true),
    ("WD", FILE_WRITE_DATA | SYNCHRONIZE, true),
    ("RWD", FILE_READ_DATA, true),
    ("RWD", FILE_READ_DATA | FILE_WRITE_DATA, true),
    ("RWD", FILE_READ_DATA | FILE_APPEND_DATA, true),
    ("RWD", FILE_READ_DATA | FILE_READ_EA, true),
    ("RWD", FILE_READ_DATA | FILE_WRITE_EA, true),
    ("RWD", FILE_READ_DATA | FILE_EXECUTE, true),
    ("RWD", FILE_READ_DATA | FILE_READ_ATTRIBUTES, true),
    ("RWD", FILE_READ_DATA | FILE_WRITE_ATTRIBUTES, true),
    ("RWD", FILE_READ_DATA | DELETE, true),
    ("RWD", FILE_READ_DATA | READ_CONTROL, true),
    ("RWD", FILE_READ_DATA | WRITE_DAC, true),
    ("RWD", FILE_READ_DATA | WRITE_OWNER, true),
    ("RWD", FILE_READ_DATA | SYNCHRONIZE, true),
];

/// smb2.sharemode.sharemode-access: first open FILE_ALL_ACCESS with the
/// share mode, second open the access mask sharing everything.
#[test]
fn sharemode_access() {
    for &(sm, access, ok) in SHAREMODE_TABLE {
        let mut s = ShareModes::new();
        s.insert(entry(1, FILE_ALL_ACCESS, share(sm)));
        let want = if ok { Ok(()) } else { Err(NtStatus::SHARING_VIOLATION) };
        assert_eq!(s.check(access, ALL), want, "share {sm} access {access:#x}");
    }
}

/// smb2.sharemode.access-sharemode: the same table the other way round.
#[test]
fn access_sharemode() {
    for &(sm, access, ok) in SHAREMODE_TABLE {
        let mut s = ShareModes::new();
        s.insert(entry(1, access, ALL));
        let want = if ok { Ok(()) } else { Err(NtStatus::SHARING_VIOLATION) };
        assert_eq!(s.check(FILE_ALL_ACCESS, share(sm)), want, "access {access:#x} share {sm}");
    }
}

/// smb2.sharemode.bug14375: a stat open sharing nothing blocks nobody, and
/// a stat open is never blocked.
#[test]
fn stat_open_share_none() {
    let mut s = ShareModes::new();
    s.insert(entry(1, FILE_READ_ATTRIBUTES, 0));
    assert_eq!(s.check(FILE_READ_DATA, ALL), Ok(()));
    s.insert(entry(2, FILE_READ_DATA, ALL));
    assert_eq!(s.check(FILE_READ_DATA, ALL), Ok(()));
    let mut s = ShareModes::new();
    s.insert(entry(1, FILE_READ_DATA, ALL));
    assert_eq!(s.check(FILE_READ_ATTRIBUTES, 0), Ok(()));
    s.insert(entry(2, FILE_READ_ATTRIBUTES, 0));
    assert_eq!(s.check(FILE_READ_DATA, ALL), Ok(()));
}

/// smb2.deny.deny1/deny2 (source4/torture/smb2/deny.c `denytable`): each
/// code is mode1, share1, mode2, share2, result. Modes: B = read+write,
/// R = read, W = write. Shares: '-' none, r = READ|DELETE, w = WRITE|DELETE,
/// a = all. Result: 0 = second open refused, else what the second handle
/// can do (R read, W write, B both).
const DENY_TABLE: &str = "
    B-B-0 B-Ba0 B-Br0 B-Bw0 B-R-0 B-Ra0 B-Rr0 B-Rw0
    B-W-0 B-Wa0 B-Wr0 B-Ww0 BaB-0 BaBaB BaBr0 BaBw0
    BaR-0 BaRaR BaRr0 BaRw0 BaW-0 BaWaW BaWr0 BaWw0
    BrB-0 BrBa0 BrBr0 BrBw0 BrR-0 BrRaR BrRr0 BrRw0
    BrW-0 BrWa0 BrWr0 BrWw0 BwB-0 BwBa0 BwBr0 BwBw0
    BwR-0 BwRa0 BwRr0 BwRw0 BwW-0 BwWaW BwWr0 BwWw0
    R-B-0 R-Ba0 R-Br0 R-Bw0 R-R-0 R-Ra0 R-Rr0 R-Rw0
    R-W-0 R-Wa0 R-Wr0 R-Ww0 RaB-0 RaBaB RaBrB RaBw0
    RaR-0 RaRaR RaRrR RaRw0 RaW-0 RaWaW RaWrW RaWw0
    RrB-0 RrBa0 RrBr0 RrBw0 RrR-0 RrRaR RrRrR RrRw0
    RrW-0 RrWa0 RrWr0 RrWw0 RwB-0 RwBa0 RwBr0 RwBw0
    RwR-0 RwRa0 RwRr0 RwRw0 RwW-0 RwWaW RwWrW RwWw0
    W-B-0 W-Ba0 W-Br0 W-Bw0 W-R-0 W-Ra0 W-Rr0 W-Rw0
    W-W-0 W-Wa0 W-Wr0 W-Ww0 WaB-0 WaBaB WaBr0 WaBwB
    WaR-0 WaRaR WaRr0 WaRwR WaW-0 WaWaW WaWr0 WaWwW
    WrB-0 WrBa0 WrBr0 WrBw0 WrR-0 WrRaR WrRr0 WrRwR
    WrW-0 WrWa0 WrWr0 WrWw0 WwB-0 WwBa0 WwBr0 WwBw0
    WwR-0 WwRa0 WwRr0 WwRw0 WwW-0 WwWaW WwWr0 WwWwW
";

#[test]
fn deny_table() {
    let mode = |c| match c {
        'B' => FILE_READ_DATA | FILE_WRITE_DATA,
        'R' => FILE_READ_DATA,
        _ => FILE_WRITE_DATA,
    };
    let sh = |c| match c {
        'r' => FILE_SHARE_READ | FILE_SHARE_DELETE,
        'w' => FILE_SHARE_WRITE | FILE_SHARE_DELETE,
        'a' => ALL,
        _ => 0,
    };
    let codes: Vec<&str> = DENY_TABLE.split_whitespace().collect();
    assert_eq!(codes.len(), 144);
    for code in codes {
        let c: Vec<char> = code.chars().collect();
        let mut s = ShareModes::new();
        s.insert(entry(1, mode(c[0]), sh(c[1])));
        let (m2, s2) = (mode(c[2]), sh(c[3]));
        let got = match s.check(m2, s2) {
            Err(_) => '0',
            Ok(()) => match (check_read(m2).is_ok(), check_write(m2).is_ok()) {
                (true, true) => 'B',
                (true, false) => 'R',
                (false, true) => 'W',
                (false, false) => '0',
            },
        };
        assert_eq!(got, c[4], "{code}");
    }
}

/// smb2.oplock.doc: once delete is pending, new opens fail with
/// DELETE_PENDING; the last close deletes.
#[test]
fn delete_pending() {
    let mut s = ShareModes::new();
    s.insert(entry(1, FILE_ALL_ACCESS, ALL));
    s.set_delete_pending(true);
    assert_eq!(s.check(FILE_READ_DATA, ALL), Err(NtStatus::DELETE_PENDING));
    let e = s.remove(OpenId(1));
    assert_eq!(e, CloseEffect { delete: true, remaining: 0 });
    assert!(!s.delete_pending());
}

/// FILE_DELETE_ON_CLOSE takes effect when its open closes; the file goes
/// when the last open closes (MS-FSA 2.1.5.4).
#[test]
fn delete_on_close_at_last_close() {
    let mut s = ShareModes::new();
    s.insert(ShareEntry { delete_on_close: true, ..entry(1, DELETE | FILE_READ_DATA, ALL) });
    s.insert(entry(2, FILE_READ_DATA, ALL));
    assert_eq!(s.check(FILE_READ_DATA, ALL), Ok(()), "not pending before the close");
    assert_eq!(s.remove(OpenId(1)), CloseEffect { delete: false, remaining: 1 });
    assert_eq!(s.check(FILE_READ_DATA, ALL), Err(NtStatus::DELETE_PENDING));
    assert_eq!(s.remove(OpenId(2)), CloseEffect { delete: true, remaining: 0 });
}

/// Clearing the disposition before the last close keeps the file.
#[test]
fn disposition_can_be_cleared() {
    let mut s = ShareModes::new();
    s.insert(entry(1, DELETE, ALL));
    s.set_delete_pending(true);
    s.set_delete_pending(false);
    assert!(!s.remove(OpenId(1)).delete);
}

fn target() -> DeleteTarget {
    DeleteTarget {
        granted: DELETE | FILE_READ_DATA,
        read_only: false,
        is_directory: false,
        dir_empty: true,
        is_share_root: false,
        share_writable: true,
    }
}

/// smb2.delete-on-close-perms.READONLY and friends.
#[test]
fn delete_on_close_rules() {
    let t = target();
    assert_eq!(check_create_delete_on_close(&t), Ok(true));
    assert_eq!(
        check_create_delete_on_close(&DeleteTarget { granted: FILE_READ_DATA, ..t }),
        Err(NtStatus::INVALID_PARAMETER)
    );
    let ro = DeleteTarget { read_only: true, ..t };
    assert_eq!(check_create_delete_on_close(&ro), Err(NtStatus::CANNOT_DELETE));
    assert_eq!(check_set_disposition(&ro, true), Err(NtStatus::CANNOT_DELETE));
    assert_eq!(check_set_disposition(&ro, false), Ok(()));
    let full_dir = DeleteTarget { is_directory: true, dir_empty: false, ..t };
    assert_eq!(check_create_delete_on_close(&full_dir), Ok(false));
    assert_eq!(check_set_disposition(&full_dir, true), Err(NtStatus::DIRECTORY_NOT_EMPTY));
    let root = DeleteTarget { is_directory: true, is_share_root: true, ..t };
    assert_eq!(check_set_disposition(&root, true), Err(NtStatus::ACCESS_DENIED));
    let ro_share = DeleteTarget { share_writable: false, ..t };
    assert_eq!(check_create_delete_on_close(&ro_share), Err(NtStatus::ACCESS_DENIED));
    assert_eq!(
        check_set_disposition(&DeleteTarget { granted: FILE_READ_DATA, ..t }, true),
        Err(NtStatus::ACCESS_DENIED)
    );
}

/// Overwriting read-only, hidden or system files (MS-FSA 2.1.5.1.2).
#[test]
fn overwrite_attributes() {
    assert_eq!(check_overwrite(0, 0), Ok(()));
    assert_eq!(check_overwrite(FILE_ATTRIBUTE_READONLY, FILE_ATTRIBUTE_READONLY), Err(NtStatus::ACCESS_DENIED));
    assert_eq!(check_overwrite(FILE_ATTRIBUTE_HIDDEN, 0), Err(NtStatus::ACCESS_DENIED));
    assert_eq!(check_overwrite(FILE_ATTRIBUTE_HIDDEN, FILE_ATTRIBUTE_HIDDEN), Ok(()));
    assert_eq!(check_overwrite(FILE_ATTRIBUTE_SYSTEM, FILE_ATTRIBUTE_HIDDEN), Err(NtStatus::ACCESS_DENIED));
}

/// The CREATE order through StreamState: delete pending first, then
/// sharing; an overwrite counts as a write for sharing.
#[test]
fn stream_create_order() {
    use crate::engine::fsa::lease::{CacheGrant, CacheRequest};
    use crate::engine::fsa::stream::*;
    let mut s = StreamState::new();
    let now = std::time::Instant::now();
    let base = OpenRequest {
        open: OpenId(1),
        access: FILE_READ_DATA | DELETE,
        share: FILE_SHARE_READ | FILE_SHARE_DELETE,
        overwrite: false,
        created: false,
        is_directory: false,
        delete_on_close: true,
        allocation_size: 0,
        request: CacheRequest::None,
        token: 1,
        first_attempt: true,
    };
    let granted = OpenResult::Granted(CacheGrant::None);
    assert_eq!(s.begin_open(&base, now).result, granted);
    let reader = OpenRequest { open: OpenId(2), access: FILE_READ_DATA, share: ALL, delete_on_close: false, ..base };
    assert_eq!(s.begin_open(&reader, now).result, granted);
    let overwriter = OpenRequest { open: OpenId(3), overwrite: true, ..reader };
    assert_eq!(
        s.begin_open(&overwriter, now).result,
        OpenResult::Failed(NtStatus::SHARING_VIOLATION),
        "open 1 does not share write"
    );
    let c = s.close(OpenId(1));
    assert_eq!((c.delete, c.remaining), (false, 1));
    let o = s.begin_open(&OpenRequest { open: OpenId(4), ..reader }, now);
    assert_eq!(o.result, OpenResult::Failed(NtStatus::DELETE_PENDING));
    let c = s.close(OpenId(2));
    assert!(c.delete);
    assert!(s.is_idle());
}
