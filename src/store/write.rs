//! The store's single writer: a dedicated thread that owns the write connection, inserts each
//! request in one transaction and, in that same transaction, evicts the oldest data to stay
//! under the size bound.

use std::fs::File;
use std::ops::AddAssign;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, TransactionBehavior};
use tokio::sync::oneshot;

use super::StoreStats;
use super::rows::Rows;
use super::schema::{self, Totals};

/// Eviction brings the store down to this share of its bound, so it does not run on every write.
const EVICTION_TARGET_PERCENT: u64 = 90;

/// Passes of eviction per write driven by the file's real page usage, once the counted bytes
/// are under the bound (the count is an estimate; this keeps the file honest).
const PAGE_USAGE_PASSES: usize = 4;

/// Rows to write, and where to send them back with the outcome.
pub(super) struct WriteJob {
    pub rows: Rows,
    pub reply: oneshot::Sender<WriteReply>,
}

/// The rows come back so a failed write can be retried without building them again.
pub(super) struct WriteReply {
    pub rows: Rows,
    pub result: rusqlite::Result<()>,
}

/// Owns the write connection; everything that changes the database goes through here.
pub(super) struct Writer {
    connection: Connection,
    max_bytes: u64,
    /// Next value of the insertion sequence shared by `traces`, `logs` and `metrics`.
    next_seq: i64,
    totals: Totals,
    stats: Arc<Mutex<StoreStats>>,
    /// Held while the writer lives, so a second waggle cannot write the same store.
    _lock: File,
}

/// What one eviction removed.
#[derive(Clone, Copy, Debug, Default)]
struct Evicted {
    traces: i64,
    spans: i64,
    logs: i64,
    metrics: i64,
    bytes: i64,
}

impl AddAssign for Evicted {
    fn add_assign(&mut self, other: Evicted) {
        self.traces += other.traces;
        self.spans += other.spans;
        self.logs += other.logs;
        self.metrics += other.metrics;
        self.bytes += other.bytes;
    }
}

impl Writer {
    pub(super) fn new(
        connection: Connection,
        max_bytes: u64,
        stats: Arc<Mutex<StoreStats>>,
        lock: File,
    ) -> rusqlite::Result<Writer> {
        let totals = schema::read_totals(&connection)?;
        let next_seq = schema::next_seq(&connection)?;
        let writer = Writer { connection, max_bytes, next_seq, totals, stats, _lock: lock };
        writer.publish(Evicted::default());
        Ok(writer)
    }

    /// Brings a store left bigger than the bound (the bound was lowered) under it, and gives
    /// the freed pages back to the file system. Start-up only: this can take a while.
    pub(super) fn shrink_to_bound(&mut self) -> rusqlite::Result<()> {
        let (used_bytes, _) = schema::page_usage(&self.connection)?;
        if unsigned(self.totals.bytes) <= self.max_bytes && used_bytes <= self.max_bytes {
            return Ok(());
        }
        let mut totals = self.totals;
        let transaction = self.connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let evicted = evict_to_bound(&transaction, &mut totals, self.max_bytes)?;
        schema::write_totals(&transaction, &totals)?;
        transaction.commit()?;
        self.totals = totals;
        self.publish(evicted);
        let (_, file_bytes) = schema::page_usage(&self.connection)?;
        if file_bytes > self.max_bytes {
            // Hands the free pages back (one per row stepped), then checkpoints so the main file
            // shrinks now rather than at some later checkpoint.
            let mut vacuum = self.connection.prepare("PRAGMA incremental_vacuum")?;
            let mut freed_pages = vacuum.query([])?;
            while freed_pages.next()?.is_some() {}
            drop(freed_pages);
            drop(vacuum);
            self.connection.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")?;
        }
        Ok(())
    }

    /// Serves write jobs until every sender is gone.
    pub(super) fn run(mut self, jobs: mpsc::Receiver<WriteJob>) {
        while let Ok(WriteJob { rows, reply }) = jobs.recv() {
            let result = self.write(&rows);
            // The sender may have stopped waiting (shutdown); the write stands either way.
            let _ = reply.send(WriteReply { rows, result });
        }
    }

    /// Inserts the rows and evicts what the bound requires, in one transaction.
    pub(super) fn write(&mut self, rows: &Rows) -> rusqlite::Result<()> {
        let mut totals = self.totals;
        let mut next_seq = self.next_seq;
        let transaction = self.connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let trace_seqs = upsert_traces(&transaction, rows, &mut next_seq)?;
        totals.traces += trace_seqs.new_traces;
        insert_spans(&transaction, rows, &trace_seqs.seqs)?;
        insert_logs(&transaction, rows, &mut next_seq)?;
        insert_metrics(&transaction, rows, &mut next_seq)?;
        totals.spans += count(rows.spans.len());
        totals.logs += count(rows.logs.len());
        totals.metrics += count(rows.metrics.len());
        totals.bytes += i64::try_from(rows.bytes()).unwrap_or(i64::MAX);
        let evicted = evict_to_bound(&transaction, &mut totals, self.max_bytes)?;
        schema::write_totals(&transaction, &totals)?;
        transaction.commit()?;
        self.totals = totals;
        self.next_seq = next_seq;
        self.publish(evicted);
        Ok(())
    }

    fn publish(&self, evicted: Evicted) {
        let mut stats = self.stats.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let totals = &self.totals;
        stats.max_bytes = self.max_bytes;
        stats.bytes = unsigned(totals.bytes);
        stats.traces = unsigned(totals.traces);
        stats.spans = unsigned(totals.spans);
        stats.logs = unsigned(totals.logs);
        stats.metrics = unsigned(totals.metrics);
        stats.evicted_bytes += unsigned(evicted.bytes);
        stats.evicted_traces += unsigned(evicted.traces);
        stats.evicted_spans += unsigned(evicted.spans);
        stats.evicted_logs += unsigned(evicted.logs);
        stats.evicted_metrics += unsigned(evicted.metrics);
    }
}

/// The stored `seq` of each of a request's traces.
struct TraceSeqs {
    /// In the order of [`Rows::traces`].
    seqs: Vec<i64>,
    new_traces: i64,
}

/// Merges this request's trace summaries into the stored ones.
fn upsert_traces(connection: &Connection, rows: &Rows, next_seq: &mut i64) -> rusqlite::Result<TraceSeqs> {
    let mut statement = connection.prepare_cached(
        "INSERT INTO traces (seq, trace_id, start_time, end_time, span_count, bytes,
                             root_name, root_service, root_has_parent, root_start)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
         ON CONFLICT (trace_id) DO UPDATE SET
             start_time = min(start_time, excluded.start_time),
             end_time = max(end_time, excluded.end_time),
             span_count = span_count + excluded.span_count,
             bytes = bytes + excluded.bytes,
             root_name = CASE WHEN (excluded.root_has_parent, excluded.root_start) < (root_has_parent, root_start)
                              THEN excluded.root_name ELSE root_name END,
             root_service = CASE WHEN (excluded.root_has_parent, excluded.root_start) < (root_has_parent, root_start)
                                 THEN excluded.root_service ELSE root_service END,
             root_start = CASE WHEN (excluded.root_has_parent, excluded.root_start) < (root_has_parent, root_start)
                               THEN excluded.root_start ELSE root_start END,
             root_has_parent = CASE WHEN (excluded.root_has_parent, excluded.root_start) < (root_has_parent, root_start)
                                    THEN excluded.root_has_parent ELSE root_has_parent END
         RETURNING seq",
    )?;
    let mut seqs = Vec::with_capacity(rows.traces.len());
    let mut new_traces = 0;
    for trace in &rows.traces {
        let seq = *next_seq;
        *next_seq += 1;
        let stored_seq: i64 = statement.query_row(
            (
                seq,
                trace.trace_id.as_slice(),
                trace.start_time,
                trace.end_time,
                trace.span_count,
                trace.bytes,
                rows.sql(trace.root_name),
                rows.sql_opt(trace.root_service),
                trace.root_has_parent,
                trace.root_start,
            ),
            |row| row.get(0),
        )?;
        if stored_seq == seq {
            new_traces += 1;
        }
        seqs.push(stored_seq);
    }
    Ok(TraceSeqs { seqs, new_traces })
}

fn insert_spans(connection: &Connection, rows: &Rows, trace_seqs: &[i64]) -> rusqlite::Result<()> {
    let mut statement = connection.prepare_cached(
        "INSERT INTO spans (trace_seq, trace_id, span_id, parent_span_id, name, kind, start_time, end_time,
                            attributes, resource, service, scope_name, scope_version, status_code,
                            status_message, events, links, size)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)",
    )?;
    for span in &rows.spans {
        let Some(trace_seq) = trace_seqs.get(span.trace_index) else {
            return Err(rusqlite::Error::InvalidParameterName(format!("no trace for span {}", span.trace_index)));
        };
        // 18 values: more than rusqlite's tuple parameters take.
        statement.execute(rusqlite::params![
            trace_seq,
            span.trace_id.as_slice(),
            span.span_id.as_slice(),
            span.parent_span_id.as_ref().map(<[u8; 8]>::as_slice),
            rows.sql(span.name),
            span.kind,
            span.start_time,
            span.end_time,
            rows.sql(span.attributes),
            rows.sql(span.resource),
            rows.sql_opt(span.service),
            rows.sql(span.scope_name),
            rows.sql(span.scope_version),
            span.status_code,
            rows.sql(span.status_message),
            rows.sql(span.events),
            rows.sql(span.links),
            span.size,
        ])?;
    }
    Ok(())
}

fn insert_logs(connection: &Connection, rows: &Rows, next_seq: &mut i64) -> rusqlite::Result<()> {
    let mut statement = connection.prepare_cached(
        "INSERT INTO logs (seq, time, time_unix_nano, observed_time_unix_nano, severity_number, severity_text,
                           body, attributes, resource, service, scope_name, scope_version, trace_id, span_id, size)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
    )?;
    for log in &rows.logs {
        let seq = *next_seq;
        *next_seq += 1;
        statement.execute((
            seq,
            log.time,
            log.time_unix_nano,
            log.observed_time_unix_nano,
            log.severity_number,
            rows.sql(log.severity_text),
            rows.sql(log.body),
            rows.sql(log.attributes),
            rows.sql(log.resource),
            rows.sql_opt(log.service),
            rows.sql(log.scope_name),
            rows.sql(log.scope_version),
            log.trace_id.as_ref().map(<[u8; 16]>::as_slice),
            log.span_id.as_ref().map(<[u8; 8]>::as_slice),
            log.size,
        ))?;
    }
    Ok(())
}

fn insert_metrics(connection: &Connection, rows: &Rows, next_seq: &mut i64) -> rusqlite::Result<()> {
    let mut statement = connection.prepare_cached(
        "INSERT INTO metrics (seq, time, name, description, unit, type, aggregation_temporality, is_monotonic,
                              data_points, resource, service, scope_name, scope_version, size)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
    )?;
    for metric in &rows.metrics {
        let seq = *next_seq;
        *next_seq += 1;
        statement.execute((
            seq,
            metric.time,
            rows.sql(metric.name),
            rows.sql(metric.description),
            rows.sql(metric.unit),
            metric.metric_type,
            metric.aggregation_temporality,
            metric.is_monotonic,
            rows.sql(metric.data_points),
            rows.sql(metric.resource),
            rows.sql_opt(metric.service),
            rows.sql(metric.scope_name),
            rows.sql(metric.scope_version),
            metric.size,
        ))?;
    }
    Ok(())
}

/// Evicts the oldest data until the counted bytes are back under the target, then keeps going
/// while the pages the file really uses are over the bound.
fn evict_to_bound(connection: &Connection, totals: &mut Totals, max_bytes: u64) -> rusqlite::Result<Evicted> {
    let max = i64::try_from(max_bytes).unwrap_or(i64::MAX);
    let target = i64::try_from(max_bytes / 100 * EVICTION_TARGET_PERCENT).unwrap_or(i64::MAX);
    let mut evicted = Evicted::default();
    if totals.bytes > max {
        evicted += evict_oldest(connection, totals, totals.bytes - target)?;
    }
    for _ in 0..PAGE_USAGE_PASSES {
        let (used, _) = schema::page_usage(connection)?;
        let used = i64::try_from(used).unwrap_or(i64::MAX);
        if used <= max || totals.bytes <= 0 {
            break;
        }
        evicted += evict_oldest(connection, totals, (used - target).min(totals.bytes))?;
    }
    Ok(evicted)
}

/// The tables eviction takes rows from, each in insertion (`seq`) order.
const TRACES: usize = 0;
const LOGS: usize = 1;
const METRICS: usize = 2;

/// Deletes at least `wanted` counted bytes, oldest first across traces (whole traces: the trace
/// first seen longest ago, with all its spans), logs and metrics.
fn evict_oldest(connection: &Connection, totals: &mut Totals, wanted: i64) -> rusqlite::Result<Evicted> {
    let mut evicted = Evicted::default();
    // The newest `seq` to delete in each table: what goes is always a prefix of each table.
    let mut cut: [Option<i64>; 3] = [None; 3];
    {
        let mut oldest_traces = connection.prepare_cached("SELECT seq, bytes, span_count FROM traces ORDER BY seq")?;
        let mut oldest_logs = connection.prepare_cached("SELECT seq, size, 1 FROM logs ORDER BY seq")?;
        let mut oldest_metrics = connection.prepare_cached("SELECT seq, size, 1 FROM metrics ORDER BY seq")?;
        let mut cursors = [
            Oldest::start(oldest_traces.query([])?)?,
            Oldest::start(oldest_logs.query([])?)?,
            Oldest::start(oldest_metrics.query([])?)?,
        ];
        while evicted.bytes < wanted {
            let next = (0..cursors.len())
                .filter_map(|table| cursors[table].head.map(|head| (head.seq, table)))
                .min()
                .map(|(_, table)| table);
            let Some(table) = next else { break };
            let Some(head) = cursors[table].head else { break };
            evicted.bytes += head.bytes;
            match table {
                TRACES => {
                    evicted.traces += 1;
                    evicted.spans += head.items;
                }
                LOGS => evicted.logs += 1,
                _ => evicted.metrics += 1,
            }
            cut[table] = Some(head.seq);
            cursors[table].advance()?;
        }
    }
    if let Some(seq) = cut[TRACES] {
        connection.prepare_cached("DELETE FROM spans WHERE trace_seq <= ?1")?.execute([seq])?;
        connection.prepare_cached("DELETE FROM traces WHERE seq <= ?1")?.execute([seq])?;
    }
    if let Some(seq) = cut[LOGS] {
        connection.prepare_cached("DELETE FROM logs WHERE seq <= ?1")?.execute([seq])?;
    }
    if let Some(seq) = cut[METRICS] {
        connection.prepare_cached("DELETE FROM metrics WHERE seq <= ?1")?.execute([seq])?;
    }
    totals.traces -= evicted.traces;
    totals.spans -= evicted.spans;
    totals.logs -= evicted.logs;
    totals.metrics -= evicted.metrics;
    totals.bytes = (totals.bytes - evicted.bytes).max(0);
    Ok(evicted)
}

/// One table's rows, oldest first, with the current one at hand.
struct Oldest<'statement> {
    rows: rusqlite::Rows<'statement>,
    head: Option<OldestRow>,
}

#[derive(Clone, Copy)]
struct OldestRow {
    seq: i64,
    bytes: i64,
    /// Spans for a trace, 1 for a log record or metric.
    items: i64,
}

impl<'statement> Oldest<'statement> {
    fn start(rows: rusqlite::Rows<'statement>) -> rusqlite::Result<Self> {
        let mut oldest = Oldest { rows, head: None };
        oldest.advance()?;
        Ok(oldest)
    }

    fn advance(&mut self) -> rusqlite::Result<()> {
        self.head = match self.rows.next()? {
            Some(row) => Some(OldestRow { seq: row.get(0)?, bytes: row.get(1)?, items: row.get(2)? }),
            None => None,
        };
        Ok(())
    }
}

fn count(rows: usize) -> i64 {
    i64::try_from(rows).unwrap_or(i64::MAX)
}

fn unsigned(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}
