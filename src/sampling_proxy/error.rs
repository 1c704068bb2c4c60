//! Why the proxy answered on its own instead of relaying the upstream's answer, and how that
//! answer looks: status, `rest-json` error body and `x-amzn-errortype`.

use std::time::Duration;

use axum::body::Body;
use axum::response::Response;
use http::header::{CONTENT_TYPE, RETRY_AFTER};
use http::{HeaderName, HeaderValue, StatusCode};

use crate::limits::{BudgetExhausted, retry_after_seconds};

const ERROR_TYPE_HEADER: HeaderName = HeaderName::from_static("x-amzn-errortype");

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
    /// The memory budget has no room for the body now (nothing was forwarded).
    #[error("{source}; retry later")]
    OverBudget { source: BudgetExhausted, retry_after: Duration },
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
            SamplingProxyError::OverBudget { .. } => StatusCode::TOO_MANY_REQUESTS,
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
            // What the X-Ray API answers a caller over its rate: the SDKs retry it later.
            SamplingProxyError::OverBudget { .. } => "ThrottledException",
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
            SamplingProxyError::OverBudget { .. } => Some("memory_limit"),
            _ => None,
        }
    }

    /// How long the client should wait before retrying, when it is told to.
    fn retry_after(&self) -> Option<Duration> {
        match self {
            SamplingProxyError::OverBudget { retry_after, .. } => Some(*retry_after),
            _ => None,
        }
    }

    /// The answer to the client: a `rest-json` shaped error, with `Retry-After` when the
    /// client should come back later.
    pub fn into_response(self) -> Response {
        let body = serde_json::json!({ "__type": self.error_type(), "message": self.to_string() });
        let mut response = Response::new(Body::from(body.to_string()));
        *response.status_mut() = self.http_status();
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(ERROR_TYPE_HEADER, HeaderValue::from_static(self.error_type()));
        if let Some(delay) = self.retry_after() {
            headers.insert(RETRY_AFTER, HeaderValue::from(retry_after_seconds(delay)));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_room_in_the_memory_budget_is_a_throttled_429_with_retry_after() {
        let source = BudgetExhausted { wanted: 10, in_use: 95, limit: 100 };
        let error = SamplingProxyError::OverBudget { source, retry_after: Duration::from_millis(1500) };
        assert_eq!(error.rejection_reason(), Some("memory_limit"));
        let response = error.into_response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()[RETRY_AFTER], "2");
        assert_eq!(response.headers()[ERROR_TYPE_HEADER], "ThrottledException");
    }

    #[test]
    fn only_a_refusal_for_memory_says_when_to_retry() {
        let response = SamplingProxyError::TooLarge { limit: 10 }.into_response();
        assert!(response.headers().get(RETRY_AFTER).is_none());
    }
}
