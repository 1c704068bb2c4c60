//! The store's SQLite schema, its connection settings, and opening connections with errors that
//! say what is wrong with the file.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, ErrorCode, OpenFlags, OptionalExtension};

use super::StoreError;

/// `PRAGMA user_version` of the schema below.
pub(super) const SCHEMA_VERSION: i64 = 1;

/// How long a connection waits for a lock before giving up with `SQLITE_BUSY` (only another
/// program holding the file can cause that; the lane then retries with backoff).
const BUSY_TIMEOUT: Duration = Duration::from_secs(2);

/// Bounds of the WAL's size between checkpoints, in pages: SQLite's default, and 16 MiB. Each
/// checkpoint costs two fsyncs, the bulk of a write's cost, so big stores checkpoint less often.
const MIN_CHECKPOINT_PAGES: i64 = 1000;
const MAX_CHECKPOINT_PAGES: i64 = 4096;
const ASSUMED_PAGE_SIZE: i64 = 4096;

/// Tables are in insertion order by their integer primary key (`seq`, shared by `traces`,
/// `logs` and `metrics`, so eviction can take the oldest across all three). `traces` holds one
/// summary row per trace, for listing and for evicting whole traces; `spans` holds the spans,
/// keyed by their trace's `seq` rather than its (random) id so that the span indexes grow in
/// insertion order: only the one-row-per-trace `trace_id` index takes random inserts.
const CREATE_TABLES: &str = "
CREATE TABLE traces (
    seq INTEGER PRIMARY KEY,
    trace_id BLOB NOT NULL UNIQUE,
    start_time INTEGER NOT NULL,
    end_time INTEGER NOT NULL,
    span_count INTEGER NOT NULL,
    bytes INTEGER NOT NULL,
    root_name TEXT NOT NULL,
    root_service TEXT,
    root_has_parent INTEGER NOT NULL,
    root_start INTEGER NOT NULL
);
CREATE INDEX traces_by_start ON traces (start_time);

CREATE TABLE spans (
    id INTEGER PRIMARY KEY,
    trace_seq INTEGER NOT NULL,
    trace_id BLOB NOT NULL,
    span_id BLOB NOT NULL,
    parent_span_id BLOB,
    name TEXT NOT NULL,
    kind INTEGER NOT NULL,
    start_time INTEGER NOT NULL,
    end_time INTEGER NOT NULL,
    attributes TEXT NOT NULL,
    resource TEXT NOT NULL,
    service TEXT,
    scope_name TEXT NOT NULL,
    scope_version TEXT NOT NULL,
    status_code INTEGER NOT NULL,
    status_message TEXT NOT NULL,
    events TEXT NOT NULL,
    links TEXT NOT NULL,
    size INTEGER NOT NULL
);
CREATE INDEX spans_by_trace ON spans (trace_seq, start_time);
CREATE INDEX spans_by_service ON spans (service, trace_seq);

CREATE TABLE logs (
    seq INTEGER PRIMARY KEY,
    time INTEGER NOT NULL,
    time_unix_nano INTEGER NOT NULL,
    observed_time_unix_nano INTEGER NOT NULL,
    severity_number INTEGER NOT NULL,
    severity_text TEXT NOT NULL,
    body TEXT NOT NULL,
    attributes TEXT NOT NULL,
    resource TEXT NOT NULL,
    service TEXT,
    scope_name TEXT NOT NULL,
    scope_version TEXT NOT NULL,
    trace_id BLOB,
    span_id BLOB,
    size INTEGER NOT NULL
);
CREATE INDEX logs_by_time ON logs (time);
CREATE INDEX logs_by_service ON logs (service, time);

CREATE TABLE metrics (
    seq INTEGER PRIMARY KEY,
    time INTEGER NOT NULL,
    name TEXT NOT NULL,
    description TEXT NOT NULL,
    unit TEXT NOT NULL,
    type TEXT NOT NULL,
    aggregation_temporality TEXT,
    is_monotonic INTEGER,
    data_points TEXT NOT NULL,
    resource TEXT NOT NULL,
    service TEXT,
    scope_name TEXT NOT NULL,
    scope_version TEXT NOT NULL,
    size INTEGER NOT NULL
);
CREATE INDEX metrics_by_time ON metrics (time);
CREATE INDEX metrics_by_name ON metrics (name, time);

CREATE TABLE totals (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    traces INTEGER NOT NULL,
    spans INTEGER NOT NULL,
    logs INTEGER NOT NULL,
    metrics INTEGER NOT NULL,
    bytes INTEGER NOT NULL
);
INSERT INTO totals (id, traces, spans, logs, metrics, bytes) VALUES (1, 0, 0, 0, 0, 0);
";

/// What the store holds, kept in the `totals` row in step with every write.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Totals {
    pub traces: i64,
    pub spans: i64,
    pub logs: i64,
    pub metrics: i64,
    pub bytes: i64,
}

/// Opens the write connection, creating or checking the schema. The WAL may grow to about a
/// sixteenth of `max_bytes` between checkpoints.
pub(super) fn open_writer(path: &Path, max_bytes: u64) -> Result<Connection, StoreError> {
    let fail = |source| classify_open_error(path, source);
    let mut connection = Connection::open(path).map_err(fail)?;
    connection.busy_timeout(BUSY_TIMEOUT).map_err(fail)?;
    connection.set_prepared_statement_cache_capacity(32);
    let version: i64 = connection.pragma_query_value(None, "user_version", |row| row.get(0)).map_err(fail)?;
    if version == 0 {
        // Lets freed pages be handed back to the file system (at start-up, never on the hot
        // path). Only takes effect on a new database, and only if set before WAL mode is.
        connection.pragma_update(None, "auto_vacuum", "INCREMENTAL").map_err(fail)?;
    }
    let journal_mode: String =
        connection.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0)).map_err(fail)?;
    if !journal_mode.eq_ignore_ascii_case("wal") {
        tracing::warn!(path = %path.display(), journal_mode, "local store: WAL mode unavailable here; readers may wait for writes");
    }
    connection.pragma_update(None, "synchronous", "NORMAL").map_err(fail)?;
    let checkpoint_pages = i64::try_from(max_bytes / 16)
        .unwrap_or(i64::MAX)
        .div_euclid(ASSUMED_PAGE_SIZE)
        .clamp(MIN_CHECKPOINT_PAGES, MAX_CHECKPOINT_PAGES);
    connection.pragma_update(None, "wal_autocheckpoint", checkpoint_pages).map_err(fail)?;
    // After a checkpoint, the WAL file is truncated back to this.
    connection.pragma_update(None, "journal_size_limit", checkpoint_pages * ASSUMED_PAGE_SIZE).map_err(fail)?;

    match version {
        0 => {
            let transaction = connection.transaction().map_err(fail)?;
            transaction.execute_batch(CREATE_TABLES).map_err(fail)?;
            transaction.pragma_update(None, "user_version", SCHEMA_VERSION).map_err(fail)?;
            transaction.commit().map_err(fail)?;
        }
        SCHEMA_VERSION => {}
        found => {
            return Err(StoreError::UnknownSchema { path: path.to_path_buf(), found, known: SCHEMA_VERSION });
        }
    }
    Ok(connection)
}

/// Opens one read connection; it can never write.
pub(super) fn open_reader(path: &Path) -> Result<Connection, StoreError> {
    let fail = |source| classify_open_error(path, source);
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI;
    let connection = Connection::open_with_flags(path, flags).map_err(fail)?;
    connection.busy_timeout(BUSY_TIMEOUT).map_err(fail)?;
    connection.set_prepared_statement_cache_capacity(16);
    connection.pragma_update(None, "query_only", true).map_err(fail)?;
    Ok(connection)
}

pub(super) fn read_totals(connection: &Connection) -> rusqlite::Result<Totals> {
    let totals = connection
        .query_row("SELECT traces, spans, logs, metrics, bytes FROM totals WHERE id = 1", [], |row| {
            Ok(Totals {
                traces: row.get(0)?,
                spans: row.get(1)?,
                logs: row.get(2)?,
                metrics: row.get(3)?,
                bytes: row.get(4)?,
            })
        })
        .optional()?;
    Ok(totals.unwrap_or_default())
}

pub(super) fn write_totals(connection: &Connection, totals: &Totals) -> rusqlite::Result<()> {
    connection
        .prepare_cached(
            "INSERT OR REPLACE INTO totals (id, traces, spans, logs, metrics, bytes) VALUES (1, ?1, ?2, ?3, ?4, ?5)",
        )?
        .execute((totals.traces, totals.spans, totals.logs, totals.metrics, totals.bytes))?;
    Ok(())
}

/// The next free `seq`: one past the newest row of any table.
pub(super) fn next_seq(connection: &Connection) -> rusqlite::Result<i64> {
    connection.query_row(
        "SELECT max(coalesce((SELECT max(seq) FROM traces), 0),
                    coalesce((SELECT max(seq) FROM logs), 0),
                    coalesce((SELECT max(seq) FROM metrics), 0)) + 1",
        [],
        |row| row.get(0),
    )
}

/// Bytes of the file's pages in use (not on the freelist), and of the whole file.
pub(super) fn page_usage(connection: &Connection) -> rusqlite::Result<(u64, u64)> {
    let page_size: i64 = connection.pragma_query_value(None, "page_size", |row| row.get(0))?;
    let page_count: i64 = connection.pragma_query_value(None, "page_count", |row| row.get(0))?;
    let freelist_count: i64 = connection.pragma_query_value(None, "freelist_count", |row| row.get(0))?;
    let used = (page_count - freelist_count).max(0) * page_size;
    Ok((u64::try_from(used).unwrap_or(0), u64::try_from(page_count * page_size).unwrap_or(0)))
}

/// Whether an error means "try again": the database is busy or locked by someone else.
pub(super) fn is_busy(error: &rusqlite::Error) -> bool {
    matches!(error.sqlite_error_code(), Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked))
}

fn classify_open_error(path: &Path, source: rusqlite::Error) -> StoreError {
    let path = path.to_path_buf();
    match source.sqlite_error_code() {
        Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => StoreError::Corrupt { path, source },
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => StoreError::Busy { path, source },
        _ => StoreError::Open { path, source },
    }
}
