//! The client seam: [`AwsOtlpClient`] posts one compressed OTLP body (with extra headers such
//! as CloudWatch Logs' group and stream) and returns the answer as it came; [`SignedOtlpClient`]
//! does it over hyper, signing every request with SigV4 for its service and region.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use aws_credential_types::provider::SharedCredentialsProvider;
use bytes::Bytes;
use http::header::{CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE, HOST, HeaderMap, HeaderValue, USER_AGENT};
use http::{Method, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::aws::sign::{Signer, SigningCredentials, Unsigned};

/// How much of a response body is read (partial success and error messages).
const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// The endpoint's answer to one request, as it came.
#[derive(Debug, Clone)]
pub(crate) struct OtlpAnswer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    /// Up to 64 KiB of the body; empty when it could not be read in full.
    pub body: Bytes,
}

/// Why a request got no answer.
#[derive(Debug, Clone, thiserror::Error)]
pub(crate) enum PostError {
    /// The request could not be made or signed.
    #[error("{0}")]
    Invalid(String),
    /// No credentials to sign with (the provider's reason).
    #[error("no AWS credentials to sign with: {0}")]
    NoCredentials(String),
    #[error("no answer within {0:?}")]
    NoAnswer(Duration),
    /// Connecting or sending failed.
    #[error("request failed: {0}")]
    Failed(String),
}

/// Posts OTLP bodies to one AWS OTLP endpoint.
pub(crate) trait AwsOtlpClient: Send + Sync + 'static {
    /// POSTs `body` (gzip OTLP/protobuf) with `headers` added (and signed).
    fn post(
        &self,
        headers: &[(&'static str, &str)],
        body: Bytes,
    ) -> impl Future<Output = Result<OtlpAnswer, PostError>> + Send;
}

/// `https://<service>.<region>.<partition suffix>`, AWS's endpoint for a service in a region.
pub(crate) fn default_endpoint(service: &str, region: &str) -> String {
    let suffix = if region.starts_with("cn-") {
        "amazonaws.com.cn"
    } else if region.starts_with("us-isob-") {
        "sc2s.sgov.gov"
    } else if region.starts_with("us-iso-") {
        "c2s.ic.gov"
    } else {
        "amazonaws.com"
    };
    format!("https://{service}.{region}.{suffix}")
}

/// The endpoint to post to: `configured`, else the first of `env_names` set in `env` (unless
/// `AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true`, as in the AWS SDKs), else [`default_endpoint`].
pub(crate) fn endpoint_base(
    configured: Option<&str>,
    env: &std::collections::BTreeMap<String, String>,
    env_names: &[&str],
    service: &str,
    region: &str,
) -> String {
    let non_empty = |value: &str| -> Option<String> { Some(value.trim().to_string()).filter(|v| !v.is_empty()) };
    let ignore_env =
        env.get("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS").is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
    configured
        .and_then(non_empty)
        .or_else(|| {
            if ignore_env {
                return None;
            }
            env_names.iter().find_map(|name| env.get(*name).and_then(|value| non_empty(value)))
        })
        .unwrap_or_else(|| default_endpoint(service, region))
}

/// `base` (an `http(s)://host[:port]` endpoint, maybe with a path) with `path` appended.
pub(crate) fn otlp_url(base: &str, path: &str) -> Result<Uri, String> {
    let url = format!("{}{path}", base.trim().trim_end_matches('/'));
    let uri: Uri = url.parse().map_err(|error: http::uri::InvalidUri| format!("`{url}`: {error}"))?;
    match (uri.scheme_str(), uri.authority()) {
        (Some("http" | "https"), Some(authority)) if !authority.as_str().contains('@') => Ok(uri),
        _ => Err(format!("`{url}` is not an http(s) URL with a host")),
    }
}

/// [`AwsOtlpClient`] over hyper (HTTP/1.1, TLS with the webpki roots), signing with SigV4.
pub(crate) struct SignedOtlpClient {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    url: Uri,
    url_text: String,
    host: HeaderValue,
    signer: Signer,
    timeout: Duration,
}

impl SignedOtlpClient {
    /// A client posting to `url`, signing for `service` in `region`; `timeout` bounds each call.
    pub(crate) fn new(
        url: Uri,
        service: &'static str,
        region: String,
        credentials: SharedCredentialsProvider,
        timeout: Duration,
    ) -> Result<Self, String> {
        let authority = url.authority().ok_or("the URL has no host")?;
        let host = HeaderValue::from_str(authority.as_str()).map_err(|error| error.to_string())?;
        let provider = rustls::crypto::aws_lc_rs::default_provider();
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_webpki_roots(Arc::new(provider))
            .map_err(|error| error.to_string())?
            .https_or_http()
            .enable_http1()
            .build();
        let client = Client::builder(TokioExecutor::new()).pool_idle_timeout(Duration::from_secs(60)).build(connector);
        Ok(SignedOtlpClient {
            client,
            url_text: url.to_string(),
            url,
            host,
            signer: Signer::new(service, region, credentials),
            timeout,
        })
    }

    /// The signed request.
    async fn request(&self, extra: &[(&'static str, &str)], body: Bytes) -> Result<Request<Full<Bytes>>, PostError> {
        let credentials = match self.signer.credentials(self.timeout).await {
            Ok(SigningCredentials::Current(credentials) | SigningCredentials::Stale { credentials, .. }) => credentials,
            Err(reason) => return Err(PostError::NoCredentials(reason)),
        };
        let length = body.len().to_string();
        let host = self.host.to_str().map_err(|error| PostError::Invalid(error.to_string()))?;
        let mut signed: Vec<(&str, &str)> = vec![
            (HOST.as_str(), host),
            (CONTENT_TYPE.as_str(), "application/x-protobuf"),
            (CONTENT_ENCODING.as_str(), "gzip"),
            (CONTENT_LENGTH.as_str(), &length),
        ];
        signed.extend(extra.iter().copied());
        let unsigned = Unsigned { method: "POST", uri: &self.url_text, headers: &signed, body: &body };
        let instructions =
            self.signer.sign(&unsigned, &credentials).map_err(|error| PostError::Invalid(error.to_string()))?;
        let mut request = Request::new(Full::new(body));
        *request.method_mut() = Method::POST;
        *request.uri_mut() = self.url.clone();
        let headers = request.headers_mut();
        for (name, value) in &signed {
            let value = HeaderValue::from_str(value).map_err(|error| PostError::Invalid(format!("{name}: {error}")))?;
            headers.insert(*name, value);
        }
        headers.insert(USER_AGENT, HeaderValue::from_static(concat!("waggle/", env!("CARGO_PKG_VERSION"))));
        instructions.apply_to_request_http1x(&mut request);
        Ok(request)
    }
}

impl AwsOtlpClient for SignedOtlpClient {
    async fn post(&self, headers: &[(&'static str, &str)], body: Bytes) -> Result<OtlpAnswer, PostError> {
        let request = self.request(headers, body).await?;
        let response = tokio::time::timeout(self.timeout, self.client.request(request))
            .await
            .map_err(|_| PostError::NoAnswer(self.timeout))?
            .map_err(|error| PostError::Failed(crate::telemetry::error_text::chain(&error)))?;
        let (parts, body) = response.into_parts();
        // A body that cannot be read in full is treated as empty: the status decides.
        let body = match tokio::time::timeout(self.timeout, Limited::new(body, MAX_RESPONSE_BYTES).collect()).await {
            Ok(Ok(collected)) => collected.to_bytes(),
            _ => Bytes::new(),
        };
        Ok(OtlpAnswer { status: parts.status, headers: parts.headers, body })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_follow_the_partition() {
        assert_eq!(default_endpoint("xray", "eu-west-1"), "https://xray.eu-west-1.amazonaws.com");
        assert_eq!(default_endpoint("logs", "cn-north-1"), "https://logs.cn-north-1.amazonaws.com.cn");
    }

    #[test]
    fn the_configured_endpoint_then_the_environment_then_the_region() {
        let env: std::collections::BTreeMap<String, String> =
            [("AWS_ENDPOINT_URL_XRAY".to_string(), "http://env:1".to_string())].into();
        let names = ["AWS_ENDPOINT_URL_XRAY", "AWS_ENDPOINT_URL"];
        assert_eq!(endpoint_base(Some("http://cfg:2"), &env, &names, "xray", "eu-west-1"), "http://cfg:2");
        assert_eq!(endpoint_base(None, &env, &names, "xray", "eu-west-1"), "http://env:1");
        let mut ignoring = env;
        ignoring.insert("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS".into(), "true".into());
        assert_eq!(endpoint_base(None, &ignoring, &names, "xray", "eu-west-1"), "https://xray.eu-west-1.amazonaws.com");
    }

    #[test]
    fn the_path_is_appended_once() {
        let url = otlp_url("http://127.0.0.1:4000/", "/v1/traces").unwrap();
        assert_eq!(url.to_string(), "http://127.0.0.1:4000/v1/traces");
        assert!(otlp_url("ftp://example.com", "/v1/logs").is_err());
        assert!(otlp_url("http://user@example.com", "/v1/logs").is_err());
    }
}
