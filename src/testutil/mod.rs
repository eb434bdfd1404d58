//! Helpers shared by unit tests across modules (compiled only for tests).

pub(crate) mod pcap;
pub(crate) mod smb;
