//! Oplocks and leases, driven through `StreamState` as the engine would
//! drive it. "The client acks" means what smbtorture's break handlers do:
//! acknowledge to the level the break offered.

mod harness;
mod leases;
mod oplocks;
mod props;
