"""File-system semantics that smbtorture does not cover well, checked with
Python smbprotocol (SMB 3.1.1, encrypted) against a running smbvault.

usage: semantics.py HOST PORT SHARE DOMAIN\\USER PASSWORD CHECK [ARGS...]

CHECK is one of:
  nfc         NFC and NFD spellings of a Japanese name reach one file
  forbidden   names with characters Windows forbids get STATUS_OBJECT_NAME_INVALID
  private     macOS private-use substitutes (U+F001..U+F029) are kept as sent
  copy SIZE   server-side copy (FSCTL_SRV_COPYCHUNK_WRITE) of SIZE random bytes;
              prints the source's SHA-256 and a hex window of its plaintext
  doc         delete-on-close across two connections: the file goes with the
              last handle, and new opens get STATUS_DELETE_PENDING meanwhile
  lock        a blocking lock on one connection completes when another
              connection unlocks
  seed NAME   creates NAME with some content (for readonly)
  readonly NAME  as a user with read-only share access: NAME opens for
              reading; writing, creating, deleting and renaming are denied
Prints "ok" on success; exits non-zero with a message otherwise.
"""
import hashlib
import os
import sys
import threading
import time
import uuid

import smbclient
from smbprotocol.exceptions import SMBResponseException
from smbprotocol.open import (CreateDisposition, CreateOptions, DirectoryAccessMask, FilePipePrinterAccessMask,
                              ImpersonationLevel, Open, SMB2LockElement, LockFlags)
from smbprotocol.file_info import FileInformationClass

from smbtest import ALL_SHARE, RW, Client


def status_of(fn):
    """Runs fn; returns None on success or the NTSTATUS name it failed with."""
    try:
        fn()
        return None
    except SMBResponseException as e:
        return f"0x{e.status:08x}"


def list_names(c, dirname=""):
    d = Open(c.tree, dirname)
    d.create(ImpersonationLevel.Impersonation, DirectoryAccessMask.FILE_LIST_DIRECTORY | DirectoryAccessMask.SYNCHRONIZE,
             0, ALL_SHARE, CreateDisposition.FILE_OPEN, CreateOptions.FILE_DIRECTORY_FILE)
    entries = d.query_directory("*", FileInformationClass.FILE_NAMES_INFORMATION)
    d.close()
    return [e["file_name"].get_value().decode("utf-16-le") for e in entries]


def check_nfc(c):
    base = "nfc-" + uuid.uuid4().hex[:8]
    nfc = base + "-\u30d1.txt"            # パ, one code point
    nfd = base + "-\u30cf\u309a.txt"      # ハ + combining semi-voiced mark
    f = c.open(nfc, disp=CreateDisposition.FILE_CREATE)
    f.write(b"written through NFC", 0)
    f.close()
    g = c.open(nfd, disp=CreateDisposition.FILE_OPEN)
    data = g.read(0, 100)
    g.close()
    assert data == b"written through NFC", data
    st = status_of(lambda: c.open(nfd, disp=CreateDisposition.FILE_CREATE).close())
    assert st == "0xc0000035", f"NFD create of an NFC name: {st} (want OBJECT_NAME_COLLISION)"
    found = [n for n in list_names(c) if n.startswith(base)]
    assert len(found) == 1, found


def check_forbidden(c):
    for ch in '*?<>|"':
        name = f"bad{ch}name.txt"
        st = status_of(lambda: c.open(name, disp=CreateDisposition.FILE_CREATE).close())
        assert st == "0xc0000033", f"{name!r}: {st} (want OBJECT_NAME_INVALID)"
    st = status_of(lambda: c.open("ctl\x01name.txt", disp=CreateDisposition.FILE_CREATE).close())
    assert st == "0xc0000033", f"control character: {st}"


def check_private(c):
    # What macOS sends for "a:b*c?.txt" (U+F022 ':', U+F021 '*', U+F025 '?').
    name = "mac-" + uuid.uuid4().hex[:6] + "-a\uf022b\uf021c\uf025.txt"
    c.open(name, disp=CreateDisposition.FILE_CREATE).close()
    assert name in list_names(c), "private-use name not listed as sent"
    c.open(name, disp=CreateDisposition.FILE_OPEN).close()


def check_copy(c, host, port, share, user, password, size):
    data = os.urandom(size)
    src, dst = "copy-src-" + uuid.uuid4().hex[:6], "copy-dst-" + uuid.uuid4().hex[:6]
    f = c.open(src, disp=CreateDisposition.FILE_CREATE)
    for off in range(0, size, 1 << 20):
        f.write(data[off:off + (1 << 20)], off)
    f.close()
    smbclient.register_session(host, username=user, password=password, port=port, encrypt=True)
    smbclient.copyfile(rf"\\{host}\{share}\{src}", rf"\\{host}\{share}\{dst}", port=port)
    g = c.open(dst, disp=CreateDisposition.FILE_OPEN)
    got = bytearray()
    while len(got) < size:
        got += g.read(len(got), min(1 << 20, size - len(got)))
    g.close()
    assert bytes(got) == data, "copy differs from source"
    print(hashlib.sha256(data).hexdigest())
    print(data[4096:4096 + 64].hex())


def check_doc(a, b):
    name = "doc-" + uuid.uuid4().hex[:8] + ".txt"
    keep = a.open(name, disp=CreateDisposition.FILE_CREATE)
    keep.write(b"still here", 0)
    d = b.open(name, FilePipePrinterAccessMask.DELETE, CreateDisposition.FILE_OPEN,
               CreateOptions.FILE_DELETE_ON_CLOSE)
    d.close()
    st = status_of(lambda: b.open(name, disp=CreateDisposition.FILE_OPEN).close())
    assert st == "0xc0000056", f"open while delete pending: {st} (want DELETE_PENDING)"
    assert keep.read(0, 10) == b"still here"
    keep.close()
    st = status_of(lambda: b.open(name, disp=CreateDisposition.FILE_OPEN).close())
    assert st == "0xc0000034", f"after the last close: {st} (want OBJECT_NAME_NOT_FOUND)"


def element(offset, length, flags):
    e = SMB2LockElement()
    e["offset"] = offset
    e["length"] = length
    e["flags"] = flags
    return e


def check_lock(a, b):
    name = "lock-" + uuid.uuid4().hex[:8] + ".bin"
    fa = a.open(name, disp=CreateDisposition.FILE_CREATE)
    fa.write(b"x" * 100, 0)
    fb = b.open(name, disp=CreateDisposition.FILE_OPEN)
    fa.lock([element(0, 10, LockFlags.SMB2_LOCKFLAG_EXCLUSIVE_LOCK)])
    st = status_of(lambda: fb.read(0, 5))
    assert st == "0xc0000054", f"read under another's lock: {st} (want FILE_LOCK_CONFLICT)"
    done = {}

    def blocked():
        start = time.monotonic()
        try:
            fb.lock([element(0, 10, LockFlags.SMB2_LOCKFLAG_EXCLUSIVE_LOCK)])
            done["status"] = "ok"
        except SMBResponseException as e:
            done["status"] = f"0x{e.status:08x}"
        done["secs"] = time.monotonic() - start

    t = threading.Thread(target=blocked)
    t.start()
    time.sleep(1.0)
    assert "status" not in done, f"blocking lock did not wait: {done}"
    fa.lock([element(0, 10, LockFlags.SMB2_LOCKFLAG_UNLOCK)])
    t.join(10)
    assert done.get("status") == "ok", f"blocking lock after unlock elsewhere: {done}"
    assert 0.9 < done["secs"] < 5, done
    fb.lock([element(0, 10, LockFlags.SMB2_LOCKFLAG_UNLOCK)])
    fa.close()
    fb.close()


def check_readonly(c, name):
    f = c.open(name, FilePipePrinterAccessMask.GENERIC_READ, CreateDisposition.FILE_OPEN)
    assert f.read(0, 4) == b"seed"
    f.close()
    denied = "0xc0000022"
    for what, fn in [
        ("open for write", lambda: c.open(name, RW, CreateDisposition.FILE_OPEN).close()),
        ("create", lambda: c.open("ro-" + uuid.uuid4().hex[:6], RW, CreateDisposition.FILE_CREATE).close()),
        ("create for read", lambda: c.open("ro-" + uuid.uuid4().hex[:6], FilePipePrinterAccessMask.GENERIC_READ,
                                            CreateDisposition.FILE_CREATE).close()),
        ("overwrite", lambda: c.open(name, FilePipePrinterAccessMask.GENERIC_READ,
                                     CreateDisposition.FILE_OVERWRITE).close()),
        ("delete", lambda: c.open(name, FilePipePrinterAccessMask.DELETE, CreateDisposition.FILE_OPEN,
                                  CreateOptions.FILE_DELETE_ON_CLOSE).close()),
    ]:
        st = status_of(fn)
        assert st == denied, f"read-only share, {what}: {st} (want ACCESS_DENIED)"


def main():
    host, port, share, user, password, check = sys.argv[1:7]
    port = int(port)
    c = Client(host, port, share, user, password)
    if check == "nfc":
        check_nfc(c)
    elif check == "forbidden":
        check_forbidden(c)
    elif check == "private":
        check_private(c)
    elif check == "copy":
        check_copy(c, host, port, share, user, password, int(sys.argv[7]))
    elif check == "seed":
        f = c.open(sys.argv[7], disp=CreateDisposition.FILE_CREATE)
        f.write(b"seed", 0)
        f.close()
    elif check == "readonly":
        check_readonly(c, sys.argv[7])
    elif check in ("doc", "lock"):
        b = Client(host, port, share, user, password)
        (check_doc if check == "doc" else check_lock)(c, b)
        b.close()
    else:
        raise SystemExit(f"unknown check {check}")
    c.close()
    print("ok")


if __name__ == "__main__":
    main()
