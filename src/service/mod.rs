//! Running as a system service: logging ([`logging`]), systemd
//! notifications ([`notify`]), the local control socket behind
//! `smbvault status` and `session kick` ([`control`]), the metrics and
//! health endpoint ([`http`]), signals ([`signals`]), configuration reload on SIGHUP ([`reload`])
//! and `smbvault config check` ([`check`]).

pub mod check;
pub mod control;
pub mod control_backup;
pub mod http;
pub mod logging;
pub mod reload;
pub mod signals;

/// systemd's `sd_notify` protocol (Type=notify): silently nothing when the
/// server was not started by systemd (no `NOTIFY_SOCKET`).
pub mod notify {
    use sd_notify::NotifyState;

    fn send(states: &[NotifyState<'_>]) {
        if let Err(e) = sd_notify::notify(states) {
            tracing::debug!(error = %e, "sd_notify failed");
        }
    }

    /// The server listens and serves.
    pub fn ready(status: &str) {
        send(&[NotifyState::Ready, NotifyState::Status(status)]);
    }

    /// A reload (SIGHUP) is under way.
    pub fn reloading() {
        match NotifyState::monotonic_usec_now() {
            Ok(t) => send(&[NotifyState::Reloading, t]),
            Err(_) => send(&[NotifyState::Reloading]),
        }
    }

    /// Shutdown has begun.
    pub fn stopping(status: &str) {
        send(&[NotifyState::Stopping, NotifyState::Status(status)]);
    }

    /// Free-form status line (`systemctl status`).
    pub fn status(status: &str) {
        send(&[NotifyState::Status(status)]);
    }
}
