//! The query engine (`waggle::query`) over in-memory blocks: each calculation op, each
//! filter op, breakdowns, orders, havings, limit, time ranges and buckets, HEATMAP,
//! CONCURRENCY, RATE_*, the 400s — and a few thousand generated spans against a computation
//! done here from the same rows.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde_json::{Value, json};
use waggle::query::histogram::RELATIVE_WIDTH;
use waggle::query::memory::{MemorySource, OwnedValue, VecBlock, VecRow};
use waggle::query::{QueryError, QueryResult, QuerySpec};

const T0: i64 = 1_700_000_000;
const SECOND: i64 = 1_000_000_000;
const MS: i64 = 1_000_000;

/// Blocks of 7 rows, so every query reads several blocks.
fn source(rows: &[VecRow]) -> MemorySource {
    MemorySource::new(rows.chunks(7).map(VecBlock::new).collect())
}

fn spec(query: Value) -> QuerySpec {
    serde_json::from_value(query).expect("a well-formed spec")
}

/// Runs `query` with `now` one hour after T0; an absolute range defaults to the first hour.
fn run(rows: &[VecRow], mut query: Value) -> QueryResult {
    if query.get("time_range").is_none() && query.get("start_time").is_none() {
        query["start_time"] = json!(T0);
        query["end_time"] = json!(T0 + 3600);
    }
    source(rows).query(&spec(query), (T0 + 3600) * SECOND).expect("a valid query")
}

fn refuse(rows: &[VecRow], query: Value) -> QueryError {
    source(rows).query(&spec(query), (T0 + 3600) * SECOND).expect_err("an invalid query")
}

fn span(start_ms: i64, duration_ms: i64) -> VecRow {
    let start = T0 * SECOND + start_ms * MS;
    VecRow::new(start, start + duration_ms * MS).with_duration()
}

fn only(result: &QueryResult, label: &str) -> Value {
    assert_eq!(result.results.len(), 1, "one group expected: {:?}", result.results);
    result.results[0].data[label].clone()
}

fn field<'a>(row: &'a VecRow, name: &str) -> Option<&'a OwnedValue> {
    row.fields.iter().find(|(key, _)| key == name).map(|(_, value)| value)
}

fn text<'a>(row: &'a VecRow, name: &str) -> Option<&'a str> {
    match field(row, name) {
        Some(OwnedValue::Str(text)) => Some(text),
        _ => None,
    }
}

fn number(row: &VecRow, name: &str) -> Option<f64> {
    match field(row, name) {
        Some(OwnedValue::Int(value)) => Some(*value as f64),
        Some(OwnedValue::Float(value)) => Some(*value),
        _ => None,
    }
}

// ---- calculations ---------------------------------------------------------------------------

#[test]
fn count_counts_spans_starting_in_the_range_only() {
    let rows = vec![span(-1, 5), span(0, 5), span(1_800_000, 5), span(3_599_999, 5), span(3_600_000, 5)];
    let result = run(&rows, json!({"calculations": [{"op": "COUNT"}]}));
    assert_eq!(only(&result, "COUNT"), json!(3));
    assert_eq!(result.total_count, 3);
}

#[test]
fn no_calculations_means_count() {
    let rows = vec![span(0, 1), span(10, 1)];
    assert_eq!(only(&run(&rows, json!({})), "COUNT"), json!(2));
}

#[test]
fn sum_of_integers_is_an_exact_integer() {
    let rows: Vec<VecRow> = (0..10).map(|i| span(i, 1).with("bytes", 1_000_000_000_000_000i64 + i)).collect();
    let result = run(&rows, json!({"calculations": [{"op": "SUM", "column": "bytes"}]}));
    assert_eq!(only(&result, "SUM(bytes)"), json!(10_000_000_000_000_045i64));
}

#[test]
fn sum_of_floats_matches_a_correctly_rounded_sum() {
    let rows: Vec<VecRow> = (0..1000).map(|i| span(i, 1).with("ratio", 0.1 + f64::from(i as i32) * 1e-3)).collect();
    let result = run(&rows, json!({"calculations": [{"op": "SUM", "column": "ratio"}]}));
    let exact: f64 = (0..1000).map(|i| 0.1 + f64::from(i) * 1e-3).sum();
    let sum = only(&result, "SUM(ratio)").as_f64().unwrap();
    assert!((sum - exact).abs() <= exact * 1e-14, "{sum} vs {exact}");
}

#[test]
fn avg_min_and_max_read_only_numbers_of_the_column() {
    let rows = vec![
        span(0, 1).with("size", 4i64),
        span(1, 1).with("size", 10i64),
        span(2, 1).with("size", 1i64),
        span(3, 1), // no size: not in AVG's count
    ];
    let result = run(
        &rows,
        json!({"calculations": [{"op": "AVG", "column": "size"}, {"op": "MIN", "column": "size"}, {"op": "MAX", "column": "size"}]}),
    );
    assert_eq!(only(&result, "AVG(size)"), json!(5.0));
    assert_eq!(only(&result, "MIN(size)"), json!(1));
    assert_eq!(only(&result, "MAX(size)"), json!(10));
}

#[test]
fn count_distinct_counts_distinct_present_values() {
    let users = ["ann", "bob", "ann", "cy", "bob"];
    let mut rows: Vec<VecRow> =
        users.iter().enumerate().map(|(i, user)| span(i as i64, 1).with("user", *user)).collect();
    rows.push(span(9, 1));
    let result = run(&rows, json!({"calculations": [{"op": "COUNT_DISTINCT", "column": "user"}]}));
    assert_eq!(only(&result, "COUNT_DISTINCT(user)"), json!(3));
}

#[test]
fn every_percentile_is_within_one_bucket_of_the_exact_nearest_rank_value() {
    // 1000 distinct durations from 0.5 ms to ~5 s, shuffled over the hour.
    let durations: Vec<f64> = (0..1000).map(|i| 0.5 * 1.0093f64.powi(i)).collect();
    let rows: Vec<VecRow> = durations
        .iter()
        .enumerate()
        .map(|(i, &d)| span(((i * 7919) % 1000) as i64 * 1000, 0).with("latency", d))
        .collect();
    let mut sorted = durations;
    sorted.sort_by(f64::total_cmp);
    let ops = [
        ("P001", 0.001),
        ("P01", 0.01),
        ("P05", 0.05),
        ("P10", 0.10),
        ("P20", 0.20),
        ("P25", 0.25),
        ("P50", 0.50),
        ("P75", 0.75),
        ("P80", 0.80),
        ("P90", 0.90),
        ("P95", 0.95),
        ("P99", 0.99),
        ("P999", 0.999),
    ];
    let calculations: Vec<Value> = ops.iter().map(|(op, _)| json!({"op": op, "column": "latency"})).collect();
    let result = run(&rows, json!({ "calculations": calculations }));
    for (op, q) in ops {
        let rank = ((q * sorted.len() as f64).ceil() as usize).max(1);
        let exact = sorted[rank - 1];
        let estimate = only(&result, &format!("{op}(latency)")).as_f64().unwrap();
        assert!((estimate - exact).abs() <= exact * RELATIVE_WIDTH, "{op}: {estimate} vs exact {exact}");
    }
}

#[test]
fn heatmap_counts_every_value_in_the_bucket_whose_bounds_hold_it() {
    let durations: Vec<i64> = (0..300).map(|i| 1 + (i * i) % 997).collect();
    let rows: Vec<VecRow> = durations.iter().enumerate().map(|(i, &d)| span(i as i64 * 10, d)).collect();
    let result = run(&rows, json!({"calculations": [{"op": "HEATMAP", "column": "duration_ms"}]}));
    let buckets = &result.heatmaps["HEATMAP(duration_ms)"];
    assert!(!buckets.is_empty() && buckets.len() <= 50, "{} buckets", buckets.len());
    let counts: Vec<u64> = serde_json::from_value(only(&result, "HEATMAP(duration_ms)")).unwrap();
    let mut expected = vec![0u64; buckets.len()];
    for &d in &durations {
        let value = d as f64;
        let at = buckets
            .iter()
            .position(|b| b.lower.is_none_or(|l| l <= value) && b.upper.is_none_or(|u| value < u))
            .expect("some bucket holds every value");
        expected[at] += 1;
    }
    assert_eq!(counts, expected);
}

#[test]
fn heatmap_has_counts_per_time_bucket_on_the_same_scale() {
    let rows = vec![span(0, 1), span(1, 100), span(70_000, 10), span(70_001, 10), span(70_002, 1000)];
    let result = run(
        &rows,
        json!({"calculations": [{"op": "HEATMAP", "column": "duration_ms"}, {"op": "COUNT"}], "granularity": 60}),
    );
    let rows_per_bucket = result.heatmaps["HEATMAP(duration_ms)"].len();
    assert_eq!(result.series.len(), 2);
    for point in &result.series {
        let counts: Vec<u64> = serde_json::from_value(point.data["HEATMAP(duration_ms)"].clone()).unwrap();
        assert_eq!(counts.len(), rows_per_bucket);
        assert_eq!(counts.iter().sum::<u64>(), point.data["COUNT"].as_u64().unwrap());
    }
}

#[test]
fn concurrency_is_the_average_number_of_spans_in_flight_per_bucket() {
    let rows = vec![
        span(0, 30_000),       // bucket 0: half
        span(30_000, 60_000),  // buckets 0 and 1: half each
        span(60_000, 240_000), // buckets 1, 2, 3, 4 whole
        span(-10_000, 20_000), // started before the range: not counted
    ];
    let result = run(
        &rows,
        json!({"calculations": [{"op": "CONCURRENCY"}, {"op": "COUNT"}], "start_time": T0, "end_time": T0 + 600, "granularity": 60}),
    );
    let by_bucket: BTreeMap<i64, (f64, u64)> = result
        .series
        .iter()
        .map(|p| {
            ((p.time_unix - T0) / 60, (p.data["CONCURRENCY"].as_f64().unwrap(), p.data["COUNT"].as_u64().unwrap()))
        })
        .collect();
    let expected = BTreeMap::from([(0, (1.0, 2)), (1, (1.5, 1)), (2, (1.0, 0)), (3, (1.0, 0)), (4, (1.0, 0))]);
    assert_eq!(by_bucket, expected);
    assert!((only(&result, "CONCURRENCY").as_f64().unwrap() - 330.0 / 600.0).abs() < 1e-12);
}

#[test]
fn rate_ops_are_differences_between_successive_buckets_with_values() {
    let gauge = |start_s: i64, value: i64| span(start_s * 1000, 1).with("gauge", value);
    let rows = vec![gauge(0, 10), gauge(1, 20), gauge(60, 40), gauge(180, 30), gauge(181, 50)];
    let result = run(
        &rows,
        json!({"calculations": [{"op": "RATE_AVG", "column": "gauge"}, {"op": "RATE_SUM", "column": "gauge"}, {"op": "RATE_MAX", "column": "gauge"}],
               "start_time": T0, "end_time": T0 + 600, "granularity": 60}),
    );
    let series: Vec<[Value; 3]> = result
        .series
        .iter()
        .map(|p| {
            [p.data["RATE_AVG(gauge)"].clone(), p.data["RATE_SUM(gauge)"].clone(), p.data["RATE_MAX(gauge)"].clone()]
        })
        .collect();
    assert_eq!(
        series,
        vec![
            [Value::Null, Value::Null, Value::Null],
            [json!(25.0), json!(10.0), json!(20.0)],
            [json!(0.0), json!(40.0), json!(10.0)],
        ]
    );
    assert_eq!(only(&result, "RATE_AVG(gauge)"), json!(12.5));
    assert_eq!(only(&result, "RATE_SUM(gauge)"), json!(25.0));
    assert_eq!(only(&result, "RATE_MAX(gauge)"), json!(15.0));
}

// ---- filters --------------------------------------------------------------------------------

const ROUTES: [&str; 4] = ["/a", "/b", "/api/x", "/api/y"];

/// 40 spans: route by i % 4, status by i % 3, error on every fifth, a user on even ones,
/// duration i + 1 ms.
fn filter_rows() -> Vec<VecRow> {
    (0..40i64)
        .map(|i| {
            let mut row = span(i * 60_000 + 1000, i + 1)
                .with("http.route", ROUTES[(i % 4) as usize])
                .with("http.status_code", [200i64, 404, 500][(i % 3) as usize]);
            if i % 5 == 0 {
                row = row.with("error", true);
            }
            if i % 2 == 0 {
                row = row.with("user", format!("u{}", i % 6).as_str());
            }
            row
        })
        .collect()
}

macro_rules! filter_op {
    ($name:ident, $filter:tt, $keep:expr) => {
        #[test]
        fn $name() {
            let rows = filter_rows();
            let keep: fn(&VecRow) -> bool = $keep;
            let expected = rows.iter().filter(|row| keep(row)).count();
            assert!(expected > 0 && expected < rows.len(), "the filter must tell rows apart ({expected})");
            let result = run(&rows, json!({"filters": [$filter]}));
            assert_eq!(only(&result, "COUNT"), json!(expected));
        }
    };
}

filter_op!(filter_equals, {"column": "http.route", "op": "=", "value": "/a"}, |r| text(r, "http.route") == Some("/a"));
filter_op!(filter_not_equals, {"column": "http.route", "op": "!=", "value": "/a"}, |r| text(r, "http.route") != Some("/a"));
filter_op!(filter_greater, {"column": "http.status_code", "op": ">", "value": 200}, |r| number(r, "http.status_code") > Some(200.0));
filter_op!(filter_greater_or_equal, {"column": "duration_ms", "op": ">=", "value": 20}, |r| number(r, "duration_ms").unwrap() >= 20.0);
filter_op!(filter_less, {"column": "duration_ms", "op": "<", "value": 10}, |r| number(r, "duration_ms").unwrap() < 10.0);
filter_op!(filter_less_or_equal, {"column": "http.status_code", "op": "<=", "value": 404}, |r| number(r, "http.status_code").unwrap() <= 404.0);
filter_op!(filter_number_given_as_text, {"column": "duration_ms", "op": ">", "value": "30.5"}, |r| number(r, "duration_ms").unwrap() > 30.5);
filter_op!(filter_starts_with, {"column": "http.route", "op": "starts-with", "value": "/api"}, |r| text(r, "http.route").unwrap().starts_with("/api"));
filter_op!(filter_does_not_start_with, {"column": "http.route", "op": "does-not-start-with", "value": "/api"}, |r| !text(r, "http.route").unwrap().starts_with("/api"));
filter_op!(filter_ends_with, {"column": "http.route", "op": "ends-with", "value": "x"}, |r| text(r, "http.route").unwrap().ends_with('x'));
filter_op!(filter_does_not_end_with, {"column": "http.route", "op": "does-not-end-with", "value": "x"}, |r| !text(r, "http.route").unwrap().ends_with('x'));
filter_op!(filter_contains, {"column": "http.route", "op": "contains", "value": "pi/"}, |r| text(r, "http.route").unwrap().contains("pi/"));
filter_op!(filter_does_not_contain, {"column": "http.route", "op": "does-not-contain", "value": "pi/"}, |r| !text(r, "http.route").unwrap().contains("pi/"));
filter_op!(filter_exists, {"column": "user", "op": "exists"}, |r| field(r, "user").is_some());
filter_op!(filter_does_not_exist, {"column": "user", "op": "does-not-exist"}, |r| field(r, "user").is_none());
filter_op!(filter_in, {"column": "http.route", "op": "in", "value": ["/a", "/b"]}, |r| matches!(text(r, "http.route"), Some("/a" | "/b")));
filter_op!(filter_not_in, {"column": "http.status_code", "op": "not-in", "value": [200, 500]}, |r| number(r, "http.status_code") == Some(404.0));
filter_op!(filter_boolean, {"column": "error", "op": "=", "value": true}, |r| field(r, "error").is_some());
filter_op!(filter_negation_matches_rows_without_the_column, {"column": "user", "op": "!=", "value": "u0"}, |r| text(r, "user") != Some("u0"));

#[test]
fn filter_on_a_mixed_column_compares_each_value_by_its_own_type() {
    // "code" holds the string "12" on some rows and integers on others: a string column.
    let rows: Vec<VecRow> = (0..8i64)
        .map(|i| if i % 2 == 0 { span(i, 1).with("code", "12") } else { span(i, 1).with("code", i + 10) })
        .collect();
    let equal = run(&rows, json!({"filters": [{"column": "code", "op": "=", "value": "13"}]}));
    assert_eq!(only(&equal, "COUNT"), json!(1), "the integer 13 equals \"13\"; the strings \"12\" do not");
    let greater = run(&rows, json!({"filters": [{"column": "code", "op": ">", "value": "5"}]}));
    assert_eq!(only(&greater, "COUNT"), json!(4), "integers compare as numbers; \"12\" < \"5\" as text");
}

#[test]
fn does_not_exist_counts_a_block_that_lacks_the_column_entirely() {
    let with = VecBlock::new(&[span(0, 1).with("user", "u"), span(1, 1)]);
    let without = VecBlock::new(&[span(2, 1), span(3, 1), span(4, 1)]);
    let source = MemorySource::new(vec![with, without]);
    let query =
        spec(json!({"filters": [{"column": "user", "op": "does-not-exist"}], "start_time": T0, "end_time": T0 + 60}));
    let result = source.query(&query, 0).unwrap();
    assert_eq!(only(&result, "COUNT"), json!(4));
}

#[test]
fn filter_combination_or_keeps_rows_matching_any_filter() {
    let rows = filter_rows();
    let expected = rows.iter().filter(|r| text(r, "http.route") == Some("/a") || field(r, "error").is_some()).count();
    let result = run(
        &rows,
        json!({"filters": [{"column": "http.route", "op": "=", "value": "/a"}, {"column": "error", "op": "exists"}], "filter_combination": "OR"}),
    );
    assert_eq!(only(&result, "COUNT"), json!(expected));
}

#[test]
fn filters_combine_with_and_by_default() {
    let rows = filter_rows();
    let expected = rows.iter().filter(|r| text(r, "http.route") == Some("/a") && field(r, "error").is_some()).count();
    let result = run(
        &rows,
        json!({"filters": [{"column": "http.route", "op": "=", "value": "/a"}, {"column": "error", "op": "exists"}]}),
    );
    assert_eq!(only(&result, "COUNT"), json!(expected));
}

// ---- breakdowns, orders, havings, limit -----------------------------------------------------

/// Routes /a ×3, /b ×2, /c ×1, with durations so that P90 orders them differently.
fn route_rows() -> Vec<VecRow> {
    let spec = [("/a", 1), ("/a", 2), ("/a", 3), ("/b", 50), ("/b", 60), ("/c", 7)];
    spec.iter().enumerate().map(|(i, (route, ms))| span(i as i64, *ms).with("http.route", *route)).collect()
}

fn routes(result: &QueryResult) -> Vec<Value> {
    result.results.iter().map(|row| row.data["http.route"].clone()).collect()
}

#[test]
fn breakdowns_on_several_columns_group_by_each_tuple_with_missing_values_as_null() {
    let rows = vec![
        span(0, 1).with("http.route", "/a").with("user", "x"),
        span(1, 1).with("http.route", "/a").with("user", "x"),
        span(2, 1).with("http.route", "/a"),
        span(3, 1).with("user", "x"),
    ];
    let result = run(&rows, json!({"breakdowns": ["http.route", "user"]}));
    let names = ["http.route", "user"];
    assert_eq!(result.results.len(), 3);
    assert_eq!(result.row(&names, &[json!("/a"), json!("x")]).unwrap().data["COUNT"], json!(2));
    assert_eq!(result.row(&names, &[json!("/a"), Value::Null]).unwrap().data["COUNT"], json!(1));
    assert_eq!(result.row(&names, &[Value::Null, json!("x")]).unwrap().data["COUNT"], json!(1));
}

#[test]
fn results_are_ordered_by_the_first_calculation_descending_by_default() {
    let result = run(&route_rows(), json!({"breakdowns": ["http.route"]}));
    assert_eq!(routes(&result), vec![json!("/a"), json!("/b"), json!("/c")]);
}

#[test]
fn orders_by_a_calculation_ascending() {
    let result = run(
        &route_rows(),
        json!({"breakdowns": ["http.route"], "calculations": [{"op": "COUNT"}, {"op": "P90", "column": "duration_ms"}],
               "orders": [{"op": "P90", "column": "duration_ms", "order": "ascending"}]}),
    );
    assert_eq!(routes(&result), vec![json!("/a"), json!("/c"), json!("/b")]);
}

#[test]
fn orders_by_a_calculation_descending() {
    let result = run(
        &route_rows(),
        json!({"breakdowns": ["http.route"], "calculations": [{"op": "MAX", "column": "duration_ms"}],
               "orders": [{"op": "MAX", "column": "duration_ms", "order": "descending"}]}),
    );
    assert_eq!(routes(&result), vec![json!("/b"), json!("/c"), json!("/a")]);
}

#[test]
fn orders_by_a_breakdown_descending() {
    let result = run(
        &route_rows(),
        json!({"breakdowns": ["http.route"], "orders": [{"column": "http.route", "order": "descending"}]}),
    );
    assert_eq!(routes(&result), vec![json!("/c"), json!("/b"), json!("/a")]);
}

#[test]
fn havings_keep_groups_whose_calculation_passes() {
    let result = run(
        &route_rows(),
        json!({"breakdowns": ["http.route"], "calculations": [{"op": "COUNT"}, {"op": "AVG", "column": "duration_ms"}],
               "havings": [{"calculate_op": "COUNT", "op": ">=", "value": 2}, {"calculate_op": "AVG", "column": "duration_ms", "op": "<", "value": 10}]}),
    );
    assert_eq!(routes(&result), vec![json!("/a")]);
    assert_eq!(result.total_groups, 3);
}

#[test]
fn limit_keeps_the_first_groups_in_order() {
    let result = run(&route_rows(), json!({"breakdowns": ["http.route"], "limit": 2}));
    assert_eq!(routes(&result), vec![json!("/a"), json!("/b")]);
    assert!(
        result.series.iter().all(|p| p.data["http.route"] != json!("/c")),
        "series hold only the groups in results"
    );
}

// ---- time ----------------------------------------------------------------------------------

#[test]
fn time_range_alone_counts_back_from_now() {
    let now = T0 + 1000;
    let rows = vec![span(399_999, 1), span(400_000, 1), span(999_999, 1), span(1_000_000, 1)];
    let result = source(&rows).query(&spec(json!({"time_range": 600})), now * SECOND).unwrap();
    assert_eq!((result.start_time, result.end_time), (T0 + 400, T0 + 1000));
    assert_eq!(only(&result, "COUNT"), json!(2));
}

#[test]
fn time_range_with_end_time_counts_back_from_it() {
    let rows = vec![span(0, 1), span(100_000, 1), span(200_000, 1)];
    let result = run(&rows, json!({"time_range": 150, "end_time": T0 + 200}));
    assert_eq!(only(&result, "COUNT"), json!(1));
}

#[test]
fn time_range_with_start_time_counts_forward_from_it() {
    let rows = vec![span(0, 1), span(100_000, 1), span(200_000, 1)];
    let result = run(&rows, json!({"time_range": 150, "start_time": T0 + 50}));
    assert_eq!(only(&result, "COUNT"), json!(1));
}

#[test]
fn granularity_sets_the_time_buckets_of_the_series() {
    let rows = vec![span(0, 1), span(29_999, 1), span(30_000, 1), span(95_000, 1)];
    let result = run(&rows, json!({"start_time": T0, "end_time": T0 + 300, "granularity": 30}));
    let series: Vec<(i64, Value)> = result.series.iter().map(|p| (p.time_unix - T0, p.data["COUNT"].clone())).collect();
    assert_eq!(series, vec![(0, json!(2)), (30, json!(1)), (90, json!(1))]);
    assert_eq!(result.series[0].time, "2023-11-14T22:13:20Z");
    assert_eq!(result.granularity, 30);
}

// ---- refusals ------------------------------------------------------------------------------

fn refusal(query: Value) -> String {
    let rows = vec![span(0, 1).with("http.route", "/a")];
    refuse(&rows, query).to_string()
}

#[test]
fn an_unknown_calculation_op_is_refused_by_name() {
    assert!(refusal(json!({"calculations": [{"op": "P42", "column": "duration_ms"}]})).contains("\"P42\""));
}

#[test]
fn an_unknown_filter_op_is_refused_by_name() {
    assert!(refusal(json!({"filters": [{"column": "name", "op": "like", "value": "x"}]})).contains("\"like\""));
}

#[test]
fn an_unknown_column_is_refused_by_name() {
    let message = refusal(json!({"breakdowns": ["no.such.column"]}));
    assert!(message.contains("no.such.column") && message.contains("breakdowns"), "{message}");
}

#[test]
fn a_numeric_op_on_a_string_column_is_refused() {
    let message = refusal(json!({"calculations": [{"op": "SUM", "column": "http.route"}]}));
    assert!(message.contains("SUM") && message.contains("http.route") && message.contains("string"), "{message}");
}

#[test]
fn a_filter_value_of_the_wrong_type_is_refused() {
    let message = refusal(json!({"filters": [{"column": "duration_ms", "op": ">", "value": "slow"}]}));
    assert!(message.contains("duration_ms") && message.contains("not a number"), "{message}");
}

#[test]
fn count_with_a_column_and_p90_without_one_are_refused() {
    assert!(refusal(json!({"calculations": [{"op": "COUNT", "column": "name"}]})).contains("takes no column"));
    assert!(refusal(json!({"calculations": [{"op": "P90"}]})).contains("P90 needs a column"));
}

#[test]
fn an_order_or_having_on_something_not_calculated_is_refused() {
    assert!(refusal(json!({"orders": [{"op": "MAX", "column": "duration_ms"}]})).contains("MAX(duration_ms)"));
    assert!(refusal(json!({"orders": [{"column": "http.route"}]})).contains("not one of the breakdowns"));
    let heatmap = json!({"calculations": [{"op": "HEATMAP", "column": "duration_ms"}],
                         "havings": [{"calculate_op": "HEATMAP", "column": "duration_ms", "op": ">", "value": 1}]});
    assert!(refusal(heatmap).contains("HEATMAP"));
}

#[test]
fn limits_and_granularity_out_of_range_are_refused() {
    assert!(refusal(json!({"limit": 1001})).contains("limit"));
    assert!(refusal(json!({"time_range": 3600, "granularity": 3})).contains("granularity"));
}

// ---- against an independent computation ----------------------------------------------------

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[test]
fn generated_spans_match_a_computation_from_the_same_rows() {
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let services = ["api", "web", "worker"];
    let rows: Vec<VecRow> = (0..4000)
        .map(|_| {
            let start_ms = rng.below(3_600_000) as i64;
            let duration_us = (1u64 << rng.below(16)) + rng.below(1000);
            let start = T0 * SECOND + start_ms * MS;
            let mut row = VecRow::new(start, start + duration_us as i64 * 1000)
                .with_duration()
                .with("service.name", services[rng.below(3) as usize])
                .with("http.route", ROUTES[rng.below(4) as usize])
                .with("bytes", rng.below(100_000) as i64)
                .with("user.id", format!("user-{}", rng.below(60)).as_str());
            if rng.below(10) == 0 {
                row = row.with("error", true);
            }
            row
        })
        .collect();
    let query = json!({
        "calculations": [
            {"op": "COUNT"}, {"op": "SUM", "column": "bytes"}, {"op": "AVG", "column": "duration_ms"},
            {"op": "MIN", "column": "duration_ms"}, {"op": "MAX", "column": "bytes"},
            {"op": "COUNT_DISTINCT", "column": "user.id"}, {"op": "P50", "column": "duration_ms"}, {"op": "P99", "column": "duration_ms"}
        ],
        "filters": [{"column": "error", "op": "does-not-exist"}, {"column": "duration_ms", "op": ">", "value": 0.01}],
        "breakdowns": ["service.name", "http.route"],
        "granularity": 300,
        "limit": 1000
    });
    let result = run(&rows, query);

    // The same, computed here.
    #[derive(Default)]
    struct Expected {
        count: u64,
        bytes: i64,
        durations: Vec<f64>,
        max_bytes: i64,
        users: HashSet<String>,
        per_bucket: HashMap<i64, (u64, i64)>,
    }
    let mut groups: HashMap<(String, String), Expected> = HashMap::new();
    for row in &rows {
        let duration = number(row, "duration_ms").unwrap();
        if field(row, "error").is_some() || duration <= 0.01 {
            continue;
        }
        let key = (text(row, "service.name").unwrap().to_string(), text(row, "http.route").unwrap().to_string());
        let group = groups.entry(key).or_default();
        let bytes = number(row, "bytes").unwrap() as i64;
        group.count += 1;
        group.bytes += bytes;
        group.durations.push(duration);
        group.max_bytes = group.max_bytes.max(bytes);
        group.users.insert(text(row, "user.id").unwrap().to_string());
        let bucket = (row.start_unix_nano - T0 * SECOND) / (300 * SECOND);
        let cell = group.per_bucket.entry(bucket).or_default();
        cell.0 += 1;
        cell.1 += bytes;
    }
    assert_eq!(result.results.len(), groups.len());
    for ((service, route), mut expected) in groups {
        let key = [json!(service), json!(route)];
        let data = &result.row(&["service.name", "http.route"], &key).expect("every group is in results").data;
        expected.durations.sort_by(f64::total_cmp);
        let n = expected.durations.len();
        let exact_avg = expected.durations.iter().sum::<f64>() / n as f64;
        assert_eq!(data["COUNT"], json!(expected.count), "{key:?}");
        assert_eq!(data["SUM(bytes)"], json!(expected.bytes), "{key:?}");
        assert_eq!(data["MAX(bytes)"], json!(expected.max_bytes), "{key:?}");
        assert_eq!(data["MIN(duration_ms)"], json!(expected.durations[0]), "{key:?}");
        assert_eq!(data["COUNT_DISTINCT(user.id)"], json!(expected.users.len()), "{key:?}");
        assert!((data["AVG(duration_ms)"].as_f64().unwrap() - exact_avg).abs() <= exact_avg * 1e-12, "{key:?}");
        for (label, q) in [("P50(duration_ms)", 0.5), ("P99(duration_ms)", 0.99)] {
            let exact = expected.durations[((q * n as f64).ceil() as usize).max(1) - 1];
            let estimate = data[label].as_f64().unwrap();
            assert!((estimate - exact).abs() <= exact * RELATIVE_WIDTH, "{key:?} {label}: {estimate} vs {exact}");
        }
        let series: HashMap<i64, (u64, i64)> = result
            .series
            .iter()
            .filter(|p| p.data["service.name"] == key[0] && p.data["http.route"] == key[1])
            .map(|p| {
                ((p.time_unix - T0) / 300, (p.data["COUNT"].as_u64().unwrap(), p.data["SUM(bytes)"].as_i64().unwrap()))
            })
            .collect();
        assert_eq!(series, expected.per_bucket, "{key:?}");
    }
}
