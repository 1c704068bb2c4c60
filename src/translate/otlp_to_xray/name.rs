//! The document's `name` (a service name, not an operation) and `namespace`.

use std::borrow::Cow;

use opentelemetry_proto::tonic::trace::v1::span::SpanKind;

use super::attributes::{Key, SpanAttributes};

/// X-Ray's limit on names, in characters.
pub(super) const MAX_NAME_CHARS: usize = 200;
/// The name when nothing usable is left.
pub(super) const DEFAULT_NAME: &str = "span";

/// The name, where it came from, and the namespace.
pub(super) struct Naming<'a> {
    pub name: Cow<'a, str>,
    /// The attribute the name was taken from verbatim, if any (not repeated in metadata).
    pub source: Option<Key>,
    pub namespace: Option<&'static str>,
}

/// Chooses the name by the Collector's precedence and the namespace by its rules.
pub(super) fn naming<'a>(
    span_name: &'a str,
    kind: SpanKind,
    attributes: &SpanAttributes<'a>,
    service_name: Option<&'a str>,
    is_subsegment: bool,
) -> Naming<'a> {
    let (raw, source) = raw_name(span_name, kind, attributes, service_name);
    Naming { name: sanitize_name(raw), source, namespace: namespace(kind, attributes, is_subsegment) }
}

fn raw_name<'a>(
    span_name: &'a str,
    kind: SpanKind,
    attributes: &SpanAttributes<'a>,
    service_name: Option<&'a str>,
) -> (Cow<'a, str>, Option<Key>) {
    let local_root = kind == SpanKind::Internal && attributes.str(Key::AwsSpanKind) == Some("LOCAL_ROOT");
    if (kind == SpanKind::Server || local_root)
        && let Some(local_service) = attributes.str(Key::AwsLocalService)
    {
        return (Cow::Borrowed(local_service), Some(Key::AwsLocalService));
    }
    if is_dependency(kind)
        && let Some(remote_service) = attributes.str(Key::AwsRemoteService)
    {
        return (Cow::Borrowed(trim_aws_sdk_prefix(remote_service, attributes)), Some(Key::AwsRemoteService));
    }
    if let Some((key, name)) = attributes.first_str(&[Key::PeerService, Key::AwsService]) {
        return (Cow::Borrowed(name), Some(key));
    }
    if let Some(database) = database_name(attributes) {
        return (database, None);
    }
    if kind == SpanKind::Server
        && let Some(service_name) = service_name.filter(|name| !name.is_empty())
    {
        return (Cow::Borrowed(service_name), None);
    }
    if let Some((key, name)) = attributes.first_str(&[Key::RpcService, Key::HttpHost, Key::NetPeerName]) {
        return (Cow::Borrowed(name), Some(key));
    }
    (Cow::Borrowed(span_name), None)
}

/// A call to another service: CLIENT, PRODUCER or CONSUMER.
fn is_dependency(kind: SpanKind) -> bool {
    matches!(kind, SpanKind::Client | SpanKind::Producer | SpanKind::Consumer)
}

fn is_aws_api(attributes: &SpanAttributes<'_>) -> bool {
    attributes.str(Key::RpcSystem) == Some("aws-api")
}

/// `AWS.SDK.DynamoDB` / `AWS::DynamoDB` → `DynamoDB`, for AWS SDK spans only.
fn trim_aws_sdk_prefix<'a>(name: &'a str, attributes: &SpanAttributes<'_>) -> &'a str {
    if !is_aws_api(attributes) {
        return name;
    }
    name.strip_prefix("AWS.SDK.").or_else(|| name.strip_prefix("AWS::")).unwrap_or(name)
}

/// `<db name>@<db host>`: the database from `db.name` (or `db.namespace`), the host from
/// `db.connection_string` (or `server.address`).
fn database_name<'a>(attributes: &SpanAttributes<'a>) -> Option<Cow<'a, str>> {
    let (_, database) = attributes.first_str(&[Key::DbName, Key::DbNamespace])?;
    let host =
        attributes.str(Key::DbConnectionString).and_then(url_host).or_else(|| attributes.str(Key::ServerAddress));
    Some(match host {
        Some(host) => Cow::Owned(format!("{database}@{host}")),
        None => Cow::Borrowed(database),
    })
}

/// The host of `scheme://[user[:password]@]host[:port][/…]` (`jdbc:` ignored); `None` when
/// the text has no such host.
pub(super) fn url_host(url: &str) -> Option<&str> {
    let url = url.strip_prefix("jdbc:").unwrap_or(url);
    let (_, rest) = url.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host_and_port = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
    let host = match host_and_port.strip_prefix('[') {
        Some(bracketed) => bracketed.split_once(']').map_or(bracketed, |(host, _)| host),
        None => host_and_port.split(':').next().unwrap_or_default(),
    };
    (!host.is_empty()).then_some(host)
}

/// `aws` for AWS SDK calls; `remote` for other calls to services.
fn namespace(kind: SpanKind, attributes: &SpanAttributes<'_>, is_subsegment: bool) -> Option<&'static str> {
    if is_aws_api(attributes) || attributes.has(Key::AwsService) {
        return Some("aws");
    }
    let remote_dependency = is_subsegment && is_dependency(kind) && attributes.has(Key::AwsRemoteService);
    (kind == SpanKind::Client || remote_dependency).then_some("remote")
}

/// Keeps Unicode letters, ASCII digits, space and `_ . : / % & # = + - @` (X-Ray's name
/// rules), cut to [`MAX_NAME_CHARS`] characters; [`DEFAULT_NAME`] when nothing is left.
/// Borrowed when the name is already valid.
pub(super) fn sanitize_name(name: Cow<'_, str>) -> Cow<'_, str> {
    let mut characters = 0;
    let valid = name.chars().all(|c| {
        characters += 1;
        allowed_in_name(c) && characters <= MAX_NAME_CHARS
    });
    if valid && characters > 0 {
        return name;
    }
    let fixed: String = name.chars().filter(|&c| allowed_in_name(c)).take(MAX_NAME_CHARS).collect();
    if fixed.is_empty() { Cow::Borrowed(DEFAULT_NAME) } else { Cow::Owned(fixed) }
}

fn allowed_in_name(c: char) -> bool {
    c == ' '
        || c.is_ascii_digit()
        || c.is_alphabetic()
        || matches!(c, '_' | '.' | ':' | '/' | '%' | '&' | '#' | '=' | '+' | '-' | '@')
}
