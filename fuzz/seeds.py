#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets from real captures.

    python3 fuzz/seeds.py /work/shared/captures protocol-tests/fixtures

Seeds (see docs/fuzzing.md for the input formats):
- engine_frame: every plaintext SMB2 request frame (compounds whole) of the
  signed captures and of the smbtorture lease capture, after the logon,
  behind a control byte (0: sealed, all header fix-ups; 0x08 for the IPC$
  frames of the share-listing capture, which target the IPC$ tree).
- ntlm_server: the two SESSION_SETUP security buffers of each logon, as
  u16-LE length of the first, first, second.
- rpc_pipe: the captured DCE/RPC PDUs in protocol-tests/fixtures/rpc and
  the pipe WRITE/IOCTL payloads of the share-listing capture, behind an
  op byte.
- security_descriptor: the descriptors in the captures' CREATE SD contexts
  and QUERY_INFO/SET_INFO(SECURITY) buffers, when there are any, plus the
  descriptors smbtorture's lease capture carries.
Pure Python (no tshark): classic pcap, Ethernet, IPv4/IPv6, TCP reassembly.
"""
import hashlib
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def records(data):
    magic = struct.unpack("<I", data[:4])[0]
    end = "<" if magic in (0xA1B2C3D4, 0xA1B23C4D) else ">"
    at = 24
    while at + 16 <= len(data):
        incl = struct.unpack(end + "I", data[at + 8 : at + 12])[0]
        yield data[at + 16 : at + 16 + incl]
        at += 16 + incl


def tcp(frame):
    et = struct.unpack(">H", frame[12:14])[0]
    if et == 0x0800:
        ip = frame[14:]
        ihl = (ip[0] & 15) * 4
        total = struct.unpack(">H", ip[2:4])[0]
        proto, pl = ip[9], ip[ihl:total]
    elif et == 0x86DD:
        ip = frame[14:]
        plen = struct.unpack(">H", ip[4:6])[0]
        proto, pl = ip[6], ip[40 : 40 + plen]
    else:
        return None
    if proto != 6:
        return None
    off = (pl[12] >> 4) * 4
    sp, dp, seq = struct.unpack(">HHI", pl[:8])
    return sp, dp, seq, pl[13], pl[off:]


def frames(path, port):
    """(client_port, to_server, frame bytes) in arrival order."""
    data = open(path, "rb").read()
    streams = {}
    out = []
    for rec in records(data):
        t = tcp(rec)
        if not t:
            continue
        sp, dp, seq, flags, payload = t
        if dp == port:
            key = (sp, True)
        elif sp == port:
            key = (dp, False)
        else:
            continue
        st = streams.setdefault(key, {"next": None, "buf": b""})
        if flags & 2:
            st["next"] = (seq + 1) & 0xFFFFFFFF
            continue
        if not payload:
            continue
        nxt = st["next"] if st["next"] is not None else seq
        skip = (nxt - seq) & 0xFFFFFFFF
        if skip >= 1 << 31:
            st["buf"] = b""
            skip = 0
        if skip >= len(payload):
            continue
        st["buf"] += payload[skip:]
        st["next"] = (seq + len(payload)) & 0xFFFFFFFF
        while len(st["buf"]) >= 4:
            n = int.from_bytes(st["buf"][1:4], "big")
            if len(st["buf"]) < 4 + n:
                break
            out.append((key[0], key[1], st["buf"][4 : 4 + n]))
            st["buf"] = st["buf"][4 + n :]
    return out


def split(frame):
    out, at = [], 0
    while at + 64 <= len(frame):
        nxt = struct.unpack("<I", frame[at + 20 : at + 24])[0]
        if nxt == 0 or at + nxt > len(frame):
            out.append(frame[at:])
            break
        out.append(frame[at : at + nxt])
        at += nxt
    return out


def cmd(m):
    return struct.unpack("<H", m[12:14])[0]


def setup_token(m, response):
    off, ln = struct.unpack("<HH", m[68:72]) if response else struct.unpack("<HH", m[76:80])
    return m[off : off + ln]


def write(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    h = hashlib.sha1(data).hexdigest()[:16]
    open(os.path.join(d, "%s-%s" % (name, h)), "wb").write(data)


def sd_candidates(m):
    """Self-relative descriptors inside a message (revision 1, SE_SELF_RELATIVE)."""
    for i in range(64, len(m) - 20):
        if m[i] == 1 and m[i + 1] == 0 and m[i + 3] & 0x80:
            offs = struct.unpack("<4I", m[i + 4 : i + 20])
            if any(offs) and all(o == 0 or 20 <= o < len(m) - i for o in offs):
                yield m[i:]


def main():
    caps, fixtures = sys.argv[1], sys.argv[2]
    plans = [(f, 4458) for f in sorted(os.listdir(caps)) if f.endswith(".pcap") and "large" not in f]
    lease = os.path.join(fixtures, "captures", "smbtorture-lease-durable-v2.pcap")
    plans = [(os.path.join(caps, f), p) for f, p in plans]
    if os.path.exists(lease):
        plans.append((lease, 4471))
    sds = set()
    for path, port in plans:
        base = os.path.basename(path)[:-5]
        fs = frames(path, port)
        sessions = {}
        for cport, to_server, fr in fs:
            if fr[:4] != b"\xfeSMB":
                continue
            msgs = split(fr)
            st = sessions.setdefault(cport, {"setup": [], "logged": False, "n": 0})
            for m in msgs:
                if cmd(m) == 3 and not (m[16] & 1) and b"I\x00P\x00C\x00$" in m:
                    st["ipc"] = True
            if all(cmd(m) == 1 for m in msgs):
                st["setup"].append((to_server, msgs[0]))
                continue
            if to_server and cmd(msgs[0]) != 0:
                st["n"] += 1
                ctl = 0x08 if st.get("ipc") else 0x00
                write("engine_frame", "%s-%d" % (base, st["n"]), bytes([ctl]) + fr)
            for m in msgs:
                if cmd(m) in (5, 16, 17):
                    for c in sd_candidates(m):
                        sds.add(c[:512])
        for cport, st in sessions.items():
            reqs = [m for d, m in st["setup"] if d]
            if len(reqs) >= 2:
                t1, t2 = setup_token(reqs[0], False), setup_token(reqs[1], False)
                write("ntlm_server", base, struct.pack("<H", len(t1)) + t1 + t2)
            resps = [m for d, m in st["setup"] if not d]
            if base == "smbclient-SMB3_11-signed" and resps:
                print_params(setup_token(resps[0], True))
        # IPC$ pipe payloads: WRITE data and IOCTL input buffers.
        if "list-shares" in base:
            for _, to_server, fr in fs:
                if not to_server or fr[:4] != b"\xfeSMB":
                    continue
                for m in split(fr):
                    if cmd(m) == 9:
                        off, ln = struct.unpack("<HI", m[66:72])
                        write("rpc_pipe", base + "-write", b"\x00" + op(0, m[off : off + ln]) + op(3, b""))
                    if cmd(m) == 11:
                        off, ln = struct.unpack("<II", m[88:96])
                        write("rpc_pipe", base + "-ioctl", b"\x00" + op(2, m[off : off + ln]))
    rpc = os.path.join(fixtures, "rpc")
    for f in sorted(os.listdir(rpc)):
        if f.endswith("-req.bin"):
            pdu = open(os.path.join(rpc, f), "rb").read()
            write("rpc_pipe", f[:-4], b"\x00" + op(0, pdu) + op(1, b"\x00\x01"))
            write("rpc_pipe", f[:-4] + "-wkssvc", b"\x01" + op(2, pdu))
    bind = open(os.path.join(rpc, "bind-req.bin"), "rb").read()
    enum = open(os.path.join(rpc, "netshareenumall-req.bin"), "rb").read()
    # bind, then enum through transact: the exchange smbclient -L makes.
    write("rpc_pipe", "bind-enum", b"\x00" + op(0, bind) + op(1, b"\xff\xff") + op(2, enum) + op(3, b""))
    # The captures carry no descriptors; add Windows' usual ones, built
    # byte by byte from MS-DTYP 2.4.2 (SID), 2.4.4 (ACE), 2.4.5 (ACL), 2.4.6.
    sds.update(spec_sds())
    for i, sd in enumerate(sorted(sds)):
        for sel in (0x0F, 0x2F):
            write("security_descriptor", "capture-%d" % i, bytes([sel]) + sd)


def op(code, payload):
    """One rpc_pipe operation: code, u16-LE length, payload."""
    return bytes([code]) + struct.pack("<H", len(payload)) + payload


def sid(auth, *subs):
    return bytes([1, len(subs)]) + auth.to_bytes(6, "big") + b"".join(struct.pack("<I", x) for x in subs)


def ace(t, flags, mask, s):
    body = struct.pack("<I", mask) + s
    return bytes([t, flags]) + struct.pack("<H", 4 + len(body)) + body


def acl(*aces):
    body = b"".join(aces)
    return bytes([2, 0]) + struct.pack("<HHH", 8 + len(body), len(aces), 0) + body


def sd(control, owner, group, sacl, dacl):
    out = bytearray(20)
    out[0] = 1
    struct.pack_into("<H", out, 2, control | 0x8000)
    for slot, part in ((4, owner), (8, group), (12, sacl), (16, dacl)):
        if part is not None:
            struct.pack_into("<I", out, slot, len(out))
            out += part
    return bytes(out)


def spec_sds():
    """O:BAG:SYD:(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)(A;OICI;0x1200a9;;;BU), a
    protected DACL with a deny ACE and a user SID, a NULL DACL, an empty
    DACL, one with an audit SACL and one with an object ACE."""
    ba, sy, bu = sid(5, 32, 544), sid(5, 18), sid(5, 32, 545)
    everyone, owner = sid(1, 0), sid(3, 0)
    user = sid(5, 21, 1111, 2222, 3333, 1001)
    d1 = acl(ace(0, 3, 0x1F01FF, sy), ace(0, 3, 0x1F01FF, ba), ace(0, 3, 0x1200A9, bu))
    d2 = acl(ace(1, 0, 0x10000, everyone), ace(0, 0x13, 0x1301BF, user), ace(0, 0x0B, 0x10000000, owner))
    sacl = acl(ace(2, 0xC3, 0x1F01FF, everyone))
    obj = acl(bytes([5, 0]) + struct.pack("<HII", 4 + 8 + 16 + len(user), 0x100, 1) + bytes(range(16)) + user)
    return [
        sd(0x0004 | 0x0400, ba, sy, None, d1),
        sd(0x0004 | 0x1000, user, bu, None, d2),
        sd(0x0004, ba, None, None, None),
        sd(0x0004, None, None, None, acl()),
        sd(0x0014, ba, sy, sacl, d1),
        sd(0x0004, user, sy, None, obj),
    ]


def print_params(tok):
    i = tok.find(b"NTLMSSP\x00\x02\x00\x00\x00")
    c = tok[i:]
    chal = c[24:32]
    tl, = struct.unpack("<H", c[40:42])
    to, = struct.unpack("<I", c[44:48])
    ti = c[to : to + tl]
    avs, at = {}, 0
    while at + 4 <= len(ti):
        aid, ln = struct.unpack("<HH", ti[at : at + 4])
        avs[aid] = ti[at + 4 : at + 4 + ln]
        at += 4 + ln
    name = lambda k: avs[k].decode("utf-16-le")
    print("challenge", chal.hex(), "time", struct.unpack("<Q", avs[7])[0])
    print("names", name(1), name(2), name(3), name(4))


if __name__ == "__main__":
    main()
