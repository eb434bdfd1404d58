"""Previous Versions through a @GMT- path token, as a client that does not
use the TWrp context sends it (Python smbprotocol): lists the snapshot's
root and a folder in it, reads a file, and tries to change it. Prints one
JSON object.

usage: previous_versions.py HOST PORT SHARE DOMAIN\\USER PASSWORD TOKEN FOLDER FILE
"""
import json
import struct
import sys

from smbprotocol.exceptions import SMBResponseException
from smbprotocol.file_info import FileInformationClass
from smbprotocol.open import (CreateDisposition, CreateOptions, FilePipePrinterAccessMask, SMB2SetInfoRequest,
                              SMB2SetInfoResponse)

from smbtest import Client

A = FilePipePrinterAccessMask


def status_of(fn):
    """'ok' or the NTSTATUS name/number an operation failed with."""
    try:
        fn()
        return "ok"
    except SMBResponseException as e:
        return "0x%08x" % e.status


def listing(c, path):
    d, _ = c.create(path, A.FILE_READ_DATA | A.FILE_READ_ATTRIBUTES, CreateDisposition.FILE_OPEN,
                    CreateOptions.FILE_DIRECTORY_FILE)
    names = sorted(e["file_name"].get_value().decode("utf-16-le")
                   for e in d.query_directory("*", FileInformationClass.FILE_NAMES_INFORMATION))
    d.close()
    return [n for n in names if n not in (".", "..")]


def set_info(c, f, klass, buf):
    req = SMB2SetInfoRequest()
    req["info_type"] = 1  # SMB2_0_INFO_FILE
    req["file_info_class"] = klass
    req["file_id"] = f.file_id
    req["buffer"] = buf
    resp = c.conn.receive(c.conn.send(req, sid=c.sess.session_id, tid=c.tree.tree_connect_id))
    SMB2SetInfoResponse().unpack(resp["data"].get_value())


def main():
    host, port, share, user, password, token, folder, name = sys.argv[1:9]
    c = Client(host, int(port), share, user, password)
    out = {"root": listing(c, token), "folder": listing(c, token + "\\" + folder)}
    path = token + "\\" + name
    # Opening with write access succeeds (smbtorture smb2.twrp.write); the
    # changes themselves are refused.
    f, _ = c.create(path, A.GENERIC_READ | A.GENERIC_WRITE | A.DELETE, CreateDisposition.FILE_OPEN)
    out["data"] = f.read(0, 1 << 20).decode("utf-8")
    out["write"] = status_of(lambda: f.write(b"x", 0))
    # FileDispositionInformation (MS-FSCC 2.4.11): DeletePending = 1.
    out["delete"] = status_of(lambda: set_info(c, f, 13, b"\x01"))
    # FileRenameInformation (MS-FSCC 2.4.37.2), SMB2 form.
    new = "renamed.txt".encode("utf-16-le")
    rename = struct.pack("<B7xQI", 0, 0, len(new)) + new
    out["rename"] = status_of(lambda: set_info(c, f, 10, rename))
    f.close()
    out["overwrite"] = status_of(lambda: c.create(path, A.GENERIC_READ, CreateDisposition.FILE_OVERWRITE_IF))
    out["create"] = status_of(lambda: c.create(token + "\\new.txt", A.GENERIC_READ, CreateDisposition.FILE_CREATE))
    c.close()
    print(json.dumps(out, ensure_ascii=False))


if __name__ == "__main__":
    main()
