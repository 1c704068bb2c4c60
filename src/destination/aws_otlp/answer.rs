//! An AWS OTLP endpoint's answer turned into the lane's outcome. The status rules are
//! OTLP/HTTP's (shared with Honeycomb: 2xx with `partial_success`, 429/5xx retried with
//! `Retry-After`, 401/403 refused credentials, kept and retried slowly until fixed, other 4xx
//! refused); AWS's 403 is also shown on `/status`, and every call logs one INFO line as the X-Ray daemon does, partial rejections a
//! rate-limited WARN.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::client::{OtlpAnswer, PostError};
use crate::destination::honeycomb;
use crate::destination::{ExportError, Sent};
use crate::model::{Destination, LossReason, Signal};
use crate::telemetry::ratelimit::LogLimiter;
use crate::telemetry::status::DestinationStatus;

/// Settles the answers of one destination's calls.
pub(crate) struct Settler {
    destination: Destination,
    /// "spans" or "log records", for the log lines.
    items_name: &'static str,
    status: Arc<DestinationStatus>,
    partial_log: LogLimiter,
}

impl Settler {
    pub(crate) fn new(destination: Destination, items_name: &'static str, status: Arc<DestinationStatus>) -> Self {
        Settler { destination, items_name, status, partial_log: LogLimiter::new(Duration::from_secs(10)) }
    }

    /// The outcome of a call that `target` (e.g. the group and stream) answered.
    pub(crate) fn settle(
        &self,
        signal: Signal,
        items: usize,
        target: &str,
        answer: &OtlpAnswer,
        elapsed: Duration,
    ) -> Result<Sent, ExportError> {
        let code = answer.status.as_u16();
        let outcome =
            honeycomb::classify(signal, items, answer.status, &answer.headers, &answer.body, SystemTime::now());
        let (destination, what, seconds) = (self.destination, self.items_name, elapsed.as_secs_f64());
        match &outcome {
            Ok(sent) if sent.rejected.is_empty() => {
                tracing::info!(destination = %destination, "Successfully sent batch of {items} {what}{target} ({seconds:.3} seconds)");
            }
            Ok(sent) => {
                let refused: usize = sent.rejected.iter().map(|r| r.items).sum();
                tracing::info!(destination = %destination, "Sent batch of {items} {what}{target} but {refused} were rejected ({seconds:.3} seconds)");
                if let Some(suppressed) = self.partial_log.check() {
                    let detail = sent.rejected.first().map_or("", |r| r.detail.as_str());
                    tracing::warn!(destination = %destination, rejected = refused, suppressed, detail, "{destination} rejected part of a request (OTLP partial success)");
                }
            }
            // Refused credentials: the lane keeps the data and retries slowly until they are fixed.
            Err(ExportError::Blocked { reason }) => {
                self.status.record_problem(format!("AWS refused the request's credentials (HTTP {code}): {reason}"));
            }
            Err(_) => {}
        }
        outcome
    }
}

/// A request that got no answer: retried, unless it could not be made at all.
pub(crate) fn unanswered(error: PostError) -> ExportError {
    match error {
        PostError::Invalid(_) => ExportError::permanent(LossReason::InvalidRequest, error.to_string()),
        PostError::NoCredentials(_) | PostError::NoAnswer(_) | PostError::Failed(_) => {
            ExportError::retryable(error.to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    use http::{HeaderMap, StatusCode};
    use opentelemetry_proto::tonic::collector::trace::v1::{ExportTracePartialSuccess, ExportTraceServiceResponse};
    use prost::Message;

    use super::*;

    fn settler() -> Settler {
        let status = Arc::new(DestinationStatus::new(Destination::Xray, true, "test", vec!["traces"]));
        Settler::new(Destination::Xray, "spans", status)
    }

    fn answer(status: u16, body: Vec<u8>) -> OtlpAnswer {
        OtlpAnswer { status: StatusCode::from_u16(status).unwrap(), headers: HeaderMap::new(), body: body.into() }
    }

    fn problem(settler: &Settler) -> serde_json::Value {
        serde_json::to_value(settler.status.report()).unwrap()["problem"].clone()
    }

    #[test]
    fn partial_success_counts_the_rejected_spans() {
        let partial = ExportTraceServiceResponse {
            partial_success: Some(ExportTracePartialSuccess { rejected_spans: 3, error_message: "too old".into() }),
        };
        let sent =
            settler().settle(Signal::Traces, 10, "", &answer(200, partial.encode_to_vec()), Duration::ZERO).unwrap();
        assert_eq!(sent.accepted, 7);
        assert_eq!((sent.rejected[0].items, sent.rejected[0].reason), (3, LossReason::PartialSuccess));
    }

    #[test]
    fn a_403_blocks_the_lane_and_is_shown_on_status() {
        let settler = settler();
        let body = br#"{"message":"The security token included in the request is invalid."}"#.to_vec();
        let error = settler.settle(Signal::Traces, 1, "", &answer(403, body), Duration::ZERO).unwrap_err();
        assert!(matches!(error, ExportError::Blocked { .. }), "{error:?}");
        let problem = problem(&settler);
        assert!(problem.as_str().unwrap().contains("HTTP 403"), "{problem}");
        assert!(problem.as_str().unwrap().contains("security token"), "{problem}");
    }

    #[test]
    fn throttling_is_retried_and_leaves_status_alone() {
        let settler = settler();
        let error = settler.settle(Signal::Traces, 1, "", &answer(429, b"slow down".to_vec()), Duration::ZERO);
        assert!(matches!(error, Err(ExportError::Retryable { .. })));
        assert_eq!(problem(&settler), serde_json::Value::Null);
    }

    #[test]
    fn missing_credentials_are_retried_and_a_bad_request_is_not() {
        assert!(matches!(unanswered(PostError::NoCredentials("none".into())), ExportError::Retryable { .. }));
        assert!(matches!(unanswered(PostError::Invalid("bad".into())), ExportError::Permanent { .. }));
    }
}
