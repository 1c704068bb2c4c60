//! The benchmarks' payload: realistic OTLP server spans of an instrumented web app (the shape of
//! a Flask service's HTTP spans: route, URL, method, status, client address, user id), from a
//! deterministic generator.

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode as SpanStatusCode;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};

/// Where the spans of the relay benchmark start (2026-09-21), Unix nanos.
pub(crate) const START_UNIX_NANO: u64 = 1_790_000_000_000_000_000;

/// The routes the spans are spread over, evenly.
pub(crate) const ROUTES: [&str; 4] =
    ["/api/orders/{order_id}", "/api/cart", "/api/products/{sku}", "/api/users/{user_id}/addresses"];

/// One request of `spans` realistic server spans from an instrumented web app (one resource,
/// one scope), starting at `start` (Unix nanos), 1 ms apart.
pub(crate) fn request(random: &mut XorShift, spans: usize, start: u64) -> ExportTraceServiceRequest {
    let resource = Resource {
        attributes: vec![
            string("service.name", "checkout-api"),
            string("service.version", "2.14.3"),
            string("service.namespace", "shop"),
            string("deployment.environment.name", "production"),
            string("host.name", "ip-10-0-12-34.ec2.internal"),
            string("telemetry.sdk.language", "python"),
            string("telemetry.sdk.name", "opentelemetry"),
            string("telemetry.sdk.version", "1.38.0"),
            int("process.pid", 4242),
        ],
        ..Default::default()
    };
    let scope = InstrumentationScope {
        name: "opentelemetry.instrumentation.flask".into(),
        version: "0.59b0".into(),
        ..Default::default()
    };
    let routes = ROUTES;
    let methods = ["GET", "POST", "GET", "PUT"];
    let spans = (0..spans)
        .map(|i| {
            let which = (random.next() % routes.len() as u64) as usize;
            let route = routes[which];
            let id = random.next() % 1_000_000;
            let path = route.split('{').next().unwrap_or(route);
            let status = if random.next().is_multiple_of(20) { 500 } else { 200 };
            let begin = start + i as u64 * 1_000_000 + random.next() % 1000;
            Span {
                trace_id: random.bytes(16),
                span_id: random.bytes(8),
                parent_span_id: if i.is_multiple_of(4) { Vec::new() } else { random.bytes(8) },
                name: format!("{} {route}", methods[which]),
                kind: SpanKind::Server as i32,
                start_time_unix_nano: begin,
                end_time_unix_nano: begin + 1_000_000 + random.next() % 50_000_000,
                attributes: vec![
                    string("http.request.method", methods[which]),
                    string("http.route", route),
                    string("url.full", &format!("https://shop.example.com{path}{id}?ref=email&page=2")),
                    string("url.scheme", "https"),
                    string("server.address", "shop.example.com"),
                    string("client.address", &format!("10.0.{}.{}", id % 256, id / 256 % 256)),
                    int("http.response.status_code", status),
                    string("app.user_id", &format!("user-{:08}", random.next() % 100_000_000)),
                    int("app.items", (random.next() % 12) as i64),
                    boolean("app.cache_hit", random.next().is_multiple_of(2)),
                ],
                status: Some(Status {
                    code: if status == 500 { SpanStatusCode::Error } else { SpanStatusCode::Unset } as i32,
                    message: String::new(),
                }),
                ..Default::default()
            }
        })
        .collect();
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(resource),
            scope_spans: vec![ScopeSpans { scope: Some(scope), spans, schema_url: String::new() }],
            schema_url: "https://opentelemetry.io/schemas/1.26.0".into(),
        }],
    }
}

fn string(key: &str, value: &str) -> KeyValue {
    attribute(key, Value::StringValue(value.to_string()))
}

fn int(key: &str, value: i64) -> KeyValue {
    attribute(key, Value::IntValue(value))
}

fn boolean(key: &str, value: bool) -> KeyValue {
    attribute(key, Value::BoolValue(value))
}

fn attribute(key: &str, value: Value) -> KeyValue {
    KeyValue { key: key.to_string(), value: Some(AnyValue { value: Some(value) }), ..Default::default() }
}

/// A small deterministic generator, so every run sends the same bytes.
pub(crate) struct XorShift(u64);

impl XorShift {
    /// The generator every benchmark starts from, so runs send the same bytes.
    pub(crate) fn new() -> XorShift {
        XorShift(0x9e37_79b9_7f4a_7c15)
    }

    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }
}
