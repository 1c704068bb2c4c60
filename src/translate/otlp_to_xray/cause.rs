//! `cause`: the span's `exception` events as X-Ray exceptions, or one exception for a
//! failed span that recorded none.

use std::borrow::Cow;

use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::trace::v1::span::{Event, SpanKind};
use serde::Serialize;

use super::attributes::{as_bool, as_int, find, find_str};
use super::ids::push_hex;
use crate::translate::stack::{Frame, Parsed, StackFormat, parse};

/// The OpenTelemetry span event name for exceptions.
pub(super) const EXCEPTION_EVENT: &str = "exception";

#[derive(Serialize)]
pub(super) struct Cause<'a> {
    pub exceptions: Vec<Exception<'a>>,
}

#[derive(Serialize)]
pub(super) struct Exception<'a> {
    pub id: Cow<'a, str>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub exception_type: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<Cow<'a, str>>,
    /// Caused by a downstream service's error.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub remote: bool,
    /// Stack frames left out.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub truncated: Option<u64>,
    /// Exceptions left out between this one and its cause.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<u64>,
    /// The id of the exception that caused this one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cause: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub stack: Vec<Frame<'a>>,
}

/// What the span says about its failure.
pub(super) struct Failure<'a> {
    pub kind: SpanKind,
    /// `telemetry.sdk.language` of the resource.
    pub language: Option<&'a str>,
    /// Status ERROR.
    pub failed: bool,
    pub status_message: &'a str,
    /// `http.status_text`, the message when the status has none.
    pub status_text: Option<&'a str>,
}

/// The `cause`, or `None` when the span recorded no exception and did not fail with a message.
pub(super) fn cause<'a>(events: &'a [Event], failure: &Failure<'a>) -> Option<Cause<'a>> {
    let remote = matches!(failure.kind, SpanKind::Client | SpanKind::Producer);
    let mut exceptions = Vec::new();
    for event in events.iter().filter(|event| event.name == EXCEPTION_EVENT) {
        push_event_exceptions(&event.attributes, remote, failure.language, &mut exceptions);
    }
    if exceptions.is_empty() && failure.failed {
        let message = Some(failure.status_message).filter(|message| !message.is_empty()).or(failure.status_text)?;
        exceptions.push(Exception::new(random_id(), None, Some(Cow::Borrowed(message)), false));
    }
    (!exceptions.is_empty()).then_some(Cause { exceptions })
}

impl<'a> Exception<'a> {
    fn new(id: Cow<'a, str>, exception_type: Option<&'a str>, message: Option<Cow<'a, str>>, remote: bool) -> Self {
        Exception {
            id,
            exception_type,
            message,
            remote,
            truncated: None,
            skipped: None,
            cause: None,
            stack: Vec::new(),
        }
    }
}

/// One `exception` event → the thrown exception and the causes found in its stack trace.
/// Events that came from X-Ray (`aws.xray.exception.*`) keep their id, flags and cause link,
/// and their stack is read in the X-Ray → OTLP rendering.
fn push_event_exceptions<'a>(
    attributes: &'a [KeyValue],
    remote: bool,
    language: Option<&str>,
    exceptions: &mut Vec<Exception<'a>>,
) {
    let xray_id = find_str(attributes, "aws.xray.exception.id");
    let stacktrace = find_str(attributes, "exception.stacktrace").unwrap_or_default();
    let format = match xray_id {
        Some(_) => StackFormat::XrayRendering,
        None => StackFormat::for_language(language, stacktrace),
    };
    let remote = find(attributes, "aws.xray.exception.remote").and_then(as_bool).unwrap_or(remote);
    let count = |key| find(attributes, key).and_then(as_int).and_then(|count| u64::try_from(count).ok());
    let mut chain = parse(format, stacktrace).into_iter();
    let top = chain.next().unwrap_or_default();
    let mut thrown = Exception::new(
        xray_id.map_or_else(random_id, Cow::Borrowed),
        find_str(attributes, "exception.type"),
        find_str(attributes, "exception.message").map(Cow::Borrowed),
        remote,
    );
    thrown.cause = find_str(attributes, "aws.xray.exception.cause").map(Cow::Borrowed);
    thrown.skipped = count("aws.xray.exception.skipped");
    set_stack(&mut thrown, top, count("aws.xray.exception.truncated").unwrap_or(0));
    exceptions.push(thrown);
    for mut parsed in chain {
        let message = parsed.message.take();
        let mut caused_by = Exception::new(random_id(), parsed.exception_type, message, remote);
        set_stack(&mut caused_by, parsed, 0);
        if let Some(previous) = exceptions.last_mut() {
            previous.cause = Some(caused_by.id.clone());
        }
        exceptions.push(caused_by);
    }
}

fn set_stack<'a>(exception: &mut Exception<'a>, parsed: Parsed<'a>, already_truncated: u64) {
    let truncated = already_truncated + parsed.dropped_frames;
    exception.truncated = (truncated > 0).then_some(truncated);
    exception.stack = parsed.frames;
}

/// A new exception id: 16 random hex digits.
fn random_id<'a>() -> Cow<'a, str> {
    let mut id = String::with_capacity(16);
    push_hex(&mut id, &rand::random::<u64>().to_be_bytes());
    Cow::Owned(id)
}
