"""The typical user's Flask app, instrumented with the real OpenTelemetry SDK, through waggle.

For every transport the Python SDK offers (OTLP/HTTP protobuf with and without gzip, OTLP/HTTP
JSON with and without gzip, OTLP/gRPC with and without gzip) one waggle is started, the example
app runs in a subprocess configured only through OTEL_* env, and what waggle's store answers is
compared with what the SDK says it emitted (ids, parents, names, kinds, attributes with their
types, resource, scope, times), never with constants.
"""

import json
from collections import Counter

import pytest

from helpers import (
    TRANSPORTS,
    WaggleFactory,
    otlp_env,
    run_driver,
    transport_id,
    wait_for,
)

pytestmark = pytest.mark.timeout(120)

SERVICE = "backend-flask"
HOME_REQUESTS = 3
NOTIFICATION_REQUESTS = 1
# What a user puts in OTEL_EXPORTER_OTLP_HEADERS today; waggle must never print it.
SECRET = "hcaik_01e2e0secret0do0not0log0this0value0000000000000000000"


class Run:
    def __init__(self, waggle, report, protocol, compression):
        self.waggle = waggle
        self.report = report
        self.protocol = protocol
        self.compression = compression
        self.spans = report["spans"]
        self.traces = {}
        for span in self.spans:
            self.traces.setdefault(span["trace_id"], []).append(span)

    @property
    def receiver(self):
        return "otlp_grpc" if self.protocol == "grpc" else "otlp_http"

    def spans_named(self, name):
        return [span for span in self.spans if span["name"] == name]

    def stored_trace(self, trace_id):
        return self.waggle.wait_for_spans(trace_id, len(self.traces[trace_id]))


@pytest.fixture(scope="module", params=TRANSPORTS, ids=transport_id)
def run(request, tmp_path_factory):
    protocol, compression = request.param
    factory = WaggleFactory(tmp_path_factory.mktemp("otel-" + transport_id(request.param)))
    request.addfinalizer(factory.teardown)
    waggle = factory()
    waggle.secrets.append(SECRET)
    env = otlp_env(protocol, compression, waggle.addresses["otlp_http"], waggle.addresses["otlp_grpc"], SERVICE)
    env["OTEL_EXPORTER_OTLP_HEADERS"] = f"x-honeycomb-team={SECRET}"
    report = run_driver(env, "--requests", str(HOME_REQUESTS), "--notifications", str(NOTIFICATION_REQUESTS))
    return Run(waggle, report, protocol, compression)


# ---- typed comparison: 3 == 3.0 == True in Python, not in telemetry ---------------------------


def typed(value):
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, int):
        return ("int", value)
    if isinstance(value, float):
        return ("double", value)
    if isinstance(value, str):
        return ("string", value)
    if isinstance(value, list):
        return ("array", [typed(v) for v in value])
    if isinstance(value, dict):
        return ("map", {k: typed(v) for k, v in value.items()})
    if value is None:
        return ("null", None)
    raise TypeError(value)


def assert_same_typed(stored, emitted, what):
    assert typed(stored) == typed(emitted), f"{what} differ:\n stored  {stored!r}\n emitted {emitted!r}"


def assert_span_stored_as_emitted(stored, emitted):
    where = f"span {emitted['name']!r} {emitted['span_id']}"
    for key in ("trace_id", "span_id", "parent_span_id", "name", "kind"):
        assert stored[key] == emitted[key], f"{where}: {key} stored {stored[key]!r}, emitted {emitted[key]!r}"
    assert int(stored["start_time_unix_nano"]) == emitted["start_time_unix_nano"], where
    assert int(stored["end_time_unix_nano"]) == emitted["end_time_unix_nano"], where
    expected_ms = (emitted["end_time_unix_nano"] - emitted["start_time_unix_nano"]) / 1e6
    assert abs(float(stored["duration_ms"]) - expected_ms) < 1.0, f"{where}: duration_ms {stored['duration_ms']}"
    assert_same_typed(stored["attributes"], emitted["attributes"], f"{where}: attributes")
    assert_same_typed(stored["resource"], emitted["resource"], f"{where}: resource")
    assert stored["service"] == emitted["resource"]["service.name"], where
    assert stored["scope"]["name"] == emitted["scope"]["name"], where
    assert (stored["scope"].get("version") or None) == emitted["scope"]["version"], where
    assert stored["status"]["code"] == emitted["status"]["code"], where
    assert (stored["status"].get("message") or None) == (emitted["status"]["message"] or None), where
    assert len(stored["events"]) == len(emitted["events"]), where
    assert len(stored["links"]) == len(emitted["links"]), where


# ---- the tests -------------------------------------------------------------------------------


def test_app_served_and_every_export_was_accepted(run):
    assert [r["status"] for r in run.report["responses"]] == [200] * (HOME_REQUESTS + NOTIFICATION_REQUESTS)
    signals = Counter(e["signal"] for e in run.report["exports"])
    assert signals["traces"] >= 1 and signals["logs"] >= 1 and signals["metrics"] >= 1, run.report["exports"]
    failed = [e for e in run.report["exports"] if e["result"] != "SUCCESS"]
    assert not failed, f"waggle refused exports over {run.protocol}: {failed}\n{run.report['stderr'][-3000:]}"


def test_every_span_is_stored_as_emitted(run):
    assert len(run.traces) == HOME_REQUESTS + NOTIFICATION_REQUESTS
    for trace_id, emitted_spans in run.traces.items():
        stored = run.stored_trace(trace_id)
        assert sorted(stored) == sorted(s["span_id"] for s in emitted_spans), f"trace {trace_id}"
        for emitted in emitted_spans:
            assert_span_stored_as_emitted(stored[emitted["span_id"]], emitted)


def test_request_span_and_custom_span(run):
    """The Flask request span is a server span; home-activities-mock-data is its child."""
    custom_spans = run.spans_named("home-activities-mock-data")
    assert len(custom_spans) == HOME_REQUESTS
    home_responses = [r for r in run.report["responses"] if r["path"] == "/api/activities/home"]
    for custom, response in zip(sorted(custom_spans, key=lambda s: s["start_time_unix_nano"]), home_responses):
        stored = run.stored_trace(custom["trace_id"])
        server = stored[custom["parent_span_id"]]
        assert server["kind"] == "server"
        assert server["name"] == "GET /api/activities/home"
        assert server["attributes"]["http.route"] == "/api/activities/home"
        assert server["scope"]["name"] == "opentelemetry.instrumentation.flask"
        assert server["service"] == SERVICE and server["resource"]["service.name"] == SERVICE

        mock = stored[custom["span_id"]]
        assert mock["name"] == "home-activities-mock-data"
        assert mock["kind"] == "internal"
        assert mock["trace_id"] == server["trace_id"] == custom["trace_id"]
        assert mock["parent_span_id"] == server["span_id"]
        assert mock["scope"]["name"] == "home.activities"
        assert mock["service"] == SERVICE
        now = mock["attributes"]["app.now"]
        assert isinstance(now, str) and now == custom["attributes"]["app.now"]
        length = mock["attributes"]["app.result_length"]
        assert type(length) is int and length == response["result_length"] == 3


def test_trace_list(run):
    waggle = run.waggle
    listed = {t["trace_id"]: t for t in wait_for(
        lambda: (lambda ts: ts if set(run.traces) <= {t["trace_id"] for t in ts} else None)(waggle.traces(service=SERVICE)),
        what="every trace in /api/traces?service=backend-flask",
    )}
    for trace_id, spans in run.traces.items():
        root = next(s for s in spans if s["parent_span_id"] is None)
        entry = listed[trace_id]
        assert entry["root_name"] == root["name"]
        assert entry["service"] == SERVICE
        assert entry["span_count"] == len(spans)
        assert int(entry["start_time_unix_nano"]) == min(s["start_time_unix_nano"] for s in spans)
        root_ms = (root["end_time_unix_nano"] - root["start_time_unix_nano"]) / 1e6
        assert abs(float(entry["duration_ms"]) - root_ms) < 1.0

    starts = [int(t["start_time_unix_nano"]) for t in waggle.traces(service=SERVICE)]
    assert starts == sorted(starts, reverse=True), "traces are not newest first"
    newest = waggle.traces(service=SERVICE, limit=1)
    assert len(newest) == 1 and int(newest[0]["start_time_unix_nano"]) == max(starts)
    assert not set(run.traces) & {t["trace_id"] for t in waggle.traces(service="no-such-service")}


def test_logs_carry_the_span_they_were_logged_in(run):
    emitted = run.report["logs"]
    # Per home request: the custom span's log line and the access line; per notifications: access.
    assert len(emitted) == 2 * HOME_REQUESTS + NOTIFICATION_REQUESTS
    span_ids = {s["span_id"] for s in run.spans}
    assert all(log["span_id"] in span_ids for log in emitted)

    def stored_logs():
        logs = run.waggle.logs(service=SERVICE)
        keys = {(log.get("trace_id"), log.get("span_id"), log.get("body")) for log in logs}
        if all((e["trace_id"], e["span_id"], e["body"]) in keys for e in emitted):
            return logs

    logs = wait_for(stored_logs, what="every log record in /api/logs")
    by_key = {(log["trace_id"], log["span_id"], log["body"]): log for log in logs}
    for record in emitted:
        stored = by_key[(record["trace_id"], record["span_id"], record["body"])]
        assert int(stored["time_unix_nano"]) == record["time_unix_nano"]
        assert stored["severity_number"] == record["severity_number"]
        assert stored["severity_text"] == record["severity_text"]
        assert stored["service"] == SERVICE
        assert_same_typed(stored["attributes"], record["attributes"], f"log {record['body']!r} attributes")
        assert_same_typed(stored["resource"], record["resource"], f"log {record['body']!r} resource")

    custom = {s["span_id"] for s in run.spans_named("home-activities-mock-data")}
    in_custom = [log for log in logs if log["span_id"] in custom]
    assert len(in_custom) == HOME_REQUESTS and all(log["body"] == "home activities: 3 results" for log in in_custom)


def point_value(point):
    """A counter's data point value: an integer (the SDK sends as_int for an int counter)."""
    value = point["value"]
    assert type(value) is int, f"counter value is not an integer: {point}"
    return value


def test_request_counter_reaches_metrics(run):
    def counter():
        metrics = [m for m in run.waggle.metrics_list(name="app.activities.requests") if m["name"] == "app.activities.requests"]
        return metrics or None

    metrics = wait_for(counter, what="app.activities.requests in /api/metrics")
    for metric in metrics:
        assert metric["unit"] == "{request}"
        assert metric["description"] == "Activity feed requests served"
        assert metric["service"] == SERVICE
        assert metric["type"].lower() == "sum"
    totals = {}
    for metric in metrics:
        for point in metric["data_points"]:
            feed = point["attributes"]["app.feed"]
            totals[feed] = max(totals.get(feed, 0), point_value(point))
    assert totals == {"home": HOME_REQUESTS, "notifications": NOTIFICATION_REQUESTS}


def test_receiver_and_local_destination_counters(run):
    waggle = run.waggle
    spans, logs = len(run.spans), len(run.report["logs"])
    wait_for(
        lambda: waggle.counter("waggle_destination_sent_items_total", destination="local", signal="traces") >= spans
        and waggle.counter("waggle_destination_sent_items_total", destination="local", signal="logs") >= logs,
        what="the local destination to count every span and log record",
    )
    for signal, count in (("traces", spans), ("logs", logs)):
        labels = {"receiver": run.receiver, "signal": signal}
        assert waggle.counter("waggle_receiver_received_items_total", **labels) == count, labels
        assert waggle.counter("waggle_receiver_accepted_items_total", **labels) == count, labels
        assert waggle.counter("waggle_receiver_rejected_requests_total", receiver=run.receiver) == 0
        assert waggle.counter("waggle_destination_sent_items_total", destination="local", signal=signal) == count


def test_status_shows_local_destination_flowing(run):
    status = run.waggle.get_json("/status")
    local = [d for d in status["destinations"] if d["name"] == "local"]
    assert len(local) == 1, status
    assert local[0]["enabled"] is True
    assert {"traces", "logs", "metrics"} <= set(local[0]["signals"])

    def local_last_success():
        destinations = run.waggle.get_json("/status")["destinations"]
        return next(d for d in destinations if d["name"] == "local")["last_success"]

    assert wait_for(local_last_success, what="the local destination's last_success")


def test_client_secret_header_is_never_logged(run):
    text = "\n".join(run.waggle.lines + run.waggle.stderr_lines)
    assert SECRET not in text
    assert json.dumps(SECRET)[1:-1] not in text
