//! Honeycomb's answers turned into the lane's outcome: what was sent, what was refused for
//! good, what is worth retrying and when, and what needs a person (a rejected API key).

use std::time::{Duration, SystemTime};

use http::StatusCode;
use http::header::{HeaderMap, RETRY_AFTER};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceResponse;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceResponse;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use prost::Message;

use super::client::PostError;
use crate::destination::{ExportError, Rejected, Sent};
use crate::model::{LossReason, Signal};

/// Turns Honeycomb's answer into the lane's outcome.
pub(crate) fn classify(
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
        // A rotated or revoked key is fixed by a person: the data waits, it is not discarded.
        401 | 403 => Err(ExportError::Blocked { reason }),
        _ => Err(ExportError::permanent(LossReason::Rejected, reason)),
    }
}

/// A request that got no answer: retried, unless it could not be made at all.
pub(crate) fn unanswered(error: PostError) -> ExportError {
    match error {
        PostError::Invalid(_) => ExportError::permanent(LossReason::InvalidRequest, error.to_string()),
        PostError::NoAnswer(_) | PostError::Failed(_) => ExportError::retryable(error.to_string()),
    }
}

/// The `/status` problem for an answer that refuses the API key.
pub(crate) fn key_problem(status: StatusCode) -> Option<String> {
    matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN)
        .then(|| format!("Honeycomb rejected the API key (HTTP {})", status.as_u16()))
}

/// The message of a successful answer's `partial_success` that rejected nothing: a warning
/// worth logging.
pub(crate) fn acceptance_warning(signal: Signal, body: &[u8]) -> Option<String> {
    match partial_success(signal, body) {
        Some((count, message)) if count <= 0 && !message.is_empty() => Some(message),
        _ => None,
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
pub(crate) fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
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
    use http::header::{HeaderName, HeaderValue};
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTracePartialSuccess;

    use super::*;

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
    fn a_rejected_key_blocks_the_lane_instead_of_discarding_the_data() {
        for code in [401, 403] {
            let status = StatusCode::from_u16(code).unwrap();
            let error = classify(Signal::Traces, 1, status, &HeaderMap::new(), b"unknown API key", now()).unwrap_err();
            assert!(matches!(error, ExportError::Blocked { .. }), "{code}: {error:?}");
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
    fn error_messages_are_shortened_on_a_character_boundary() {
        let long = "é".repeat(300);
        let message = error_message(long.as_bytes());
        assert_eq!(message.chars().count(), 201);
    }
}
