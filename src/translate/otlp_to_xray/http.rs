//! The `http` block and the `error` / `throttle` / `fault` flags, from the old
//! (`http.method`, `http.status_code`, …) and the new (`http.request.method`,
//! `http.response.status_code`, `url.full`, …) semantic conventions alike.

use std::borrow::Cow;

use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use serde::Serialize;

use super::attributes::{Key, SpanAttributes};

#[derive(Serialize)]
pub(super) struct Http<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request: Option<HttpRequest<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response: Option<HttpResponse>,
}

#[derive(Serialize, Default)]
pub(super) struct HttpRequest<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_ip: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub x_forwarded_for: Option<bool>,
}

#[derive(Serialize, Default)]
pub(super) struct HttpResponse {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_length: Option<i64>,
}

/// Keys that make a span an HTTP span (connection keys such as `server.address` alone do not).
const HTTP_MARKERS: [Key; 13] = [
    Key::HttpMethod,
    Key::HttpRequestMethod,
    Key::HttpStatusCode,
    Key::HttpResponseStatusCode,
    Key::HttpUrl,
    Key::UrlFull,
    Key::HttpTarget,
    Key::HttpHost,
    Key::HttpScheme,
    Key::HttpUserAgent,
    Key::UserAgentOriginal,
    Key::HttpClientIp,
    Key::HttpResponseContentLength,
];

/// The `http` block, or `None` for a span without HTTP attributes.
pub(super) fn http<'a>(kind: SpanKind, attributes: &SpanAttributes<'a>) -> Option<Http<'a>> {
    if !HTTP_MARKERS.iter().any(|&key| attributes.has(key)) {
        return None;
    }
    let (client_ip, x_forwarded_for) = client_ip(kind, attributes);
    let request = HttpRequest {
        method: attributes.first_str(&[Key::HttpMethod, Key::HttpRequestMethod]).map(|(_, method)| method),
        url: url(kind, attributes),
        user_agent: attributes.first_str(&[Key::HttpUserAgent, Key::UserAgentOriginal]).map(|(_, agent)| agent),
        client_ip,
        x_forwarded_for,
    };
    let response = HttpResponse {
        status: status_code(attributes),
        content_length: attributes
            .int(Key::HttpResponseContentLength)
            .or_else(|| attributes.int(Key::HttpResponseBodySize)),
    };
    let has_request = request.method.is_some()
        || request.url.is_some()
        || request.user_agent.is_some()
        || request.client_ip.is_some();
    let has_response = response.status.is_some() || response.content_length.is_some();
    if !has_request && !has_response {
        return None;
    }
    Some(Http { request: has_request.then_some(request), response: has_response.then_some(response) })
}

/// `http.status_code`, else `http.response.status_code`.
pub(super) fn status_code(attributes: &SpanAttributes<'_>) -> Option<i64> {
    attributes.int(Key::HttpStatusCode).or_else(|| attributes.int(Key::HttpResponseStatusCode))
}

/// X-Ray's failure flags.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Flags {
    /// A client error (4xx).
    pub error: bool,
    /// Throttled (429); also an error.
    pub throttle: bool,
    /// A server error (5xx), or a failed span without an HTTP error code.
    pub fault: bool,
}

/// 4xx → error (429 also throttle), 5xx → fault; no code in 400–599 and status ERROR → fault.
pub(super) fn flags(status_code: Option<i64>, span_failed: bool) -> Flags {
    match status_code {
        Some(429) => Flags { error: true, throttle: true, fault: false },
        Some(400..=499) => Flags { error: true, ..Flags::default() },
        Some(500..=599) => Flags { fault: true, ..Flags::default() },
        _ => Flags { fault: span_failed, ..Flags::default() },
    }
}

/// The client address and whether it came through a proxy. The peer address counts as the
/// client only on SERVER spans (on a CLIENT span it is the server's address).
fn client_ip<'a>(kind: SpanKind, attributes: &SpanAttributes<'a>) -> (Option<&'a str>, Option<bool>) {
    let forwarded = attributes.first_str(&[Key::HttpClientIp, Key::ClientAddress]).map(|(_, address)| address);
    let peer = attributes.first_str(&[Key::NetPeerIp, Key::NetworkPeerAddress]).map(|(_, address)| address);
    let client_ip = forwarded.or(if kind == SpanKind::Server { peer } else { None });
    let through_proxy = match attributes.bool(Key::XrayXForwardedFor) {
        Some(flag) => flag,
        None => matches!((forwarded, peer), (Some(client), Some(peer)) if client != peer),
    };
    (client_ip, (client_ip.is_some() && through_proxy).then_some(true))
}

/// `http.url` / `url.full`, else `scheme://host[:port]target` from the parts; `None`
/// without a host.
fn url<'a>(kind: SpanKind, attributes: &SpanAttributes<'a>) -> Option<Cow<'a, str>> {
    if let Some((_, full)) = attributes.first_str(&[Key::HttpUrl, Key::UrlFull]) {
        return Some(Cow::Borrowed(full));
    }
    let (host, port) = host_and_port(kind, attributes)?;
    let scheme = attributes.first_str(&[Key::HttpScheme, Key::UrlScheme]).map_or("http", |(_, scheme)| scheme);
    let mut url = String::with_capacity(64);
    url.push_str(scheme);
    url.push_str("://");
    url.push_str(host);
    if let Some(port) = port.filter(|&port| !is_default_port(scheme, port)) {
        url.push(':');
        url.push_str(&port.to_string());
    }
    match (attributes.str(Key::HttpTarget), attributes.str(Key::UrlPath)) {
        (Some(target), _) => url.push_str(target),
        (None, Some(path)) => {
            url.push_str(path);
            if let Some(query) = attributes.str(Key::UrlQuery) {
                url.push('?');
                url.push_str(query);
            }
        }
        (None, None) => url.push('/'),
    }
    Some(Cow::Owned(url))
}

/// The host, and the port to add (none when the host came from `http.host`, which carries
/// its own port).
fn host_and_port<'a>(kind: SpanKind, attributes: &SpanAttributes<'a>) -> Option<(&'a str, Option<i64>)> {
    let (host_keys, port_keys): (&[Key], [Key; 2]) = if kind == SpanKind::Server {
        (
            &[Key::HttpHost, Key::ServerAddress, Key::HttpServerName, Key::NetHostName, Key::HostName],
            [Key::NetHostPort, Key::ServerPort],
        )
    } else {
        (
            &[Key::HttpHost, Key::ServerAddress, Key::NetPeerName, Key::NetPeerIp, Key::NetworkPeerAddress],
            [Key::NetPeerPort, Key::ServerPort],
        )
    };
    let (key, host) = attributes.first_str(host_keys)?;
    if key == Key::HttpHost {
        return Some((host, None));
    }
    Some((host, port_keys.iter().find_map(|&key| attributes.int(key))))
}

fn is_default_port(scheme: &str, port: i64) -> bool {
    (scheme.eq_ignore_ascii_case("http") && port == 80) || (scheme.eq_ignore_ascii_case("https") && port == 443)
}
