//! The sans-IO SMB2 engine: connection, session, tree and open state and the
//! command handlers. Time comes in as arguments; storage, accounts and audit
//! are reached through the services in [`server::Server`].

pub mod audit;
pub mod connection;
pub mod credits;
pub mod fileops;
pub mod fsa;
pub mod handlers;
pub mod identity;
pub mod names;
pub mod open;
pub mod revalidate;
pub mod security;
pub mod server;
pub mod services;
pub mod session;
pub mod status;

pub use connection::{Connection, Outgoing};
pub use server::Server;
