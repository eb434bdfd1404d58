//! The tokio shell: accepts TCP connections, reads Direct-TCP frames, hands
//! them to the sans-IO engine and writes back what it returns. It never looks
//! inside a message past the 4-byte frame prefix.

pub mod registry;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant, SystemTime};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, Semaphore, mpsc, watch};

use crate::config::ServerConfig;
use crate::engine::{Connection, Holding, Inbound, KeyTable, Outgoing, Server, WireMessage};
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
    let per_ip = Arc::new(PerIp::default());
    let max_per_ip = server.config.server.max_connections_per_ip;
    let mut last_per_ip_warning: Option<Instant> = None;
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
                // One address may not take every slot (4096 silent sockets
                // from one host used to lock everybody out).
                let Some(ip_slot) = per_ip.take(peer.ip(), max_per_ip) else {
                    metrics.limit(crate::metrics::Limit::Connections);
                    if last_per_ip_warning.is_none_or(|t: Instant| t.elapsed() >= Duration::from_secs(60)) {
                        last_per_ip_warning = Some(Instant::now());
                        tracing::warn!(%peer, max_per_ip, "per-address connection limit reached; refusing its new connections");
                    }
                    continue;
                };
                keepalive(&stream);
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
                    drop(ip_slot);
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

/// Responses handed to a connection's writer and not yet on the wire.
#[derive(Default)]
struct SendQueue {
    bytes: AtomicUsize,
    /// Signalled each time the writer has sent a frame.
    sent: Notify,
}

/// Runs one connection: a loop that drives the engine, fed by a reader task
/// and feeding a writer task.
///
/// Backpressure: while more than `limits.send_queue_bytes` of responses
/// wait for the client to take them, no further request is taken (the
/// reader then stops reading the socket, and the client's sends stall in
/// TCP). A client that asks for large READs and never reads its socket
/// makes the server hold at most that bound plus one frame of responses
/// (the compound budget of `engine::connection`) and the requests read ahead.
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
    let cfg = server.config.server.clone();
    let bound = server.config.limits.send_queue_bytes;
    let (rd, wr) = stream.into_split();
    let (tx, rx) = mpsc::unbounded_channel::<Outgoing>();
    let queue = Arc::new(SendQueue::default());
    let send_timeout = Duration::from_secs(cfg.send_timeout_secs);
    let writer = tokio::spawn(write_loop(wr, rx, metrics.clone(), queue.clone(), send_timeout));
    // Frames are read by their own task: a `read_frame` raced against the
    // tick in `select!` and cancelled halfway through a large frame would
    // lose the bytes it had read and desynchronize the stream. The task
    // also reads the next request while the engine works on this one.
    let (frames_tx, mut frames) = mpsc::channel(1);
    let mut conn = Connection::new(server, peer);
    let deadlines = FrameDeadlines::of(&cfg);
    let reader = tokio::spawn(read_loop(rd, frames_tx, conn.key_table(), metrics, deadlines));
    let mut last_request = Instant::now();
    // Another connection may finish one of ours pending requests (a LOCK
    // released elsewhere): it wakes us and we collect the final responses.
    let wake = Arc::new(tokio::sync::Notify::new());
    let w = wake.clone();
    conn.set_waker(Arc::new(move || w.notify_one()));
    let mut tick = tokio::time::interval(TICK);
    let result = loop {
        let room = queue.bytes.load(Relaxed) <= bound;
        let idle_deadline = idle_limit(&cfg, conn.holding()).map(|d| tokio::time::Instant::from_std(last_request + d));
        tokio::select! {
            frame = frames.recv(), if room => {
                let mut inbound = match frame {
                    Some(Ok(f)) => f,
                    None => break Ok(()),
                    Some(Err(e)) => break Err(e),
                };
                last_request = Instant::now();
                let Ok(_slot) = slots.acquire().await else { break Ok(()) };
                // Most requests run right here: handing the worker's queue
                // to another thread first cost 20-30 % of the server CPU
                // of a small-file operation (docs/benchmarks.md). Those
                // that may wait on the disk or the network still do.
                let out = if inbound.runs_on_worker() {
                    conn.handle_inbound(SystemTime::now(), &mut inbound)
                } else {
                    tokio::task::block_in_place(|| conn.handle_inbound(SystemTime::now(), &mut inbound))
                };
                // A failed logon holds the connection for its delay: guesses
                // sent in parallel on one connection wait in turn.
                let hold = out.iter().find_map(|o| match o { Outgoing::Delayed(d, _) => Some(*d), _ => None });
                if let Some(f) = inbound.into_frame() {
                    crate::buffers::give(f);
                }
                if !send_all(&tx, &queue, out) {
                    break Ok(());
                }
                if let Some(d) = hold {
                    tokio::select! {
                        _ = tokio::time::sleep(d) => {}
                        _ = stop.changed() => break Ok(()),
                    }
                }
            }
            // The writer sent something: look at the queue again.
            _ = queue.sent.notified(), if !room => {}
            _ = sleep_until(idle_deadline) => {
                tracing::debug!(%peer, holding = ?conn.holding(), "idle timeout; closing the connection");
                break Ok(());
            }
            _ = wake.notified() => {
                let out = tokio::task::block_in_place(|| conn.poll(SystemTime::now()));
                if !send_all(&tx, &queue, out) {
                    break Ok(());
                }
            }
            _ = tick.tick() => {
                let out = tokio::task::block_in_place(|| conn.tick(SystemTime::now()));
                if !send_all(&tx, &queue, out) {
                    break Ok(());
                }
            }
            // The writer gave up (send timeout, reset): nothing more can be said.
            _ = tx.closed() => break Ok(()),
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

/// How long a connection holding `h` may go without a request.
fn idle_limit(cfg: &ServerConfig, h: Holding) -> Option<Duration> {
    match h {
        Holding::Nothing => Some(Duration::from_secs(cfg.handshake_timeout_secs)),
        Holding::Logon if cfg.idle_timeout_secs > 0 => Some(Duration::from_secs(cfg.idle_timeout_secs)),
        Holding::Logon | Holding::Files => None,
    }
}

/// Sleeps until `at`, or forever.
async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Connections per client address.
#[derive(Default)]
struct PerIp(parking_lot::Mutex<HashMap<IpAddr, usize>>);

/// One connection's place in [`PerIp`], given back on drop.
struct IpSlot(Arc<PerIp>, IpAddr);

impl PerIp {
    /// A slot for `ip`, unless it already has `max` connections.
    fn take(self: &Arc<Self>, ip: IpAddr, max: usize) -> Option<IpSlot> {
        // An IPv4 client on a dual-stack socket is one address either way.
        let ip = ip.to_canonical();
        let mut m = self.0.lock();
        let n = m.entry(ip).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(IpSlot(self.clone(), ip))
    }
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        let mut m = self.0.0.lock();
        if let Some(n) = m.get_mut(&self.1) {
            *n -= 1;
            if *n == 0 {
                m.remove(&self.1);
            }
        }
    }
}

/// TCP keepalive: a client that vanished (power off, network gone) while
/// holding open files is found in about two minutes instead of never;
/// the idle timeouts spare connections with open files on purpose.
fn keepalive(stream: &TcpStream) {
    let ka = socket2::TcpKeepalive::new()
        .with_time(Duration::from_secs(60))
        .with_interval(Duration::from_secs(10))
        .with_retries(6);
    if let Err(e) = socket2::SockRef::from(stream).set_tcp_keepalive(&ka) {
        tracing::debug!(error = %e, "TCP keepalive not set");
    }
}

/// How many connections may run the engine at once, per core.
const SLOTS_PER_CORE: usize = 4;

/// How many connections may run the engine at once. A request that may
/// block runs on a thread of its own (`block_in_place`; quick ones run on
/// the worker, `Inbound::runs_on_worker`); with one thread per busy
/// connection, 32 busy clients on 2 cores meant 32 runnable threads, each
/// preempted in turn (often while holding a storage lock everybody else
/// then waited for) and a p99 latency five times the median. A few threads
/// per core still cover requests waiting on the disk (a FLUSH's fsync) or
/// on a lock while another computes; the rest queue, first come first served (tokio's
/// semaphore is fair). On the 2-core benchmark VM (32 clients, 64 KiB
/// reads and writes, 2026-12-06, docs/benchmarks.md) 4 slots gave 522-571
/// MiB/s and 8 gave 627-668 MiB/s at the same p99 (8.4-9.2 ms); with 32
/// the p99 rose to 13 ms. Asynchronous work (pending requests,
/// notifications) does not take a slot.
fn engine_slots() -> usize {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    cores * SLOTS_PER_CORE
}

/// How long a frame may take to arrive once its first byte has.
#[derive(Clone, Copy)]
struct FrameDeadlines {
    /// The 4-byte length and the SMB2 (or transform) header.
    header: Duration,
    /// The whole frame.
    frame: Duration,
}

impl FrameDeadlines {
    fn of(cfg: &ServerConfig) -> Self {
        Self {
            header: Duration::from_secs(cfg.header_timeout_secs),
            frame: Duration::from_secs(cfg.frame_timeout_secs),
        }
    }
}

/// Reads frames until the end of the stream or an error (which it passes
/// on). Encrypted requests are decrypted here, while the engine works on
/// the previous one (`engine::offload`).
async fn read_loop(
    mut rd: tokio::net::tcp::OwnedReadHalf,
    frames: mpsc::Sender<std::io::Result<Inbound>>,
    keys: Arc<KeyTable>,
    metrics: Arc<Metrics>,
    deadlines: FrameDeadlines,
) {
    loop {
        let item = match read_frame(&mut rd, deadlines).await {
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

/// Queues frames for the writer, counting their bytes in `queue`; false
/// once the engine asked to close.
fn send_all(tx: &mpsc::UnboundedSender<Outgoing>, queue: &Arc<SendQueue>, out: Vec<Outgoing>) -> bool {
    for o in out {
        match o {
            Outgoing::Frame(_) | Outgoing::Protect(_) => {
                queue.bytes.fetch_add(o.size(), Relaxed);
                if tx.send(o).is_err() {
                    return false;
                }
            }
            Outgoing::Delayed(d, f) => {
                // Failed logons answer late; the connection loop reads no
                // further request meanwhile (it holds for the same delay).
                // Counted now, so the queue budget sees it.
                queue.bytes.fetch_add(f.size(), Relaxed);
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

/// Fills `buf` up to `len` bytes; false if the stream ended first.
async fn fill(rd: &mut tokio::net::tcp::OwnedReadHalf, buf: &mut Vec<u8>, len: usize) -> std::io::Result<bool> {
    while buf.len() < len {
        let want = (len - buf.len()) as u64;
        if (&mut *rd).take(want).read_buf(buf).await? == 0 {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Reads one Direct-TCP frame; `None` on a clean end of stream. Waiting
/// for a frame to begin has no limit here (the connection's idle timeouts
/// apply); once it has begun, its header and the whole of it must arrive
/// within `deadlines`, so that a client sending a byte now and then cannot
/// hold a connection and its buffer forever.
async fn read_frame(
    rd: &mut tokio::net::tcp::OwnedReadHalf,
    deadlines: FrameDeadlines,
) -> std::io::Result<Option<Vec<u8>>> {
    let mut prefix = Vec::with_capacity(4);
    if !fill(rd, &mut prefix, 1).await? {
        return Ok(None);
    }
    let began = tokio::time::Instant::now();
    let late = |what: &str| std::io::Error::new(std::io::ErrorKind::TimedOut, format!("{what} arrived too slowly"));
    let header_by = began + deadlines.header;
    let frame_by = began + deadlines.frame;
    match tokio::time::timeout_at(header_by, fill(rd, &mut prefix, 4)).await {
        Ok(Ok(true)) => {}
        Ok(Ok(false)) => return Err(std::io::ErrorKind::UnexpectedEof.into()),
        Ok(Err(e)) => return Err(e),
        Err(_) => return Err(late("frame length")),
    }
    let len = match framing::parse_prefix([prefix[0], prefix[1], prefix[2], prefix[3]]) {
        Prefix::Frame(n) => n,
        Prefix::Invalid => {
            return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, "bad frame prefix"));
        }
    };
    // Read into reserved capacity instead of a zeroed buffer: zeroing an
    // 8 MiB WRITE first costs about as much as copying it. A large frame
    // gets a kept buffer (`buffers`), given back once the engine is done.
    let mut buf = crate::buffers::take(len);
    let stages = [(len.min(crate::wire::HEADER_LEN), header_by, "SMB2 header"), (len, frame_by, "frame")];
    for (upto, by, what) in stages {
        match tokio::time::timeout_at(by, fill(rd, &mut buf, upto)).await {
            Ok(Ok(true)) => {}
            Ok(Ok(false)) => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            Ok(Err(e)) => return Err(e),
            Err(_) => return Err(late(what)),
        }
    }
    Ok(Some(buf))
}

/// Writes every byte of `parts`; each `SEND_CHUNK` of them must be taken
/// within `send_timeout` (a client that takes a byte now and then cannot
/// hold the connection's buffers forever).
async fn send_vectored(
    wr: &mut tokio::net::tcp::OwnedWriteHalf,
    parts: &mut [std::io::IoSlice<'_>],
    send_timeout: Duration,
) -> std::io::Result<()> {
    let mut parts = parts;
    while !parts.is_empty() {
        let round = async {
            let mut sent = 0;
            while sent < SEND_CHUNK && !parts.is_empty() {
                let n = wr.write_vectored(parts).await?;
                if n == 0 {
                    return Err(std::io::Error::from(std::io::ErrorKind::WriteZero));
                }
                std::io::IoSlice::advance_slices(&mut parts, n);
                sent += n;
            }
            Ok(())
        };
        tokio::time::timeout(send_timeout, round).await.map_err(|_| stuck())??;
    }
    Ok(())
}

/// The error that ends a connection whose client takes no responses.
fn stuck() -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::TimedOut, "client stopped taking responses")
}

/// The writer's buffer, where small responses are coalesced.
const WRITE_BUF: usize = 64 * 1024;

/// Bytes written at once under the send timeout: a client must take at
/// least this much per `send_timeout_secs` or the connection ends.
const SEND_CHUNK: usize = 1024 * 1024;

/// Writes queued frames; coalesces small ones and flushes when the queue
/// is empty. Ends (and so ends the connection) when the client takes
/// nothing for `send_timeout`.
async fn write_loop(
    wr: tokio::net::tcp::OwnedWriteHalf,
    mut rx: mpsc::UnboundedReceiver<Outgoing>,
    metrics: Arc<Metrics>,
    queue: Arc<SendQueue>,
    send_timeout: Duration,
) -> std::io::Result<()> {
    let mut wr = tokio::io::BufWriter::with_capacity(WRITE_BUF, wr);
    while let Some(out) = rx.recv().await {
        let size = out.size();
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
        let total = head.len() + msg.body.len();
        // The engine keeps chains far below 2^24 bytes; a length that
        // does not fit must end the connection, never wrap around.
        let prefix = framing::prefix(total)
            .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidData, "response frame over 2^24 bytes"))?;
        if total + 4 <= WRITE_BUF - wr.buffer().len() {
            // Small: coalesced with its neighbours in the buffer.
            for p in [&prefix[..], head, &msg.body[..]] {
                tokio::time::timeout(send_timeout, wr.write_all(p)).await.map_err(|_| stuck())??;
            }
        } else {
            // Large (a READ's data): frame prefix, transform header and
            // body leave in one `writev` instead of a 56-byte segment
            // first (the buffer would flush on its own), after whatever
            // small frames wait in the buffer.
            tokio::time::timeout(send_timeout, wr.flush()).await.map_err(|_| stuck())??;
            let mut parts = vec![std::io::IoSlice::new(&prefix), std::io::IoSlice::new(head)];
            parts.extend(msg.body.chunks(SEND_CHUNK).map(std::io::IoSlice::new));
            send_vectored(wr.get_mut(), &mut parts, send_timeout).await?;
        }
        metrics.bytes_out.fetch_add((4 + total) as u64, Relaxed);
        crate::buffers::give(msg.body);
        if rx.is_empty() {
            tokio::time::timeout(send_timeout, wr.flush()).await.map_err(|_| stuck())??;
        }
        queue.bytes.fetch_sub(size, Relaxed);
        queue.sent.notify_one();
    }
    tokio::time::timeout(send_timeout, wr.flush()).await.map_err(|_| stuck())??;
    tokio::time::timeout(send_timeout, wr.shutdown()).await.map_err(|_| stuck())?
}
