//! Serves an axum app over a [`CappedListener`] with hyper's protections switched on: a time
//! limit for request headers, HTTP/1 buffer and header caps, and HTTP/2 stream, header-list
//! and window limits. Used by OTLP/HTTP, the admin endpoint and the sampling proxy.

use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use super::connections::CappedListener;

/// Most headers one HTTP/1 request may carry.
const MAX_HEADERS: usize = 100;
/// Largest HTTP/1 read buffer (request line and headers must fit).
const MAX_HTTP1_BUFFER: usize = 64 * 1024;
/// Largest HTTP/2 header list.
const MAX_HTTP2_HEADER_LIST: u32 = 16 * 1024;
/// HTTP/2 streams one connection may have open at once.
pub const MAX_HTTP2_STREAMS: u32 = 100;
/// HTTP/2 flow-control windows: what one stream, and one connection, may send unread.
pub const HTTP2_STREAM_WINDOW: u32 = 256 * 1024;
pub const HTTP2_CONNECTION_WINDOW: u32 = 1024 * 1024;
/// HTTP/2 resets a client may cause before the connection is closed.
pub const MAX_HTTP2_PENDING_RESETS: usize = 20;
/// How long in-flight requests get to finish once the server is told to stop.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Serves `app` on `listener` until `shutdown` is cancelled; then stops accepting, closes idle
/// connections and lets in-flight requests finish (for at most 10 s). Handlers can read the
/// peer's address as `ConnectInfo<SocketAddr>`.
pub async fn serve(
    mut listener: CappedListener,
    app: axum::Router,
    header_timeout: Duration,
    shutdown: CancellationToken,
) {
    let builder = builder(header_timeout);
    let graceful = GracefulShutdown::new();
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => accepted,
            () = shutdown.cancelled() => break,
        };
        let service = app.clone().map_request(move |request: http::Request<Incoming>| {
            let mut request = request.map(axum::body::Body::new);
            request.extensions_mut().insert(ConnectInfo::<SocketAddr>(peer));
            request
        });
        let connection = builder.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service)).into_owned();
        let watched = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(error) = watched.await {
                tracing::trace!(%peer, %error, "connection ended with an error");
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown()).await.is_err() {
        tracing::debug!("connections still open after the shutdown grace time; leaving them");
    }
}

fn builder(header_timeout: Duration) -> Builder<TokioExecutor> {
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .max_buf_size(MAX_HTTP1_BUFFER)
        .max_headers(MAX_HEADERS);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(MAX_HTTP2_STREAMS)
        .max_header_list_size(MAX_HTTP2_HEADER_LIST)
        .initial_stream_window_size(HTTP2_STREAM_WINDOW)
        .initial_connection_window_size(HTTP2_CONNECTION_WINDOW)
        .max_pending_accept_reset_streams(MAX_HTTP2_PENDING_RESETS)
        .keep_alive_interval(Some(Duration::from_secs(30)))
        .keep_alive_timeout(Duration::from_secs(10));
    builder
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    use super::*;
    use crate::limits::ConnectionLimits;

    async fn server(header_timeout: Duration) -> (SocketAddr, CancellationToken) {
        let tcp = TcpListener::bind("127.0.0.1:0").await.expect("bind loopback");
        let address = tcp.local_addr().expect("address");
        let limits = ConnectionLimits { max_connections: 16, idle_timeout: Duration::from_secs(600) };
        let listener = CappedListener::new("test", tcp, limits);
        let app = axum::Router::new().route(
            "/peer",
            axum::routing::get(|ConnectInfo(peer): ConnectInfo<SocketAddr>| async move { peer.ip().to_string() }),
        );
        let shutdown = CancellationToken::new();
        tokio::spawn(serve(listener, app, header_timeout, shutdown.clone()));
        (address, shutdown)
    }

    async fn read_all(client: &mut TcpStream) -> String {
        let mut answer = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(30), client.read_to_end(&mut answer)).await;
        assert!(read.is_ok(), "the server answered and closed");
        String::from_utf8_lossy(&answer).into_owned()
    }

    #[tokio::test]
    async fn a_complete_request_is_answered_with_the_peer_address() {
        let (address, shutdown) = server(Duration::from_secs(10)).await;
        let mut client = TcpStream::connect(address).await.expect("connect");
        client.write_all(b"GET /peer HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").await.expect("write");
        let answer = read_all(&mut client).await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(answer.ends_with("127.0.0.1"), "{answer}");
        shutdown.cancel();
    }

    #[tokio::test(start_paused = true)]
    async fn headers_not_finished_within_the_header_timeout_close_the_connection() {
        let (address, shutdown) = server(Duration::from_secs(5)).await;
        let mut client = TcpStream::connect(address).await.expect("connect");
        client.write_all(b"GET /peer HTTP/1.1\r\nHost: t\r\n").await.expect("write");
        let started = tokio::time::Instant::now();
        let answer = read_all(&mut client).await;
        assert!(!answer.starts_with("HTTP/1.1 200"), "{answer}");
        let waited = started.elapsed();
        assert!(waited >= Duration::from_secs(5) && waited < Duration::from_secs(7), "closed after {waited:?}");
        shutdown.cancel();
    }
}
