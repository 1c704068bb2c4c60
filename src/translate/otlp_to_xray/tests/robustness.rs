//! Odd input never panics, and every document made is JSON within the size limit.

use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::super::XrayTranslation;
use super::super::outcome::MAX_DOCUMENT_BYTES;
use super::*;

const KEYS: [&str; 24] = [
    "http.method",
    "http.status_code",
    "http.response.status_code",
    "url.full",
    "http.host",
    "server.address",
    "server.port",
    "client.address",
    "network.peer.address",
    "db.system",
    "db.name",
    "db.connection_string",
    "aws.operation",
    "aws.dynamodb.table_names",
    "aws.xray.annotations",
    "aws.xray.metadata.app",
    "aws.xray.metadata.default",
    "aws.xray.inprogress",
    "enduser.id",
    "peer.service",
    "rpc.system",
    "aws.remote.service",
    "weird key ✓",
    "",
];

fn random_value(rng: &mut StdRng) -> Value {
    match rng.random_range(0..8) {
        0 => Value::IntValue(rng.random_range(-1000..1000)),
        1 => Value::DoubleValue(if rng.random_bool(0.2) { f64::NAN } else { rng.random_range(-1e6..1e6) }),
        2 => Value::BoolValue(rng.random_bool(0.5)),
        3 => strings(&["a", "b", "{\"x\":1}"]),
        4 => string("{\"nested\": {\"k\": [1, 2]}}"),
        5 => Value::BytesValue(vec![0, 255]),
        6 => string(&"é".repeat(rng.random_range(0..3_000))),
        _ => string(
            ["", "GET", "500", "postgresql", "jdbc:mysql://h:1/db", "aws-api", "{not json"][rng.random_range(0..7)],
        ),
    }
}

fn random_span(rng: &mut StdRng) -> Span {
    let attributes =
        (0..rng.random_range(0..30)).map(|_| kv(KEYS[rng.random_range(0..KEYS.len())], random_value(rng))).collect();
    let kinds = [
        SpanKind::Unspecified,
        SpanKind::Internal,
        SpanKind::Server,
        SpanKind::Client,
        SpanKind::Producer,
        SpanKind::Consumer,
    ];
    let mut made = if rng.random_bool(0.5) {
        span(kinds[rng.random_range(0..6)], attributes)
    } else {
        child(kinds[rng.random_range(0..6)], attributes)
    };
    made.kind = if rng.random_bool(0.05) { 42 } else { made.kind };
    made.end_time_unix_nano = if rng.random_bool(0.1) { 0 } else { u64::MAX };
    made.name = "🚀 x".repeat(rng.random_range(0..120));
    if rng.random_bool(0.3) {
        made.events = vec![exception_event(vec![
            kv("exception.type", random_value(rng)),
            kv("exception.stacktrace", string("E: m\n\tat a(b:1)\n  File \"x\", line 2, in y\n    at z (q:3:4)")),
        ])];
    }
    made
}

#[test]
fn random_spans_never_panic_and_documents_are_json_within_the_limit() {
    let mut rng = StdRng::seed_from_u64(11);
    let translation = XrayTranslation { index_all_attributes: true, ..Default::default() };
    let mut made = 0;
    for _ in 0..500 {
        let spans: Vec<Span> = (0..5).map(|_| random_span(&mut rng)).collect();
        let resource = vec![kv("service.name", random_value(&mut rng)), kv("cloud.platform", string("aws_ecs"))];
        let translated = translate_with(&translation, resource, spans);
        assert_eq!(translated.documents.len() + translated.rejected.len(), 5);
        made += translated.documents.len();
        for document in &translated.documents {
            assert!(document.json.len() <= MAX_DOCUMENT_BYTES);
            assert!(parse(&document.json).is_object());
        }
    }
    assert!(made > 2_000, "most spans make a document: {made}");
}
