//! What the store's searches take and give, whatever engine answers them: a trace search (one
//! span must meet every span condition), a log search, and a service's operations.

use serde::Serialize;

/// A search for whole traces. A trace matches when ONE of its spans meets every condition
/// together (Jaeger's semantics): its service, its name, each `key=value` attribute, its
/// duration, its start time within the range, and its status when `errors_only`. `None`, an
/// empty list and `false` mean "any".
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TraceSearch {
    /// The span's `service.name`.
    pub service: Option<String>,
    /// The span's name, exactly.
    pub span_name: Option<String>,
    /// Each `(key, value)` is a span attribute or a resource attribute of the span whose value,
    /// as text, equals `value`: strings as they are, numbers as JSON writes them (`200`,
    /// `2.5`), booleans as `true`/`false`, arrays and maps as their JSON text.
    pub attributes: Vec<(String, String)>,
    /// The span lasted at least this long (end − start, in nanoseconds).
    pub min_duration_ns: Option<u64>,
    /// The span lasted at most this long.
    pub max_duration_ns: Option<u64>,
    /// The span started at or after this time (Unix nanoseconds).
    pub start_unix_nano: Option<u64>,
    /// The span started at or before this time (Unix nanoseconds).
    pub end_unix_nano: Option<u64>,
    /// The span's status is error.
    pub errors_only: bool,
    /// At most this many traces, newest (latest trace start) first.
    pub limit: usize,
}

/// A search for log records; every given condition must hold.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LogSearch {
    /// The record's resource `service.name`.
    pub service: Option<String>,
    /// The record's severity number is at least this (OTLP numbers: 9 is INFO, 17 ERROR).
    pub min_severity_number: Option<i32>,
    /// A case-insensitive substring of the body: of the text for a string body, else of the
    /// body's JSON text.
    pub text: Option<String>,
    /// The record belongs to this trace.
    pub trace_id: Option<[u8; 16]>,
    /// The record's time (its `time_unix_nano`, or its observed time when it has none) is at
    /// or after this (Unix nanoseconds).
    pub start_unix_nano: Option<u64>,
    /// ... and at or before this.
    pub end_unix_nano: Option<u64>,
    /// At most this many records, newest first.
    pub limit: usize,
}

/// One operation of a service: a span name with the span kind it was seen with.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Operation {
    pub name: String,
    /// As in `SpanView::kind`: `internal`, `server`, `client`, `producer`, `consumer` or
    /// `unspecified`.
    pub span_kind: &'static str,
}
