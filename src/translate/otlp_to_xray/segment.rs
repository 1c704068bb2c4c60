//! One span → one document: ids, kind, times, the blocks, and which attributes become
//! annotations or metadata.

use std::collections::HashSet;

use opentelemetry_proto::tonic::trace::v1::Span;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;

use super::annotations::Annotations;
use super::attributes::{Group, Key, SpanAttributes, as_str};
use super::aws::{ResourceContext, aws};
use super::cause::{Failure, cause};
use super::document::{AttributeMap, Document, Link};
use super::http::{flags, http, status_code};
use super::ids::{check_trace_id_time, epoch_seconds, xray_own_span_id, xray_parent_id, xray_span_id, xray_trace_id};
use super::metadata::{Metadata, MetadataBuilder, NAMESPACE_ATTRIBUTE_PREFIX};
use super::name::naming;
use super::outcome::{Untranslatable, XrayDocument};
use super::size::serialize_within_limit;
use super::sql::sql;

/// The translation settings, prepared once per request.
pub(super) struct Options<'o> {
    pub indexed: &'o HashSet<&'o str>,
    pub index_all: bool,
    pub validate_trace_id_time: bool,
    pub now_secs: u64,
}

/// A document, and whether its metadata was trimmed to fit.
pub(super) struct Made {
    pub document: XrayDocument,
    pub trimmed: bool,
}

/// Translates one span; `resource` is its resource, read once for all its spans.
pub(super) fn translate_span(
    span: &Span,
    resource: &ResourceContext<'_>,
    options: &Options<'_>,
) -> Result<Made, Untranslatable> {
    let trace_id = xray_trace_id(&span.trace_id)?;
    if options.validate_trace_id_time {
        check_trace_id_time(&span.trace_id, &trace_id, options.now_secs)?;
    }
    let id = xray_own_span_id(&span.span_id)?;
    let parent_id = xray_parent_id(&span.parent_span_id)?;
    let serialized = {
        let ids = Ids { trace_id: &trace_id, id: &id, parent_id: parent_id.as_deref() };
        let mut document = document(span, resource, options, ids);
        serialize_within_limit(&mut document)?
    };
    Ok(Made { document: XrayDocument { trace_id, id, json: serialized.json }, trimmed: serialized.trimmed })
}

#[derive(Clone, Copy)]
struct Ids<'a> {
    trace_id: &'a str,
    id: &'a str,
    parent_id: Option<&'a str>,
}

fn document<'a>(
    span: &'a Span,
    resource: &'a ResourceContext<'a>,
    options: &Options<'_>,
    ids: Ids<'a>,
) -> Document<'a> {
    let kind = SpanKind::try_from(span.kind).unwrap_or(SpanKind::Unspecified);
    let is_subsegment = kind != SpanKind::Server && ids.parent_id.is_some();
    let is_segment = !is_subsegment;
    let attributes = SpanAttributes::index(&span.attributes);
    let naming = naming(&span.name, kind, &attributes, resource.service_name, is_subsegment);
    let status = span.status.as_ref();
    let failed = status.is_some_and(|status| status.code == StatusCode::Error as i32);
    let flags = flags(status_code(&attributes), failed);
    let http = http(kind, &attributes);
    let (aws, rpc_method_used) = aws(&attributes, resource, is_segment);
    let sql = sql(&attributes);
    let failure = Failure {
        kind,
        language: resource.language,
        failed,
        status_message: status.map(|status| status.message.as_str()).unwrap_or_default(),
        status_text: attributes.str(Key::HttpStatusText),
    };
    let consumed = Consumed {
        http: http.is_some(),
        sql: sql.is_some(),
        aws: resource.on_aws,
        rpc_method: rpc_method_used,
        name_source: naming.source,
    };
    let (annotations, metadata) = annotations_and_metadata(&attributes, resource, is_segment, &consumed, options);
    let in_progress = span.end_time_unix_nano == 0 || attributes.bool(Key::XrayInProgress) == Some(true);
    Document {
        name: naming.name,
        id: ids.id,
        trace_id: ids.trace_id,
        parent_id: ids.parent_id,
        document_type: is_subsegment.then_some("subsegment"),
        start_time: epoch_seconds(span.start_time_unix_nano),
        end_time: (!in_progress).then(|| epoch_seconds(span.end_time_unix_nano)),
        in_progress,
        namespace: naming.namespace,
        origin: resource.origin.filter(|_| is_segment),
        user: attributes.str(Key::EnduserId),
        error: flags.error,
        throttle: flags.throttle,
        fault: flags.fault,
        traced: attributes.bool(Key::XrayTraced),
        http,
        aws,
        sql,
        service: resource.service.as_ref().filter(|_| is_segment),
        cause: cause(&span.events, &failure),
        annotations,
        metadata,
        links: links(span),
    }
}

/// Which known attributes a block of the document already holds.
struct Consumed {
    http: bool,
    sql: bool,
    aws: bool,
    rpc_method: bool,
    name_source: Option<Key>,
}

impl Consumed {
    fn covers(&self, key: Key) -> bool {
        if self.name_source == Some(key) {
            return true;
        }
        match key.group() {
            Group::Keep => false,
            Group::Always => true,
            Group::Http => self.http,
            Group::Sql => self.sql,
            Group::Connection => self.http || self.sql,
            Group::Aws => self.aws,
            Group::RpcMethod => self.rpc_method,
        }
    }
}

/// Sorts the attributes not consumed by a block into annotations and metadata; on
/// segments the resource attributes follow as `otel.resource.<key>`.
fn annotations_and_metadata<'a>(
    attributes: &SpanAttributes<'a>,
    resource: &'a ResourceContext<'a>,
    is_segment: bool,
    consumed: &Consumed,
    options: &Options<'_>,
) -> (Annotations<'a>, Option<Metadata<'a>>) {
    let listed_by_span = attributes.strings(Key::XrayAnnotations);
    let explicitly_indexed = |key: &str| options.indexed.contains(key) || listed_by_span.contains(&key);
    let mut annotations = Annotations::default();
    let mut metadata = MetadataBuilder::default();
    for (attribute, known) in attributes.all.iter().zip(&attributes.keys) {
        let Some(value) = attribute.value.as_ref() else { continue };
        let key = attribute.key.as_str();
        let explicit = explicitly_indexed(key);
        let is_consumed = known.is_some_and(|known| consumed.covers(known));
        if is_consumed && !explicit {
            continue;
        }
        if !explicit
            && let Some(namespace) = key.strip_prefix(NAMESPACE_ATTRIBUTE_PREFIX).filter(|ns| !ns.is_empty())
            && let Some(json) = as_str(value)
        {
            metadata.namespace_json(key, namespace, json);
            continue;
        }
        let wanted = explicit || options.index_all;
        if !(wanted && annotations.add(key, value).is_ok()) {
            metadata.attribute(key, value);
        }
    }
    if is_segment {
        for (attribute, prefixed_key) in resource.attributes.iter().zip(&resource.metadata_keys) {
            let Some(value) = attribute.value.as_ref() else { continue };
            let wanted = options.index_all || explicitly_indexed(prefixed_key);
            if !(wanted && annotations.add(prefixed_key, value).is_ok()) {
                metadata.resource(prefixed_key, value);
            }
        }
    }
    (annotations, metadata.build())
}

/// Span links whose ids convert.
fn links(span: &Span) -> Vec<Link<'_>> {
    span.links
        .iter()
        .filter_map(|link| {
            Some(Link {
                trace_id: xray_trace_id(&link.trace_id).ok()?,
                id: xray_span_id(&link.span_id, "link span id").ok()?,
                attributes: AttributeMap(&link.attributes),
            })
        })
        .collect()
}
