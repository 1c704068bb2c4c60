"""The real aws-xray-sdk (XRayMiddleware + a custom subsegment) sending to waggle's UDP port.

Two runs: whole segments with their subsegments embedded, and subsegment streaming forced
(streaming_threshold=0) so every subsegment arrives as its own datagram with `parent_id`.
Every segment/subsegment the SDK sent (recorded at its UDP emitter) must be in the store as a
span with the right trace id, span id, parent, name, annotations and metadata.
"""

import json

import pytest

from helpers import (
    WaggleFactory,
    otlp_env,
    parse_xray_datagrams,
    run_driver,
    wait_for,
    xray_entities,
    xray_to_otlp_trace_id,
)

pytestmark = pytest.mark.timeout(120)

REQUESTS = 3


class Run:
    def __init__(self, waggle, report):
        self.waggle = waggle
        self.report = report
        self.documents = parse_xray_datagrams(report["xray_datagrams"])
        self.entities = xray_entities(self.documents)
        self.traces = {}
        for entity in self.entities:
            self.traces.setdefault(entity["trace_id"], []).append(entity)

    def stored(self, xray_trace_id):
        return self.waggle.wait_for_spans(xray_trace_id, len(self.traces[xray_trace_id]))


@pytest.fixture(scope="module", params=[False, True], ids=["embedded-subsegments", "streamed-subsegments"])
def run(request, tmp_path_factory):
    streaming = request.param
    factory = WaggleFactory(tmp_path_factory.mktemp("xray-streamed" if streaming else "xray-embedded"))
    request.addfinalizer(factory.teardown)
    waggle = factory()
    host, port = waggle.udp_address
    env = otlp_env("http/protobuf", None, waggle.addresses["otlp_http"], waggle.addresses["otlp_grpc"])
    env["AWS_XRAY_DAEMON_ADDRESS"] = f"{host}:{port}"
    report = run_driver(env, "--requests", str(REQUESTS), *(["--xray-streaming"] if streaming else []))
    result = Run(waggle, report)
    streamed = [body for _, body in result.documents if body.get("type") == "subsegment"]
    # Make sure the scenario is the one we meant: 2 subsegments per request streamed or not.
    assert len(streamed) == (2 * REQUESTS if streaming else 0), report["xray_datagrams"]
    assert len(result.traces) == REQUESTS
    return result


def assert_close_ns(stored_ns, seconds, what):
    assert abs(int(stored_ns) - round(seconds * 1e9)) <= 1_000, f"{what}: stored {stored_ns}, sent {seconds}"


def test_every_segment_and_subsegment_is_stored(run):
    for xray_trace_id, entities in run.traces.items():
        stored = run.stored(xray_trace_id)
        assert sorted(stored) == sorted(e["id"] for e in entities), f"trace {xray_trace_id}"
        for entity in entities:
            span = stored[entity["id"]]
            document = entity["document"]
            where = f"{entity['name']} {entity['id']}"
            assert span["trace_id"] == xray_to_otlp_trace_id(xray_trace_id), where
            assert span["span_id"] == entity["id"], where
            assert span["parent_span_id"] == entity["parent_id"], where
            assert span["name"] == entity["name"], where
            assert_close_ns(span["start_time_unix_nano"], document["start_time"], where)
            assert_close_ns(span["end_time_unix_nano"], document["end_time"], where)
            for key, value in document.get("annotations", {}).items():
                assert key in span["attributes"], f"{where}: annotation {key} missing: {span['attributes']}"
                stored_value = span["attributes"][key]
                assert type(stored_value) is type(value) and stored_value == value, f"{where}: annotation {key}"
            for namespace, metadata in document.get("metadata", {}).items():
                key = f"aws.xray.metadata.{namespace}"
                assert isinstance(span["attributes"].get(key), str), f"{where}: {key} missing or not a JSON string"
                assert json.loads(span["attributes"][key]) == metadata, where


def test_segment_is_a_server_span_named_after_the_service(run):
    segments = [e for e in run.entities if e["segment"]]
    assert len(segments) == REQUESTS
    for entity in segments:
        span = run.stored(entity["trace_id"])[entity["id"]]
        assert entity["document"]["http"]["request"]["client_ip"] == "127.0.0.1"
        assert span["kind"] == "server"
        assert span["name"] == "backend-flask"
        assert span["resource"]["service.name"] == "backend-flask"
        assert span["service"] == "backend-flask"
        assert span["parent_span_id"] is None


def test_custom_subsegment_annotation_and_metadata(run):
    mock = [e for e in run.entities if e["name"] == "mock-data"]
    nested = [e for e in run.entities if e["name"] == "format-results"]
    assert len(mock) == len(nested) == REQUESTS
    for entity in mock:
        stored = run.stored(entity["trace_id"])
        span = stored[entity["id"]]
        segment_id = next(e["id"] for e in run.traces[entity["trace_id"]] if e["segment"])
        assert span["parent_span_id"] == segment_id
        assert span["kind"] != "server"
        assert span["attributes"]["result_length"] == 3 and type(span["attributes"]["result_length"]) is int
        metadata = json.loads(span["attributes"]["aws.xray.metadata.app"])
        assert metadata == entity["document"]["metadata"]["app"]
        assert metadata["handles"] == ["Andrew Brown", "Worf", "Garek"]
    for entity in nested:
        span = run.stored(entity["trace_id"])[entity["id"]]
        parent = next(e for e in run.traces[entity["trace_id"]] if e["name"] == "mock-data")
        assert span["parent_span_id"] == parent["id"]
        assert span["attributes"]["formatted"] is True


def test_trace_is_found_by_both_id_forms(run):
    for xray_trace_id in run.traces:
        by_xray = run.stored(xray_trace_id)
        otlp_id = xray_to_otlp_trace_id(xray_trace_id)
        body = run.waggle.trace(otlp_id)
        assert body is not None
        assert body["trace_id"] == otlp_id
        assert sorted(s["span_id"] for s in body["spans"]) == sorted(by_xray)
        assert run.waggle.get_json(f"/api/traces/{xray_trace_id}")["trace_id"] == otlp_id


def test_trace_list_and_response_header(run):
    expected = {xray_to_otlp_trace_id(t) for t in run.traces}

    def listed():
        traces = {t["trace_id"]: t for t in run.waggle.traces(service="backend-flask")}
        return traces if expected <= set(traces) else None

    traces = wait_for(listed, what="the X-Ray traces in /api/traces")
    for xray_trace_id, entities in run.traces.items():
        entry = traces[xray_to_otlp_trace_id(xray_trace_id)]
        assert entry["root_name"] == "backend-flask"
        assert entry["span_count"] == len(entities)
    # The X-Amzn-Trace-Id the app answered with names the same traces.
    roots = {r["xray_trace_header"].split(";")[0].removeprefix("Root=") for r in run.report["responses"]}
    assert roots == set(run.traces)


def test_no_datagram_was_rejected(run):
    wait_for(lambda: run.waggle.counter("waggle_receiver_accepted_items_total", receiver="xray_udp") > 0,
             what="accepted X-Ray items")
    assert run.waggle.counter("waggle_receiver_rejected_requests_total", receiver="xray_udp") == 0
    warnings = [r for r in run.waggle.records_at("WARN") if "xray" in json.dumps(r).lower()]
    assert not warnings, warnings
