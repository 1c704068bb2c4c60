//! OTLP/HTTP receiver (port 4318): `POST /v1/traces`, `/v1/logs` and `/v1/metrics` with
//! protobuf or JSON bodies, gzip or zstd compressed, answered in the request's own encoding.
//!
//! Each request goes: Content-Type → Content-Encoding → body read (capped) → decompression
//! (capped, large outputs off the runtime) → decode and id checks (large bodies off the
//! runtime) → router. The body takes its room from the memory budget before it is read (its
//! declared length) and while it is inflated; a body that does not fit is read and discarded
//! (so the client sees the answer) and refused with 429. Every failure is a typed [`ReceiveError`], answered by
//! [`crate::receiver::otlp::error`], counted and logged (rate-limited) through
//! [`OtlpIntake`]. CORS, for browser SDKs, is on only when origins are configured.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::header::{CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE, RETRY_AFTER};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::Response;
use axum::routing::{MethodRouter, post};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower_http::cors::{AllowHeaders, AllowOrigin, CorsLayer};

use crate::config::{CorsSettings, OtlpHttpSettings};
use crate::limits::{CappedListener, MemoryBudget, ServerLimits, http_server};
use crate::model::Receiver;
use crate::model::Signal;
use crate::pipeline::router::Router;
use crate::receiver::otlp::body::{self, ContentEncoding};
use crate::receiver::otlp::codec::{ExportRequest, Format};
use crate::receiver::otlp::error::ReceiveError;
use crate::receiver::otlp::intake::OtlpIntake;
use crate::resource::ResourceAttributes;
use crate::telemetry::metrics::Metrics;

/// The `receiver` metrics label.
pub const RECEIVER: Receiver = Receiver::OtlpHttp;

/// Serves OTLP/HTTP on `listener` until `shutdown` is cancelled, then stops accepting
/// connections and lets in-flight requests finish.
pub async fn serve(
    listener: TcpListener,
    settings: OtlpHttpSettings,
    router: Arc<Router>,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let limits = ServerLimits::default();
    let listener = CappedListener::new("otlp_http", listener, limits.connections);
    let resource = Arc::new(ResourceAttributes::none());
    serve_within(listener, settings, resource, router, metrics, limits, shutdown, None).await
}

/// [`serve`] under `limits` (the memory budget, timeouts and the listener's connection cap),
/// adding `resource`'s attributes to every request, with more routes on the same listener
/// (the Rollbar SDK relay).
///
/// The receiver is set up and logs that it listens when this is called; the returned future
/// serves. So whatever is logged after the call (waggle's `ready`) comes after that line.
#[allow(clippy::too_many_arguments)]
pub fn serve_within(
    listener: CappedListener,
    settings: OtlpHttpSettings,
    resource: Arc<ResourceAttributes>,
    router: Arc<Router>,
    metrics: Arc<Metrics>,
    limits: ServerLimits,
    shutdown: CancellationToken,
    more_routes: Option<axum::Router>,
) -> impl Future<Output = std::io::Result<()>> + use<> {
    let address = listener.local_addr();
    let app = app_within(&settings, resource, router, metrics, &limits);
    let app = match more_routes {
        Some(routes) => app.merge(routes),
        None => app,
    };
    if let Ok(address) = &address {
        tracing::info!(%address, max_body_size = %settings.max_body_size, "OTLP/HTTP receiver listening");
    }
    async move {
        address?;
        http_server::serve(listener, app, limits.header_timeout, shutdown).await;
        Ok(())
    }
}

/// The receiver's routes, for in-process tests: no memory budget, no resource attributes.
pub fn app(settings: &OtlpHttpSettings, router: Arc<Router>, metrics: Arc<Metrics>) -> axum::Router {
    app_within(settings, Arc::new(ResourceAttributes::none()), router, metrics, &ServerLimits::default())
}

/// The receiver's routes, adding `resource`'s attributes to every request and taking bodies'
/// room from `limits.budget`.
pub fn app_within(
    settings: &OtlpHttpSettings,
    resource: Arc<ResourceAttributes>,
    router: Arc<Router>,
    metrics: Arc<Metrics>,
    limits: &ServerLimits,
) -> axum::Router {
    let receiver = HttpReceiver {
        intake: Arc::new(OtlpIntake::new(RECEIVER, resource, router, metrics)),
        limit: usize::try_from(settings.max_body_size.as_u64()).unwrap_or(usize::MAX),
        budget: limits.budget.clone(),
        body_timeout: limits.body_timeout,
        retry_after: limits.retry_after,
    };
    let routes = axum::Router::new()
        .route("/v1/traces", export_route::<ExportTraceServiceRequest>())
        .route("/v1/logs", export_route::<ExportLogsServiceRequest>())
        .route("/v1/metrics", export_route::<ExportMetricsServiceRequest>())
        .fallback(not_found)
        .with_state(receiver);
    match cors_layer(&settings.cors) {
        Some(cors) => routes.layer(cors),
        None => routes,
    }
}

/// What every handler shares.
#[derive(Clone)]
struct HttpReceiver {
    intake: Arc<OtlpIntake>,
    /// Largest body, compressed or not.
    limit: usize,
    budget: MemoryBudget,
    body_timeout: Duration,
    /// What a request refused for memory is told to wait.
    retry_after: Duration,
}

fn export_route<R: ExportRequest>() -> MethodRouter<HttpReceiver> {
    post(export::<R>).fallback(method_not_allowed::<R>)
}

/// `POST /v1/{signal}`.
async fn export<R: ExportRequest>(State(receiver): State<HttpReceiver>, request: Request) -> Response {
    let format = request_format(request.headers());
    let peer = peer_of(&request);
    match receiver.receive::<R>(format, request).await {
        Ok(()) => success(format.unwrap_or(Format::Protobuf)),
        Err(error) => receiver.answer(Some(R::SIGNAL), error, format, peer),
    }
}

async fn method_not_allowed<R: ExportRequest>(State(receiver): State<HttpReceiver>, request: Request) -> Response {
    let format = request_format(request.headers());
    receiver.answer(Some(R::SIGNAL), ReceiveError::MethodNotAllowed, format, peer_of(&request))
}

async fn not_found(State(receiver): State<HttpReceiver>, request: Request) -> Response {
    let format = request_format(request.headers());
    receiver.answer(None, ReceiveError::NotFound, format, peer_of(&request))
}

impl HttpReceiver {
    async fn receive<R: ExportRequest>(&self, format: Option<Format>, request: Request) -> Result<(), ReceiveError> {
        let format = format.ok_or(ReceiveError::UnsupportedMediaType)?;
        let headers = request.headers();
        let encoding = ContentEncoding::parse(headers.get(CONTENT_ENCODING).map(HeaderValue::as_bytes))
            .ok_or(ReceiveError::UnsupportedEncoding)?;
        let declared_len = declared_length(headers);
        let body = request.into_body();
        let mut permit = match body::reserve_declared(&self.budget, declared_len, self.limit) {
            Ok(permit) => permit,
            Err(source) => {
                let _ = tokio::time::timeout(self.body_timeout, body::discard(body, self.limit)).await;
                return Err(ReceiveError::OverBudget { source, retry_after: self.retry_after });
            }
        };
        let over_budget = |error| ReceiveError::from_body(error, self.retry_after);
        let read = body::read_within(body, self.limit, declared_len, &mut permit);
        let raw = tokio::time::timeout(self.body_timeout, read)
            .await
            .map_err(|_| ReceiveError::BodyTimeout(self.body_timeout))?
            .map_err(over_budget)?;
        let (plain, permit) = body::decompress_within(encoding, raw, self.limit, permit).await.map_err(over_budget)?;
        let decoded = self.intake.decode::<R>(plain, format).await?;
        self.intake.route(decoded, permit)
    }

    fn answer(
        &self,
        signal: Option<Signal>,
        error: ReceiveError,
        format: Option<Format>,
        peer: Option<SocketAddr>,
    ) -> Response {
        self.intake.record_failure(signal, &error, peer);
        error.into_http_response(format)
    }
}

/// The request's encoding, from its Content-Type; `None` when it is neither protobuf nor JSON.
fn request_format(headers: &HeaderMap) -> Option<Format> {
    headers.get(CONTENT_TYPE).and_then(|value| Format::from_content_type(value.as_bytes()))
}

/// The Content-Length the client declared, if it declared a readable one.
fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers.get(CONTENT_LENGTH)?.to_str().ok()?.parse().ok()
}

/// The client's address, when the server was started with connect info (not in oneshot tests).
fn peer_of(request: &Request) -> Option<SocketAddr> {
    request.extensions().get::<ConnectInfo<SocketAddr>>().map(|info| info.0)
}

/// 200 with an empty `Export…ServiceResponse` in the request's encoding: zero bytes of
/// protobuf, or `{}`.
fn success(format: Format) -> Response {
    let body = match format {
        Format::Protobuf => Body::empty(),
        Format::Json => Body::from("{}"),
    };
    let mut response = Response::new(body);
    *response.status_mut() = StatusCode::OK;
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(format.content_type()));
    response
}

/// The CORS layer for browser SDKs; `None` (CORS off) when no origin is configured.
fn cors_layer(settings: &CorsSettings) -> Option<CorsLayer> {
    if settings.allowed_origins.is_empty() {
        return None;
    }
    let origins = OriginPatterns::new(&settings.allowed_origins);
    let allow_origin = if origins.any {
        AllowOrigin::any()
    } else {
        AllowOrigin::predicate(move |origin, _| origins.matches(origin.as_bytes()))
    };
    Some(
        CorsLayer::new()
            .allow_origin(allow_origin)
            .allow_methods([Method::POST])
            .allow_headers(allowed_headers(&settings.allowed_headers))
            .expose_headers([RETRY_AFTER])
            .max_age(settings.max_age),
    )
}

/// `Content-Type` and `Content-Encoding`, plus the configured headers (`*` allows any).
fn allowed_headers(configured: &[String]) -> AllowHeaders {
    if configured.iter().any(|name| name.trim() == "*") {
        return AllowHeaders::any();
    }
    let mut names = vec![CONTENT_TYPE, CONTENT_ENCODING];
    for name in configured {
        match HeaderName::try_from(name.trim()) {
            Ok(header) => names.push(header),
            Err(_) => tracing::warn!(header = %name, "ignoring an invalid header name in cors.allowed_headers"),
        }
    }
    AllowHeaders::list(names)
}

/// Allowed origins: exact (`http://localhost:3000`), with one wildcard part
/// (`https://*.example.com`), or a lone `*` for any. Compared case-insensitively.
#[derive(Debug, Clone)]
struct OriginPatterns {
    any: bool,
    patterns: Vec<OriginPattern>,
}

#[derive(Debug, Clone)]
enum OriginPattern {
    Exact(String),
    Wildcard { prefix: String, suffix: String },
}

impl OriginPatterns {
    fn new(configured: &[String]) -> OriginPatterns {
        let mut any = false;
        let mut patterns = Vec::with_capacity(configured.len());
        for origin in configured.iter().map(|origin| origin.trim().trim_end_matches('/')) {
            match origin.split_once('*') {
                None => patterns.push(OriginPattern::Exact(origin.to_ascii_lowercase())),
                Some(("", "")) => any = true,
                Some((_, suffix)) if suffix.contains('*') => {
                    tracing::warn!(origin, "ignoring a CORS origin with more than one '*'");
                }
                Some((prefix, suffix)) => patterns.push(OriginPattern::Wildcard {
                    prefix: prefix.to_ascii_lowercase(),
                    suffix: suffix.to_ascii_lowercase(),
                }),
            }
        }
        OriginPatterns { any, patterns }
    }

    fn matches(&self, origin: &[u8]) -> bool {
        let Ok(origin) = std::str::from_utf8(origin) else { return false };
        self.any || self.patterns.iter().any(|pattern| pattern.matches(origin))
    }
}

impl OriginPattern {
    fn matches(&self, origin: &str) -> bool {
        match self {
            OriginPattern::Exact(exact) => origin.eq_ignore_ascii_case(exact),
            OriginPattern::Wildcard { prefix, suffix } => {
                let long_enough = origin.len() > prefix.len() + suffix.len();
                long_enough
                    && starts_with_ignore_case(origin, prefix)
                    && ends_with_ignore_case(origin, suffix)
                    && is_host_part(&origin[prefix.len()..origin.len() - suffix.len()])
            }
        }
    }
}

fn starts_with_ignore_case(text: &str, prefix: &str) -> bool {
    text.get(..prefix.len()).is_some_and(|head| head.eq_ignore_ascii_case(prefix))
}

fn ends_with_ignore_case(text: &str, suffix: &str) -> bool {
    text.len() >= suffix.len()
        && text.get(text.len() - suffix.len()..).is_some_and(|tail| tail.eq_ignore_ascii_case(suffix))
}

/// What a wildcard may stand for: host name characters only, so `https://*.example.com`
/// cannot match `https://evil.com/.example.com` or `https://evil.com:1.example.com`.
fn is_host_part(part: &str) -> bool {
    part.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn patterns(origins: &[&str]) -> OriginPatterns {
        OriginPatterns::new(&origins.iter().map(|origin| origin.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn exact_origins_match_only_themselves() {
        let allowed = patterns(&["http://localhost:3000"]);
        assert!(allowed.matches(b"http://localhost:3000"));
        assert!(allowed.matches(b"HTTP://LOCALHOST:3000"));
        assert!(!allowed.matches(b"http://localhost:3001"));
        assert!(!allowed.matches(b"http://localhost:3000.evil.com"));
    }

    #[test]
    fn a_wildcard_part_matches_host_names_only() {
        let allowed = patterns(&["https://*.example.com"]);
        assert!(allowed.matches(b"https://app.example.com"));
        assert!(allowed.matches(b"https://a.b.example.com"));
        assert!(!allowed.matches(b"https://.example.com"));
        assert!(!allowed.matches(b"https://example.com"));
        assert!(!allowed.matches(b"http://app.example.com"));
        assert!(!allowed.matches(b"https://evil.com/.example.com"));
        assert!(!allowed.matches(b"https://app.example.com.evil.com"));
    }

    #[test]
    fn a_configured_trailing_slash_is_ignored() {
        assert!(patterns(&["http://localhost:3000/"]).matches(b"http://localhost:3000"));
    }

    #[test]
    fn a_lone_star_allows_any_origin() {
        assert!(patterns(&["*"]).any);
        assert!(!patterns(&["https://*.example.com"]).any);
        assert!(patterns(&["https://*.*.com"]).patterns.is_empty());
    }
}
