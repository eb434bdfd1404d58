//! The tokio shell: accepts TCP connections, reads Direct-TCP frames, hands
//! them to the sans-IO engine and writes back what it returns. It never looks
//! inside a message past the 4-byte frame prefix.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc, watch};

use crate::engine::{Connection, Outgoing, Server};
use crate::wire::framing::{self, Prefix};

/// How often each connection gets a `tick` (session revalidation, timeouts).
const TICK: Duration = Duration::from_secs(1);
/// How long shutdown waits for connections to finish their current request.
const DRAIN: Duration = Duration::from_secs(10);

/// Serves until `shutdown` flips to true, then closes every connection and
/// returns once they are gone (or after [`DRAIN`]).
pub async fn serve(
    server: Arc<Server>,
    listener: TcpListener,
    mut shutdown: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let limit = Arc::new(Semaphore::new(server.config.server.max_connections));
    let (done_tx, mut done_rx) = mpsc::channel::<()>(1);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(x) => x,
                    Err(e) => {
                        // EMFILE and friends: back off instead of spinning.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let Ok(permit) = limit.clone().try_acquire_owned() else {
                    tracing::warn!(%peer, "connection limit reached; refusing");
                    continue;
                };
                let server = server.clone();
                let stop = shutdown.clone();
                let done = done_tx.clone();
                tokio::spawn(async move {
                    if let Err(e) = connection(server, stream, peer, stop).await {
                        tracing::debug!(%peer, error = %e, "connection ended");
                    }
                    drop(permit);
                    drop(done);
                });
            }
            _ = shutdown.changed() => break,
        }
    }
    drop(done_tx);
    // Every connection task holds a `done` sender; recv() returns None when all have ended.
    let _ = tokio::time::timeout(DRAIN, done_rx.recv()).await;
    Ok(())
}

/// Runs one connection: a reader loop that drives the engine and a writer task.
async fn connection(
    server: Arc<Server>,
    stream: TcpStream,
    peer: SocketAddr,
    mut stop: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let _ = stream.set_nodelay(true);
    let (mut rd, wr) = stream.into_split();
    let (tx, rx) = mpsc::unbounded_channel::<Vec<u8>>();
    let writer = tokio::spawn(write_loop(wr, rx));
    let mut conn = Connection::new(server, peer);
    let mut tick = tokio::time::interval(TICK);
    let result = loop {
        tokio::select! {
            frame = read_frame(&mut rd) => {
                let frame = match frame {
                    Ok(Some(f)) => f,
                    Ok(None) => break Ok(()),
                    Err(e) => break Err(e),
                };
                let out = tokio::task::block_in_place(|| conn.handle_frame(SystemTime::now(), &frame));
                if !send_all(&tx, out) {
                    break Ok(());
                }
            }
            _ = tick.tick() => {
                let out = tokio::task::block_in_place(|| conn.tick(SystemTime::now()));
                if !send_all(&tx, out) {
                    break Ok(());
                }
            }
            _ = stop.changed() => break Ok(()),
        }
    };
    tokio::task::block_in_place(|| conn.close(SystemTime::now()));
    drop(tx);
    let _ = writer.await;
    result
}

/// Queues frames for the writer; false once the engine asked to close.
fn send_all(tx: &mpsc::UnboundedSender<Vec<u8>>, out: Vec<Outgoing>) -> bool {
    for o in out {
        match o {
            Outgoing::Frame(f) => {
                if tx.send(f).is_err() {
                    return false;
                }
            }
            Outgoing::Delayed(d, f) => {
                // Failed logons answer late; later responses may overtake it.
                let tx = tx.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(d).await;
                    let _ = tx.send(f);
                });
            }
            Outgoing::Close => return false,
        }
    }
    true
}

/// Reads one Direct-TCP frame; `None` on a clean end of stream.
async fn read_frame(rd: &mut tokio::net::tcp::OwnedReadHalf) -> std::io::Result<Option<Vec<u8>>> {
    let mut prefix = [0u8; 4];
    match rd.read_exact(&mut prefix).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = match framing::parse_prefix(prefix) {
        Prefix::Frame(n) => n,
        Prefix::Invalid => {
            return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, "bad frame prefix"));
        }
    };
    let mut buf = vec![0u8; len];
    rd.read_exact(&mut buf).await?;
    Ok(Some(buf))
}

/// Writes queued frames; coalesces small ones and flushes when the queue is empty.
async fn write_loop(
    wr: tokio::net::tcp::OwnedWriteHalf,
    mut rx: mpsc::UnboundedReceiver<Vec<u8>>,
) -> std::io::Result<()> {
    let mut wr = tokio::io::BufWriter::with_capacity(64 * 1024, wr);
    while let Some(frame) = rx.recv().await {
        wr.write_all(&framing::prefix(frame.len())).await?;
        wr.write_all(&frame).await?;
        if rx.is_empty() {
            wr.flush().await?;
        }
    }
    wr.flush().await?;
    wr.shutdown().await
}
