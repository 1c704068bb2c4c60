//! The request: Honeycomb's query specification as JSON, kept as written (ops as text) so it
//! round-trips and so a bad op gets our own message naming it.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A Honeycomb query specification. Every field is optional; see `docs/query-api.md`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuerySpec {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub calculations: Vec<CalculationSpec>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub filters: Vec<FilterSpec>,
    /// `"AND"` (the default) or `"OR"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter_combination: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub breakdowns: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub orders: Vec<OrderSpec>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub havings: Vec<HavingSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<i64>,
    /// Seconds: before `end_time`, after `start_time`, or before now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_range: Option<i64>,
    /// Unix seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<i64>,
    /// Unix seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_time: Option<i64>,
    /// Seconds per time bucket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub granularity: Option<i64>,
}

/// `{"op": "P90", "column": "duration_ms"}`; COUNT and CONCURRENCY take no column.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CalculationSpec {
    pub op: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub column: Option<String>,
}

/// `{"column": "http.route", "op": "=", "value": "/"}`; `exists`/`does-not-exist` take no
/// value, `in`/`not-in` take an array.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilterSpec {
    pub column: String,
    pub op: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<Value>,
}

/// By a calculation (`op` and, unless COUNT/CONCURRENCY, `column`) or by a breakdown
/// (`column` only); `order` is `"ascending"` (the default) or `"descending"`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrderSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub op: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub column: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order: Option<String>,
}

/// Keeps the groups whose `calculate_op(column)` compares with the numeric `value` by `op`
/// (`=`, `!=`, `>`, `>=`, `<`, `<=`). The calculation must be one of the query's.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HavingSpec {
    pub calculate_op: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub column: Option<String>,
    pub op: String,
    pub value: Value,
}
