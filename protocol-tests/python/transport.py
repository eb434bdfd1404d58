"""SMB3 transport security checks with Python smbprotocol (issue 4).

usage: transport.py CHECK HOST PORT SHARE DOMAIN\\USER PASSWORD [ARGS...]

Checks (each prints one line starting with OK on success and exits 0;
anything else is a failure):
  roundtrip CIPHER SIGNING SIZE
        SMB 3.1.1 with require_encryption=True, offering only CIPHER
        (aes128ccm, aes128gcm, aes256ccm, aes256gcm) and SIGNING (gmac, cmac,
        hmac): write, read back and compare SIZE random bytes; prints the
        cipher and signing algorithm the server chose.
  tamper-encrypted
        An encrypted session; one encrypted WRITE goes out with one bit of its
        ciphertext flipped: the server must drop the connection (MS-SMB2
        3.3.5.2.1.1) rather than answer.
  tamper-signed
        A signed (not encrypted) session; one signed WRITE goes out with one
        bit flipped: the server must answer STATUS_ACCESS_DENIED, signed
        (3.3.5.2.4), and keep serving the connection; an unsigned READ on the
        same session is refused alike.
  unencrypted-on-encrypted
        A session the server encrypts (Session.EncryptData); a signed but
        unencrypted request must be refused with STATUS_ACCESS_DENIED (3.3.5.2.9).
  share-encryption PLAIN_SHARE
        A signed-only session: SHARE (per-share encryption "required") must come
        back with SMB2_SHAREFLAG_ENCRYPT_DATA, I/O there works encrypted and an
        unencrypted request there is refused; PLAIN_SHARE works unencrypted.
  validate-negotiate
        SMB 3.0.2: FSCTL_VALIDATE_NEGOTIATE_INFO with the true values succeeds
        (signed answer, checked by smbprotocol); with a wrong ClientGuid the
        server must drop the connection (3.3.5.15.12).
"""
import hashlib
import os
import sys
import time
import uuid

from smbprotocol.connection import Ciphers, Connection, Dialects, SigningAlgorithms
from smbprotocol.exceptions import SMBConnectionClosed, SMBResponseException
from smbprotocol.open import (CreateDisposition, CreateOptions, FilePipePrinterAccessMask,
                              ImpersonationLevel, Open, ShareAccess)
from smbprotocol.session import Session
from smbprotocol.tree import TreeConnect

CIPHERS = {
    "aes128ccm": Ciphers.AES_128_CCM,
    "aes128gcm": Ciphers.AES_128_GCM,
    "aes256ccm": Ciphers.AES_256_CCM,
    "aes256gcm": Ciphers.AES_256_GCM,
}
SIGNING = {
    "hmac": SigningAlgorithms.HMAC_SHA256,
    "cmac": SigningAlgorithms.AES_CMAC,
    "gmac": SigningAlgorithms.AES_GMAC,
}
ACCESS_DENIED = 0xC0000022


def log_on(host, port, user, password, dialect=Dialects.SMB_3_1_1, encrypt=True, ciphers=None, signing=None):
    conn = Connection(uuid.uuid4(), host, port, require_signing=True)
    conn.connect(dialect, preferred_encryption_algos=ciphers, preferred_signing_algos=signing)
    assert conn.dialect == dialect, hex(conn.dialect)
    sess = Session(conn, user, password, require_encryption=encrypt)
    sess.connect()
    return conn, sess


def tree_connect(sess, host, share):
    tree = TreeConnect(sess, rf"\\{host}\{share}")
    tree.connect()
    return tree


def open_file(tree, name):
    f = Open(tree, name)
    f.create(ImpersonationLevel.Impersonation,
             FilePipePrinterAccessMask.GENERIC_READ | FilePipePrinterAccessMask.GENERIC_WRITE,
             0, ShareAccess.FILE_SHARE_READ, CreateDisposition.FILE_OVERWRITE_IF,
             CreateOptions.FILE_NON_DIRECTORY_FILE)
    return f


def status_of(exc):
    return getattr(exc, "status", None)


def flip_next_send(conn, offset):
    """Flips bit 0 of byte `offset` (negative: from the end) of the next
    message smbprotocol hands to its transport, then restores the transport."""
    transport = conn.transport
    orig = transport.send

    def send(data):
        transport.send = orig
        # An encrypted message arrives as a TRANSFORM_HEADER structure.
        b = bytearray(data.pack() if hasattr(data, "pack") else data)
        b[offset] ^= 1
        orig(bytes(b))

    transport.send = send


def roundtrip(host, port, share, user, password, cipher, signing, size):
    conn, sess = log_on(host, port, user, password, ciphers=[CIPHERS[cipher]], signing=[SIGNING[signing]])
    assert sess.encrypt_data, "session not encrypted"
    tree = tree_connect(sess, host, share)
    data = os.urandom(int(size))
    f = open_file(tree, f"py-{cipher}-{signing}-{uuid.uuid4().hex[:8]}.bin")
    for off in range(0, len(data), conn.max_write_size):
        f.write(data[off:off + conn.max_write_size], off)
    got = bytearray()
    for off in range(0, len(data), conn.max_read_size):
        got += f.read(off, min(conn.max_read_size, len(data) - off))
    assert hashlib.sha256(got).digest() == hashlib.sha256(data).digest(), "content differs"
    f.close()
    chosen_cipher = {v: k for k, v in CIPHERS.items()}.get(conn.cipher_id, conn.cipher_id)
    chosen_sign = {v: k for k, v in SIGNING.items()}.get(conn.signing_algorithm_id, conn.signing_algorithm_id)
    print(f"OK roundtrip {len(data)} bytes cipher={chosen_cipher} signing={chosen_sign}")
    conn.disconnect()


def tamper_encrypted(host, port, share, user, password):
    conn, sess = log_on(host, port, user, password, encrypt=True)
    assert sess.encrypt_data
    tree = tree_connect(sess, host, share)
    f = open_file(tree, f"tamper-enc-{uuid.uuid4().hex[:8]}.bin")
    f.write(b"before" * 1000, 0)
    # 52-byte transform header, then ciphertext: flip a bit in the middle.
    flip_next_send(conn, 52 + 100)
    try:
        f.write(b"tampered" * 1000, 0)
    except SMBResponseException as e:
        sys.exit(f"FAIL: the server answered a tampered encrypted message: {e}")
    except SMBConnectionClosed as e:  # the connection is gone: that is the point
        print(f"OK tampered encrypted request dropped the connection ({e})")
        return
    sys.exit("FAIL: the tampered encrypted write succeeded")


def tamper_signed(host, port, share, user, password):
    conn, sess = log_on(host, port, user, password, encrypt=False)
    assert not sess.encrypt_data and sess.signing_required
    tree = tree_connect(sess, host, share)
    f = open_file(tree, f"tamper-sig-{uuid.uuid4().hex[:8]}.bin")
    f.write(b"before" * 1000, 0)
    flip_next_send(conn, -1)  # the last byte of the WRITE data
    try:
        f.write(b"tampered" * 1000, 0)
        sys.exit("FAIL: the tampered signed write succeeded")
    except SMBResponseException as e:
        if status_of(e) != ACCESS_DENIED:
            sys.exit(f"FAIL: expected STATUS_ACCESS_DENIED, got {e}")
    # The (signed) refusal verified, and the connection goes on.
    assert f.read(0, 6) == b"before"
    # An unsigned request on a session that requires signing is refused too.
    sess.signing_required = False
    try:
        f.read(0, 6)
        sys.exit("FAIL: an unsigned read on a signing session succeeded")
    except SMBResponseException as e:
        if status_of(e) != ACCESS_DENIED:
            sys.exit(f"FAIL: expected STATUS_ACCESS_DENIED for an unsigned request, got {e}")
    sess.signing_required = True
    f.close()
    print("OK tampered and unsigned requests refused with STATUS_ACCESS_DENIED; connection still serves")
    conn.disconnect()


def unencrypted_on_encrypted(host, port, share, user, password):
    conn, sess = log_on(host, port, user, password, encrypt=False)
    assert sess.encrypt_data, "the server did not set SMB2_SESSION_FLAG_ENCRYPT_DATA"
    tree = tree_connect(sess, host, share)
    f = open_file(tree, f"plain-{uuid.uuid4().hex[:8]}.bin")
    f.write(b"encrypted" * 100, 0)
    # From here on smbprotocol signs instead of encrypting (it encrypts when
    # either the session or the tree says so).
    sess.encrypt_data = tree.encrypt_data = False
    sess.signing_required = True
    try:
        f.write(b"unencrypted", 0)
        sys.exit("FAIL: an unencrypted write on an encrypted session succeeded")
    except SMBResponseException as e:
        if status_of(e) != ACCESS_DENIED:
            sys.exit(f"FAIL: expected STATUS_ACCESS_DENIED, got {e}")
    sess.encrypt_data = tree.encrypt_data = True
    assert f.read(0, 9) == b"encrypted"
    f.close()
    print("OK unencrypted request on an encrypted session refused with STATUS_ACCESS_DENIED")
    conn.disconnect()


def share_encryption(host, port, share, user, password, plain_share):
    conn, sess = log_on(host, port, user, password, encrypt=False)
    assert not sess.encrypt_data, "session unexpectedly encrypted"
    enc = tree_connect(sess, host, share)
    assert enc.encrypt_data, "SMB2_SHAREFLAG_ENCRYPT_DATA missing"
    f = open_file(enc, f"share-{uuid.uuid4().hex[:8]}.bin")
    f.write(b"secret" * 100, 0)
    enc.encrypt_data = False
    try:
        f.read(0, 6)
        sys.exit("FAIL: an unencrypted read on an encrypting share succeeded")
    except SMBResponseException as e:
        if status_of(e) != ACCESS_DENIED:
            sys.exit(f"FAIL: expected STATUS_ACCESS_DENIED, got {e}")
    enc.encrypt_data = True
    assert f.read(0, 6) == b"secret"
    f.close()
    plain = tree_connect(sess, host, plain_share)
    assert not plain.encrypt_data
    g = open_file(plain, f"plain-{uuid.uuid4().hex[:8]}.bin")
    g.write(b"public", 0)
    assert g.read(0, 6) == b"public"
    g.close()
    print("OK per-share encryption enforced; the other share serves signed")
    conn.disconnect()


def validate_negotiate(host, port, share, user, password):
    conn, sess = log_on(host, port, user, password, dialect=Dialects.SMB_3_0_2, encrypt=False)
    # TreeConnect.connect() runs FSCTL_VALIDATE_NEGOTIATE_INFO and checks the
    # (signed) answer against what was negotiated.
    tree = tree_connect(sess, host, share)
    conn.client_guid = uuid.uuid4()
    try:
        tree._verify_dialect_negotiate()
    except SMBResponseException as e:
        sys.exit(f"FAIL: a mismatched VALIDATE_NEGOTIATE_INFO was answered: {e}")
    except SMBConnectionClosed as e:
        print(f"OK validate negotiate: true values accepted, wrong ClientGuid dropped the connection ({e})")
        return
    sys.exit("FAIL: a mismatched VALIDATE_NEGOTIATE_INFO succeeded")


def main():
    check, host, port, share, user, password, *rest = sys.argv[1:]
    port = int(port)
    start = time.time()
    {
        "roundtrip": roundtrip,
        "tamper-encrypted": tamper_encrypted,
        "tamper-signed": tamper_signed,
        "unencrypted-on-encrypted": unencrypted_on_encrypted,
        "share-encryption": share_encryption,
        "validate-negotiate": validate_negotiate,
    }[check](host, port, share, user, password, *rest)
    print(f"({time.time() - start:.1f} s)")


if __name__ == "__main__":
    main()
