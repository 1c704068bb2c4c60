//! Rollbar's item JSON (`POST /api/1/item/`), as waggle writes it: `{"data": {…}}` with the
//! fields of the documented schema it can fill. Everything borrows from the OTLP request.

use std::borrow::Cow;

use serde::Serialize;

/// The request body: the token goes in the `X-Rollbar-Access-Token` header, not here.
#[derive(Serialize)]
pub(crate) struct Envelope<'a> {
    pub data: Data<'a>,
}

#[derive(Serialize)]
pub(crate) struct Data<'a> {
    pub environment: &'a str,
    pub body: Body<'a>,
    pub level: Level,
    /// Unix seconds.
    pub timestamp: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code_version: Option<&'a str>,
    pub platform: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub language: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub framework: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request: Option<RequestInfo<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server: Option<Server<'a>>,
    pub custom: Custom<'a>,
    pub notifier: Notifier,
    /// Made from the trace, span, type and message: Rollbar drops a second item with the
    /// same uuid, so a retried request never makes a duplicate.
    pub uuid: String,
}

/// Exactly one of `trace`, `trace_chain` or `message`.
#[derive(Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Body<'a> {
    Trace(Trace<'a>),
    /// The exception thrown first, then what caused it.
    TraceChain(Vec<Trace<'a>>),
    Message {
        body: Cow<'a, str>,
    },
}

#[derive(Serialize)]
pub(crate) struct Trace<'a> {
    /// The most recent call last.
    pub frames: Vec<Frame<'a>>,
    pub exception: Exception<'a>,
}

#[derive(Serialize)]
pub(crate) struct Frame<'a> {
    pub filename: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lineno: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<&'a str>,
}

#[derive(Serialize)]
pub(crate) struct Exception<'a> {
    pub class: &'a str,
    pub message: Cow<'a, str>,
}

/// Rollbar's levels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Level {
    Critical,
    Error,
}

#[derive(Serialize)]
pub(crate) struct RequestInfo<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub route: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_code: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_ip: Option<&'a str>,
}

#[derive(Serialize)]
pub(crate) struct Server<'a> {
    pub host: &'a str,
}

/// Where the item leads back to: its trace and span, and the service.
#[derive(Serialize)]
pub(crate) struct Custom<'a> {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub trace_id: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub span_id: String,
    #[serde(rename = "service.name", skip_serializing_if = "Option::is_none")]
    pub service_name: Option<&'a str>,
    /// `span event` or `log record`.
    pub source: &'static str,
}

#[derive(Serialize)]
pub(crate) struct Notifier {
    pub name: &'static str,
    pub version: &'static str,
}

impl Notifier {
    pub(crate) const WAGGLE: Notifier = Notifier { name: "waggle", version: env!("CARGO_PKG_VERSION") };
}
