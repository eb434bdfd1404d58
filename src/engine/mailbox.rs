//! A connection's inbox: how one connection (or a timer) makes another
//! one act — finish a pending request, send a break notification, re-run a
//! parked request, end a session — without sharing its state. `net` installs
//! a waker that makes the owner call `Connection::poll`.

use std::sync::Arc;

use parking_lot::Mutex;

use crate::engine::fsa::lease::Break;
use crate::wire::NtStatus;

/// Wakes the connection task that owns a mailbox (given by `net`).
pub type Waker = Arc<dyn Fn() + Send + Sync>;

/// Something another connection (or a timer) wants a connection to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// The pending request with this AsyncId finished with `status`
    /// (MS-SMB2 3.3.4.3 final response of an asynchronous operation).
    Completed {
        /// AsyncId of the interim response.
        async_id: u64,
        /// Final status.
        status: NtStatus,
    },
    /// Send this oplock or lease break notification (MS-SMB2 3.3.4.6,
    /// 3.3.4.7) for one of the connection's opens.
    Break(Break),
    /// The state a parked request waits on changed (a break was
    /// acknowledged or timed out, an open closed): run it again.
    Retry(u64),
    /// A session of this connection ended because its user reconnected
    /// with it as PreviousSessionId (MS-SMB2 3.3.5.5.3).
    EndSession(u64),
    /// A pending CHANGE_NOTIFY finished with `status` and these
    /// FILE_NOTIFY_INFORMATION records (MS-SMB2 3.3.4.3, 3.3.5.19).
    Notify {
        /// AsyncId of the interim response.
        async_id: u64,
        /// Final status (SUCCESS, NOTIFY_ENUM_DIR, NOTIFY_CLEANUP, CANCELLED).
        status: NtStatus,
        /// The response's output buffer.
        data: Vec<u8>,
    },
}

/// A connection's inbox: notices plus the waker that makes `net` call
/// `Connection::poll`.
#[derive(Default)]
pub struct Mailbox {
    notices: Mutex<Vec<Notice>>,
    waker: Mutex<Option<Waker>>,
}

impl Mailbox {
    /// Queues a notice and wakes the owner.
    pub fn post(&self, n: Notice) {
        self.notices.lock().push(n);
        let w = self.waker.lock().clone();
        if let Some(w) = w {
            w();
        }
    }

    /// Everything queued so far.
    pub fn take(&self) -> Vec<Notice> {
        std::mem::take(&mut *self.notices.lock())
    }

    /// Installs the waker (once per connection, by `net`).
    pub fn set_waker(&self, w: Waker) {
        *self.waker.lock() = Some(w);
    }
}
