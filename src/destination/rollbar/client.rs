//! The seam between the Rollbar exporter and the network: [`RollbarClient`] posts one item and
//! returns the answer as it came; [`HyperClient`] does it over HTTP through the shared
//! [`https_client`] (system CA store, proxies) as the Honeycomb client does, with the token in
//! `X-Rollbar-Access-Token`.

use std::future::Future;
use std::time::Duration;

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HeaderMap, HeaderValue, USER_AGENT};
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use super::{RollbarError, RollbarSettings};
use crate::destination::https_client::{self, HttpsClient};

/// How much of a response body is read (for error messages).
const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// The header Rollbar reads the token from.
pub(crate) const TOKEN_HEADER: &str = "x-rollbar-access-token";

/// Rollbar's answer to one request, as it came.
#[derive(Debug, Clone)]
pub(crate) struct RollbarResponse {
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

/// Posts items to Rollbar.
pub(crate) trait RollbarClient: Send + Sync + 'static {
    /// POSTs one item (`{"data": …}` JSON).
    fn post(&self, body: Bytes) -> impl Future<Output = Result<RollbarResponse, PostError>> + Send;
}

/// [`RollbarClient`] over hyper: HTTP/1.1 or HTTP/2, TLS with the system's and the bundled
/// roots, through a proxy when one is configured or named by the environment.
pub(crate) struct HyperClient {
    client: HttpsClient,
    url: http::Uri,
    headers: HeaderMap,
    timeout: Duration,
}

impl HyperClient {
    pub(crate) fn new(settings: &RollbarSettings) -> Result<Self, RollbarError> {
        let item_url = settings.item_url();
        let url: http::Uri = item_url
            .parse()
            .map_err(|e: http::uri::InvalidUri| RollbarError::Endpoint(settings.endpoint.clone(), e.to_string()))?;
        if url.scheme().is_none() || url.host().is_none() {
            return Err(RollbarError::Endpoint(settings.endpoint.clone(), "not an absolute http(s) URL".into()));
        }
        let env: std::collections::BTreeMap<String, String> = std::env::vars().collect();
        let matcher = https_client::proxy_matcher(settings.proxy_address.as_deref(), &env);
        let connector = https_client::connector(matcher, true).map_err(|e| RollbarError::Tls(e.to_string()))?;
        let client = Client::builder(TokioExecutor::new()).pool_idle_timeout(Duration::from_secs(60)).build(connector);
        Ok(HyperClient { client, url, headers: request_headers(settings)?, timeout: settings.timeout })
    }
}

impl RollbarClient for HyperClient {
    async fn post(&self, body: Bytes) -> Result<RollbarResponse, PostError> {
        let mut http_request =
            Request::post(self.url.clone()).body(Full::new(body)).map_err(|e| PostError::Invalid(e.to_string()))?;
        *http_request.headers_mut() = self.headers.clone();
        let response = tokio::time::timeout(self.timeout, self.client.request(http_request))
            .await
            .map_err(|_| PostError::NoAnswer(self.timeout))?
            .map_err(|e| PostError::Failed(crate::telemetry::error_text::chain(&e)))?;
        let (parts, body) = response.into_parts();
        // A body that cannot be read in full is treated as empty: the status decides.
        let body = match tokio::time::timeout(self.timeout, Limited::new(body, MAX_RESPONSE_BYTES).collect()).await {
            Ok(Ok(collected)) => collected.to_bytes(),
            _ => Bytes::new(),
        };
        Ok(RollbarResponse { status: parts.status, headers: parts.headers, body })
    }
}

/// The headers every item carries: JSON, and the token (marked sensitive, never logged).
fn request_headers(settings: &RollbarSettings) -> Result<HeaderMap, RollbarError> {
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(USER_AGENT, HeaderValue::from_static(concat!("waggle/", env!("CARGO_PKG_VERSION"))));
    if let Some(token) = &settings.access_token {
        let mut value = HeaderValue::from_str(token.expose()).map_err(|e| RollbarError::Token(e.to_string()))?;
        value.set_sensitive(true);
        headers.insert(TOKEN_HEADER, value);
    }
    Ok(headers)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;

    #[test]
    fn the_token_header_is_marked_sensitive() {
        let settings = RollbarSettings { access_token: Some(Secret::new("t")), ..RollbarSettings::default() };
        let headers = request_headers(&settings).unwrap();
        assert!(headers[TOKEN_HEADER].is_sensitive());
        assert_eq!(headers[CONTENT_TYPE], "application/json");
    }
}
