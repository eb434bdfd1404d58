"""Re-authentication on an established session (MS-SMB2 3.3.5.5.3), driven
by Python smbprotocol with hand-made SESSION_SETUP legs on the session.

    reauth.py HOST PORT SHARE USER PASSWORD OTHER_USER OTHER_PASSWORD

USER has access to SHARE; OTHER_USER is a valid account of another
organization. Checks, on one encrypted SMB 3.1.1 session of USER:
  0. a bind naming the session from OTHER_USER's connection, unsigned, is
     answered as for a session that does not exist;
  1. re-authentication as OTHER_USER fails, and the session's tree and open
     handle keep working for USER;
  2. an unsigned, unencrypted re-authentication leg is refused with
     STATUS_ACCESS_DENIED and closes nothing;
  3. re-authentication as USER succeeds and the handle keeps working.
Prints "OK ..." per check; exits non-zero with FAIL on the first failure.
"""

import sys
import uuid

import spnego
from smbprotocol.connection import Capabilities, Connection, Dialects
from smbprotocol.exceptions import MoreProcessingRequired, SMBResponseException
from smbprotocol.open import (CreateDisposition, CreateOptions, FilePipePrinterAccessMask,
                              ImpersonationLevel, Open, ShareAccess)
from smbprotocol.session import Session, SMB2SessionSetupRequest, SMB2SessionSetupResponse
from smbprotocol.tree import TreeConnect

ACCESS_DENIED = 0xC0000022
USER_SESSION_DELETED = 0xC0000203


def reauthenticate(sess, user, password):
    """Runs a whole NTLM exchange on sess's SessionId; returns the final
    status (0 for success) or the error status of the leg that failed."""
    conn = sess.connection
    ctx = spnego.client(user, password, service="cifs", hostname=conn.server_name,
                        options=spnego.NegotiateOptions.session_key, protocol="ntlm")
    in_token = None
    while not ctx.complete:
        out_token = ctx.step(in_token)
        if not out_token:
            break
        req = SMB2SessionSetupRequest()
        req["capabilities"] = Capabilities.SMB2_GLOBAL_CAP_DFS
        req["security_mode"] = conn.client_security_mode
        req["buffer"] = out_token
        request = conn.send(req, sid=sess.session_id, credit_request=8)
        request_id = request.message["message_id"].get_value()
        try:
            response = conn.receive(request)
        except MoreProcessingRequired as exc:
            response = exc.header
        except SMBResponseException as exc:
            return exc.status
        finally:
            conn.preauth_integrity_session_hash_value.pop(request_id, None)
        setup = SMB2SessionSetupResponse()
        setup.unpack(response["data"].get_value())
        in_token = setup["buffer"].get_value()
        status = response["status"].get_value()
        if status == 0:
            return 0
    return 0


def fail(msg):
    sys.exit(f"FAIL: {msg}")


def still_works(tree, f, data, what):
    got = f.read(0, len(data))
    if got != data:
        fail(f"{what}: the open handle reads {got!r}")
    g = Open(tree, f"after-{uuid.uuid4().hex[:8]}.txt")
    g.create(ImpersonationLevel.Impersonation,
             FilePipePrinterAccessMask.GENERIC_READ | FilePipePrinterAccessMask.GENERIC_WRITE,
             0, ShareAccess.FILE_SHARE_READ, CreateDisposition.FILE_OVERWRITE_IF,
             CreateOptions.FILE_NON_DIRECTORY_FILE)
    g.close()


def main():
    host, port, share, user, password, other_user, other_password = sys.argv[1:]
    conn = Connection(uuid.uuid4(), host, int(port), require_signing=True)
    conn.connect(Dialects.SMB_3_1_1)
    sess = Session(conn, user, password, require_encryption=False)
    sess.connect()
    if not sess.encrypt_data:
        fail("the server did not encrypt the session (run it with encryption required)")
    tree = TreeConnect(sess, rf"\\{host}\{share}")
    tree.connect()
    f = Open(tree, f"reauth-{uuid.uuid4().hex[:8]}.txt")
    f.create(ImpersonationLevel.Impersonation,
             FilePipePrinterAccessMask.GENERIC_READ | FilePipePrinterAccessMask.GENERIC_WRITE,
             0, ShareAccess.FILE_SHARE_READ, CreateDisposition.FILE_OVERWRITE_IF,
             CreateOptions.FILE_NON_DIRECTORY_FILE)
    data = b"written by the first user"
    f.write(data, 0)

    # Another tenant names this session in a bind from its own connection,
    # unsigned (it has not the key): answered as for a session that does not
    # exist, and nothing happens to the session.
    other = Connection(uuid.uuid4(), host, int(port), require_signing=True)
    other.connect(Dialects.SMB_3_1_1)
    Session(other, other_user, other_password, require_encryption=False).connect()
    req = SMB2SessionSetupRequest()
    req["flags"] = 1  # SMB2_SESSION_FLAG_BINDING
    req["security_mode"] = other.client_security_mode
    req["buffer"] = spnego.client(other_user, other_password, service="cifs", hostname=host,
                                  options=spnego.NegotiateOptions.session_key, protocol="ntlm").step()
    request = other.send(req, sid=sess.session_id)
    try:
        other.receive(request)
        fail("a bind to another tenant's session succeeded")
    except SMBResponseException as exc:
        if exc.status != USER_SESSION_DELETED:
            fail(f"an unsigned bind to an existing session got 0x{exc.status:08x}, not USER_SESSION_DELETED")
    other.disconnect()
    still_works(tree, f, data, "after another tenant's bind")
    print("OK an unsigned bind naming the session is answered as for no session; nothing changed")

    status = reauthenticate(sess, other_user, other_password)
    if status == 0:
        fail(f"re-authentication as {other_user} succeeded")
    still_works(tree, f, data, f"after the refused re-authentication as {other_user}")
    print(f"OK re-authentication as {other_user} refused (0x{status:08x}); the session's handles keep working")

    sess.encrypt_data = False
    sess.signing_required = False
    status = reauthenticate(sess, user, password)
    sess.encrypt_data = True
    if status != ACCESS_DENIED:
        fail(f"an unsigned re-authentication leg got 0x{status:08x}, not STATUS_ACCESS_DENIED")
    still_works(tree, f, data, "after the unsigned re-authentication leg")
    print("OK an unsigned, unencrypted re-authentication leg is refused with STATUS_ACCESS_DENIED; nothing closed")

    status = reauthenticate(sess, user, password)
    if status != 0:
        fail(f"re-authentication as {user} failed with 0x{status:08x}")
    still_works(tree, f, data, "after re-authenticating as the same user")
    print(f"OK re-authentication as {user} succeeded; the session's handles keep working")
    f.close()
    conn.disconnect()


if __name__ == "__main__":
    main()
