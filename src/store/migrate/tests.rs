//! Reading the store the previous release wrote (`tests/data/store-v1`), files that are not
//! such a store, and what start-up does with the old files afterwards.

use std::convert::Infallible;
use std::path::{Path, PathBuf};

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use opentelemetry_proto::tonic::metrics::v1::{Metric, metric};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::Span;
use rusqlite::Connection;

use super::v1::{LOGS, METRICS, SPANS};
use super::*;

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/store-v1/waggle.db")
}

/// Every chunk read from `path`, `max_items` at a time.
fn read_all(path: &Path, max_items: usize) -> Result<(Vec<V1Chunk>, V1Summary), MigrateError> {
    let mut chunks = Vec::new();
    let summary = read_v1(path, max_items, |chunk| {
        chunks.push(chunk);
        Ok::<(), Infallible>(())
    })?;
    Ok((chunks, summary))
}

/// A copy of the fixture in a new directory, as `<dir>/waggle.db`.
fn fixture_copy() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join(V1_FILE_NAME);
    std::fs::copy(fixture(), &path).expect("fixture copied");
    (dir, path)
}

fn file_in_new_dir(bytes: &[u8]) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join(V1_FILE_NAME);
    std::fs::write(&path, bytes).expect("file written");
    (dir, path)
}

// ---------------------------------------------------------------------------------------------
// What was written (tests/data/store-v1/written.json), as the store could keep it

type Placed<T> = (Option<Resource>, Option<InstrumentationScope>, T);

#[derive(Default, Debug, PartialEq)]
struct Contents {
    /// Sorted by trace and span id.
    spans: Vec<Placed<Span>>,
    /// In the order written.
    logs: Vec<Placed<LogRecord>>,
    metrics: Vec<Placed<Metric>>,
}

impl Contents {
    fn add(&mut self, chunk: V1Chunk) {
        match chunk {
            V1Chunk::Traces(request) => add_traces(self, request),
            V1Chunk::Logs(request) => add_logs(self, request),
            V1Chunk::Metrics(request) => add_metrics(self, request),
        }
    }

    fn sorted(mut self) -> Contents {
        self.spans.sort_by(|a, b| (&a.2.trace_id, &a.2.span_id).cmp(&(&b.2.trace_id, &b.2.span_id)));
        self
    }
}

fn add_traces(contents: &mut Contents, request: ExportTraceServiceRequest) {
    for resource_spans in request.resource_spans {
        for scope_spans in resource_spans.scope_spans {
            for span in scope_spans.spans {
                contents.spans.push((resource_spans.resource.clone(), scope_spans.scope.clone(), span));
            }
        }
    }
}

fn add_logs(contents: &mut Contents, request: ExportLogsServiceRequest) {
    for resource_logs in request.resource_logs {
        for scope_logs in resource_logs.scope_logs {
            for record in scope_logs.log_records {
                contents.logs.push((resource_logs.resource.clone(), scope_logs.scope.clone(), record));
            }
        }
    }
}

fn add_metrics(contents: &mut Contents, request: ExportMetricsServiceRequest) {
    for resource_metrics in request.resource_metrics {
        for scope_metrics in resource_metrics.scope_metrics {
            for metric in scope_metrics.metrics {
                contents.metrics.push((resource_metrics.resource.clone(), scope_metrics.scope.clone(), metric));
            }
        }
    }
}

/// The requests in `written.json`, decoded as waggle's OTLP/JSON receiver decodes them, with
/// only what the v1 store kept (see `v1_json`'s list of what its encoding lost).
fn written() -> Contents {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/store-v1/written.json");
    let text = std::fs::read_to_string(path).expect("written.json");
    let document: serde_json::Value = serde_json::from_str(&text).expect("written.json is JSON");
    let mut contents = Contents::default();
    for write in document["writes"].as_array().expect("writes") {
        let request = write["request"].clone();
        match write["signal"].as_str() {
            Some("traces") => add_traces(&mut contents, serde_json::from_value(request).expect("trace request")),
            Some("logs") => add_logs(&mut contents, serde_json::from_value(request).expect("logs request")),
            Some("metrics") => add_metrics(&mut contents, serde_json::from_value(request).expect("metrics request")),
            other => panic!("unknown signal {other:?}"),
        }
    }
    Contents {
        spans: contents
            .spans
            .into_iter()
            .map(|(r, s, span)| (kept_resource(r), kept_scope(s), kept_span(span)))
            .collect(),
        logs: contents.logs.into_iter().map(|(r, s, log)| (kept_resource(r), kept_scope(s), kept_log(log))).collect(),
        metrics: contents
            .metrics
            .into_iter()
            .map(|(r, s, metric)| (kept_resource(r), kept_scope(s), kept_metric(metric)))
            .collect(),
    }
    .sorted()
}

fn kept_resource(resource: Option<Resource>) -> Option<Resource> {
    let attributes = kept_attributes(resource?.attributes);
    (!attributes.is_empty()).then(|| Resource { attributes, ..Default::default() })
}

fn kept_scope(scope: Option<InstrumentationScope>) -> Option<InstrumentationScope> {
    let scope = scope?;
    let kept = InstrumentationScope { name: scope.name, version: scope.version, ..Default::default() };
    (kept != InstrumentationScope::default()).then_some(kept)
}

fn kept_attributes(attributes: Vec<KeyValue>) -> Vec<KeyValue> {
    attributes
        .into_iter()
        .map(|kv| KeyValue { key: kv.key, value: kv.value.and_then(kept_value), ..Default::default() })
        .collect()
}

/// Bytes become their base64 text; arrays and kvlists are kept element by element.
fn kept_value(value: AnyValue) -> Option<AnyValue> {
    let kept = match value.value? {
        any_value::Value::BytesValue(bytes) => any_value::Value::StringValue(base64(&bytes)),
        any_value::Value::ArrayValue(mut array) => {
            array.values = array.values.into_iter().map(|v| kept_value(v).unwrap_or_default()).collect();
            any_value::Value::ArrayValue(array)
        }
        any_value::Value::KvlistValue(mut list) => {
            list.values = kept_attributes(list.values);
            any_value::Value::KvlistValue(list)
        }
        other => other,
    };
    Some(AnyValue { value: Some(kept) })
}

/// Standard padded base64, as the v1 store wrote bytes values.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut text = String::new();
    for chunk in bytes.chunks(3) {
        let group = chunk.iter().enumerate().fold(0u32, |group, (i, byte)| group | u32::from(*byte) << (16 - 8 * i));
        for digit in 0..4 {
            let sextet = (group >> (18 - 6 * digit)) & 0x3f;
            text.push(if digit <= chunk.len() { char::from(ALPHABET[sextet as usize]) } else { '=' });
        }
    }
    text
}

fn kept_span(span: Span) -> Span {
    let status = span.status.filter(|status| status.code != 0 || !status.message.is_empty());
    Span {
        trace_id: span.trace_id,
        span_id: span.span_id,
        parent_span_id: span.parent_span_id,
        name: span.name,
        kind: span.kind,
        start_time_unix_nano: span.start_time_unix_nano,
        end_time_unix_nano: span.end_time_unix_nano,
        attributes: kept_attributes(span.attributes),
        events: span
            .events
            .into_iter()
            .map(|event| opentelemetry_proto::tonic::trace::v1::span::Event {
                time_unix_nano: event.time_unix_nano,
                name: event.name,
                attributes: kept_attributes(event.attributes),
                ..Default::default()
            })
            .collect(),
        links: span
            .links
            .into_iter()
            .map(|link| opentelemetry_proto::tonic::trace::v1::span::Link {
                trace_id: link.trace_id,
                span_id: link.span_id,
                trace_state: link.trace_state,
                attributes: kept_attributes(link.attributes),
                ..Default::default()
            })
            .collect(),
        status,
        ..Default::default()
    }
}

fn kept_log(log: LogRecord) -> LogRecord {
    LogRecord {
        time_unix_nano: log.time_unix_nano,
        observed_time_unix_nano: log.observed_time_unix_nano,
        severity_number: log.severity_number,
        severity_text: log.severity_text,
        body: log.body.and_then(kept_value),
        attributes: kept_attributes(log.attributes),
        trace_id: log.trace_id,
        span_id: log.span_id,
        ..Default::default()
    }
}

/// Metrics keep everything but their metadata and the points' flags (none are set in the
/// fixture, so only the metadata is cleared here).
fn kept_metric(metric: Metric) -> Metric {
    Metric { metadata: Vec::new(), ..metric }
}

fn read_fixture() -> Contents {
    let (chunks, _) = read_all(&fixture(), DEFAULT_CHUNK_ITEMS).expect("fixture reads");
    let mut contents = Contents::default();
    chunks.into_iter().for_each(|chunk| contents.add(chunk));
    contents.sorted()
}

fn attribute<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a any_value::Value> {
    attributes.iter().find(|kv| kv.key == key)?.value.as_ref()?.value.as_ref()
}

// ---------------------------------------------------------------------------------------------
// The fixture reads back as written

#[test]
fn the_fixture_yields_every_span_as_written() {
    let (read, written) = (read_fixture(), written());
    assert_eq!(read.spans.len(), 9);
    assert_eq!(read.spans, written.spans);
}

#[test]
fn the_fixture_yields_every_log_record_as_written() {
    let (read, written) = (read_fixture(), written());
    assert_eq!(read.logs.len(), 6);
    assert_eq!(read.logs, written.logs);
}

#[test]
fn the_fixture_yields_every_metric_and_point_as_written() {
    let (read, written) = (read_fixture(), written());
    assert_eq!(read.metrics.len(), 6);
    assert_eq!(read.metrics, written.metrics);
}

#[test]
fn attribute_values_keep_their_types_and_exact_doubles() {
    let read = read_fixture();
    let root = &read.spans.iter().find(|(_, _, span)| span.name == "POST /checkout").expect("root span").2;
    let value = |key| attribute(&root.attributes, key).cloned();
    assert_eq!(value("int"), Some(any_value::Value::IntValue(-9_007_199_254_740_993)));
    assert_eq!(value("int.max"), Some(any_value::Value::IntValue(i64::MAX)));
    assert_eq!(value("double.whole"), Some(any_value::Value::DoubleValue(3.0)));
    assert_eq!(value("double.precise"), Some(any_value::Value::DoubleValue(0.1 + 0.2)));
    assert_eq!(value("double.tiny"), Some(any_value::Value::DoubleValue(5e-324)));
    assert_eq!(value("double.huge"), Some(any_value::Value::DoubleValue(f64::MAX)));
    assert_eq!(value("bool"), Some(any_value::Value::BoolValue(true)));
    assert_eq!(value("bytes"), Some(any_value::Value::StringValue("3q2+7/8=".into())));
    assert_eq!(value("absent"), None);
    let Some(any_value::Value::KvlistValue(list)) = value("kvlist") else { panic!("kvlist: {:?}", value("kvlist")) };
    let keys: Vec<&str> = list.values.iter().map(|kv| kv.key.as_str()).collect();
    assert_eq!(keys, ["z.first", "a.second"], "key order kept");
}

#[test]
fn a_span_of_a_trace_first_seen_earlier_comes_with_that_trace() {
    // Trace 01 has five spans; the fifth was written after logs, metrics and trace 02.
    let (chunks, _) = read_all(&fixture(), 5).expect("fixture reads");
    let mut first = Contents::default();
    first.add(chunks[0].clone());
    let names: Vec<&str> = first.spans.iter().map(|(_, _, span)| span.name.as_str()).collect();
    assert_eq!(names.len(), 5, "{names:?}");
    assert!(names.contains(&"card network call"), "{names:?}");
    assert!(first.spans.iter().all(|(_, _, span)| span.trace_id == vec![1; 16]));
}

// ---------------------------------------------------------------------------------------------
// Chunks and order

fn items(chunk: &V1Chunk) -> usize {
    let mut contents = Contents::default();
    contents.add(chunk.clone());
    contents.spans.len() + contents.logs.len() + contents.metrics.len()
}

#[test]
fn chunks_hold_at_most_the_limit_and_every_item_once() {
    let (chunks, summary) = read_all(&fixture(), 2).expect("fixture reads");
    assert!(chunks.iter().all(|chunk| (1..=2).contains(&items(chunk))), "{chunks:?}");
    let mut contents = Contents::default();
    chunks.into_iter().for_each(|chunk| contents.add(chunk));
    assert_eq!(contents.sorted(), read_fixture());
    assert_eq!((summary.spans, summary.logs, summary.metrics, summary.skipped), (9, 6, 6, 0));
}

#[test]
fn chunks_come_in_insertion_order_across_signals() {
    let (chunks, summary) = read_all(&fixture(), 1).expect("fixture reads");
    let kinds: String = chunks
        .iter()
        .map(|chunk| match chunk {
            V1Chunk::Traces(_) => 'T',
            V1Chunk::Logs(_) => 'L',
            V1Chunk::Metrics(_) => 'M',
        })
        .collect();
    // Trace 01 (4 spans + its late span), 5 logs, 5 metrics, trace 02 (2), the X-Ray trace (2),
    // 1 log, 1 metric: the store's `seq` order.
    assert_eq!(kinds, "TTTTTLLLLLMMMMMTTTTLM");
    assert_eq!(summary.chunks, 21);
}

#[test]
fn the_reading_queries_walk_indexes_without_sorting() {
    let connection = Connection::open_with_flags(
        format!("file:{}?immutable=1", fixture().display()),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_URI,
    )
    .expect("fixture opens");
    for query in [SPANS, LOGS, METRICS] {
        let mut plan = connection.prepare(&format!("EXPLAIN QUERY PLAN {query}")).expect("plan");
        let details: Vec<String> =
            plan.query_map([], |row| row.get::<_, String>(3)).expect("plan rows").map(Result::unwrap).collect();
        assert!(!details.iter().any(|detail| detail.contains("TEMP B-TREE")), "{query}: {details:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// Reading changes nothing

#[test]
fn reading_never_modifies_the_store_or_adds_files_beside_it() {
    let (dir, path) = fixture_copy();
    let before = std::fs::read(&path).expect("bytes");
    let modified = std::fs::metadata(&path).and_then(|m| m.modified()).expect("mtime");
    read_all(&path, DEFAULT_CHUNK_ITEMS).expect("copy reads");
    assert_eq!(std::fs::read(&path).expect("bytes"), before);
    assert_eq!(std::fs::metadata(&path).and_then(|m| m.modified()).expect("mtime"), modified);
    let files: Vec<_> = std::fs::read_dir(dir.path()).expect("dir").map(|e| e.expect("entry").file_name()).collect();
    assert_eq!(files, [V1_FILE_NAME]);
}

#[test]
fn writes_still_in_the_wal_are_read_and_the_files_left_unchanged() {
    let (_dir, path) = fixture_copy();
    // A writer that never closes: its last write stays in the -wal, as after a crash.
    let writer = Connection::open(&path).expect("writer opens");
    writer.pragma_update(None, "wal_autocheckpoint", 0).expect("no checkpoints");
    writer
        .execute(
            "INSERT INTO logs (seq, time, time_unix_nano, observed_time_unix_nano, severity_number, severity_text,
                               body, attributes, resource, service, scope_name, scope_version, size)
             VALUES (100, 5, 5, 6, 9, 'INFO', '\"only in the wal\"', '{}', '{}', NULL, '', '', 10)",
            [],
        )
        .expect("log inserted");
    let main_before = std::fs::read(&path).expect("main file");
    let wal_before = std::fs::read(sibling(&path, "-wal")).expect("wal file");
    assert!(!wal_before.is_empty());

    let (chunks, summary) = read_all(&path, DEFAULT_CHUNK_ITEMS).expect("reads");
    let mut contents = Contents::default();
    chunks.into_iter().for_each(|chunk| contents.add(chunk));
    let newest = contents.logs.last().and_then(|(_, _, log)| log.body.clone());
    assert_eq!(newest.and_then(|b| b.value), Some(any_value::Value::StringValue("only in the wal".into())));
    assert_eq!(summary.logs, 7);
    assert_eq!(std::fs::read(&path).expect("main file"), main_before);
    assert_eq!(std::fs::read(sibling(&path, "-wal")).expect("wal file"), wal_before);
    drop(writer);
}

// ---------------------------------------------------------------------------------------------
// Files that are not a v1 store

#[test]
fn a_file_that_is_not_a_database_is_not_a_v1_store() {
    let (_dir, path) = file_in_new_dir(b"this is not a database, just some text that is long enough");
    let error = read_all(&path, DEFAULT_CHUNK_ITEMS).expect_err("not a store");
    assert!(matches!(error, MigrateError::NotV1Store { .. }), "{error:?}");
    assert!(error.is_unreadable());
}

#[test]
fn an_empty_file_is_not_a_v1_store() {
    let (_dir, path) = file_in_new_dir(b"");
    let error = read_all(&path, DEFAULT_CHUNK_ITEMS).expect_err("not a store");
    assert!(matches!(error, MigrateError::NotV1Store { .. }), "{error:?}");
}

#[test]
fn a_database_without_the_v1_tables_is_not_a_v1_store() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join(V1_FILE_NAME);
    let other = Connection::open(&path).expect("creates");
    other.execute_batch("CREATE TABLE notes (text TEXT); PRAGMA user_version = 1;").expect("schema");
    drop(other);
    let error = read_all(&path, DEFAULT_CHUNK_ITEMS).expect_err("not a store");
    assert!(matches!(error, MigrateError::NotV1Store { .. }), "{error:?}");
}

#[test]
fn another_schema_version_is_an_unknown_version() {
    let (_dir, path) = fixture_copy();
    let writer = Connection::open(&path).expect("opens");
    writer.pragma_update(None, "user_version", 2).expect("version set");
    drop(writer);
    let error = read_all(&path, DEFAULT_CHUNK_ITEMS).expect_err("unknown version");
    assert!(matches!(error, MigrateError::UnknownVersion { found: 2, .. }), "{error:?}");
    assert!(error.is_unreadable());
}

#[test]
fn a_store_with_damaged_pages_is_corrupt() {
    let (_dir, path) = fixture_copy();
    let mut bytes = std::fs::read(&path).expect("bytes");
    // Page 1 (the schema) stays; every table's and index's pages become noise.
    for (index, byte) in bytes.iter_mut().enumerate().skip(4096) {
        *byte = (index % 251) as u8;
    }
    std::fs::write(&path, bytes).expect("damaged");
    let error = read_all(&path, DEFAULT_CHUNK_ITEMS).expect_err("corrupt");
    assert!(matches!(error, MigrateError::Corrupt { .. }), "{error:?}");
    assert!(error.is_unreadable());
}

#[test]
fn a_store_whose_lock_another_process_holds_is_in_use() {
    let (_dir, path) = fixture_copy();
    let lock = std::fs::File::create(sibling(&path, ".lock")).expect("lock file");
    lock.try_lock().expect("locked");
    let error = read_all(&path, DEFAULT_CHUNK_ITEMS).expect_err("in use");
    assert!(matches!(error, MigrateError::InUse { .. }), "{error:?}");
    assert!(!error.is_unreadable());
}

#[test]
fn a_bad_row_is_skipped_and_counted() {
    let (_dir, path) = fixture_copy();
    let writer = Connection::open(&path).expect("opens");
    writer.execute("UPDATE logs SET attributes = 'not json' WHERE seq = 3", []).expect("damaged row");
    drop(writer);
    let (_, summary) = read_all(&path, DEFAULT_CHUNK_ITEMS).expect("reads");
    assert_eq!((summary.logs, summary.skipped), (5, 1));
    assert!(summary.first_skipped.as_deref().is_some_and(|reason| reason.contains("logs row 3")), "{summary:?}");
}

// ---------------------------------------------------------------------------------------------
// Start-up: import, retire, set aside

fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("dir")
        .map(|entry| entry.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn no_old_store_means_nothing_to_migrate() {
    let dir = tempfile::tempdir().expect("temp dir");
    let migrated = migrate_v1_store(dir.path(), DEFAULT_CHUNK_ITEMS, |_| Ok::<(), Infallible>(()));
    assert!(matches!(migrated, Ok(None)), "{migrated:?}");
}

#[test]
fn an_imported_store_is_renamed_with_its_lock_and_never_deleted() {
    let (dir, path) = fixture_copy();
    std::fs::write(sibling(&path, ".lock"), b"").expect("lock file");
    let original = std::fs::read(&path).expect("bytes");
    let mut chunks = 0;
    let migrated = migrate_v1_store(dir.path(), DEFAULT_CHUNK_ITEMS, |_| {
        chunks += 1;
        Ok::<(), Infallible>(())
    })
    .expect("migrates");
    let Some(V1Migration::Imported { summary, retired_to }) = migrated else { panic!("{migrated:?}") };
    assert_eq!((summary.spans, summary.logs, summary.metrics, summary.chunks), (9, 6, 6, chunks));
    assert_eq!(retired_to, dir.path().join("waggle.db.migrated-v1"));
    assert_eq!(names_in(dir.path()), ["waggle.db.migrated-v1", "waggle.db.migrated-v1.lock"]);
    assert_eq!(std::fs::read(&retired_to).expect("bytes"), original);
    assert_eq!(find_v1_store(dir.path()), None);
}

#[test]
fn retiring_never_replaces_an_earlier_retired_store() {
    let (dir, path) = fixture_copy();
    std::fs::write(dir.path().join("waggle.db.migrated-v1"), b"earlier").expect("earlier file");
    let retired_to = retire_v1_store(&path).expect("retires");
    assert_eq!(retired_to, dir.path().join("waggle.db.migrated-v1.2"));
    assert_eq!(std::fs::read(dir.path().join("waggle.db.migrated-v1")).expect("bytes"), b"earlier");
}

#[test]
fn retiring_keeps_the_wal_beside_its_database() {
    let (dir, path) = fixture_copy();
    std::fs::write(sibling(&path, "-wal"), b"wal").expect("wal");
    std::fs::write(sibling(&path, "-shm"), b"shm").expect("shm");
    retire_v1_store(&path).expect("retires");
    assert_eq!(
        names_in(dir.path()),
        ["waggle.db.migrated-v1", "waggle.db.migrated-v1-shm", "waggle.db.migrated-v1-wal"]
    );
}

#[test]
fn a_corrupt_store_is_set_aside_and_start_up_goes_on() {
    let (dir, _path) = file_in_new_dir(b"garbage garbage garbage garbage");
    let migrated = migrate_v1_store(dir.path(), DEFAULT_CHUNK_ITEMS, |_| Ok::<(), Infallible>(()));
    let Ok(Some(V1Migration::SetAside { reason, moved_to })) = migrated else { panic!("{migrated:?}") };
    assert!(matches!(reason, MigrateError::NotV1Store { .. }), "{reason:?}");
    assert_eq!(moved_to, dir.path().join("waggle.db.corrupt"));
    assert_eq!(std::fs::read(&moved_to).expect("bytes"), b"garbage garbage garbage garbage");
    assert_eq!(names_in(dir.path()), ["waggle.db.corrupt"]);
}

#[test]
fn an_import_failure_leaves_the_store_in_place() {
    let (dir, path) = fixture_copy();
    let migrated = migrate_v1_store(dir.path(), DEFAULT_CHUNK_ITEMS, |_| Err("the new store is full"));
    assert!(matches!(migrated, Err(MigrateError::Import(_))), "{migrated:?}");
    assert!(path.exists());
    assert_eq!(names_in(dir.path()), [V1_FILE_NAME]);
}

// ---------------------------------------------------------------------------------------------
// JSON columns

#[test]
fn non_finite_doubles_come_back_in_number_fields_and_stay_strings_in_attributes() {
    let shape = v1_json::MetricShape { metric_type: "gauge", aggregation_temporality: None, is_monotonic: None };
    let points = r#"[{"attributes":{"v":"NaN"},"start_time_unix_nano":0,"time_unix_nano":1,"value":"-Infinity"}]"#;
    let Some(metric::Data::Gauge(gauge)) = v1_json::metric_data(&shape, points).expect("decodes") else {
        panic!("not a gauge")
    };
    let point = &gauge.data_points[0];
    assert_eq!(
        point.value,
        Some(opentelemetry_proto::tonic::metrics::v1::number_data_point::Value::AsDouble(f64::NEG_INFINITY))
    );
    assert_eq!(attribute(&point.attributes, "v"), Some(&any_value::Value::StringValue("NaN".into())));
}

#[test]
fn duplicate_attribute_keys_are_all_kept() {
    let attributes = v1_json::attributes(r#"{"k":1,"k":"two"}"#).expect("decodes");
    let values: Vec<_> = attributes.iter().map(|kv| kv.value.clone().and_then(|v| v.value)).collect();
    assert_eq!(values, [Some(any_value::Value::IntValue(1)), Some(any_value::Value::StringValue("two".into()))]);
}

#[test]
fn an_unknown_metric_type_is_an_error() {
    let shape = v1_json::MetricShape { metric_type: "sketch", aggregation_temporality: None, is_monotonic: None };
    assert!(v1_json::metric_data(&shape, "[]").is_err());
}
