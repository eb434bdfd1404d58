//! smbvault: an SMB2/SMB3 file server for hosted, multi-tenant shared drives, with
//! every file, stream and name encrypted at rest and tamper-evident audit logs.
//!
//! Layers (dependencies point downwards only):
//! - [`net`]: the tokio shell that moves bytes (framing, tasks, shutdown).
//! - [`engine`]: sans-IO protocol state machine and command handlers.
//! - [`wire`]: sans-IO codecs for MS-SMB2 messages and MS-FSCC structures.
//! - [`crypto`] / [`auth`]: SMB transport crypto, SPNEGO/NTLMv2 server.
//! - [`storage`], [`accounts`], [`audit`], [`backup`]: one concern each.
//! - [`buffers`]: large message buffers kept for reuse (net and engine).
#![forbid(unsafe_code)]
// No `unwrap` in the server (tests may): an error is a status or a message,
// never a panic. Cargo.toml's [lints] cannot scope a lint to non-test code.
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub mod accounts;
pub mod app;
pub mod audit;
pub mod auth;
pub mod backup;
pub mod buffers;
pub mod cli;
pub mod config;
pub mod console;
pub mod crypto;
pub mod engine;
pub mod keys;
pub mod metrics;
pub mod net;
pub mod printable;
pub mod rpc;
pub mod service;
pub mod storage;
#[cfg(test)]
pub(crate) mod testutil;
pub mod types;
pub mod wire;
