//! Translation speed probe: `cargo test --release -- --ignored translation_speed --nocapture`.

use std::time::Instant;

use opentelemetry_proto::tonic::trace::v1::ResourceSpans;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;

use super::super::XrayTranslation;
use super::*;

/// 100 spans like an instrumented web service sends: a server span and client/db/internal
/// children with the usual attributes.
fn request_of_100_spans() -> Vec<ResourceSpans> {
    let resource = vec![
        kv("service.name", string("checkout")),
        kv("service.version", string("2026.11.1")),
        kv("telemetry.sdk.name", string("opentelemetry")),
        kv("telemetry.sdk.language", string("python")),
        kv("telemetry.sdk.version", string("1.27.0")),
        kv("cloud.provider", string("aws")),
        kv("cloud.platform", string("aws_ecs")),
        kv("host.name", string("ip-10-0-1-23")),
    ];
    let spans = (0..100u8)
        .map(|n| {
            let mut made = match n % 4 {
                0 => span(
                    SpanKind::Server,
                    vec![
                        kv("http.request.method", string("POST")),
                        kv("url.scheme", string("https")),
                        kv("server.address", string("shop.example.com")),
                        kv("url.path", string("/api/checkout")),
                        kv("http.route", string("/api/checkout")),
                        kv("http.response.status_code", Value::IntValue(200)),
                        kv("client.address", string("203.0.113.7")),
                        kv("user_agent.original", string("Mozilla/5.0")),
                    ],
                ),
                1 => child(
                    SpanKind::Client,
                    vec![
                        kv("http.request.method", string("GET")),
                        kv("url.full", string("https://payments.example.com/v1/charge/123")),
                        kv("http.response.status_code", Value::IntValue(201)),
                        kv("server.address", string("payments.example.com")),
                    ],
                ),
                2 => child(
                    SpanKind::Client,
                    vec![
                        kv("db.system", string("postgresql")),
                        kv("db.name", string("shop")),
                        kv("db.statement", string("SELECT * FROM carts WHERE id = $1")),
                        kv("server.address", string("db.internal")),
                        kv("server.port", Value::IntValue(5432)),
                    ],
                ),
                _ => child(
                    SpanKind::Internal,
                    vec![kv("cart.items", Value::IntValue(3)), kv("coupon", string("WINTER"))],
                ),
            };
            made.span_id[7] = n.wrapping_add(1);
            made.name = format!("operation {n}");
            made
        })
        .collect();
    vec![resource_spans(resource, spans)]
}

#[test]
#[ignore = "speed probe; run in release"]
fn translation_speed() {
    let request = request_of_100_spans();
    let translation = XrayTranslation { indexed_attributes: vec!["coupon".to_owned()], ..Default::default() };
    let rounds = 20_000;
    let mut bytes = 0;
    let started = Instant::now();
    for _ in 0..rounds {
        let translated = translation.translate(&request, now());
        bytes += translated.documents.iter().map(|document| document.json.len()).sum::<usize>();
    }
    let elapsed = started.elapsed();
    let spans = rounds * 100;
    println!(
        "translated {spans} spans in {elapsed:?}: {:.0} spans/s, {} bytes per document",
        spans as f64 / elapsed.as_secs_f64(),
        bytes / spans
    );
}
