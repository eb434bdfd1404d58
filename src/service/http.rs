//! The metrics and health endpoint (`[metrics] listen`, loopback by
//! default): `GET /metrics` in Prometheus text format 0.0.4, `GET /healthz`
//! answering 200 "ready" or 503 "not ready" (starting, or shutting down).
//! A deliberately small HTTP/1.1 server: one request per connection, GET
//! only, bounded request size and time.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::accounts::Accounts;
use crate::audit::AuditLog;
use crate::engine::Server;
use crate::metrics::{family, label};

/// What the endpoint reads.
pub struct Sources {
    /// Server-wide state and counters.
    pub server: Arc<Server>,
    /// Organization names and contracts.
    pub accounts: Arc<Accounts>,
    /// The audit log, when enabled.
    pub audit: Option<Arc<AuditLog>>,
    /// True while the server accepts clients.
    pub ready: Arc<AtomicBool>,
}

/// Requests served at once; more are turned away (closed) at accept.
const MAX_CONCURRENT: usize = 16;

/// Serves until the task is dropped.
pub async fn serve(listener: tokio::net::TcpListener, src: Arc<Sources>) {
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONCURRENT));
    loop {
        let Ok((mut stream, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            continue;
        };
        let src = src.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let mut buf = Vec::with_capacity(1024);
            let read = tokio::time::timeout(Duration::from_secs(5), async {
                let mut chunk = [0u8; 1024];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < 8192 {
                    let n = stream.read(&mut chunk).await?;
                    if n == 0 {
                        break;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                }
                Ok::<_, std::io::Error>(())
            })
            .await;
            if !matches!(read, Ok(Ok(()))) {
                return;
            }
            let line = String::from_utf8_lossy(&buf);
            let mut parts = line.split_whitespace();
            let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
            let (code, ctype, body) = match (method, path.split('?').next().unwrap_or("")) {
                ("GET", "/metrics") => {
                    let s = src.clone();
                    let body = tokio::task::spawn_blocking(move || render(&s)).await.unwrap_or_default();
                    ("200 OK", "text/plain; version=0.0.4; charset=utf-8", body)
                }
                ("GET", "/healthz") if src.ready.load(Ordering::Relaxed) => ("200 OK", "text/plain", "ready\n".into()),
                ("GET", "/healthz") => ("503 Service Unavailable", "text/plain", "not ready\n".into()),
                ("GET", _) => ("404 Not Found", "text/plain", "try /metrics or /healthz\n".into()),
                _ => ("405 Method Not Allowed", "text/plain", "GET only\n".into()),
            };
            let head = format!(
                "HTTP/1.1 {code}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(head.as_bytes()).await;
            let _ = stream.write_all(body.as_bytes()).await;
            let _ = stream.shutdown().await;
        });
    }
}

/// The whole `/metrics` page.
pub fn render(src: &Sources) -> String {
    let mut out = String::with_capacity(16 * 1024);
    let server = &src.server;
    family(&mut out, "smbvault_up", "gauge", "1 while the server accepts clients.");
    let _ = writeln!(out, "smbvault_up {}", u8::from(src.ready.load(Ordering::Relaxed)));
    let started = server.start_time.to_system().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    family(&mut out, "smbvault_start_time_seconds", "gauge", "Unix time the server started.");
    let _ = writeln!(out, "smbvault_start_time_seconds {}", started.as_secs());
    server.metrics.render(&mut out);

    let per_org: BTreeMap<u64, u64> = server.files.with(|t| {
        let mut m = BTreeMap::new();
        for (_, org, _) in t.sessions.values() {
            *m.entry(org.0).or_insert(0) += 1;
        }
        m
    });
    family(&mut out, "smbvault_sessions", "gauge", "Established sessions, by organization.");
    for (org, n) in per_org {
        let name = src.accounts.org(crate::types::OrgId(org)).ok().flatten().map(|o| o.name).unwrap_or_default();
        let _ = writeln!(out, "smbvault_sessions{{org=\"{}\",org_id=\"{org}\"}} {n}", label(&name));
    }

    if let Some(a) = &src.audit {
        let st = a.stats();
        family(&mut out, "smbvault_audit_queue_depth", "gauge", "Audit events waiting to be written.");
        let _ = writeln!(out, "smbvault_audit_queue_depth {}", a.queue_depth());
        family(&mut out, "smbvault_audit_events_total", "counter", "Audit events written since start.");
        let _ = writeln!(out, "smbvault_audit_events_total {}", st.written);
        family(
            &mut out,
            "smbvault_audit_dropped_total",
            "counter",
            "Audit events lost (I/O error) or dropped (after shutdown).",
        );
        let _ = writeln!(out, "smbvault_audit_dropped_total {}", st.lost + st.dropped);
    }

    let orgs = src.accounts.list_orgs().unwrap_or_default();
    let now = SystemTime::now();
    let due = src.accounts.orgs_due_for_erasure(now).map(|v| v.len()).unwrap_or(0);
    let scheduled = orgs.iter().filter(|o| o.contract_end.is_some()).count();
    family(
        &mut out,
        "smbvault_erasures_pending",
        "gauge",
        "Organizations whose contract ended, not yet erased (state: scheduled or due).",
    );
    let _ = writeln!(out, "smbvault_erasures_pending{{state=\"scheduled\"}} {}", scheduled.saturating_sub(due));
    let _ = writeln!(out, "smbvault_erasures_pending{{state=\"due\"}} {due}");
    family(&mut out, "smbvault_organizations", "gauge", "Organizations (not erased).");
    let _ = writeln!(out, "smbvault_organizations {}", orgs.len());
    out
}
