//! One event as stored: a *clear* part (time, kind, outcome, user, client,
//! numbers) and a *names* part (shares, paths, admin targets) that the
//! segment encrypts. The clear part starts with fixed fields so that a query
//! can filter on time, kind and outcome without decoding the rest.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::codec::{Corrupt, Dec, Put, PutLe, clip};
use super::event::{Event, EventKind, EventResult, ResultClass};
use super::jst::{from_unix_ms, unix_ms};
use crate::types::{FileTime, OrgId};

const F_USER: u8 = 1;
const F_CLIENT: u8 = 2;
const F_SESSION: u8 = 4;
const F_ORG: u8 = 8;
/// The organization's key was unavailable when the event was written to
/// the server log: its names were dropped rather than stored in clear.
pub(crate) const F_NAMES_WITHHELD: u8 = 16;

/// Longest user name and clear text field kept (bytes); longer ones are cut.
const MAX_USER: usize = 256;
const MAX_TEXT: usize = 1024;
/// Longest single name kept (bytes). A name is a path below a share: real
/// ones are far shorter, while a client can send 32,767 characters (up to
/// 96 KiB of UTF-8) in a failed CREATE; longer names are cut and say so,
/// so that no record grows past a few KiB (issue 14).
pub(crate) const MAX_NAME: usize = 4096;

/// Encodes `ev`. `keep_org` stores the org id (server log records only: in
/// an org's log it is implied). With `withhold_names` the names part is empty.
pub(crate) fn encode(ev: &Event, keep_org: bool, withhold_names: bool) -> (Vec<u8>, Vec<u8>) {
    let mut c = Vec::with_capacity(64);
    c.put_i64(unix_ms(ev.time));
    c.put_u8(ev.kind.code());
    c.put_u8(match ev.result.class() {
        ResultClass::Ok => 0,
        ResultClass::Denied => 1,
        ResultClass::Failed => 2,
    });
    let org = ev.org.filter(|_| keep_org);
    let mut flags = 0;
    for (present, bit) in [
        (ev.user.is_some(), F_USER),
        (ev.client.is_some(), F_CLIENT),
        (ev.session_id.is_some(), F_SESSION),
        (org.is_some(), F_ORG),
        (withhold_names, F_NAMES_WITHHELD),
    ] {
        if present {
            flags |= bit;
        }
    }
    c.put_u8(flags);
    if let Some(u) = &ev.user {
        c.put_str(clip(u, MAX_USER));
    }
    if let Some(a) = ev.client {
        put_addr(&mut c, a);
    }
    if let Some(s) = ev.session_id {
        c.put_var(s);
    }
    if let Some(o) = org {
        c.put_var(o.0);
    }
    if !matches!(ev.result, EventResult::Ok) {
        c.put_str(clip(ev.result.text(), MAX_TEXT));
    }
    let mut n = Vec::new();
    encode_kind(&ev.kind, &mut c, &mut n);
    if withhold_names {
        n.clear();
    }
    (c, n)
}

fn put_addr(c: &mut Vec<u8>, a: SocketAddr) {
    match a.ip() {
        IpAddr::V4(ip) => {
            c.put_u8(4);
            c.extend_from_slice(&ip.octets());
        }
        IpAddr::V6(ip) => {
            c.put_u8(6);
            c.extend_from_slice(&ip.octets());
        }
    }
    c.put_u16(a.port());
}

fn put_ft(c: &mut Vec<u8>, t: Option<FileTime>) {
    match t {
        Some(t) => {
            c.put_u8(1);
            c.put_u64(t.0);
        }
        None => c.put_u8(0),
    }
}

fn names(n: &mut Vec<u8>, list: &[&str]) {
    for s in list {
        if s.len() <= MAX_NAME {
            n.put_str(s);
        } else {
            let kept = clip(s, MAX_NAME - 32);
            n.put_str(&format!("{kept}…[{} bytes cut]", s.len() - kept.len()));
        }
    }
}

fn encode_kind(k: &EventKind, c: &mut Vec<u8>, n: &mut Vec<u8>) {
    use EventKind as K;
    match k {
        K::LogonSuccess { dialect, signing, encryption } => {
            c.put_u16(*dialect);
            c.put_str(clip(signing.as_deref().unwrap_or(""), MAX_TEXT));
            c.put_str(clip(encryption.as_deref().unwrap_or(""), MAX_TEXT));
        }
        K::LogonFailure { reason } => c.put_str(clip(reason, MAX_TEXT)),
        K::ConsoleSignIn { method } => c.put_str(clip(method, MAX_TEXT)),
        K::ConsoleSignOut { reason } => c.put_str(clip(reason, MAX_TEXT)),
        K::Lockout | K::Logoff | K::SessionExpired | K::Disconnect => {}
        K::TreeConnect { share } | K::TreeDisconnect { share } => names(n, &[share]),
        K::Open { share, path, desired_access, granted_access, disposition, created } => {
            c.put_var(u64::from(*desired_access));
            c.put_var(u64::from(*granted_access));
            c.put_str(clip(disposition, MAX_TEXT));
            c.put_u8(u8::from(*created));
            names(n, &[share, path]);
        }
        K::Close { share, path, bytes_read, reads, bytes_written, writes } => {
            for v in [bytes_read, reads, bytes_written, writes] {
                c.put_var(*v);
            }
            names(n, &[share, path]);
        }
        K::Rename { share, from, to } => names(n, &[share, from, to]),
        K::Delete { share, path } | K::Mkdir { share, path } => names(n, &[share, path]),
        K::SetAttributes { share, path, attributes } => {
            c.put_var(u64::from(*attributes));
            names(n, &[share, path]);
        }
        K::SetTimes { share, path, creation, last_access, last_write, change } => {
            for t in [creation, last_access, last_write, change] {
                put_ft(c, *t);
            }
            names(n, &[share, path]);
        }
        K::SetSecurity { share, path, security_info } => {
            c.put_var(u64::from(*security_info));
            names(n, &[share, path]);
        }
        K::Copy { share, from, to, bytes } => {
            c.put_var(*bytes);
            names(n, &[share, from, to]);
        }
        K::Admin { action, target, detail } => {
            c.put_str(clip(action, MAX_TEXT));
            names(n, &[target, detail]);
        }
    }
}

/// The fixed start of a clear record, for cheap filtering.
pub(crate) struct Peek<'a> {
    pub(crate) time_ms: i64,
    pub(crate) kind: u8,
    pub(crate) result: u8,
    pub(crate) user: Option<&'a str>,
}

/// Reads time, kind, outcome and user without decoding the rest.
pub(crate) fn peek(clear: &[u8]) -> Result<Peek<'_>, Corrupt> {
    let mut d = Dec::new(clear);
    let time_ms = d.i64()?;
    let kind = d.u8()?;
    let result = d.u8()?;
    let flags = d.u8()?;
    let user = if flags & F_USER != 0 { Some(d.str()?) } else { None };
    Ok(Peek { time_ms, kind, result, user })
}

/// Decodes a record. `log_org` is the organization whose log it came from.
/// A record whose names were withheld decodes with empty names.
pub(crate) fn decode(clear: &[u8], names: &[u8], log_org: Option<OrgId>) -> Result<Event, Corrupt> {
    let mut d = Dec::new(clear);
    let time = from_unix_ms(d.i64()?);
    let kind = d.u8()?;
    let result = d.u8()?;
    let flags = d.u8()?;
    let user = if flags & F_USER != 0 { Some(d.str()?.to_owned()) } else { None };
    let client = if flags & F_CLIENT != 0 { Some(get_addr(&mut d)?) } else { None };
    let session_id = if flags & F_SESSION != 0 { Some(d.var()?) } else { None };
    let org = if flags & F_ORG != 0 { Some(OrgId(d.var()?)) } else { log_org };
    let result = match result {
        0 => EventResult::Ok,
        1 => EventResult::Denied(d.str()?.to_owned()),
        2 => EventResult::Failed(d.str()?.to_owned()),
        _ => return Err(Corrupt),
    };
    let withheld = flags & F_NAMES_WITHHELD != 0;
    let mut n = Names { d: Dec::new(names), withheld };
    let kind = decode_kind(kind, &mut d, &mut n)?;
    if !d.is_empty() || !n.d.is_empty() {
        return Err(Corrupt);
    }
    Ok(Event { time, org, user, client, session_id, kind, result })
}

struct Names<'a> {
    d: Dec<'a>,
    withheld: bool,
}

impl Names<'_> {
    fn next(&mut self) -> Result<String, Corrupt> {
        if self.withheld { Ok(String::new()) } else { Ok(self.d.str()?.to_owned()) }
    }
}

fn get_addr(d: &mut Dec<'_>) -> Result<SocketAddr, Corrupt> {
    let ip = match d.u8()? {
        4 => IpAddr::V4(Ipv4Addr::from(d.array::<4>()?)),
        6 => IpAddr::V6(Ipv6Addr::from(d.array::<16>()?)),
        _ => return Err(Corrupt),
    };
    Ok(SocketAddr::new(ip, d.u16()?))
}

fn get_ft(d: &mut Dec<'_>) -> Result<Option<FileTime>, Corrupt> {
    match d.u8()? {
        0 => Ok(None),
        1 => Ok(Some(FileTime(d.u64()?))),
        _ => Err(Corrupt),
    }
}

fn opt(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_owned())
}

fn decode_kind(code: u8, d: &mut Dec<'_>, n: &mut Names<'_>) -> Result<EventKind, Corrupt> {
    use EventKind as K;
    Ok(match code {
        1 => K::LogonSuccess { dialect: d.u16()?, signing: opt(d.str()?), encryption: opt(d.str()?) },
        2 => K::LogonFailure { reason: d.str()?.to_owned() },
        3 => K::Lockout,
        4 => K::Logoff,
        5 => K::SessionExpired,
        6 => K::Disconnect,
        7 => K::TreeConnect { share: n.next()? },
        8 => K::TreeDisconnect { share: n.next()? },
        9 => K::ConsoleSignIn { method: d.str()?.to_owned() },
        10 => K::ConsoleSignOut { reason: d.str()?.to_owned() },
        20 => K::Open {
            desired_access: d.var_u32()?,
            granted_access: d.var_u32()?,
            disposition: d.str()?.to_owned(),
            created: d.u8()? != 0,
            share: n.next()?,
            path: n.next()?,
        },
        21 => K::Close {
            bytes_read: d.var()?,
            reads: d.var()?,
            bytes_written: d.var()?,
            writes: d.var()?,
            share: n.next()?,
            path: n.next()?,
        },
        22 => K::Rename { share: n.next()?, from: n.next()?, to: n.next()? },
        23 => K::Delete { share: n.next()?, path: n.next()? },
        24 => K::Mkdir { share: n.next()?, path: n.next()? },
        25 => K::SetAttributes { attributes: d.var_u32()?, share: n.next()?, path: n.next()? },
        26 => K::SetTimes {
            creation: get_ft(d)?,
            last_access: get_ft(d)?,
            last_write: get_ft(d)?,
            change: get_ft(d)?,
            share: n.next()?,
            path: n.next()?,
        },
        27 => K::SetSecurity { security_info: d.var_u32()?, share: n.next()?, path: n.next()? },
        28 => K::Copy { bytes: d.var()?, share: n.next()?, from: n.next()?, to: n.next()? },
        40 => K::Admin { action: d.str()?.to_owned(), target: n.next()?, detail: n.next()? },
        _ => return Err(Corrupt),
    })
}

#[cfg(test)]
mod name_cap_tests {
    use super::*;

    /// A 32K-character name (a failed CREATE) makes a record of a few KiB.
    #[test]
    fn long_names_are_cut_and_marked() {
        let path = "名".repeat(32_767);
        let ev = Event::new(std::time::SystemTime::UNIX_EPOCH, EventKind::Delete { share: "s".into(), path })
            .user("u".repeat(40_000));
        let (clear, names) = encode(&ev, false, false);
        assert!(clear.len() < 512, "{}", clear.len());
        assert!(names.len() < MAX_NAME + 64, "{}", names.len());
        let text = String::from_utf8_lossy(&names);
        assert!(text.contains("bytes cut]"), "marked");
    }
}
