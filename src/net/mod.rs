//! The tokio shell: accepts TCP connections, reads Direct-TCP frames, hands
//! them to the sans-IO engine and writes back what it returns. It never looks
//! inside a message past the 4-byte frame prefix.

pub mod registry;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant, SystemTime};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc, watch};

use crate::engine::{Connection, Inbound, KeyTable, Outgoing, Server, WireMessage};
use crate::metrics::Metrics;
use crate::wire::framing::{self, Prefix};
pub use registry::{Control, Registry};

/// How often each connection gets a `tick` (session revalidation, timeouts).
const TICK: Duration = Duration::from_secs(1);
/// How long shutdown waits for connections to finish their current request.
const DRAIN: Duration = Duration::from_secs(10);

/// Serves until `shutdown` flips to true, then stops accepting, lets each
/// connection finish the request it is working on and send its answers,
/// closes them and returns once they are gone (or after [`DRAIN`]).
pub async fn serve(
    server: Arc<Server>,
    listener: TcpListener,
    registry: Arc<Registry>,
    mut shutdown: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let slots = Arc::new(Semaphore::new(engine_slots()));
    let metrics = server.metrics.clone();
    let mut last_refusal_warning: Option<Instant> = None;
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
                // `server.max_connections` is read each time: SIGHUP may change it.
                let max = server.live().server.max_connections as u64;
                if metrics.connections_open.load(Relaxed) >= max {
                    metrics.limit(crate::metrics::Limit::Connections);
                    // Said once a minute, not once per refused client
                    // (smbvault_limits_hit_total counts them all).
                    if last_refusal_warning.is_none_or(|t: Instant| t.elapsed() >= Duration::from_secs(60)) {
                        last_refusal_warning = Some(Instant::now());
                        tracing::warn!(%peer, max, "connection limit reached; refusing new connections");
                    }
                    continue;
                }
                metrics.connections_open.fetch_add(1, Relaxed);
                metrics.connections_total.fetch_add(1, Relaxed);
                let server = server.clone();
                let stop = shutdown.clone();
                let done = done_tx.clone();
                let slots = slots.clone();
                let (id, control) = registry.add();
                let registry = registry.clone();
                let metrics = metrics.clone();
                tokio::spawn(async move {
                    if let Err(e) = connection(server, stream, peer, stop, slots, control).await {
                        tracing::debug!(%peer, error = %e, "connection ended");
                    }
                    registry.remove(id);
                    metrics.connections_open.fetch_sub(1, Relaxed);
                    drop(done);
                });
            }
            _ = shutdown.changed() => break,
        }
    }
    // Stop accepting at once: new clients get a refusal, not a hang.
    drop(listener);
    drop(done_tx);
    // Every connection task holds a `done` sender; recv() returns None when all have ended.
    let _ = tokio::time::timeout(DRAIN, done_rx.recv()).await;
    Ok(())
}

/// Runs one connection: a loop that drives the engine, fed by a reader task
/// and feeding a writer task.
async fn connection(
    server: Arc<Server>,
    stream: TcpStream,
    peer: SocketAddr,
    mut stop: watch::Receiver<bool>,
    slots: Arc<Semaphore>,
    mut control: mpsc::UnboundedReceiver<Control>,
) -> std::io::Result<()> {
    let _ = stream.set_nodelay(true);
    let metrics = server.metrics.clone();
    let (rd, wr) = stream.into_split();
    let (tx, rx) = mpsc::unbounded_channel::<Outgoing>();
    let writer = tokio::spawn(write_loop(wr, rx, metrics.clone()));
    // Frames are read by their own task: a `read_frame` raced against the
    // tick in `select!` and cancelled halfway through a large frame would
    // lose the bytes it had read and desynchronize the stream. The task
    // also reads the next request while the engine works on this one.
    let (frames_tx, mut frames) = mpsc::channel(1);
    let mut conn = Connection::new(server, peer);
    let reader = tokio::spawn(read_loop(rd, frames_tx, conn.key_table(), metrics));
    let mut last_request = Instant::now();
    // Another connection may finish one of ours pending requests (a LOCK
    // released elsewhere): it wakes us and we collect the final responses.
    let wake = Arc::new(tokio::sync::Notify::new());
    let w = wake.clone();
    conn.set_waker(Arc::new(move || w.notify_one()));
    let mut tick = tokio::time::interval(TICK);
    let result = loop {
        tokio::select! {
            frame = frames.recv() => {
                let mut inbound = match frame {
                    Some(Ok(f)) => f,
                    None => break Ok(()),
                    Some(Err(e)) => break Err(e),
                };
                last_request = Instant::now();
                let Ok(_slot) = slots.acquire().await else { break Ok(()) };
                let out = tokio::task::block_in_place(|| conn.handle_inbound(SystemTime::now(), &mut inbound));
                // A failed logon holds the connection for its delay: guesses
                // sent in parallel on one connection wait in turn.
                let hold = out.iter().find_map(|o| match o { Outgoing::Delayed(d, _) => Some(*d), _ => None });
                if !send_all(&tx, out) {
                    break Ok(());
                }
                if let Some(d) = hold {
                    tokio::select! {
                        _ = tokio::time::sleep(d) => {}
                        _ = stop.changed() => break Ok(()),
                    }
                }
            }
            _ = wake.notified() => {
                let out = tokio::task::block_in_place(|| conn.poll(SystemTime::now()));
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
            Some(c) = control.recv() => match c {
                Control::Report(answer) => {
                    let _ = answer.send(conn.report(last_request.elapsed()));
                }
                Control::Kick(sid, answer) => {
                    if conn.has_session(sid) {
                        let _ = answer.send(conn.session_principal(sid));
                        tracing::info!(%peer, session = format_args!("{sid:#x}"), "session kicked by the operator; closing the connection");
                        break Ok(());
                    }
                    let _ = answer.send(None);
                }
            },
            _ = stop.changed() => break Ok(()),
        }
    };
    reader.abort();
    tokio::task::block_in_place(|| conn.close(SystemTime::now()));
    drop(tx);
    let _ = writer.await;
    result
}

/// How many connections may run the engine at once, per core.
const SLOTS_PER_CORE: usize = 2;

/// How many connections may run the engine at once. Each request runs on a
/// thread of its own (`block_in_place`, as storage calls block); with one
/// thread per busy connection, 32 busy clients on 2 cores meant 32
/// runnable threads, each preempted in turn (often while holding a storage
/// lock everybody else then waited for) and a p99 latency five times the
/// median. Two threads per core still cover a request waiting on the disk
/// (a FLUSH's fsync) while another computes; the rest queue, first come
/// first served (tokio's semaphore is fair). On the 2-core benchmark VM, 4
/// slots gave a p99 of 9 ms, 8 gave 12.5 ms and 32 gave 17 ms at the same
/// throughput (docs/benchmarks.md). Asynchronous work (pending requests,
/// notifications) does not take a slot.
fn engine_slots() -> usize {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    cores * SLOTS_PER_CORE
}

/// Reads frames until the end of the stream or an error (which it passes
/// on). Encrypted requests are decrypted here, while the engine works on
/// the previous one (`engine::offload`).
async fn read_loop(
    mut rd: tokio::net::tcp::OwnedReadHalf,
    frames: mpsc::Sender<std::io::Result<Inbound>>,
    keys: Arc<KeyTable>,
    metrics: Arc<Metrics>,
) {
    loop {
        let item = match read_frame(&mut rd).await {
            Ok(Some(f)) => {
                metrics.bytes_in.fetch_add(4 + f.len() as u64, Relaxed);
                Ok(keys.open(f))
            }
            Ok(None) => return,
            Err(e) => Err(e),
        };
        let last = item.is_err();
        if frames.send(item).await.is_err() || last {
            return;
        }
    }
}

/// Queues frames for the writer; false once the engine asked to close.
fn send_all(tx: &mpsc::UnboundedSender<Outgoing>, out: Vec<Outgoing>) -> bool {
    for o in out {
        match o {
            Outgoing::Frame(_) | Outgoing::Protect(_) => {
                if tx.send(o).is_err() {
                    return false;
                }
            }
            Outgoing::Delayed(d, f) => {
                // Failed logons answer late; the connection loop reads no
                // further request meanwhile (it holds for the same delay).
                let tx = tx.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(d).await;
                    let _ = tx.send(*f);
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
    // Read into reserved capacity instead of a zeroed buffer: zeroing an
    // 8 MiB WRITE first costs about as much as copying it.
    let mut buf = Vec::with_capacity(len);
    while buf.len() < len {
        let want = (len - buf.len()) as u64;
        if (&mut *rd).take(want).read_buf(&mut buf).await? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
    }
    Ok(Some(buf))
}

/// Writes queued frames; coalesces small ones and flushes when the queue is empty.
async fn write_loop(
    wr: tokio::net::tcp::OwnedWriteHalf,
    mut rx: mpsc::UnboundedReceiver<Outgoing>,
    metrics: Arc<Metrics>,
) -> std::io::Result<()> {
    let mut wr = tokio::io::BufWriter::with_capacity(64 * 1024, wr);
    while let Some(out) = rx.recv().await {
        let msg = match out {
            Outgoing::Frame(f) => WireMessage { transform: None, body: f },
            // Signing or sealing happens here, while the engine handles the
            // next request; only a used-up nonce counter fails, and then the
            // connection must end.
            Outgoing::Protect(job) => job.run().map_err(std::io::Error::other)?,
            Outgoing::Delayed(..) | Outgoing::Close => continue,
        };
        // A sealed message goes out as transform header + ciphertext in one
        // Direct-TCP frame, without joining the two buffers.
        let head: &[u8] = msg.transform.as_ref().map_or(&[], |h| &h[..]);
        wr.write_all(&framing::prefix(head.len() + msg.body.len())).await?;
        wr.write_all(head).await?;
        wr.write_all(&msg.body).await?;
        metrics.bytes_out.fetch_add((4 + head.len() + msg.body.len()) as u64, Relaxed);
        if rx.is_empty() {
            wr.flush().await?;
        }
    }
    wr.flush().await?;
    wr.shutdown().await
}
