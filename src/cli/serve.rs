//! `smbvault serve`: start the server on the configured data directory.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::SystemTime;

use super::{CliError, Global};
use crate::config::Config;
use crate::engine::Server;
use crate::engine::services::{Access, Directory, FailureOutcome, ShareRecord};
use crate::types::{FileTime, OrgId, UserId};

/// Options of `smbvault serve`.
#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on, overriding `server.listen` (e.g. 127.0.0.1:4450).
    #[arg(long)]
    pub listen: Option<SocketAddr>,
}

/// A problem starting the server, phrased for the operator.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ServeError(pub String);

impl From<ServeError> for CliError {
    fn from(e: ServeError) -> Self {
        CliError::new(e.0)
    }
}

struct NoAccounts;
impl crate::auth::CredentialSource for NoAccounts {
    fn lookup(
        &self,
        _: &str,
        _: &str,
    ) -> Result<Option<crate::auth::Credential>, crate::auth::AuthError> {
        Ok(None)
    }
}
impl Directory for NoAccounts {
    fn credentials(&self) -> &dyn crate::auth::CredentialSource {
        self
    }
    fn find_share(&self, _: &str) -> Option<ShareRecord> {
        None
    }
    fn access(&self, _: &ShareRecord, _: UserId) -> Access {
        Access::None
    }
    fn visible_shares(&self, _: OrgId, _: UserId) -> Vec<ShareRecord> {
        Vec::new()
    }
    fn may_log_on(&self, _: UserId, _: SystemTime) -> bool {
        false
    }
    fn logon_failed(&self, _: Option<UserId>, _: SystemTime) -> FailureOutcome {
        FailureOutcome::Counted
    }
    fn logon_succeeded(&self, _: UserId, _: SystemTime) {}
    fn revision(&self) -> u64 {
        0
    }
}

/// Runs the server until SIGINT or SIGTERM.
pub fn run(g: &Global, args: &ServeArgs) -> Result<(), CliError> {
    let mut config = super::context::load_config(g)?;
    if let Some(l) = args.listen {
        config.server.listen = l;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| ServeError(format!("cannot start the async runtime: {e}")))?;
    Ok(rt.block_on(serve(config))?)
}

async fn serve(config: Config) -> Result<(), ServeError> {
    let listen = config.server.listen;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| bind_error(listen, &e))?;
    let mut guid = [0u8; 16];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut guid);
    let seed = rand::RngCore::next_u64(&mut rand::rngs::OsRng);
    let server = Arc::new(Server::new(
        config,
        Arc::new(NoAccounts),
        guid,
        seed,
        FileTime::from_system(SystemTime::now()),
    ));
    let actual = listener
        .local_addr()
        .map_err(|e| ServeError(e.to_string()))?;
    println!("smbvault listening on {actual}");
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutting down");
        let _ = stop_tx.send(true);
    });
    crate::net::serve(server, listener, stop_rx)
        .await
        .map_err(|e| ServeError(format!("server failed: {e}")))
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).ok();
    let term_fut = async {
        match term.as_mut() {
            Some(t) => {
                t.recv().await;
            }
            None => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term_fut => {}
    }
}

/// Explains a bind failure, with the usual fix for port 445.
fn bind_error(addr: SocketAddr, e: &std::io::Error) -> ServeError {
    let hint = match e.kind() {
        std::io::ErrorKind::PermissionDenied => {
            "ports below 1024 need root or CAP_NET_BIND_SERVICE \
             (`sudo setcap cap_net_bind_service=+ep $(which smbvault)`), \
             or listen on a high port: `smbvault serve --listen 127.0.0.1:4450` \
             (Windows clients only use 445; smbclient takes `-p 4450`)"
                .to_string()
        }
        std::io::ErrorKind::AddrInUse => format!(
            "another program already listens on {addr} (Samba's smbd?). Stop it \
             (`systemctl stop smbd`) or choose another port with --listen"
        ),
        std::io::ErrorKind::AddrNotAvailable => {
            format!(
                "{} is not an address of this machine; use 0.0.0.0 or a local address",
                addr.ip()
            )
        }
        _ => "check the `server.listen` setting".to_string(),
    };
    ServeError(format!("cannot listen on {addr}: {e}; {hint}"))
}
