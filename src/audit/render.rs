//! Flat views of a stored event for people and tools: a [`Row`] of strings
//! (table and CSV) and a JSON object (JSON lines). Times are JST.

use serde_json::{Map, Value, json};

use super::event::{EventKind, EventResult};
use super::jst::format_jst;
use super::query::StoredEvent;
use crate::types::FileTime;

/// One event as strings; empty strings for absent fields.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Row {
    /// `2026-11-25T17:00:00.123+09:00`.
    pub time: String,
    /// `server` or `org-<id>`.
    pub log: String,
    /// Sequence number in that log.
    pub seq: u64,
    /// Organization display name (filled in by the caller's resolver).
    pub org: String,
    /// User name.
    pub user: String,
    /// `address:port`.
    pub client: String,
    /// SMB2 SessionId in hex.
    pub session: String,
    /// Kind name ("open").
    pub event: String,
    /// "ok", "denied" or "failed".
    pub result: String,
    /// NTSTATUS name or failure reason.
    pub status: String,
    /// Share (or admin target).
    pub share: String,
    /// Path (or rename/copy source).
    pub path: String,
    /// Rename/copy destination.
    pub new_path: String,
    /// Other fields as `key=value` pairs.
    pub detail: String,
}

/// Flattens a stored event; `org` is the organization's display name.
pub fn row(e: &StoredEvent, org: &str) -> Row {
    let ev = &e.event;
    let (share, path, new_path) = names(&ev.kind);
    let detail = fields(&ev.kind)
        .into_iter()
        .map(|(k, v)| match v {
            Value::String(s) => format!("{k}={s}"),
            v => format!("{k}={v}"),
        })
        .collect::<Vec<_>>()
        .join(" ");
    Row {
        time: format_jst(ev.time),
        log: e.log.to_string(),
        seq: e.seq,
        org: org.to_string(),
        user: ev.user.clone().unwrap_or_default(),
        client: ev.client.map(|c| c.to_string()).unwrap_or_default(),
        session: ev.session_id.map(|s| format!("{s:#x}")).unwrap_or_default(),
        event: ev.kind.name().to_string(),
        result: ev.result.class().name().to_string(),
        status: ev.result.text().to_string(),
        share,
        path,
        new_path,
        detail,
    }
}

/// The event as one JSON object (for JSON lines).
pub fn json(e: &StoredEvent, org: &str) -> Value {
    let ev = &e.event;
    let mut m = Map::new();
    m.insert("time".into(), json!(format_jst(ev.time)));
    m.insert("log".into(), json!(e.log.to_string()));
    m.insert("seq".into(), json!(e.seq));
    m.insert("org".into(), if org.is_empty() { Value::Null } else { json!(org) });
    m.insert("user".into(), json!(ev.user));
    m.insert("client".into(), json!(ev.client.map(|c| c.to_string())));
    m.insert("session".into(), json!(ev.session_id.map(|s| format!("{s:#x}"))));
    m.insert("event".into(), json!(ev.kind.name()));
    m.insert("result".into(), json!(ev.result.class().name()));
    if !matches!(ev.result, EventResult::Ok) {
        m.insert("status".into(), json!(ev.result.text()));
    }
    let (share, path, new_path) = names(&ev.kind);
    let key = |admin: &'static str, other: &'static str| {
        if matches!(ev.kind, EventKind::Admin { .. }) { admin } else { other }
    };
    for (k, v) in [(key("target", "share"), share), (key("detail", "path"), path), ("new_path", new_path)] {
        if !v.is_empty() {
            m.insert(k.into(), json!(v));
        }
    }
    for (k, v) in fields(&ev.kind) {
        m.insert(k.into(), v);
    }
    Value::Object(m)
}

/// (share or admin target, path or admin detail, new path).
fn names(k: &EventKind) -> (String, String, String) {
    use EventKind as K;
    let s = |a: &str, b: &str, c: &str| (a.to_string(), b.to_string(), c.to_string());
    match k {
        K::TreeConnect { share } | K::TreeDisconnect { share } => s(share, "", ""),
        K::Open { share, path, .. }
        | K::Close { share, path, .. }
        | K::Delete { share, path }
        | K::Mkdir { share, path }
        | K::SetAttributes { share, path, .. }
        | K::SetTimes { share, path, .. }
        | K::SetSecurity { share, path, .. } => s(share, path, ""),
        K::Rename { share, from, to } | K::Copy { share, from, to, .. } => s(share, from, to),
        K::Admin { target, detail, .. } => s(target, detail, ""),
        _ => s("", "", ""),
    }
}

fn ft(t: &Option<FileTime>) -> Value {
    t.map_or(Value::Null, |t| json!(format_jst(t.to_system())))
}

/// The kind's clear fields other than names.
fn fields(k: &EventKind) -> Vec<(&'static str, Value)> {
    use EventKind as K;
    let hex = |v: u32| json!(format!("{v:#010x}"));
    match k {
        K::LogonSuccess { dialect, signing, encryption } => vec![
            ("dialect", json!(dialect_name(*dialect))),
            ("signing", json!(signing.as_deref().unwrap_or("none"))),
            ("encryption", json!(encryption.as_deref().unwrap_or("none"))),
        ],
        K::LogonFailure { reason } | K::ConsoleSignOut { reason } => vec![("reason", json!(reason))],
        K::ConsoleSignIn { method } => vec![("method", json!(method))],
        K::Open { desired_access, granted_access, disposition, created, .. } => vec![
            ("desired_access", hex(*desired_access)),
            ("granted_access", hex(*granted_access)),
            ("disposition", json!(disposition)),
            ("created", json!(created)),
        ],
        K::Close { bytes_read, reads, bytes_written, writes, .. } => vec![
            ("bytes_read", json!(bytes_read)),
            ("reads", json!(reads)),
            ("bytes_written", json!(bytes_written)),
            ("writes", json!(writes)),
        ],
        K::SetAttributes { attributes, .. } => vec![("attributes", hex(*attributes))],
        K::SetTimes { creation, last_access, last_write, change, .. } => vec![
            ("creation", ft(creation)),
            ("last_access", ft(last_access)),
            ("last_write", ft(last_write)),
            ("change", ft(change)),
        ]
        .into_iter()
        .filter(|(_, v)| !v.is_null())
        .collect(),
        K::SetSecurity { security_info, .. } => vec![("security_info", hex(*security_info))],
        K::Copy { bytes, .. } => vec![("bytes", json!(bytes))],
        K::Admin { action, .. } => vec![("action", json!(action))],
        _ => Vec::new(),
    }
}

/// Dotted dialect name (MS-SMB2 2.2.3 Dialects).
fn dialect_name(d: u16) -> String {
    match d {
        0x0202 => "2.0.2".into(),
        0x0210 => "2.1".into(),
        0x0300 => "3.0".into(),
        0x0302 => "3.0.2".into(),
        0x0311 => "3.1.1".into(),
        d => format!("{d:#06x}"),
    }
}
