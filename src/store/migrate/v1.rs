//! Reads a store written by the SQLite engine (schema version 1, `<data_dir>/waggle.db`)
//! without changing it, and hands its contents on as OTLP requests, oldest first.
//!
//! The file is opened read-only. A store closed cleanly has no `-wal` file (its last
//! connection checkpointed it): it is opened with `immutable=1`, so SQLite takes no lock and
//! creates no `-shm` or `-wal` file beside it. A store whose writer stopped without closing
//! (a crash, a kill) has a `-wal` holding its last committed writes: it is opened read-only
//! without `immutable`, so those writes are read too. SQLite then needs the `-shm` index, and
//! creates or rebuilds it if it can; `waggle.db` and its `-wal` are never written either way.
//!
//! Rows come out in the store's insertion sequence (`seq`, shared by traces, logs and
//! metrics; a trace's spans all come at its `seq`, the first time it was seen), through three
//! cursors walked in step: never more than one request per signal is held in memory.

use std::fs::{File, TryLockError};
use std::io::Read as _;
use std::path::Path;

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use opentelemetry_proto::tonic::metrics::v1::Metric;
use opentelemetry_proto::tonic::trace::v1::{Span, Status};
use rusqlite::types::ValueRef;
use rusqlite::{Connection, ErrorCode, OpenFlags, Row, Rows};

use super::chunk::{Pending, StoredItem};
use super::v1_json::{self, MetricShape};
use super::{MigrateError, sibling};

/// `PRAGMA user_version` of the stores this module reads.
pub(crate) const V1_SCHEMA_VERSION: i64 = 1;

/// Spans, log records or metrics per request when the caller has no better bound.
pub(crate) const DEFAULT_CHUNK_ITEMS: usize = 1000;

/// One request's worth of the old store's contents.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum V1Chunk {
    Traces(ExportTraceServiceRequest),
    Logs(ExportLogsServiceRequest),
    Metrics(ExportMetricsServiceRequest),
}

/// What was read from an old store.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct V1Summary {
    pub spans: u64,
    pub logs: u64,
    /// Metrics (one per metric name per resource and scope of a request, as the store kept them).
    pub metrics: u64,
    /// Requests handed to the caller.
    pub chunks: u64,
    /// Rows that could not be decoded and were left out.
    pub skipped: u64,
    /// Which row was the first left out, and why.
    pub first_skipped: Option<String>,
}

/// The first bytes of every SQLite database file.
const SQLITE_MAGIC: &[u8; 16] = b"SQLite format 3\0";

/// Trace-major: the index `spans_by_trace (trace_seq, start_time)` gives this order without
/// sorting.
pub(super) const SPANS: &str = "SELECT trace_seq, trace_id, span_id, parent_span_id, name, kind, start_time, end_time,
        attributes, resource, scope_name, scope_version, status_code, status_message, events, links
    FROM spans ORDER BY trace_seq, start_time";
pub(super) const LOGS: &str =
    "SELECT seq, time_unix_nano, observed_time_unix_nano, severity_number, severity_text, body,
        attributes, resource, scope_name, scope_version, trace_id, span_id
    FROM logs ORDER BY seq";
pub(super) const METRICS: &str =
    "SELECT seq, name, description, unit, type, aggregation_temporality, is_monotonic, data_points,
        resource, scope_name, scope_version
    FROM metrics ORDER BY seq";

/// Reads the v1 store at `path` and calls `each` with its contents, oldest first, in requests
/// of at most `max_items` spans, log records or metrics (at least one). Requests of the three
/// signals are interleaved in insertion order: all pending requests are handed on, oldest
/// first, whenever one of them is full. A row that does not decode is skipped and counted; a
/// file that is not a v1 store, or is corrupt, is an error (see [`MigrateError::is_unreadable`]),
/// as is an error returned by `each`, which stops the reading. The file is never modified.
pub(crate) fn read_v1<E>(
    path: &Path,
    max_items: usize,
    mut each: impl FnMut(V1Chunk) -> Result<(), E>,
) -> Result<V1Summary, MigrateError>
where
    E: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let _lock = check_not_in_use(path)?;
    check_magic(path)?;
    let connection = open_read_only(path)?;
    let sql = |source| classify(path, source);
    let version: i64 = connection.pragma_query_value(None, "user_version", |row| row.get(0)).map_err(sql)?;
    if version != V1_SCHEMA_VERSION {
        return Err(MigrateError::UnknownVersion { path: path.to_path_buf(), found: version });
    }
    let mut spans = connection.prepare(SPANS).map_err(sql)?;
    let mut logs = connection.prepare(LOGS).map_err(sql)?;
    let mut metrics = connection.prepare(METRICS).map_err(sql)?;
    let mut merge = Merge {
        spans: Cursor::new(spans.query([]).map_err(sql)?, span_row),
        logs: Cursor::new(logs.query([]).map_err(sql)?, log_row),
        metrics: Cursor::new(metrics.query([]).map_err(sql)?, metric_row),
        pending_spans: Pending::default(),
        pending_logs: Pending::default(),
        pending_metrics: Pending::default(),
    };
    let mut read = Progress { path, max_items: max_items.max(1), summary: V1Summary::default() };
    merge.run(&mut read, &mut each)?;
    Ok(read.summary)
}

/// Refuses a store whose `.lock` another process holds (a waggle of the previous release still
/// running on this data directory); the lock is held while reading.
fn check_not_in_use(path: &Path) -> Result<Option<File>, MigrateError> {
    let lock_path = sibling(path, ".lock");
    let file = match File::open(&lock_path) {
        Ok(file) => file,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(MigrateError::Io { path: lock_path, source }),
    };
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(TryLockError::WouldBlock) => Err(MigrateError::InUse { path: path.to_path_buf() }),
        Err(TryLockError::Error(source)) => Err(MigrateError::Io { path: lock_path, source }),
    }
}

/// Anything but an SQLite database (an empty file included) is not a v1 store.
fn check_magic(path: &Path) -> Result<(), MigrateError> {
    let mut magic = [0u8; SQLITE_MAGIC.len()];
    let io = |source| MigrateError::Io { path: path.to_path_buf(), source };
    let mut file = File::open(path).map_err(io)?;
    let mut read = 0;
    while read < magic.len() {
        match file.read(&mut magic[read..]).map_err(io)? {
            0 => break,
            n => read += n,
        }
    }
    if read < magic.len() || &magic != SQLITE_MAGIC {
        return Err(MigrateError::NotV1Store { path: path.to_path_buf(), detail: "not an SQLite database".into() });
    }
    Ok(())
}

/// Opens the store read-only: `immutable=1` unless a non-empty `-wal` holds writes to read.
fn open_read_only(path: &Path) -> Result<Connection, MigrateError> {
    let wal_has_writes = std::fs::metadata(sibling(path, "-wal")).is_ok_and(|wal| wal.len() > 0);
    let uri = format!("file:{}{}", uri_path(path), if wal_has_writes { "" } else { "?immutable=1" });
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_URI | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let connection = Connection::open_with_flags(uri, flags).map_err(|source| classify(path, source))?;
    // Belt and braces: this connection can never write, whatever the flags above allow.
    connection.pragma_update(None, "query_only", true).map_err(|source| classify(path, source))?;
    Ok(connection)
}

/// The path for an SQLite URI: every byte outside the unreserved set and `/` percent-encoded,
/// so `?`, `#` and `%` in a directory name stay part of the path.
fn uri_path(path: &Path) -> String {
    let mut uri = String::new();
    for &byte in path.as_os_str().as_encoded_bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'/' | b'-' | b'.' | b'_' | b'~') {
            uri.push(char::from(byte));
        } else {
            uri.push_str(&format!("%{byte:02X}"));
        }
    }
    uri
}

/// SQLite's error as a [`MigrateError`]: corrupt, not ours, or another failure.
fn classify(path: &Path, source: rusqlite::Error) -> MigrateError {
    let path = path.to_path_buf();
    match source.sqlite_error_code() {
        Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => MigrateError::Corrupt { path, source },
        _ if is_missing_schema(&source) => MigrateError::NotV1Store { path, detail: source.to_string() },
        _ => MigrateError::Sqlite { path, source },
    }
}

/// "no such table" / "no such column": an SQLite file, but not laid out as a v1 store.
fn is_missing_schema(error: &rusqlite::Error) -> bool {
    matches!(error, rusqlite::Error::SqliteFailure(_, Some(message)) if message.starts_with("no such "))
}

/// Decodes one row into an item, or says why it cannot be.
type Decode<T> = fn(&Row<'_>) -> Result<StoredItem<T>, RowError>;

/// Why one row was skipped.
enum RowError {
    /// The row's values do not decode: skip the row.
    Bad(String),
    /// Reading failed: stop.
    Sqlite(rusqlite::Error),
}

impl From<rusqlite::Error> for RowError {
    fn from(error: rusqlite::Error) -> Self {
        RowError::Sqlite(error)
    }
}

impl From<serde_json::Error> for RowError {
    fn from(error: serde_json::Error) -> Self {
        RowError::Bad(error.to_string())
    }
}

/// One table's rows in order, with the next item decoded.
struct Cursor<'statement, T> {
    rows: Rows<'statement>,
    decode: Decode<T>,
    head: Option<StoredItem<T>>,
}

impl<'statement, T> Cursor<'statement, T> {
    fn new(rows: Rows<'statement>, decode: Decode<T>) -> Self {
        Cursor { rows, decode, head: None }
    }

    /// Moves to the next row that decodes, counting the ones that do not as skipped.
    fn advance(&mut self, path: &Path, summary: &mut V1Summary) -> Result<(), MigrateError> {
        self.head = None;
        while let Some(row) = self.rows.next().map_err(|source| classify(path, source))? {
            match (self.decode)(row) {
                Ok(item) => {
                    self.head = Some(item);
                    break;
                }
                Err(RowError::Bad(reason)) => summary.skip(reason),
                Err(RowError::Sqlite(source)) => return Err(classify(path, source)),
            }
        }
        Ok(())
    }

    fn head_seq(&self) -> Option<i64> {
        self.head.as_ref().map(|item| item.seq)
    }

    /// Moves the head into the pending request and reads the next row; says whether the
    /// pending request is now full.
    fn step(
        &mut self,
        pending: &mut Pending<T>,
        read: &mut Progress<'_>,
        counted: fn(&mut V1Summary) -> &mut u64,
    ) -> Result<bool, MigrateError> {
        if let Some(item) = self.head.take() {
            let seq = item.seq;
            match pending.push(item) {
                Ok(()) => *counted(&mut read.summary) += 1,
                Err(error) => read.summary.skip(format!("row {seq}: resource: {error}")),
            }
        }
        self.advance(read.path, &mut read.summary)?;
        Ok(pending.len() >= read.max_items)
    }
}

impl V1Summary {
    fn skip(&mut self, reason: String) {
        self.skipped += 1;
        self.first_skipped.get_or_insert(reason);
    }
}

/// What one read is doing: where, in what sizes, and what it has read so far.
struct Progress<'a> {
    path: &'a Path,
    max_items: usize,
    summary: V1Summary,
}

/// The three tables' cursors walked in step, with a request per signal being filled.
struct Merge<'statement> {
    spans: Cursor<'statement, Span>,
    logs: Cursor<'statement, LogRecord>,
    metrics: Cursor<'statement, Metric>,
    pending_spans: Pending<Span>,
    pending_logs: Pending<LogRecord>,
    pending_metrics: Pending<Metric>,
}

/// A table, or the signal whose rows it holds.
#[derive(Clone, Copy)]
enum Table {
    Spans,
    Logs,
    Metrics,
}

impl Merge<'_> {
    fn run<E>(
        &mut self,
        read: &mut Progress<'_>,
        each: &mut impl FnMut(V1Chunk) -> Result<(), E>,
    ) -> Result<(), MigrateError>
    where
        E: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        self.spans.advance(read.path, &mut read.summary)?;
        self.logs.advance(read.path, &mut read.summary)?;
        self.metrics.advance(read.path, &mut read.summary)?;
        loop {
            let heads = [
                (self.spans.head_seq(), Table::Spans),
                (self.logs.head_seq(), Table::Logs),
                (self.metrics.head_seq(), Table::Metrics),
            ];
            let oldest = heads.into_iter().filter_map(|(seq, table)| Some((seq?, table))).min_by_key(|(seq, _)| *seq);
            let Some((_, table)) = oldest else { break };
            let full = match table {
                Table::Spans => self.spans.step(&mut self.pending_spans, read, |summary| &mut summary.spans)?,
                Table::Logs => self.logs.step(&mut self.pending_logs, read, |summary| &mut summary.logs)?,
                Table::Metrics => self.metrics.step(&mut self.pending_metrics, read, |summary| &mut summary.metrics)?,
            };
            if full {
                self.flush(read, each)?;
            }
        }
        self.flush(read, each)
    }

    /// Hands every pending request on, oldest first.
    fn flush<E>(
        &mut self,
        read: &mut Progress<'_>,
        each: &mut impl FnMut(V1Chunk) -> Result<(), E>,
    ) -> Result<(), MigrateError>
    where
        E: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let mut order = [
            (self.pending_spans.first_seq(), Table::Spans),
            (self.pending_logs.first_seq(), Table::Logs),
            (self.pending_metrics.first_seq(), Table::Metrics),
        ];
        order.sort_by_key(|(seq, _)| *seq);
        for (_, table) in order.into_iter().filter(|(seq, _)| seq.is_some()) {
            let chunk = match table {
                Table::Spans => V1Chunk::Traces(self.pending_spans.take_request()),
                Table::Logs => V1Chunk::Logs(self.pending_logs.take_request()),
                Table::Metrics => V1Chunk::Metrics(self.pending_metrics.take_request()),
            };
            read.summary.chunks += 1;
            each(chunk).map_err(|error| MigrateError::Import(error.into()))?;
        }
        Ok(())
    }
}

/// A required text column.
fn text(row: &Row<'_>, column: usize) -> Result<String, RowError> {
    Ok(row.get_ref(column)?.as_str().map_err(rusqlite::Error::from)?.to_owned())
}

/// A JSON column, decoded by `decode`; a failure names the column.
fn json<T>(
    row: &Row<'_>,
    column: usize,
    name: &str,
    decode: impl FnOnce(&str) -> v1_json::JsonResult<T>,
) -> Result<T, RowError> {
    let text = row.get_ref(column)?.as_str().map_err(rusqlite::Error::from)?;
    decode(text).map_err(|error| RowError::Bad(format!("{name}: {error}")))
}

/// An id column: its bytes, or none for `NULL`.
fn id(row: &Row<'_>, column: usize) -> Result<Vec<u8>, RowError> {
    match row.get_ref(column)? {
        ValueRef::Null => Ok(Vec::new()),
        ValueRef::Blob(bytes) => Ok(bytes.to_vec()),
        _ => Err(RowError::Bad(format!("column {column}: an id that is not a blob"))),
    }
}

/// Unix nanos as stored (SQLite's signed integer) back to OTLP's unsigned.
fn nanos(row: &Row<'_>, column: usize) -> Result<u64, RowError> {
    Ok(u64::try_from(row.get::<_, i64>(column)?).unwrap_or(0))
}

/// Adds the row's place to a decoding failure.
fn at<T>(table: &str, seq: i64, decoded: Result<T, RowError>) -> Result<T, RowError> {
    decoded.map_err(|error| match error {
        RowError::Bad(reason) => RowError::Bad(format!("{table} row {seq}: {reason}")),
        other => other,
    })
}

fn span_row(row: &Row<'_>) -> Result<StoredItem<Span>, RowError> {
    let seq: i64 = row.get(0)?;
    at("spans of trace", seq, decode_span(row, seq))
}

fn decode_span(row: &Row<'_>, seq: i64) -> Result<StoredItem<Span>, RowError> {
    let status_code: i32 = row.get(12)?;
    let status_message = text(row, 13)?;
    // The store kept (0, "") for a span without a status.
    let status = (status_code != 0 || !status_message.is_empty())
        .then_some(Status { message: status_message, code: status_code });
    let span = Span {
        trace_id: id(row, 1)?,
        span_id: id(row, 2)?,
        parent_span_id: id(row, 3)?,
        name: text(row, 4)?,
        kind: row.get(5)?,
        start_time_unix_nano: nanos(row, 6)?,
        end_time_unix_nano: nanos(row, 7)?,
        attributes: json(row, 8, "attributes", v1_json::attributes)?,
        events: json(row, 14, "events", v1_json::events)?,
        links: json(row, 15, "links", v1_json::links)?,
        status,
        ..Default::default()
    };
    Ok(StoredItem {
        seq,
        resource: text(row, 9)?,
        scope_name: text(row, 10)?,
        scope_version: text(row, 11)?,
        item: span,
    })
}

fn log_row(row: &Row<'_>) -> Result<StoredItem<LogRecord>, RowError> {
    let seq: i64 = row.get(0)?;
    at("logs", seq, decode_log(row, seq))
}

fn decode_log(row: &Row<'_>, seq: i64) -> Result<StoredItem<LogRecord>, RowError> {
    let record = LogRecord {
        time_unix_nano: nanos(row, 1)?,
        observed_time_unix_nano: nanos(row, 2)?,
        severity_number: row.get(3)?,
        severity_text: text(row, 4)?,
        body: json(row, 5, "body", v1_json::value)?,
        attributes: json(row, 6, "attributes", v1_json::attributes)?,
        trace_id: id(row, 10)?,
        span_id: id(row, 11)?,
        ..Default::default()
    };
    Ok(StoredItem {
        seq,
        resource: text(row, 7)?,
        scope_name: text(row, 8)?,
        scope_version: text(row, 9)?,
        item: record,
    })
}

fn metric_row(row: &Row<'_>) -> Result<StoredItem<Metric>, RowError> {
    let seq: i64 = row.get(0)?;
    at("metrics", seq, decode_metric(row, seq))
}

fn decode_metric(row: &Row<'_>, seq: i64) -> Result<StoredItem<Metric>, RowError> {
    let metric_type = row.get_ref(4)?.as_str().map_err(rusqlite::Error::from)?;
    let aggregation_temporality = row.get_ref(5)?.as_str_or_null().map_err(rusqlite::Error::from)?;
    let is_monotonic: Option<bool> = row.get(6)?;
    let shape = MetricShape { metric_type, aggregation_temporality, is_monotonic };
    let data = json(row, 7, "data_points", |points| v1_json::metric_data(&shape, points))?;
    let metric =
        Metric { name: text(row, 1)?, description: text(row, 2)?, unit: text(row, 3)?, data, ..Default::default() };
    Ok(StoredItem {
        seq,
        resource: text(row, 8)?,
        scope_name: text(row, 9)?,
        scope_version: text(row, 10)?,
        item: metric,
    })
}
