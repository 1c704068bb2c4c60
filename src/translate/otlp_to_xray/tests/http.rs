//! The `http` block from old and new semantic-convention keys, and URL reconstruction.

use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use serde_json::json;

use super::*;

fn http_of(span: Span) -> serde_json::Value {
    document(span)["http"].clone()
}

#[test]
fn old_and_new_keys_give_the_same_http_block() {
    let old = vec![
        kv("http.method", string("POST")),
        kv("http.url", string("https://shop.example.com/api/checkout?step=2")),
        kv("http.user_agent", string("python-requests/2.31.0")),
        kv("http.status_code", Value::IntValue(201)),
        kv("http.response_content_length", Value::IntValue(512)),
    ];
    let new = vec![
        kv("http.request.method", string("POST")),
        kv("url.full", string("https://shop.example.com/api/checkout?step=2")),
        kv("user_agent.original", string("python-requests/2.31.0")),
        kv("http.response.status_code", Value::IntValue(201)),
        kv("http.response.body.size", Value::IntValue(512)),
    ];
    let expected = json!({
        "request": {"method": "POST", "url": "https://shop.example.com/api/checkout?step=2", "user_agent": "python-requests/2.31.0"},
        "response": {"status": 201, "content_length": 512},
    });
    assert_eq!(http_of(child(SpanKind::Client, old)), expected);
    assert_eq!(http_of(child(SpanKind::Client, new)), expected);
}

#[test]
fn http_keys_are_not_repeated_in_metadata() {
    let doc =
        document(span(SpanKind::Server, vec![kv("http.request.method", string("GET")), kv("url.path", string("/"))]));
    assert!(doc.get("metadata").is_none(), "{doc}");
}

#[test]
fn server_url_is_rebuilt_from_its_parts() {
    let cases: Vec<(&str, Vec<KeyValue>, &str)> = vec![
        (
            "old keys, host with port",
            vec![
                kv("http.method", string("GET")),
                kv("http.scheme", string("https")),
                kv("http.host", string("shop.example.com:8443")),
                kv("http.target", string("/cart?id=7")),
            ],
            "https://shop.example.com:8443/cart?id=7",
        ),
        (
            "old keys, server name and port",
            vec![
                kv("http.method", string("GET")),
                kv("http.server_name", string("shop")),
                kv("net.host.port", Value::IntValue(8080)),
                kv("http.target", string("/")),
            ],
            "http://shop:8080/",
        ),
        (
            "new keys, default https port left out",
            vec![
                kv("http.request.method", string("GET")),
                kv("url.scheme", string("https")),
                kv("server.address", string("shop.example.com")),
                kv("server.port", Value::IntValue(443)),
                kv("url.path", string("/cart")),
                kv("url.query", string("id=7")),
            ],
            "https://shop.example.com/cart?id=7",
        ),
        (
            "new keys, default http port left out, no path",
            vec![
                kv("http.request.method", string("GET")),
                kv("server.address", string("shop")),
                kv("server.port", Value::IntValue(80)),
            ],
            "http://shop/",
        ),
        (
            "net.host.name with a string port",
            vec![
                kv("http.method", string("GET")),
                kv("net.host.name", string("10.1.2.3")),
                kv("net.host.port", string("9000")),
                kv("http.target", string("/health")),
            ],
            "http://10.1.2.3:9000/health",
        ),
    ];
    for (case, attributes, url) in cases {
        assert_eq!(http_of(span(SpanKind::Server, attributes))["request"]["url"], url, "{case}");
    }
}

#[test]
fn client_url_is_rebuilt_from_the_peer() {
    let cases: Vec<(&str, Vec<KeyValue>, &str)> = vec![
        (
            "net.peer.name and port",
            vec![
                kv("http.method", string("GET")),
                kv("net.peer.name", string("payments")),
                kv("net.peer.port", Value::IntValue(8080)),
                kv("http.target", string("/charge")),
            ],
            "http://payments:8080/charge",
        ),
        (
            "net.peer.ip when there is no name",
            vec![kv("http.method", string("GET")), kv("net.peer.ip", string("10.0.0.9"))],
            "http://10.0.0.9/",
        ),
        (
            "server.address is the target host",
            vec![
                kv("http.request.method", string("GET")),
                kv("url.scheme", string("https")),
                kv("server.address", string("api.example.com")),
                kv("server.port", Value::IntValue(8443)),
                kv("url.path", string("/v1")),
            ],
            "https://api.example.com:8443/v1",
        ),
    ];
    for (case, attributes, url) in cases {
        assert_eq!(http_of(child(SpanKind::Client, attributes))["request"]["url"], url, "{case}");
    }
}

#[test]
fn no_host_no_url() {
    let http = http_of(span(SpanKind::Server, vec![kv("http.method", string("GET")), kv("http.target", string("/x"))]));
    assert_eq!(http, json!({"request": {"method": "GET"}}));
}

#[test]
fn client_ip_from_forwarded_header_is_flagged() {
    let cases: Vec<(&str, Vec<KeyValue>, serde_json::Value)> = vec![
        (
            "new keys: client differs from peer",
            vec![
                kv("http.request.method", string("GET")),
                kv("client.address", string("203.0.113.7")),
                kv("network.peer.address", string("10.0.0.2")),
            ],
            json!({"method": "GET", "client_ip": "203.0.113.7", "x_forwarded_for": true}),
        ),
        (
            "new keys: client is the peer",
            vec![
                kv("http.request.method", string("GET")),
                kv("client.address", string("10.0.0.2")),
                kv("network.peer.address", string("10.0.0.2")),
            ],
            json!({"method": "GET", "client_ip": "10.0.0.2"}),
        ),
        (
            "old keys: client differs from peer",
            vec![
                kv("http.method", string("GET")),
                kv("http.client_ip", string("203.0.113.7")),
                kv("net.peer.ip", string("10.0.0.2")),
            ],
            json!({"method": "GET", "client_ip": "203.0.113.7", "x_forwarded_for": true}),
        ),
        (
            "old keys: only the peer",
            vec![kv("http.method", string("GET")), kv("net.peer.ip", string("10.0.0.2"))],
            json!({"method": "GET", "client_ip": "10.0.0.2"}),
        ),
        (
            "X-Ray's own flag wins",
            vec![
                kv("http.method", string("GET")),
                kv("http.client_ip", string("203.0.113.7")),
                kv("aws.xray.x_forwarded_for", Value::BoolValue(true)),
            ],
            json!({"method": "GET", "client_ip": "203.0.113.7", "x_forwarded_for": true}),
        ),
        (
            "client ip alone is not assumed forwarded",
            vec![kv("http.method", string("GET")), kv("http.client_ip", string("127.0.0.1"))],
            json!({"method": "GET", "client_ip": "127.0.0.1"}),
        ),
    ];
    for (case, attributes, request) in cases {
        let http = http_of(span(SpanKind::Server, attributes));
        let got = &http["request"];
        assert_eq!(*got, request, "{case}");
    }
}

#[test]
fn peer_address_is_not_the_client_of_a_client_span() {
    let http = http_of(child(
        SpanKind::Client,
        vec![kv("http.request.method", string("GET")), kv("network.peer.address", string("10.0.0.9"))],
    ));
    assert!(http["request"].get("client_ip").is_none(), "{http}");
}

#[test]
fn status_code_as_a_string_is_read() {
    let http = http_of(child(SpanKind::Client, vec![kv("http.status_code", string("404"))]));
    assert_eq!(http, json!({"response": {"status": 404}}));
}

#[test]
fn span_without_http_attributes_has_no_http_block() {
    let doc =
        document(child(SpanKind::Client, vec![kv("server.address", string("db")), kv("url.scheme", string("x"))]));
    assert!(doc.get("http").is_none(), "{doc}");
    assert_eq!(doc["metadata"]["default"]["server.address"], "db", "unused keys stay in metadata");
}
