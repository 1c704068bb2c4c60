//! The seam between the Honeycomb exporter and the network: [`HoneycombClient`] posts one body
//! for one signal and returns the answer as it came; [`HyperClient`] does it over HTTP with
//! the URLs and headers built from the settings (the API key in `x-honeycomb-team`), through
//! [`https_client`] (system CA store, HTTPS_PROXY / HTTP_PROXY / NO_PROXY or `proxy_address`).

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use bytes::Bytes;
use http::header::{CONTENT_ENCODING, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue, USER_AGENT};
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use super::{HoneycombError, HoneycombSettings};
use crate::destination::compress;
use crate::destination::https_client::{self, HttpsClient};
use crate::model::Signal;

/// How much of a response body is read (for partial success and error messages).
const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// Honeycomb's answer to one request, as it came.
#[derive(Debug, Clone)]
pub(crate) struct HoneycombResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    /// Up to 64 KiB of the body; empty when it could not be read in full.
    pub body: Bytes,
}

/// Why a request got no answer.
#[derive(Debug, Clone, thiserror::Error)]
pub(crate) enum PostError {
    /// The request could not be made at all.
    #[error("{0}")]
    Invalid(String),
    #[error("no answer within {0:?}")]
    NoAnswer(Duration),
    /// Connecting or sending failed.
    #[error("request failed: {0}")]
    Failed(String),
}

/// Posts request bodies to Honeycomb.
pub(crate) trait HoneycombClient: Send + Sync + 'static {
    /// POSTs `body` (compressed OTLP/protobuf) to the endpoint of `signal`.
    fn post(&self, signal: Signal, body: Bytes) -> impl Future<Output = Result<HoneycombResponse, PostError>> + Send;
}

/// [`HoneycombClient`] over hyper: HTTP/1.1 or HTTP/2, TLS with the webpki roots.
pub(crate) struct HyperClient {
    client: HttpsClient,
    /// By [`Signal::index`].
    urls: [http::Uri; 3],
    /// By [`Signal::index`].
    headers: [HeaderMap; 3],
    /// `GET /1/auth` and its headers (the key only), for `waggle check`.
    auth_url: http::Uri,
    auth_headers: HeaderMap,
    timeout: Duration,
}

impl HyperClient {
    pub(crate) fn new(settings: &HoneycombSettings) -> Result<Self, HoneycombError> {
        let base = settings.base_url();
        let url = |path: &str| -> Result<http::Uri, HoneycombError> {
            format!("{base}{path}")
                .parse()
                .map_err(|e: http::uri::InvalidUri| HoneycombError::Endpoint(base.clone(), e.to_string()))
        };
        let urls = [url("/v1/traces")?, url("/v1/logs")?, url("/v1/metrics")?];
        let auth_url = url("/1/auth")?;
        let mut auth_headers = HeaderMap::new();
        let traces_headers = request_headers(settings, Signal::Traces)?;
        for name in [USER_AGENT.as_str(), "x-honeycomb-team"] {
            if let Some(value) = traces_headers.get(name) {
                auth_headers.insert(HeaderName::from_static(name), value.clone());
            }
        }
        let headers = [
            request_headers(settings, Signal::Traces)?,
            request_headers(settings, Signal::Logs)?,
            request_headers(settings, Signal::Metrics)?,
        ];
        let env: BTreeMap<String, String> = std::env::vars().collect();
        let matcher = https_client::proxy_matcher(settings.proxy_address.as_deref(), &env);
        let connector = https_client::connector(matcher, true).map_err(|e| HoneycombError::Tls(e.to_string()))?;
        let client = Client::builder(TokioExecutor::new()).pool_idle_timeout(Duration::from_secs(60)).build(connector);
        Ok(HyperClient { client, urls, headers, auth_url, auth_headers, timeout: settings.timeout })
    }

    /// Asks Honeycomb's `GET /1/auth` what the key is (its team, environment and access).
    pub(crate) async fn auth(&self) -> Result<HoneycombResponse, PostError> {
        let mut request = Request::get(self.auth_url.clone())
            .body(Full::new(Bytes::new()))
            .map_err(|e| PostError::Invalid(e.to_string()))?;
        *request.headers_mut() = self.auth_headers.clone();
        self.exchange(request).await
    }

    /// The URL `GET /1/auth` goes to.
    pub(crate) fn auth_url(&self) -> &http::Uri {
        &self.auth_url
    }

    /// Sends one request within the timeout and reads up to [`MAX_RESPONSE_BYTES`] of the answer.
    async fn exchange(&self, request: Request<Full<Bytes>>) -> Result<HoneycombResponse, PostError> {
        let response = tokio::time::timeout(self.timeout, self.client.request(request))
            .await
            .map_err(|_| PostError::NoAnswer(self.timeout))?
            .map_err(|e| PostError::Failed(crate::telemetry::error_text::chain(&e)))?;
        let (parts, body) = response.into_parts();
        // A body that cannot be read in full is treated as empty: the status decides.
        let body = match tokio::time::timeout(self.timeout, Limited::new(body, MAX_RESPONSE_BYTES).collect()).await {
            Ok(Ok(collected)) => collected.to_bytes(),
            _ => Bytes::new(),
        };
        Ok(HoneycombResponse { status: parts.status, headers: parts.headers, body })
    }
}

impl HoneycombClient for HyperClient {
    async fn post(&self, signal: Signal, body: Bytes) -> Result<HoneycombResponse, PostError> {
        let index = signal.index();
        let mut http_request = Request::post(self.urls[index].clone())
            .body(Full::new(body))
            .map_err(|e| PostError::Invalid(e.to_string()))?;
        *http_request.headers_mut() = self.headers[index].clone();
        self.exchange(http_request).await
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
pub(crate) fn is_classic_key(key: &str) -> bool {
    let hex32 = key.len() == 32 && key.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    let ingest = key.len() == 64 && key.starts_with("hc") && key.get(3..6) == Some("ic_");
    hex32 || ingest
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;

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
}
