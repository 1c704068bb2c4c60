//! What the engine reads: blocks of stored spans, their columns, and the catalog of every
//! column the store has seen, with Honeycomb's names for the span's own fields.

use serde::Serialize;

/// A value of one column in one row. Bytes, arrays and maps arrive as `Str` of their JSON.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum FieldValue<'a> {
    Str(&'a str),
    Int(i64),
    Float(f64),
    Bool(bool),
}

impl FieldValue<'_> {
    /// The value as a number, for numeric calculations; strings and booleans are not numbers.
    pub fn as_f64(self) -> Option<f64> {
        match self {
            FieldValue::Int(value) => Some(value as f64),
            FieldValue::Float(value) if !value.is_nan() => Some(value),
            _ => None,
        }
    }
}

/// The type of a column, as Honeycomb types columns.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ColumnType {
    String,
    Integer,
    Float,
    Boolean,
}

impl ColumnType {
    /// SUM, AVG, MIN, MAX, the percentiles, HEATMAP and RATE_* take only numeric columns.
    pub fn is_numeric(self) -> bool {
        matches!(self, ColumnType::Integer | ColumnType::Float)
    }

    pub fn name(self) -> &'static str {
        match self {
            ColumnType::String => "string",
            ColumnType::Integer => "integer",
            ColumnType::Float => "float",
            ColumnType::Boolean => "boolean",
        }
    }
}

/// One column of one block, read row by row.
pub trait Column {
    /// The value in `row`, or `None` when that row does not have this column.
    fn value(&self, row: usize) -> Option<FieldValue<'_>>;
}

/// One block of stored spans as the engine reads it. The store has many; it may skip the
/// blocks whose [`time_bounds`](SpanBlock::time_bounds) miss the query's range
/// ([`QueryRun::wants`](crate::query::QueryRun::wants)).
pub trait SpanBlock {
    fn rows(&self) -> usize;
    /// The span's start: the query's time range and time buckets use it.
    fn start_unix_nano(&self, row: usize) -> i64;
    /// The span's end: CONCURRENCY uses it.
    fn end_unix_nano(&self, row: usize) -> i64;
    /// The lowest start and the highest end of any span in this block.
    fn time_bounds(&self) -> (i64, i64);
    /// The column of that name in this block: one of [`SPAN_COLUMNS`] (derived from the span
    /// itself) or any span or resource attribute by its key (the span's attribute wins when
    /// both have the key). `None` when no row of this block has it.
    fn column(&self, name: &str) -> Option<Box<dyn Column + '_>>;
}

/// Every column the store has seen, with its type: a name it does not know gets a 400.
/// The [`SPAN_COLUMNS`] are always known and need not be listed.
pub trait ColumnCatalog {
    /// The column's type, `None` for a column never seen. A key seen with values of several
    /// types is `Float` when they were all numbers (some floats), else `String`.
    fn column_type(&self, name: &str) -> Option<ColumnType>;
}

/// Honeycomb's columns for a span's own fields, which every block provides:
///
/// | column | type | value |
/// |---|---|---|
/// | `duration_ms` | float | `(end - start)` in milliseconds: `nanoseconds as f64 / 1e6` |
/// | `name` | string | the span's name |
/// | `service.name` | string | the resource's `service.name` |
/// | `trace.trace_id`, `trace.span_id` | string | 32 and 16 lowercase hex digits |
/// | `trace.parent_id` | string | 16 hex digits; absent on a root span |
/// | `error` | boolean | `true` when the span's status is ERROR; absent otherwise (as Honeycomb) |
/// | `status_code` | integer | the OTLP status code: 0 unset, 1 ok, 2 error |
/// | `span.kind` | string | `internal`, `server`, `client`, `producer`, `consumer` (absent if unspecified) |
pub const SPAN_COLUMNS: &[(&str, ColumnType)] = &[
    ("duration_ms", ColumnType::Float),
    ("name", ColumnType::String),
    ("service.name", ColumnType::String),
    ("trace.trace_id", ColumnType::String),
    ("trace.span_id", ColumnType::String),
    ("trace.parent_id", ColumnType::String),
    ("error", ColumnType::Boolean),
    ("status_code", ColumnType::Integer),
    ("span.kind", ColumnType::String),
];

/// The type of `name`: a span column's own, else what the catalog says.
pub(crate) fn column_type(name: &str, catalog: &dyn ColumnCatalog) -> Option<ColumnType> {
    SPAN_COLUMNS.iter().find(|(column, _)| *column == name).map(|(_, kind)| *kind).or_else(|| catalog.column_type(name))
}

/// Where queries run: the store implements this over its blocks (with
/// [`QueryRun`](crate::query::QueryRun)). Called on a blocking thread.
pub trait QuerySource: Send + Sync + 'static {
    /// Runs `spec`; a time range relative to now ends at `now_unix_nano`.
    fn run_query(
        &self,
        spec: crate::query::QuerySpec,
        now_unix_nano: i64,
    ) -> Result<crate::query::QueryResult, crate::query::QueryError>;
}
