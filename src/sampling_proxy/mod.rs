//! X-Ray sampling proxy (TCP, default `127.0.0.1:2000`): X-Ray SDKs poll their centralized
//! sampling rules and targets here, unsigned, and waggle forwards those calls, and only those,
//! to the X-Ray API, SigV4-signed for service `xray`.
//!
//! # What is forwarded
//!
//! Only `POST /GetSamplingRules`, `POST /SamplingTargets` and `POST /SamplingStatisticSummaries`
//! (the three sampling operations of the X-Ray REST API). Anything else, any other method on
//! those paths included, is answered 404 and is never signed nor sent: the daemon forwarded any
//! path and method with the daemon's credentials, which made it an open signing proxy.
//!
//! The upstream request is built from scratch and carries a minimal header set: `host`,
//! `content-type`, `content-length`, then what signing adds (`x-amz-date`, `authorization`,
//! `x-amz-security-token` with temporary credentials), plus waggle's own `user-agent`, which is
//! not signed. Every header the client sent (or a mesh sidecar added) is left behind, so an
//! `x-request-id` or `x-envoy-*` header can neither break the signature (the daemon's issue
//! #199) nor reach AWS; no `Accept-Encoding` is sent, so the answer is never compressed behind
//! the client's back. The query string is dropped (these operations take none) and the body is
//! forwarded byte for byte.
//!
//! The upstream status and body are returned unchanged, with its `content-type`,
//! `x-amzn-requestid` and `x-amzn-errortype` (SDKs read the error code from it).
//!
//! # Answers of the proxy itself
//!
//! | case | status | `__type` in the JSON body |
//! |---|---|---|
//! | forwarded | upstream's | upstream's |
//! | path or method not forwarded | 404 | `UnknownOperationException` |
//! | body over the limit (64 KiB by default) | 413 | `RequestEntityTooLargeException` |
//! | compressed request body | 415 | `UnsupportedMediaTypeException` |
//! | the client stalled while sending its body | 408 | `RequestTimeoutException` |
//! | the memory budget (`limits.memory_limit`) has no room for the body | 429, `Retry-After` | `ThrottledException` |
//! | the connection failed while the body was read | 400 | `BadRequestException` |
//! | no credentials (never forwarded unsigned) | 503 | `CredentialsUnavailableException` |
//! | invalid endpoint, signing failed | 500 | `InternalFailure` |
//! | upstream unreachable, failed or answered too much | 502 | `BadGatewayException` |
//! | upstream did not answer in time | 504 | `GatewayTimeoutException` |
//!
//! Proxy errors are shaped like AWS `rest-json` errors (`{"__type": …, "message": …}` and an
//! `x-amzn-errortype` header), so the SDK's log line carries waggle's explanation.
//!
//! A request body takes its room from the memory budget every receiver shares ([`serve_within`]
//! / [`app_within`]) before it is read: its `Content-Length`, or frame by frame without one,
//! held until the upstream has answered. When the budget has no room the body is read to its
//! end unkept and the call is answered 429 with `Retry-After` (`pipeline.retry_after`), as
//! OTLP/HTTP answers, and counted with reason `memory_limit`.
//!
//! # Logging and metrics
//!
//! Every request is logged at DEBUG as `Received request on HTTP Proxy server : <path>`, like
//! the daemon. Upstream failures, missing credentials and refused paths are logged at WARN, at
//! most once per [`WARN_INTERVAL`] each, with a count of the lines left out. Credentials, the
//! `Authorization` header and bodies are never logged. Refused requests are counted in
//! `waggle_receiver_rejected_requests{receiver="xray_tcp",signal="traces",reason=...}`.
//!
//! # Credentials
//!
//! Credentials come from the provider passed in (the default chain in waggle) through the
//! shared signer ([`crate::aws::sign`]), which keeps them until five minutes before they expire
//! (credentials without an expiry: 15 minutes), so an SDK's polls do not each cost an IMDS or
//! STS call. When a refresh fails, credentials that have not expired yet are still used.
//!
//! The parts: [`route`] (which requests are forwarded), [`endpoint`] (where to), [`forward`]
//! (the signed upstream call), [`error`] (the proxy's own answers); this file runs the server.

mod endpoint;
mod error;
mod forward;
mod route;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use aws_credential_types::provider::SharedCredentialsProvider;
use axum::extract::{ConnectInfo, Request, State};
use axum::response::Response;
use http::header::CONTENT_TYPE;
use http::{HeaderName, HeaderValue, Method, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::client::proxy::matcher::Matcher;
use hyper_util::rt::TokioExecutor;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use self::endpoint::UpstreamTarget;
pub use self::endpoint::{default_endpoint, parse_endpoint, resolve_endpoint, resolve_endpoint_with};
pub use self::error::SamplingProxyError;
pub use self::route::SamplingOperation;
use crate::aws::sign::Signer;
use crate::destination::https_client::{self, HttpsClient};
use crate::limits::{CappedListener, MemoryBudget, ServerLimits, http_server};
use crate::model::Receiver;
use crate::model::Signal;
use crate::telemetry::metrics::Metrics;
use crate::telemetry::ratelimit::LogLimiter;

/// The `receiver` metrics label and the listener's name.
pub const RECEIVER: Receiver = Receiver::XrayTcp;

/// The SigV4 signing name of the X-Ray API.
pub const SIGNING_NAME: &str = "xray";

/// Largest request body forwarded by default; the largest real call (25 statistics documents
/// in `SamplingTargets`) is about 5 KB.
pub const DEFAULT_MAX_BODY_BYTES: usize = 64 * 1024;

/// Largest upstream answer relayed; `GetSamplingRules` pages are a few KB.
pub const MAX_RESPONSE_BYTES: usize = 4 * 1024 * 1024;

/// At most one WARN line per kind of failure per interval.
pub const WARN_INTERVAL: Duration = Duration::from_secs(10);

/// Upstream response headers relayed to the client besides the status and body.
const RELAYED_RESPONSE_HEADERS: [HeaderName; 3] =
    [CONTENT_TYPE, HeaderName::from_static("x-amzn-requestid"), HeaderName::from_static("x-amzn-errortype")];

/// The proxy's state: upstream, signing inputs, HTTP client and log limiters.
pub struct SamplingProxy {
    /// The endpoint as given, for logs and error messages.
    endpoint: String,
    target: Result<UpstreamTarget, String>,
    signer: Signer,
    client: HttpsClient,
    timeout: Duration,
    max_body_size: usize,
    user_agent: HeaderValue,
    upstream_warning: LogLimiter,
    credentials_warning: LogLimiter,
    refused_warning: LogLimiter,
    /// Why there is no AWS access at all (no region, no credentials): said once at start-up
    /// instead of an endpoint in a region nobody chose.
    no_access: Option<String>,
}

impl std::fmt::Debug for SamplingProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SamplingProxy")
            .field("endpoint", &self.endpoint)
            .field("region", &self.signer.region())
            .field("timeout", &self.timeout)
            .field("max_body_size", &self.max_body_size)
            .finish_non_exhaustive()
    }
}

impl SamplingProxy {
    /// A proxy to `endpoint` (see [`resolve_endpoint`]) signing for `region`. `timeout` bounds
    /// each upstream call. An endpoint [`parse_endpoint`] refuses makes every call answer 500;
    /// check it at start-up.
    pub fn new(endpoint: Uri, region: String, credentials: SharedCredentialsProvider, timeout: Duration) -> Self {
        let env: BTreeMap<String, String> = std::env::vars().collect();
        let client = upstream_client(https_client::proxy_matcher(None, &env));
        SamplingProxy {
            endpoint: endpoint.to_string(),
            target: UpstreamTarget::new(&endpoint),
            signer: Signer::new(SIGNING_NAME, region, credentials),
            client,
            timeout,
            max_body_size: DEFAULT_MAX_BODY_BYTES,
            user_agent: HeaderValue::from_static(concat!("waggle/", env!("CARGO_PKG_VERSION"), " xray-sampling-proxy")),
            upstream_warning: LogLimiter::new(WARN_INTERVAL),
            credentials_warning: LogLimiter::new(WARN_INTERVAL),
            refused_warning: LogLimiter::new(WARN_INTERVAL),
            no_access: None,
        }
    }

    /// Marks a proxy that has no AWS access, and why: its start-up line says so (every call
    /// is answered 503 by the credentials it was given).
    pub fn without_access(mut self, reason: String) -> Self {
        self.no_access = Some(reason);
        self
    }

    /// Sends upstream through this HTTP proxy (the X-Ray destination's `proxy_address`, `-p`)
    /// instead of `HTTPS_PROXY` / `HTTP_PROXY`; `NO_PROXY` still applies.
    pub fn with_proxy_address(mut self, address: Option<&str>) -> Self {
        if address.is_some() {
            let env: BTreeMap<String, String> = std::env::vars().collect();
            self.client = upstream_client(https_client::proxy_matcher(address, &env));
        }
        self
    }

    /// Changes the largest request body forwarded (default [`DEFAULT_MAX_BODY_BYTES`]).
    pub fn with_max_body_size(mut self, bytes: usize) -> Self {
        self.max_body_size = bytes;
        self
    }

    /// The X-Ray endpoint requests go to.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }
    /// Logs a failure (rate-limited) and answers it.
    fn fail(
        &self,
        metrics: &Metrics,
        error: SamplingProxyError,
        method: &Method,
        path: &str,
        peer: Option<SocketAddr>,
    ) -> Response {
        if let Some(reason) = error.rejection_reason() {
            metrics.rejected_requests.get_or_create(&Metrics::refusal(RECEIVER, Signal::Traces, reason)).inc();
        }
        let peer = peer.map_or_else(|| "unknown".to_string(), |address| address.to_string());
        let limiter = match &error {
            SamplingProxyError::NotFound
            | SamplingProxyError::TooLarge { .. }
            | SamplingProxyError::UnsupportedEncoding
            | SamplingProxyError::ReadBody(_)
            | SamplingProxyError::ReadTimeout(_)
            | SamplingProxyError::OverBudget { .. } => &self.refused_warning,
            SamplingProxyError::NoCredentials(_) => &self.credentials_warning,
            _ => &self.upstream_warning,
        };
        if let Some(suppressed) = limiter.check() {
            tracing::warn!(
                receiver = %RECEIVER,
                %method,
                path,
                %peer,
                status = error.http_status().as_u16(),
                suppressed,
                "X-Ray sampling proxy: {error}"
            );
        }
        error.into_response()
    }
}

/// Serves the sampling proxy on `listener` until `shutdown` is cancelled, then stops accepting
/// connections and lets in-flight requests finish (each is bounded by the proxy's timeout).
pub async fn serve(
    listener: TcpListener,
    proxy: Arc<SamplingProxy>,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let limits = ServerLimits::default();
    let listener = CappedListener::new("xray_tcp", listener, limits.connections);
    serve_within(listener, proxy, metrics, &limits, shutdown).await
}

/// [`serve`] under `limits`: the memory budget request bodies take their room from, the
/// header timeout and the listener's connection cap.
///
/// The proxy logs how it answers (with or without AWS access) and that it listens when this is
/// called; the returned future serves. So whatever is logged after the call (waggle's `ready`)
/// comes after those lines.
pub fn serve_within(
    listener: CappedListener,
    proxy: Arc<SamplingProxy>,
    metrics: Arc<Metrics>,
    limits: &ServerLimits,
    shutdown: CancellationToken,
) -> impl Future<Output = std::io::Result<()>> + use<> {
    let address = listener.local_addr();
    match &proxy.no_access {
        Some(reason) => tracing::info!(
            receiver = %RECEIVER,
            "X-Ray sampling proxy without AWS access ({reason}): SDKs' sampling calls are answered 503 and they keep their local sampling rule"
        ),
        None => tracing::info!(
            receiver = %RECEIVER,
            endpoint = proxy.endpoint(),
            "HTTP Proxy server using X-Ray Endpoint : {}",
            proxy.endpoint()
        ),
    }
    if let Ok(address) = &address {
        tracing::info!(receiver = %RECEIVER, %address, "Starting proxy http server on {address}");
    }
    let (app, header_timeout) = (app_within(proxy, metrics, limits), limits.header_timeout);
    async move {
        address?;
        http_server::serve(listener, app, header_timeout, shutdown).await;
        Ok(())
    }
}

/// The upstream client: the system CA store, proxies from `matcher`, and the daemon's proxy
/// transport (a couple of idle connections kept 30 s).
fn upstream_client(matcher: Matcher) -> HttpsClient {
    let connector = https_client::connector(matcher, false)
        // The aws-lc-rs provider supports every protocol version rustls offers.
        .expect("the aws-lc-rs crypto provider supports TLS 1.2 and 1.3");
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(2)
        .build(connector)
}

/// The proxy's routes, for in-process tests: request bodies are counted in no memory budget.
pub fn app(proxy: Arc<SamplingProxy>, metrics: Arc<Metrics>) -> axum::Router {
    app_within(proxy, metrics, &ServerLimits::default())
}

/// The proxy's routes, request bodies taking their room from `limits.budget` (a refusal is
/// told to retry after `limits.retry_after`).
pub fn app_within(proxy: Arc<SamplingProxy>, metrics: Arc<Metrics>, limits: &ServerLimits) -> axum::Router {
    let room = BodyRoom { budget: limits.budget.clone(), retry_after: limits.retry_after };
    axum::Router::new().fallback(handle).with_state(ProxyState { proxy, metrics, room })
}

#[derive(Clone)]
struct ProxyState {
    proxy: Arc<SamplingProxy>,
    metrics: Arc<Metrics>,
    room: BodyRoom,
}

/// Where request bodies take their room, and what a body refused for memory is told to wait.
#[derive(Clone, Debug)]
struct BodyRoom {
    budget: MemoryBudget,
    retry_after: Duration,
}

async fn handle(State(state): State<ProxyState>, request: Request) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let peer = request.extensions().get::<ConnectInfo<SocketAddr>>().map(|info| info.0);
    tracing::debug!(receiver = %RECEIVER, %method, "Received request on HTTP Proxy server : {path}");
    let result = match SamplingOperation::of_request(&method, &path) {
        Some(operation) => state.proxy.forward(operation, request, &state.room).await,
        None => Err(SamplingProxyError::NotFound),
    };
    match result {
        Ok(response) => response,
        Err(error) => state.proxy.fail(&state.metrics, error, &method, &path, peer),
    }
}
