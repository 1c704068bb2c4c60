//! X-Ray segment documents → OTLP spans, for OTLP destinations of X-Ray SDK traffic.
//!
//! The mapping follows the OpenTelemetry Collector's `awsxrayreceiver`, so spans look the same
//! as they would behind the collector, and the OTel X-Ray exporter turns them back into
//! equivalent segments. Each document becomes one `ResourceSpans` with one `ScopeSpans`
//! holding the document's span and one span per embedded subsegment (depth first).
//!
//! | X-Ray | OTLP |
//! |---|---|
//! | `trace_id` `1-5f84c7a1-e7d1852db8c4fd35d88bf49a` | trace id, 16 bytes `5f84c7a1e7d1852db8c4fd35d88bf49a` (embedded subsegments inherit it) |
//! | `id` (16 hex) | span id (8 bytes) |
//! | embedded subsegment | parent = the enclosing (sub)segment |
//! | `parent_id` of a segment / streamed subsegment | parent span id |
//! | `name` | span name |
//! | segment document | kind SERVER |
//! | subsegment, `namespace` `aws` / `remote` | kind CLIENT (`aws` also sets `aws.service` = name) |
//! | subsegment with `http.request.client_ip` | kind SERVER |
//! | other subsegments (`local`, no namespace) | kind INTERNAL |
//! | `start_time` / `end_time` (float seconds) | unix nanos, rounded to the microsecond; no `end_time` → end = start |
//! | `http.request.method` / `url` / `user_agent` / `client_ip` | `http.method` / `http.url` / `http.user_agent` / `http.client_ip` |
//! | `http.request.x_forwarded_for` | `aws.xray.x_forwarded_for` |
//! | `http.response.status` / `content_length` | `http.status_code` / `http.response_content_length` |
//! | HTTP status outside 100–399, `error`, `throttle`, `fault`, or a `cause` | status ERROR (else UNSET) |
//! | `cause` that is an exception id | status message |
//! | `cause.exceptions[]` | `exception` events at the span's end: `exception.type`, `exception.message`, `exception.stacktrace` (`Type: message` + `\tat label(path: line)` per frame), `aws.xray.exception.{id,remote,truncated,skipped,cause}` |
//! | `annotations` | attributes of the same type (string, bool, int, double) + `aws.xray.annotations` = their keys |
//! | `metadata.<ns>` | `aws.xray.metadata.<ns>` = the namespace as a JSON string |
//! | numeric `SampleRate` / `sampleRate` annotation or metadata key | attribute of that name, value untouched |
//! | `in_progress` | `aws.xray.inprogress` |
//! | `traced` | `aws.xray.traced` |
//! | `user` | `enduser.id` |
//! | `aws.account_id` / `operation` / `region` / `request_id` / `queue_url` / `table_name` / `table_names` / `retries` | `aws.account_id` / `aws.operation` / `aws.region` / `aws.request_id` / `aws.queue_url` / `aws.table_name` / `aws.table_names` / `aws.xray.retries` |
//! | `aws.xray.sampling_rule_name` | `aws.xray.sampling_rule_name` |
//! | `sql.url` | `db.connection_string` + `db.name` (else `sql.connection_string` → `db.connection_string`) |
//! | `sql.database_type` / `sanitized_query` / `user` | `db.system` / `db.statement` / `db.user` |
//! | `links[]` | span links |
//! | **resource:** segment `name` | `service.name` |
//! | streamed subsegment | `service.name` of its segment when that is in the same batch, else `unknown_service` |
//! | `service.version` / `runtime` / `runtime_version` | `service.version` / `process.runtime.name` / `process.runtime.version` |
//! | `aws.xray.sdk` ("X-Ray for Python") / `sdk_version` | `telemetry.sdk.name`, `telemetry.sdk.language` ("python"), `telemetry.sdk.version`, and as is: `aws.xray.sdk` / `aws.xray.sdk_version` |
//! | `origin` | `cloud.provider` "aws", `cloud.platform` (`aws_ec2`, `aws_ecs`, `aws_eks`, `aws_elastic_beanstalk`, `aws_lambda`, `aws_app_runner`) |
//! | `aws.account_id`, `aws.ec2.*`, `aws.ecs.*`, `aws.eks.*`, `aws.elastic_beanstalk.*`, `aws.cloudwatch_logs` | `cloud.account.id`, `host.*`, `container.*`, `aws.ecs.*`, `k8s.*`, `service.namespace` / `service.instance.id`, `aws.log.group.{names,arns}` |
//! | `resource_arn` | `aws.xray.resource_arn` |
//!
//! Where waggle differs from the `awsxrayreceiver`: a `local` or unknown subsegment namespace
//! (the Python SDK writes `local`) is INTERNAL instead of rejecting the document; `fault`,
//! `error` and `throttle` also set ERROR; in-progress spans end at their start instead of at
//! 0; exception events carry the span's end time instead of 0; a `sql.url` without a database
//! is kept instead of rejecting the document; `cloud.provider` is set only when the document
//! says it ran on AWS (the receiver writes "unknown" otherwise); a streamed subsegment's
//! `service.name` is its segment's name, not the subsegment's.
//!
//! A document that is not a segment (bad JSON, a missing `id`, `name` or `start_time`, an id
//! that is not hex) is reported as [`Rejected`] with reason `invalid`, never panics, and does
//! not affect the other documents.

mod attributes;
mod document;
mod ids;
mod resource;
mod span;
#[cfg(test)]
mod tests;

use std::collections::HashMap;

use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans};

use crate::destination::Rejected;
use crate::model::LossReason;
use crate::model::{Payload, SharedBatch, XraySegment};

use self::document::Segment;
use self::resource::{UNKNOWN_SERVICE, resource_attributes};
use self::span::{ConvertError, SpanRole, push_spans};

/// Converts every X-Ray document in a lane's batch at once, so a streamed subsegment finds
/// its segment even when they arrived in different datagrams.
pub fn convert_batches(batches: &[SharedBatch]) -> (Vec<ResourceSpans>, Vec<Rejected>) {
    convert(batches.iter().flat_map(|batch| match &batch.payload {
        Payload::XraySegments(segments) => segments.as_slice(),
        _ => &[],
    }))
}

/// Converts X-Ray SDK segment documents (with nested subsegments) to OTLP resource spans.
/// Documents that cannot be converted are reported in the second value.
pub fn convert<'a>(segments: impl IntoIterator<Item = &'a XraySegment>) -> (Vec<ResourceSpans>, Vec<Rejected>) {
    let segments: Vec<&XraySegment> = segments.into_iter().collect();
    let mut rejected = Vec::new();
    let documents: Vec<Option<Segment>> = segments
        .iter()
        .map(|segment| match serde_json::from_slice::<Segment>(&segment.body) {
            Ok(document) => Some(document),
            Err(error) => {
                rejected.push(rejection(segment, &ConvertError::Json(error)));
                None
            }
        })
        .collect();
    let services = ServiceNames::index(documents.iter().flatten());
    let mut converted = Vec::with_capacity(documents.len());
    for (segment, document) in segments.iter().copied().zip(&documents) {
        let Some(document) = document else { continue };
        match convert_document(document, &services) {
            Ok(resource_spans) => converted.push(resource_spans),
            Err(error) => rejected.push(rejection(segment, &error)),
        }
    }
    (converted, rejected)
}

fn rejection(segment: &XraySegment, error: &ConvertError) -> Rejected {
    Rejected { items: 1, reason: LossReason::Invalid, detail: format!("{} {}: {error}", segment.id, segment.trace_id) }
}

fn convert_document(document: &Segment, services: &ServiceNames<'_>) -> Result<ResourceSpans, ConvertError> {
    let role = if document.is_streamed_subsegment() { SpanRole::Subsegment } else { SpanRole::Segment };
    let mut spans = Vec::with_capacity(1 + document.subsegments().len());
    push_spans(document, None, None, role, &mut spans)?;
    let service_name = match role {
        SpanRole::Segment => document.name.as_deref(),
        SpanRole::Subsegment => services.of_streamed_subsegment(document),
    };
    let resource = Resource {
        attributes: resource_attributes(document, service_name.unwrap_or(UNKNOWN_SERVICE)),
        ..Default::default()
    };
    Ok(ResourceSpans {
        resource: Some(resource),
        scope_spans: vec![ScopeSpans { scope: None, spans, schema_url: String::new() }],
        schema_url: String::new(),
    })
}

/// Which service each (sub)segment id of a batch belongs to, so that streamed subsegments
/// (which carry no service information) get their segment's `service.name`. SDKs send the
/// streamed subsegments just before their segment, so they usually share a lane batch.
struct ServiceNames<'a> {
    /// (trace id, span id) → who owns the span.
    owners: HashMap<(&'a str, &'a str), Owner<'a>>,
}

enum Owner<'a> {
    /// A segment of this service (or one of its embedded subsegments).
    Service(&'a str),
    /// Part of a streamed subsegment whose own parent has this id.
    Parent(&'a str),
}

impl<'a> ServiceNames<'a> {
    /// Parent links followed at most, against cycles in malformed input.
    const MAX_HOPS: usize = 64;

    fn index(documents: impl Iterator<Item = &'a Segment>) -> Self {
        let mut owners = HashMap::new();
        for document in documents {
            let (Some(trace_id), Some(id)) = (document.trace_id.as_deref(), document.id.as_deref()) else { continue };
            if document.is_streamed_subsegment() {
                if let Some(parent_id) = document.parent_id.as_deref() {
                    owners.insert((trace_id, id), Owner::Parent(parent_id));
                }
                for subsegment in document.subsegments() {
                    index_embedded(&mut owners, trace_id, subsegment, &|| Owner::Parent(id));
                }
            } else if let Some(name) = document.name.as_deref() {
                owners.insert((trace_id, id), Owner::Service(name));
                for subsegment in document.subsegments() {
                    index_embedded(&mut owners, trace_id, subsegment, &|| Owner::Service(name));
                }
            }
        }
        ServiceNames { owners }
    }

    fn of_streamed_subsegment(&self, document: &Segment) -> Option<&'a str> {
        let trace_id = document.trace_id.as_deref()?;
        let mut id = document.parent_id.as_deref()?;
        for _ in 0..Self::MAX_HOPS {
            match self.owners.get(&(trace_id, id))? {
                Owner::Service(name) => return Some(name),
                Owner::Parent(parent) => id = parent,
            }
        }
        None
    }
}

fn index_embedded<'a>(
    owners: &mut HashMap<(&'a str, &'a str), Owner<'a>>,
    trace_id: &'a str,
    segment: &'a Segment,
    owner: &dyn Fn() -> Owner<'a>,
) {
    if let Some(id) = segment.id.as_deref() {
        owners.entry((trace_id, id)).or_insert_with(owner);
    }
    for subsegment in segment.subsegments() {
        index_embedded(owners, trace_id, subsegment, owner);
    }
}
