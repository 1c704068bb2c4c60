//! OTLP → Rollbar items. Every `exception` span event, and every log record of severity
//! ERROR or above with `exception.*` attributes, becomes one item; with `log_errors`, ERROR
//! log records without an exception become message items.
//!
//! | Rollbar field | from |
//! |---|---|
//! | `body.trace` / `body.trace_chain` | `exception.type` (class), `exception.message`, frames parsed from `exception.stacktrace` by [`crate::translate::stack`] (innermost call last); chained causes make a `trace_chain`, the thrown exception first |
//! | `body.message.body` | the log record's body (message items) |
//! | `level` | `error`; `critical` for log records of severity FATAL |
//! | `timestamp` | the event's or record's time (unix seconds) |
//! | `environment` | configured, else `deployment.environment.name`, `deployment.environment`, else `production` |
//! | `code_version` | `service.version` |
//! | `server.host` | `host.name` (or `host.id`) |
//! | `language` | `telemetry.sdk.language` |
//! | `framework` | the instrumentation scope (`opentelemetry.instrumentation.flask` → `flask`) |
//! | `request` | `url`, `method`, `route`, `status_code`, `user_ip` from the span's HTTP attributes |
//! | `context` | `http.route`, else the span name |
//! | `custom` | `trace_id`, `span_id` (hex), `service.name`, `source` |
//! | `uuid` | a hash of trace id, span id, type and message ([`RollbarItem::key`]) |
//!
//! The key is also how the destination sends a span event and the log record of the same
//! exception once.

mod context;
mod item;

#[cfg(test)]
mod tests;

use std::borrow::Cow;
use std::fmt::Write;

use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs};
use opentelemetry_proto::tonic::trace::v1::ResourceSpans;

use self::context::{ResourceContext, find_str, value_text};
use self::item::{Body, Custom, Data, Envelope, Exception, Frame, Level, Notifier, Server, Trace};
use crate::translate::stack::{self, StackFormat};

/// The environment when neither the settings nor the resource name one (the Rollbar SDKs'
/// own default).
pub(crate) const DEFAULT_ENVIRONMENT: &str = "production";

/// The OpenTelemetry span event name for exceptions.
const EXCEPTION_EVENT: &str = "exception";

/// OTLP severity numbers: ERROR is 17–20, FATAL 21–24.
const SEVERITY_ERROR: i32 = 17;
const SEVERITY_FATAL: i32 = 21;

/// One item, ready to post.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RollbarItem {
    /// The item's identity (its `uuid`): the same exception reported as a span event and as
    /// a log record has the same key.
    pub key: u128,
    /// `{"data": {…}}`.
    pub body: Vec<u8>,
}

/// How items are made; from the Rollbar destination's settings.
#[derive(Debug, Clone, Default)]
pub(crate) struct RollbarTranslation {
    /// Overrides the resource's environment.
    pub environment: Option<String>,
    /// ERROR log records without an exception become message items.
    pub log_errors: bool,
}

/// The source of one exception, for the item's `custom` and its key.
struct Origin<'a> {
    trace_id: &'a [u8],
    span_id: &'a [u8],
    time_unix_nano: u64,
    source: &'static str,
    context: Option<&'a str>,
    request: Option<item::RequestInfo<'a>>,
    level: Level,
}

impl RollbarTranslation {
    /// Items for the exception events of `resource_spans`, appended to `items`.
    pub(crate) fn spans(&self, resource_spans: &[ResourceSpans], items: &mut Vec<RollbarItem>) {
        for resource_spans in resource_spans {
            let resource = resource_spans.resource.as_ref().map_or(&[][..], |r| r.attributes.as_slice());
            let shared = self.resource_context(resource);
            for scope_spans in &resource_spans.scope_spans {
                let scope_name = scope_spans.scope.as_ref().map_or("", |scope| scope.name.as_str());
                let context = shared.in_scope(scope_name);
                for span in &scope_spans.spans {
                    for event in span.events.iter().filter(|event| event.name == EXCEPTION_EVENT) {
                        let origin = Origin {
                            trace_id: &span.trace_id,
                            span_id: &span.span_id,
                            time_unix_nano: event.time_unix_nano,
                            source: "span event",
                            context: find_str(&span.attributes, "http.route").or(Some(span.name.as_str())),
                            request: context::request(&span.attributes),
                            level: Level::Error,
                        };
                        items.push(exception_item(&context, &origin, &event.attributes));
                    }
                }
            }
        }
    }

    /// Items for the ERROR (and worse) log records of `resource_logs`, appended to `items`.
    pub(crate) fn logs(&self, resource_logs: &[ResourceLogs], items: &mut Vec<RollbarItem>) {
        for resource_logs in resource_logs {
            let resource = resource_logs.resource.as_ref().map_or(&[][..], |r| r.attributes.as_slice());
            let shared = self.resource_context(resource);
            for scope_logs in &resource_logs.scope_logs {
                let scope_name = scope_logs.scope.as_ref().map_or("", |scope| scope.name.as_str());
                let context = shared.in_scope(scope_name);
                for record in &scope_logs.log_records {
                    let Some(level) = error_level(record) else { continue };
                    let origin = Origin {
                        trace_id: &record.trace_id,
                        span_id: &record.span_id,
                        time_unix_nano: if record.time_unix_nano > 0 {
                            record.time_unix_nano
                        } else {
                            record.observed_time_unix_nano
                        },
                        source: "log record",
                        context: None,
                        request: None,
                        level,
                    };
                    let has_exception = ["exception.type", "exception.message"]
                        .iter()
                        .any(|key| find_str(&record.attributes, key).is_some());
                    if has_exception {
                        items.push(exception_item(&context, &origin, &record.attributes));
                    } else if self.log_errors
                        && let Some(message) = value_text(record.body.as_ref())
                    {
                        items.push(message_item(&context, &origin, message));
                    }
                }
            }
        }
    }

    fn resource_context<'a>(&'a self, resource: &'a [KeyValue]) -> ResourceContext<'a> {
        ResourceContext::new(resource, self.environment.as_deref(), DEFAULT_ENVIRONMENT)
    }
}

/// ERROR or FATAL by number, or (with no number) by text.
fn error_level(record: &LogRecord) -> Option<Level> {
    match record.severity_number {
        n if n >= SEVERITY_FATAL => Some(Level::Critical),
        n if n >= SEVERITY_ERROR => Some(Level::Error),
        0 => match record.severity_text.to_ascii_lowercase().as_str() {
            "fatal" | "critical" => Some(Level::Critical),
            "error" => Some(Level::Error),
            _ => None,
        },
        _ => None,
    }
}

/// The item for one exception (event or log record attributes).
fn exception_item(context: &ResourceContext<'_>, origin: &Origin<'_>, attributes: &[KeyValue]) -> RollbarItem {
    let class = find_str(attributes, "exception.type").unwrap_or("Error");
    let message = find_str(attributes, "exception.message").unwrap_or_default();
    let stacktrace = find_str(attributes, "exception.stacktrace").unwrap_or_default();
    let format = StackFormat::for_language(context.language, stacktrace);
    let mut chain: Vec<Trace<'_>> = stack::parse(format, stacktrace)
        .into_iter()
        .enumerate()
        .map(|(position, parsed)| {
            let exception = if position == 0 {
                Exception { class, message: Cow::Borrowed(message) }
            } else {
                Exception {
                    class: parsed.exception_type.unwrap_or("Error"),
                    message: parsed.message.unwrap_or_default(),
                }
            };
            let frames = parsed
                .frames
                .iter()
                .rev()
                .map(|frame| Frame {
                    filename: frame.path.unwrap_or("<unknown>"),
                    lineno: frame.line,
                    method: frame.label,
                })
                .collect();
            Trace { frames, exception }
        })
        .collect();
    let body = if chain.len() > 1 {
        Body::TraceChain(chain)
    } else {
        let trace = chain
            .pop()
            .unwrap_or(Trace { frames: Vec::new(), exception: Exception { class, message: Cow::Borrowed(message) } });
        Body::Trace(trace)
    };
    let key = item_key(origin, class, message);
    finish(context, origin, body, key)
}

/// The message item for an ERROR log record without an exception.
fn message_item(context: &ResourceContext<'_>, origin: &Origin<'_>, message: Cow<'_, str>) -> RollbarItem {
    let key = item_key(origin, "", &message);
    finish(context, origin, Body::Message { body: message }, key)
}

fn finish(context: &ResourceContext<'_>, origin: &Origin<'_>, body: Body<'_>, key: u128) -> RollbarItem {
    let envelope = Envelope {
        data: Data {
            environment: context.environment,
            body,
            level: origin.level,
            timestamp: origin.time_unix_nano / 1_000_000_000,
            code_version: context.code_version,
            platform: "backend",
            language: context.language,
            framework: context.framework,
            context: origin.context,
            request: origin.request.as_ref().map(|request| item::RequestInfo {
                url: request.url.clone(),
                method: request.method,
                route: request.route,
                status_code: request.status_code,
                user_ip: request.user_ip,
            }),
            server: context.host.map(|host| Server { host }),
            custom: Custom {
                trace_id: hex(origin.trace_id),
                span_id: hex(origin.span_id),
                service_name: context.service_name,
                source: origin.source,
            },
            notifier: Notifier::WAGGLE,
            uuid: uuid_text(key),
        },
    };
    // Serializing borrowed strings and numbers into a Vec cannot fail.
    let body = serde_json::to_vec(&envelope).unwrap_or_default();
    RollbarItem { key, body }
}

/// What makes two reports the same exception: trace, span, type and message (and, without a
/// trace, the time). Quotes around the message do not count: Python's span events quote a
/// `KeyError`'s message (`'cart-7'`) where its log records do not.
fn item_key(origin: &Origin<'_>, class: &str, message: &str) -> u128 {
    let message = message.trim().trim_matches(['\'', '"']);
    let mut high = Fnv64::new(0xcbf2_9ce4_8422_2325);
    let mut low = Fnv64::new(0x6c62_272e_07bb_0142);
    for hasher in [&mut high, &mut low] {
        hasher.write(origin.trace_id);
        hasher.write(&[0xff]);
        hasher.write(origin.span_id);
        hasher.write(&[0xff]);
        if origin.trace_id.iter().all(|&b| b == 0) {
            hasher.write(&origin.time_unix_nano.to_be_bytes());
        }
        hasher.write(class.as_bytes());
        hasher.write(&[0xff]);
        hasher.write(message.as_bytes());
    }
    (u128::from(high.0) << 64) | u128::from(low.0)
}

/// FNV-1a, 64 bits: stable across builds and platforms (the key is sent as the item's uuid).
struct Fnv64(u64);

impl Fnv64 {
    fn new(offset: u64) -> Self {
        Fnv64(offset)
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 ^= u64::from(byte);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
}

/// 128 bits as a version-4-shaped UUID (`8-4-4-4-12` hex).
pub(crate) fn uuid_text(key: u128) -> String {
    let key = (key & !(0xf << 76) | (0x4 << 76)) & !(0x3 << 62) | (0x2 << 62);
    let hex = format!("{key:032x}");
    format!("{}-{}-{}-{}-{}", &hex[..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..])
}

fn hex(bytes: &[u8]) -> String {
    let mut text = String::with_capacity(bytes.len() * 2);
    if bytes.iter().any(|&b| b != 0) {
        for byte in bytes {
            let _ = write!(text, "{byte:02x}");
        }
    }
    text
}
