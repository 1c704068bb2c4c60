//! Destinations. Each one implements [`Exporter`]: it turns batched items into requests
//! (translating on the lane's own task) and sends one request at a time; the lane around it
//! does the queueing, batching, parallel senders and retries.

pub(crate) mod aws_otlp;
pub(crate) mod cloudwatch_logs;
pub(crate) mod compress;
pub(crate) mod honeycomb;
pub(crate) mod https_client;
pub mod local;
pub(crate) mod otlp_body;
pub(crate) mod rollbar;
mod settings;
pub(crate) mod xray;

use std::future::Future;
use std::time::Duration;

use crate::model::{LossReason, OtlpRequest, Payload, SharedBatch, Signal, Undecodable};

/// A destination, as seen by its lane.
pub trait Exporter: Send + Sync + 'static {
    /// One call to the destination.
    type Request: Send + 'static;

    /// Turns a batch of one signal into requests, translating and splitting to the
    /// destination's limits. Items that can never be sent are reported, not silently dropped.
    fn build(&self, signal: Signal, batches: &[SharedBatch]) -> Built<Self::Request>;

    /// Items in a request, for counting what was sent or lost.
    fn items(request: &Self::Request) -> usize;

    /// Sends one request. On a retryable error the lane calls again with the same request,
    /// which the exporter may have narrowed (e.g. to the documents X-Ray did not process).
    fn send(&self, request: &mut Self::Request) -> impl Future<Output = Result<Sent, ExportError>> + Send;
}

/// The requests built from a batch, and what could not be made into one.
#[derive(Debug)]
pub struct Built<R> {
    pub requests: Vec<R>,
    pub rejected: Vec<Rejected>,
}

impl<R> Built<R> {
    pub fn requests(requests: Vec<R>) -> Self {
        Built { requests, rejected: Vec::new() }
    }
}

/// Items refused for good, with a reason for the metrics label and one for the log.
#[derive(Debug, Clone)]
pub struct Rejected {
    pub items: usize,
    /// The metrics label.
    pub reason: LossReason,
    /// For the WARN line: which item and why.
    pub detail: String,
}

impl Rejected {
    /// A batch whose OTLP request did not decode when this destination needed its items.
    pub fn undecodable(items: usize, error: &Undecodable) -> Self {
        Rejected { items, reason: LossReason::Undecodable, detail: error.to_string() }
    }
}

/// The decoded OTLP requests that `pick` finds in `batches`. A batch whose protobuf does not
/// decode is reported in `rejected` (counted by the lane), never silently skipped.
pub fn decoded_requests<'a, R: prost::Message + Default + 'a>(
    batches: &'a [SharedBatch],
    pick: impl Fn(&'a Payload) -> Option<&'a OtlpRequest<R>>,
    rejected: &mut Vec<Rejected>,
) -> Vec<&'a R> {
    let mut requests = Vec::with_capacity(batches.len());
    for batch in batches {
        let Some(request) = pick(&batch.payload) else { continue };
        match request.decoded() {
            Ok(request) => requests.push(request),
            Err(error) => rejected.push(Rejected::undecodable(batch.items, &error)),
        }
    }
    requests
}

/// The outcome of a successful call.
#[derive(Debug, Clone, Default)]
pub struct Sent {
    /// Items the destination took.
    pub accepted: usize,
    /// Items the destination refused for good inside a successful call (OTLP partial success,
    /// CloudWatch `rejectedLogEventsInfo`, X-Ray unprocessed segments that will not be retried).
    pub rejected: Vec<Rejected>,
    /// The destination could not take some items this time (X-Ray's retryable unprocessed
    /// segments): the exporter narrowed the request to them, and the lane retries it.
    pub retry_remaining: Option<String>,
}

impl Sent {
    pub fn all(accepted: usize) -> Self {
        Sent { accepted, rejected: Vec::new(), retry_remaining: None }
    }
}

/// Why a call failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ExportError {
    /// Try again later (throttling, 5xx, network); `retry_after` is the destination's own hint.
    #[error("{reason}")]
    Retryable { reason: String, retry_after: Option<Duration> },
    /// The destination called the data bad: do not retry.
    #[error("{reason}")]
    Permanent { reason: String, label: LossReason },
    /// A fault that heals once someone fixes it (the credentials were refused): the data is
    /// kept, the lane retries at its slowest retry interval without a time budget, and
    /// `/status` says what is wrong until a send succeeds.
    #[error("{reason}")]
    Blocked { reason: String },
}

impl ExportError {
    pub fn retryable(reason: impl Into<String>) -> Self {
        ExportError::Retryable { reason: reason.into(), retry_after: None }
    }

    pub fn permanent(label: LossReason, reason: impl Into<String>) -> Self {
        ExportError::Permanent { reason: reason.into(), label }
    }
}
