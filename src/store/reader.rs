//! The read side of the store: recent traces, one trace, recent log records and metrics, each
//! answered from the blocks newest first, on tokio's blocking pool.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use super::block::{Block, Group, Kind, key};
use super::dependencies::{Dependencies, DependencySearch};
use super::engine::{Engine, Source};
use super::find;
use super::search::{LogSearch, Operation, TraceSearch};
use super::views::{
    LogEntry, MetricEntry, Scope, SpanStatus, SpanView, TraceDetail, TraceSummary, duration_ms, span_kind, status_code,
};
use super::{StoreError, StoreStats};

/// The read side of the store, for the query API. Cheap to clone; queries run off the async
/// runtime and never wait for a block to be written.
#[derive(Clone)]
pub struct StoreReader {
    engine: Arc<Engine>,
}

/// What a trace in a listing is built from, row by row.
struct TraceAccumulator {
    start: i64,
    end: i64,
    spans: u64,
    /// The best root so far: (has a parent, start, name, service).
    root: (bool, i64, String, Option<String>),
    /// Distinct `service.name`s of its spans (few per trace: a list beats a set).
    services: Vec<String>,
    matches: bool,
    /// Order of first sight (newest block first): ties in start time list the newer first.
    seen: usize,
}

impl StoreReader {
    pub(crate) fn new(engine: Arc<Engine>) -> StoreReader {
        StoreReader { engine }
    }

    pub(crate) fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    /// What the store holds and has evicted since start-up.
    pub fn stats(&self) -> StoreStats {
        self.engine.stats()
    }

    /// The most recent traces (by start time, newest first); with `service`, only traces with
    /// a span of that service.
    pub async fn recent_traces(&self, service: Option<String>, limit: usize) -> Result<Vec<TraceSummary>, StoreError> {
        self.run(move |engine| recent_traces(engine, service.as_deref(), limit)).await
    }

    /// Every stored span of one trace, by start time; `None` when the trace is unknown.
    pub async fn trace(&self, trace_id: [u8; 16]) -> Result<Option<TraceDetail>, StoreError> {
        self.run(move |engine| {
            let spans = trace_spans(engine, trace_id)?;
            if spans.is_empty() {
                return Ok(None);
            }
            let logs = find::trace_logs(engine, &HashSet::from([trace_id]))?.remove(&trace_id).unwrap_or_default();
            Ok(Some(TraceDetail { trace_id: hex::encode(trace_id), spans, logs }))
        })
        .await
    }

    /// Every service that has a stored span, sorted.
    pub async fn services(&self) -> Result<Vec<String>, StoreError> {
        self.run(|engine| Ok(find::services(engine))).await
    }

    /// The distinct (span name, span kind) pairs of a service's stored spans, sorted by name.
    pub async fn operations(&self, service: String) -> Result<Vec<Operation>, StoreError> {
        self.run(move |engine| Ok(find::operations(engine, &service))).await
    }

    /// Whole traces (spans and log records) with a span that meets every condition of
    /// `search`, newest (by trace start) first, at most `search.limit`.
    pub async fn search_traces(&self, search: TraceSearch) -> Result<Vec<TraceDetail>, StoreError> {
        self.run(move |engine| find::search_traces(engine, &search)).await
    }

    /// Log records that meet every condition of `search`, newest first, at most `search.limit`.
    pub async fn search_logs(&self, search: LogSearch) -> Result<Vec<LogEntry>, StoreError> {
        self.run(move |engine| find::search_logs(engine, &search)).await
    }

    /// The most recent log records (by time, newest first), optionally of one service.
    pub async fn recent_logs(&self, service: Option<String>, limit: usize) -> Result<Vec<LogEntry>, StoreError> {
        self.run(move |engine| {
            let rows = newest_rows(engine, Kind::Logs, limit, |block, row| {
                service.as_deref().is_none_or(|service| block.group(row).and_then(Group::service) == Some(service))
            })?;
            Ok(rows.iter().map(|(block, row)| log_entry(block, *row)).collect())
        })
        .await
    }

    /// The most recent metrics (by their latest data point, newest first), optionally by name.
    pub async fn recent_metrics(&self, name: Option<String>, limit: usize) -> Result<Vec<MetricEntry>, StoreError> {
        self.run(move |engine| {
            let rows = newest_rows(engine, Kind::Metrics, limit, |block, row| {
                name.as_deref().is_none_or(|name| block.text(key::NAME, row) == name)
            })?;
            Ok(rows.iter().map(|(block, row)| metric_entry(block, *row)).collect())
        })
        .await
    }

    /// Calls between services whose callee span started in the search's range (Jaeger's
    /// dependency links, with errors and P90).
    pub async fn dependencies(&self, search: DependencySearch) -> Result<Dependencies, StoreError> {
        self.run(move |engine| super::dependencies::dependencies(engine, search)).await
    }

    /// Runs a read on the blocking pool.
    pub(crate) async fn run<T, Read>(&self, read: Read) -> Result<T, StoreError>
    where
        T: Send + 'static,
        Read: FnOnce(&Engine) -> Result<T, StoreError> + Send + 'static,
    {
        let engine = Arc::clone(&self.engine);
        tokio::task::spawn_blocking(move || read(&engine))
            .await
            .map_err(|error| StoreError::QueryTask(error.to_string()))?
    }
}

fn recent_traces(engine: &Engine, service: Option<&str>, limit: usize) -> Result<Vec<TraceSummary>, StoreError> {
    let tombstones = engine.tombstones();
    let wanted = |name: &str| {
        matches!(name, key::TRACE_ID | key::PARENT_SPAN_ID | key::TIME | key::END | key::NAME | key::GROUP)
    };
    let mut traces: HashMap<[u8; 16], TraceAccumulator> = HashMap::new();
    let mut matching = 0;
    for source in engine.sources(Kind::Spans, &|open| open.snapshot(&wanted)) {
        let full = matching >= limit;
        if full
            && let Source::Sealed(meta) = &source
            && !traces.keys().any(|id| meta.bloom.may_contain(id))
        {
            continue;
        }
        let block = engine.load(&source, &wanted)?;
        let ids = block.id16(key::TRACE_ID);
        let parents = block.id8(key::PARENT_SPAN_ID);
        let starts = block.ints(key::TIME);
        let ends = block.ints(key::END);
        for row in 0..block.rows {
            let Some(id) = ids.get(row) else { break };
            if tombstones.contains_key(id) {
                continue;
            }
            let start = starts.get(row).copied().unwrap_or(0);
            let end = ends.get(row).copied().unwrap_or(start);
            let has_parent = parents.get(row).is_some_and(|parent| *parent != [0; 8]);
            let span_service = block.group(row).and_then(Group::service);
            let next = traces.len();
            let trace = match traces.get_mut(id) {
                Some(trace) => trace,
                None if full => continue,
                None => {
                    if service.is_none() {
                        matching += 1;
                    }
                    traces.entry(*id).or_insert_with(|| TraceAccumulator {
                        start,
                        end,
                        spans: 0,
                        root: (true, i64::MAX, String::new(), None),
                        services: Vec::new(),
                        matches: service.is_none(),
                        seen: next,
                    })
                }
            };
            trace.start = trace.start.min(start);
            trace.end = trace.end.max(end);
            trace.spans += 1;
            if let Some(name) = span_service
                && !trace.services.iter().any(|known| known == name)
            {
                trace.services.push(name.to_owned());
            }
            if (has_parent, start) < (trace.root.0, trace.root.1) {
                trace.root =
                    (has_parent, start, block.text(key::NAME, row).to_owned(), span_service.map(str::to_owned));
            }
            if !trace.matches && span_service == service {
                trace.matches = true;
                matching += 1;
            }
        }
    }
    let mut listed: Vec<([u8; 16], TraceAccumulator)> = traces.into_iter().filter(|(_, trace)| trace.matches).collect();
    listed.sort_by(|a, b| b.1.start.cmp(&a.1.start).then(a.1.seen.cmp(&b.1.seen)));
    listed.truncate(limit);
    Ok(listed
        .into_iter()
        .map(|(id, mut trace)| TraceSummary {
            trace_id: hex::encode(id),
            root_name: trace.root.2,
            service: trace.root.3,
            services: {
                trace.services.sort_unstable();
                trace.services
            },
            start_time_unix_nano: unsigned(trace.start),
            duration_ms: duration_ms(trace.start, trace.end),
            span_count: trace.spans,
        })
        .collect())
}

/// Every span of one trace, by start time.
pub(crate) fn trace_spans(engine: &Engine, trace_id: [u8; 16]) -> Result<Vec<SpanView>, StoreError> {
    if engine.tombstones().contains_key(&trace_id) {
        return Ok(Vec::new());
    }
    let mut spans = Vec::new();
    for source in engine.sources(Kind::Spans, &|open| open.trace_rows(&trace_id)) {
        if let Source::Sealed(meta) = &source {
            if !meta.bloom.may_contain(&trace_id) {
                continue;
            }
            // The Bloom filter may be wrong: read the ids alone first, the rest only on a match.
            let ids = engine.load(&source, &|name| name == key::TRACE_ID)?;
            if !ids.id16(key::TRACE_ID).contains(&trace_id) {
                continue;
            }
        }
        let block = engine.load(&source, &|_| true)?;
        let ids = block.id16(key::TRACE_ID);
        spans.extend((0..block.rows).filter(|&row| ids.get(row) == Some(&trace_id)).map(|row| span_view(&block, row)));
    }
    // Blocks were read newest first; a stable sort keeps arrival order among equal starts.
    spans.reverse();
    spans.sort_by_key(|span| span.start_time_unix_nano);
    Ok(spans)
}

/// The newest `limit` rows of `kind` that `keep` says yes to, newest first by their time.
pub(crate) fn newest_rows(
    engine: &Engine,
    kind: Kind,
    limit: usize,
    keep: impl Fn(&Block, usize) -> bool,
) -> Result<Vec<(Arc<Block>, usize)>, StoreError> {
    let mut found: Vec<(i64, u64, usize, Arc<Block>)> = Vec::new();
    for source in engine.sources(kind, &|open| open.snapshot(&|_| true)) {
        if found.len() >= limit
            && let Source::Sealed(meta) = &source
        {
            let oldest_kept = found.iter().map(|(time, ..)| *time).min().unwrap_or(i64::MIN);
            if meta.max_time < oldest_kept {
                continue;
            }
        }
        let block = engine.load(&source, &|_| true)?;
        let times = block.ints(key::TIME);
        for row in (0..block.rows).rev() {
            if keep(&block, row) {
                found.push((times.get(row).copied().unwrap_or(0), source.seq(), row, Arc::clone(&block)));
            }
        }
        found.sort_by_key(|(time, seq, row, _)| std::cmp::Reverse((*time, *seq, *row)));
        found.truncate(limit);
    }
    Ok(found.into_iter().map(|(_, _, row, block)| (block, row)).collect())
}

pub(crate) fn span_view(block: &Block, row: usize) -> SpanView {
    let start = block.int(key::TIME, row);
    let end = block.int(key::END, row);
    let group = block.group(row);
    let parent = block.id8(key::PARENT_SPAN_ID).get(row).filter(|parent| **parent != [0; 8]);
    SpanView {
        trace_id: hex::encode(block.id16(key::TRACE_ID).get(row).copied().unwrap_or_default()),
        span_id: hex::encode(block.id8(key::SPAN_ID).get(row).copied().unwrap_or_default()),
        parent_span_id: parent.map(hex::encode),
        name: block.text(key::NAME, row).to_owned(),
        kind: span_kind(i32::try_from(block.int(key::SPAN_KIND, row)).unwrap_or(0)),
        start_time_unix_nano: unsigned(start),
        end_time_unix_nano: unsigned(end),
        duration_ms: duration_ms(start, end),
        service: group.and_then(Group::service).map(str::to_owned),
        attributes: block.attributes_json(row),
        resource: group.map_or_else(|| serde_json::json!({}), Group::resource_json),
        scope: scope(group),
        status: SpanStatus {
            code: status_code(i32::try_from(block.int(key::STATUS_CODE, row)).unwrap_or(0)),
            message: block.text(key::STATUS_MESSAGE, row).to_owned(),
        },
        events: block.json(key::EVENTS, row, serde_json::json!([])),
        links: block.json(key::LINKS, row, serde_json::json!([])),
    }
}

pub(crate) fn log_entry(block: &Block, row: usize) -> LogEntry {
    let group = block.group(row);
    LogEntry {
        time_unix_nano: unsigned(block.int(key::RECORD_TIME, row)),
        observed_time_unix_nano: unsigned(block.int(key::OBSERVED_TIME, row)),
        severity_number: i32::try_from(block.int(key::SEVERITY_NUMBER, row)).unwrap_or(0),
        severity_text: block.text(key::SEVERITY_TEXT, row).to_owned(),
        body: block.json(key::BODY, row, serde_json::Value::Null),
        attributes: block.attributes_json(row),
        resource: group.map_or_else(|| serde_json::json!({}), Group::resource_json),
        service: group.and_then(Group::service).map(str::to_owned),
        scope: scope(group),
        trace_id: block.id16(key::TRACE_ID).get(row).filter(|id| **id != [0; 16]).map(hex::encode),
        span_id: block.id8(key::SPAN_ID).get(row).filter(|id| **id != [0; 8]).map(hex::encode),
    }
}

fn metric_entry(block: &Block, row: usize) -> MetricEntry {
    let group = block.group(row);
    let temporality = block.values(key::TEMPORALITY).and_then(|values| values.str(row)).map(str::to_owned);
    let monotonic = match block.values(key::MONOTONIC).and_then(|values| values.get(row)) {
        Some(super::value::ValueRef::Bool(flag)) => Some(flag),
        _ => None,
    };
    MetricEntry {
        name: block.text(key::NAME, row).to_owned(),
        description: block.text(key::DESCRIPTION, row).to_owned(),
        unit: block.text(key::UNIT, row).to_owned(),
        metric_type: block.text(key::METRIC_TYPE, row).to_owned(),
        aggregation_temporality: temporality,
        is_monotonic: monotonic,
        time_unix_nano: unsigned(block.int(key::TIME, row)),
        service: group.and_then(Group::service).map(str::to_owned),
        resource: group.map_or_else(|| serde_json::json!({}), Group::resource_json),
        scope: scope(group),
        data_points: block.json(key::DATA_POINTS, row, serde_json::json!([])),
    }
}

fn scope(group: Option<&Group>) -> Scope {
    Scope {
        name: group.map(|group| group.scope_name.clone()).unwrap_or_default(),
        version: group.map(|group| group.scope_version.clone()).unwrap_or_default(),
    }
}

fn unsigned(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}
