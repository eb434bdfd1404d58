"""For the kill test of security descriptors and extended attributes
(protocol-tests/kill.rs): `set` creates files, gives each an EA
(SET_INFO FileFullEaInformation, MS-FSCC 2.4.15) and a DACL naming a SID of
its own (SET_INFO SMB2_0_INFO_SECURITY, MS-SMB2 2.2.39), prints "done" once
every request was answered and waits to be killed; `check` reads both back
and prints "ok", or the first difference.

usage: meta_then_kill.py set|check HOST PORT SHARE DOMAIN\\USER PASSWORD SEED COUNT
"""
import struct
import sys
import time

from smbprotocol.open import (CreateDisposition, FilePipePrinterAccessMask, SMB2QueryInfoRequest,
                              SMB2QueryInfoResponse, SMB2SetInfoRequest, SMB2SetInfoResponse)

from smbtest import Client

ACCESS = (FilePipePrinterAccessMask.GENERIC_READ | FilePipePrinterAccessMask.GENERIC_WRITE
          | FilePipePrinterAccessMask.WRITE_DAC | FilePipePrinterAccessMask.READ_CONTROL
          | FilePipePrinterAccessMask.FILE_WRITE_EA | FilePipePrinterAccessMask.FILE_READ_EA)


def sid(seed, i):
    """S-1-5-21-7-SEED-I (MS-DTYP 2.4.2.2)."""
    subs = [21, 7, seed, i]
    return struct.pack("<BB", 1, len(subs)) + (5).to_bytes(6, "big") + struct.pack("<4I", *subs)


def descriptor(seed, i):
    """Self-relative, DACL only: allow SID read, allow Everyone everything (MS-DTYP 2.4.6)."""
    def ace(mask, s):
        return struct.pack("<BBHI", 0, 0, 8 + len(s), mask) + s
    everyone = struct.pack("<BB", 1, 1) + (1).to_bytes(6, "big") + struct.pack("<I", 0)
    aces = ace(0x00120089, sid(seed, i)) + ace(0x001F01FF, everyone)
    acl = struct.pack("<BBHHH", 2, 0, 8 + len(aces), 2, 0) + aces
    return struct.pack("<BBHIIII", 1, 0, 0x8004, 0, 0, 0, 20) + acl


def ea(seed, i):
    name, value = b"SMBVAULT.KILL", f"value {seed}-{i}".encode()
    return struct.pack("<IBBH", 0, 0, len(name), len(value)) + name + b"\0" + value


def call(c, req):
    return c.conn.receive(c.conn.send(req, sid=c.sess.session_id, tid=c.tree.tree_connect_id))


def set_info(c, f, info_type, cls, extra, buf):
    req = SMB2SetInfoRequest()
    req["info_type"] = info_type
    req["file_info_class"] = cls
    req["additional_information"] = extra
    req["file_id"] = f.file_id
    req["buffer"] = buf
    SMB2SetInfoResponse().unpack(call(c, req)["data"].get_value())


def query_info(c, f, info_type, cls, extra):
    req = SMB2QueryInfoRequest()
    req["info_type"] = info_type
    req["file_info_class"] = cls
    req["additional_information"] = extra
    req["output_buffer_length"] = 65536
    req["file_id"] = f.file_id
    resp = SMB2QueryInfoResponse()
    resp.unpack(call(c, req)["data"].get_value())
    return resp["buffer"].get_value()


def main():
    mode, host, port, share, user, password, seed, count = sys.argv[1:9]
    seed, count = int(seed), int(count)
    c = Client(host, int(port), share, user, password)
    for i in range(count):
        name = f"meta-{seed}-{i}.txt"
        if mode == "set":
            f = c.open(name, ACCESS, CreateDisposition.FILE_OVERWRITE_IF)
            f.write(f"file {seed}-{i}".encode(), 0)
            set_info(c, f, 1, 15, 0, ea(seed, i))  # FileFullEaInformation
            set_info(c, f, 3, 0, 4, descriptor(seed, i))  # DACL_SECURITY_INFORMATION
            f.close()
        else:
            f = c.open(name, ACCESS, CreateDisposition.FILE_OPEN)
            eas = query_info(c, f, 1, 15, 0)
            sd = query_info(c, f, 3, 0, 4)
            f.close()
            if f"value {seed}-{i}".encode() not in eas:
                print(f"{name}: EA lost: {eas.hex()}")
                return
            if sid(seed, i) not in sd:
                print(f"{name}: descriptor lost: {sd.hex()}")
                return
    print("done" if mode == "set" else "ok", flush=True)
    if mode == "set":
        time.sleep(600)


if __name__ == "__main__":
    main()
