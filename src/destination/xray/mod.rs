//! The AWS X-Ray destination: PutTraceSegments with at most 50 documents per call.
//!
//! Segments from X-Ray SDKs are sent exactly as received (the daemon header line removed);
//! OpenTelemetry spans are translated to segment documents here, on the lane's task
//! ([`crate::translate::otlp_to_xray`]). An X-Ray SDK segment is never also sent translated.
//! What X-Ray answers, per document, decides what happens next:
//!
//! | outcome | what waggle does |
//! |---|---|
//! | processed | counted as sent; one INFO line per call, as the daemon logs it |
//! | unprocessed, throttling or internal error | retried with backoff (only those documents) |
//! | unprocessed, anything else (`InvalidTraceId`, `MissingParam`, …) | counted as failed, WARN with id, trace id, code and message |
//! | a document over 64 KiB | refused before sending, counted, WARN with its id |
//! | the call throttled (429) or failed (5xx, network, timeout) | retried with backoff |
//! | the call refused for its credentials (`AccessDeniedException`, `UnrecognizedClientException`, other signature/credential codes, HTTP 403) | counted as failed (`reason="unauthorized"`), shown as a problem on `/status` |
//! | the call refused (other 4xx) | counted as failed with X-Ray's message |
//!
//! Failures are classified by [`crate::aws::classify`], the same way as CloudWatch Logs'.
//! The parts: [`settings`], [`request`] (a batch into calls), [`client`] (the calls X-Ray is
//! made, behind a trait), [`exporter`], [`telemetry`] (the daemon's PutTelemetryRecords) and
//! [`setup`] (built from settings and AWS access).

pub(crate) mod client;
pub(crate) mod exporter;
pub(crate) mod otlp;
pub(crate) mod request;
mod settings;
pub(crate) mod setup;
pub(crate) mod telemetry;
pub(crate) mod transaction_search;

pub use settings::{XrayProtocol, XraySettings};
