//! OTLP requests flattened into the store's rows, on the lane's task, ready for the writer.
//!
//! Every text value of a request (names, attribute JSON, resource JSON…) is appended to one
//! buffer and rows hold ranges into it, so flattening a span allocates nothing of its own; a
//! resource's or scope's text is written once and shared by all of its rows.

use std::collections::HashMap;

use opentelemetry_proto::tonic::common::v1::{InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::logs::v1::ResourceLogs;
use opentelemetry_proto::tonic::metrics::v1::{ResourceMetrics, metric};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, Span};
use rusqlite::ToSql;
use rusqlite::types::{ToSqlOutput, ValueRef};
use serde::Serialize;

use super::encode::{Attributes, DataPoints, Events, Hex, Links, Value};
use crate::destination::Rejected;
use crate::model::LossReason;

/// Bytes counted per row on top of its values: SQLite's record and cell headers and the row's
/// index entries. Measured so the counted total stays a little above the pages the database
/// really uses (within about 10% for one-span traces, logs, metrics and 5-span traces).
pub(super) const SPAN_ROW_OVERHEAD: u64 = 150;
/// A trace's summary row and its two index entries, counted for each request that has spans of
/// the trace (so a trace spread over many requests is counted a little high).
pub(super) const TRACE_ROW_OVERHEAD: u64 = 120;
pub(super) const LOG_ROW_OVERHEAD: u64 = 80;
pub(super) const METRIC_ROW_OVERHEAD: u64 = 120;

/// A range of the request's text buffer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Text {
    start: usize,
    end: usize,
}

impl Text {
    fn len(self) -> u64 {
        (self.end - self.start) as u64
    }
}

/// A text value bound as SQLite TEXT without copying or re-validating it.
pub(super) struct SqlText<'a>(&'a [u8]);

impl ToSql for SqlText<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(ValueRef::Text(self.0)))
    }
}

/// Everything one write transaction inserts.
#[derive(Debug, Default)]
pub(crate) struct Rows {
    /// Every text value of the request, back to back; all valid UTF-8.
    text: Vec<u8>,
    pub(super) traces: Vec<TraceRow>,
    pub(super) spans: Vec<SpanRow>,
    pub(super) logs: Vec<LogRow>,
    pub(super) metrics: Vec<MetricRow>,
}

/// The part of a trace's summary this request contributes; merged into the stored summary.
#[derive(Debug)]
pub(super) struct TraceRow {
    pub trace_id: [u8; 16],
    pub start_time: i64,
    pub end_time: i64,
    pub span_count: i64,
    /// Counted bytes of this request's spans of the trace and of the summary row.
    pub bytes: i64,
    /// The best root candidate: a span without a parent, else the earliest.
    pub root_name: Text,
    pub root_service: Option<Text>,
    pub root_has_parent: bool,
    pub root_start: i64,
}

#[derive(Debug)]
pub(super) struct SpanRow {
    /// The span's trace in [`Rows::traces`].
    pub trace_index: usize,
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    pub parent_span_id: Option<[u8; 8]>,
    pub name: Text,
    pub kind: i32,
    pub start_time: i64,
    pub end_time: i64,
    pub attributes: Text,
    pub resource: Text,
    pub service: Option<Text>,
    pub scope_name: Text,
    pub scope_version: Text,
    pub status_code: i32,
    pub status_message: Text,
    pub events: Text,
    pub links: Text,
    pub size: i64,
}

#[derive(Debug)]
pub(super) struct LogRow {
    /// `time_unix_nano`, or the observed time when the record has none: what logs are ordered by.
    pub time: i64,
    pub time_unix_nano: i64,
    pub observed_time_unix_nano: i64,
    pub severity_number: i32,
    pub severity_text: Text,
    pub body: Text,
    pub attributes: Text,
    pub resource: Text,
    pub service: Option<Text>,
    pub scope_name: Text,
    pub scope_version: Text,
    pub trace_id: Option<[u8; 16]>,
    pub span_id: Option<[u8; 8]>,
    pub size: i64,
}

#[derive(Debug)]
pub(super) struct MetricRow {
    /// The latest data point's time.
    pub time: i64,
    pub name: Text,
    pub description: Text,
    pub unit: Text,
    pub metric_type: &'static str,
    pub aggregation_temporality: Option<&'static str>,
    pub is_monotonic: Option<bool>,
    pub data_points: Text,
    pub resource: Text,
    pub service: Option<Text>,
    pub scope_name: Text,
    pub scope_version: Text,
    pub size: i64,
}

impl Rows {
    /// A text value for binding.
    pub(super) fn sql(&self, text: Text) -> SqlText<'_> {
        SqlText(self.text.get(text.start..text.end).unwrap_or_default())
    }

    /// An optional text value for binding (`NULL` when absent).
    pub(super) fn sql_opt(&self, text: Option<Text>) -> Option<SqlText<'_>> {
        text.map(|text| self.sql(text))
    }

    /// Counted bytes of every row (a trace's bytes include its spans').
    pub(crate) fn bytes(&self) -> u64 {
        let spans: i64 = self.traces.iter().map(|row| row.bytes).sum();
        let logs: i64 = self.logs.iter().map(|row| row.size).sum();
        let metrics: i64 = self.metrics.iter().map(|row| row.size).sum();
        u64::try_from(spans + logs + metrics).unwrap_or(0)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.spans.is_empty() && self.logs.is_empty() && self.metrics.is_empty()
    }

    fn push_str(&mut self, text: &str) -> Text {
        let start = self.text.len();
        self.text.extend_from_slice(text.as_bytes());
        Text { start, end: self.text.len() }
    }

    fn push_json(&mut self, value: &impl Serialize) -> Text {
        let start = self.text.len();
        if serde_json::to_writer(&mut self.text, value).is_err() {
            // Only a failing `Serialize` could get here (ours do not fail); store a valid value.
            self.text.truncate(start);
            self.text.extend_from_slice(b"null");
        }
        Text { start, end: self.text.len() }
    }
}

/// A resource's text, written once per `Resource*` message.
#[derive(Clone, Copy)]
struct ResourceText {
    attributes: Text,
    service: Option<Text>,
    bytes: u64,
}

#[derive(Clone, Copy)]
struct ScopeText {
    name: Text,
    version: Text,
    bytes: u64,
}

/// Builds [`Rows`] from OTLP messages, reporting items that cannot be stored.
#[derive(Default)]
pub(crate) struct Flattener {
    rows: Rows,
    trace_index: HashMap<[u8; 16], usize>,
    /// Spans, log records and metric data points taken.
    items: usize,
    invalid_spans: usize,
    first_invalid: Option<String>,
}

impl Flattener {
    pub(crate) fn add_resource_spans(&mut self, resource_spans: &[ResourceSpans]) {
        for resource_spans in resource_spans {
            let resource = self.resource(resource_spans.resource.as_ref());
            for scope_spans in &resource_spans.scope_spans {
                let scope = self.scope(scope_spans.scope.as_ref());
                for span in &scope_spans.spans {
                    self.add_span(span, resource, scope);
                }
            }
        }
    }

    pub(crate) fn add_resource_logs(&mut self, resource_logs: &[ResourceLogs]) {
        for resource_logs in resource_logs {
            let resource = self.resource(resource_logs.resource.as_ref());
            for scope_logs in &resource_logs.scope_logs {
                let scope = self.scope(scope_logs.scope.as_ref());
                for record in &scope_logs.log_records {
                    let rows = &mut self.rows;
                    let severity_text = rows.push_str(&record.severity_text);
                    let body = rows.push_json(&Value(record.body.as_ref()));
                    let attributes = rows.push_json(&Attributes(&record.attributes));
                    let trace_id = id::<16>(&record.trace_id);
                    let span_id = id::<8>(&record.span_id);
                    let values = severity_text.len() + body.len() + attributes.len() + 4 * 8 + 16 + 8;
                    let size = values + resource.bytes + scope.bytes + LOG_ROW_OVERHEAD;
                    let time_unix_nano = nanos(record.time_unix_nano);
                    let observed_time_unix_nano = nanos(record.observed_time_unix_nano);
                    rows.logs.push(LogRow {
                        time: if time_unix_nano != 0 { time_unix_nano } else { observed_time_unix_nano },
                        time_unix_nano,
                        observed_time_unix_nano,
                        severity_number: record.severity_number,
                        severity_text,
                        body,
                        attributes,
                        resource: resource.attributes,
                        service: resource.service,
                        scope_name: scope.name,
                        scope_version: scope.version,
                        trace_id,
                        span_id,
                        size: signed(size),
                    });
                    self.items += 1;
                }
            }
        }
    }

    pub(crate) fn add_resource_metrics(&mut self, resource_metrics: &[ResourceMetrics]) {
        for resource_metrics in resource_metrics {
            let resource = self.resource(resource_metrics.resource.as_ref());
            for scope_metrics in &resource_metrics.scope_metrics {
                let scope = self.scope(scope_metrics.scope.as_ref());
                for metric in &scope_metrics.metrics {
                    let shape = MetricShape::of(metric.data.as_ref());
                    let rows = &mut self.rows;
                    let name = rows.push_str(&metric.name);
                    let description = rows.push_str(&metric.description);
                    let unit = rows.push_str(&metric.unit);
                    let data_points = match &metric.data {
                        Some(data) => rows.push_json(&DataPoints(data)),
                        None => rows.push_str("[]"),
                    };
                    let values = name.len() + description.len() + unit.len() + data_points.len() + 4 * 8;
                    let size = values + resource.bytes + scope.bytes + METRIC_ROW_OVERHEAD;
                    rows.metrics.push(MetricRow {
                        time: shape.latest_time,
                        name,
                        description,
                        unit,
                        metric_type: shape.metric_type,
                        aggregation_temporality: shape.aggregation_temporality,
                        is_monotonic: shape.is_monotonic,
                        data_points,
                        resource: resource.attributes,
                        service: resource.service,
                        scope_name: scope.name,
                        scope_version: scope.version,
                        size: signed(size),
                    });
                    self.items += shape.points;
                }
            }
        }
    }

    /// The rows, the number of items they hold, and what could not be stored.
    pub(crate) fn finish(self) -> (Rows, usize, Vec<Rejected>) {
        let mut rejected = Vec::new();
        if self.invalid_spans > 0 {
            rejected.push(Rejected {
                items: self.invalid_spans,
                reason: LossReason::Invalid,
                detail: format!(
                    "{} span(s) without a valid trace or span id; first: {}",
                    self.invalid_spans,
                    self.first_invalid.unwrap_or_default()
                ),
            });
        }
        (self.rows, self.items, rejected)
    }

    fn add_span(&mut self, span: &Span, resource: ResourceText, scope: ScopeText) {
        let (Some(trace_id), Some(span_id)) = (id::<16>(&span.trace_id), id::<8>(&span.span_id)) else {
            self.invalid_spans += 1;
            if self.first_invalid.is_none() {
                self.first_invalid = Some(format!(
                    "span {:?} with trace id {:?} ({} bytes) and span id {:?} ({} bytes)",
                    span.name,
                    Hex(&span.trace_id).to_string(),
                    span.trace_id.len(),
                    Hex(&span.span_id).to_string(),
                    span.span_id.len()
                ));
            }
            return;
        };
        let parent_span_id = id::<8>(&span.parent_span_id);
        let rows = &mut self.rows;
        let name = rows.push_str(&span.name);
        let attributes = rows.push_json(&Attributes(&span.attributes));
        let events = rows.push_json(&Events(&span.events));
        let links = rows.push_json(&Links(&span.links));
        let (status_code, status_message) = match &span.status {
            Some(status) => (status.code, rows.push_str(&status.message)),
            None => (0, Text::default()),
        };
        let values = name.len() + attributes.len() + events.len() + links.len() + status_message.len() + 16 + 8 + 8;
        let size = signed(values + 4 * 8 + resource.bytes + scope.bytes + SPAN_ROW_OVERHEAD);
        let start_time = nanos(span.start_time_unix_nano);
        let end_time = nanos(span.end_time_unix_nano);
        let next_index = rows.traces.len();
        let trace_index = *self.trace_index.entry(trace_id).or_insert(next_index);
        rows.spans.push(SpanRow {
            trace_index,
            trace_id,
            span_id,
            parent_span_id,
            name,
            kind: span.kind,
            start_time,
            end_time,
            attributes,
            resource: resource.attributes,
            service: resource.service,
            scope_name: scope.name,
            scope_version: scope.version,
            status_code,
            status_message,
            events,
            links,
            size,
        });
        self.items += 1;

        let has_parent = parent_span_id.is_some();
        if trace_index == next_index {
            rows.traces.push(TraceRow {
                trace_id,
                start_time,
                end_time,
                span_count: 1,
                bytes: size + signed(TRACE_ROW_OVERHEAD + name.len()),
                root_name: name,
                root_service: resource.service,
                root_has_parent: has_parent,
                root_start: start_time,
            });
            return;
        }
        let Some(trace) = rows.traces.get_mut(trace_index) else { return };
        trace.start_time = trace.start_time.min(start_time);
        trace.end_time = trace.end_time.max(end_time);
        trace.span_count += 1;
        trace.bytes += size;
        if (has_parent, start_time) < (trace.root_has_parent, trace.root_start) {
            trace.root_name = name;
            trace.root_service = resource.service;
            trace.root_has_parent = has_parent;
            trace.root_start = start_time;
        }
    }

    fn resource(&mut self, resource: Option<&Resource>) -> ResourceText {
        let attributes: &[KeyValue] = resource.map_or(&[], |resource| &resource.attributes);
        let rows = &mut self.rows;
        let json = rows.push_json(&Attributes(attributes));
        let service = attributes
            .iter()
            .find(|kv| kv.key == "service.name")
            .and_then(|kv| match kv.value.as_ref()?.value.as_ref()? {
                any_value::Value::StringValue(name) => Some(name.as_str()),
                _ => None,
            })
            .map(|name| rows.push_str(name));
        ResourceText { attributes: json, service, bytes: json.len() + service.map_or(0, Text::len) }
    }

    fn scope(&mut self, scope: Option<&InstrumentationScope>) -> ScopeText {
        let (name, version) = scope.map_or(("", ""), |scope| (scope.name.as_str(), scope.version.as_str()));
        let name = self.rows.push_str(name);
        let version = self.rows.push_str(version);
        ScopeText { name, version, bytes: name.len() + version.len() }
    }
}

/// What the metrics row records about a metric's data besides the points themselves.
struct MetricShape {
    metric_type: &'static str,
    aggregation_temporality: Option<&'static str>,
    is_monotonic: Option<bool>,
    points: usize,
    latest_time: i64,
}

impl MetricShape {
    fn of(data: Option<&metric::Data>) -> MetricShape {
        fn latest(times: impl Iterator<Item = u64>) -> i64 {
            nanos(times.max().unwrap_or(0))
        }
        let (metric_type, aggregation_temporality, is_monotonic, points, latest_time) = match data {
            None => ("empty", None, None, 0, 0),
            Some(metric::Data::Gauge(gauge)) => {
                let times = gauge.data_points.iter().map(|p| p.time_unix_nano);
                ("gauge", None, None, gauge.data_points.len(), latest(times))
            }
            Some(metric::Data::Sum(sum)) => {
                let times = sum.data_points.iter().map(|p| p.time_unix_nano);
                let temporality = Some(temporality(sum.aggregation_temporality));
                ("sum", temporality, Some(sum.is_monotonic), sum.data_points.len(), latest(times))
            }
            Some(metric::Data::Histogram(histogram)) => {
                let times = histogram.data_points.iter().map(|p| p.time_unix_nano);
                let temporality = Some(temporality(histogram.aggregation_temporality));
                ("histogram", temporality, None, histogram.data_points.len(), latest(times))
            }
            Some(metric::Data::ExponentialHistogram(histogram)) => {
                let times = histogram.data_points.iter().map(|p| p.time_unix_nano);
                let temporality = Some(temporality(histogram.aggregation_temporality));
                ("exponential_histogram", temporality, None, histogram.data_points.len(), latest(times))
            }
            Some(metric::Data::Summary(summary)) => {
                let times = summary.data_points.iter().map(|p| p.time_unix_nano);
                ("summary", None, None, summary.data_points.len(), latest(times))
            }
        };
        MetricShape { metric_type, aggregation_temporality, is_monotonic, points, latest_time }
    }
}

fn temporality(value: i32) -> &'static str {
    match value {
        1 => "delta",
        2 => "cumulative",
        _ => "unspecified",
    }
}

/// A trace (16 bytes) or span (8 bytes) id, if it has the right length and is not all zeros.
fn id<const N: usize>(bytes: &[u8]) -> Option<[u8; N]> {
    let id = <[u8; N]>::try_from(bytes).ok()?;
    if id.iter().all(|byte| *byte == 0) { None } else { Some(id) }
}

/// Unix nanos as SQLite's signed integer (times past 2262 are clamped).
fn nanos(time: u64) -> i64 {
    i64::try_from(time).unwrap_or(i64::MAX)
}

fn signed(bytes: u64) -> i64 {
    i64::try_from(bytes).unwrap_or(i64::MAX)
}
