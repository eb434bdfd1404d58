"""What macOS Finder does, checked with Python smbprotocol (SMB 3.1.1,
encrypted) against a running smbvault.

usage: mac.py HOST PORT SHARE DOMAIN\\USER PASSWORD CHECK [ARGS...]

CHECK is one of:
  aapl        AAPL server query: server caps (with READ_DIR_ATTR), volume
              caps and the model string come back
  streams     AFP_AfpInfo and AFP_Resource written and read back; a
              malformed AfpInfo write is refused; an AfpInfo with empty
              FinderInfo deletes the stream
  nfc         NFC and NFD spellings (café, パ) reach one file and one folder
  dotfiles    .DS_Store and ._name files behave like any other file
  finder      a file tagged, labelled and commented as Finder does it
              (AFP_AfpInfo, com.apple.metadata:_kMDItemUserTags and
              kMDItemFinderComment streams) lists with its label through
              READDIR_ATTR and reads back intact
  bigdir N    a folder of N files (every 10th with Finder info, every 20th
              with a resource fork) listed in one QUERY_DIRECTORY
              enumeration with READDIR_ATTR data; prints the time taken
Prints "ok" on success; exits non-zero with a message otherwise.
"""
import plistlib
import struct
import sys
import time
import unicodedata
import uuid

from smbprotocol.create_contexts import SMB2CreateContextRequest
from smbprotocol.exceptions import SMBResponseException
from smbprotocol.file_info import FileInformationClass
from smbprotocol.open import (CreateDisposition, CreateOptions, DirectoryAccessMask, FilePipePrinterAccessMask,
                              SMB2QueryDirectoryRequest, SMB2QueryDirectoryResponse, SMB2QueryInfoRequest,
                              SMB2QueryInfoResponse)

from smbtest import RW, Client

DIR_READ = DirectoryAccessMask.FILE_LIST_DIRECTORY | DirectoryAccessMask.SYNCHRONIZE | DirectoryAccessMask.FILE_READ_ATTRIBUTES
STATUS_INVALID_PARAMETER = 0xC000000D
STATUS_OBJECT_NAME_NOT_FOUND = 0xC0000034
STATUS_NO_MORE_FILES = 0x80000006
# AAPL (Apple smb_2.h, as Samba vfs_fruit implements it).
AAPL_SERVER_QUERY = 1
AAPL_SERVER_CAPS, AAPL_VOLUME_CAPS, AAPL_MODEL_INFO = 1, 2, 4
AAPL_READ_DIR_ATTR = 1


def fail(msg):
    print(msg)
    sys.exit(1)


class MacClient(Client):
    """A session that also speaks what Finder does."""

    def mkdir(self, name):
        d, _ = self.create(name, DIR_READ, CreateDisposition.FILE_OPEN_IF, CreateOptions.FILE_DIRECTORY_FILE)
        d.close()

    def put(self, name, data):
        f, _ = self.create(name, disp=CreateDisposition.FILE_OVERWRITE_IF)
        if data:
            f.write(data, 0)
        f.close()

    def get(self, name):
        f, _ = self.create(name, FilePipePrinterAccessMask.GENERIC_READ, CreateDisposition.FILE_OPEN)
        data = f.read(0, f.end_of_file) if f.end_of_file else b""
        f.close()
        return data

    def aapl(self):
        """Sends the AAPL server query on a root open, as Finder does first."""
        ctx = SMB2CreateContextRequest()
        ctx["buffer_name"] = b"AAPL"
        caps = AAPL_SERVER_CAPS | AAPL_VOLUME_CAPS | AAPL_MODEL_INFO
        ctx["buffer_data"] = struct.pack("<IIQQ", AAPL_SERVER_QUERY, 0, caps, 0x7)
        d, resp = self.create("", DIR_READ, CreateDisposition.FILE_OPEN, CreateOptions.FILE_DIRECTORY_FILE, contexts=[ctx])
        d.close()
        for c in resp or []:
            if isinstance(c, bytes) and len(c) >= 16 and struct.unpack_from("<I", c)[0] == AAPL_SERVER_QUERY:
                return parse_aapl(c)
        fail(f"no AAPL response context: {resp}")


def parse_aapl(c):
    bitmap = struct.unpack_from("<Q", c, 8)[0]
    pos, out = 16, {}
    if bitmap & AAPL_SERVER_CAPS:
        out["server_caps"] = struct.unpack_from("<Q", c, pos)[0]
        pos += 8
    if bitmap & AAPL_VOLUME_CAPS:
        out["volume_caps"] = struct.unpack_from("<Q", c, pos)[0]
        pos += 8
    if bitmap & AAPL_MODEL_INFO:
        n = struct.unpack_from("<I", c, pos + 4)[0]
        out["model"] = c[pos + 8:pos + 8 + n].decode("utf-16-le")
    return out


def status_of(fn):
    try:
        fn()
        return None
    except SMBResponseException as e:
        return e.status


def afp_info(finder):
    """A 60-byte AfpInfo record with this 32-byte FinderInfo, laid out as
    Samba's smbtorture writes it (torture_afpinfo_pack in
    source4/torture/vfs/fruit.c, constants from source3/include/MacExtensions.h):
    big-endian signature "AFP\\0", version 0x00000100, 4 reserved bytes,
    backup time 0x80000000, FinderInfo, 12 bytes of ProDOS info and padding."""
    return b"AFP\x00" + struct.pack(">III", 0x00000100, 0, 0x80000000) + finder + b"\x00" * 12


def finder_info(ftype=b"TEXT", creator=b"ttxt", flags=0x0100):
    return ftype + creator + struct.pack(">H", flags) + b"\x00" * 22


def check_aapl(c):
    r = c.aapl()
    if not r.get("server_caps", 0) & AAPL_READ_DIR_ATTR:
        fail(f"READ_DIR_ATTR not in server caps: {r}")
    if "volume_caps" not in r or not r.get("model"):
        fail(f"volume caps or model missing: {r}")
    print(f"server_caps=0x{r['server_caps']:x} volume_caps=0x{r['volume_caps']:x} model={r['model']}")


def check_streams(c):
    name = "finder-" + uuid.uuid4().hex[:8] + ".txt"
    c.put(name, b"data fork")
    rec = afp_info(finder_info())
    c.put(name + ":AFP_AfpInfo", rec)
    if c.get(name + ":AFP_AfpInfo") != rec:
        fail("AfpInfo did not read back")
    rsrc = bytes(range(256)) * 40
    c.put(name + ":AFP_Resource", rsrc)
    if c.get(name + ":AFP_Resource") != rsrc:
        fail("resource fork did not read back")
    if c.get(name) != b"data fork":
        fail("data fork changed")
    # Malformed AfpInfo writes are refused and leave the record alone.
    f, _ = c.create(name + ":AFP_AfpInfo")
    # (As Samba's vfs_fruit and macOS: smbtorture vfs.fruit writing_afpinfo.)
    for bad in (b"XYZ\x00" + rec[4:], rec[:4] + struct.pack(">I", 2) + rec[8:],
                rec[:4] + struct.pack(">I", 0x00010000) + rec[8:], rec[:2]):
        st = status_of(lambda: f.write(bad, 0))
        if st != STATUS_INVALID_PARAMETER:
            fail(f"malformed AfpInfo write: status {st}")
    if status_of(lambda: f.write(rec[:30], 7)) != STATUS_INVALID_PARAMETER:
        fail("short AfpInfo write at offset 7 accepted")
    f.close()
    if c.get(name + ":AFP_AfpInfo") != rec:
        fail("AfpInfo changed by refused writes")
    # Empty FinderInfo: the stream goes away.
    c.put(name + ":AFP_AfpInfo", afp_info(b"\x00" * 32))
    st = status_of(lambda: c.get(name + ":AFP_AfpInfo"))
    if st != STATUS_OBJECT_NAME_NOT_FOUND:
        fail(f"AfpInfo with empty FinderInfo still there: {st}")
    print("afpinfo, resource fork, refusals and deletion ok")


# What Finder writes when a file is tagged, labelled and commented.
#
# macOS keeps tags and comments in extended attributes; its SMB client
# reads and writes an extended attribute as the named stream of the same
# name, with ':' sent as U+F022 (the SFM mapping: Samba
# source3/lib/string_replace.c macos_string_replace_map "0x3a:0xf022";
# smbtorture source4/torture/vfs/fruit.c lists the tags stream of a file
# converted from a Mac as ":com.apple.metadata\xef\x80\xa2_kMDItemUserTags:$DATA").
TAGS_STREAM = "com.apple.metadata\uf022_kMDItemUserTags"
COMMENT_STREAM = "com.apple.metadata\uf022kMDItemFinderComment"
# The value of com.apple.metadata:_kMDItemUserTags from a file tagged on
# macOS: a binary plist of the tags "test", "Grün" (green, 2), "Lila"
# (purple, 3), "Gelb" (yellow, 5), "Blau" (blue, 4), each "name\ncolour".
# Bytes copied from the AppleDouble file Samba's smbtorture keeps from a Mac
# (osx_adouble_w_xattr's hexdump, EA entry 1, 91 bytes, in
# source4/torture/vfs/fruit.c of Samba 4.17).
MAC_TAGS = bytes.fromhex(
    "62706c6973743030a501020304055474657374660047007200fc006e000a0032564c696c610a33"
    "5647656c620a3556426c61750a34080e1320272e00000000000001010000000000000006000000"
    "00000000000000000000000035")
# The label colour lives in the FinderInfo's Finder flags (big endian, bytes
# 8-9): bits 1-3 are the colour index, the same numbers as in the tags
# (Apple CarbonCore Finder.h: kColor = 0x000E); red is 6.
LABEL_RED = 6
# A Finder comment is com.apple.metadata:kMDItemFinderComment, a binary
# plist holding one string (what `xattr -p` shows on a Mac); Python's
# plistlib writes Apple's binary plist format.
COMMENT = "見積書 — 2026年度 Q3, for Tanaka-san"


def query_streams(m, f):
    """FileStreamInformation of an open (MS-FSCC 2.4.44): {name: size}."""
    q = SMB2QueryInfoRequest()
    q["info_type"] = 1
    q["file_info_class"] = FileInformationClass.FILE_STREAM_INFORMATION
    q["output_buffer_length"] = 65536
    q["file_id"] = f.file_id
    req = m.conn.send(q, m.sess.session_id, m.tree.tree_connect_id)
    r = SMB2QueryInfoResponse()
    r.unpack(m.conn.receive(req)["data"].get_value())
    buf, out, pos = r["buffer"].get_value(), {}, 0
    while True:
        nxt, nlen, size = struct.unpack_from("<IIq", buf, pos)
        out[buf[pos + 24:pos + 24 + nlen].decode("utf-16-le")] = size
        if nxt == 0:
            return out
        pos += nxt


def list_id_both(m, d):
    """One FileIdBothDirectoryInformation listing: {name: entry}."""
    h, _ = m.create(d, DIR_READ, CreateDisposition.FILE_OPEN, CreateOptions.FILE_DIRECTORY_FILE)
    entries = h.query_directory("*", FileInformationClass.FILE_ID_BOTH_DIRECTORY_INFORMATION)
    h.close()
    return {e["file_name"].get_value().decode("utf-16-le"): e for e in entries}


def check_finder(c, host, port, share, user, password):
    """Tag, label and comment a file as Finder does; list the folder with
    READDIR_ATTR and read everything back on a fresh connection."""
    d = "finder-" + uuid.uuid4().hex[:6]
    name = d + "\\見積書.pdf"
    m = MacClient(host, port, share, user, password)
    m.aapl()
    m.mkdir(d)
    m.put(name, b"%PDF-1.4 quote")
    finder = b"PDF CARO" + struct.pack(">H", LABEL_RED << 1) + b"\x00" * 22
    m.put(name + ":AFP_AfpInfo", afp_info(finder))
    m.put(name + ":" + TAGS_STREAM, MAC_TAGS)
    comment = plistlib.dumps(COMMENT, fmt=plistlib.FMT_BINARY)
    m.put(name + ":" + COMMENT_STREAM, comment)
    m.close()

    m = MacClient(host, port, share, user, password)
    m.aapl()
    e = list_id_both(m, d).get("見積書.pdf")
    if e is None or e["short_name_length"].get_value() != 24:
        fail("no READDIR_ATTR entry for the file")
    fi = e["short_name"].get_value()[8:24]
    flags = struct.unpack(">H", fi[8:10])[0]
    if fi[:8] != b"PDF CARO" or (flags & 0x000E) >> 1 != LABEL_RED:
        fail(f"READDIR_ATTR FinderInfo {fi.hex()}: type/creator or label lost")
    f, _ = m.create(name, FilePipePrinterAccessMask.GENERIC_READ, CreateDisposition.FILE_OPEN)
    streams = query_streams(m, f)
    f.close()
    want = {"::$DATA": 14, ":AFP_AfpInfo:$DATA": 60, f":{TAGS_STREAM}:$DATA": len(MAC_TAGS),
            f":{COMMENT_STREAM}:$DATA": len(comment)}
    if streams != want:
        fail(f"streams {streams}, want {want}")
    if m.get(name + ":AFP_AfpInfo") != afp_info(finder):
        fail("AfpInfo did not read back")
    if m.get(name + ":" + TAGS_STREAM) != MAC_TAGS:
        fail("tags did not read back")
    tags = plistlib.loads(m.get(name + ":" + TAGS_STREAM))
    if tags != ["test", "Grün\n2", "Lila\n3", "Gelb\n5", "Blau\n4"]:
        fail(f"tags {tags}")
    if plistlib.loads(m.get(name + ":" + COMMENT_STREAM)) != COMMENT:
        fail("comment did not read back")
    m.close()
    print(f"label {LABEL_RED} (flags {flags:#06x}), {len(tags)} tags and the comment read back; "
          f"READDIR_ATTR FinderInfo {fi.hex()}")


def check_nfc(c):
    base = "mac-" + uuid.uuid4().hex[:6] + "-"
    for word in ("café", "パスポート"):
        nfc, nfd = unicodedata.normalize("NFC", word), unicodedata.normalize("NFD", word)
        if nfc == nfd:
            fail("test word has one form")
        c.put(base + nfd + ".txt", b"from a Mac")
        if c.get(base + nfc + ".txt") != b"from a Mac":
            fail(f"NFC spelling of {word} does not reach the NFD-created file")
        st = status_of(lambda: c.create(base + nfc + ".txt", disp=CreateDisposition.FILE_CREATE)[0].close())
        if st is None:
            fail("NFC spelling created a twin")
        c.mkdir(base + nfd + "-dir")
        c.put(base + nfc + "-dir\\inner.txt", b"x")
        if c.get(base + nfd + "-dir\\inner.txt") != b"x":
            fail("folder spellings differ")


def check_dotfiles(c):
    d = "dot-" + uuid.uuid4().hex[:6]
    c.mkdir(d)
    for name in (".DS_Store", "._photo.jpg", "photo.jpg"):
        data = (name.encode() + b"\x00") * 100
        c.put(d + "\\" + name, data)
        if c.get(d + "\\" + name) != data:
            fail(f"{name} did not read back")
    names = list_names(c, d)
    if sorted(names) != sorted([".", "..", ".DS_Store", "._photo.jpg", "photo.jpg"]):
        fail(f"listing: {names}")
    f, _ = c.create(d + "\\._photo.jpg", RW | FilePipePrinterAccessMask.DELETE,
                  CreateDisposition.FILE_OPEN, CreateOptions.FILE_DELETE_ON_CLOSE)
    f.close()
    if "._photo.jpg" in list_names(c, d):
        fail("._photo.jpg not deleted")


def list_names(c, d):
    h, _ = c.create(d, DIR_READ, CreateDisposition.FILE_OPEN, CreateOptions.FILE_DIRECTORY_FILE)
    entries = h.query_directory("*", FileInformationClass.FILE_NAMES_INFORMATION)
    h.close()
    return [e["file_name"].get_value().decode("utf-16-le") for e in entries]


def check_bigdir(c, host, port, share, user, password, n):
    d = "bigdir-" + uuid.uuid4().hex[:6]
    c.mkdir(d)
    t0 = time.monotonic()
    for i in range(n):
        name = f"{d}\\IMG_{i:05d}.jpg"
        f, _ = c.create(name, disp=CreateDisposition.FILE_CREATE)
        f.write(b"\xff\xd8" + struct.pack("<I", i), 0)
        f.close()
        if i % 10 == 0:
            c.put(name + ":AFP_AfpInfo", afp_info(finder_info(b"JPEG", b"prvw", 0x0400 | (i % 7))))
        if i % 20 == 0:
            c.put(name + ":AFP_Resource", b"R" * (100 + i))
    made = time.monotonic() - t0
    # A fresh connection, as Finder opening the folder: AAPL, then one enumeration.
    m = MacClient(host, port, share, user, password)
    m.aapl()
    t1 = time.monotonic()
    h, _ = m.create(d, DIR_READ, CreateDisposition.FILE_OPEN, CreateOptions.FILE_DIRECTORY_FILE)
    entries, calls, server = [], 0, 0.0
    while True:
        q, _ = h.query_directory("*", FileInformationClass.FILE_ID_BOTH_DIRECTORY_INFORMATION,
                                 max_output=1024 * 1024, send=False)
        t = time.monotonic()
        req = m.conn.send(q, m.sess.session_id, m.tree.tree_connect_id)
        try:
            resp = m.conn.receive(req)
        except SMBResponseException as e:
            if e.status == STATUS_NO_MORE_FILES:
                break
            raise
        server += time.monotonic() - t
        calls += 1
        qr = SMB2QueryDirectoryResponse()
        qr.unpack(resp["data"].get_value())
        entries.extend(SMB2QueryDirectoryRequest.unpack_response(
            FileInformationClass.FILE_ID_BOTH_DIRECTORY_INFORMATION, qr["buffer"].get_value()))
    h.close()
    listed = time.monotonic() - t1
    files = [e for e in entries if e["file_name"].get_value().decode("utf-16-le") not in (".", "..")]
    if len(files) != n:
        fail(f"listed {len(files)} of {n} files")
    with_info = with_rsrc = 0
    for e in files:
        name = e["file_name"].get_value().decode("utf-16-le")
        i = int(name[4:9])
        if e["short_name_length"].get_value() != 24:
            fail(f"{name}: no READDIR_ATTR data")
        sn = e["short_name"].get_value()
        rsrc_len = struct.unpack_from("<Q", sn, 0)[0]
        fi = sn[8:24]
        mode = e["reserved2"].get_value()
        if e["ea_size"].get_value() == 0 or mode & 0o170000 != 0o100000:
            fail(f"{name}: max access {e['ea_size'].get_value():#x}, mode {mode:o}")
        if i % 10 == 0:
            flags = struct.unpack(">H", fi[8:10])[0]
            if fi[:8] != b"JPEGprvw" or flags != 0x0400 | (i % 7):
                fail(f"{name}: FinderInfo {fi.hex()}")
            with_info += 1
        elif fi[:12] != b"\x00" * 12:
            fail(f"{name}: unexpected FinderInfo {fi.hex()}")
        want = 100 + i if i % 20 == 0 else 0
        if rsrc_len != want:
            fail(f"{name}: resource fork length {rsrc_len}, want {want}")
        with_rsrc += rsrc_len > 0
    m.close()
    print(f"created {n} files in {made:.1f} s; listed {len(entries)} entries with READDIR_ATTR "
          f"({with_info} with Finder info, {with_rsrc} with a resource fork) in {calls} "
          f"QUERY_DIRECTORY calls: {server * 1000:.0f} ms request to response, "
          f"{listed * 1000:.0f} ms with open and client-side decoding")


def main():
    if len(sys.argv) < 7:
        fail(__doc__)
    host, port, share, user, password, check = sys.argv[1:7]
    port = int(port)
    c = MacClient(host, port, share, user, password)
    if check == "aapl":
        check_aapl(c)
    elif check == "streams":
        check_streams(c)
    elif check == "nfc":
        check_nfc(c)
    elif check == "dotfiles":
        check_dotfiles(c)
    elif check == "finder":
        check_finder(c, host, port, share, user, password)
    elif check == "bigdir":
        check_bigdir(c, host, port, share, user, password, int(sys.argv[7]))
    else:
        fail(f"unknown check {check}")
    c.close()
    print("ok")


if __name__ == "__main__":
    main()
