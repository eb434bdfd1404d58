//! SMB3 multichannel end to end (issue 15): a session bound to a second
//! connection (MS-SMB2 3.3.5.5.2) serves the open made on the first; the
//! session, its tree and its open outlive the first connection; a bind by
//! another user is refused; without `[server] multichannel` every bind is
//! refused. Driven by our protocol client (`protocol-tests/client`), which
//! derives the channel's signing key itself and checks the server's
//! signatures with it; smbtorture's `smb2.session.bind*`, `smb2.replay` and
//! `smb2.multichannel` suites cover the rest (protocol-tests/torture).

mod common;

#[path = "client/mod.rs"]
#[allow(dead_code, unused_imports, reason = "these tests use part of the client's API")]
mod client;

use std::net::SocketAddr;
use std::time::Duration;

use client::{Config, CreateSpec, Error, Tree, read_data};
use common::*;
use smbvault::wire::NtStatus;
use smbvault::wire::negotiate::{Dialect, caps};

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

fn config(s: &TestServer, user: &str) -> Config {
    let mut c = Config::new(SocketAddr::from(([127, 0, 0, 1], s.port)), user, "DEFAULT", PASS);
    c.timeout = Duration::from_secs(30);
    c
}

fn server(opts: Options) -> TestServer {
    let s = TestServer::start_with(opts);
    s.add_user("DEFAULT\\alice", PASS);
    s.add_user("DEFAULT\\bob", PASS);
    for u in ["alice", "bob"] {
        s.admin(&["share", "grant", "--user", u, "share", "read_write"]);
    }
    s
}

/// The status of a failed call.
fn status_of<T>(r: Result<T, Error>) -> NtStatus {
    match r {
        Err(Error::Status { status, .. }) => status,
        Err(e) => panic!("expected an error status, got {e}"),
        Ok(_) => panic!("expected an error status, got success"),
    }
}

/// One dialect's whole scenario: bind, I/O across channels, first channel
/// dropped, second goes on; another user's bind refused.
fn bind_and_outlive_first_channel(dialect: Dialect, encrypt: bool) {
    let s = server(Options::default());
    let mut cfg = config(&s, "alice");
    cfg.dialects = vec![dialect];
    cfg.encrypt = encrypt;
    let result: Result<(), Error> = rt().block_on(async {
        let one = client::connect(&cfg).await?;
        assert_eq!(one.info().dialect, dialect);
        assert_ne!(one.info().server_capabilities & caps::MULTI_CHANNEL, 0);
        let t1 = one.tree_connect("share").await?;
        let f = t1.create("mc.bin", &CreateSpec::overwrite()).await?;
        assert_eq!(t1.write(f.file_id, 0, b"written on channel one").await?, 22);

        let two = client::bind(&cfg, &one).await?;
        assert_eq!(two.info().session_id, one.info().session_id);
        // The tree and the open of channel one, through channel two.
        let t2 = Tree::new(
            two.connection().clone(),
            t1.id(),
            *t1.connect_response(),
            std::sync::Arc::new(two.info().clone()),
        );
        let r = t2.read(f.file_id, 0, 64).await?;
        assert_eq!(read_data(&r)?, b"written on channel one");
        assert_eq!(t2.write(f.file_id, 22, b", then two").await?, 10);
        let r = t1.read(f.file_id, 0, 64).await?;
        assert_eq!(read_data(&r)?, b"written on channel one, then two");

        // Another user cannot bind alice's session (3.3.5.5.2).
        let bob = config(&s, "bob");
        let mut bob = bob;
        bob.dialects = vec![dialect];
        assert_eq!(status_of(client::bind(&bob, &one).await), NtStatus::ACCESS_DENIED);
        // A wrong password is a failed logon, and the session lives on.
        let mut wrong = cfg.clone();
        wrong.creds.password = zeroize::Zeroizing::new("not the password".into());
        assert_eq!(status_of(client::bind(&wrong, &one).await), NtStatus::LOGON_FAILURE);

        // Channel one goes: the session, its tree and the open stay.
        drop(t1);
        drop(one);
        tokio::time::sleep(Duration::from_millis(500)).await;
        let r = t2.read(f.file_id, 0, 64).await?;
        assert_eq!(read_data(&r)?, b"written on channel one, then two");
        let g = t2.create("after.txt", &CreateSpec::overwrite()).await?;
        assert_eq!(t2.write(g.file_id, 0, b"still here").await?, 10);
        t2.close(g.file_id).await?;
        t2.close(f.file_id).await?;
        two.logoff().await?;
        Ok(())
    });
    result.expect("multichannel scenario");
    let log = s.log_text();
    assert!(log.contains("session bound to a new channel"), "{log}");
    assert!(log.contains("session bind as another user refused"), "{log}");
    assert!(log.contains("channel closed; its sessions go on on the other channels"), "{log}");
}

#[test]
fn smb311_bind_outlives_first_channel() {
    bind_and_outlive_first_channel(Dialect::SMB311, false);
}

#[test]
fn smb311_encrypted_bind_outlives_first_channel() {
    bind_and_outlive_first_channel(Dialect::SMB311, true);
}

#[test]
fn smb30_bind_outlives_first_channel() {
    bind_and_outlive_first_channel(Dialect::SMB30, false);
}

/// A session whose last channel goes ends: the open is closed (not
/// durable), and a bind naming it finds nothing.
#[test]
fn session_ends_with_its_last_channel() {
    let s = server(Options::default());
    let cfg = config(&s, "alice");
    rt().block_on(async {
        let one = client::connect(&cfg).await?;
        let t1 = one.tree_connect("share").await?;
        let f = t1.create("gone.txt", &CreateSpec::overwrite()).await?;
        let two = client::bind(&cfg, &one).await?;
        let t2 = Tree::new(
            two.connection().clone(),
            t1.id(),
            *t1.connect_response(),
            std::sync::Arc::new(two.info().clone()),
        );
        t2.write(f.file_id, 0, b"x").await?;
        drop((t1, t2));
        drop(two);
        tokio::time::sleep(Duration::from_millis(300)).await;
        // Channel one still carries it.
        let t1 = one.tree_connect("share").await?;
        drop(t1);
        drop(one);
        tokio::time::sleep(Duration::from_millis(500)).await;
        // Both gone: nobody holds gone.txt (an exclusive open succeeds).
        let three = client::connect(&cfg).await?;
        let t3 = three.tree_connect("share").await?;
        let mut excl = CreateSpec::read_write();
        excl.share_access = 0;
        let g = t3.create("gone.txt", &excl).await?;
        t3.close(g.file_id).await?;
        Ok::<(), Error>(())
    })
    .expect("scenario");
}

/// Without `[server] multichannel`: no capability, every bind refused
/// (3.3.5.5: REQUEST_NOT_ACCEPTED), the session untouched.
#[test]
fn multichannel_off_refuses_binds() {
    let s = server(Options { server: vec!["multichannel = false".into()], ..Options::default() });
    let cfg = config(&s, "alice");
    rt().block_on(async {
        let one = client::connect(&cfg).await?;
        assert_eq!(one.info().server_capabilities & caps::MULTI_CHANNEL, 0);
        assert_eq!(status_of(client::bind(&cfg, &one).await), NtStatus::REQUEST_NOT_ACCEPTED);
        let t1 = one.tree_connect("share").await?;
        t1.create("still.txt", &CreateSpec::overwrite()).await?;
        Ok::<(), Error>(())
    })
    .expect("scenario");
}
