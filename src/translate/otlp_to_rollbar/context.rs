//! What an item says around its exception: the resource's environment, version, host,
//! language and framework, and the request from the span's HTTP attributes.

use std::borrow::Cow;

use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue};

use super::item::RequestInfo;

/// The value of a string attribute.
pub(crate) fn find_str<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a str> {
    match find(attributes, key)? {
        Value::StringValue(text) if !text.is_empty() => Some(text),
        _ => None,
    }
}

/// The value of an integer attribute (or a string holding one).
fn find_int(attributes: &[KeyValue], key: &str) -> Option<i64> {
    match find(attributes, key)? {
        Value::IntValue(number) => Some(*number),
        Value::StringValue(text) => text.parse().ok(),
        _ => None,
    }
}

fn find<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a Value> {
    attributes.iter().find(|kv| kv.key == key)?.value.as_ref()?.value.as_ref()
}

fn first_str<'a>(attributes: &'a [KeyValue], keys: &[&str]) -> Option<&'a str> {
    keys.iter().find_map(|key| find_str(attributes, key))
}

/// A log body or other value as text: strings as they are, anything else as its JSON.
pub(crate) fn value_text(value: Option<&AnyValue>) -> Option<Cow<'_, str>> {
    match value?.value.as_ref()? {
        Value::StringValue(text) => Some(Cow::Borrowed(text.as_str())),
        other => serde_json::to_string(other).ok().map(Cow::Owned),
    }
}

/// What every item of one resource (and instrumentation scope) shares.
#[derive(Clone, Copy)]
pub(crate) struct ResourceContext<'a> {
    pub environment: &'a str,
    pub code_version: Option<&'a str>,
    pub host: Option<&'a str>,
    pub language: Option<&'a str>,
    pub framework: Option<&'a str>,
    pub service_name: Option<&'a str>,
}

impl<'a> ResourceContext<'a> {
    /// `environment` is the configured one, else `deployment.environment.name`, else
    /// `deployment.environment`, else `default_environment`.
    pub(crate) fn new(
        resource: &'a [KeyValue],
        configured_environment: Option<&'a str>,
        default_environment: &'a str,
    ) -> Self {
        let environment = configured_environment
            .or_else(|| first_str(resource, &["deployment.environment.name", "deployment.environment"]))
            .unwrap_or(default_environment);
        ResourceContext {
            environment,
            code_version: find_str(resource, "service.version"),
            host: first_str(resource, &["host.name", "host.id"]),
            language: find_str(resource, "telemetry.sdk.language"),
            framework: None,
            service_name: find_str(resource, "service.name"),
        }
    }

    /// With the framework named by the instrumentation scope
    /// (`opentelemetry.instrumentation.flask` → `flask`), when the scope names one.
    pub(crate) fn in_scope(&self, scope_name: &'a str) -> ResourceContext<'a> {
        ResourceContext { framework: framework_of(scope_name).or(self.framework), ..*self }
    }
}

/// The instrumented library a scope name names: the part after `instrumentation.` or
/// `instrumentation-` (`opentelemetry.instrumentation.flask`, `@opentelemetry/instrumentation-express`,
/// `io.opentelemetry.spring-webmvc-6.0` is not one and gives none).
fn framework_of(scope_name: &str) -> Option<&str> {
    let (_, rest) = scope_name.split_once("instrumentation.").or_else(|| scope_name.split_once("instrumentation-"))?;
    let name = rest.split(['.', '/']).next()?;
    (!name.is_empty()).then_some(name)
}

/// The request a server span describes, from the stable HTTP conventions or the older ones;
/// none when the span has no HTTP method.
pub(crate) fn request(attributes: &[KeyValue]) -> Option<RequestInfo<'_>> {
    let method = first_str(attributes, &["http.request.method", "http.method"])?;
    Some(RequestInfo {
        url: url(attributes),
        method: Some(method),
        route: find_str(attributes, "http.route"),
        status_code: find_int(attributes, "http.response.status_code")
            .or_else(|| find_int(attributes, "http.status_code")),
        user_ip: first_str(attributes, &["client.address", "http.client_ip", "net.peer.ip"]),
    })
}

/// `url.full` / `http.url`, else the URL put together from scheme, host, port, path and query.
fn url(attributes: &[KeyValue]) -> Option<Cow<'_, str>> {
    if let Some(full) = first_str(attributes, &["url.full", "http.url"]) {
        return Some(Cow::Borrowed(full));
    }
    let host = first_str(attributes, &["server.address", "http.host", "net.host.name"])?;
    let scheme = first_str(attributes, &["url.scheme", "http.scheme"]).unwrap_or("http");
    let mut url = format!("{scheme}://{host}");
    let port = find_int(attributes, "server.port").or_else(|| find_int(attributes, "net.host.port"));
    let default_port = matches!((scheme, port), ("http", Some(80)) | ("https", Some(443)));
    if let Some(port) = port.filter(|_| !default_port && !host.contains(':')) {
        url.push_str(&format!(":{port}"));
    }
    match find_str(attributes, "http.target") {
        Some(target) => url.push_str(target),
        None => {
            url.push_str(find_str(attributes, "url.path").unwrap_or("/"));
            if let Some(query) = find_str(attributes, "url.query") {
                url.push('?');
                url.push_str(query);
            }
        }
    }
    Some(Cow::Owned(url))
}
