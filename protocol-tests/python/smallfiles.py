"""Small-file load for the audit tests: one SMB 3.1.1 session that creates,
writes SIZE bytes to and closes PREFIX-<n>.bin, COUNT times (0: until the
server goes away). After each close it prints "<n> <unix ms>" (flushed), so
the caller knows when each operation had completed.

usage: smallfiles.py HOST PORT SHARE DOMAIN\\USER PASSWORD PREFIX COUNT [SIZE]
"""
import sys
import time
import uuid

from smbprotocol.connection import Connection, Dialects
from smbprotocol.open import (CreateDisposition, CreateOptions, FilePipePrinterAccessMask,
                              ImpersonationLevel, Open, ShareAccess)
from smbprotocol.session import Session
from smbprotocol.tree import TreeConnect


def main():
    host, port, share, user, password, prefix, count = sys.argv[1:8]
    size = int(sys.argv[8]) if len(sys.argv) > 8 else 4096
    port, count = int(port), int(count)
    conn = Connection(uuid.uuid4(), host, port, require_signing=True)
    conn.connect(Dialects.SMB_3_1_1)
    sess = Session(conn, user, password, require_encryption=True)
    sess.connect()
    tree = TreeConnect(sess, rf"\\{host}\{share}")
    tree.connect()
    print("ready", int(time.time() * 1000), flush=True)
    data = bytes(range(256)) * (size // 256) + bytes(size % 256)
    n = 0
    try:
        while count == 0 or n < count:
            f = Open(tree, f"{prefix}-{n}.bin")
            f.create(ImpersonationLevel.Impersonation, FilePipePrinterAccessMask.GENERIC_WRITE, 0,
                     ShareAccess.FILE_SHARE_READ, CreateDisposition.FILE_OVERWRITE_IF,
                     CreateOptions.FILE_NON_DIRECTORY_FILE)
            f.write(data, 0)
            f.close()
            print(n, int(time.time() * 1000), flush=True)
            n += 1
    except Exception as e:  # the server was killed: report and stop
        print("stopped", type(e).__name__, flush=True)
        return
    tree.disconnect()
    sess.disconnect()
    conn.disconnect()


if __name__ == "__main__":
    main()
