//! The one place typed receive errors become answers: an HTTP status, headers and a
//! `google.rpc.Status` body in the request's own encoding, or a gRPC status.
//!
//! | error | HTTP | gRPC | metric reason |
//! |---|---|---|---|
//! | unknown path | 404 | UNIMPLEMENTED | `not_found` |
//! | method other than POST | 405, `Allow: POST` | – | `method_not_allowed` |
//! | Content-Type not x-protobuf / json | 415 | – | `unsupported_media_type` |
//! | Content-Encoding not gzip / zstd / identity | 415, `Accept-Encoding` | UNIMPLEMENTED | `unsupported_encoding` |
//! | body over the limit (after decompression) | 413 | RESOURCE_EXHAUSTED (no RetryInfo) | `too_large` |
//! | so many resources that the configured resource attributes would more than double it | 413 | RESOURCE_EXHAUSTED (no RetryInfo) | `too_large` |
//! | corrupt compressed data | 400 | INVALID_ARGUMENT | `bad_encoding` |
//! | not a valid protobuf / OTLP-JSON message | 400 | INVALID_ARGUMENT | `malformed` |
//! | trace or span id of the wrong length | 400 | INVALID_ARGUMENT | `invalid_id` |
//! | connection failed while reading the body | 400 | – | `read_failed` |
//! | a destination lane is full | 429, `Retry-After` | RESOURCE_EXHAUSTED + RetryInfo | (refused items, `queue_full`) |
//! | the memory budget has no room for the body | 429, `Retry-After` | RESOURCE_EXHAUSTED + RetryInfo | `memory_limit` |
//! | the body did not arrive within `body_timeout` | 408 | – | `body_timeout` |
//! | internal failure | 500 | INTERNAL | `internal` |
//!
//! Error bodies are a `google.rpc.Status` encoded like the request (protobuf, or JSON
//! `{"code":3,"message":"..."}`); when the request's Content-Type is not one of the two, the
//! body is plain text.

use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use prost::Message;
use tonic::Code;

use crate::limits::{BudgetExhausted, retry_after_seconds};
use crate::pipeline::router::LaneFull;
use crate::receiver::otlp::body::BodyError;
use crate::receiver::otlp::codec::{DecodeError, Format};

/// Why a request was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum ReceiveError {
    #[error("not found: OTLP/HTTP accepts POST /v1/traces, /v1/logs and /v1/metrics")]
    NotFound,
    #[error("method not allowed: OTLP/HTTP accepts POST")]
    MethodNotAllowed,
    #[error("unsupported Content-Type: send application/x-protobuf or application/json")]
    UnsupportedMediaType,
    #[error("unsupported content encoding: send gzip, zstd or identity")]
    UnsupportedEncoding,
    #[error(transparent)]
    Body(#[from] BodyError),
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// A gRPC message tonic could not unframe or decompress (it answered before the handler).
    #[error("{message}")]
    GrpcFrame { decompressing: bool, message: String },
    #[error(transparent)]
    LaneFull(#[from] LaneFull),
    /// The memory budget has no room for this request now.
    #[error("{source}; retry later")]
    OverBudget { source: BudgetExhausted, retry_after: Duration },
    /// The client did not send the whole body within the body timeout.
    #[error("the request body did not arrive within {0:?}")]
    BodyTimeout(Duration),
    /// A bug: a decoding task failed.
    #[error("internal error: {0}")]
    Internal(String),
}

/// What a refusal for memory says to wait when no configured value reached it.
const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(1);

/// The encoded accepted values of `Accept-Encoding` / `grpc-accept-encoding`.
const ACCEPTED_ENCODINGS: &str = "gzip, zstd, identity";
const GRPC_ACCEPTED_ENCODINGS: &str = "gzip,zstd,identity";

impl ReceiveError {
    /// The `reason` label under which the request is counted.
    pub fn reason(&self) -> &'static str {
        match self {
            ReceiveError::NotFound => "not_found",
            ReceiveError::MethodNotAllowed => "method_not_allowed",
            ReceiveError::UnsupportedMediaType => "unsupported_media_type",
            ReceiveError::UnsupportedEncoding => "unsupported_encoding",
            ReceiveError::Body(BodyError::TooLarge { .. }) => "too_large",
            ReceiveError::Body(BodyError::Corrupt { .. }) => "bad_encoding",
            ReceiveError::Body(BodyError::Read(_)) => "read_failed",
            ReceiveError::Body(BodyError::OverBudget(_)) | ReceiveError::OverBudget { .. } => "memory_limit",
            ReceiveError::BodyTimeout(_) => "body_timeout",
            ReceiveError::Decode(DecodeError::InvalidId(_)) => "invalid_id",
            ReceiveError::Decode(DecodeError::ResourceGrowth(_)) => "too_large",
            ReceiveError::Decode(_) => "malformed",
            ReceiveError::GrpcFrame { decompressing: true, .. } => "bad_encoding",
            ReceiveError::GrpcFrame { decompressing: false, .. } => "malformed",
            ReceiveError::LaneFull(_) => "queue_full",
            ReceiveError::Internal(_) => "internal",
        }
    }

    /// Whether the request was refused for lack of room (to be retried), not rejected as bad.
    pub fn is_refusal(&self) -> bool {
        matches!(self, ReceiveError::LaneFull(_))
    }

    pub fn http_status(&self) -> StatusCode {
        match self {
            ReceiveError::NotFound => StatusCode::NOT_FOUND,
            ReceiveError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ReceiveError::UnsupportedMediaType | ReceiveError::UnsupportedEncoding => {
                StatusCode::UNSUPPORTED_MEDIA_TYPE
            }
            ReceiveError::Body(BodyError::TooLarge { .. }) | ReceiveError::Decode(DecodeError::ResourceGrowth(_)) => {
                StatusCode::PAYLOAD_TOO_LARGE
            }
            ReceiveError::Body(BodyError::OverBudget(_)) => StatusCode::TOO_MANY_REQUESTS,
            ReceiveError::Body(_) | ReceiveError::Decode(_) | ReceiveError::GrpcFrame { .. } => StatusCode::BAD_REQUEST,
            ReceiveError::LaneFull(_) | ReceiveError::OverBudget { .. } => StatusCode::TOO_MANY_REQUESTS,
            ReceiveError::BodyTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            ReceiveError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn grpc_code(&self) -> Code {
        match self {
            ReceiveError::NotFound | ReceiveError::UnsupportedEncoding => Code::Unimplemented,
            ReceiveError::MethodNotAllowed | ReceiveError::UnsupportedMediaType => Code::InvalidArgument,
            ReceiveError::Body(BodyError::TooLarge { .. } | BodyError::OverBudget(_))
            | ReceiveError::Decode(DecodeError::ResourceGrowth(_))
            | ReceiveError::LaneFull(_)
            | ReceiveError::OverBudget { .. } => Code::ResourceExhausted,
            ReceiveError::BodyTimeout(_) => Code::DeadlineExceeded,
            ReceiveError::Body(_) | ReceiveError::Decode(_) | ReceiveError::GrpcFrame { .. } => Code::InvalidArgument,
            ReceiveError::Internal(_) => Code::Internal,
        }
    }

    /// How long the client should wait before retrying, when it should.
    fn retry_after(&self) -> Option<Duration> {
        match self {
            ReceiveError::LaneFull(full) => Some(full.retry_after),
            ReceiveError::OverBudget { retry_after, .. } => Some(*retry_after),
            ReceiveError::Body(BodyError::OverBudget(_)) => Some(DEFAULT_RETRY_AFTER),
            _ => None,
        }
    }

    /// The HTTP answer. `format` is the request's encoding, when it named a supported one.
    pub fn into_http_response(self, format: Option<Format>) -> Response {
        let status = self.http_status();
        let mut response = match format {
            Some(format) => status_body(format, self.grpc_code(), &self.to_string(), self.retry_after()),
            None => plain_text(self.to_string()),
        };
        *response.status_mut() = status;
        let headers = response.headers_mut();
        match &self {
            ReceiveError::MethodNotAllowed => {
                headers.insert(header::ALLOW, HeaderValue::from_static("POST"));
            }
            ReceiveError::UnsupportedEncoding => {
                headers.insert(header::ACCEPT_ENCODING, HeaderValue::from_static(ACCEPTED_ENCODINGS));
            }
            _ => {
                if let Some(delay) = self.retry_after() {
                    headers.insert(header::RETRY_AFTER, HeaderValue::from(retry_after_seconds(delay)));
                }
            }
        }
        response
    }

    /// The gRPC answer; a full lane carries a `google.rpc.RetryInfo` detail.
    pub fn into_grpc_status(self) -> tonic::Status {
        let code = self.grpc_code();
        let message = self.to_string();
        let mut status = match self.retry_after() {
            Some(delay) => {
                let details = rpc::GoogleRpcStatus::new(code, &message).with_retry_info(delay).encode_to_vec();
                tonic::Status::with_details(code, message, details.into())
            }
            None => tonic::Status::new(code, message),
        };
        if matches!(self, ReceiveError::UnsupportedEncoding) {
            status
                .metadata_mut()
                .insert("grpc-accept-encoding", tonic::metadata::MetadataValue::from_static(GRPC_ACCEPTED_ENCODINGS));
        }
        status
    }

    /// Classifies a status tonic answered with before our handler saw the request (framing,
    /// decompression, size limit, unsupported `grpc-encoding`).
    /// A body error, with the memory budget's refusal told to retry after `retry_after`.
    pub fn from_body(error: BodyError, retry_after: Duration) -> ReceiveError {
        match error {
            BodyError::OverBudget(source) => ReceiveError::OverBudget { source, retry_after },
            other => ReceiveError::Body(other),
        }
    }

    pub fn from_grpc_transport(status: &tonic::Status, limit: usize) -> ReceiveError {
        let message = status.message();
        match status.code() {
            // tonic: "decoded message length too large" (OUT_OF_RANGE, which OTLP clients
            // would retry) and "size limit exceeded while decompressing" (RESOURCE_EXHAUSTED).
            Code::OutOfRange | Code::ResourceExhausted => ReceiveError::Body(BodyError::TooLarge { limit }),
            Code::Unimplemented => ReceiveError::UnsupportedEncoding,
            _ => ReceiveError::GrpcFrame {
                decompressing: message.starts_with("Error decompressing"),
                message: message.to_owned(),
            },
        }
    }
}

fn plain_text(message: String) -> Response {
    let mut response = Response::new(Body::from(message));
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    response
}

/// A `google.rpc.Status` body in the request's encoding.
fn status_body(format: Format, code: Code, message: &str, retry_after: Option<Duration>) -> Response {
    let body = match format {
        Format::Protobuf => {
            let mut status = rpc::GoogleRpcStatus::new(code, message);
            if let Some(delay) = retry_after {
                status = status.with_retry_info(delay);
            }
            status.encode_to_vec()
        }
        Format::Json => {
            let mut status = serde_json::json!({ "code": code as i32, "message": message });
            if let Some(delay) = retry_after {
                status["details"] = serde_json::json!([{
                    "@type": rpc::RETRY_INFO_TYPE_URL,
                    "retryDelay": rpc::json_duration(delay),
                }]);
            }
            status.to_string().into_bytes()
        }
    };
    let mut response = Response::new(Body::from(body));
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(format.content_type()));
    response
}

/// The few `google.rpc` / `google.protobuf` messages the receivers answer with, encoded with
/// prost (the generated OTLP crate does not include them).
pub mod rpc {
    use std::time::Duration;

    use prost::Message;

    pub const RETRY_INFO_TYPE_URL: &str = "type.googleapis.com/google.rpc.RetryInfo";

    /// `google.rpc.Status` (not `tonic::Status`, which is what tonic answers with).
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct GoogleRpcStatus {
        #[prost(int32, tag = "1")]
        pub code: i32,
        #[prost(string, tag = "2")]
        pub message: String,
        #[prost(message, repeated, tag = "3")]
        pub details: Vec<Any>,
    }

    /// `google.protobuf.Any`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Any {
        #[prost(string, tag = "1")]
        pub type_url: String,
        #[prost(bytes = "vec", tag = "2")]
        pub value: Vec<u8>,
    }

    /// `google.rpc.RetryInfo`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct RetryInfo {
        #[prost(message, optional, tag = "1")]
        pub retry_delay: Option<ProtoDuration>,
    }

    /// `google.protobuf.Duration`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ProtoDuration {
        #[prost(int64, tag = "1")]
        pub seconds: i64,
        #[prost(int32, tag = "2")]
        pub nanos: i32,
    }

    impl GoogleRpcStatus {
        pub fn new(code: tonic::Code, message: &str) -> GoogleRpcStatus {
            GoogleRpcStatus { code: code as i32, message: message.to_owned(), details: Vec::new() }
        }

        /// Adds a `RetryInfo` detail asking the client to wait `delay`.
        pub fn with_retry_info(mut self, delay: Duration) -> GoogleRpcStatus {
            let retry = RetryInfo { retry_delay: Some(ProtoDuration::from(delay)) };
            self.details.push(Any { type_url: RETRY_INFO_TYPE_URL.to_owned(), value: retry.encode_to_vec() });
            self
        }

        /// The `RetryInfo` delay among the details, if there is one.
        pub fn retry_delay(&self) -> Option<Duration> {
            let detail = self.details.iter().find(|any| any.type_url == RETRY_INFO_TYPE_URL)?;
            let delay = RetryInfo::decode(&detail.value[..]).ok()?.retry_delay?;
            Some(Duration::new(u64::try_from(delay.seconds).ok()?, u32::try_from(delay.nanos).ok()?))
        }
    }

    impl From<Duration> for ProtoDuration {
        fn from(delay: Duration) -> Self {
            ProtoDuration {
                seconds: i64::try_from(delay.as_secs()).unwrap_or(i64::MAX),
                nanos: i32::try_from(delay.subsec_nanos()).unwrap_or(0),
            }
        }
    }

    /// A duration as proto3 JSON writes it: `"1s"`, `"0.250s"`.
    pub fn json_duration(delay: Duration) -> String {
        match delay.subsec_millis() {
            0 => format!("{}s", delay.as_secs()),
            millis => format!("{}.{millis:03}s", delay.as_secs()),
        }
    }
}

#[cfg(test)]
mod tests {
    use http_body_util::BodyExt;

    use super::*;

    fn lane_full() -> ReceiveError {
        ReceiveError::LaneFull(LaneFull {
            destination: crate::model::Destination::Local,
            retry_after: Duration::from_millis(1500),
        })
    }

    async fn body_of(response: Response) -> Vec<u8> {
        response.into_body().collect().await.expect("in-memory body").to_bytes().to_vec()
    }

    #[tokio::test]
    async fn a_full_lane_is_a_429_with_retry_after_and_retry_info() {
        let response = lane_full().into_http_response(Some(Format::Protobuf));
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()[header::RETRY_AFTER], "2");
        let status = rpc::GoogleRpcStatus::decode(&body_of(response).await[..]).expect("a google.rpc.Status");
        assert_eq!(status.code, Code::ResourceExhausted as i32);
        assert_eq!(status.retry_delay(), Some(Duration::from_millis(1500)));
    }

    #[tokio::test]
    async fn json_errors_are_a_json_status() {
        let response = lane_full().into_http_response(Some(Format::Json));
        assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
        let status: serde_json::Value = serde_json::from_slice(&body_of(response).await).expect("JSON");
        assert_eq!(status["code"], 8);
        assert_eq!(status["details"][0]["@type"], rpc::RETRY_INFO_TYPE_URL);
        assert_eq!(status["details"][0]["retryDelay"], "1.500s");
    }

    #[tokio::test]
    async fn errors_without_a_known_format_are_plain_text() {
        let response = ReceiveError::MethodNotAllowed.into_http_response(None);
        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(response.headers()[header::ALLOW], "POST");
        assert!(response.headers()[header::CONTENT_TYPE].to_str().is_ok_and(|v| v.starts_with("text/plain")));
        assert!(String::from_utf8(body_of(response).await).is_ok_and(|text| text.contains("POST")));
    }

    #[test]
    fn a_full_lane_is_resource_exhausted_with_retry_info_in_grpc() {
        let status = lane_full().into_grpc_status();
        assert_eq!(status.code(), Code::ResourceExhausted);
        let details = rpc::GoogleRpcStatus::decode(status.details()).expect("status details");
        assert_eq!(details.retry_delay(), Some(Duration::from_millis(1500)));
    }

    #[test]
    fn too_large_is_resource_exhausted_without_retry_info() {
        let status = ReceiveError::Body(BodyError::TooLarge { limit: 10 }).into_grpc_status();
        assert_eq!(status.code(), Code::ResourceExhausted);
        assert!(status.details().is_empty());
    }

    #[test]
    fn tonic_transport_errors_are_reclassified() {
        let too_large = tonic::Status::out_of_range("Error, decoded message length too large");
        assert_eq!(ReceiveError::from_grpc_transport(&too_large, 5).reason(), "too_large");
        let corrupt = tonic::Status::internal("Error decompressing: invalid gzip header");
        let error = ReceiveError::from_grpc_transport(&corrupt, 5);
        assert_eq!((error.reason(), error.grpc_code()), ("bad_encoding", Code::InvalidArgument));
        let encoding = tonic::Status::unimplemented("Content is compressed with `br` which isn't supported");
        let status = ReceiveError::from_grpc_transport(&encoding, 5).into_grpc_status();
        assert_eq!(status.code(), Code::Unimplemented);
        assert!(status.metadata().get("grpc-accept-encoding").is_some());
    }

    #[tokio::test]
    async fn no_room_in_the_memory_budget_is_a_429_with_retry_after() {
        let source = BudgetExhausted { wanted: 10, in_use: 95, limit: 100 };
        let error = ReceiveError::from_body(BodyError::OverBudget(source), Duration::from_secs(3));
        assert_eq!(error.reason(), "memory_limit");
        let response = error.into_http_response(Some(Format::Protobuf));
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()[header::RETRY_AFTER], "3");
        let status = rpc::GoogleRpcStatus::decode(&body_of(response).await[..]).expect("google.rpc.Status");
        assert_eq!(status.retry_delay(), Some(Duration::from_secs(3)));
    }

    #[test]
    fn no_room_in_the_memory_budget_is_resource_exhausted_with_retry_info_in_grpc() {
        let source = BudgetExhausted { wanted: 10, in_use: 95, limit: 100 };
        let status = ReceiveError::OverBudget { source, retry_after: Duration::from_secs(2) }.into_grpc_status();
        assert_eq!(status.code(), Code::ResourceExhausted);
        let details = rpc::GoogleRpcStatus::decode(status.details()).expect("details");
        assert_eq!(details.retry_delay(), Some(Duration::from_secs(2)));
    }
}
