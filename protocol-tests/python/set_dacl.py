"""Sets the DACL of an existing file to: deny SID read (FILE_GENERIC_READ),
allow Everyone full access (SET_INFO SMB2_0_INFO_SECURITY, MS-SMB2 2.2.39;
descriptor layout MS-DTYP 2.4.6). smbcacls cannot, as it has no port option.

usage: set_dacl.py HOST PORT SHARE DOMAIN\\USER PASSWORD NAME DENY_SID
"""
import struct
import sys

from smbprotocol.open import CreateDisposition, FilePipePrinterAccessMask, SMB2SetInfoRequest, SMB2SetInfoResponse

from smbtest import Client


def sid_bytes(s):
    """S-1-A-S1-S2... as a binary SID (MS-DTYP 2.4.2.2)."""
    parts = s.split("-")
    subs = [int(x) for x in parts[3:]]
    return struct.pack("<BB", 1, len(subs)) + int(parts[2]).to_bytes(6, "big") + struct.pack(f"<{len(subs)}I", *subs)


def ace(kind, mask, sid):
    return struct.pack("<BBHI", kind, 0, 8 + len(sid), mask) + sid


def main():
    host, port, share, user, password, name, deny = sys.argv[1:8]
    c = Client(host, int(port), share, user, password)
    aces = ace(1, 0x00120089, sid_bytes(deny)) + ace(0, 0x001F01FF, sid_bytes("S-1-1-0"))
    acl = struct.pack("<BBHHH", 2, 0, 8 + len(aces), 2, 0) + aces
    sd = struct.pack("<BBHIIII", 1, 0, 0x8004, 0, 0, 0, 20) + acl
    f = c.open(name, FilePipePrinterAccessMask.WRITE_DAC | FilePipePrinterAccessMask.READ_CONTROL,
               CreateDisposition.FILE_OPEN)
    req = SMB2SetInfoRequest()
    req["info_type"] = 3  # SMB2_0_INFO_SECURITY
    req["additional_information"] = 4  # DACL_SECURITY_INFORMATION
    req["file_id"] = f.file_id
    req["buffer"] = sd
    resp = c.conn.receive(c.conn.send(req, sid=c.sess.session_id, tid=c.tree.tree_connect_id))
    SMB2SetInfoResponse().unpack(resp["data"].get_value())
    f.close()
    c.close()
    print("done")


if __name__ == "__main__":
    main()
