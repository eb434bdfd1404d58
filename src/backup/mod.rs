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
//! Data (segment) backups to a second location are not built yet: the
//! `data_target` and `data_generations` keys are read and ignored.

pub mod db;
pub mod erasure;
pub mod manifest;
pub mod purge;
pub mod restore;
