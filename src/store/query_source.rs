//! Honeycomb-style queries ([`crate::query`]) over the store's span blocks: each block is read
//! with only the columns the query names, and seen by the query engine through [`BlockView`],
//! which gives the span's own fields their Honeycomb names.

use std::collections::{HashMap, HashSet};

use super::block::{Block, Group, Kind, attribute_key, key};
use super::engine::{Engine, Source, unix_now};
use super::reader::StoreReader;
use super::value::{ValueColumn, ValueRef, type_of_mask};
use super::views::span_kind;
use crate::query::{
    Column, ColumnCatalog, ColumnType, FieldValue, QueryError, QueryResult, QueryRun, QuerySource, QuerySpec, SpanBlock,
};

impl QuerySource for StoreReader {
    fn run_query(&self, spec: QuerySpec, now_unix_nano: i64) -> Result<QueryResult, QueryError> {
        run_query(self.engine(), &spec, now_unix_nano)
    }
}

/// Runs `spec` over every span block whose time range it wants.
pub(crate) fn run_query(engine: &Engine, spec: &QuerySpec, now_unix_nano: i64) -> Result<QueryResult, QueryError> {
    let now = if now_unix_nano == 0 { unix_now() } else { now_unix_nano };
    let mut run = QueryRun::new(spec, now, &Catalog(engine))?;
    let wanted = columns_used(spec);
    let wants_column = |name: &str| wanted.contains(name);
    let tombstones = engine.tombstones();
    for source in engine.sources(Kind::Spans, &|open| open.snapshot(&wants_column)) {
        if let Source::Sealed(meta) = &source
            && !run.wants((meta.min_time, meta.max_time))
        {
            continue;
        }
        let block = engine.load(&source, &wants_column).map_err(|error| QueryError::Store(error.to_string()))?;
        if block.rows == 0 {
            continue;
        }
        let view = BlockView::new(&block, &tombstones);
        if run.wants(view.time_bounds()) {
            run.scan(&view);
        }
    }
    Ok(run.finish())
}

/// The store's columns a query needs: the span's times always, and each column it names.
fn columns_used(spec: &QuerySpec) -> HashSet<Box<str>> {
    let mut names: Vec<&str> = Vec::new();
    names.extend(spec.calculations.iter().filter_map(|calculation| calculation.column.as_deref()));
    names.extend(spec.filters.iter().map(|filter| filter.column.as_str()));
    names.extend(spec.breakdowns.iter().map(String::as_str));
    names.extend(spec.orders.iter().filter_map(|order| order.column.as_deref()));
    names.extend(spec.havings.iter().filter_map(|having| having.column.as_deref()));
    let mut wanted: HashSet<Box<str>> = [key::TIME, key::END, key::TRACE_ID].into_iter().map(Box::from).collect();
    for name in names {
        let fixed = match name {
            // Derived from the times and trace ids, always read.
            "duration_ms" | "trace.trace_id" => continue,
            "name" => key::NAME,
            "trace.span_id" => key::SPAN_ID,
            "trace.parent_id" => key::PARENT_SPAN_ID,
            "error" | "status_code" => key::STATUS_CODE,
            "span.kind" => key::SPAN_KIND,
            // An attribute: the span's own column, or its resource's through the group.
            attribute => {
                wanted.insert(attribute_key(attribute));
                key::GROUP
            }
        };
        wanted.insert(fixed.into());
    }
    wanted
}

/// Column types from what the store has seen.
struct Catalog<'a>(&'a Engine);

impl ColumnCatalog for Catalog<'_> {
    fn column_type(&self, name: &str) -> Option<ColumnType> {
        self.0.column_tags(&attribute_key(name)).map(type_of_mask)
    }
}

/// One block as the query engine sees it; rows of traces evicted whole are left out.
struct BlockView<'a> {
    block: &'a Block,
    starts: &'a [i64],
    ends: &'a [i64],
    /// The block's rows to show, when some are hidden.
    rows: Option<Vec<usize>>,
}

impl<'a> BlockView<'a> {
    fn new(block: &'a Block, tombstones: &HashMap<[u8; 16], u64>) -> BlockView<'a> {
        let ids = block.id16(key::TRACE_ID);
        let rows = (!tombstones.is_empty() && ids.iter().any(|id| tombstones.contains_key(id)))
            .then(|| (0..block.rows).filter(|&row| !tombstones.contains_key(&ids[row])).collect());
        BlockView { block, starts: block.ints(key::TIME), ends: block.ints(key::END), rows }
    }

    fn row(&self, row: usize) -> usize {
        self.rows.as_ref().map_or(row, |rows| rows[row])
    }
}

impl SpanBlock for BlockView<'_> {
    fn rows(&self) -> usize {
        self.rows.as_ref().map_or(self.block.rows, Vec::len)
    }

    fn start_unix_nano(&self, row: usize) -> i64 {
        self.starts.get(self.row(row)).copied().unwrap_or(0)
    }

    fn end_unix_nano(&self, row: usize) -> i64 {
        self.ends.get(self.row(row)).copied().unwrap_or(0)
    }

    fn time_bounds(&self) -> (i64, i64) {
        let min = self.starts.iter().copied().min().unwrap_or(0);
        let max = self.starts.iter().chain(self.ends).copied().max().unwrap_or(0);
        (min, max)
    }

    fn column(&self, name: &str) -> Option<Box<dyn Column + '_>> {
        let block = self.block;
        let map = self.rows.as_deref();
        Some(match name {
            "duration_ms" => Box::new(Durations { starts: self.starts, ends: self.ends, map }),
            "name" => Box::new(Values { values: block.values(key::NAME)?, map }),
            "trace.trace_id" => Box::new(HexIds::new(block.id16(key::TRACE_ID), map, false)),
            "trace.span_id" => Box::new(HexIds::new(block.id8(key::SPAN_ID), map, false)),
            "trace.parent_id" => Box::new(HexIds::new(block.id8(key::PARENT_SPAN_ID), map, true)),
            "error" => Box::new(Ints { ints: block.ints(key::STATUS_CODE), map, read: error_flag }),
            "status_code" => {
                Box::new(Ints { ints: block.ints(key::STATUS_CODE), map, read: |code| Some(FieldValue::Int(code)) })
            }
            "span.kind" => Box::new(Ints { ints: block.ints(key::SPAN_KIND), map, read: kind_name }),
            _ => {
                let span = block.values(&attribute_key(name));
                let resource = resource_values(block, name);
                if span.is_none() && resource.iter().all(Option::is_none) {
                    return None;
                }
                Box::new(Attribute { span, resource, block, map })
            }
        })
    }
}

fn error_flag(code: i64) -> Option<FieldValue<'static>> {
    (code == 2).then_some(FieldValue::Bool(true))
}

/// The span kind's name, as `SpanView::kind` gives it; absent when unspecified.
fn kind_name(kind: i64) -> Option<FieldValue<'static>> {
    match span_kind(i32::try_from(kind).unwrap_or(0)) {
        "unspecified" => None,
        name => Some(FieldValue::Str(name)),
    }
}

fn field(value: ValueRef<'_>) -> FieldValue<'_> {
    match value {
        ValueRef::Str(text) | ValueRef::Json(text) => FieldValue::Str(text),
        ValueRef::Int(number) => FieldValue::Int(number),
        ValueRef::Float(number) => FieldValue::Float(number),
        ValueRef::Bool(flag) => FieldValue::Bool(flag),
    }
}

fn mapped(map: Option<&[usize]>, row: usize) -> usize {
    map.map_or(row, |map| map[row])
}

struct Durations<'a> {
    starts: &'a [i64],
    ends: &'a [i64],
    map: Option<&'a [usize]>,
}

impl Column for Durations<'_> {
    fn value(&self, row: usize) -> Option<FieldValue<'_>> {
        let row = mapped(self.map, row);
        let nanos = self.ends.get(row)?.saturating_sub(*self.starts.get(row)?);
        Some(FieldValue::Float(nanos as f64 / 1e6))
    }
}

struct Values<'a> {
    values: &'a ValueColumn,
    map: Option<&'a [usize]>,
}

impl Column for Values<'_> {
    fn value(&self, row: usize) -> Option<FieldValue<'_>> {
        self.values.get(mapped(self.map, row)).map(field)
    }
}

struct Ints<'a> {
    ints: &'a [i64],
    map: Option<&'a [usize]>,
    read: fn(i64) -> Option<FieldValue<'static>>,
}

impl Column for Ints<'_> {
    fn value(&self, row: usize) -> Option<FieldValue<'_>> {
        (self.read)(*self.ints.get(mapped(self.map, row))?)
    }
}

/// Ids as lowercase hex, written once per block into one buffer.
struct HexIds<'a> {
    text: String,
    width: usize,
    /// All-zero ids (no parent) are absent.
    present: Vec<bool>,
    map: Option<&'a [usize]>,
}

impl<'a> HexIds<'a> {
    fn new<const N: usize>(ids: &[[u8; N]], map: Option<&'a [usize]>, zero_is_absent: bool) -> HexIds<'a> {
        // One buffer for the block, written in place: no string per row.
        let mut text = vec![0u8; ids.len() * N * 2];
        let mut present = Vec::with_capacity(ids.len());
        for (id, slot) in ids.iter().zip(text.chunks_exact_mut(N * 2)) {
            let _ = hex::encode_to_slice(id, slot);
            present.push(!(zero_is_absent && id.iter().all(|byte| *byte == 0)));
        }
        let text = String::from_utf8(text).unwrap_or_default();
        HexIds { text, width: N * 2, present, map }
    }
}

impl Column for HexIds<'_> {
    fn value(&self, row: usize) -> Option<FieldValue<'_>> {
        let row = mapped(self.map, row);
        if !*self.present.get(row)? {
            return None;
        }
        self.text.get(row * self.width..(row + 1) * self.width).map(FieldValue::Str)
    }
}

/// Each group's value of resource attribute `name`.
fn resource_values<'a>(block: &'a Block, name: &str) -> Vec<Option<ValueRef<'a>>> {
    block.groups.iter().map(|group: &'a Group| group.attribute(name)).collect()
}

/// A span attribute, or else the resource attribute of the same key.
struct Attribute<'a> {
    span: Option<&'a ValueColumn>,
    resource: Vec<Option<ValueRef<'a>>>,
    block: &'a Block,
    map: Option<&'a [usize]>,
}

impl Column for Attribute<'_> {
    fn value(&self, row: usize) -> Option<FieldValue<'_>> {
        let row = mapped(self.map, row);
        if let Some(value) = self.span.and_then(|span| span.get(row)) {
            return Some(field(value));
        }
        let group = usize::try_from(self.block.int(key::GROUP, row)).ok()?;
        self.resource.get(group).copied().flatten().map(field)
    }
}
