//! The local control socket (`server.control_socket`, default
//! `<data_dir>/control.sock`, mode 0600 in the 0700 data directory): only
//! the user the server runs as, i.e. the operator, can connect. One JSON
//! request line, one JSON answer line:
//!
//! - `{"op":"status"}` → `{"sessions":[…]}` ([`crate::engine::SessionReport`])
//! - `{"op":"kick","session":ID,"actor":"operator"}` → `{"kicked":{"user":…,"org":…}}`
//!
//! Errors answer `{"error":"…"}`. Organization administrators see and kick
//! only their own organization's sessions: the CLI authenticates them
//! (`--as`) and passes `"org"`, which the server enforces.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};

use crate::audit::{AuditSink, Event, EventKind, EventResult};
use crate::engine::SessionReport;
use crate::net::Registry;

/// A request on the control socket.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase")]
pub enum Request {
    /// List sessions (of `org` only, when given).
    Status {
        /// Restrict to this organization id.
        #[serde(default)]
        org: Option<u64>,
    },
    /// Storage used by these organizations.
    Usage {
        /// Organization ids.
        orgs: Vec<u64>,
    },
    /// End a session.
    Kick {
        /// SessionId.
        session: u64,
        /// Who asks, for the audit log ("operator" or `ORG\user`).
        actor: String,
        /// The asking administrator's organization (None: operator).
        #[serde(default)]
        org: Option<u64>,
    },
    /// Restore files from a fetched backup generation into the live share
    /// (long: answers progress lines first, see [`super::control_backup`]).
    RestoreFiles {
        /// What to restore.
        req: crate::backup::remote::ops::RestoreFiles,
        /// Who asks, for the organization's operation log.
        actor: String,
    },
    /// Export an organization's files (long, as `RestoreFiles`).
    Export {
        /// Organization id.
        org: u64,
        /// Its shares: name and root node.
        shares: Vec<(String, u64)>,
        /// Directory or `.tar` file.
        to: std::path::PathBuf,
        /// Who asks.
        actor: String,
    },
}

/// What the control socket answers from.
pub struct Sources {
    /// Live connections.
    pub registry: Arc<Registry>,
    /// Where kicks are recorded.
    pub audit: Arc<dyn AuditSink>,
    /// Kick counter.
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Storage, for usage.
    pub store: Arc<crate::storage::Store>,
}

/// One organization's storage, as `org usage` reports it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct OrgUsage {
    /// Organization id.
    pub org_id: u64,
    /// Bytes allocated (what the quota counts).
    pub bytes: u64,
    /// Files.
    pub files: u64,
    /// Directories (share roots included).
    pub directories: u64,
    /// Last change to any file or directory (JST), if any.
    pub last_change: Option<String>,
}

/// Counts an organization's storage; an organization that never stored
/// anything has no storage yet and counts zero.
pub fn usage_of(store: &crate::storage::Store, org: u64) -> OrgUsage {
    let c = store.org(crate::types::OrgId(org)).and_then(|o| o.census()).unwrap_or_default();
    OrgUsage {
        org_id: org,
        bytes: c.bytes,
        files: c.files,
        directories: c.directories,
        last_change: c.last_change.map(|t| crate::audit::format_jst(t.to_system())),
    }
}

/// Serves the control socket until the task is dropped.
pub async fn serve(path: &Path, src: Arc<Sources>) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    // We hold the data directory lock: a socket file left here is stale.
    let _ = std::fs::remove_file(path);
    let listener = tokio::net::UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    loop {
        let (stream, _) = listener.accept().await?;
        let src = src.clone();
        tokio::spawn(async move {
            let (rd, mut wr) = stream.into_split();
            let mut line = String::new();
            let mut rd = tokio::io::BufReader::new(rd);
            let read = tokio::time::timeout(Duration::from_secs(10), rd.read_line(&mut line)).await;
            let answer = match read {
                Ok(Ok(n)) if n > 0 && line.len() < 65536 => match serde_json::from_str::<Request>(&line) {
                    Ok(req @ (Request::RestoreFiles { .. } | Request::Export { .. })) => {
                        super::control_backup::handle(req, &src, &mut wr).await
                    }
                    Ok(req) => handle(req, &src).await,
                    Err(e) => serde_json::json!({ "error": format!("bad request: {e}") }),
                },
                _ => serde_json::json!({ "error": "no request" }),
            };
            let _ = wr.write_all(format!("{answer}\n").as_bytes()).await;
        });
    }
}

async fn handle(req: Request, src: &Sources) -> serde_json::Value {
    let (registry, audit, metrics) = (&src.registry, &*src.audit, &src.metrics);
    match req {
        Request::RestoreFiles { .. } | Request::Export { .. } => {
            serde_json::json!({ "error": "not a short request" })
        }
        Request::Usage { orgs } => {
            let store = src.store.clone();
            let usage =
                tokio::task::spawn_blocking(move || orgs.into_iter().map(|o| usage_of(&store, o)).collect::<Vec<_>>())
                    .await
                    .unwrap_or_default();
            serde_json::json!({ "usage": usage })
        }
        Request::Status { org } => {
            let sessions: Vec<SessionReport> =
                registry.report().await.into_iter().filter(|s| org.is_none_or(|o| o == s.org_id)).collect();
            serde_json::json!({ "sessions": sessions })
        }
        Request::Kick { session, actor, org } => {
            if let Some(o) = org {
                let mine = registry.report().await.iter().any(|s| s.id == session && s.org_id == o);
                if !mine {
                    audit.record(
                        Event::new(SystemTime::now(), kick_event(session, "not in the administrator's organization"))
                            .user(actor)
                            .org(crate::types::OrgId(o))
                            .result(EventResult::Denied("not found".into())),
                    );
                    return serde_json::json!({ "error": format!("no session {session:#x} in your organization (see `smbvault status`)") });
                }
            }
            match registry.kick(session).await {
                Some(p) => {
                    metrics.kicks.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let target = format!("{}\\{}", p.org, p.user);
                    audit.record(
                        Event::new(
                            SystemTime::now(),
                            EventKind::Admin {
                                action: "session.kick".into(),
                                target: target.clone(),
                                detail: format!("ended session {session:#x} of {target}"),
                            },
                        )
                        .user(actor)
                        .org(p.org_id)
                        .session(session),
                    );
                    tracing::info!(session = format_args!("{session:#x}"), user = %target, "session kicked");
                    serde_json::json!({ "kicked": { "session": session, "user": p.user, "org": p.org } })
                }
                None => serde_json::json!({ "error": format!("no session {session:#x} (see `smbvault status`)") }),
            }
        }
    }
}

fn kick_event(session: u64, why: &str) -> EventKind {
    EventKind::Admin { action: "session.kick".into(), target: format!("{session:#x}"), detail: why.into() }
}

/// Sends one request to the server's control socket and returns its answer.
pub fn ask(path: &Path, req: &Request) -> Result<serde_json::Value, String> {
    let mut s = std::os::unix::net::UnixStream::connect(path).map_err(|e| {
        format!(
            "cannot reach the running server at {}: {e}; is `smbvault serve` running with this configuration, \
             and are you the user it runs as?",
            path.display()
        )
    })?;
    let _ = s.set_read_timeout(Some(Duration::from_secs(30)));
    let line = serde_json::to_string(req).map_err(|e| e.to_string())?;
    s.write_all(format!("{line}\n").as_bytes()).map_err(|e| format!("control socket: {e}"))?;
    let mut answer = String::new();
    BufReader::new(&s).read_line(&mut answer).map_err(|e| format!("control socket: {e}"))?;
    let v: serde_json::Value =
        serde_json::from_str(&answer).map_err(|e| format!("control socket: bad answer ({e})"))?;
    match v.get("error").and_then(|e| e.as_str()) {
        Some(e) => Err(e.to_string()),
        None => Ok(v),
    }
}
