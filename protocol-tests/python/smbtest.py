"""What the Python end-to-end scripts share: an SMB 3.1.1 session with
signing and encryption required (what smbvault's defaults demand) and one
tree, opened through Python smbprotocol."""
import uuid

from smbprotocol.connection import Connection, Dialects
from smbprotocol.open import CreateDisposition, FilePipePrinterAccessMask, ImpersonationLevel, Open, ShareAccess
from smbprotocol.session import Session
from smbprotocol.tree import TreeConnect

ALL_SHARE = ShareAccess.FILE_SHARE_READ | ShareAccess.FILE_SHARE_WRITE | ShareAccess.FILE_SHARE_DELETE
RW = FilePipePrinterAccessMask.GENERIC_READ | FilePipePrinterAccessMask.GENERIC_WRITE


class Client:
    def __init__(self, host, port, share, user, password):
        self.conn = Connection(uuid.uuid4(), host, port, require_signing=True)
        self.conn.connect(Dialects.SMB_3_1_1)
        self.sess = Session(self.conn, user, password, require_encryption=True)
        self.sess.connect()
        self.tree = TreeConnect(self.sess, rf"\\{host}\{share}")
        self.tree.connect()

    def create(self, name, access=RW, disp=CreateDisposition.FILE_OPEN_IF, options=0, share=ALL_SHARE, contexts=None):
        """CREATE; returns the open and the response's create contexts."""
        f = Open(self.tree, name)
        resp = f.create(ImpersonationLevel.Impersonation, access, 0, share, disp, options, create_contexts=contexts)
        return f, resp

    def open(self, name, access=RW, disp=CreateDisposition.FILE_OPEN_IF, options=0, share=ALL_SHARE):
        return self.create(name, access, disp, options, share)[0]

    def close(self):
        self.tree.disconnect()
        self.sess.disconnect()
        self.conn.disconnect()
