"""Write, read back and delete a file with Python smbprotocol (SMB 3.1.1).

usage: roundtrip.py HOST PORT SHARE DOMAIN\\USER PASSWORD SIZE [encrypt]
"""
import hashlib
import os
import sys
import uuid

from smbprotocol.connection import Connection, Dialects
from smbprotocol.open import (CreateDisposition, CreateOptions, FilePipePrinterAccessMask,
                              ImpersonationLevel, Open, ShareAccess)
from smbprotocol.session import Session
from smbprotocol.tree import TreeConnect


def main():
    host, port, share, user, password, size = sys.argv[1:7]
    encrypt = len(sys.argv) > 7 and sys.argv[7] == "encrypt"
    port, size = int(port), int(size)
    conn = Connection(uuid.uuid4(), host, port, require_signing=True)
    conn.connect(Dialects.SMB_3_1_1)
    assert conn.dialect == Dialects.SMB_3_1_1, hex(conn.dialect)
    sess = Session(conn, user, password, require_encryption=encrypt)
    sess.connect()
    tree = TreeConnect(sess, rf"\\{host}\{share}")
    tree.connect()
    data = os.urandom(size)
    name = "py-" + uuid.uuid4().hex + ".bin"
    f = Open(tree, name)
    f.create(ImpersonationLevel.Impersonation,
             FilePipePrinterAccessMask.GENERIC_READ | FilePipePrinterAccessMask.GENERIC_WRITE
             | FilePipePrinterAccessMask.DELETE,
             0, ShareAccess.FILE_SHARE_READ, CreateDisposition.FILE_OVERWRITE_IF,
             CreateOptions.FILE_NON_DIRECTORY_FILE)
    chunk = conn.max_write_size
    for off in range(0, size, chunk):
        f.write(data[off:off + chunk], off)
    got = bytearray()
    rchunk = conn.max_read_size
    for off in range(0, size, rchunk):
        got += f.read(off, min(rchunk, size - off))
    assert hashlib.sha256(got).hexdigest() == hashlib.sha256(data).hexdigest(), "content differs"
    f.close()
    g = Open(tree, name)
    g.create(ImpersonationLevel.Impersonation, FilePipePrinterAccessMask.DELETE, 0,
             ShareAccess.FILE_SHARE_DELETE, CreateDisposition.FILE_OPEN,
             CreateOptions.FILE_NON_DIRECTORY_FILE | CreateOptions.FILE_DELETE_ON_CLOSE)
    g.close()
    h = Open(tree, name)
    try:
        h.create(ImpersonationLevel.Impersonation, FilePipePrinterAccessMask.GENERIC_READ, 0,
                 ShareAccess.FILE_SHARE_READ, CreateDisposition.FILE_OPEN, 0)
        raise SystemExit("file still exists after delete")
    except Exception as e:  # smbprotocol raises SMBResponseException subclasses
        if "STATUS_OBJECT_NAME_NOT_FOUND" not in str(e) and "0xc0000034" not in str(e).lower():
            raise
    tree.disconnect()
    sess.disconnect()
    conn.disconnect()
    print("OK", size, "bytes, encrypted" if encrypt else "bytes")


if __name__ == "__main__":
    main()
