"""For the power-loss test (protocol-tests/kill.rs): writes flushed.bin and
FLUSHes it, writes through.bin with WRITE_THROUGH, then writes
unflushed.bin without either; prints "done" and waits to be killed.

usage: flush_then_kill.py HOST PORT SHARE DOMAIN\\USER PASSWORD SIZE
"""
import sys
import time

from smbprotocol.open import CreateDisposition, CreateOptions, FilePipePrinterAccessMask, ShareAccess

from smbtest import Client


def data(seed, size):
    return bytes((seed + i * 7 + (i >> 9)) & 0xFF for i in range(size))


def put(c, name, payload, flush=False, through=False):
    f = c.open(name, FilePipePrinterAccessMask.GENERIC_WRITE, CreateDisposition.FILE_OVERWRITE_IF,
               CreateOptions.FILE_NON_DIRECTORY_FILE, ShareAccess.FILE_SHARE_READ)
    # 5000-byte writes: partial chunks, so the write-back tail is involved.
    for off in range(0, len(payload), 5000):
        f.write(payload[off:off + 5000], off, write_through=through)
    if flush:
        f.flush()
    return f


def main():
    host, port, share, user, password, size = sys.argv[1:7]
    port, size = int(port), int(size)
    c = Client(host, port, share, user, password)
    # The handles stay open: only FLUSH and WRITE_THROUGH make them durable.
    keep = [put(c, "flushed.bin", data(1, size), flush=True),
            put(c, "through.bin", data(2, size), through=True),
            put(c, "unflushed.bin", data(3, size))]
    print("done", len(keep), flush=True)
    time.sleep(600)


if __name__ == "__main__":
    main()
