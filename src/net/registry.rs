//! The live connections, for `smbvault status` and `session kick`: each
//! connection task registers a channel and answers on its own task, between
//! requests, so nothing on the request path takes a lock for this.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::{mpsc, oneshot};

use crate::engine::SessionReport;
use crate::engine::services::Principal;

/// A question for one connection task.
pub enum Control {
    /// Describe your sessions.
    Report(oneshot::Sender<Vec<SessionReport>>),
    /// If you carry this session, close the connection and say whose it was.
    Kick(u64, oneshot::Sender<Option<Principal>>),
}

/// How long a busy connection may take to answer before it is left out.
const ANSWER: Duration = Duration::from_secs(5);

/// Every connection's control channel.
#[derive(Default)]
pub struct Registry {
    conns: Mutex<HashMap<u64, mpsc::UnboundedSender<Control>>>,
    next: AtomicU64,
}

impl Registry {
    /// Registers a connection; returns its id and the receiving end.
    pub fn add(&self) -> (u64, mpsc::UnboundedReceiver<Control>) {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::unbounded_channel();
        self.conns.lock().insert(id, tx);
        (id, rx)
    }

    /// Forgets a connection that ended.
    pub fn remove(&self, id: u64) {
        self.conns.lock().remove(&id);
    }

    fn senders(&self) -> Vec<mpsc::UnboundedSender<Control>> {
        self.conns.lock().values().cloned().collect()
    }

    /// Sessions of every connection, ordered by session id.
    pub async fn report(&self) -> Vec<SessionReport> {
        let mut waits = Vec::new();
        for tx in self.senders() {
            let (otx, orx) = oneshot::channel();
            if tx.send(Control::Report(otx)).is_ok() {
                waits.push(orx);
            }
        }
        let mut out = Vec::new();
        for w in waits {
            if let Ok(Ok(mut v)) = tokio::time::timeout(ANSWER, w).await {
                out.append(&mut v);
            }
        }
        out.sort_by_key(|s| s.id);
        out
    }

    /// Closes the connection that carries `session_id`; the session's user,
    /// or `None` if no connection has it.
    pub async fn kick(&self, session_id: u64) -> Option<Principal> {
        let mut waits = Vec::new();
        for tx in self.senders() {
            let (otx, orx) = oneshot::channel();
            if tx.send(Control::Kick(session_id, otx)).is_ok() {
                waits.push(orx);
            }
        }
        let mut found = None;
        for w in waits {
            if let Ok(Ok(Some(p))) = tokio::time::timeout(ANSWER, w).await {
                found = Some(p);
            }
        }
        found
    }
}
