//! `[backup.targets.NAME]`: where organizations' remote backups go.
//!
//! ```toml
//! [backup.targets.tokyo]
//! kind = "s3"
//! endpoint = "https://s3.ap-northeast-1.amazonaws.com"
//! region = "ap-northeast-1"
//! bucket = "acme-smbvault-tokyo"
//! prefix = "smbvault/"
//! credentials_file = "/etc/smbvault/s3-tokyo.toml"   # or credentials_env = "SMBVAULT_S3_TOKYO"
//!
//! [backup.targets.nas]
//! kind = "path"
//! path = "/mnt/nas/smbvault"
//! ```
//!
//! Credentials never come from the configuration file itself (it has no
//! field for them): from `credentials_file` (TOML with `access_key_id` and
//! `secret_access_key`, readable by its owner only) or from the environment
//! (`<credentials_env>_ACCESS_KEY_ID` / `_SECRET_ACCESS_KEY`, default
//! `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY`).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::objects::{ObjectStore, PathStore};
use super::s3::{S3Params, S3Store};

/// The kind of a target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TargetKind {
    /// An S3-compatible object store.
    S3,
    /// A directory.
    Path,
}

/// One `[backup.targets.NAME]` table.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetConfig {
    /// `s3` or `path`.
    pub kind: TargetKind,
    /// s3: endpoint URL.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// s3: region (default "us-east-1").
    #[serde(default)]
    pub region: Option<String>,
    /// s3: bucket.
    #[serde(default)]
    pub bucket: Option<String>,
    /// s3: key prefix inside the bucket, e.g. "smbvault/".
    #[serde(default)]
    pub prefix: String,
    /// s3: path-style URLs (most S3-compatible servers); false: virtual hosts.
    #[serde(default = "yes")]
    pub path_style: bool,
    /// s3: file holding the access key (TOML, mode 0600).
    #[serde(default)]
    pub credentials_file: Option<PathBuf>,
    /// s3: environment variable prefix for the access key.
    #[serde(default)]
    pub credentials_env: Option<String>,
    /// path: the directory.
    #[serde(default)]
    pub path: Option<PathBuf>,
    /// Objects uploaded at once.
    #[serde(default = "four")]
    pub parallel: usize,
    /// Upload limit in KiB/s (none: unlimited).
    #[serde(default)]
    pub bandwidth_kib: Option<u64>,
    /// s3: multipart part size in MiB (at least 5).
    #[serde(default = "sixteen")]
    pub part_size_mib: u64,
    /// Segments are stored in pieces of this many MiB: a piece, once
    /// full, never changes and is uploaded once.
    #[serde(default = "sixty_four")]
    pub piece_size_mib: u64,
}

fn yes() -> bool {
    true
}
fn four() -> usize {
    4
}
fn sixteen() -> u64 {
    16
}
fn sixty_four() -> u64 {
    64
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CredFile {
    access_key_id: String,
    secret_access_key: String,
}

impl TargetConfig {
    /// Checks what serde cannot; `name` is the table's name.
    pub fn validate(&self, name: &str) -> Result<(), String> {
        let ok_name = !name.is_empty()
            && name.len() <= 64
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !ok_name {
            return Err(format!("backup.targets.{name}: names are letters, digits, '-' and '_'"));
        }
        if self.piece_size_mib == 0 || self.piece_size_mib > 4096 {
            return Err(format!("backup.targets.{name}.piece_size_mib must be 1 to 4096"));
        }
        if self.parallel == 0 || self.parallel > 64 {
            return Err(format!("backup.targets.{name}.parallel must be 1 to 64"));
        }
        match self.kind {
            TargetKind::S3 => {
                if self.endpoint.is_none() || self.bucket.is_none() {
                    return Err(format!("backup.targets.{name}: kind \"s3\" needs endpoint and bucket"));
                }
                if self.part_size_mib < 5 || self.part_size_mib > 5 * 1024 {
                    return Err(format!("backup.targets.{name}.part_size_mib must be 5 to 5120"));
                }
                if self.path.is_some() {
                    return Err(format!("backup.targets.{name}: path is for kind \"path\""));
                }
            }
            TargetKind::Path => {
                if self.path.is_none() {
                    return Err(format!("backup.targets.{name}: kind \"path\" needs path"));
                }
                if self.endpoint.is_some() || self.bucket.is_some() || self.credentials_file.is_some() {
                    return Err(format!("backup.targets.{name}: endpoint/bucket/credentials are for kind \"s3\""));
                }
            }
        }
        Ok(())
    }

    /// Bytes per second, if limited.
    pub fn bandwidth(&self) -> Option<u64> {
        self.bandwidth_kib.map(|k| k * 1024)
    }

    /// Opens the target (reads the credentials).
    pub fn open(&self, name: &str) -> Result<Box<dyn ObjectStore>, String> {
        match self.kind {
            TargetKind::Path => {
                let p = self.path.clone().ok_or_else(|| format!("target {name}: no path"))?;
                Ok(Box::new(PathStore::new(p)))
            }
            TargetKind::S3 => {
                let (id, secret) = self.credentials(name)?;
                let p = S3Params {
                    endpoint: self.endpoint.clone().unwrap_or_default(),
                    region: self.region.clone().unwrap_or_else(|| "us-east-1".into()),
                    bucket: self.bucket.clone().unwrap_or_default(),
                    prefix: self.prefix.clone(),
                    path_style: self.path_style,
                    part_size: self.part_size_mib << 20,
                };
                Ok(Box::new(S3Store::new(&p, &id, &secret)?))
            }
        }
    }

    fn credentials(&self, name: &str) -> Result<(String, Zeroizing<String>), String> {
        if let Some(path) = &self.credentials_file {
            use std::os::unix::fs::MetadataExt;
            let meta = std::fs::metadata(path).map_err(|e| format!("target {name}: {}: {e}", path.display()))?;
            if meta.mode() & 0o077 != 0 {
                return Err(format!(
                    "target {name}: {} is readable by others (mode {:o}); chmod 600 it",
                    path.display(),
                    meta.mode() & 0o777
                ));
            }
            let text = Zeroizing::new(
                std::fs::read_to_string(path).map_err(|e| format!("target {name}: {}: {e}", path.display()))?,
            );
            let c: CredFile =
                toml::from_str(&text).map_err(|e| format!("target {name}: {}: {}", path.display(), e.message()))?;
            return Ok((c.access_key_id, Zeroizing::new(c.secret_access_key)));
        }
        let pre = self.credentials_env.clone().unwrap_or_else(|| "AWS".into());
        let id = std::env::var(format!("{pre}_ACCESS_KEY_ID"));
        let secret = std::env::var(format!("{pre}_SECRET_ACCESS_KEY"));
        match (id, secret) {
            (Ok(id), Ok(s)) => Ok((id, Zeroizing::new(s))),
            _ => Err(format!(
                "target {name}: no credentials: set credentials_file, or {pre}_ACCESS_KEY_ID and {pre}_SECRET_ACCESS_KEY"
            )),
        }
    }
}
