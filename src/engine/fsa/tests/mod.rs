//! Tests derived from smbtorture's smb2 suites; each test names the
//! smbtorture test it follows.

mod access;
mod cache;
mod locks;
mod sd;
mod sharing;
