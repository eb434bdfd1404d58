//! Data lifecycle: what happens to an organization's data over time.
//!
//! - [`erasure`]: an organization whose contract ended is crypto-shredded
//!   `[backup] erase_after_days` after its last contract day (JST). The
//!   running server checks at start and every `erase_check_interval_secs`.
//!
//! Database and data backups (daily generations, a second location,
//! restore) are planned here; today the `[backup]` generation keys are
//! read but nothing is backed up yet (see config/smbvault.toml).

pub mod erasure;
