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
//! | the connection failed while the body was read | 400 | `BadRequestException` |
//! | no credentials (never forwarded unsigned) | 503 | `CredentialsUnavailableException` |
//! | invalid endpoint, signing failed | 500 | `InternalFailure` |
//! | upstream unreachable, failed or answered too much | 502 | `BadGatewayException` |
//! | upstream did not answer in time | 504 | `GatewayTimeoutException` |
//!
//! Proxy errors are shaped like AWS `rest-json` errors (`{"__type": …, "message": …}` and an
//! `x-amzn-errortype` header), so the SDK's log line carries waggle's explanation.
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
//! Credentials come from the provider passed in (the default chain in waggle) and are kept
//! until five minutes before they expire (credentials without an expiry: 15 minutes), so an
//! SDK's polls do not each cost an IMDS or STS call. When a refresh fails, credentials that have
//! not expired yet are still used.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::response::Response;
use bytes::Bytes;
use http::header::{CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE, HOST, USER_AGENT};
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::model::Signal;
use crate::receiver::body::{self, BodyError};
use crate::telemetry::metrics::Metrics;
use crate::telemetry::ratelimit::LogLimiter;

/// The `receiver` metrics label and the listener's name.
pub const RECEIVER: &str = "xray_tcp";

/// The SigV4 signing name of the X-Ray API.
pub const SIGNING_NAME: &str = "xray";

/// Largest request body forwarded by default; the largest real call (25 statistics documents
/// in `SamplingTargets`) is about 5 KB.
pub const DEFAULT_MAX_BODY_BYTES: usize = 64 * 1024;

/// Largest upstream answer relayed; `GetSamplingRules` pages are a few KB.
pub const MAX_RESPONSE_BYTES: usize = 4 * 1024 * 1024;

/// At most one WARN line per kind of failure per interval.
pub const WARN_INTERVAL: Duration = Duration::from_secs(10);

/// Credentials are refreshed this long before they expire.
const CREDENTIALS_REFRESH_MARGIN: Duration = Duration::from_secs(5 * 60);

/// Credentials without an expiry are asked for again after this long.
const CREDENTIALS_MAX_AGE: Duration = Duration::from_secs(15 * 60);

/// Credentials this close to their expiry are not used even when a refresh failed.
const CREDENTIALS_EXPIRY_SLACK: Duration = Duration::from_secs(10);

/// Upstream response headers relayed to the client besides the status and body.
const RELAYED_RESPONSE_HEADERS: [HeaderName; 3] =
    [CONTENT_TYPE, HeaderName::from_static("x-amzn-requestid"), HeaderName::from_static("x-amzn-errortype")];

const ERROR_TYPE_HEADER: HeaderName = HeaderName::from_static("x-amzn-errortype");

/// The X-Ray API operations the proxy forwards.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SamplingOperation {
    GetSamplingRules,
    GetSamplingTargets,
    GetSamplingStatisticSummaries,
}

impl SamplingOperation {
    pub const ALL: [SamplingOperation; 3] = [
        SamplingOperation::GetSamplingRules,
        SamplingOperation::GetSamplingTargets,
        SamplingOperation::GetSamplingStatisticSummaries,
    ];

    /// The operation's REST path.
    pub fn path(self) -> &'static str {
        match self {
            SamplingOperation::GetSamplingRules => "/GetSamplingRules",
            SamplingOperation::GetSamplingTargets => "/SamplingTargets",
            SamplingOperation::GetSamplingStatisticSummaries => "/SamplingStatisticSummaries",
        }
    }

    /// The operation a request is for: only `POST` to one of the three exact paths.
    pub fn of_request(method: &Method, path: &str) -> Option<SamplingOperation> {
        if method != Method::POST {
            return None;
        }
        SamplingOperation::ALL.into_iter().find(|operation| operation.path() == path)
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Why the proxy answered on its own instead of relaying the upstream's answer.
#[derive(Debug, thiserror::Error)]
pub enum SamplingProxyError {
    #[error(
        "not found: waggle's X-Ray sampling proxy forwards only POST /GetSamplingRules, /SamplingTargets and \
         /SamplingStatisticSummaries (segments go to the UDP port)"
    )]
    NotFound,
    #[error("request body is larger than the limit of {limit} bytes")]
    TooLarge { limit: usize },
    #[error("unsupported Content-Encoding: the X-Ray API takes an uncompressed JSON body")]
    UnsupportedEncoding,
    #[error("could not read the request body: {0}")]
    ReadBody(String),
    #[error("the request body did not arrive within {0:?}")]
    ReadTimeout(Duration),
    #[error(
        "no AWS credentials to sign the X-Ray sampling request with (waggle never forwards it unsigned): {0}. \
         Give waggle credentials (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, a profile, or a task/instance role)"
    )]
    NoCredentials(String),
    #[error("invalid X-Ray endpoint {endpoint:?}: {reason}")]
    InvalidEndpoint { endpoint: String, reason: String },
    #[error("could not sign the X-Ray sampling request: {0}")]
    Signing(String),
    #[error("could not connect to the X-Ray endpoint {endpoint}: {detail}")]
    Connect { endpoint: String, detail: String },
    #[error("the X-Ray endpoint {endpoint} failed: {detail}")]
    Upstream { endpoint: String, detail: String },
    #[error("the X-Ray endpoint {endpoint} answered with more than {limit} bytes")]
    ResponseTooLarge { endpoint: String, limit: usize },
    #[error("the X-Ray endpoint {endpoint} did not answer within {timeout:?}")]
    Timeout { endpoint: String, timeout: Duration },
}

impl SamplingProxyError {
    pub fn http_status(&self) -> StatusCode {
        match self {
            SamplingProxyError::NotFound => StatusCode::NOT_FOUND,
            SamplingProxyError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            SamplingProxyError::UnsupportedEncoding => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            SamplingProxyError::ReadBody(_) => StatusCode::BAD_REQUEST,
            SamplingProxyError::ReadTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            SamplingProxyError::NoCredentials(_) => StatusCode::SERVICE_UNAVAILABLE,
            SamplingProxyError::InvalidEndpoint { .. } | SamplingProxyError::Signing(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
            SamplingProxyError::Connect { .. }
            | SamplingProxyError::Upstream { .. }
            | SamplingProxyError::ResponseTooLarge { .. } => StatusCode::BAD_GATEWAY,
            SamplingProxyError::Timeout { .. } => StatusCode::GATEWAY_TIMEOUT,
        }
    }

    /// The AWS-style error code in the body's `__type` and the `x-amzn-errortype` header.
    pub fn error_type(&self) -> &'static str {
        match self {
            SamplingProxyError::NotFound => "UnknownOperationException",
            SamplingProxyError::TooLarge { .. } => "RequestEntityTooLargeException",
            SamplingProxyError::UnsupportedEncoding => "UnsupportedMediaTypeException",
            SamplingProxyError::ReadBody(_) => "BadRequestException",
            SamplingProxyError::ReadTimeout(_) => "RequestTimeoutException",
            SamplingProxyError::NoCredentials(_) => "CredentialsUnavailableException",
            SamplingProxyError::InvalidEndpoint { .. } | SamplingProxyError::Signing(_) => "InternalFailure",
            SamplingProxyError::Connect { .. }
            | SamplingProxyError::Upstream { .. }
            | SamplingProxyError::ResponseTooLarge { .. } => "BadGatewayException",
            SamplingProxyError::Timeout { .. } => "GatewayTimeoutException",
        }
    }

    /// The `reason` label of a request refused before it was forwarded; `None` for failures
    /// on the way to or from the upstream.
    pub fn rejection_reason(&self) -> Option<&'static str> {
        match self {
            SamplingProxyError::NotFound => Some("not_found"),
            SamplingProxyError::TooLarge { .. } => Some("too_large"),
            SamplingProxyError::UnsupportedEncoding => Some("unsupported_encoding"),
            SamplingProxyError::ReadBody(_) | SamplingProxyError::ReadTimeout(_) => Some("read_failed"),
            _ => None,
        }
    }

    /// The answer to the client: a `rest-json` shaped error.
    pub fn into_response(self) -> Response {
        let body = serde_json::json!({ "__type": self.error_type(), "message": self.to_string() });
        let mut response = Response::new(Body::from(body.to_string()));
        *response.status_mut() = self.http_status();
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(ERROR_TYPE_HEADER, HeaderValue::from_static(self.error_type()));
        response
    }
}

/// The X-Ray API endpoint used when none is configured: `https://xray.<region>.amazonaws.com`,
/// with the daemon's partition rules (`cn-*`: `.amazonaws.com.cn`, `us-iso-*`: `.c2s.ic.gov`,
/// `us-isob-*`: `.sc2s.sgov.gov`).
pub fn default_endpoint(region: &str) -> String {
    let suffix = if region.starts_with("cn-") {
        "amazonaws.com.cn"
    } else if region.starts_with("us-isob-") {
        "sc2s.sgov.gov"
    } else if region.starts_with("us-iso-") {
        "c2s.ic.gov"
    } else {
        "amazonaws.com"
    };
    format!("https://xray.{region}.{suffix}")
}

/// The X-Ray endpoint to forward to: the configured one, else `AWS_ENDPOINT_URL_XRAY`, else
/// `AWS_ENDPOINT_URL` (both ignored when `AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true`, as in the
/// AWS SDKs), else [`default_endpoint`].
pub fn resolve_endpoint(configured: Option<&str>, region: &str) -> Result<Uri, SamplingProxyError> {
    resolve_endpoint_with(configured, region, |name| std::env::var(name).ok())
}

/// [`resolve_endpoint`] with the environment passed in.
pub fn resolve_endpoint_with(
    configured: Option<&str>,
    region: &str,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Uri, SamplingProxyError> {
    let non_empty = |value: Option<String>| value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
    let ignore_env = env("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS").is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
    let from_env = if ignore_env {
        None
    } else {
        non_empty(env("AWS_ENDPOINT_URL_XRAY")).or_else(|| non_empty(env("AWS_ENDPOINT_URL")))
    };
    let endpoint = non_empty(configured.map(str::to_owned)).or(from_env).unwrap_or_else(|| default_endpoint(region));
    parse_endpoint(&endpoint)
}

/// Checks an endpoint URL: `http` or `https`, a host, no user info, no query.
pub fn parse_endpoint(endpoint: &str) -> Result<Uri, SamplingProxyError> {
    let invalid =
        |reason: &str| SamplingProxyError::InvalidEndpoint { endpoint: endpoint.to_owned(), reason: reason.to_owned() };
    let uri: Uri = endpoint.trim().parse().map_err(|error: http::uri::InvalidUri| invalid(&error.to_string()))?;
    UpstreamTarget::new(&uri).map_err(|reason| invalid(&reason))?;
    Ok(uri)
}

/// Where each operation goes, and the `host` header that is sent and signed.
#[derive(Debug, Clone)]
struct UpstreamTarget {
    /// Indexed by [`SamplingOperation::index`].
    uris: [Uri; 3],
    host: HeaderValue,
}

impl UpstreamTarget {
    fn new(endpoint: &Uri) -> Result<UpstreamTarget, String> {
        let scheme = match endpoint.scheme_str() {
            Some(scheme @ ("http" | "https")) => scheme,
            Some(other) => return Err(format!("scheme {other:?} is not http or https")),
            None => return Err("no scheme (write http:// or https://)".into()),
        };
        let authority = endpoint.authority().ok_or("no host")?;
        if authority.as_str().contains('@') {
            return Err("user info is not allowed in the endpoint".into());
        }
        if authority.host().is_empty() {
            return Err("no host".into());
        }
        if endpoint.query().is_some() {
            return Err("a query string is not allowed in the endpoint".into());
        }
        let default_port = matches!((scheme, authority.port_u16()), ("http", Some(80)) | ("https", Some(443)));
        let host = if default_port { authority.host() } else { authority.as_str() };
        let host = HeaderValue::from_str(host).map_err(|error| error.to_string())?;
        let base_path = endpoint.path().trim_end_matches('/');
        let uri = |operation: SamplingOperation| -> Result<Uri, String> {
            format!("{scheme}://{authority}{base_path}{}", operation.path())
                .parse()
                .map_err(|e: http::uri::InvalidUri| e.to_string())
        };
        Ok(UpstreamTarget {
            uris: [
                uri(SamplingOperation::GetSamplingRules)?,
                uri(SamplingOperation::GetSamplingTargets)?,
                uri(SamplingOperation::GetSamplingStatisticSummaries)?,
            ],
            host,
        })
    }
}

/// Credentials fetched from the provider, and when to ask it again.
#[derive(Debug, Clone)]
struct CachedCredentials {
    credentials: Credentials,
    refresh_at: SystemTime,
}

/// The proxy's state: upstream, signing inputs, HTTP client and log limiters.
pub struct SamplingProxy {
    /// The endpoint as given, for logs and error messages.
    endpoint: String,
    target: Result<UpstreamTarget, String>,
    region: String,
    credentials: SharedCredentialsProvider,
    cached_credentials: tokio::sync::Mutex<Option<CachedCredentials>>,
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    timeout: Duration,
    max_body_size: usize,
    user_agent: HeaderValue,
    upstream_warning: LogLimiter,
    credentials_warning: LogLimiter,
    refused_warning: LogLimiter,
}

impl std::fmt::Debug for SamplingProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SamplingProxy")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
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
        let provider = rustls::crypto::aws_lc_rs::default_provider();
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_webpki_roots(Arc::new(provider))
            // The aws-lc-rs provider supports every protocol version rustls offers.
            .expect("the aws-lc-rs crypto provider supports TLS 1.2 and 1.3")
            .https_or_http()
            .enable_http1()
            .build();
        // The daemon's proxy transport: a couple of idle connections kept 30 s.
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(2)
            .build(connector);
        SamplingProxy {
            endpoint: endpoint.to_string(),
            target: UpstreamTarget::new(&endpoint),
            region,
            credentials,
            cached_credentials: tokio::sync::Mutex::new(None),
            client,
            timeout,
            max_body_size: DEFAULT_MAX_BODY_BYTES,
            user_agent: HeaderValue::from_static(concat!("waggle/", env!("CARGO_PKG_VERSION"), " xray-sampling-proxy")),
            upstream_warning: LogLimiter::new(WARN_INTERVAL),
            credentials_warning: LogLimiter::new(WARN_INTERVAL),
            refused_warning: LogLimiter::new(WARN_INTERVAL),
        }
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

    /// Reads, signs and forwards one allowed request; the upstream's answer, or why there is none.
    async fn forward(&self, operation: SamplingOperation, request: Request) -> Result<Response, SamplingProxyError> {
        let target = self.target.as_ref().map_err(|reason| SamplingProxyError::InvalidEndpoint {
            endpoint: self.endpoint.clone(),
            reason: reason.clone(),
        })?;
        let (parts, body) = request.into_parts();
        if parts.headers.get(CONTENT_ENCODING).is_some_and(|value| !value.as_bytes().eq_ignore_ascii_case(b"identity"))
        {
            return Err(SamplingProxyError::UnsupportedEncoding);
        }
        let payload = self.read_body(&parts.headers, body).await?;
        let content_type = forwarded_content_type(&parts.headers);
        let credentials = self.credentials().await?;
        let upstream_request = self.signed_request(target, operation, content_type, payload, &credentials)?;
        self.send(upstream_request).await
    }

    async fn read_body(&self, headers: &HeaderMap, body: Body) -> Result<Bytes, SamplingProxyError> {
        let declared = headers.get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
        match tokio::time::timeout(self.timeout, body::read_capped(body, self.max_body_size, declared)).await {
            Err(_) => Err(SamplingProxyError::ReadTimeout(self.timeout)),
            Ok(Ok(payload)) => Ok(payload),
            Ok(Err(BodyError::TooLarge { limit })) => Err(SamplingProxyError::TooLarge { limit }),
            Ok(Err(error)) => Err(SamplingProxyError::ReadBody(error.to_string())),
        }
    }

    /// Credentials from the cache, or fresh from the provider when due.
    async fn credentials(&self) -> Result<Credentials, SamplingProxyError> {
        let mut cached = self.cached_credentials.lock().await;
        let now = SystemTime::now();
        if let Some(entry) = cached.as_ref().filter(|entry| now < entry.refresh_at) {
            return Ok(entry.credentials.clone());
        }
        let fetched = match tokio::time::timeout(self.timeout, self.credentials.provide_credentials()).await {
            Ok(Ok(credentials)) => Ok(credentials),
            Ok(Err(error)) => Err(crate::telemetry::error_text::chain(&error)),
            Err(_) => Err(format!("the credentials provider did not answer within {:?}", self.timeout)),
        };
        match fetched {
            Ok(credentials) => {
                let refresh_at = refresh_time(&credentials, now);
                *cached = Some(CachedCredentials { credentials: credentials.clone(), refresh_at });
                Ok(credentials)
            }
            Err(reason) => {
                let still_valid = cached.as_ref().map(|entry| &entry.credentials).filter(|credentials| {
                    credentials.expiry().is_none_or(|expiry| expiry > now + CREDENTIALS_EXPIRY_SLACK)
                });
                if let Some(credentials) = still_valid {
                    if let Some(suppressed) = self.credentials_warning.check() {
                        tracing::warn!(
                            receiver = RECEIVER,
                            suppressed,
                            "could not refresh AWS credentials for the X-Ray sampling proxy, using the previous \
                             ones until they expire: {reason}"
                        );
                    }
                    return Ok(credentials.clone());
                }
                Err(SamplingProxyError::NoCredentials(reason))
            }
        }
    }

    /// The upstream request with only the headers waggle chose, SigV4-signed.
    fn signed_request(
        &self,
        target: &UpstreamTarget,
        operation: SamplingOperation,
        content_type: HeaderValue,
        payload: Bytes,
        credentials: &Credentials,
    ) -> Result<http::Request<Full<Bytes>>, SamplingProxyError> {
        let uri = target.uris[operation.index()].clone();
        let content_length = HeaderValue::from(payload.len());
        let signing_error = |error: &dyn std::error::Error| SamplingProxyError::Signing(error.to_string());
        let instructions = {
            let uri_text = uri.to_string();
            let signed_headers = [
                (HOST.as_str(), to_str(&target.host)),
                (CONTENT_TYPE.as_str(), to_str(&content_type)),
                (CONTENT_LENGTH.as_str(), to_str(&content_length)),
            ];
            let signable = SignableRequest::new(
                Method::POST.as_str(),
                uri_text.as_str(),
                signed_headers.into_iter(),
                SignableBody::Bytes(&payload),
            )
            .map_err(|error| signing_error(&error))?;
            let identity = credentials.clone().into();
            let params = v4::SigningParams::builder()
                .identity(&identity)
                .region(&self.region)
                .name(SIGNING_NAME)
                .time(SystemTime::now())
                .settings(SigningSettings::default())
                .build()
                .map_err(|error| signing_error(&error))?
                .into();
            let (instructions, _signature) =
                sign(signable, &params).map_err(|error| signing_error(&error))?.into_parts();
            instructions
        };
        let mut upstream = http::Request::new(Full::new(payload));
        *upstream.method_mut() = Method::POST;
        *upstream.uri_mut() = uri;
        let headers = upstream.headers_mut();
        headers.insert(HOST, target.host.clone());
        headers.insert(CONTENT_TYPE, content_type);
        headers.insert(CONTENT_LENGTH, content_length);
        headers.insert(USER_AGENT, self.user_agent.clone());
        instructions.apply_to_request_http1x(&mut upstream);
        Ok(upstream)
    }

    /// Sends the request and relays the answer: status, body and a few headers, unchanged.
    async fn send(&self, request: http::Request<Full<Bytes>>) -> Result<Response, SamplingProxyError> {
        let exchange = async {
            let response = self.client.request(request).await.map_err(|error| {
                let detail = crate::telemetry::error_text::chain(&error);
                if error.is_connect() {
                    SamplingProxyError::Connect { endpoint: self.endpoint.clone(), detail }
                } else {
                    SamplingProxyError::Upstream { endpoint: self.endpoint.clone(), detail }
                }
            })?;
            let (parts, body) = response.into_parts();
            let body = Limited::new(body, MAX_RESPONSE_BYTES).collect().await.map_err(|error| {
                if error.is::<http_body_util::LengthLimitError>() {
                    SamplingProxyError::ResponseTooLarge { endpoint: self.endpoint.clone(), limit: MAX_RESPONSE_BYTES }
                } else {
                    SamplingProxyError::Upstream {
                        endpoint: self.endpoint.clone(),
                        detail: crate::telemetry::error_text::chain(&*error),
                    }
                }
            })?;
            Ok::<_, SamplingProxyError>((parts, body.to_bytes()))
        };
        let (parts, body) = tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| SamplingProxyError::Timeout { endpoint: self.endpoint.clone(), timeout: self.timeout })??;
        let mut response = Response::new(Body::from(body));
        *response.status_mut() = parts.status;
        for name in RELAYED_RESPONSE_HEADERS {
            for value in parts.headers.get_all(&name) {
                response.headers_mut().append(name.clone(), value.clone());
            }
        }
        Ok(response)
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
            | SamplingProxyError::ReadTimeout(_) => &self.refused_warning,
            SamplingProxyError::NoCredentials(_) => &self.credentials_warning,
            _ => &self.upstream_warning,
        };
        if let Some(suppressed) = limiter.check() {
            tracing::warn!(
                receiver = RECEIVER,
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
    let address = listener.local_addr()?;
    tracing::info!(
        receiver = RECEIVER,
        endpoint = proxy.endpoint(),
        "HTTP Proxy server using X-Ray Endpoint : {}",
        proxy.endpoint()
    );
    tracing::info!(receiver = RECEIVER, %address, "Starting proxy http server on {address}");
    axum::serve(listener, app(proxy, metrics).into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
}

/// The proxy's routes, for [`serve`] and for in-process tests.
pub fn app(proxy: Arc<SamplingProxy>, metrics: Arc<Metrics>) -> axum::Router {
    axum::Router::new().fallback(handle).with_state(ProxyState { proxy, metrics })
}

#[derive(Clone)]
struct ProxyState {
    proxy: Arc<SamplingProxy>,
    metrics: Arc<Metrics>,
}

async fn handle(State(state): State<ProxyState>, request: Request) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let peer = request.extensions().get::<ConnectInfo<SocketAddr>>().map(|info| info.0);
    tracing::debug!(receiver = RECEIVER, %method, "Received request on HTTP Proxy server : {path}");
    let result = match SamplingOperation::of_request(&method, &path) {
        Some(operation) => state.proxy.forward(operation, request).await,
        None => Err(SamplingProxyError::NotFound),
    };
    match result {
        Ok(response) => response,
        Err(error) => state.proxy.fail(&state.metrics, error, &method, &path, peer),
    }
}

/// The client's Content-Type when it is printable ASCII (it is signed), else `application/json`.
fn forwarded_content_type(headers: &HeaderMap) -> HeaderValue {
    headers
        .get(CONTENT_TYPE)
        .filter(|value| value.to_str().is_ok_and(|text| !text.trim().is_empty()))
        .cloned()
        .unwrap_or_else(|| HeaderValue::from_static("application/json"))
}

/// A header value waggle built or checked to be ASCII.
fn to_str(value: &HeaderValue) -> &str {
    value.to_str().unwrap_or_default()
}

/// When to ask the provider again: 5 minutes before expiry, at most 15 minutes from now.
fn refresh_time(credentials: &Credentials, now: SystemTime) -> SystemTime {
    let latest = now + CREDENTIALS_MAX_AGE;
    match credentials.expiry() {
        Some(expiry) => expiry.checked_sub(CREDENTIALS_REFRESH_MARGIN).map_or(now, |early| early.min(latest)),
        None => latest,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_endpoints_follow_the_daemons_partition_rules() {
        assert_eq!(default_endpoint("us-east-1"), "https://xray.us-east-1.amazonaws.com");
        assert_eq!(default_endpoint("us-gov-west-1"), "https://xray.us-gov-west-1.amazonaws.com");
        assert_eq!(default_endpoint("cn-north-1"), "https://xray.cn-north-1.amazonaws.com.cn");
        assert_eq!(default_endpoint("us-iso-east-1"), "https://xray.us-iso-east-1.c2s.ic.gov");
        assert_eq!(default_endpoint("us-isob-east-1"), "https://xray.us-isob-east-1.sc2s.sgov.gov");
    }

    #[test]
    fn endpoint_resolution_prefers_config_then_service_env_then_global_env() {
        fn resolved(configured: Option<&str>, vars: &[(&str, &str)]) -> String {
            let env = |name: &str| vars.iter().find(|(key, _)| *key == name).map(|(_, value)| value.to_string());
            resolve_endpoint_with(configured, "eu-west-1", env).expect("valid").to_string()
        }
        let all = [("AWS_ENDPOINT_URL_XRAY", "http://127.0.0.1:5001"), ("AWS_ENDPOINT_URL", "http://127.0.0.1:5002")];
        assert_eq!(resolved(Some("http://127.0.0.1:5000"), &all), "http://127.0.0.1:5000/");
        assert_eq!(resolved(None, &all), "http://127.0.0.1:5001/");
        assert_eq!(resolved(Some("  "), &all[1..]), "http://127.0.0.1:5002/");
        assert_eq!(resolved(None, &[]), "https://xray.eu-west-1.amazonaws.com/");
        let ignored = [all[0], ("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true")];
        assert_eq!(resolved(None, &ignored), "https://xray.eu-west-1.amazonaws.com/");
    }

    #[test]
    fn endpoints_that_cannot_be_forwarded_to_are_refused() {
        for bad in
            ["127.0.0.1:5000", "ftp://example.com", "http://user:pw@example.com", "http://example.com/?a=b", "/path"]
        {
            assert!(
                matches!(parse_endpoint(bad), Err(SamplingProxyError::InvalidEndpoint { .. })),
                "{bad} should be refused"
            );
        }
    }

    #[test]
    fn upstream_targets_keep_a_base_path_and_drop_default_ports() {
        let target =
            UpstreamTarget::new(&"https://xray.us-east-1.amazonaws.com:443".parse().expect("uri")).expect("target");
        assert_eq!(target.host, "xray.us-east-1.amazonaws.com");
        assert_eq!(target.uris[0].to_string(), "https://xray.us-east-1.amazonaws.com:443/GetSamplingRules");
        let target = UpstreamTarget::new(&"http://127.0.0.1:4566/xray/".parse().expect("uri")).expect("target");
        assert_eq!(target.host, "127.0.0.1:4566");
        assert_eq!(target.uris[1].to_string(), "http://127.0.0.1:4566/xray/SamplingTargets");
        assert_eq!(target.uris[2].to_string(), "http://127.0.0.1:4566/xray/SamplingStatisticSummaries");
    }

    #[test]
    fn only_post_to_the_three_sampling_paths_is_an_operation() {
        assert_eq!(
            SamplingOperation::of_request(&Method::POST, "/GetSamplingRules"),
            Some(SamplingOperation::GetSamplingRules)
        );
        assert_eq!(
            SamplingOperation::of_request(&Method::POST, "/SamplingTargets"),
            Some(SamplingOperation::GetSamplingTargets)
        );
        assert_eq!(
            SamplingOperation::of_request(&Method::POST, "/SamplingStatisticSummaries"),
            Some(SamplingOperation::GetSamplingStatisticSummaries)
        );
        for (method, path) in [
            (Method::GET, "/GetSamplingRules"),
            (Method::PUT, "/SamplingTargets"),
            (Method::POST, "/TraceSegments"),
            (Method::POST, "/TelemetryRecords"),
            (Method::POST, "/"),
            (Method::POST, "/GetSamplingRules/"),
            (Method::POST, "/getsamplingrules"),
            (Method::POST, "//GetSamplingRules"),
        ] {
            assert_eq!(SamplingOperation::of_request(&method, path), None, "{method} {path}");
        }
    }

    #[test]
    fn credentials_are_refreshed_before_they_expire() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let forever = Credentials::new("AKID", "secret", None, None, "test");
        assert_eq!(refresh_time(&forever, now), now + CREDENTIALS_MAX_AGE);
        let hour = Credentials::new("AKID", "secret", None, Some(now + Duration::from_secs(3600)), "test");
        assert_eq!(refresh_time(&hour, now), now + CREDENTIALS_MAX_AGE);
        let soon = Credentials::new("AKID", "secret", None, Some(now + Duration::from_secs(600)), "test");
        assert_eq!(refresh_time(&soon, now), now + Duration::from_secs(300));
    }
}
