"""The Honeycomb lane against a loopback stand-in that decodes with the official
opentelemetry-proto package: real OTel SDK data arrives unchanged, X-Ray SDK segments arrive
as linked spans, throttling and outages are retried, a rejected key is reported and never shown.
"""

import json
import socket
import subprocess
import time
from pathlib import Path

import pytest
import requests

from helpers import (
    clean_environment,
    new_trace_id,
    otlp_env,
    otlp_trace_request,
    parse_xray_datagrams,
    post_otlp,
    run_driver,
    wait_for,
    waggle_binary,
    xray_entities,
    xray_to_otlp_trace_id,
)
from honeycomb_standin import Answer, HoneycombStandIn, attributes
from moto import MotoServer

KEY = "hcaik_01waggletestkey0000000000"
DATA = Path(__file__).resolve().parent.parent / "data"


@pytest.fixture
def standin():
    server = HoneycombStandIn(KEY)
    yield server
    server.stop()


def honeycomb_config(url, key=KEY, **extra):
    config = {
        "api_key": key,
        "endpoint": url,
        "batch_timeout": "50ms",
        "retry": {"initial_interval": "100ms", "max_interval": "1s", "jitter": 0.0},
    }
    config.update(extra)
    return {"destinations": {"honeycomb": config}}


def start(waggle_factory, url, key=KEY, **extra):
    waggle = waggle_factory(honeycomb_config(url, key, **extra))
    waggle.secrets.append(key)
    return waggle


# ---- real OpenTelemetry SDK data passes through unchanged ----------------------------------


def test_sdk_spans_arrive_unchanged(waggle_factory, standin):
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.trace import Link, Status, StatusCode

    waggle = start(waggle_factory, standin.url)
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "hc-e2e", "deployment.environment": "test"}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=waggle.http_url + "/v1/traces")))
    tracer = provider.get_tracer("home.activities", "1.2.3")
    with tracer.start_as_current_span("GET /api/activities/home") as root:
        root.set_attribute("http.response.status_code", 200)
        with tracer.start_as_current_span("home-activities-mock-data", links=[Link(root.get_span_context())]) as child:
            child.set_attribute("app.now", "2026-11-21T07:00:00+00:00")
            child.set_attribute("app.result_length", 3)
            child.set_attribute("app.ratio", 0.5)
            child.set_attribute("app.flags", [True, False])
            child.add_event("cache miss", {"key": "home"})
            child.set_status(Status(StatusCode.ERROR, "mock failure"))
    provider.force_flush()
    provider.shutdown()

    expected = encode_spans(memory.get_finished_spans())
    expected_spans = {s.span_id: s for rs in expected.resource_spans for ss in rs.scope_spans for s in ss.spans}
    wait_for(lambda: len(standin.spans()) >= 2, what="2 spans at the stand-in")
    received = {span.span_id: (resource, scope, span) for resource, scope, span in standin.spans()}
    assert set(received) == set(expected_spans)
    for span_id, expected_span in expected_spans.items():
        resource, scope, span = received[span_id]
        assert span.SerializeToString(deterministic=True) == expected_span.SerializeToString(deterministic=True)
        assert scope == "home.activities"
        assert resource["service.name"] == "hc-e2e"
        assert resource["deployment.environment"] == "test"
    request = standin.attempts("/v1/traces")[0]
    assert request.headers["x-honeycomb-team"] == KEY
    assert request.headers["content-type"] == "application/x-protobuf"
    assert request.headers["content-encoding"] == "zstd"


def test_sdk_logs_arrive_with_their_trace_context(waggle_factory, standin):
    import logging

    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
    from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
    from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider

    waggle = start(waggle_factory, standin.url, compression="gzip")
    resource = Resource.create({"service.name": "hc-logs"})
    logger_provider = LoggerProvider(resource=resource)
    logger_provider.add_log_record_processor(BatchLogRecordProcessor(OTLPLogExporter(endpoint=waggle.http_url + "/v1/logs")))
    logger = logging.getLogger("hc-e2e-logs")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    handler = LoggingHandler(level=logging.INFO, logger_provider=logger_provider)
    logger.addHandler(handler)
    tracer = TracerProvider(resource=resource).get_tracer("hc")
    try:
        with tracer.start_as_current_span("work") as span:
            logger.warning("inside the span %s", 42, extra={"app.user": "ada"})
            context = span.get_span_context()
        logger.info("outside any span")
        logger_provider.force_flush()
    finally:
        logger.removeHandler(handler)
        logger_provider.shutdown()

    wait_for(lambda: len(standin.log_records()) >= 2, what="2 log records at the stand-in")
    records = {record.body.string_value: (res, record) for res, record in standin.log_records()}
    res, inside = records["inside the span 42"]
    assert inside.trace_id == context.trace_id.to_bytes(16, "big")
    assert inside.span_id == context.span_id.to_bytes(8, "big")
    assert inside.severity_text == "WARN"
    assert attributes(inside.attributes)["app.user"] == "ada"
    assert res["service.name"] == "hc-logs"
    _, outside = records["outside any span"]
    assert outside.trace_id == b""
    assert standin.attempts("/v1/logs")[0].headers["content-encoding"] == "gzip"


def test_sdk_metrics_arrive(waggle_factory, standin):
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
    from opentelemetry.sdk.resources import Resource

    waggle = start(waggle_factory, standin.url, dataset="hc-metrics")
    reader = PeriodicExportingMetricReader(
        OTLPMetricExporter(endpoint=waggle.http_url + "/v1/metrics"), export_interval_millis=3_600_000
    )
    provider = MeterProvider(resource=Resource.create({"service.name": "hc-metrics"}), metric_readers=[reader])
    counter = provider.get_meter("hc").create_counter("app.requests", unit="1", description="requests served")
    counter.add(3, {"route": "/api/activities/home"})
    counter.add(2, {"route": "/api/activities/home"})
    provider.force_flush()
    provider.shutdown()

    found = wait_for(
        lambda: [m for _, m in standin.metrics() if m.name == "app.requests"], what="app.requests at the stand-in"
    )
    point = found[0].sum.data_points[0]
    assert point.as_int == 5
    assert attributes(point.attributes) == {"route": "/api/activities/home"}
    assert found[0].description == "requests served"
    assert standin.attempts("/v1/metrics")[0].headers["x-honeycomb-dataset"] == "hc-metrics"


# ---- X-Ray SDK segments become linked spans -------------------------------------------------


def xray_documents(prefix):
    documents = []
    for path in sorted(DATA.glob(f"{prefix}_*_xray_udp.bin")):
        header, _, body = path.read_bytes().partition(b"\n")
        documents.append((path.read_bytes(), json.loads(body)))
    return documents


def test_xray_sdk_segments_arrive_as_linked_spans(waggle_factory, standin):
    waggle = start(waggle_factory, standin.url)
    datagrams = xray_documents("run7stream")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for datagram, _ in datagrams:
            sock.sendto(datagram, waggle.udp_address)

    expected = {}
    for _, document in datagrams:
        expected[document["id"]] = document
        for sub in document.get("subsegments", []):
            expected[sub["id"]] = dict(sub, parent_id=document["id"], trace_id=document["trace_id"])
    wait_for(lambda: len(standin.spans()) >= len(expected), what=f"{len(expected)} X-Ray spans at the stand-in")
    received = {span.span_id.hex(): (resource, span) for resource, _, span in standin.spans()}
    assert set(received) == set(expected)
    segment = next(d for _, d in datagrams if d.get("type") != "subsegment")
    for span_id, document in expected.items():
        resource, span = received[span_id]
        assert span.trace_id.hex() == xray_to_otlp_trace_id(document["trace_id"])
        assert span.name == document["name"]
        assert span.parent_span_id.hex() == document.get("parent_id", ""), span_id
        assert resource["service.name"] == segment["name"]


def test_live_xray_sdk_segments_arrive_as_linked_spans(waggle_factory, standin):
    waggle = start(waggle_factory, standin.url)
    host, port = waggle.udp_address
    env = otlp_env("http/protobuf", None, waggle.addresses["otlp_http"], waggle.addresses["otlp_grpc"])
    env["AWS_XRAY_DAEMON_ADDRESS"] = f"{host}:{port}"
    report = run_driver(env, "--requests", "2", "--xray-streaming")
    entities = xray_entities(parse_xray_datagrams(report["xray_datagrams"]))
    assert any(not e["segment"] for e in entities), "the run streamed subsegments"
    wanted = {e["id"]: e for e in entities}

    def delivered():
        spans = {span.span_id.hex(): (resource, span) for resource, _, span in standin.spans()}
        return spans if set(wanted) <= set(spans) else None

    spans = wait_for(delivered, what="every X-Ray SDK (sub)segment at the stand-in")
    for span_id, entity in wanted.items():
        resource, span = spans[span_id]
        assert span.trace_id.hex() == xray_to_otlp_trace_id(entity["trace_id"])
        assert span.parent_span_id.hex() == (entity["parent_id"] or ""), entity["name"]
        assert span.name == entity["name"]
        assert resource["service.name"] == "backend-flask", entity["name"]


# ---- failures: throttling, outages, a bad key --------------------------------------------


def send_trace(waggle):
    trace_id = new_trace_id()
    response = post_otlp(waggle, "/v1/traces", otlp_trace_request(trace_id=trace_id).SerializeToString())
    assert response.status_code == 200, response.text
    return trace_id


def delivered_trace_ids(standin):
    return {span.trace_id.hex() for _, _, span in standin.spans()}


def test_429_with_retry_after_waits_before_retrying(waggle_factory, standin):
    waggle = start(waggle_factory, standin.url)
    standin.answer_next(Answer(429, {"Retry-After": "2"}, b"slow down"))
    trace_id = send_trace(waggle)
    wait_for(lambda: trace_id in delivered_trace_ids(standin), what="delivery after the 429")
    attempts = standin.attempts("/v1/traces")
    assert [a.status for a in attempts] == [429, 200]
    assert attempts[1].at - attempts[0].at >= 1.95, attempts[1].at - attempts[0].at


def test_a_burst_of_503s_is_retried_until_delivered(waggle_factory, standin):
    waggle = start(waggle_factory, standin.url)
    standin.answer_next(*[Answer(503, {}, b"unavailable")] * 3)
    trace_id = send_trace(waggle)
    wait_for(lambda: trace_id in delivered_trace_ids(standin), what="delivery after the 503s")
    assert [a.status for a in standin.attempts("/v1/traces")] == [503, 503, 503, 200]
    assert waggle.counter("waggle_destination_retries_total", destination="honeycomb") == 3
    assert waggle.counter("waggle_destination_sent_items_total", destination="honeycomb", signal="traces") == 1


def test_a_rejected_key_shows_on_status_and_is_never_printed(waggle_factory, standin):
    wrong_key = "hcaik_01wrongkeywrongkey000000"
    waggle = start(waggle_factory, standin.url, key=wrong_key)
    send_trace(waggle)

    def problem():
        honeycomb = next(d for d in waggle.get_json("/status")["destinations"] if d["name"] == "honeycomb")
        return honeycomb["problem"]

    assert wait_for(problem, what="the key problem on /status") == "Honeycomb rejected the API key (HTTP 401)"
    assert len(standin.attempts("/v1/traces")) >= 1
    # The data waits for the key to be fixed (tests/e2e/test_durability.py): nothing discarded.
    assert waggle.counter("waggle_destination_failed_items_total", destination="honeycomb") == 0
    warnings = [r for r in waggle.records_at("WARN") if "rejected the API key" in r["fields"]["message"]]
    assert warnings, "a WARN line names the problem"
    status_text = waggle.get("/status").text
    assert wrong_key not in status_text
    printed = subprocess.run(
        [str(waggle_binary()), "--config", str(waggle.config_path), "config"],
        env=clean_environment(),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert printed.returncode == 0, printed.stderr
    assert wrong_key not in printed.stdout + printed.stderr
    assert 'api_key = "<redacted>"' in printed.stdout


def test_other_lanes_keep_delivering_while_honeycomb_hangs(waggle_factory, tmp_path):
    hung = HoneycombStandIn(KEY, hang=True)
    moto = MotoServer(tmp_path)
    try:
        config = honeycomb_config(hung.url, timeout="30s")
        config["destinations"]["xray"] = {"batch_timeout": "100ms"}
        waggle = waggle_factory(config, env=moto.env())
        waggle.secrets.append(KEY)
        trace_ids = [send_trace(waggle) for _ in range(5)]
        for trace_id in trace_ids:
            waggle.wait_for_spans(trace_id, 1)
        xray_trace = "1-%08x-%s" % (int(time.time()), "c0ffee" * 4)
        document = {"trace_id": xray_trace, "id": "00000000000000a1", "name": "udp", "start_time": time.time(), "end_time": time.time()}
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.sendto(b'{"format":"json","version":1}\n' + json.dumps(document).encode(), waggle.udp_address)
        waggle.wait_for_spans(xray_to_otlp_trace_id(xray_trace), 1)
        xray_traces = [xray_trace] + [f"1-{t[:8]}-{t[8:]}" for t in trace_ids]
        in_xray = wait_for(
            lambda: (found := moto.xray_documents(xray_traces)) and len(found) == 6 and found,
            what="the X-Ray lane delivering all 6 documents to moto",
        )
        assert "00000000000000a1" in in_xray, "the X-Ray SDK segment went through untouched"
        assert len(hung.attempts("/v1/traces")) >= 1, "the Honeycomb lane did try"
        assert waggle.counter("waggle_destination_sent_items_total", destination="honeycomb") == 0
    finally:
        hung.stop()
        moto.stop()


def test_honeycomb_is_off_without_a_key(waggle):
    destinations = {d["name"]: d for d in waggle.get_json("/status")["destinations"]}
    assert destinations["honeycomb"]["enabled"] is False
    assert destinations["honeycomb"]["reason"] == "HONEYCOMB_API_KEY not set"
    assert any("honeycomb: off — HONEYCOMB_API_KEY not set" in r["fields"]["message"] for r in waggle.records())


def test_status_names_the_endpoint_when_on(waggle_factory, standin):
    waggle = start(waggle_factory, standin.url)
    destinations = {d["name"]: d for d in waggle.get_json("/status")["destinations"]}
    assert destinations["honeycomb"]["enabled"] is True
    assert destinations["honeycomb"]["reason"] == f"OTLP/HTTP to {standin.url}"
    requests.get(waggle.admin_url + "/healthz", timeout=5).raise_for_status()
