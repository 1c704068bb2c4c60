"""The client side on its own: the example app really exports over every transport.

These run against fake_sink.FakeSink, not waggle, so when a waggle test fails the client side
is already known to work (and the driver's report is known to match what went on the wire).
"""

import json

import pytest

from fake_sink import FakeSink
from helpers import TRANSPORTS, otlp_env, parse_xray_datagrams, run_driver, transport_id, wait_for, xray_entities

pytestmark = pytest.mark.harness


@pytest.fixture
def sink():
    sink = FakeSink()
    yield sink
    sink.close()


def wire_spans(messages):
    spans = {}
    for message in messages:
        for resource_spans in message.resource_spans:
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    spans[span.span_id.hex()] = (span.trace_id.hex(), span.parent_span_id.hex() or None, span.name)
    return spans


def wire_logs(messages):
    return [
        (record.trace_id.hex(), record.span_id.hex(), record.body.string_value)
        for message in messages
        for resource_logs in message.resource_logs
        for scope_logs in resource_logs.scope_logs
        for record in scope_logs.log_records
    ]


@pytest.mark.parametrize("transport", TRANSPORTS, ids=transport_id)
def test_app_exports_over_transport(sink, transport):
    protocol, compression = transport
    env = otlp_env(protocol, compression, f"127.0.0.1:{sink.http_port}", f"127.0.0.1:{sink.grpc_port}")
    report = run_driver(env, "--requests", "2")

    assert [r["status"] for r in report["responses"]] == [200, 200]
    assert report["exports"], "the app exported nothing"
    assert all(e["result"] == "SUCCESS" for e in report["exports"]), report["exports"]

    if protocol == "grpc":
        received = sink.grpc_requests
        by_signal = {s: [r["message"] for r in received if r["method"] == s] for s in ("traces", "logs", "metrics")}
        # grpcio hides grpc-encoding from the servicer: check the exporters were set up for it.
        compressions = {e["compression"] for e in report["exporters"].values()}
        assert compressions == ({"gzip"} if compression else {"nocompression"}), compressions
        assert all(".grpc." in e["class"] for e in report["exporters"].values()), report["exporters"]
        assert not sink.http_requests
    else:
        received = sink.http_requests
        by_signal = {
            s: [r["message"] for r in received if r["path"] == f"/v1/{s}"] for s in ("traces", "logs", "metrics")
        }
        content_types = {r["headers"].get("Content-Type") or r["headers"].get("content-type") for r in received}
        expected_type = "application/json" if protocol == "http/json" else "application/x-protobuf"
        assert content_types == {expected_type}
        encodings = {r["headers"].get("Content-Encoding") for r in received}
        assert encodings == ({"gzip"} if compression else {None}), encodings
        if protocol == "http/json":
            body = json.loads(received[0]["body"])
            assert "resourceSpans" in body or "resourceLogs" in body or "resourceMetrics" in body
        assert not sink.grpc_requests

    emitted = {s["span_id"]: (s["trace_id"], s["parent_span_id"], s["name"]) for s in report["spans"]}
    assert len(emitted) == 6  # per request: requests client span, Flask server span, custom span
    assert wire_spans(by_signal["traces"]) == emitted
    emitted_logs = sorted((l["trace_id"], l["span_id"], l["body"]) for l in report["logs"])
    assert sorted(wire_logs(by_signal["logs"])) == emitted_logs
    assert by_signal["metrics"], "no metrics were exported"


@pytest.mark.parametrize("streaming", [False, True], ids=["embedded", "streamed"])
def test_app_sends_xray_datagrams(sink, streaming):
    env = otlp_env("http/protobuf", None, f"127.0.0.1:{sink.http_port}", f"127.0.0.1:{sink.grpc_port}")
    env["AWS_XRAY_DAEMON_ADDRESS"] = f"127.0.0.1:{sink.udp_port}"
    args = ["--requests", "2"] + (["--xray-streaming"] if streaming else [])
    report = run_driver(env, *args)

    sent = report["xray_datagrams"]
    wait_for(lambda: len(sink.datagrams) >= len(sent), timeout=5, what="datagrams at the sink")
    assert sorted(d.decode() for d in sink.datagrams) == sorted(sent)

    documents = parse_xray_datagrams(sent)
    assert all(header == {"format": "json", "version": 1} for header, _ in documents)
    entities = xray_entities(documents)
    names = sorted(e["name"] for e in entities)
    assert names == sorted(["backend-flask", "mock-data", "format-results"] * 2)
    streamed = [body for _, body in documents if body.get("type") == "subsegment"]
    assert len(streamed) == (4 if streaming else 0)
    assert len(documents) == (6 if streaming else 2)
