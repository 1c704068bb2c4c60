//! What the read API answers with: traces, spans, log records and metrics as JSON-ready values,
//! the same shape whether a span came from OTLP or X-Ray.

use serde::Serialize;

/// One trace in the recent-traces list.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TraceSummary {
    /// 32 lowercase hex digits.
    pub trace_id: String,
    /// The root span's name: the span without a parent, or else the earliest span.
    pub root_name: String,
    /// The root span's `service.name`.
    pub service: Option<String>,
    /// Every `service.name` among the trace's spans, sorted.
    pub services: Vec<String>,
    pub start_time_unix_nano: u64,
    /// From the earliest span start to the latest span end.
    pub duration_ms: f64,
    pub span_count: u64,
}

/// One trace with all its stored spans, by start time, and every stored log record of the
/// trace, by time.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TraceDetail {
    pub trace_id: String,
    pub spans: Vec<SpanView>,
    pub logs: Vec<LogEntry>,
}

/// A stored span, the same shape whether it came from OTLP or X-Ray.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SpanView {
    pub trace_id: String,
    pub span_id: String,
    pub parent_span_id: Option<String>,
    pub name: String,
    /// `internal`, `server`, `client`, `producer`, `consumer` or `unspecified`.
    pub kind: &'static str,
    pub start_time_unix_nano: u64,
    pub end_time_unix_nano: u64,
    pub duration_ms: f64,
    pub service: Option<String>,
    /// `{key: value}`, values as natural JSON (bytes as base64).
    pub attributes: serde_json::Value,
    pub resource: serde_json::Value,
    pub scope: Scope,
    pub status: SpanStatus,
    /// `[{"name", "time_unix_nano", "attributes"}]`.
    pub events: serde_json::Value,
    /// `[{"trace_id", "span_id", "trace_state", "attributes"}]`.
    pub links: serde_json::Value,
}

/// An instrumentation scope.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Scope {
    pub name: String,
    pub version: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SpanStatus {
    /// `unset`, `ok` or `error`.
    pub code: &'static str,
    pub message: String,
}

/// A stored log record.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LogEntry {
    pub time_unix_nano: u64,
    pub observed_time_unix_nano: u64,
    pub severity_number: i32,
    pub severity_text: String,
    /// The body as natural JSON (a string for most logs), `null` when absent.
    pub body: serde_json::Value,
    pub attributes: serde_json::Value,
    pub resource: serde_json::Value,
    pub service: Option<String>,
    pub scope: Scope,
    pub trace_id: Option<String>,
    pub span_id: Option<String>,
}

/// A stored metric: one per metric per resource and scope of a request.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MetricEntry {
    pub name: String,
    pub description: String,
    pub unit: String,
    /// `gauge`, `sum`, `histogram`, `exponential_histogram`, `summary` or `empty`.
    #[serde(rename = "type")]
    pub metric_type: String,
    /// `delta`, `cumulative` or `unspecified` for sums and histograms, else `null`.
    pub aggregation_temporality: Option<String>,
    /// For sums, else `null`.
    pub is_monotonic: Option<bool>,
    /// The latest data point's time.
    pub time_unix_nano: u64,
    pub service: Option<String>,
    pub resource: serde_json::Value,
    pub scope: Scope,
    pub data_points: serde_json::Value,
}

/// Parses a trace id given as 32 hex digits (either case) or in X-Ray's
/// `1-{8 hex digits}-{24 hex digits}` form.
pub fn parse_trace_id(text: &str) -> Option<[u8; 16]> {
    let mut digits = [0u8; 32];
    if let Some(rest) = text.strip_prefix("1-") {
        let (epoch, random) = rest.split_once('-')?;
        if epoch.len() != 8 || random.len() != 24 {
            return None;
        }
        digits[..8].copy_from_slice(epoch.as_bytes());
        digits[8..].copy_from_slice(random.as_bytes());
    } else if text.len() == 32 {
        digits.copy_from_slice(text.as_bytes());
    } else {
        return None;
    }
    let mut id = [0u8; 16];
    hex::decode_to_slice(digits, &mut id).ok()?;
    Some(id)
}

pub(crate) fn span_kind(kind: i32) -> &'static str {
    match kind {
        1 => "internal",
        2 => "server",
        3 => "client",
        4 => "producer",
        5 => "consumer",
        _ => "unspecified",
    }
}

pub(crate) fn status_code(code: i32) -> &'static str {
    match code {
        1 => "ok",
        2 => "error",
        _ => "unset",
    }
}

pub(crate) fn duration_ms(start: i64, end: i64) -> f64 {
    end.saturating_sub(start).max(0) as f64 / 1_000_000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_id_accepts_hex_in_either_case() {
        let id = parse_trace_id("0123456789ABCDEF0123456789abcdef");
        assert_eq!(id.map(hex::encode).as_deref(), Some("0123456789abcdef0123456789abcdef"));
    }

    #[test]
    fn trace_id_accepts_the_xray_form() {
        let id = parse_trace_id("1-5f84c7a1-0123456789abcdef01234567");
        assert_eq!(id.map(hex::encode).as_deref(), Some("5f84c7a10123456789abcdef01234567"));
    }

    #[test]
    fn trace_id_rejects_malformed_input() {
        for text in [
            "",
            "abc",
            "0123456789abcdef0123456789abcdeg",
            "0123456789abcdef0123456789abcdef0",
            "1-5f84c7a1-0123456789abcdef0123456",
            "1-5f84c7a10-123456789abcdef01234567",
            "2-5f84c7a1-0123456789abcdef01234567",
            "1-5f84c7a1_0123456789abcdef01234567",
            "é123456789abcdef0123456789abcde",
        ] {
            assert_eq!(parse_trace_id(text), None, "{text:?}");
        }
    }

    #[test]
    fn duration_never_goes_negative() {
        assert_eq!(duration_ms(2_000_000, 1_000_000), 0.0);
        assert_eq!(duration_ms(1_000_000, 3_500_000), 2.5);
    }
}
