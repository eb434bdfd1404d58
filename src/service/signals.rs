//! Signals: SIGHUP reloads the configuration ([`super::reload`]) and never
//! stops the server; SIGTERM and SIGINT start the graceful shutdown.

use super::reload::Reloader;

/// SIGTERM and SIGHUP streams (SIGINT is tokio's ctrl_c).
pub struct Signals {
    term: Option<tokio::signal::unix::Signal>,
    hup: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    /// Installs the handlers (do it before anything can send a signal).
    pub fn install() -> Self {
        use tokio::signal::unix::{SignalKind, signal};
        Self { term: signal(SignalKind::terminate()).ok(), hup: signal(SignalKind::hangup()).ok() }
    }

    /// Waits for SIGINT or SIGTERM; handles every SIGHUP before that.
    pub async fn wait(mut self, reloader: Reloader) {
        loop {
            let term_fut = async {
                match self.term.as_mut() {
                    Some(t) => {
                        t.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            let hup_fut = async {
                match self.hup.as_mut() {
                    Some(h) => {
                        h.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                _ = tokio::signal::ctrl_c() => return,
                _ = term_fut => return,
                _ = hup_fut => {
                    crate::service::notify::reloading();
                    reload(&reloader);
                    crate::service::notify::ready("serving SMB (configuration reloaded)");
                }
            }
        }
    }
}

/// One SIGHUP: apply, then say what changed and what waits for a restart.
fn reload(r: &Reloader) {
    use std::sync::atomic::Ordering::Relaxed;
    let m = &r.server.metrics;
    match r.reload() {
        Ok(out) => {
            m.reloads[0].fetch_add(1, Relaxed);
            if out.applied.is_empty() && out.restart.is_empty() && out.ignored.is_empty() {
                tracing::info!(file = %r.path.display(), "configuration reloaded: nothing changed");
            }
            for a in &out.applied {
                tracing::info!(setting = %a, "configuration reloaded: applied");
            }
            for a in &out.restart {
                tracing::warn!(setting = %a, "configuration reloaded: this change needs a restart; still running with the old value");
            }
            for a in &out.ignored {
                tracing::info!(setting = %a, "configuration reloaded: only used on the first start; ignored");
            }
            if r.env_log && out.applied.iter().any(|a| a.starts_with("log.level")) {
                tracing::info!("log.level replaces the RUST_LOG filter given at start");
            }
        }
        Err(e) => {
            m.reloads[1].fetch_add(1, Relaxed);
            tracing::error!(error = %e, "configuration reload refused; still running with the previous configuration");
        }
    }
}
