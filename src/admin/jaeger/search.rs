//! Jaeger's trace search parameters as a store [`TraceSearch`]:
//!
//! - `service` (required), `operation`: the span's service and name;
//! - `tags`: a JSON object `{"key": "value"}`, and `tag=key:value` (repeatable): span or
//!   resource attributes compared as text; `error=true` (or `otel.status_code=ERROR`) means
//!   a span whose status is error;
//! - `minDuration`, `maxDuration`: Go durations (`150ms`, `1.2s`, `1m30s`);
//! - `start`, `end`: Unix microseconds, the span's start; no bound when absent;
//! - `limit`: traces, default 100, at most 1000 (larger values are cut to it);
//! - `lookback` (sent by Jaeger UI and Grafana next to `start`/`end`) is accepted and ignored.

use crate::admin::params::{ParamError, Params, ordered, parse_go_duration, parse_micros_time, parse_tags_json};
use crate::store::TraceSearch;

/// Traces when `limit` is absent or not positive, as Jaeger's own default.
const DEFAULT_LIMIT: usize = 100;
/// Traces at most: a larger `limit` is cut to this rather than refused.
const MAX_LIMIT: usize = 1000;

pub(super) fn trace_search(params: &Params) -> Result<TraceSearch, ParamError> {
    let service = params.owned("service").ok_or(ParamError::Missing { param: "service" })?;
    let mut tags = Vec::new();
    for text in params.all("tags") {
        tags.extend(parse_tags_json("tags", text)?);
    }
    for text in params.all("tag") {
        let (key, value) = text.split_once(':').ok_or_else(|| ParamError::invalid("tag", "key:value", text))?;
        tags.push((key.to_owned(), value.to_owned()));
    }
    let mut errors_only = false;
    let mut attributes = Vec::with_capacity(tags.len());
    for (key, value) in tags {
        match (key.as_str(), value.as_str()) {
            ("error", "true") | ("otel.status_code", "ERROR") => errors_only = true,
            _ => attributes.push((key, value)),
        }
    }
    let duration = |name: &'static str| {
        params
            .get(name)
            .map(|text| {
                parse_go_duration(text)
                    .ok_or_else(|| ParamError::invalid(name, "a duration like 150ms, 1.2s or 1m30s", text))
            })
            .transpose()
    };
    let (min_duration_ns, max_duration_ns) =
        ordered(duration("minDuration")?, duration("maxDuration")?, ("minDuration", "maxDuration"))?;
    let time = |name| params.get(name).map(|text| parse_micros_time(name, text)).transpose();
    let (start_unix_nano, end_unix_nano) = ordered(time("start")?, time("end")?, ("start", "end"))?;
    Ok(TraceSearch {
        service: Some(service),
        span_name: params.owned("operation"),
        attributes,
        min_duration_ns,
        max_duration_ns,
        start_unix_nano,
        end_unix_nano,
        errors_only,
        limit: limit(params.get("limit"))?,
    })
}

fn limit(text: Option<&str>) -> Result<usize, ParamError> {
    let Some(text) = text else { return Ok(DEFAULT_LIMIT) };
    let limit = text.parse::<i64>().map_err(|_| ParamError::invalid("limit", "a whole number", text))?;
    Ok(match usize::try_from(limit) {
        Ok(0) | Err(_) => DEFAULT_LIMIT,
        Ok(limit) => limit.min(MAX_LIMIT),
    })
}
