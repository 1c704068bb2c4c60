//! Searches over the blocks: traces by a span that meets every condition (Jaeger's semantics),
//! log records by service, severity, text, trace and time, a trace's log records, and the
//! services and operations stored.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use super::StoreError;
use super::block::{Block, Group, Kind, attribute_key, key};
use super::engine::{Engine, Source};
use super::reader::{log_entry, newest_rows, span_view};
use super::search::{LogSearch, Operation, TraceSearch};
use super::value::ValueRef;
use super::views::{LogEntry, TraceDetail, span_kind};

/// Every service with a stored span, sorted.
pub(crate) fn services(engine: &Engine) -> Vec<String> {
    let services: HashSet<String> =
        engine.operations().into_iter().map(|operation| operation.service).filter(|s| !s.is_empty()).collect();
    let mut services: Vec<String> = services.into_iter().collect();
    services.sort();
    services
}

/// The distinct (name, kind) of a service's spans, sorted by name.
pub(crate) fn operations(engine: &Engine, service: &str) -> Vec<Operation> {
    let operations: BTreeSet<Operation> = engine
        .operations()
        .into_iter()
        .filter(|operation| operation.service == service)
        .map(|operation| Operation {
            name: operation.name,
            span_kind: span_kind(i32::try_from(operation.kind).unwrap_or(0)),
        })
        .collect();
    operations.into_iter().collect()
}

/// Whole traces with a span meeting every condition, newest trace start first.
pub(crate) fn search_traces(engine: &Engine, search: &TraceSearch) -> Result<Vec<TraceDetail>, StoreError> {
    let tombstones = engine.tombstones();
    let attribute_columns: Vec<Box<str>> = search.attributes.iter().map(|(key, _)| attribute_key(key)).collect();
    let wanted = |name: &str| {
        matches!(name, key::TRACE_ID | key::TIME | key::END | key::NAME | key::GROUP | key::STATUS_CODE)
            || attribute_columns.iter().any(|column| &**column == name)
    };
    let start = search.start_unix_nano.map(signed);
    let end = search.end_unix_nano.map(signed);
    // Each matching trace with the latest start of its matching spans.
    let mut found: HashMap<[u8; 16], i64> = HashMap::new();
    for source in engine.sources(Kind::Spans, &|open| open.snapshot(&wanted)) {
        if let Source::Sealed(meta) = &source
            && (start.is_some_and(|start| meta.max_time < start) || end.is_some_and(|end| meta.min_time > end))
        {
            continue;
        }
        let block = engine.load(&source, &wanted)?;
        let ids = block.id16(key::TRACE_ID);
        for row in 0..block.rows {
            let Some(id) = ids.get(row) else { continue };
            if tombstones.contains_key(id) || !span_matches(&block, row, search, start, end) {
                continue;
            }
            let span_start = block.int(key::TIME, row);
            let latest = found.entry(*id).or_insert(span_start);
            *latest = (*latest).max(span_start);
        }
    }
    let mut newest: Vec<([u8; 16], i64)> = found.into_iter().collect();
    newest.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    newest.truncate(search.limit);
    let found: Vec<[u8; 16]> = newest.into_iter().map(|(id, _)| id).collect();
    let mut traces = whole_traces(engine, &found)?;
    traces.sort_by_key(|trace| std::cmp::Reverse(trace.spans.first().map_or(0, |span| span.start_time_unix_nano)));
    Ok(traces)
}

fn span_matches(block: &Block, row: usize, search: &TraceSearch, start: Option<i64>, end: Option<i64>) -> bool {
    let span_start = block.int(key::TIME, row);
    let duration = u64::try_from(block.int(key::END, row).saturating_sub(span_start)).unwrap_or(0);
    let group = block.group(row);
    start.is_none_or(|start| span_start >= start)
        && end.is_none_or(|end| span_start <= end)
        && search.min_duration_ns.is_none_or(|min| duration >= min)
        && search.max_duration_ns.is_none_or(|max| duration <= max)
        && (!search.errors_only || block.int(key::STATUS_CODE, row) == 2)
        && search.span_name.as_deref().is_none_or(|name| block.text(key::NAME, row) == name)
        && search.service.as_deref().is_none_or(|service| group.and_then(Group::service) == Some(service))
        && search.attributes.iter().all(|(name, expected)| {
            let value = block
                .values(&attribute_key(name))
                .and_then(|values| values.get(row))
                .or_else(|| group.and_then(|group| group.attribute(name)));
            value.is_some_and(|value| text_equals(value, expected))
        })
}

/// Whether a value, as text, is `expected`: strings as they are, everything else as JSON.
fn text_equals(value: ValueRef<'_>, expected: &str) -> bool {
    match value {
        ValueRef::Str(text) | ValueRef::Json(text) => text == expected,
        ValueRef::Int(number) => number.to_string() == expected,
        ValueRef::Bool(flag) => (if flag { "true" } else { "false" }) == expected,
        ValueRef::Float(number) => serde_json::to_string(&number).is_ok_and(|text| text == expected),
    }
}

/// Every span and log record of each trace, in one pass over the blocks that may hold them.
fn whole_traces(engine: &Engine, ids: &[[u8; 16]]) -> Result<Vec<TraceDetail>, StoreError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let wanted: HashSet<[u8; 16]> = ids.iter().copied().collect();
    let mut spans: HashMap<[u8; 16], Vec<super::views::SpanView>> = HashMap::new();
    for source in engine.sources(Kind::Spans, &|open| open.snapshot(&|_| true)) {
        if let Source::Sealed(meta) = &source
            && !wanted.iter().any(|id| meta.bloom.may_contain(id))
        {
            continue;
        }
        let block = engine.load(&source, &|_| true)?;
        let block_ids = block.id16(key::TRACE_ID);
        for row in 0..block.rows {
            if let Some(id) = block_ids.get(row).filter(|id| wanted.contains(*id)) {
                spans.entry(*id).or_default().push(span_view(&block, row));
            }
        }
    }
    let mut logs = trace_logs(engine, &wanted)?;
    Ok(ids
        .iter()
        .filter_map(|id| {
            let mut spans = spans.remove(id)?;
            // Blocks were read newest first: reversing keeps arrival order among equal starts.
            spans.reverse();
            spans.sort_by_key(|span| span.start_time_unix_nano);
            Some(TraceDetail { trace_id: hex::encode(id), spans, logs: logs.remove(id).unwrap_or_default() })
        })
        .collect())
}

/// A log record with what orders it: its time, then its block and row.
type TimedLog = (i64, u64, usize, LogEntry);

/// The log records of each of `ids`, by time.
pub(crate) fn trace_logs(
    engine: &Engine,
    ids: &HashSet<[u8; 16]>,
) -> Result<HashMap<[u8; 16], Vec<LogEntry>>, StoreError> {
    let mut logs: HashMap<[u8; 16], Vec<TimedLog>> = HashMap::new();
    for source in engine.sources(Kind::Logs, &|open| open.snapshot(&|_| true)) {
        if let Source::Sealed(meta) = &source
            && !ids.iter().any(|id| meta.bloom.may_contain(id))
        {
            continue;
        }
        let block: Arc<Block> = engine.load(&source, &|_| true)?;
        let block_ids = block.id16(key::TRACE_ID);
        for row in 0..block.rows {
            if let Some(id) = block_ids.get(row).filter(|id| ids.contains(*id)) {
                let time = block.int(key::TIME, row);
                logs.entry(*id).or_default().push((time, source.seq(), row, log_entry(&block, row)));
            }
        }
    }
    Ok(logs
        .into_iter()
        .map(|(id, mut entries)| {
            entries.sort_by_key(|(time, seq, row, _)| (*time, *seq, *row));
            (id, entries.into_iter().map(|(.., entry)| entry).collect())
        })
        .collect())
}

/// Log records meeting every condition, newest first.
pub(crate) fn search_logs(engine: &Engine, search: &LogSearch) -> Result<Vec<LogEntry>, StoreError> {
    let needle = search.text.as_deref().map(str::to_lowercase);
    let start = search.start_unix_nano.map(signed);
    let end = search.end_unix_nano.map(signed);
    let rows = newest_rows(engine, Kind::Logs, search.limit, |block, row| {
        let time = block.int(key::TIME, row);
        start.is_none_or(|start| time >= start)
            && end.is_none_or(|end| time <= end)
            && search.min_severity_number.is_none_or(|min| block.int(key::SEVERITY_NUMBER, row) >= i64::from(min))
            && search.trace_id.is_none_or(|id| block.id16(key::TRACE_ID).get(row) == Some(&id))
            && search
                .service
                .as_deref()
                .is_none_or(|service| block.group(row).and_then(Group::service) == Some(service))
            && needle.as_deref().is_none_or(|needle| body_contains(block, row, needle))
    })?;
    Ok(rows.iter().map(|(block, row)| log_entry(block, *row)).collect())
}

/// Whether a record's body holds `needle` (lowercase), ignoring case: a string body's text,
/// any other body's JSON text.
fn body_contains(block: &Block, row: usize, needle: &str) -> bool {
    match block.values(key::BODY).and_then(|values| values.get(row)) {
        Some(ValueRef::Str(text) | ValueRef::Json(text)) => text.to_lowercase().contains(needle),
        Some(other) => other.to_json().to_string().to_lowercase().contains(needle),
        None => false,
    }
}

fn signed(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}
