//! X-Ray SDK segments → OTLP (`xray_to_otlp`) → X-Ray documents again: every (sub)segment
//! comes back as one document with the same ids, name, times, annotations, metadata, http
//! block, failure flags and cause. Runs over the segments captured from real SDKs in
//! `tests/data/*xray_udp.bin` and the synthetic ones in `tests/data/xray_golden/`.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use serde_json::{Map, Value as Json};

use super::super::XrayTranslation;
use super::now;
use crate::model::XraySegment;
use crate::translate::xray_to_otlp;

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data")
}

/// Every captured UDP datagram, plus the synthetic ones that exercise cause, sql and aws.
fn datagram_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(data_dir())
        .map(|entries| entries.filter_map(|entry| entry.ok().map(|entry| entry.path())).collect())
        .unwrap_or_default();
    files.retain(|path| path.to_string_lossy().ends_with("xray_udp.bin"));
    files.sort();
    for synthetic in ["synthetic_fault_aws_sql.datagram", "synthetic_in_progress.datagram"] {
        files.push(data_dir().join("xray_golden").join(synthetic));
    }
    files
}

/// The segment document of a datagram: the JSON after the header line.
fn segment_of(path: &Path) -> (XraySegment, Json) {
    let datagram = std::fs::read(path).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
    let newline =
        datagram.iter().position(|&byte| byte == b'\n').unwrap_or_else(|| panic!("{}: no header", path.display()));
    let body = Bytes::copy_from_slice(&datagram[newline + 1..]);
    let json: Json = serde_json::from_slice(&body).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
    let text = |field: &str| json[field].as_str().unwrap_or_default().to_owned();
    (XraySegment { trace_id: text("trace_id"), id: text("id"), body }, json)
}

/// A (sub)segment of the originals, with what it inherits from the enclosing segment.
struct Original {
    document: Json,
    trace_id: Json,
    parent_id: Json,
    source: String,
}

/// Segments and their embedded subsegments, depth first.
fn flatten(document: &Json, trace_id: &Json, parent_id: &Json, source: &str, out: &mut Vec<Original>) {
    let trace_id = document.get("trace_id").unwrap_or(trace_id).clone();
    let own_parent = document.get("parent_id").unwrap_or(parent_id).clone();
    let parent = if parent_id.is_null() { own_parent } else { parent_id.clone() };
    out.push(Original {
        document: document.clone(),
        trace_id: trace_id.clone(),
        parent_id: parent,
        source: source.to_owned(),
    });
    for subsegment in document["subsegments"].as_array().into_iter().flatten() {
        flatten(subsegment, &trace_id, &document["id"], source, out);
    }
}

#[test]
fn captured_segments_survive_the_round_trip() {
    let files = datagram_files();
    assert!(files.len() > 20, "captures missing: {files:?}");
    let (segments, originals): (Vec<XraySegment>, Vec<(Json, String)>) = files
        .iter()
        .map(|path| {
            let (segment, json) = segment_of(path);
            (segment, (json, path.file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_default()))
        })
        .unzip();
    let (resource_spans, rejected) = xray_to_otlp::convert(&segments);
    assert!(rejected.is_empty(), "{rejected:?}");
    let translated = XrayTranslation::default().translate(&resource_spans, now());
    assert!(translated.rejected.is_empty(), "{:?}", translated.rejected);

    let mut flat = Vec::new();
    for (json, source) in &originals {
        flatten(json, &Json::Null, &Json::Null, source, &mut flat);
    }
    assert_eq!(translated.documents.len(), flat.len(), "one document per (sub)segment");
    for original in &flat {
        let id = &original.document["id"];
        let found = translated.documents.iter().find(|document| Some(document.id.as_str()) == id.as_str());
        let Some(found) = found else { panic!("{}: no document for {id}", original.source) };
        let back: Json = serde_json::from_slice(&found.json).unwrap_or_default();
        compare(original, &back);
    }
}

fn compare(original: &Original, back: &Json) {
    let doc = &original.document;
    let what = format!("{} {}", original.source, doc["id"]);
    assert_eq!(back["name"], doc["name"], "{what}: name");
    assert_eq!(back["trace_id"], original.trace_id, "{what}: trace_id");
    assert_eq!(back.get("parent_id").cloned().unwrap_or_default(), original.parent_id, "{what}: parent_id");
    assert_close(&back["start_time"], &doc["start_time"], &what);
    let in_progress = doc["in_progress"] == true;
    assert_eq!(back["in_progress"] == true, in_progress, "{what}: in_progress");
    if !in_progress {
        assert_close(&back["end_time"], &doc["end_time"], &what);
    }
    for flag in ["error", "throttle", "fault"] {
        assert_eq!(back[flag] == true, doc[flag] == true, "{what}: {flag}");
    }
    if matches!(doc["namespace"].as_str(), Some("aws" | "remote")) {
        assert_eq!(back["namespace"], doc["namespace"], "{what}: namespace");
    }
    assert_eq!(back.get("user"), doc.get("user"), "{what}: user");
    assert_eq!(back.get("annotations"), doc.get("annotations"), "{what}: annotations");
    compare_metadata(doc.get("metadata"), back.get("metadata"), &what);
    assert_eq!(normalized_http(back.get("http")), normalized_http(doc.get("http")), "{what}: http");
    assert_eq!(normalized_cause(back.get("cause")), normalized_cause(doc.get("cause")), "{what}: cause");
    compare_fields(&doc["sql"], &back["sql"], &["url", "database_type", "user", "sanitized_query"], &what);
    compare_fields(
        &doc["aws"],
        &back["aws"],
        &["account_id", "operation", "region", "request_id", "table_name", "retries"],
        &what,
    );
    compare_fields(&doc["aws"]["xray"], &back["aws"]["xray"], &["sdk", "sdk_version", "sampling_rule_name"], &what);
    if doc.get("origin").is_some() {
        assert_eq!(back["origin"], doc["origin"], "{what}: origin");
    }
}

/// Times come back rounded to the microsecond.
fn assert_close(back: &Json, original: &Json, what: &str) {
    let (Some(back), Some(original)) = (back.as_f64(), original.as_f64()) else {
        panic!("{what}: time missing: {back} vs {original}");
    };
    assert!((back - original).abs() <= 1.5e-6, "{what}: time {back} vs {original}");
}

/// Every original namespace comes back JSON-equal; the only additions are the resource's
/// `otel.resource.*` keys in `default`.
fn compare_metadata(original: Option<&Json>, back: Option<&Json>, what: &str) {
    let empty = Map::new();
    let original = original.and_then(Json::as_object).unwrap_or(&empty);
    let back = back.and_then(Json::as_object).unwrap_or(&empty);
    for (namespace, fields) in back {
        match original.get(namespace) {
            Some(original_fields) if namespace != "default" => {
                assert_eq!(fields, original_fields, "{what}: metadata.{namespace}");
            }
            _ => {
                let original_fields = original.get(namespace).and_then(Json::as_object).unwrap_or(&empty);
                let fields = fields.as_object().unwrap_or(&empty);
                for (key, value) in fields {
                    match original_fields.get(key) {
                        Some(original_value) => assert_eq!(value, original_value, "{what}: metadata.{namespace}.{key}"),
                        None => assert!(key.starts_with("otel.resource."), "{what}: extra metadata.{namespace}.{key}"),
                    }
                }
                assert_eq!(namespace, "default", "{what}: extra namespace");
            }
        }
    }
    for (namespace, fields) in original {
        let back_fields = back.get(namespace).and_then(Json::as_object).unwrap_or(&empty);
        for (key, value) in fields.as_object().unwrap_or(&empty) {
            assert_eq!(back_fields.get(key), Some(value), "{what}: metadata.{namespace}.{key} lost");
        }
    }
}

/// `false` flags and absent fields are the same thing.
fn without_false(json: &Json) -> Json {
    match json {
        Json::Object(fields) => Json::Object(
            fields
                .iter()
                .filter(|(_, value)| **value != Json::Bool(false))
                .map(|(k, v)| (k.clone(), without_false(v)))
                .collect(),
        ),
        Json::Array(items) => Json::Array(items.iter().map(without_false).collect()),
        other => other.clone(),
    }
}

fn normalized_http(http: Option<&Json>) -> Json {
    http.map(without_false).unwrap_or_default()
}

/// The exceptions (ids, types, messages, flags, stacks, links); `working_directory` is not
/// carried by the OTLP form.
fn normalized_cause(cause: Option<&Json>) -> Json {
    match cause {
        Some(Json::Object(fields)) => without_false(&fields.get("exceptions").cloned().unwrap_or_default()),
        Some(other) => other.clone(),
        None => Json::Null,
    }
}

fn compare_fields(original: &Json, back: &Json, fields: &[&str], what: &str) {
    for field in fields {
        if let Some(value) = original.get(*field) {
            assert_eq!(back.get(*field), Some(value), "{what}: {field}");
        }
    }
}
