"""Operations smbclient cannot do, for the audit tests: write NAME, set its
DACL (SET_INFO SMB2_0_INFO_SECURITY, MS-SMB2 2.2.39), read it back, and try
to set the DACL through a handle opened without WRITE_DAC (refused).

usage: audit_ops.py HOST PORT SHARE DOMAIN\\USER PASSWORD NAME
"""
import struct
import sys
import uuid

from smbprotocol.connection import Connection, Dialects
from smbprotocol.open import (CreateDisposition, CreateOptions, FilePipePrinterAccessMask,
                              ImpersonationLevel, Open, ShareAccess, SMB2SetInfoRequest,
                              SMB2SetInfoResponse)
from smbprotocol.session import Session
from smbprotocol.tree import TreeConnect

EVERYONE = bytes([1, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0])  # S-1-1-0 (MS-DTYP 2.4.2)


def dacl_everyone_full():
    """A self-relative SECURITY_DESCRIPTOR (MS-DTYP 2.4.6) with a DACL that
    allows Everyone FILE_ALL_ACCESS."""
    ace = struct.pack("<BBHI", 0, 0, 8 + len(EVERYONE), 0x001F01FF) + EVERYONE
    acl = struct.pack("<BBHHH", 2, 0, 8 + len(ace), 1, 0) + ace
    # Revision 1, control SE_SELF_RELATIVE | SE_DACL_PRESENT, DACL at 20.
    return struct.pack("<BBHIIII", 1, 0, 0x8004, 0, 0, 0, 20) + acl


def main():
    host, port, share, user, password, name = sys.argv[1:7]
    conn = Connection(uuid.uuid4(), host, int(port), require_signing=True)
    conn.connect(Dialects.SMB_3_1_1)
    sess = Session(conn, user, password, require_encryption=True)
    sess.connect()
    tree = TreeConnect(sess, rf"\\{host}\{share}")
    tree.connect()
    f = Open(tree, name)
    f.create(ImpersonationLevel.Impersonation,
             FilePipePrinterAccessMask.GENERIC_WRITE | FilePipePrinterAccessMask.WRITE_DAC
             | FilePipePrinterAccessMask.READ_CONTROL,
             0, ShareAccess.FILE_SHARE_READ, CreateDisposition.FILE_OVERWRITE_IF,
             CreateOptions.FILE_NON_DIRECTORY_FILE)
    f.write(b"abcd", 0)
    req = SMB2SetInfoRequest()
    req["info_type"] = 3  # SMB2_0_INFO_SECURITY
    req["additional_information"] = 4  # DACL_SECURITY_INFORMATION
    req["file_id"] = f.file_id
    req["buffer"] = dacl_everyone_full()
    resp = conn.receive(conn.send(req, sid=sess.session_id, tid=tree.tree_connect_id))
    SMB2SetInfoResponse().unpack(resp["data"].get_value())
    f.close()
    g = Open(tree, name)
    g.create(ImpersonationLevel.Impersonation, FilePipePrinterAccessMask.GENERIC_READ, 0,
             ShareAccess.FILE_SHARE_READ, CreateDisposition.FILE_OPEN, CreateOptions.FILE_NON_DIRECTORY_FILE)
    assert g.read(0, 4) == b"abcd"
    # The same change through a handle without WRITE_DAC is refused.
    req["file_id"] = g.file_id
    try:
        conn.receive(conn.send(req, sid=sess.session_id, tid=tree.tree_connect_id))
        raise SystemExit("SET_INFO security without WRITE_DAC succeeded")
    except Exception as e:  # smbprotocol raises SMBResponseException subclasses
        if "STATUS_ACCESS_DENIED" not in str(e):
            raise
    g.close()
    tree.disconnect()
    sess.disconnect()
    conn.disconnect()
    print("done")


if __name__ == "__main__":
    main()
