//! Stored traces in the JSON shape of Jaeger's query API (its `model/json`): spans with
//! references, typed tags and logs, and the trace's processes; all times in microseconds.
//!
//! | stored | Jaeger |
//! | --- | --- |
//! | parent span id | reference `CHILD_OF` |
//! | each link | reference `FOLLOWS_FROM` |
//! | attribute: string / bool / integer / double | tag `string` / `bool` / `int64` / `float64` |
//! | attribute: array or map (or `null`) | tag `string` holding its JSON text (`""` for `null`) |
//! | kind (not unspecified) | tag `span.kind` |
//! | status ok / error, its message | tags `otel.status_code` `OK` / `ERROR`, `otel.status_description` |
//! | status error | tag `error` = `true` (bool) |
//! | scope name, version | tags `otel.scope.name`, `otel.scope.version` |
//! | each event | log: field `event` (its name) then its attributes |
//! | resource | process (`service.name` → `serviceName`, the rest → tags), one per distinct resource |

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::store::{SpanView, TraceDetail};

/// The service name of spans whose resource has none.
const UNKNOWN_SERVICE: &str = "unknown_service";

/// Flags of every stored span: sampled (it was recorded and kept).
const SAMPLED: u32 = 1;

#[derive(Debug, Serialize)]
pub(super) struct Trace {
    #[serde(rename = "traceID")]
    trace_id: String,
    spans: Vec<Span>,
    processes: BTreeMap<String, Process>,
    warnings: Option<Vec<String>>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Span {
    #[serde(rename = "traceID")]
    trace_id: String,
    #[serde(rename = "spanID")]
    span_id: String,
    flags: u32,
    operation_name: String,
    references: Vec<Reference>,
    /// Unix microseconds.
    start_time: u64,
    /// Microseconds.
    duration: u64,
    tags: Vec<Tag>,
    logs: Vec<Log>,
    #[serde(rename = "processID")]
    process_id: String,
    warnings: Option<Vec<String>>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Reference {
    ref_type: &'static str,
    #[serde(rename = "traceID")]
    trace_id: String,
    #[serde(rename = "spanID")]
    span_id: String,
}

#[derive(Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
struct Process {
    service_name: String,
    tags: Vec<Tag>,
}

#[derive(Debug, Serialize)]
struct Log {
    /// Unix microseconds.
    timestamp: u64,
    fields: Vec<Tag>,
}

/// Jaeger's typed key-value.
#[derive(Debug, Serialize, PartialEq)]
struct Tag {
    key: String,
    #[serde(rename = "type")]
    value_type: &'static str,
    value: Value,
}

impl Tag {
    fn string(key: &str, value: impl Into<String>) -> Tag {
        Tag { key: key.to_owned(), value_type: "string", value: Value::String(value.into()) }
    }

    /// A stored attribute value (natural JSON) as a typed tag.
    fn from_attribute(key: String, value: Value) -> Tag {
        let (value_type, value) = match value {
            Value::Bool(_) => ("bool", value),
            Value::Number(number) if number.is_i64() => ("int64", Value::Number(number)),
            Value::Number(number) if number.is_f64() => ("float64", Value::Number(number)),
            // Above i64's range: only text keeps it whole.
            Value::Number(number) => ("string", Value::String(number.to_string())),
            Value::String(_) => ("string", value),
            Value::Null => ("string", Value::String(String::new())),
            Value::Array(_) | Value::Object(_) => ("string", Value::String(value.to_string())),
        };
        Tag { key, value_type, value }
    }
}

/// A stored trace in Jaeger's shape.
pub(super) fn trace(detail: TraceDetail) -> Trace {
    let mut processes = Processes::default();
    let spans = detail.spans.into_iter().map(|span| convert_span(span, &mut processes)).collect();
    Trace { trace_id: detail.trace_id, spans, processes: processes.into_map(), warnings: None }
}

fn convert_span(span: SpanView, processes: &mut Processes) -> Span {
    let mut references = Vec::new();
    if let Some(parent) = span.parent_span_id {
        references.push(Reference { ref_type: "CHILD_OF", trace_id: span.trace_id.clone(), span_id: parent });
    }
    for link in array(span.links) {
        let (Some(trace_id), Some(span_id)) = (text_field(&link, "trace_id"), text_field(&link, "span_id")) else {
            continue;
        };
        references.push(Reference { ref_type: "FOLLOWS_FROM", trace_id, span_id });
    }

    let mut tags: Vec<Tag> = object(span.attributes).map(|(key, value)| Tag::from_attribute(key, value)).collect();
    if !span.scope.name.is_empty() {
        tags.push(Tag::string("otel.scope.name", span.scope.name));
    }
    if !span.scope.version.is_empty() {
        tags.push(Tag::string("otel.scope.version", span.scope.version));
    }
    if span.kind != "unspecified" {
        tags.push(Tag::string("span.kind", span.kind));
    }
    match span.status.code {
        "ok" => tags.push(Tag::string("otel.status_code", "OK")),
        "error" => {
            tags.push(Tag::string("otel.status_code", "ERROR"));
            tags.push(Tag { key: "error".into(), value_type: "bool", value: Value::Bool(true) });
        }
        _ => {}
    }
    if !span.status.message.is_empty() {
        tags.push(Tag::string("otel.status_description", span.status.message));
    }

    let logs = array(span.events).map(event_log).collect();
    let process_id = processes.id_of(span.service, span.resource);
    Span {
        trace_id: span.trace_id,
        span_id: span.span_id,
        flags: SAMPLED,
        operation_name: span.name,
        references,
        start_time: span.start_time_unix_nano / 1_000,
        duration: span.end_time_unix_nano.saturating_sub(span.start_time_unix_nano) / 1_000,
        tags,
        logs,
        process_id,
        warnings: None,
    }
}

/// A stored event (`{"name", "time_unix_nano", "attributes"}`) as a Jaeger log.
fn event_log(event: Value) -> Log {
    let Value::Object(mut event) = event else { return Log { timestamp: 0, fields: Vec::new() } };
    let timestamp = event.get("time_unix_nano").and_then(Value::as_u64).unwrap_or(0) / 1_000;
    let name = match event.remove("name") {
        Some(Value::String(name)) => name,
        _ => String::new(),
    };
    let mut fields = vec![Tag::string("event", name)];
    let attributes = event.remove("attributes").unwrap_or(Value::Null);
    fields.extend(object(attributes).map(|(key, value)| Tag::from_attribute(key, value)));
    Log { timestamp, fields }
}

/// The trace's distinct processes, numbered `p1`, `p2`… in order of first use.
#[derive(Default)]
struct Processes(Vec<(String, Process)>);

impl Processes {
    fn id_of(&mut self, service: Option<String>, resource: Value) -> String {
        let tags = object(resource)
            .filter(|(key, _)| key != "service.name")
            .map(|(key, value)| Tag::from_attribute(key, value))
            .collect();
        let process = Process { service_name: service.unwrap_or_else(|| UNKNOWN_SERVICE.to_owned()), tags };
        if let Some((id, _)) = self.0.iter().find(|(_, known)| *known == process) {
            return id.clone();
        }
        let id = format!("p{}", self.0.len() + 1);
        self.0.push((id.clone(), process));
        id
    }

    fn into_map(self) -> BTreeMap<String, Process> {
        self.0.into_iter().collect()
    }
}

/// The entries of a JSON object; nothing for any other value.
fn object(value: Value) -> impl Iterator<Item = (String, Value)> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
    .into_iter()
}

/// The items of a JSON array; nothing for any other value.
fn array(value: Value) -> impl Iterator<Item = Value> {
    match value {
        Value::Array(items) => items,
        _ => Vec::new(),
    }
    .into_iter()
}

fn text_field(value: &Value, key: &str) -> Option<String> {
    value.get(key).and_then(Value::as_str).map(str::to_owned)
}
