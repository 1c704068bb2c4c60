//! Spans held in memory: [`VecBlock`] (a block built from rows), [`VecCatalog`] (the types
//! of every column of some blocks) and [`MemorySource`] (a [`QuerySource`] over them). The
//! engine's tests and benchmark use them, and they show a store what the traits ask for.

use std::collections::HashMap;

use super::QuerySource;
use super::block::{Column, ColumnCatalog, ColumnType, FieldValue, SPAN_COLUMNS, SpanBlock};
use super::error::QueryError;
use super::result::QueryResult;
use super::run::QueryRun;
use super::spec::QuerySpec;

/// An owned column value.
#[derive(Clone, Debug, PartialEq)]
pub enum OwnedValue {
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
}

impl OwnedValue {
    fn field(&self) -> FieldValue<'_> {
        match self {
            OwnedValue::Str(text) => FieldValue::Str(text),
            OwnedValue::Int(number) => FieldValue::Int(*number),
            OwnedValue::Float(number) => FieldValue::Float(*number),
            OwnedValue::Bool(flag) => FieldValue::Bool(*flag),
        }
    }

    fn column_type(&self) -> ColumnType {
        match self {
            OwnedValue::Str(_) => ColumnType::String,
            OwnedValue::Int(_) => ColumnType::Integer,
            OwnedValue::Float(_) => ColumnType::Float,
            OwnedValue::Bool(_) => ColumnType::Boolean,
        }
    }
}

impl From<&str> for OwnedValue {
    fn from(text: &str) -> Self {
        OwnedValue::Str(text.to_string())
    }
}

impl From<i64> for OwnedValue {
    fn from(number: i64) -> Self {
        OwnedValue::Int(number)
    }
}

impl From<f64> for OwnedValue {
    fn from(number: f64) -> Self {
        OwnedValue::Float(number)
    }
}

impl From<bool> for OwnedValue {
    fn from(flag: bool) -> Self {
        OwnedValue::Bool(flag)
    }
}

/// One span: its start and end and its columns by (Honeycomb) name.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct VecRow {
    pub start_unix_nano: i64,
    pub end_unix_nano: i64,
    pub fields: Vec<(String, OwnedValue)>,
}

impl VecRow {
    pub fn new(start_unix_nano: i64, end_unix_nano: i64) -> VecRow {
        VecRow { start_unix_nano, end_unix_nano, fields: Vec::new() }
    }

    /// Adds a column value.
    pub fn with(mut self, name: &str, value: impl Into<OwnedValue>) -> VecRow {
        self.fields.push((name.to_string(), value.into()));
        self
    }

    /// Adds `duration_ms` from the span's start and end, as a store computes it.
    pub fn with_duration(self) -> VecRow {
        let duration = (self.end_unix_nano - self.start_unix_nano) as f64 / 1e6;
        self.with("duration_ms", duration)
    }
}

/// A block of spans stored column by column.
#[derive(Clone, Debug, Default)]
pub struct VecBlock {
    starts: Vec<i64>,
    ends: Vec<i64>,
    columns: HashMap<String, Vec<Option<OwnedValue>>>,
}

impl VecBlock {
    pub fn new(rows: &[VecRow]) -> VecBlock {
        let mut block = VecBlock {
            starts: rows.iter().map(|row| row.start_unix_nano).collect(),
            ends: rows.iter().map(|row| row.end_unix_nano).collect(),
            columns: HashMap::new(),
        };
        for (index, row) in rows.iter().enumerate() {
            for (name, value) in &row.fields {
                let column = block.columns.entry(name.clone()).or_insert_with(|| vec![None; rows.len()]);
                column[index] = Some(value.clone());
            }
        }
        block
    }
}

struct VecColumn<'a>(&'a [Option<OwnedValue>]);

impl Column for VecColumn<'_> {
    #[inline]
    fn value(&self, row: usize) -> Option<FieldValue<'_>> {
        self.0[row].as_ref().map(OwnedValue::field)
    }
}

impl SpanBlock for VecBlock {
    fn rows(&self) -> usize {
        self.starts.len()
    }

    fn start_unix_nano(&self, row: usize) -> i64 {
        self.starts[row]
    }

    fn end_unix_nano(&self, row: usize) -> i64 {
        self.ends[row]
    }

    fn time_bounds(&self) -> (i64, i64) {
        let low = self.starts.iter().copied().min().unwrap_or(i64::MAX);
        let high = self.ends.iter().copied().max().unwrap_or(i64::MIN);
        (low, high)
    }

    fn column(&self, name: &str) -> Option<Box<dyn Column + '_>> {
        self.columns.get(name).map(|values| Box::new(VecColumn(values)) as Box<dyn Column + '_>)
    }
}

/// The type of every column of some blocks: the type of its values, `Float` for a mix of
/// integers and floats, `String` for any other mix.
#[derive(Clone, Debug, Default)]
pub struct VecCatalog {
    types: HashMap<String, ColumnType>,
}

impl VecCatalog {
    pub fn new<'a>(blocks: impl IntoIterator<Item = &'a VecBlock>) -> VecCatalog {
        let mut types: HashMap<String, ColumnType> = HashMap::new();
        for block in blocks {
            for (name, values) in &block.columns {
                for value in values.iter().flatten() {
                    let kind = value.column_type();
                    let merged = match types.get(name) {
                        None => kind,
                        Some(&seen) if seen == kind => seen,
                        Some(&seen) if seen.is_numeric() && kind.is_numeric() => ColumnType::Float,
                        Some(_) => ColumnType::String,
                    };
                    types.insert(name.clone(), merged);
                }
            }
        }
        for (name, kind) in SPAN_COLUMNS {
            types.entry((*name).to_string()).or_insert(*kind);
        }
        VecCatalog { types }
    }
}

impl ColumnCatalog for VecCatalog {
    fn column_type(&self, name: &str) -> Option<ColumnType> {
        self.types.get(name).copied()
    }
}

/// A [`QuerySource`] over blocks held in memory.
#[derive(Clone, Debug, Default)]
pub struct MemorySource {
    blocks: Vec<VecBlock>,
    catalog: VecCatalog,
}

impl MemorySource {
    pub fn new(blocks: Vec<VecBlock>) -> MemorySource {
        let catalog = VecCatalog::new(&blocks);
        MemorySource { blocks, catalog }
    }

    /// Runs `spec` over every block.
    pub fn query(&self, spec: &QuerySpec, now_unix_nano: i64) -> Result<QueryResult, QueryError> {
        let mut run = QueryRun::new(spec, now_unix_nano, &self.catalog)?;
        for block in &self.blocks {
            if run.wants(block.time_bounds()) {
                run.scan(block);
            }
        }
        Ok(run.finish())
    }
}

impl QuerySource for MemorySource {
    fn run_query(&self, spec: QuerySpec, now_unix_nano: i64) -> Result<QueryResult, QueryError> {
        self.query(&spec, now_unix_nano)
    }
}
