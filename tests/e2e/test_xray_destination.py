"""The X-Ray destination against a real moto server: the real aws-xray-sdk's segments reach
X-Ray byte-for-byte through waggle, invalid documents come back unprocessed and are counted,
an outage is ridden out with retries, the daemon's telemetry goes out, and `/status` says why
the lane is off when AWS access is missing.
"""

import json
import socket
import time

import pytest

from helpers import (
    new_trace_id,
    otlp_env,
    otlp_trace_request,
    parse_xray_datagrams,
    post_otlp,
    run_driver,
    wait_for,
)
from moto import MotoServer

pytestmark = pytest.mark.timeout(120)

FAST_RETRY = {"initial_interval": "200ms", "max_interval": "1s", "max_elapsed_time": "2m", "jitter": 0.0}


@pytest.fixture
def moto(tmp_path):
    server = MotoServer(tmp_path)
    yield server
    server.stop()


def start_waggle(waggle_factory, moto, **xray):
    config = {"destinations": {"xray": {"batch_timeout": "100ms", "retry": FAST_RETRY, **xray}}}
    return waggle_factory(config, env=moto.env())


def send_datagrams(waggle, documents):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for document in documents:
            body = document if isinstance(document, bytes) else json.dumps(document).encode()
            sock.sendto(b'{"format": "json", "version": 1}\n' + body, waggle.udp_address)


def new_xray_trace_id():
    return "1-%08x-%s" % (int(time.time()), new_trace_id()[:24])


def segment(trace_id, segment_id, **fields):
    now = time.time()
    return {"trace_id": trace_id, "id": segment_id, "name": "checkout", "start_time": now - 0.1, "end_time": now, **fields}


@pytest.mark.parametrize("streaming", [False, True], ids=["embedded-subsegments", "streamed-subsegments"])
def test_sdk_segments_reach_xray_json_equal_to_what_the_sdk_sent(waggle_factory, moto, streaming):
    waggle = start_waggle(waggle_factory, moto)
    host, port = waggle.udp_address
    env = otlp_env("http/protobuf", None, waggle.addresses["otlp_http"], waggle.addresses["otlp_grpc"])
    env["AWS_XRAY_DAEMON_ADDRESS"] = f"{host}:{port}"
    report = run_driver(env, "--requests", "3", *(["--xray-streaming"] if streaming else []))
    sent = [body for _, body in parse_xray_datagrams(report["xray_datagrams"])]
    assert sent and any(d.get("subsegments") or d.get("type") == "subsegment" for d in sent)
    trace_ids = {document["trace_id"] for document in sent}

    def all_stored():
        stored = moto.xray_documents(trace_ids)
        return stored if all(d["id"] in stored for d in sent) else None

    stored = wait_for(all_stored, timeout=20, what="every SDK document in moto")
    for document in sent:
        assert stored[document["id"]] == [document], f"document {document['id']} changed or duplicated"
    # The app also exports OpenTelemetry spans, which the lane translates: more than the SDK's.
    assert waggle.counter("waggle_destination_sent_items_total", destination="xray") >= len(sent)
    assert waggle.counter("waggle_destination_failed_items_total", destination="xray") == 0
    sent_lines = [r for r in waggle.records_at("INFO") if "Successfully sent batch of" in r["fields"]["message"]]
    assert sent_lines, "one INFO line per sent batch, as the daemon logs it"


def test_invalid_documents_come_back_unprocessed_counted_and_not_retried(waggle_factory, moto):
    waggle = start_waggle(waggle_factory, moto)
    trace_id = new_xray_trace_id()
    good = segment(trace_id, "a000000000000001")
    no_name = {"trace_id": trace_id, "id": "b000000000000002", "start_time": time.time(), "end_time": time.time()}
    no_times = {"trace_id": trace_id, "id": "c000000000000003", "name": "x"}
    send_datagrams(waggle, [good, no_name, no_times])

    wait_for(
        lambda: waggle.counter("waggle_destination_failed_items_total", destination="xray", reason="unprocessed") == 2,
        what="2 unprocessed segments counted",
    )
    assert list(moto.xray_documents([trace_id])) == ["a000000000000001"]
    assert waggle.counter("waggle_destination_sent_items_total", destination="xray") == 1
    assert waggle.counter("waggle_destination_retries_total", destination="xray") == 0, "not retried"
    warnings = [r["fields"] for r in waggle.records_at("WARN") if r["fields"].get("segment_id")]
    assert {w["segment_id"] for w in warnings} <= {"b000000000000002", "c000000000000003"}
    assert warnings and all(w["error_code"] == "MissingParam" and w["trace_id"] == trace_id for w in warnings)
    batch_lines = [r for r in waggle.records_at("INFO") if "Unprocessed segments" in r["fields"]["message"]]
    assert batch_lines, "the batch line says how many were unprocessed"


def test_segments_queued_while_xray_is_down_are_delivered_when_it_returns(waggle_factory, moto):
    waggle = start_waggle(waggle_factory, moto)
    moto.stop()
    trace_id = new_xray_trace_id()
    documents = [segment(trace_id, f"d00000000000000{i}") for i in range(5)]
    send_datagrams(waggle, documents)
    wait_for(
        lambda: waggle.counter("waggle_destination_retries_total", destination="xray") >= 2,
        what="waggle retrying while X-Ray is down",
    )
    moto.start()
    stored = wait_for(
        lambda: (s := moto.xray_documents([trace_id])) and len(s) == 5 and s,
        timeout=30,
        what="the queued segments in moto after it returned",
    )
    assert sorted(stored) == sorted(d["id"] for d in documents)
    assert waggle.counter("waggle_destination_dropped_items_total", destination="xray") == 0


def test_opentelemetry_spans_reach_xray_as_documents_and_sdk_segments_are_not_duplicated(waggle_factory, moto):
    waggle = start_waggle(waggle_factory, moto)
    trace_id = new_trace_id()
    request = otlp_trace_request(service="otel-svc", trace_id=trace_id, name="GET /otel", attributes={"app.k": "v"})
    assert post_otlp(waggle, "/v1/traces", request.SerializeToString()).status_code == 200
    xray_trace = f"1-{trace_id[:8]}-{trace_id[8:]}"
    stored = wait_for(lambda: moto.xray_documents([xray_trace]), what="the translated span in moto")
    (document,) = next(iter(stored.values()))
    assert document["name"] == "otel-svc"
    assert document["metadata"]["default"]["app.k"] == "v"
    assert waggle.counter("waggle_destination_failed_items_total", destination="xray") == 0


def test_daemon_telemetry_is_sent_after_the_first_segment(waggle_factory, moto):
    moto.start_recording()
    waggle = start_waggle(waggle_factory, moto, telemetry_interval="1s")
    trace_id = new_xray_trace_id()
    send_datagrams(waggle, [segment(trace_id, "e000000000000001")])
    bodies = wait_for(lambda: moto.recorded("/TelemetryRecords"), what="a PutTelemetryRecords call")
    records = [record for body in bodies for record in body["TelemetryRecords"]]
    assert sum(r["SegmentsReceivedCount"] for r in records) >= 1
    assert "Hostname" in bodies[0]
    assert records[0]["BackendConnectionErrors"]["TimeoutCount"] == 0


def test_xray_is_off_without_a_region_and_says_why(waggle):
    xray = next(d for d in waggle.get_json("/status")["destinations"] if d["name"] == "xray")
    assert xray["enabled"] is False
    assert xray["reason"].startswith("no AWS region")
    assert any(r["fields"]["message"].startswith("xray: off — no AWS region") for r in waggle.records())


def test_xray_is_off_without_credentials_and_says_why(waggle_factory):
    waggle = waggle_factory(env={"AWS_REGION": "us-east-1"})
    xray = next(d for d in waggle.get_json("/status")["destinations"] if d["name"] == "xray")
    assert xray["enabled"] is False
    assert xray["reason"].startswith("no AWS credentials"), xray["reason"]


def test_xray_is_on_with_access_and_names_its_endpoint(waggle_factory, moto):
    waggle = start_waggle(waggle_factory, moto)
    xray = next(d for d in waggle.get_json("/status")["destinations"] if d["name"] == "xray")
    assert xray["enabled"] is True
    assert xray["reason"] == f"PutTraceSegments to {moto.url} in us-east-1"
