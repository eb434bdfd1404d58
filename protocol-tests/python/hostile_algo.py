"""Attacks of issue 14's "algorithms and abuse" half, one per subcommand,
run by protocol-tests/hostile_algo.rs against a real server while a
well-behaved smbclient transfer runs beside them. Each prints one JSON line
of what it saw; the Rust test asserts on it.

    hostile_algo.py HOST PORT SHARE USER PASSWORD ATTACK [ARGS...]
"""
import json
import socket
import sys
import threading
import time
import uuid

from smbprotocol.connection import Connection, Dialects
from smbprotocol.exceptions import SMBResponseException
from smbprotocol.file_info import FileFullEaInformation, FileInformationClass, InfoType
from smbprotocol.open import (
    CreateDisposition,
    CreateOptions,
    DirectoryAccessMask,
    FileAttributes,
    ImpersonationLevel,
    Open,
    SMB2LockElement,
    SMB2SetInfoRequest,
    SMB2SetInfoResponse,
    LockFlags,
)
from smbprotocol.session import Session
from smbprotocol.change_notify import ChangeNotifyFlags, CompletionFilter, FileSystemWatcher

import smbtest

HOST, PORT, SHARE, USER, PASSWORD, ATTACK = sys.argv[1:7]
PORT = int(PORT)
ARGS = sys.argv[7:]


def status_of(e):
    return "0x%08x" % e.status


def out(**kw):
    print(json.dumps(kw), flush=True)


def with_source(addr):
    """Makes smbprotocol connect from `addr` (another loopback address)."""
    real = socket.create_connection

    def create_connection(address, timeout=None, source_address=None):
        return real(address, timeout=timeout, source_address=(addr, 0))

    socket.create_connection = create_connection


def locks():
    """LOCK requests of 2,700 elements (as many as fit the 64 KiB a request
    with CreditCharge 1 may carry; smbprotocol charges LOCK one credit),
    then as many locks on one open as the server allows, CHUNK per request."""
    c = smbtest.Client(HOST, PORT, SHARE, USER, PASSWORD)
    f = c.open("locks.bin")
    fl = LockFlags.SMB2_LOCKFLAG_SHARED_LOCK | LockFlags.SMB2_LOCKFLAG_FAIL_IMMEDIATELY

    def elements(n, base):
        els = []
        for i in range(n):
            e = SMB2LockElement()
            e["offset"] = (base + i) * 16
            e["length"] = 8
            e["flags"] = fl
            els.append(e)
        return els

    huge = elements(2700, 0)
    t = time.time()
    huge_status = []
    for _ in range(5):
        try:
            f.lock(huge, wait=False)
            huge_status.append("0x00000000")
        except SMBResponseException as e:
            huge_status.append(status_of(e))
    huge_secs = time.time() - t
    chunk = int(ARGS[0]) if ARGS else 1000
    granted = 0
    refused = None
    t = time.time()
    for r in range(100):
        try:
            f.lock(elements(chunk, r * chunk), wait=False)
            granted += chunk
        except SMBResponseException as e:
            refused = status_of(e)
            break
    many_secs = time.time() - t
    f.close()
    c.close()
    out(huge_status=huge_status, huge_secs=huge_secs, granted=granted, refused=refused, many_secs=many_secs)


def notify():
    """Many watches, then a storm of changes."""
    n = int(ARGS[0]) if ARGS else 400
    c = smbtest.Client(HOST, PORT, SHARE, USER, PASSWORD)
    watchers = []
    dirs = []
    acc = (
        DirectoryAccessMask.FILE_LIST_DIRECTORY
        | DirectoryAccessMask.FILE_ADD_FILE
        | DirectoryAccessMask.FILE_ADD_SUBDIRECTORY
        | DirectoryAccessMask.FILE_TRAVERSE
        | DirectoryAccessMask.FILE_READ_ATTRIBUTES
        | DirectoryAccessMask.SYNCHRONIZE
    )
    d = c.open("storm", access=acc, options=CreateOptions.FILE_DIRECTORY_FILE)
    for i in range(n):
        h = c.open("storm\\w%d" % i, access=acc, options=CreateOptions.FILE_DIRECTORY_FILE)
        dirs.append(h)
        w = FileSystemWatcher(h)
        w.start(CompletionFilter.FILE_NOTIFY_CHANGE_FILE_NAME, flags=ChangeNotifyFlags.SMB2_WATCH_TREE)
        watchers.append(w)
    t = time.time()
    changes = 0
    for k in range(int(ARGS[1]) if len(ARGS) > 1 else 300):
        f = c.open("storm\\f%d.txt" % k, disp=CreateDisposition.FILE_OVERWRITE_IF)
        f.close()
        changes += 1
    storm_secs = time.time() - t
    for h in dirs:
        h.close()
    d.close()
    c.close()
    out(watches=n, changes=changes, storm_secs=storm_secs)


def guess_one_connection():
    """Parallel bad passwords on one connection: each waits its turn."""
    n = int(ARGS[0]) if ARGS else 4
    conn = Connection(uuid.uuid4(), HOST, PORT, require_signing=True)
    conn.connect(Dialects.SMB_3_1_1)
    results = []

    def guess(i):
        s = Session(conn, USER, "Wrong-Password-%d" % i, require_encryption=True)
        try:
            s.connect()
            results.append("ok")
        except Exception as e:  # noqa: BLE001 - the status is what we report
            results.append(type(e).__name__)

    t = time.time()
    threads = [threading.Thread(target=guess, args=(i,)) for i in range(n)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    out(guesses=n, secs=time.time() - t, results=results)
    conn.disconnect()


def guess_many_connections():
    """Bad passwords from another address on several connections at once,
    then the right password from that address."""
    source, conns, per = ARGS[0], int(ARGS[1]), int(ARGS[2])
    with_source(source)
    results = []

    def worker(i):
        conn = Connection(uuid.uuid4(), HOST, PORT, require_signing=True)
        conn.connect(Dialects.SMB_3_1_1)
        for k in range(per):
            s = Session(conn, USER, "Wrong-Password-%d-%d" % (i, k), require_encryption=True)
            try:
                s.connect()
                results.append("ok")
            except Exception as e:  # noqa: BLE001
                results.append(type(e).__name__)
        conn.disconnect()

    t = time.time()
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(conns)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    secs = time.time() - t
    right = "ok"
    try:
        smbtest.Client(HOST, PORT, SHARE, USER, PASSWORD).close()
    except Exception as e:  # noqa: BLE001
        right = type(e).__name__
    out(guesses=len(results), secs=secs, failed=sum(r != "ok" for r in results), right_password_from_source=right)


def stars():
    """QUERY_DIRECTORY with 32K-character patterns of stars."""
    c = smbtest.Client(HOST, PORT, SHARE, USER, PASSWORD)
    d = c.open("", access=DirectoryAccessMask.GENERIC_READ, options=CreateOptions.FILE_DIRECTORY_FILE)
    patterns = ["*" * 32000, "*a" * 16000, ("*" * 100 + "?") * 300]
    statuses = []
    t = time.time()
    for i in range(int(ARGS[0]) if ARGS else 30):
        try:
            d.query_directory(patterns[i % len(patterns)], FileInformationClass.FILE_NAMES_INFORMATION)
            statuses.append("0x00000000")
        except SMBResponseException as e:
            statuses.append(status_of(e))
    secs = time.time() - t
    d.close()
    c.close()
    out(queries=len(statuses), secs=secs, statuses=sorted(set(statuses)))


def set_ea(f, name, size):
    req = SMB2SetInfoRequest()
    req["info_type"] = InfoType.SMB2_0_INFO_FILE
    req["file_info_class"] = FileInformationClass.FILE_FULL_EA_INFORMATION
    req["file_id"] = f.file_id
    ea = FileFullEaInformation()
    ea["ea_name"] = name
    ea["ea_value"] = b"E" * size
    req["buffer"] = ea
    r = f.connection.send(req, sid=f.tree_connect.session.session_id, tid=f.tree_connect.tree_connect_id)
    resp = f.connection.receive(r)
    SMB2SetInfoResponse().unpack(resp["data"].get_value())


def eas():
    """EAs: 60 KiB fits, 70 KiB (one EA or several) is refused, on many files."""
    c = smbtest.Client(HOST, PORT, SHARE, USER, PASSWORD)
    ok = 0
    refused = []
    for i in range(int(ARGS[0]) if ARGS else 20):
        f = c.open("ea%d.bin" % i)
        set_ea(f, b"FITS", 60 * 1024)
        ok += 1
        # 60 KiB + 10 KiB, and 60 KiB + 63 KiB (one EA's value is at most
        # 65,535 bytes on the wire): both past 64 KiB together.
        for name in (b"HUGE", b"MORE"):
            try:
                set_ea(f, name, 10 * 1024 if name == b"MORE" else 63 * 1024)
                refused.append("0x00000000")
            except SMBResponseException as e:
                refused.append(status_of(e))
        f.close()
    c.close()
    out(ok=ok, refused=sorted(set(refused)))


{
    "locks": locks,
    "notify": notify,
    "guess-one-connection": guess_one_connection,
    "guess-many-connections": guess_many_connections,
    "stars": stars,
    "eas": eas,
}[ATTACK]()
