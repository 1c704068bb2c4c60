//! The Honeycomb destination: OTLP/HTTP protobuf to `{endpoint}/v1/{traces,logs,metrics}`,
//! compressed, with the API key in `x-honeycomb-team`. Works with any OTLP/HTTP backend.
//!
//! | answer | what waggle does |
//! |---|---|
//! | 2xx | sent; a `partial_success` counts its rejected items and logs the message at WARN |
//! | 429, 5xx, network error, timeout | retried with backoff; `Retry-After` or the `RateLimit` reset is a floor |
//! | 401, 403 | permanent: `/status` says "Honeycomb rejected the API key", WARN once a minute, data counted as failed |
//! | other 4xx | permanent: counted as failed with the status and Honeycomb's message |

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::header::{CONTENT_ENCODING, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue, RETRY_AFTER, USER_AGENT};
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceResponse;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceResponse;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use prost::Message;

use crate::config::{Compression, HoneycombSettings};
use crate::destination::{Built, ExportError, Exporter, Rejected, Sent, compress, otlp_body};
use crate::model::LossReason;
use crate::model::{SharedBatch, Signal};
use crate::telemetry::ratelimit::LogLimiter;
use crate::telemetry::status::DestinationStatus;

/// How much of a response body is read (for partial success and error messages).
const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// Why the Honeycomb lane could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum HoneycombError {
    #[error("bad Honeycomb endpoint `{0}`: {1}")]
    Endpoint(String, String),
    #[error("bad header {name}: {reason}")]
    Header { name: String, reason: String },
    #[error("cannot set up TLS: {0}")]
    Tls(String),
}

/// One request to Honeycomb.
#[derive(Debug)]
pub struct HoneycombRequest {
    signal: Signal,
    /// Compressed OTLP/protobuf.
    body: Bytes,
    items: usize,
}

/// Sends OTLP to Honeycomb.
pub struct Honeycomb {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    urls: [http::Uri; 3],
    headers: [HeaderMap; 3],
    compression: Compression,
    max_request_size: usize,
    timeout: Duration,
    status: Arc<DestinationStatus>,
    key_warning: LogLimiter,
}

impl Honeycomb {
    pub fn new(settings: &HoneycombSettings, status: Arc<DestinationStatus>) -> Result<Self, HoneycombError> {
        let base = settings.base_url();
        let url = |path: &str| -> Result<http::Uri, HoneycombError> {
            format!("{base}{path}")
                .parse()
                .map_err(|e: http::uri::InvalidUri| HoneycombError::Endpoint(base.clone(), e.to_string()))
        };
        let urls = [url("/v1/traces")?, url("/v1/logs")?, url("/v1/metrics")?];
        let headers = [
            request_headers(settings, Signal::Traces)?,
            request_headers(settings, Signal::Logs)?,
            request_headers(settings, Signal::Metrics)?,
        ];
        let provider = rustls::crypto::aws_lc_rs::default_provider();
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_webpki_roots(Arc::new(provider))
            .map_err(|e| HoneycombError::Tls(e.to_string()))?
            .https_or_http()
            .enable_http1()
            .enable_http2()
            .build();
        let client = Client::builder(TokioExecutor::new()).pool_idle_timeout(Duration::from_secs(60)).build(connector);
        Ok(Honeycomb {
            client,
            urls,
            headers,
            compression: settings.compression,
            max_request_size: usize::try_from(settings.max_request_size.as_u64()).unwrap_or(usize::MAX),
            timeout: settings.timeout,
            status,
            key_warning: LogLimiter::new(Duration::from_secs(60)),
        })
    }

    async fn post(&self, request: &HoneycombRequest) -> Result<(StatusCode, HeaderMap, Bytes), ExportError> {
        let index = request.signal.index();
        let mut http_request = Request::post(self.urls[index].clone())
            .body(Full::new(request.body.clone()))
            .map_err(|e| ExportError::permanent(LossReason::InvalidRequest, e.to_string()))?;
        *http_request.headers_mut() = self.headers[index].clone();
        let response = tokio::time::timeout(self.timeout, self.client.request(http_request))
            .await
            .map_err(|_| ExportError::retryable(format!("no answer within {:?}", self.timeout)))?
            .map_err(|e| {
                ExportError::retryable(format!("request failed: {}", crate::telemetry::error_text::chain(&e)))
            })?;
        let (parts, body) = response.into_parts();
        // A body that cannot be read in full is treated as empty: the status decides.
        let body = match tokio::time::timeout(self.timeout, Limited::new(body, MAX_RESPONSE_BYTES).collect()).await {
            Ok(Ok(collected)) => collected.to_bytes(),
            _ => Bytes::new(),
        };
        Ok((parts.status, parts.headers, body))
    }
}

impl Exporter for Honeycomb {
    type Request = HoneycombRequest;

    fn build(&self, signal: Signal, batches: &[SharedBatch]) -> Built<HoneycombRequest> {
        let (bodies, mut rejected) = match signal {
            Signal::Traces => otlp_body::traces(batches, self.max_request_size),
            Signal::Logs => otlp_body::logs(batches, self.max_request_size),
            Signal::Metrics => otlp_body::metrics(batches, self.max_request_size),
        };
        let mut requests = Vec::with_capacity(bodies.len());
        for body in bodies {
            match compress::compress(self.compression, body.bytes) {
                Ok(compressed) => {
                    requests.push(HoneycombRequest { signal, body: compressed.into(), items: body.items })
                }
                Err(error) => rejected.push(Rejected {
                    items: body.items,
                    reason: LossReason::CompressionFailed,
                    detail: error.to_string(),
                }),
            }
        }
        Built { requests, rejected }
    }

    fn items(request: &HoneycombRequest) -> usize {
        request.items
    }

    async fn send(&self, request: &mut HoneycombRequest) -> Result<Sent, ExportError> {
        let (status, headers, body) = self.post(request).await?;
        let outcome = classify(request.signal, request.items, status, &headers, &body, SystemTime::now());
        if matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) {
            let problem = format!("Honeycomb rejected the API key (HTTP {})", status.as_u16());
            if let Some(suppressed) = self.key_warning.check() {
                tracing::warn!(
                    destination = "honeycomb",
                    status = status.as_u16(),
                    suppressed,
                    "{problem}; check HONEYCOMB_API_KEY"
                );
            }
            self.status.record_problem(problem);
        }
        if let Ok(sent) = &outcome
            && sent.rejected.is_empty()
            && let Some(message) = partial_success(request.signal, &body).map(|(_, message)| message)
            && !message.is_empty()
        {
            tracing::warn!(destination = "honeycomb", signal = %request.signal, %message, "Honeycomb accepted the data with a warning");
        }
        outcome
    }
}

/// The headers every request of a signal carries.
fn request_headers(settings: &HoneycombSettings, signal: Signal) -> Result<HeaderMap, HoneycombError> {
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/x-protobuf"));
    headers.insert(USER_AGENT, HeaderValue::from_static(concat!("waggle/", env!("CARGO_PKG_VERSION"))));
    if let Some(encoding) = compress::content_encoding(settings.compression) {
        headers.insert(CONTENT_ENCODING, HeaderValue::from_static(encoding));
    }
    fn header_error(name: &str) -> impl FnOnce(http::header::InvalidHeaderValue) -> HoneycombError + '_ {
        move |e| HoneycombError::Header { name: name.to_string(), reason: e.to_string() }
    }
    if let Some(key) = &settings.api_key {
        let mut value = HeaderValue::from_str(key.expose()).map_err(header_error("x-honeycomb-team"))?;
        value.set_sensitive(true);
        headers.insert("x-honeycomb-team", value);
        if let Some(dataset) = &settings.dataset
            && (signal == Signal::Metrics || is_classic_key(key.expose()))
        {
            headers.insert(
                "x-honeycomb-dataset",
                HeaderValue::from_str(dataset).map_err(header_error("x-honeycomb-dataset"))?,
            );
        }
    }
    for (name, value) in &settings.headers {
        let header_name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|e| HoneycombError::Header { name: name.clone(), reason: e.to_string() })?;
        let mut header_value = HeaderValue::from_str(value.expose()).map_err(header_error(name))?;
        header_value.set_sensitive(true);
        headers.insert(header_name, header_value);
    }
    Ok(headers)
}

/// Classic keys need a dataset header on traces and logs too: 32 lowercase hex characters, or a
/// 64-character `hc?ic_…` ingest key.
pub fn is_classic_key(key: &str) -> bool {
    let hex32 = key.len() == 32 && key.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    let ingest = key.len() == 64 && key.starts_with("hc") && key.get(3..6) == Some("ic_");
    hex32 || ingest
}

/// Turns Honeycomb's answer into the lane's outcome.
pub fn classify(
    signal: Signal,
    items: usize,
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
    now: SystemTime,
) -> Result<Sent, ExportError> {
    if status.is_success() {
        let rejected = match partial_success(signal, body) {
            Some((count, message)) if count > 0 => {
                let count = usize::try_from(count).unwrap_or(items).min(items);
                vec![Rejected { items: count, reason: LossReason::PartialSuccess, detail: message }]
            }
            _ => Vec::new(),
        };
        let refused: usize = rejected.iter().map(|r| r.items).sum();
        return Ok(Sent { accepted: items - refused, rejected, retry_remaining: None });
    }
    let reason = format!("HTTP {}: {}", status.as_u16(), error_message(body));
    match status.as_u16() {
        429 | 500..=599 => Err(ExportError::Retryable { reason, retry_after: retry_after(headers, now) }),
        401 | 403 => Err(ExportError::permanent(LossReason::Unauthorized, reason)),
        _ => Err(ExportError::permanent(LossReason::Rejected, reason)),
    }
}

/// `(rejected items, message)` from an OTLP `partial_success`, if the body has one.
fn partial_success(signal: Signal, body: &[u8]) -> Option<(i64, String)> {
    if body.is_empty() {
        return None;
    }
    match signal {
        Signal::Traces => {
            ExportTraceServiceResponse::decode(body).ok()?.partial_success.map(|p| (p.rejected_spans, p.error_message))
        }
        Signal::Logs => ExportLogsServiceResponse::decode(body)
            .ok()?
            .partial_success
            .map(|p| (p.rejected_log_records, p.error_message)),
        Signal::Metrics => ExportMetricsServiceResponse::decode(body)
            .ok()?
            .partial_success
            .map(|p| (p.rejected_data_points, p.error_message)),
    }
}

/// A readable message from an error body: a `google.rpc.Status`, else the text, shortened.
fn error_message(body: &[u8]) -> String {
    #[derive(Clone, PartialEq, Message)]
    struct Status {
        #[prost(int32, tag = "1")]
        code: i32,
        #[prost(string, tag = "2")]
        message: String,
    }
    let text = match Status::decode(body) {
        Ok(status) if !status.message.is_empty() => status.message,
        _ => String::from_utf8_lossy(body).into_owned(),
    };
    let text = text.trim();
    match text.char_indices().nth(200) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

/// The wait a throttled answer asks for: `Retry-After` (seconds or an HTTP date), else the
/// reset of an exhausted `RateLimit` header (`limit=100, remaining=0, reset=30` or
/// `"default";r=0;t=30`).
pub fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    if let Some(value) = headers.get(RETRY_AFTER).and_then(|v| v.to_str().ok()) {
        let value = value.trim();
        if let Ok(seconds) = value.parse::<u64>() {
            return Some(Duration::from_secs(seconds));
        }
        if let Ok(date) = httpdate::parse_http_date(value) {
            return Some(date.duration_since(now).unwrap_or(Duration::ZERO));
        }
    }
    let rate_limit = headers.get("ratelimit")?.to_str().ok()?;
    let field = |names: &[&str]| {
        rate_limit
            .split([',', ';'])
            .filter_map(|part| part.trim().split_once('='))
            .find(|(name, _)| names.contains(&name.trim()))
            .and_then(|(_, value)| value.trim().parse::<u64>().ok())
    };
    match (field(&["remaining", "r"]), field(&["reset", "t"])) {
        (Some(0), Some(reset)) => Some(Duration::from_secs(reset)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTracePartialSuccess;

    use super::*;
    use crate::config::Secret;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        pairs.iter().map(|(k, v)| (HeaderName::from_static(k), HeaderValue::from_str(v).unwrap())).collect()
    }

    fn now() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000)
    }

    #[test]
    fn success_without_partial_success_sends_everything() {
        let sent = classify(Signal::Traces, 7, StatusCode::OK, &HeaderMap::new(), b"", now()).unwrap();
        assert_eq!((sent.accepted, sent.rejected.len()), (7, 0));
    }

    #[test]
    fn partial_success_counts_the_rejected_items() {
        let partial = ExportTraceServiceResponse {
            partial_success: Some(ExportTracePartialSuccess { rejected_spans: 2, error_message: "too big".into() }),
        };
        let sent =
            classify(Signal::Traces, 7, StatusCode::OK, &HeaderMap::new(), &partial.encode_to_vec(), now()).unwrap();
        assert_eq!(sent.accepted, 5);
        assert_eq!((sent.rejected[0].items, sent.rejected[0].detail.as_str()), (2, "too big"));
    }

    #[test]
    fn throttling_and_server_errors_are_retried() {
        for code in [429, 500, 502, 503, 504] {
            let status = StatusCode::from_u16(code).unwrap();
            let error = classify(Signal::Logs, 1, status, &HeaderMap::new(), b"busy", now()).unwrap_err();
            assert!(matches!(error, ExportError::Retryable { .. }), "{code}");
        }
    }

    #[test]
    fn a_rejected_key_is_permanent() {
        for code in [401, 403] {
            let status = StatusCode::from_u16(code).unwrap();
            let error = classify(Signal::Traces, 1, status, &HeaderMap::new(), b"unknown API key", now()).unwrap_err();
            assert!(matches!(error, ExportError::Permanent { label: LossReason::Unauthorized, .. }), "{code}");
        }
    }

    #[test]
    fn other_client_errors_are_permanent_with_the_message() {
        let error = classify(Signal::Traces, 1, StatusCode::BAD_REQUEST, &HeaderMap::new(), b"bad span", now());
        let Err(ExportError::Permanent { label, reason }) = error else { panic!("{error:?}") };
        assert_eq!((label, reason.as_str()), (LossReason::Rejected, "HTTP 400: bad span"));
    }

    #[test]
    fn retry_after_in_seconds() {
        assert_eq!(retry_after(&headers(&[("retry-after", "2")]), now()), Some(Duration::from_secs(2)));
    }

    #[test]
    fn retry_after_as_an_http_date() {
        let later = httpdate::fmt_http_date(now() + Duration::from_secs(30));
        assert_eq!(retry_after(&headers(&[("retry-after", &later)]), now()), Some(Duration::from_secs(30)));
    }

    #[test]
    fn an_exhausted_rate_limit_gives_its_reset() {
        let old = headers(&[("ratelimit", "limit=100, remaining=0, reset=30")]);
        let new = headers(&[("ratelimit", "\"default\";r=0;t=12")]);
        let left = headers(&[("ratelimit", "limit=100, remaining=5, reset=30")]);
        assert_eq!(retry_after(&old, now()), Some(Duration::from_secs(30)));
        assert_eq!(retry_after(&new, now()), Some(Duration::from_secs(12)));
        assert_eq!(retry_after(&left, now()), None);
    }

    #[test]
    fn classic_keys_are_recognised() {
        assert!(is_classic_key("0123456789abcdef0123456789abcdef"));
        assert!(is_classic_key(&format!("hcaic_{}", "a".repeat(58))));
        assert!(!is_classic_key("abcdefABCDEF0123456789abcdef0123"));
        assert!(!is_classic_key("hcaik_01jabcdefghijklmnopqrstu"));
    }

    #[test]
    fn the_dataset_header_goes_on_metrics_and_on_classic_keys_only() {
        let mut settings = HoneycombSettings {
            api_key: Some(Secret::new("hcaik_01jabcdefghijklmnopqrstu")),
            dataset: Some("ds".into()),
            ..HoneycombSettings::default()
        };
        assert!(request_headers(&settings, Signal::Traces).unwrap().get("x-honeycomb-dataset").is_none());
        assert_eq!(request_headers(&settings, Signal::Metrics).unwrap()["x-honeycomb-dataset"], "ds");
        settings.api_key = Some(Secret::new("0123456789abcdef0123456789abcdef"));
        assert_eq!(request_headers(&settings, Signal::Traces).unwrap()["x-honeycomb-dataset"], "ds");
    }

    #[test]
    fn the_key_header_is_marked_sensitive() {
        let settings = HoneycombSettings { api_key: Some(Secret::new("k")), ..HoneycombSettings::default() };
        assert!(request_headers(&settings, Signal::Traces).unwrap()["x-honeycomb-team"].is_sensitive());
    }

    #[test]
    fn error_messages_are_shortened_on_a_character_boundary() {
        let long = "é".repeat(300);
        let message = error_message(long.as_bytes());
        assert_eq!(message.chars().count(), 201);
    }
}
