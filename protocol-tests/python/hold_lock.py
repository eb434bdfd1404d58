"""Opens a file with a batch oplock, takes an exclusive byte-range lock
on bytes 100..149, says "held", and keeps both until standard input
closes (so that `smbvault status` can be checked meanwhile).

usage: hold_lock.py HOST PORT SHARE USER PASS NAME"""
import sys

from smbprotocol.open import (
    CreateDisposition,
    ImpersonationLevel,
    LockFlags,
    Open,
    RequestedOplockLevel,
    SMB2LockElement,
)

from smbtest import ALL_SHARE, RW, Client

host, port, share, user, pw, name = sys.argv[1:7]
c = Client(host, int(port), share, user, pw)
f = Open(c.tree, name)
f.create(
    ImpersonationLevel.Impersonation,
    RW,
    0,
    ALL_SHARE,
    CreateDisposition.FILE_OVERWRITE_IF,
    0,
    oplock_level=RequestedOplockLevel.SMB2_OPLOCK_LEVEL_BATCH,
)
f.write(b"x" * 200, 0)
lock = SMB2LockElement()
lock["offset"] = 100
lock["length"] = 50
lock["flags"] = LockFlags.SMB2_LOCKFLAG_EXCLUSIVE_LOCK | LockFlags.SMB2_LOCKFLAG_FAIL_IMMEDIATELY
f.lock([lock])
print(f"held oplock={f.oplock_level}", flush=True)
sys.stdin.read()
f.close()
c.close()
