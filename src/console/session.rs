//! Console sessions, in memory: a restart signs everyone out, which is
//! what one wants after an upgrade or a key change anyway.
//!
//! The cookie holds 256 random bits; the server keeps only their SHA-256,
//! so a memory dump does not hand out live sessions. Each session carries
//! its own CSRF token. Sessions end when idle for `idle_timeout_secs`, at
//! `absolute_timeout_secs` after sign-in, at sign-out, and when their
//! account changes (checked on every request by the caller). The table is
//! bounded: a flood of sign-ins evicts the oldest sessions, never grows
//! memory without limit.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use rand::RngCore;
use sha2::Digest;

use crate::types::UserId;

/// Sessions kept server-wide.
const MAX_SESSIONS: usize = 4096;
/// Sessions kept per user (a new sign-in evicts that user's oldest).
const MAX_PER_USER: usize = 8;
/// Time to enter the TOTP code after the password.
const SECOND_FACTOR_SECS: u64 = 300;

/// How far a sign-in got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Password right; the TOTP code is still due.
    NeedTotp,
    /// Password right; the organization requires TOTP and none is set up:
    /// only the set-up page is open.
    MustEnrol,
    /// Fully signed in.
    Full,
}

/// One signed-in browser.
#[derive(Debug, Clone)]
pub struct Session {
    /// The account.
    pub user: UserId,
    /// Hex CSRF token for this session's forms.
    pub csrf: String,
    /// Sign-in progress.
    pub stage: Stage,
    /// "password" or "password+totp" (for the audit record).
    pub method: &'static str,
    created: Instant,
    last: Instant,
    /// A TOTP secret being set up, until confirmed with a code.
    pub pending_totp: Option<Vec<u8>>,
}

/// Why a cookie no longer names a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// No such session (never was, signed out, or evicted).
    Unknown,
    /// Idle too long.
    Idle(UserId),
    /// Past the absolute limit.
    Expired(UserId),
}

/// All sessions.
pub struct Sessions {
    map: Mutex<HashMap<[u8; 32], Session>>,
    idle: Duration,
    absolute: Duration,
}

/// 32 random bytes as hex.
pub fn random_token() -> String {
    let mut b = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut b);
    hex::encode(b)
}

fn key(token: &str) -> [u8; 32] {
    sha2::Sha256::digest(token.as_bytes()).into()
}

impl Sessions {
    /// Sessions with these timeouts.
    pub fn new(idle: Duration, absolute: Duration) -> Self {
        Self { map: Mutex::new(HashMap::new()), idle, absolute }
    }

    /// Starts a session; returns the cookie value.
    pub fn create(&self, user: UserId, stage: Stage, method: &'static str) -> String {
        let token = random_token();
        let now = Instant::now();
        let s = Session { user, csrf: random_token(), stage, method, created: now, last: now, pending_totp: None };
        let mut map = self.map.lock();
        map.retain(|_, s| !self.dead(s, now));
        let mut mine: Vec<([u8; 32], Instant)> =
            map.iter().filter(|(_, s)| s.user == user).map(|(k, s)| (*k, s.created)).collect();
        if mine.len() >= MAX_PER_USER {
            mine.sort_by_key(|m| m.1);
            for (k, _) in &mine[..=mine.len() - MAX_PER_USER] {
                map.remove(k);
            }
        }
        if map.len() >= MAX_SESSIONS
            && let Some(oldest) = map.iter().min_by_key(|(_, s)| s.last).map(|(k, _)| *k)
        {
            map.remove(&oldest);
        }
        map.insert(key(&token), s);
        token
    }

    fn dead(&self, s: &Session, now: Instant) -> bool {
        let absolute = if s.stage == Stage::Full { self.absolute } else { Duration::from_secs(SECOND_FACTOR_SECS) };
        now.duration_since(s.last) > self.idle || now.duration_since(s.created) > absolute
    }

    /// The session a cookie names, touched (idle timer restarted).
    pub fn get(&self, token: &str) -> Result<Session, Ended> {
        let now = Instant::now();
        let mut map = self.map.lock();
        let k = key(token);
        let s = map.get_mut(&k).ok_or(Ended::Unknown)?;
        if now.duration_since(s.last) > self.idle {
            let u = s.user;
            map.remove(&k);
            return Err(Ended::Idle(u));
        }
        if self.dead(s, now) {
            let u = s.user;
            map.remove(&k);
            return Err(Ended::Expired(u));
        }
        s.last = now;
        Ok(s.clone())
    }

    /// Changes a session in place (stage, pending TOTP secret).
    pub fn update(&self, token: &str, f: impl FnOnce(&mut Session)) {
        if let Some(s) = self.map.lock().get_mut(&key(token)) {
            f(s);
        }
    }

    /// Ends one session.
    pub fn remove(&self, token: &str) -> Option<Session> {
        self.map.lock().remove(&key(token))
    }

    /// Ends every session of `user` except `keep` (after a password change
    /// or when the account is disabled).
    pub fn remove_user(&self, user: UserId, keep: Option<&str>) {
        let keep = keep.map(key);
        self.map.lock().retain(|k, s| s.user != user || Some(*k) == keep);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_user_bound_and_timeouts() {
        let s = Sessions::new(Duration::from_secs(60), Duration::from_secs(3600));
        let tokens: Vec<String> = (0..MAX_PER_USER + 2).map(|_| s.create(UserId(1), Stage::Full, "password")).collect();
        assert_eq!(s.get(&tokens[0]).unwrap_err(), Ended::Unknown, "oldest evicted");
        assert!(s.get(tokens.last().unwrap()).is_ok());
        let other = s.create(UserId(2), Stage::Full, "password");
        s.remove_user(UserId(1), None);
        assert!(s.get(tokens.last().unwrap()).is_err());
        assert!(s.get(&other).is_ok());
        let idle = Sessions::new(Duration::from_millis(1), Duration::from_secs(3600));
        let t = idle.create(UserId(3), Stage::Full, "password");
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(idle.get(&t).unwrap_err(), Ended::Idle(UserId(3)));
    }
}
