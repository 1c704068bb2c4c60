//! `waggle status`: what a running waggle's `/status` says, for people — each destination on
//! or off and why, items sent, refused and dropped per signal since start and in the last
//! minute, its backlog, last success and last error — and what each receiver accepted,
//! refused and rejected (by reason, `/status`'s `receivers`).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

use crate::telemetry::receivers::ReceiverReport;

/// How long each request waits for an answer.
const TIMEOUT: Duration = Duration::from_secs(5);

/// The most of an answer read.
const MAX_ANSWER_BYTES: usize = 8 * 1024 * 1024;

/// The admin base URL for an admin endpoint; a wildcard bind address is reached on loopback.
pub fn admin_url(admin_endpoint: &str) -> String {
    crate::health::healthz_url(admin_endpoint).trim_end_matches("/healthz").to_string()
}

/// Fetches `/status` (JSON) and renders it.
pub async fn fetch_and_render(base: &str) -> Result<String, String> {
    let status = get(&format!("{base}/status")).await?;
    let status: Value = serde_json::from_slice(&status).map_err(|e| format!("{base}/status: not JSON: {e}"))?;
    Ok(render(&status))
}

/// `/status` as it is, pretty-printed.
pub async fn fetch_json(base: &str) -> Result<String, String> {
    let status = get(&format!("{base}/status")).await?;
    let status: Value = serde_json::from_slice(&status).map_err(|e| format!("{base}/status: not JSON: {e}"))?;
    Ok(format!("{}\n", serde_json::to_string_pretty(&status).unwrap_or_default()))
}

async fn get(url: &str) -> Result<Bytes, String> {
    let uri: hyper::Uri = url.parse().map_err(|e| format!("bad URL {url}: {e}"))?;
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let response = tokio::time::timeout(TIMEOUT, client.get(uri))
        .await
        .map_err(|_| format!("{url}: no answer within {TIMEOUT:?}"))?
        .map_err(|e| format!("{url}: {} (is waggle running? see --url)", crate::telemetry::error_text::chain(&e)))?;
    if !response.status().is_success() {
        return Err(format!("{url}: {}", response.status()));
    }
    let body = tokio::time::timeout(TIMEOUT, Limited::new(response.into_body(), MAX_ANSWER_BYTES).collect())
        .await
        .map_err(|_| format!("{url}: the answer did not finish within {TIMEOUT:?}"))?
        .map_err(|e| format!("{url}: {e}"))?;
    Ok(body.to_bytes())
}

/// The report for people.
pub fn render(status: &Value) -> String {
    let mut out = String::new();
    let ready = if status["ready"].as_bool() == Some(true) { "ready" } else { "not ready" };
    let _ = writeln!(
        out,
        "waggle {} — {ready}, up {}",
        text(&status["version"]),
        humantime::format_duration(Duration::from_secs(status["uptime_seconds"].as_u64().unwrap_or(0)))
    );
    out.push_str("\ndestinations:\n");
    for destination in status["destinations"].as_array().into_iter().flatten() {
        render_destination(&mut out, destination);
    }
    out.push_str("\nreceivers (since start):\n");
    let receivers: ReceiverReport = serde_json::from_value(status["receivers"].clone()).unwrap_or_default();
    if receivers.is_empty() {
        out.push_str("  nothing received yet\n");
    }
    let figures = receivers.iter().flat_map(|(receiver, signals)| signals.iter().map(move |(s, f)| (receiver, s, f)));
    for (receiver, signal, figures) in figures {
        let _ = write!(out, "  {receiver} {signal}: accepted {}", figures.accepted);
        for (what, by_reason) in [("refused", &figures.refused), ("rejected requests", &figures.rejected_requests)] {
            if !by_reason.is_empty() {
                let _ = write!(out, "; {what} {}", reasons_with_total(by_reason));
            }
        }
        out.push('\n');
    }
    out
}

fn render_destination(out: &mut String, destination: &Value) {
    let on = if destination["enabled"].as_bool() == Some(true) { "on" } else { "off" };
    let _ = writeln!(out, "  {}: {on} — {}", text(&destination["name"]), text(&destination["reason"]));
    if let Some(problem) = destination["problem"].as_str() {
        let _ = writeln!(out, "    PROBLEM: {problem}");
    }
    let Some(items) = destination["items"].as_object() else { return };
    for (signal, totals) in items {
        let recent = &destination["last_minute"][signal];
        let _ = writeln!(
            out,
            "    {signal}: sent {}, failed {}, dropped {}; last minute: sent {}, failed {}, dropped {}",
            totals["sent"].as_u64().unwrap_or(0),
            by_reason_total(&totals["failed"]),
            by_reason_total(&totals["dropped"]),
            recent["sent"].as_u64().unwrap_or(0),
            recent["failed"].as_u64().unwrap_or(0),
            recent["dropped"].as_u64().unwrap_or(0),
        );
    }
    let backlog = &destination["backlog"];
    let bytes = |value: &Value| bytesize::ByteSize(value.as_u64().unwrap_or(0)).to_string();
    let _ = writeln!(
        out,
        "    backlog: {} queued, {} spooled on disk",
        bytes(&backlog["queue_bytes"]),
        bytes(&backlog["spool_bytes"])
    );
    let last_error = match (destination["last_error"].as_str(), destination["last_error_at"].as_str()) {
        (Some(error), Some(at)) => format!("{at} {error}"),
        _ => "none".to_string(),
    };
    let _ = writeln!(
        out,
        "    last success: {}; last error: {last_error}",
        destination["last_success"].as_str().unwrap_or("none")
    );
}

/// `12 (queue_full 10, shutdown 2)`, or `0`.
fn by_reason_total(by_reason: &Value) -> String {
    let Some(map) = by_reason.as_object() else { return "0".to_string() };
    let reasons: BTreeMap<String, u64> = map.iter().map(|(k, v)| (k.clone(), v.as_u64().unwrap_or(0))).collect();
    if reasons.is_empty() { "0".to_string() } else { reasons_with_total(&reasons) }
}

fn reasons_with_total(reasons: &BTreeMap<String, u64>) -> String {
    format!(
        "{} ({})",
        reasons.values().sum::<u64>(),
        reasons.iter().map(|(r, n)| format!("{r} {n}")).collect::<Vec<_>>().join(", ")
    )
}

fn text(value: &Value) -> String {
    value.as_str().map_or_else(|| value.to_string(), str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_destination_shows_totals_last_minute_backlog_and_last_outcomes() {
        let status = serde_json::json!({
            "version": "0.1.0", "ready": true, "uptime_seconds": 65,
            "receivers": {"otlp_http": {"traces": {"accepted": 12, "refused": {"queue_full": 3}, "rejected_requests": {"bad_request": 1}}}},
            "destinations": [
                {"name": "honeycomb", "enabled": true, "reason": "OTLP/HTTP to x", "signals": ["traces"],
                 "last_success": "2026-12-02T04:00:00.000Z", "last_error_at": null, "last_error": null, "problem": null,
                 "items": {"traces": {"sent": 40, "failed": {"partial_success": 2}, "dropped": {}}},
                 "last_minute": {"traces": {"sent": 4, "failed": 0, "dropped": 0}},
                 "backlog": {"queue_bytes": 2048, "spool_bytes": 0}},
                {"name": "xray", "enabled": false, "reason": "no AWS region", "signals": ["traces"]}
            ]
        });
        let text = render(&status);
        assert!(text.starts_with("waggle 0.1.0 — ready, up 1m 5s\n"), "{text}");
        assert!(text.contains("  honeycomb: on — OTLP/HTTP to x\n    traces: sent 40, failed 2 (partial_success 2), dropped 0; last minute: sent 4, failed 0, dropped 0\n    backlog: 2.0 KiB queued, 0 B spooled on disk\n    last success: 2026-12-02T04:00:00.000Z; last error: none\n"), "{text}");
        assert!(text.contains("  xray: off — no AWS region\n"), "{text}");
        assert!(
            text.contains(
                "  otlp_http traces: accepted 12; refused 3 (queue_full 3); rejected requests 1 (bad_request 1)\n"
            ),
            "{text}"
        );
    }
}
