//! The answer's shape (see `docs/query-api.md`): the summary table (`results`, one row per
//! group), the time series (`series`, one point per group and non-empty time bucket), the
//! value buckets of each HEATMAP, and counts about the whole query.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Map, Value};

/// What a query found.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct QueryResult {
    /// One row per group, after havings, ordered, at most `limit`.
    pub results: Vec<ResultRow>,
    /// The same groups per time bucket, oldest bucket first, groups in `results` order
    /// within a bucket; buckets where a group had nothing are left out.
    pub series: Vec<SeriesPoint>,
    /// For each HEATMAP calculation (by its label, e.g. `HEATMAP(duration_ms)`), the value
    /// buckets its count arrays refer to, lowest values first.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub heatmaps: BTreeMap<String, Vec<HeatmapBucket>>,
    /// Spans in the time range that passed the filters.
    pub total_count: u64,
    /// Groups found, before havings and limit.
    pub total_groups: u64,
    /// Spans of groups beyond the most a query keeps (`groups::MAX_GROUPS`): not in any group.
    pub dropped_count: u64,
    /// The time range in Unix seconds, `[start_time, end_time)`.
    pub start_time: i64,
    pub end_time: i64,
    /// Seconds per time bucket.
    pub granularity: i64,
}

/// One group of the summary table: its breakdown values (null where the group lacks the
/// column) and every calculation, by column name and label.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ResultRow {
    pub data: Map<String, Value>,
}

/// One group in one time bucket.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct SeriesPoint {
    /// The bucket's start, RFC 3339 (UTC, seconds).
    pub time: String,
    /// The bucket's start, Unix seconds.
    pub time_unix: i64,
    pub data: Map<String, Value>,
}

/// One value bucket of a HEATMAP; an infinite bound is null. Positive buckets hold
/// `lower <= v < upper`, negative ones `lower < v <= upper`, the one around zero
/// `lower < v < upper`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct HeatmapBucket {
    pub lower: Option<f64>,
    pub upper: Option<f64>,
}

impl HeatmapBucket {
    pub(crate) fn new((lower, upper): (f64, f64)) -> HeatmapBucket {
        HeatmapBucket { lower: lower.is_finite().then_some(lower), upper: upper.is_finite().then_some(upper) }
    }
}

impl QueryResult {
    /// The summary row whose breakdown values are `key` (in breakdown order), for tests and
    /// callers that look groups up.
    pub fn row(&self, breakdowns: &[&str], key: &[Value]) -> Option<&ResultRow> {
        self.results.iter().find(|row| {
            breakdowns.iter().zip(key).all(|(name, value)| row.data.get(*name).unwrap_or(&Value::Null) == value)
        })
    }
}
