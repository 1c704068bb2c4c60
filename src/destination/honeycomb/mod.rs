//! The Honeycomb destination: OTLP/HTTP protobuf to `{endpoint}/v1/{traces,logs,metrics}`,
//! compressed, with the API key in `x-honeycomb-team`. Works with any OTLP/HTTP backend.
//!
//! | answer | what waggle does |
//! |---|---|
//! | 2xx | sent; a `partial_success` counts its rejected items and logs the message at WARN |
//! | 429, 5xx, network error, timeout | retried with backoff; `Retry-After` or the `RateLimit` reset is a floor |
//! | 401, 403 | permanent: `/status` says "Honeycomb rejected the API key", WARN once a minute, data counted as failed |
//! | other 4xx | permanent: counted as failed with the status and Honeycomb's message |
//!
//! `settings` holds the keys, `setup` turns them into a client (or an off reason), `request`
//! builds the bodies, `client` sends them, `classify` reads the answers.

mod classify;
mod client;
mod migration;
mod request;
mod settings;
mod setup;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::destination::compress::Compression;
use crate::destination::{Built, ExportError, Exporter, Sent};
use crate::model::{SharedBatch, Signal};
use crate::telemetry::ratelimit::LogLimiter;
use crate::telemetry::status::DestinationStatus;

pub(crate) use classify::classify;
pub(crate) use client::{HoneycombClient, HyperClient, PostError, is_classic_key};
pub(crate) use migration::app_side_setup_hint;
pub(crate) use request::HoneycombRequest;
pub use settings::{HoneycombRegion, HoneycombSettings};
pub(crate) use setup::HoneycombError;
pub(crate) use setup::{HoneycombSetup, setup};

/// Sends OTLP to Honeycomb through a [`HoneycombClient`].
pub(crate) struct Honeycomb<C = HyperClient> {
    client: C,
    compression: Compression,
    max_request_size: usize,
    status: Arc<DestinationStatus>,
    key_warning: LogLimiter,
}

impl<C: HoneycombClient> Honeycomb<C> {
    pub(crate) fn new(client: C, settings: &HoneycombSettings, status: Arc<DestinationStatus>) -> Self {
        Honeycomb {
            client,
            compression: settings.compression,
            max_request_size: usize::try_from(settings.max_request_size.as_u64()).unwrap_or(usize::MAX),
            status,
            key_warning: LogLimiter::new(Duration::from_secs(60)),
        }
    }

    /// Says on `/status`, and at WARN once a minute, that Honeycomb refused the key.
    fn report_rejected_key(&self, problem: String, status: u16) {
        if let Some(suppressed) = self.key_warning.check() {
            tracing::warn!(destination = "honeycomb", status, suppressed, "{problem}; check HONEYCOMB_API_KEY");
        }
        self.status.record_problem(problem);
    }
}

impl<C: HoneycombClient> Exporter for Honeycomb<C> {
    type Request = HoneycombRequest;

    fn build(&self, signal: Signal, batches: &[SharedBatch]) -> Built<HoneycombRequest> {
        request::build(signal, batches, self.max_request_size, self.compression)
    }

    fn items(request: &HoneycombRequest) -> usize {
        request.items
    }

    async fn send(&self, request: &mut HoneycombRequest) -> Result<Sent, ExportError> {
        let response = self.client.post(request.signal, request.body.clone()).await.map_err(classify::unanswered)?;
        let (status, body) = (response.status, &response.body);
        let outcome = classify(request.signal, request.items, status, &response.headers, body, SystemTime::now());
        if let Some(problem) = classify::key_problem(status) {
            self.report_rejected_key(problem, status.as_u16());
        }
        if outcome.is_ok()
            && let Some(message) = classify::acceptance_warning(request.signal, body)
        {
            tracing::warn!(destination = "honeycomb", signal = %request.signal, %message, "Honeycomb accepted the data with a warning");
        }
        outcome
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::sync::Mutex;

    use bytes::Bytes;
    use http::StatusCode;
    use http::header::{HeaderName, HeaderValue, RETRY_AFTER};
    use opentelemetry_proto::tonic::collector::trace::v1::{
        ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
    };
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
    use prost::Message;

    use super::client::HoneycombResponse;
    use super::*;
    use crate::config::Secret;
    use crate::model::{Batch, Destination, LossReason};

    /// A [`HoneycombClient`] that answers from a script and keeps what was posted.
    #[derive(Default)]
    struct ScriptedClient {
        answers: Mutex<VecDeque<Result<HoneycombResponse, PostError>>>,
        posted: Mutex<Vec<(Signal, Bytes)>>,
    }

    impl ScriptedClient {
        fn answering(answer: Result<HoneycombResponse, PostError>) -> Self {
            ScriptedClient { answers: Mutex::new(VecDeque::from([answer])), ..ScriptedClient::default() }
        }
    }

    impl HoneycombClient for ScriptedClient {
        async fn post(&self, signal: Signal, body: Bytes) -> Result<HoneycombResponse, PostError> {
            self.posted.lock().unwrap().push((signal, body));
            self.answers.lock().unwrap().pop_front().expect("an answer is scripted")
        }
    }

    fn answer(status: u16, headers: &[(HeaderName, &str)], body: Vec<u8>) -> HoneycombResponse {
        HoneycombResponse {
            status: StatusCode::from_u16(status).unwrap(),
            headers: headers
                .iter()
                .map(|(name, value)| (name.clone(), HeaderValue::from_str(value).unwrap()))
                .collect(),
            body: body.into(),
        }
    }

    fn honeycomb(answer: Result<HoneycombResponse, PostError>) -> Honeycomb<ScriptedClient> {
        let settings = HoneycombSettings {
            api_key: Some(Secret::new("k")),
            compression: Compression::None,
            ..HoneycombSettings::default()
        };
        let status = Arc::new(DestinationStatus::new(Destination::Honeycomb, true, "test", vec!["traces"]));
        Honeycomb::new(ScriptedClient::answering(answer), &settings, status)
    }

    /// One request of `spans` spans, built by the exporter itself.
    fn traces_request(exporter: &Honeycomb<ScriptedClient>, spans: usize) -> HoneycombRequest {
        let span = |i: usize| Span {
            trace_id: vec![1; 16],
            span_id: vec![2; 8],
            name: format!("span-{i}"),
            ..Default::default()
        };
        let request = ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                scope_spans: vec![ScopeSpans { spans: (0..spans).map(span).collect(), ..Default::default() }],
                ..Default::default()
            }],
        };
        let len = request.encoded_len();
        let mut built = exporter.build(Signal::Traces, &[Arc::new(Batch::traces(request, len))]);
        assert!(built.rejected.is_empty());
        built.requests.pop().expect("one request")
    }

    fn status_problem(exporter: &Honeycomb<ScriptedClient>) -> serde_json::Value {
        serde_json::to_value(exporter.status.report()).unwrap()["problem"].clone()
    }

    #[tokio::test]
    async fn the_built_body_is_posted_for_its_signal() {
        let exporter = honeycomb(Ok(answer(200, &[], Vec::new())));
        let mut request = traces_request(&exporter, 3);
        let sent = exporter.send(&mut request).await.unwrap();
        assert_eq!(sent.accepted, 3);
        let posted = exporter.client.posted.lock().unwrap();
        let (signal, body) = &posted[0];
        assert_eq!(*signal, Signal::Traces);
        assert_eq!(
            ExportTraceServiceRequest::decode(body.as_ref()).unwrap().resource_spans[0].scope_spans[0].spans.len(),
            3
        );
    }

    #[tokio::test]
    async fn throttled_is_retryable_with_the_retry_after_hint() {
        let exporter = honeycomb(Ok(answer(429, &[(RETRY_AFTER, "7")], b"slow down".to_vec())));
        let mut request = traces_request(&exporter, 1);
        let error = exporter.send(&mut request).await.unwrap_err();
        let ExportError::Retryable { reason, retry_after } = error else { panic!("{error:?}") };
        assert_eq!((reason.as_str(), retry_after), ("HTTP 429: slow down", Some(Duration::from_secs(7))));
    }

    #[tokio::test]
    async fn a_server_error_is_retryable() {
        let exporter = honeycomb(Ok(answer(503, &[], b"unavailable".to_vec())));
        let mut request = traces_request(&exporter, 1);
        let error = exporter.send(&mut request).await.unwrap_err();
        assert!(matches!(error, ExportError::Retryable { retry_after: None, .. }), "{error:?}");
    }

    #[tokio::test]
    async fn no_answer_is_retryable() {
        let exporter = honeycomb(Err(PostError::NoAnswer(Duration::from_secs(10))));
        let mut request = traces_request(&exporter, 1);
        let error = exporter.send(&mut request).await.unwrap_err();
        let ExportError::Retryable { reason, .. } = error else { panic!("{error:?}") };
        assert_eq!(reason, "no answer within 10s");
    }

    #[tokio::test]
    async fn bad_credentials_block_the_lane_and_are_a_status_problem() {
        let exporter = honeycomb(Ok(answer(401, &[], b"unknown API key".to_vec())));
        let mut request = traces_request(&exporter, 1);
        let error = exporter.send(&mut request).await.unwrap_err();
        assert!(matches!(error, ExportError::Blocked { .. }), "{error:?}");
        assert_eq!(status_problem(&exporter), "Honeycomb rejected the API key (HTTP 401)");
    }

    #[tokio::test]
    async fn a_bad_request_is_rejected_with_the_message() {
        let exporter = honeycomb(Ok(answer(400, &[], b"span name too long".to_vec())));
        let mut request = traces_request(&exporter, 1);
        let error = exporter.send(&mut request).await.unwrap_err();
        let ExportError::Permanent { label, reason } = error else { panic!("{error:?}") };
        assert_eq!((label, reason.as_str()), (LossReason::Rejected, "HTTP 400: span name too long"));
        assert_eq!(status_problem(&exporter), serde_json::Value::Null);
    }

    #[tokio::test]
    async fn a_partial_rejection_counts_the_rejected_spans() {
        let partial = ExportTraceServiceResponse {
            partial_success: Some(ExportTracePartialSuccess { rejected_spans: 2, error_message: "too old".into() }),
        };
        let exporter = honeycomb(Ok(answer(200, &[], partial.encode_to_vec())));
        let mut request = traces_request(&exporter, 5);
        let sent = exporter.send(&mut request).await.unwrap();
        assert_eq!(sent.accepted, 3);
        let rejected = &sent.rejected[0];
        assert_eq!(
            (rejected.items, rejected.reason, rejected.detail.as_str()),
            (2, LossReason::PartialSuccess, "too old")
        );
    }
}
