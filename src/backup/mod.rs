//! Data lifecycle: what happens to an organization's data over time
//! (docs/backup.md).
//!
//! - [`db`]: daily database backups, `[backup] db_generations` (7) kept,
//!   each a consistent copy of accounts.db, keys.db and every meta.db with
//!   a MACed [`manifest`]; [`restore`] puts one back (server stopped).
//! - [`erasure`]: an organization whose contract ended is crypto-shredded
//!   `[backup] erase_after_days` after its last contract day (JST). The
//!   running server checks at start and every `erase_check_interval_secs`;
//!   shredding also purges its key from every backup generation.
//!
//! - [`data`]: data backups to `[backup] data_target`: a database
//!   generation plus the segment files it references, unchanged segments
//!   hard-linked to the previous generation; `data_generations` kept.

pub mod data;
pub mod db;
pub mod erasure;
pub mod manifest;
pub mod purge;
pub mod remote;
pub mod restore;

/// Minimal stand-ins for the tables of accounts.db and keys.db that backups
/// and purges touch, for unit tests that build a data directory by hand
/// (end to end, `protocol-tests/backup.rs` and `lifecycle.rs` use the real ones).
#[cfg(test)]
pub(crate) mod test_schema {
    pub const ACCOUNTS: &str = "CREATE TABLE orgs(id INTEGER PRIMARY KEY, name TEXT, name_key BLOB, erased INTEGER);
        CREATE TABLE users(id INTEGER PRIMARY KEY, org_id INTEGER);
        CREATE TABLE groups(id INTEGER PRIMARY KEY, org_id INTEGER);
        CREATE TABLE shares(id INTEGER PRIMARY KEY, org_id INTEGER);";
    pub const KEYS: &str = "CREATE TABLE org_keys(org INTEGER PRIMARY KEY, wrapped BLOB NOT NULL);
        CREATE TABLE shredded(org INTEGER PRIMARY KEY);";
}
