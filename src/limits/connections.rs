//! A listener's connections: accepted under a cap, closed when idle, and accept errors met
//! with a backoff and a rate-limited log instead of a busy loop.
//!
//! * **Cap**: at `max_connections` open, a new connection closes the one that has been quiet
//!   longest (no bytes read or written), so slow or idle clients cannot lock out a working
//!   one. Every such close is counted and logged (rate-limited).
//! * **Idle timeout**: a connection with no bytes read or written for `idle_timeout` is
//!   closed.
//! * **Accept errors** (file descriptors exhausted, …): the loop waits, doubling from 5 ms up
//!   to 500 ms while they last, and logs one WARN line per 10 s with how many it left out.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

use crate::telemetry::ratelimit::LogLimiter;

/// First wait after a failed accept; doubled while failures last.
const FIRST_BACKOFF: Duration = Duration::from_millis(5);
/// Longest wait after a failed accept.
const LONGEST_BACKOFF: Duration = Duration::from_millis(500);
/// One WARN line per this long about accept errors, and one about the cap.
const WARN_INTERVAL: Duration = Duration::from_secs(10);

/// How many connections a listener keeps and for how long.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnectionLimits {
    pub max_connections: usize,
    pub idle_timeout: Duration,
}

/// What a listener did, for metrics and tests.
#[derive(Debug, Default)]
pub struct ConnectionCounts {
    pub accepted: AtomicU64,
    /// Closed to make room for a new connection at the cap.
    pub evicted: AtomicU64,
    /// Closed after `idle_timeout` without a byte.
    pub idle_closed: AtomicU64,
    pub accept_errors: AtomicU64,
}

/// A TCP listener whose accepted connections are tracked under [`ConnectionLimits`].
#[derive(Debug)]
pub struct CappedListener {
    name: &'static str,
    listener: TcpListener,
    registry: Arc<Registry>,
    error_log: LogLimiter,
    backoff: Duration,
}

#[derive(Debug)]
struct Registry {
    name: &'static str,
    limits: ConnectionLimits,
    started: Instant,
    next_id: AtomicU64,
    open: Mutex<HashMap<u64, Arc<Activity>>>,
    counts: Arc<ConnectionCounts>,
    cap_log: LogLimiter,
}

/// One connection's last sign of life and the token that closes it.
#[derive(Debug)]
struct Activity {
    /// Milliseconds since the registry started, at the last byte read or written.
    last_active_ms: AtomicU64,
    close: CancellationToken,
}

impl CappedListener {
    /// Tracks connections accepted from `listener` under `limits`; `name` labels the logs.
    /// Starts the idle sweep, which ends when the listener and its connections are gone.
    pub fn new(name: &'static str, listener: TcpListener, limits: ConnectionLimits) -> CappedListener {
        let registry = Arc::new(Registry {
            name,
            limits: ConnectionLimits { max_connections: limits.max_connections.max(1), ..limits },
            started: Instant::now(),
            next_id: AtomicU64::new(0),
            open: Mutex::new(HashMap::new()),
            counts: Arc::new(ConnectionCounts::default()),
            cap_log: LogLimiter::new(WARN_INTERVAL),
        });
        tokio::spawn(sweep_idle(Arc::downgrade(&registry)));
        CappedListener { name, listener, registry, error_log: LogLimiter::new(WARN_INTERVAL), backoff: FIRST_BACKOFF }
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    pub fn counts(&self) -> Arc<ConnectionCounts> {
        Arc::clone(&self.registry.counts)
    }

    /// The next connection; waits out accept errors (they are logged, rate-limited).
    pub async fn accept(&mut self) -> (TrackedStream, SocketAddr) {
        loop {
            match self.listener.accept().await {
                Ok((stream, peer)) => {
                    self.backoff = FIRST_BACKOFF;
                    let _ = stream.set_nodelay(true);
                    let local = stream.local_addr().ok();
                    return (self.registry.admit(stream, local, peer), peer);
                }
                Err(error) => self.wait_after(error).await,
            }
        }
    }

    async fn wait_after(&mut self, error: io::Error) {
        self.registry.counts.accept_errors.fetch_add(1, Ordering::Relaxed);
        if is_connection_error(&error) {
            // The peer gave up before we accepted; nothing is wrong with the listener.
            return;
        }
        if let Some(suppressed) = self.error_log.check() {
            tracing::warn!(listener = self.name, %error, suppressed, backoff = ?self.backoff, "cannot accept connections; waiting before trying again");
        }
        tokio::time::sleep(self.backoff).await;
        self.backoff = (self.backoff * 2).min(LONGEST_BACKOFF);
    }
}

/// Errors about one connection that never made it, not about the listener.
fn is_connection_error(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset
    )
}

impl Registry {
    fn now_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Registers a new connection, closing the quietest one first when the cap is reached.
    fn admit(self: &Arc<Self>, stream: TcpStream, local: Option<SocketAddr>, peer: SocketAddr) -> TrackedStream {
        self.counts.accepted.fetch_add(1, Ordering::Relaxed);
        let activity =
            Arc::new(Activity { last_active_ms: AtomicU64::new(self.now_ms()), close: CancellationToken::new() });
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let evicted = {
            let mut open = self.open.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            let evicted = if open.len() >= self.limits.max_connections { quietest(&open) } else { None };
            if let Some(quiet) = evicted.and_then(|quiet_id| open.remove(&quiet_id)) {
                quiet.close.cancel();
            }
            open.insert(id, Arc::clone(&activity));
            evicted.is_some()
        };
        if evicted {
            self.counts.evicted.fetch_add(1, Ordering::Relaxed);
            if let Some(suppressed) = self.cap_log.check() {
                tracing::warn!(
                    listener = self.name,
                    max_connections = self.limits.max_connections,
                    suppressed,
                    "connection cap reached: closed the connection that had been quiet longest"
                );
            }
        }
        let closed = Box::pin(activity.close.clone().cancelled_owned());
        TrackedStream { stream, local, peer, id, activity, closed, registry: Arc::clone(self) }
    }

    fn forget(&self, id: u64) {
        self.open.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).remove(&id);
    }

    /// Closes every connection quiet for `idle_timeout` or longer.
    fn close_idle(&self) {
        let idle_ms = u64::try_from(self.limits.idle_timeout.as_millis()).unwrap_or(u64::MAX);
        let now = self.now_ms();
        let mut closed = 0u64;
        self.open.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).retain(|_, activity| {
            let quiet_for = now.saturating_sub(activity.last_active_ms.load(Ordering::Relaxed));
            let keep = quiet_for < idle_ms;
            if !keep {
                activity.close.cancel();
                closed += 1;
            }
            keep
        });
        if closed > 0 {
            self.counts.idle_closed.fetch_add(closed, Ordering::Relaxed);
            tracing::debug!(listener = self.name, closed, "closed idle connections");
        }
    }
}

/// The connection with the oldest sign of life.
fn quietest(open: &HashMap<u64, Arc<Activity>>) -> Option<u64> {
    open.iter().min_by_key(|(_, activity)| activity.last_active_ms.load(Ordering::Relaxed)).map(|(id, _)| *id)
}

/// Runs [`Registry::close_idle`] four times per idle timeout until the registry is gone.
async fn sweep_idle(registry: Weak<Registry>) {
    let period = match registry.upgrade() {
        Some(registry) => (registry.limits.idle_timeout / 4).max(Duration::from_millis(100)),
        None => return,
    };
    let mut ticks = tokio::time::interval(period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        match registry.upgrade() {
            Some(registry) => registry.close_idle(),
            None => return,
        }
    }
}

/// An accepted connection: records when bytes move, and fails its reads and writes once it
/// is closed for the cap or for being idle (which ends the server's connection task).
pub struct TrackedStream {
    stream: TcpStream,
    local: Option<SocketAddr>,
    peer: SocketAddr,
    id: u64,
    activity: Arc<Activity>,
    closed: Pin<Box<WaitForCancellationFutureOwned>>,
    registry: Arc<Registry>,
}

impl std::fmt::Debug for TrackedStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrackedStream").field("peer", &self.peer).field("id", &self.id).finish_non_exhaustive()
    }
}

impl TrackedStream {
    pub fn peer_addr(&self) -> SocketAddr {
        self.peer
    }

    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.local
    }

    fn touch(&self) {
        self.activity.last_active_ms.store(self.registry.now_ms(), Ordering::Relaxed);
    }

    /// `Err` once the connection has been closed by the cap or the idle timeout.
    fn check_open(&mut self, cx: &mut Context<'_>) -> io::Result<()> {
        match self.closed.as_mut().poll(cx) {
            Poll::Ready(()) => Err(io::Error::new(io::ErrorKind::ConnectionAborted, "closed by the connection limits")),
            Poll::Pending => Ok(()),
        }
    }
}

impl Drop for TrackedStream {
    fn drop(&mut self) {
        self.registry.forget(self.id);
    }
}

impl AsyncRead for TrackedStream {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        self.check_open(cx)?;
        let before = buf.filled().len();
        let result = Pin::new(&mut self.stream).poll_read(cx, buf);
        if matches!(result, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.touch();
        }
        result
    }
}

impl AsyncWrite for TrackedStream {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        self.check_open(cx)?;
        let result = Pin::new(&mut self.stream).poll_write(cx, data);
        if matches!(result, Poll::Ready(Ok(written)) if written > 0) {
            self.touch();
        }
        result
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.check_open(cx)?;
        let result = Pin::new(&mut self.stream).poll_write_vectored(cx, data);
        if matches!(result, Poll::Ready(Ok(written)) if written > 0) {
            self.touch();
        }
        result
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

impl tonic::transport::server::Connected for TrackedStream {
    type ConnectInfo = tonic::transport::server::TcpConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        tonic::transport::server::TcpConnectInfo { local_addr: self.local, remote_addr: Some(self.peer) }
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    async fn listener(max_connections: usize, idle_timeout: Duration) -> (CappedListener, SocketAddr) {
        let tcp = TcpListener::bind("127.0.0.1:0").await.expect("bind loopback");
        let address = tcp.local_addr().expect("bound address");
        (CappedListener::new("test", tcp, ConnectionLimits { max_connections, idle_timeout }), address)
    }

    /// Reads until the server closes the connection; `true` when it did within a second.
    async fn closed_by_server(client: &mut TcpStream) -> bool {
        let mut buf = [0u8; 16];
        matches!(tokio::time::timeout(Duration::from_secs(1), client.read(&mut buf)).await, Ok(Ok(0) | Err(_)))
    }

    #[tokio::test]
    async fn at_the_cap_a_new_connection_closes_the_quietest() {
        let (mut listener, address) = listener(2, Duration::from_secs(60)).await;
        let mut quiet = TcpStream::connect(address).await.expect("connect");
        let (mut quiet_server, _) = listener.accept().await;
        let mut busy = TcpStream::connect(address).await.expect("connect");
        let (mut busy_server, _) = listener.accept().await;
        tokio::time::sleep(Duration::from_millis(20)).await;
        busy.write_all(b"x").await.expect("write");
        let mut byte = [0u8; 1];
        busy_server.read_exact(&mut byte).await.expect("the busy connection's byte");

        let _newest = TcpStream::connect(address).await.expect("connect");
        let (_newest_server, _) = listener.accept().await;
        let closed = quiet_server.read(&mut byte).await;
        assert!(closed.is_err(), "the quiet connection is closed: {closed:?}");
        drop(quiet_server);
        assert!(closed_by_server(&mut quiet).await);
        busy.write_all(b"y").await.expect("the busy connection stays open");
        busy_server.read_exact(&mut byte).await.expect("still served");
        assert_eq!(listener.counts().evicted.load(Ordering::Relaxed), 1);
    }

    #[tokio::test]
    async fn below_the_cap_nothing_is_closed() {
        let (mut listener, address) = listener(3, Duration::from_secs(60)).await;
        let mut clients = Vec::new();
        let mut servers = Vec::new();
        for _ in 0..3 {
            clients.push(TcpStream::connect(address).await.expect("connect"));
            servers.push(listener.accept().await.0);
        }
        for (client, server) in clients.iter_mut().zip(&mut servers) {
            client.write_all(b"z").await.expect("write");
            let mut byte = [0u8; 1];
            server.read_exact(&mut byte).await.expect("every connection is still open");
        }
        assert_eq!(listener.counts().evicted.load(Ordering::Relaxed), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_connection_is_closed_after_the_idle_timeout() {
        let (mut listener, address) = listener(8, Duration::from_secs(4)).await;
        let _client = TcpStream::connect(address).await.expect("connect");
        let (mut server, _) = listener.accept().await;
        let mut byte = [0u8; 1];
        let early = tokio::time::timeout(Duration::from_secs(3), server.read(&mut byte)).await;
        assert!(early.is_err(), "still open after 3 s of 4: {early:?}");
        let late = tokio::time::timeout(Duration::from_secs(3), server.read(&mut byte)).await;
        assert!(matches!(late, Ok(Err(_))), "closed once idle for 4 s: {late:?}");
        assert_eq!(listener.counts().idle_closed.load(Ordering::Relaxed), 1);
    }
}
