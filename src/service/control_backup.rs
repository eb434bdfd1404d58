//! Long requests on the control socket: `restore_files` and `export`
//! (docs/backup.md). The server owns the live data, so it performs them,
//! on a blocking thread (other organizations keep being served), and
//! records them in the organization's operation log. While one runs the
//! server answers `{"progress":[done,total]}` lines every half second,
//! then the final answer line.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::io::AsyncWriteExt;

use super::control::{Request, Sources};
use crate::audit::{Event, EventKind, EventResult};
use crate::backup::remote::{Meter, ops};
use crate::types::OrgId;

type Job = Box<dyn FnOnce(&Meter) -> Result<serde_json::Value, String> + Send>;

/// Runs a long request, writing progress lines to `wr`; returns the answer.
pub async fn handle(req: Request, src: &Sources, wr: &mut tokio::net::unix::OwnedWriteHalf) -> serde_json::Value {
    let store = src.store.clone();
    let (org, actor, action, target, job): (u64, String, &str, String, Job) = match req {
        Request::RestoreFiles { req, actor } => {
            let target = format!("{}/{}", req.share, req.path);
            let org = req.org;
            let job: Job = Box::new(move |m| {
                let r = ops::restore_files(&store, &req, m)?;
                Ok(serde_json::json!({ "restored": r, "generation": req.generation }))
            });
            (org, actor, "backup.restore_files", target, job)
        }
        Request::Export { org, shares, to, actor } => {
            let target = to.display().to_string();
            let job: Job = Box::new(move |m| {
                let c = ops::export(&store, OrgId(org), &shares, &to, m)?;
                Ok(serde_json::json!({ "exported": c }))
            });
            (org, actor, "org.export", target, job)
        }
        _ => return serde_json::json!({ "error": "not a long request" }),
    };
    let meter = Arc::new(Meter::default());
    let m = meter.clone();
    let mut task = tokio::task::spawn_blocking(move || job(&m));
    let result = loop {
        tokio::select! {
            r = &mut task => break r,
            _ = tokio::time::sleep(Duration::from_millis(500)) => {
                let p = serde_json::json!({ "progress": [
                    meter.done.load(std::sync::atomic::Ordering::Relaxed),
                    meter.total.load(std::sync::atomic::Ordering::Relaxed),
                ] });
                // The client may have gone; the work goes on regardless.
                let _ = wr.write_all(format!("{p}\n").as_bytes()).await;
            }
        }
    };
    let result = result.unwrap_or_else(|e| Err(format!("task failed: {e}")));
    let detail = match &result {
        Ok(v) => v.to_string(),
        Err(e) => e.clone(),
    };
    let mut e = Event::new(SystemTime::now(), EventKind::Admin { action: action.into(), target, detail })
        .user(actor)
        .org(OrgId(org));
    if result.is_err() {
        // The reason (it may name files) is in the detail, which is sealed.
        e = e.result(EventResult::Failed("failed".into()));
    }
    src.audit.record(e);
    match result {
        Ok(v) => v,
        Err(e) => serde_json::json!({ "error": e }),
    }
}

/// Sends a long request and returns its answer, calling `progress` with
/// each `(done, total)` the server reports meanwhile.
pub fn ask_long(path: &Path, req: &Request, mut progress: impl FnMut(u64, u64)) -> Result<serde_json::Value, String> {
    let mut s = std::os::unix::net::UnixStream::connect(path)
        .map_err(|e| format!("cannot reach the running server at {}: {e}", path.display()))?;
    let line = serde_json::to_string(req).map_err(|e| e.to_string())?;
    s.write_all(format!("{line}\n").as_bytes()).map_err(|e| format!("control socket: {e}"))?;
    let mut rd = BufReader::new(&s);
    loop {
        let mut answer = String::new();
        let n = rd.read_line(&mut answer).map_err(|e| format!("control socket: {e}"))?;
        if n == 0 {
            return Err("control socket: the server closed the connection".into());
        }
        let v: serde_json::Value =
            serde_json::from_str(&answer).map_err(|e| format!("control socket: bad answer ({e})"))?;
        if let Some(p) = v.get("progress").and_then(|p| p.as_array()) {
            let g = |i: usize| p.get(i).and_then(|x| x.as_u64()).unwrap_or(0);
            progress(g(0), g(1));
            continue;
        }
        return match v.get("error").and_then(|e| e.as_str()) {
            Some(e) => Err(e.to_string()),
            None => Ok(v),
        };
    }
}
