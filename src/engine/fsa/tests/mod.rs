//! Tests derived from smbtorture's smb2 suites; each test names the
//! smbtorture test it follows.

mod access;
mod locks;
mod oplock;
mod sd;
mod sharing;
