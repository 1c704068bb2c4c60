//! How batches become Rollbar requests: one item per request (the item API takes one), made
//! from exception span events and ERROR log records, or relayed as the SDK sent it; an
//! exception already sent (as a span event or as a log record) is not sent twice.

use bytes::Bytes;
use opentelemetry_proto::tonic::logs::v1::ResourceLogs;

use super::recent::{RecentItems, Source};
use super::relayed;
use crate::destination::{Built, decoded_requests};
use crate::model::{Payload, SharedBatch, Signal};
use crate::translate::otlp_to_rollbar::{RollbarItem, RollbarTranslation};

/// One item to post.
#[derive(Debug)]
pub(crate) struct RollbarRequest {
    /// `{"data": …}` JSON.
    pub(super) body: Bytes,
}

/// The requests for a batch of one signal.
pub(super) fn build(
    translation: &RollbarTranslation,
    recent: &RecentItems,
    signal: Signal,
    batches: &[SharedBatch],
) -> Built<RollbarRequest> {
    let mut rejected = Vec::new();
    let mut items: Vec<RollbarItem> = Vec::new();
    let mut requests = Vec::new();
    match signal {
        Signal::Traces => {
            for request in decoded_requests(batches, Payload::otlp_traces, &mut rejected) {
                translation.spans(&request.resource_spans, &mut items);
            }
        }
        Signal::Logs => {
            for request in decoded_requests(batches, Payload::otlp_logs, &mut rejected) {
                translate_or_relay(translation, &request.resource_logs, &mut items, &mut requests);
            }
        }
        Signal::Metrics => {}
    }
    let source = if signal == Signal::Traces { Source::SpanEvent } else { Source::LogRecord };
    requests.extend(
        items
            .into_iter()
            .filter(|item| recent.should_send(item.key, source))
            .map(|item| RollbarRequest { body: Bytes::from(item.body) }),
    );
    Built { requests, rejected }
}

/// Relayed items go as they came; other log records are translated.
fn translate_or_relay(
    translation: &RollbarTranslation,
    resource_logs: &[ResourceLogs],
    items: &mut Vec<RollbarItem>,
    requests: &mut Vec<RollbarRequest>,
) {
    let relayed_scopes = || resource_logs.iter().flat_map(|r| &r.scope_logs).filter(|s| relayed::is_relayed(s));
    if relayed_scopes().next().is_none() {
        translation.logs(resource_logs, items);
        return;
    }
    for record in relayed_scopes().flat_map(|scope| &scope.log_records) {
        if let Some(item) = relayed::item_json(record) {
            requests.push(RollbarRequest { body: Bytes::copy_from_slice(item.as_bytes()) });
        }
    }
    let translated: Vec<ResourceLogs> = resource_logs
        .iter()
        .map(|resource| ResourceLogs {
            scope_logs: resource.scope_logs.iter().filter(|s| !relayed::is_relayed(s)).cloned().collect(),
            ..resource.clone()
        })
        .collect();
    translation.logs(&translated, items);
}
