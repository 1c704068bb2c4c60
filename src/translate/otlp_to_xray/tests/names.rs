//! Name precedence, sanitising, the 200-character cut, and the namespace.

use std::borrow::Cow;

use opentelemetry_proto::tonic::trace::v1::span::SpanKind;

use super::super::name::{DEFAULT_NAME, MAX_NAME_CHARS, sanitize_name, url_host};
use super::*;

fn name_of(kind: SpanKind, attributes: Vec<KeyValue>) -> serde_json::Value {
    let resource = vec![kv("service.name", string("cart-service"))];
    document_in(resource, child(kind, attributes))["name"].clone()
}

#[test]
fn name_precedence() {
    use SpanKind::{Client, Consumer, Internal, Producer, Server};
    let cases: Vec<(&str, SpanKind, Vec<KeyValue>, &str)> = vec![
        (
            "aws.local.service on a server span",
            Server,
            vec![kv("aws.local.service", string("local")), kv("peer.service", string("peer"))],
            "local",
        ),
        (
            "aws.local.service ignored on a client span",
            Client,
            vec![kv("aws.local.service", string("local"))],
            "GET /api/cart",
        ),
        (
            "aws.local.service on an internal LOCAL_ROOT span",
            Internal,
            vec![kv("aws.local.service", string("local")), kv("aws.span.kind", string("LOCAL_ROOT"))],
            "local",
        ),
        (
            "aws.remote.service on a client span",
            Client,
            vec![kv("aws.remote.service", string("remote")), kv("peer.service", string("peer"))],
            "remote",
        ),
        ("aws.remote.service on a producer span", Producer, vec![kv("aws.remote.service", string("queue"))], "queue"),
        ("aws.remote.service on a consumer span", Consumer, vec![kv("aws.remote.service", string("queue"))], "queue"),
        (
            "AWS.SDK. prefix trimmed for aws-api",
            Client,
            vec![kv("aws.remote.service", string("AWS.SDK.DynamoDB")), kv("rpc.system", string("aws-api"))],
            "DynamoDB",
        ),
        (
            "AWS:: prefix trimmed for aws-api",
            Client,
            vec![kv("aws.remote.service", string("AWS::S3")), kv("rpc.system", string("aws-api"))],
            "S3",
        ),
        ("prefix kept for other calls", Client, vec![kv("aws.remote.service", string("AWS::S3"))], "AWS::S3"),
        (
            "peer.service before aws.service",
            Client,
            vec![kv("peer.service", string("peer")), kv("aws.service", string("S3"))],
            "peer",
        ),
        ("aws.service", Client, vec![kv("aws.service", string("S3")), kv("db.name", string("shop"))], "S3"),
        (
            "db.name@host from the connection string",
            Client,
            vec![
                kv("db.name", string("shop")),
                kv("db.connection_string", string("jdbc:postgresql://db.example.com:5432")),
                kv("rpc.service", string("rpc")),
            ],
            "shop@db.example.com",
        ),
        (
            "db.namespace@server.address (new keys)",
            Client,
            vec![kv("db.namespace", string("shop")), kv("server.address", string("db.internal"))],
            "shop@db.internal",
        ),
        ("db.name without host", Client, vec![kv("db.name", string("shop"))], "shop"),
        ("service.name on a server span", Server, vec![kv("rpc.service", string("rpc"))], "cart-service"),
        ("service.name not on a client span", Client, vec![kv("rpc.service", string("rpc"))], "rpc"),
        (
            "rpc.service before http.host",
            Client,
            vec![kv("rpc.service", string("rpc")), kv("http.host", string("api.example.com"))],
            "rpc",
        ),
        (
            "http.host before net.peer.name",
            Client,
            vec![kv("http.host", string("api.example.com")), kv("net.peer.name", string("10.0.0.1"))],
            "api.example.com",
        ),
        ("net.peer.name", Client, vec![kv("net.peer.name", string("peer-host"))], "peer-host"),
        ("span name last", Client, vec![], "GET /api/cart"),
        ("empty attribute skipped", Client, vec![kv("peer.service", string(""))], "GET /api/cart"),
    ];
    for (case, kind, attributes, expected) in cases {
        assert_eq!(name_of(kind, attributes), expected, "{case}");
    }
}

#[test]
fn sanitising_removes_characters_x_ray_refuses() {
    let cases = [
        ("GET /api/cart?id=1", "GET /api/cart?id=1".replace('?', "")),
        ("a,b;c!d(e)", "abcde".to_owned()),
        ("tab\there", "tabhere".to_owned()),
        ("keep _.:/%&#=+-@ and 123", "keep _.:/%&#=+-@ and 123".to_owned()),
        ("订单服务🚀", "订单服务".to_owned()),
        ("Zürich-Café", "Zürich-Café".to_owned()),
        ("🚀🚀🚀", DEFAULT_NAME.to_owned()),
        ("", DEFAULT_NAME.to_owned()),
    ];
    for (raw, expected) in cases {
        assert_eq!(sanitize_name(Cow::Borrowed(raw)), expected, "{raw:?}");
    }
}

#[test]
fn valid_names_are_borrowed_not_copied() {
    assert!(matches!(sanitize_name(Cow::Borrowed("cart-service")), Cow::Borrowed(_)));
}

#[test]
fn long_names_are_cut_to_200_characters_on_a_character_boundary() {
    let cases = [
        ("ascii", "a".repeat(250)),
        ("CJK, 3 bytes each", "订".repeat(250)),
        ("mixed, cut falls inside a multi-byte character by bytes", format!("{}{}", "a".repeat(199), "é".repeat(10))),
        ("emoji removed before cutting", format!("{}{}", "🚀".repeat(50), "b".repeat(300))),
    ];
    for (case, raw) in cases {
        let name = sanitize_name(Cow::Borrowed(raw.as_str()));
        assert_eq!(name.chars().count(), MAX_NAME_CHARS, "{case}");
        assert!(raw.replace('🚀', "").starts_with(name.as_ref()), "{case}");
    }
}

#[test]
fn a_200_character_name_is_kept_whole() {
    let raw = "é".repeat(MAX_NAME_CHARS);
    assert_eq!(sanitize_name(Cow::Borrowed(&raw)), raw);
}

#[test]
fn names_from_attributes_are_sanitised_too() {
    assert_eq!(name_of(SpanKind::Client, vec![kv("peer.service", string("payments, eu"))]), "payments eu");
}

#[test]
fn the_attribute_that_gave_the_name_is_not_repeated_in_metadata() {
    let doc = document(child(SpanKind::Client, vec![kv("peer.service", string("payments"))]));
    assert_eq!(doc["name"], "payments");
    assert!(doc.get("metadata").is_none(), "{doc}");
}

#[test]
fn host_of_a_connection_string() {
    let cases = [
        ("postgresql://db.example.com:5432/shop", Some("db.example.com")),
        ("jdbc:mysql://user:secret@db.local:3306", Some("db.local")),
        ("mongodb://[::1]:27017", Some("::1")),
        ("Server=sql;Database=shop", None),
        ("redis://", None),
    ];
    for (url, host) in cases {
        assert_eq!(url_host(url), host, "{url}");
    }
}

#[test]
fn namespace_rules() {
    use SpanKind::{Client, Consumer, Internal, Producer, Server};
    let cases: Vec<(&str, Span, Option<&str>)> = vec![
        ("aws-api client", child(Client, vec![kv("rpc.system", string("aws-api"))]), Some("aws")),
        ("aws.service", child(Internal, vec![kv("aws.service", string("S3"))]), Some("aws")),
        ("client subsegment", child(Client, vec![]), Some("remote")),
        ("client root", span(Client, vec![]), Some("remote")),
        (
            "producer subsegment with aws.remote.service",
            child(Producer, vec![kv("aws.remote.service", string("queue"))]),
            Some("remote"),
        ),
        (
            "consumer subsegment with aws.remote.service",
            child(Consumer, vec![kv("aws.remote.service", string("queue"))]),
            Some("remote"),
        ),
        ("producer subsegment", child(Producer, vec![]), None),
        ("producer segment with aws.remote.service", span(Producer, vec![kv("aws.remote.service", string("q"))]), None),
        ("internal", child(Internal, vec![]), None),
        ("server", span(Server, vec![]), None),
    ];
    for (case, span, namespace) in cases {
        let doc = document(span);
        assert_eq!(doc.get("namespace").and_then(|n| n.as_str()), namespace, "{case}");
    }
}
