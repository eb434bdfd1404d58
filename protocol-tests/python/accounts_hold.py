"""Hold one session, tree and open file, and run commands on them from stdin.

usage: accounts_hold.py HOST PORT SHARE DOMAIN\\USER PASSWORD FILE

Opens FILE (created if missing) for read and write, prints "READY", then for
each line on stdin ("read", "write", "ls", "open": a new open of FILE) prints "ok" or "err 0xSTATUS".
Used by protocol-tests/accounts.rs to see that revoking access, disabling or
deleting the user ends the session, tree and open at once (a client that
keeps its connection open must not keep its rights).
"""
import sys
import uuid

from smbprotocol.connection import Connection, Dialects
from smbprotocol.exceptions import SMBResponseException
from smbprotocol.open import (CreateDisposition, CreateOptions, DirectoryAccessMask,
                              FileAttributes, FileInformationClass, FilePipePrinterAccessMask,
                              ImpersonationLevel, Open, ShareAccess)
from smbprotocol.session import Session
from smbprotocol.tree import TreeConnect


def main():
    host, port, share, user, password, name = sys.argv[1:7]
    conn = Connection(uuid.uuid4(), host, int(port), require_signing=True)
    conn.connect(Dialects.SMB_3_1_1)
    sess = Session(conn, user, password)
    sess.connect()
    tree = TreeConnect(sess, rf"\\{host}\{share}")
    tree.connect()
    f = Open(tree, name)
    f.create(ImpersonationLevel.Impersonation,
             FilePipePrinterAccessMask.GENERIC_READ | FilePipePrinterAccessMask.GENERIC_WRITE,
             FileAttributes.FILE_ATTRIBUTE_NORMAL, ShareAccess.FILE_SHARE_READ,
             CreateDisposition.FILE_OPEN_IF, CreateOptions.FILE_NON_DIRECTORY_FILE)
    root = Open(tree, "")
    root.create(ImpersonationLevel.Impersonation,
                DirectoryAccessMask.FILE_LIST_DIRECTORY | DirectoryAccessMask.FILE_READ_ATTRIBUTES,
                FileAttributes.FILE_ATTRIBUTE_DIRECTORY, ShareAccess.FILE_SHARE_READ,
                CreateDisposition.FILE_OPEN, CreateOptions.FILE_DIRECTORY_FILE)
    print("READY", flush=True)
    for line in sys.stdin:
        cmd = line.strip()
        try:
            if cmd == "read":
                f.read(0, 1)
            elif cmd == "write":
                f.write(b"x", 0)
            elif cmd == "ls":
                root.query_directory("*", FileInformationClass.FILE_NAMES_INFORMATION)
            elif cmd == "open":
                g = Open(tree, name)
                g.create(ImpersonationLevel.Impersonation, FilePipePrinterAccessMask.FILE_READ_ATTRIBUTES,
                         FileAttributes.FILE_ATTRIBUTE_NORMAL, ShareAccess.FILE_SHARE_READ,
                         CreateDisposition.FILE_OPEN, CreateOptions.FILE_NON_DIRECTORY_FILE)
                g.close()
            else:
                print("err unknown", flush=True)
                continue
            print("ok", flush=True)
        except SMBResponseException as e:
            print("err 0x%08x" % e.status, flush=True)
        except Exception as e:  # noqa: BLE001 - report anything else as a failure too
            print("err %s" % type(e).__name__, flush=True)


if __name__ == "__main__":
    main()
