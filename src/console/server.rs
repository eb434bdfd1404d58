//! The console's HTTPS listener: TLS through rustls, HTTP/1.1 through
//! hyper. Bounded like everything a client can make us hold: connections
//! at once, the time to finish the handshake and the headers, and the
//! request body size.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};

use super::Console;
use super::http::{Req, Resp, SECURITY_HEADERS};

/// Connections served at once; more wait in the kernel's backlog.
const MAX_CONNECTIONS: usize = 64;
/// TLS handshake and request header deadline.
const HANDSHAKE: Duration = Duration::from_secs(10);
/// Largest request body (forms are small; nothing is uploaded).
const MAX_BODY: usize = 64 * 1024;
/// Longest life of one connection: a slow or idle keep-alive client must
/// not hold one of the few slots for ever (browsers simply reconnect).
const MAX_CONNECTION: Duration = Duration::from_secs(120);

/// Serves until the task is dropped.
pub async fn serve(listener: tokio::net::TcpListener, tls: Arc<rustls::ServerConfig>, console: Arc<Console>) {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok(permit) = slots.clone().acquire_owned().await else { return };
        let Ok((tcp, peer)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let (acceptor, console) = (acceptor.clone(), console.clone());
        tokio::spawn(async move {
            let _permit = permit;
            let Ok(Ok(tls)) = tokio::time::timeout(HANDSHAKE, acceptor.accept(tcp)).await else { return };
            let svc = hyper::service::service_fn(move |r| answer(console.clone(), peer, r));
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HANDSHAKE)
                .max_buf_size(64 * 1024)
                .serve_connection(TokioIo::new(tls), svc);
            let _ = tokio::time::timeout(MAX_CONNECTION, conn).await;
        });
    }
}

async fn answer(
    console: Arc<Console>,
    peer: SocketAddr,
    r: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (parts, body) = r.into_parts();
    let mut req = Req { method: parts.method.as_str().to_string(), peer: Some(peer), ..Req::default() };
    req.set_target(parts.uri.path(), parts.uri.query());
    for v in parts.headers.get_all(hyper::header::COOKIE) {
        req.add_cookies(v.to_str().unwrap_or(""));
    }
    req.accept_language =
        parts.headers.get(hyper::header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let resp = match Limited::new(body, MAX_BODY).collect().await {
        Err(_) => plain(413, "request too large"),
        Ok(b) => {
            req.set_form(&b.to_bytes());
            let c = console.clone();
            let resp = tokio::task::spawn_blocking(move || c.handle(&req))
                .await
                .unwrap_or_else(|_| plain(500, "internal error"));
            if resp.delay {
                // The same pause as a failed SMB logon: guessing is as slow here.
                let ms = console.server.live().security.logon_failure_delay_ms;
                tokio::time::sleep(Duration::from_millis(ms)).await;
            }
            resp
        }
    };
    Ok(to_hyper(resp))
}

fn plain(status: u16, text: &str) -> Resp {
    let mut r = Resp::html(text.to_string()).status(status);
    r.content_type = "text/plain; charset=utf-8";
    r
}

fn to_hyper(r: Resp) -> Response<Full<Bytes>> {
    let mut b = Response::builder().status(r.status).header(hyper::header::CONTENT_TYPE, r.content_type);
    for (k, v) in SECURITY_HEADERS {
        b = b.header(*k, *v);
    }
    for (k, v) in &r.headers {
        b = b.header(*k, v.as_str());
    }
    b.body(Full::new(Bytes::from(r.body)))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::from_static(b"bad header"))))
}
