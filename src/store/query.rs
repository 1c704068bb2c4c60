//! The read side of the store: a small pool of read connections, separate from the writer's,
//! and the queries behind the admin query API, each run on tokio's blocking pool.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use rusqlite::types::{Value as SqlValue, ValueRef};
use rusqlite::{Connection, Row, params_from_iter};
use serde::Serialize;

use super::schema;
use super::search::{LogSearch, Operation, TraceSearch};
use super::{StoreError, StoreStats};

/// Read connections kept open between queries.
const IDLE_READERS: usize = 4;

/// The columns [`span_view`] reads, in its order.
const SPAN_COLUMNS: &str = "trace_id, span_id, parent_span_id, name, kind, start_time, end_time, attributes,
                            resource, service, scope_name, scope_version, status_code, status_message, events, links";

/// The columns [`log_entry`] reads, in its order.
const LOG_COLUMNS: &str = "time_unix_nano, observed_time_unix_nano, severity_number, severity_text, body,
                           attributes, resource, service, scope_name, scope_version, trace_id, span_id";

/// An attribute of a JSON object column's `json_each` row as the text a search compares:
/// strings as they are, booleans as `true`/`false`, numbers and containers as JSON text.
const ATTRIBUTE_TEXT: &str = "CASE a.type WHEN 'true' THEN 'true' WHEN 'false' THEN 'false' \
                              WHEN 'text' THEN a.value ELSE CAST(a.value AS TEXT) END";

/// The read side of the store, for the query API. Cheap to clone; queries run off the async
/// runtime on their own connections and never wait for the writer (WAL).
#[derive(Clone)]
pub struct StoreReader {
    shared: Arc<ReaderShared>,
}

struct ReaderShared {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    stats: Arc<Mutex<StoreStats>>,
}

/// One trace in the recent-traces list.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TraceSummary {
    /// 32 lowercase hex digits.
    pub trace_id: String,
    /// The root span's name: the span without a parent, or else the earliest span.
    pub root_name: String,
    /// The root span's `service.name`.
    pub service: Option<String>,
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

impl StoreReader {
    pub(super) fn new(path: PathBuf, first: Connection, stats: Arc<Mutex<StoreStats>>) -> StoreReader {
        StoreReader { shared: Arc::new(ReaderShared { path, idle: Mutex::new(vec![first]), stats }) }
    }

    /// What the store holds and has evicted since start-up.
    pub fn stats(&self) -> StoreStats {
        *self.shared.stats.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The most recent traces (by start time, newest first); with `service`, only traces with
    /// a span of that service.
    pub async fn recent_traces(&self, service: Option<String>, limit: usize) -> Result<Vec<TraceSummary>, StoreError> {
        let limit = sql_limit(limit);
        self.run(move |connection| {
            let mut statement;
            let rows = match &service {
                None => {
                    statement = connection.prepare_cached(
                        "SELECT trace_id, root_name, root_service, start_time, end_time, span_count
                         FROM traces ORDER BY start_time DESC, seq DESC LIMIT ?1",
                    )?;
                    statement.query((limit,))?
                }
                Some(service) => {
                    statement = connection.prepare_cached(
                        "SELECT trace_id, root_name, root_service, start_time, end_time, span_count
                         FROM traces AS t
                         WHERE EXISTS (SELECT 1 FROM spans AS s WHERE s.service = ?2 AND s.trace_seq = t.seq)
                         ORDER BY start_time DESC, seq DESC LIMIT ?1",
                    )?;
                    statement.query((limit, service))?
                }
            };
            rows.mapped(|row| {
                let start: i64 = row.get(3)?;
                let end: i64 = row.get(4)?;
                Ok(TraceSummary {
                    trace_id: hex_column(row, 0)?.unwrap_or_default(),
                    root_name: row.get(1)?,
                    service: row.get(2)?,
                    start_time_unix_nano: unsigned(start),
                    duration_ms: duration_ms(start, end),
                    span_count: unsigned(row.get(5)?),
                })
            })
            .collect()
        })
        .await
    }

    /// Every stored span of one trace, by start time, with the trace's log records; `None`
    /// when the trace is unknown.
    pub async fn trace(&self, trace_id: [u8; 16]) -> Result<Option<TraceDetail>, StoreError> {
        self.run(move |connection| {
            let mut statement = connection.prepare_cached(&format!(
                "SELECT {SPAN_COLUMNS} FROM spans WHERE trace_seq = (SELECT seq FROM traces WHERE trace_id = ?1)
                 ORDER BY start_time, id"
            ))?;
            let spans = statement.query_map((trace_id.as_slice(),), span_view)?;
            let spans = spans.collect::<rusqlite::Result<Vec<SpanView>>>()?;
            if spans.is_empty() {
                return Ok(None);
            }
            let mut statement = connection
                .prepare_cached(&format!("SELECT {LOG_COLUMNS} FROM logs WHERE trace_id = ?1 ORDER BY time, seq"))?;
            let logs = statement.query_map((trace_id.as_slice(),), log_entry)?;
            let logs = logs.collect::<rusqlite::Result<Vec<LogEntry>>>()?;
            Ok(Some(TraceDetail { trace_id: hex::encode(trace_id), spans, logs }))
        })
        .await
    }

    /// Every service that has a stored span, sorted.
    pub async fn services(&self) -> Result<Vec<String>, StoreError> {
        self.run(|connection| {
            let mut statement = connection
                .prepare_cached("SELECT DISTINCT service FROM spans WHERE service IS NOT NULL ORDER BY service")?;
            let services = statement.query_map((), |row| row.get(0))?;
            services.collect()
        })
        .await
    }

    /// The distinct (span name, span kind) pairs of a service's stored spans, sorted by name.
    pub async fn operations(&self, service: String) -> Result<Vec<Operation>, StoreError> {
        self.run(move |connection| {
            let mut statement = connection
                .prepare_cached("SELECT DISTINCT name, kind FROM spans WHERE service = ?1 ORDER BY name, kind")?;
            let operations = statement
                .query_map((service,), |row| Ok(Operation { name: row.get(0)?, span_kind: span_kind(row.get(1)?) }))?;
            operations.collect()
        })
        .await
    }

    /// Whole traces (spans and log records) with a span that meets every condition of
    /// `search`, newest (by trace start) first, at most `search.limit`.
    pub async fn search_traces(&self, search: TraceSearch) -> Result<Vec<TraceDetail>, StoreError> {
        self.run(move |connection| {
            let (sql, params) = trace_search_sql(&search);
            let mut statement = connection.prepare(&sql)?;
            let found = statement.query_map(params_from_iter(params), |row| {
                Ok((row.get::<_, i64>(0)?, hex_column(row, 1)?.unwrap_or_default()))
            })?;
            let found = found.collect::<rusqlite::Result<Vec<(i64, String)>>>()?;

            let mut spans_of = connection.prepare_cached(&format!(
                "SELECT {SPAN_COLUMNS} FROM spans WHERE trace_seq = ?1 ORDER BY start_time, id"
            ))?;
            let mut traces = Vec::with_capacity(found.len());
            for (seq, trace_id) in found {
                let spans = spans_of.query_map((seq,), span_view)?.collect::<rusqlite::Result<Vec<SpanView>>>()?;
                traces.push(TraceDetail { trace_id, spans, logs: Vec::new() });
            }
            attach_logs(connection, &mut traces)?;
            Ok(traces)
        })
        .await
    }

    /// Log records that meet every condition of `search`, newest first, at most `search.limit`.
    pub async fn search_logs(&self, search: LogSearch) -> Result<Vec<LogEntry>, StoreError> {
        self.run(move |connection| {
            let mut conditions = Vec::new();
            let mut params = Vec::new();
            if let Some(service) = &search.service {
                conditions.push("service = ?");
                params.push(SqlValue::Text(service.clone()));
            }
            if let Some(severity) = search.min_severity_number {
                conditions.push("severity_number >= ?");
                params.push(SqlValue::Integer(severity.into()));
            }
            if let Some(trace_id) = search.trace_id {
                conditions.push("trace_id = ?");
                params.push(SqlValue::Blob(trace_id.to_vec()));
            }
            if let Some(start) = search.start_unix_nano {
                conditions.push("time >= ?");
                params.push(SqlValue::Integer(signed(start)));
            }
            if let Some(end) = search.end_unix_nano {
                conditions.push("time <= ?");
                params.push(SqlValue::Integer(signed(end)));
            }
            let filter =
                if conditions.is_empty() { String::new() } else { format!("WHERE {}", conditions.join(" AND ")) };
            let mut statement =
                connection.prepare(&format!("SELECT {LOG_COLUMNS} FROM logs {filter} ORDER BY time DESC, seq DESC"))?;
            let needle = search.text.as_deref().map(str::to_lowercase);
            let mut rows = statement.query(params_from_iter(params))?;
            let mut logs = Vec::new();
            while logs.len() < search.limit {
                let Some(row) = rows.next()? else { break };
                let entry = log_entry(row)?;
                if needle.as_deref().is_none_or(|needle| body_contains(&entry.body, needle)) {
                    logs.push(entry);
                }
            }
            Ok(logs)
        })
        .await
    }

    /// The most recent log records (by time, newest first), optionally of one service.
    pub async fn recent_logs(&self, service: Option<String>, limit: usize) -> Result<Vec<LogEntry>, StoreError> {
        let limit = sql_limit(limit);
        self.run(move |connection| {
            let mut statement;
            let rows = match &service {
                None => {
                    statement = connection.prepare_cached(&format!(
                        "SELECT {LOG_COLUMNS} FROM logs ORDER BY time DESC, seq DESC LIMIT ?1"
                    ))?;
                    statement.query((limit,))?
                }
                Some(service) => {
                    statement = connection.prepare_cached(&format!(
                        "SELECT {LOG_COLUMNS} FROM logs WHERE service = ?2 ORDER BY time DESC, seq DESC LIMIT ?1"
                    ))?;
                    statement.query((limit, service))?
                }
            };
            rows.mapped(log_entry).collect()
        })
        .await
    }

    /// The most recent metrics (by their latest data point, newest first), optionally by name.
    pub async fn recent_metrics(&self, name: Option<String>, limit: usize) -> Result<Vec<MetricEntry>, StoreError> {
        let limit = sql_limit(limit);
        self.run(move |connection| {
            const COLUMNS: &str = "name, description, unit, type, aggregation_temporality, is_monotonic, time,
                                   service, resource, scope_name, scope_version, data_points";
            let mut statement;
            let rows = match &name {
                None => {
                    statement = connection.prepare_cached(&format!(
                        "SELECT {COLUMNS} FROM metrics ORDER BY time DESC, seq DESC LIMIT ?1"
                    ))?;
                    statement.query((limit,))?
                }
                Some(name) => {
                    statement = connection.prepare_cached(&format!(
                        "SELECT {COLUMNS} FROM metrics WHERE name = ?2 ORDER BY time DESC, seq DESC LIMIT ?1"
                    ))?;
                    statement.query((limit, name))?
                }
            };
            rows.mapped(|row| {
                Ok(MetricEntry {
                    name: row.get(0)?,
                    description: row.get(1)?,
                    unit: row.get(2)?,
                    metric_type: row.get(3)?,
                    aggregation_temporality: row.get(4)?,
                    is_monotonic: row.get(5)?,
                    time_unix_nano: unsigned(row.get(6)?),
                    service: row.get(7)?,
                    resource: json_column(row, 8)?,
                    scope: Scope { name: row.get(9)?, version: row.get(10)? },
                    data_points: json_column(row, 11)?,
                })
            })
            .collect()
        })
        .await
    }

    /// Runs a query on a pooled read connection, on the blocking pool.
    async fn run<T, Query>(&self, query: Query) -> Result<T, StoreError>
    where
        T: Send + 'static,
        Query: FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        let shared = Arc::clone(&self.shared);
        tokio::task::spawn_blocking(move || shared.with_connection(query))
            .await
            .map_err(|error| StoreError::QueryTask(error.to_string()))?
    }
}

impl ReaderShared {
    fn with_connection<T>(&self, query: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Result<T, StoreError> {
        let pooled = self.idle.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).pop();
        let connection = match pooled {
            Some(connection) => connection,
            None => schema::open_reader(&self.path)?,
        };
        let result = query(&connection).map_err(StoreError::Query);
        let mut idle = self.idle.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if idle.len() < IDLE_READERS {
            idle.push(connection);
        }
        result
    }
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

/// The query that finds the matching traces' `seq` and id, newest first, and its parameters.
fn trace_search_sql(search: &TraceSearch) -> (String, Vec<SqlValue>) {
    let mut span_conditions = vec!["s.trace_seq = t.seq".to_owned()];
    let mut params = Vec::new();
    if let Some(service) = &search.service {
        span_conditions.push("s.service = ?".into());
        params.push(SqlValue::Text(service.clone()));
    }
    if let Some(name) = &search.span_name {
        span_conditions.push("s.name = ?".into());
        params.push(SqlValue::Text(name.clone()));
    }
    for (key, value) in &search.attributes {
        span_conditions.push(format!(
            "(EXISTS (SELECT 1 FROM json_each(s.attributes) AS a WHERE a.key = ? AND {ATTRIBUTE_TEXT} = ?)
              OR EXISTS (SELECT 1 FROM json_each(s.resource) AS a WHERE a.key = ? AND {ATTRIBUTE_TEXT} = ?))"
        ));
        for _ in 0..2 {
            params.push(SqlValue::Text(key.clone()));
            params.push(SqlValue::Text(value.clone()));
        }
    }
    if let Some(min) = search.min_duration_ns {
        span_conditions.push("s.end_time - s.start_time >= ?".into());
        params.push(SqlValue::Integer(signed(min)));
    }
    if let Some(max) = search.max_duration_ns {
        span_conditions.push("s.end_time - s.start_time <= ?".into());
        params.push(SqlValue::Integer(signed(max)));
    }
    if let Some(start) = search.start_unix_nano {
        span_conditions.push("s.start_time >= ?".into());
        params.push(SqlValue::Integer(signed(start)));
    }
    if let Some(end) = search.end_unix_nano {
        span_conditions.push("s.start_time <= ?".into());
        params.push(SqlValue::Integer(signed(end)));
    }
    if search.errors_only {
        span_conditions.push("s.status_code = 2".into());
    }
    let mut trace_conditions =
        vec![format!("EXISTS (SELECT 1 FROM spans AS s WHERE {})", span_conditions.join(" AND "))];
    if let Some(end) = search.end_unix_nano {
        // A trace starts with its earliest span: lets the index skip later traces.
        trace_conditions.push("t.start_time <= ?".into());
        params.push(SqlValue::Integer(signed(end)));
    }
    params.push(SqlValue::Integer(sql_limit(search.limit)));
    let sql = format!(
        "SELECT t.seq, t.trace_id FROM traces AS t WHERE {} ORDER BY t.start_time DESC, t.seq DESC LIMIT ?",
        trace_conditions.join(" AND ")
    );
    (sql, params)
}

/// Fills each trace's log records, by time, in one pass over the logs.
fn attach_logs(connection: &Connection, traces: &mut [TraceDetail]) -> rusqlite::Result<()> {
    if traces.is_empty() {
        return Ok(());
    }
    let mut ids = Vec::with_capacity(traces.len());
    for trace in traces.iter() {
        let Ok(id) = hex::decode(&trace.trace_id) else { continue };
        ids.push(SqlValue::Blob(id));
    }
    let placeholders = vec!["?"; ids.len()].join(", ");
    let mut statement = connection
        .prepare(&format!("SELECT {LOG_COLUMNS} FROM logs WHERE trace_id IN ({placeholders}) ORDER BY time, seq"))?;
    let mut by_trace: HashMap<String, Vec<LogEntry>> = HashMap::new();
    for entry in statement.query_map(params_from_iter(ids), log_entry)? {
        let entry = entry?;
        if let Some(trace_id) = entry.trace_id.clone() {
            by_trace.entry(trace_id).or_default().push(entry);
        }
    }
    for trace in traces {
        trace.logs = by_trace.remove(&trace.trace_id).unwrap_or_default();
    }
    Ok(())
}

/// Whether a log body holds `needle` (already lowercase), ignoring case: a string body's text,
/// any other body's JSON text.
fn body_contains(body: &serde_json::Value, needle: &str) -> bool {
    match body {
        serde_json::Value::String(text) => text.to_lowercase().contains(needle),
        other => other.to_string().to_lowercase().contains(needle),
    }
}

fn log_entry(row: &Row<'_>) -> rusqlite::Result<LogEntry> {
    Ok(LogEntry {
        time_unix_nano: unsigned(row.get(0)?),
        observed_time_unix_nano: unsigned(row.get(1)?),
        severity_number: row.get(2)?,
        severity_text: row.get(3)?,
        body: json_column(row, 4)?,
        attributes: json_column(row, 5)?,
        resource: json_column(row, 6)?,
        service: row.get(7)?,
        scope: Scope { name: row.get(8)?, version: row.get(9)? },
        trace_id: hex_column(row, 10)?,
        span_id: hex_column(row, 11)?,
    })
}

fn span_view(row: &Row<'_>) -> rusqlite::Result<SpanView> {
    let start: i64 = row.get(5)?;
    let end: i64 = row.get(6)?;
    Ok(SpanView {
        trace_id: hex_column(row, 0)?.unwrap_or_default(),
        span_id: hex_column(row, 1)?.unwrap_or_default(),
        parent_span_id: hex_column(row, 2)?,
        name: row.get(3)?,
        kind: span_kind(row.get(4)?),
        start_time_unix_nano: unsigned(start),
        end_time_unix_nano: unsigned(end),
        duration_ms: duration_ms(start, end),
        attributes: json_column(row, 7)?,
        resource: json_column(row, 8)?,
        service: row.get(9)?,
        scope: Scope { name: row.get(10)?, version: row.get(11)? },
        status: SpanStatus { code: status_code(row.get(12)?), message: row.get(13)? },
        events: json_column(row, 14)?,
        links: json_column(row, 15)?,
    })
}

fn span_kind(kind: i32) -> &'static str {
    match kind {
        1 => "internal",
        2 => "server",
        3 => "client",
        4 => "producer",
        5 => "consumer",
        _ => "unspecified",
    }
}

fn status_code(code: i32) -> &'static str {
    match code {
        1 => "ok",
        2 => "error",
        _ => "unset",
    }
}

/// A JSON column as a value; text that is somehow not JSON comes back as a string, never an error.
fn json_column(row: &Row<'_>, index: usize) -> rusqlite::Result<serde_json::Value> {
    let text = match row.get_ref(index)? {
        ValueRef::Text(text) | ValueRef::Blob(text) => text,
        ValueRef::Null | ValueRef::Integer(_) | ValueRef::Real(_) => return Ok(serde_json::Value::Null),
    };
    Ok(serde_json::from_slice(text)
        .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(text).into_owned())))
}

/// An id column as lowercase hex, `None` when `NULL`.
fn hex_column(row: &Row<'_>, index: usize) -> rusqlite::Result<Option<String>> {
    Ok(match row.get_ref(index)? {
        ValueRef::Blob(bytes) | ValueRef::Text(bytes) => Some(hex::encode(bytes)),
        ValueRef::Null | ValueRef::Integer(_) | ValueRef::Real(_) => None,
    })
}

fn duration_ms(start: i64, end: i64) -> f64 {
    end.saturating_sub(start).max(0) as f64 / 1_000_000.0
}

fn unsigned(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

fn signed(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn sql_limit(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
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
