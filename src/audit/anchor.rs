//! Audit anchors: a MACed statement of every log's chain head, to keep off
//! the machine (`smbvault logs anchor`). The hash chain proves a log was not
//! edited, but a whole log directory restored from an older copy, or
//! deleted, verifies (or vanishes) without a trace; an anchor taken earlier
//! catches both (`smbvault logs verify --anchor FILE`): every anchored
//! record must still be there with the same chain hash.
//!
//! Format (JSON): `format` ("smbvault-audit-anchor-1"), `created` (RFC 3339,
//! JST), `key_id` (which master key), `logs` (`log`: `server` or `org-<id>`,
//! `org`: name when made, `seq`: last record, `hash`: chain hash after it,
//! hex) and `mac` = HMAC-SHA256 under `MK ─HKDF "smbvault/mk/audit-anchor"`
//! over the same JSON with `mac` empty.

use std::time::SystemTime;

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use super::{AuditError, AuditLog, LogId, format_jst};
use crate::keys::MasterKey;
use crate::types::OrgId;

const FORMAT: &str = "smbvault-audit-anchor-1";

/// One log's head in an anchor.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AnchorEntry {
    /// `server` or `org-<id>`.
    pub log: String,
    /// The organization's name when the anchor was made.
    pub org: Option<String>,
    /// Sequence number of the last record.
    pub seq: u64,
    /// Chain hash after it (hex).
    pub hash: String,
}

/// A signed statement of every log's head.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Anchor {
    /// "smbvault-audit-anchor-1".
    pub format: String,
    /// When it was made (JST).
    pub created: String,
    /// Identifier of the master key that MACed it.
    pub key_id: String,
    /// Each log's head.
    pub logs: Vec<AnchorEntry>,
    /// HMAC-SHA256, hex.
    pub mac: String,
}

/// What checking an anchor found.
#[derive(Debug, Clone, Default)]
pub struct AnchorCheck {
    /// Rollbacks, deletions, replacements (each a sentence).
    pub problems: Vec<String>,
    /// Benign findings (erased organizations, purged records).
    pub notes: Vec<String>,
}

fn mac_of(a: &Anchor, mk: &MasterKey) -> String {
    let mut body = a.clone();
    body.mac = String::new();
    let json = serde_json::to_vec(&body).unwrap_or_default();
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(mk.derive("smbvault/mk/audit-anchor").expose())
        .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
    m.update(b"smbvault-audit-anchor1");
    m.update(&json);
    hex::encode(m.finalize().into_bytes())
}

impl Anchor {
    /// The heads of every log present now (verified first: an anchor of a
    /// log that does not verify would bless the damage).
    pub fn make(
        log: &AuditLog,
        mk: &MasterKey,
        name: &dyn Fn(OrgId) -> Option<String>,
        now: SystemTime,
    ) -> Result<Anchor, AuditError> {
        let mut logs = Vec::new();
        for id in log.logs()? {
            let rep = log.verify_at(id, None)?;
            if !rep.problems.is_empty() {
                return Err(AuditError::Tampered(format!(
                    "{id} does not verify ({} problems); run `smbvault logs verify` before anchoring",
                    rep.problems.len()
                )));
            }
            logs.push(AnchorEntry {
                log: id.dir_name(),
                org: id.org().and_then(name),
                seq: rep.end_seq,
                hash: hex::encode(rep.end_hash),
            });
        }
        let mut a =
            Anchor { format: FORMAT.into(), created: format_jst(now), key_id: mk.key_id(), logs, mac: String::new() };
        a.mac = mac_of(&a, mk);
        Ok(a)
    }

    /// Parses an anchor and checks its MAC.
    pub fn parse(text: &str, mk: &MasterKey) -> Result<Anchor, String> {
        let a: Anchor = serde_json::from_str(text).map_err(|e| format!("not an audit anchor: {e}"))?;
        if a.format != FORMAT {
            return Err(format!("not an audit anchor (format {:?})", a.format));
        }
        let want = mac_of(&a, mk);
        if !bool::from(subtle::ConstantTimeEq::ct_eq(want.as_bytes(), a.mac.as_bytes())) {
            return Err(format!(
                "the anchor fails authentication: edited, or made with another master key ({} here, {} in the file)",
                mk.key_id(),
                a.key_id
            ));
        }
        Ok(a)
    }

    /// Checks that every anchored record is still in its log with the same
    /// chain hash. `erased` tells organizations erased since (their logs
    /// are gone on purpose).
    pub fn check(&self, log: &AuditLog, erased: &dyn Fn(OrgId) -> bool) -> Result<AnchorCheck, AuditError> {
        let mut out = AnchorCheck::default();
        let present = log.logs()?;
        for e in &self.logs {
            let Some(id) = LogId::from_dir_name(&e.log) else {
                out.problems.push(format!("{}: not a log name", e.log));
                continue;
            };
            let who = match &e.org {
                Some(n) => format!("{} ({})", n, e.log),
                None => e.log.clone(),
            };
            if e.seq == 0 {
                continue;
            }
            if !present.contains(&id) {
                match id.org() {
                    Some(o) if erased(o) => out.notes.push(format!("{who}: erased since the anchor")),
                    _ => out.problems.push(format!(
                        "{who}: the log is missing, but the anchor of {} saw {} records: deleted",
                        self.created, e.seq
                    )),
                }
                continue;
            }
            let rep = log.verify_at(id, Some(e.seq))?;
            if rep.end_seq < e.seq {
                out.problems.push(format!(
                    "{who}: the log ends at record #{}, but the anchor of {} saw #{}: rolled back (an older \
                     copy restored) or truncated",
                    rep.end_seq, self.created, e.seq
                ));
            } else if let Some(h) = rep.probe_hash {
                if hex::encode(h) != e.hash {
                    out.problems.push(format!(
                        "{who}: record #{} differs from the anchor of {}: the log was replaced or rewritten",
                        e.seq, self.created
                    ));
                }
            } else if e.seq < rep.purged_seq {
                out.notes.push(format!("{who}: anchored record #{} was purged under retention since", e.seq));
            } else {
                out.problems.push(format!(
                    "{who}: no record ends at #{} as in the anchor of {}: the log was replaced or rewritten",
                    e.seq, self.created
                ));
            }
        }
        Ok(out)
    }
}
