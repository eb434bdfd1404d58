//! Command-line interface (temporary: the accounts branch brings the full CLI).
pub mod serve;
