"""Writes 1 MiB chunks one after the other through smbprotocol (each WRITE
waits for its response, i.e. is acknowledged) until the server goes away,
then prints how many were acknowledged. `verify` mode reads the file back
and checks that every acknowledged chunk is intact.

usage: sigterm_writer.py write HOST PORT SHARE USER PASS NAME MARKER
       sigterm_writer.py verify HOST PORT SHARE USER PASS NAME ACKED"""
import hashlib
import os
import sys

from smbprotocol.open import CreateDisposition

from smbtest import Client

CHUNK = 1 << 20


def chunk(i):
    seed = hashlib.sha256(i.to_bytes(8, "little")).digest()
    return (seed * (CHUNK // len(seed) + 1))[:CHUNK]


def main():
    mode, host, port, share, user, pw, name, extra = sys.argv[1:9]
    c = Client(host, int(port), share, user, pw)
    if mode == "write":
        f = c.open(name, disp=CreateDisposition.FILE_OVERWRITE_IF)
        acked = 0
        try:
            for i in range(4096):
                f.write(chunk(i), i * CHUNK)
                acked = i + 1
                if acked == 8:
                    open(extra, "w").close()
        except Exception as e:  # the server went away mid-transfer
            print(f"stopped: {type(e).__name__}", flush=True)
        print(f"acked {acked}", flush=True)
        return
    acked = int(extra)
    f = c.open(name, disp=CreateDisposition.FILE_OPEN)
    for i in range(acked):
        got = f.read(i * CHUNK, CHUNK)
        if got != chunk(i):
            print(f"chunk {i} differs")
            sys.exit(1)
    f.close()
    print(f"verified {acked}")
    c.close()


if __name__ == "__main__":
    main()
