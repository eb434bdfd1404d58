//! Text tables for people, JSON (`--json`) for scripts. Times are shown in
//! JST, the customers' time zone, and as RFC 3339 with `+09:00` in JSON.

use std::time::SystemTime;

use serde_json::{Value, json};

use crate::accounts::{
    AccessEntry, Grantee, GroupRecord, OrgRecord, ShareRecord, UserRecord, encryption_str, retention_str,
};

/// Where command results go.
#[derive(Debug, Clone, Copy)]
pub struct Output {
    /// Print JSON instead of text.
    pub json: bool,
}

impl Output {
    /// Prints a list: a table, or the JSON array.
    /// Cells are shown through [`printable`](crate::printable::printable):
    /// many hold names that clients chose.
    pub fn table(&self, headers: &[&str], rows: &[Vec<String>], json: Value) {
        if self.json {
            println!("{json}");
            return;
        }
        let rows: Vec<Vec<String>> =
            rows.iter().map(|r| r.iter().map(|c| crate::printable::printable(c).into_owned()).collect()).collect();
        let rows = &rows;
        let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
        for r in rows {
            for (w, c) in widths.iter_mut().zip(r) {
                *w = (*w).max(c.chars().count());
            }
        }
        let line = |cells: Vec<&str>| {
            let s: Vec<String> = cells.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
            println!("{}", s.join("  ").trim_end());
        };
        line(headers.to_vec());
        for r in rows {
            line(r.iter().map(String::as_str).collect());
        }
    }

    /// Prints the result of a change: a sentence, or the JSON object.
    pub fn done(&self, text: &str, json: Value) {
        if self.json {
            println!("{json}");
        } else {
            println!("{text}");
        }
    }
}

use crate::types::jst::at as jst;

/// RFC 3339 in JST, for JSON.
pub fn time_json(t: SystemTime) -> String {
    jst(t).to_rfc3339()
}

/// "2025-04-30 15:00 JST", for tables.
pub fn time_text(t: SystemTime) -> String {
    jst(t).format("%Y-%m-%d %H:%M JST").to_string()
}

/// Bytes as "12.5 GiB" (or "unlimited").
pub fn bytes_text(b: Option<u64>) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let Some(b) = b else {
        return "unlimited".into();
    };
    let mut v = b as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 { format!("{b} B") } else { format!("{v:.1} {}", UNITS[u]) }
}

/// JSON of an organization.
pub fn org_json(o: &OrgRecord, erase_at: Option<SystemTime>) -> Value {
    json!({
        "id": o.id.0,
        "name": o.name,
        "suspended": o.suspended,
        "quota_bytes": o.quota_bytes,
        "retention": o.retention.map(retention_str),
        "contract_end": o.contract_end.map(|d| d.to_string()),
        "erase_at": erase_at.map(time_json),
        "created": time_json(o.created),
    })
}

/// JSON of a user (never with secrets).
pub fn user_json(u: &UserRecord, now: SystemTime) -> Value {
    json!({
        "id": u.id.0,
        "org_id": u.org_id.0,
        "org": u.org,
        "name": u.name,
        "qualified": u.qualified(),
        "role": u.role.as_str(),
        "enabled": u.enabled,
        "locked": u.locked_until.is_some_and(|t| t > now),
        "locked_until": u.locked_until.filter(|t| *t > now).map(time_json),
        "created": time_json(u.created),
        "password_changed": time_json(u.password_changed),
    })
}

/// JSON of a group.
pub fn group_json(g: &GroupRecord) -> Value {
    json!({ "id": g.id.0, "org_id": g.org_id.0, "name": g.name, "members": g.members })
}

/// JSON of a share.
pub fn share_json(s: &ShareRecord) -> Value {
    json!({
        "id": s.id.0,
        "org_id": s.org_id.0,
        "org": s.org,
        "name": s.name,
        "root": s.root.0,
        "encryption": s.encryption.map_or("inherit", encryption_str),
        "comment": s.comment,
        "default_access": s.default_access.as_str(),
        "access_based_enumeration": s.access_based_enum,
        "previous_versions": s.previous_versions,
    })
}

/// JSON of an access entry.
pub fn access_json(e: &AccessEntry) -> Value {
    let (kind, id) = match e.grantee {
        Grantee::User(u) => ("user", u.0),
        Grantee::Group(g) => ("group", g.0),
    };
    json!({ "kind": kind, "id": id, "name": e.name, "access": e.access.as_str() })
}
