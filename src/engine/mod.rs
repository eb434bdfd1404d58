//! The sans-IO SMB2 engine: connection, session, tree and open state and the
//! command handlers. Time comes in as arguments; storage, accounts and audit
//! are reached through the services in [`server::Server`].

pub mod aapl;
pub mod acl;
pub mod audit;
pub mod binding;
pub mod caching;
pub mod connection;
pub mod context;
pub mod credits;
pub mod crypto_state;
pub mod durable;
pub mod fileops;
pub mod files;
pub mod fsa;
pub mod group;
pub mod handlers;
pub mod limits;
pub mod mailbox;
pub mod names;
pub mod nfs_ace;
pub mod notify;
pub mod offload;
pub mod open;
pub mod pending;
pub mod replay;
pub mod revalidate;
pub mod security;
pub mod server;
pub mod services;
pub mod session;
pub mod status;
pub mod teardown;
pub mod throttle;
pub mod times;
pub mod tunnels;
pub mod watches;

pub use connection::{Connection, Holding, LockReport, OpenReport, SessionReport};
pub use context::Outgoing;
pub use offload::{Inbound, KeyTable, ProtectJob, WireMessage};
pub use server::Server;
