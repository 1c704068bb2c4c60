"""Shutdown: SIGTERM (and SIGINT) exit 0 quickly, and what was accepted just before survives a
restart on the same data_dir.
"""

import signal
import socket
import threading

import grpc
import requests
import pytest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc

from helpers import (
    STOP_TIMEOUT,
    new_trace_id,
    new_xray_trace_id,
    otlp_env,
    otlp_logs_request,
    otlp_trace_request,
    post_otlp,
    run_driver,
    wait_for,
    xray_datagram,
    xray_segment,
    xray_to_otlp_trace_id,
)

pytestmark = pytest.mark.timeout(120)


def restart(waggle_factory, stopped):
    """A new waggle process on the same config (so the same data_dir)."""
    return waggle_factory(extra_config=None, data_dir=stopped.data_dir, name=stopped.name + "-restarted")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_idle_waggle_exits_0(waggle, sig):
    assert waggle.stop(sig, timeout=STOP_TIMEOUT) == 0, waggle.output_tail()


def test_otlp_accepted_just_before_sigterm_is_there_after_restart(waggle_factory):
    first = waggle_factory()
    http_trace, grpc_trace, log_trace = new_trace_id(), new_trace_id(), new_trace_id()

    response = post_otlp(first, "/v1/traces", otlp_trace_request(service="before-sigterm", trace_id=http_trace).SerializeToString())
    assert response.status_code == 200
    with grpc.insecure_channel(first.grpc_target) as channel:
        trace_service_pb2_grpc.TraceServiceStub(channel).Export(
            otlp_trace_request(service="before-sigterm", trace_id=grpc_trace), timeout=10
        )
    response = post_otlp(
        first, "/v1/logs",
        otlp_logs_request(service="before-sigterm", body="logged before SIGTERM", trace_id=log_trace).SerializeToString(),
    )
    assert response.status_code == 200

    # No waiting for the store: 200/OK means accepted, and accepted must not be lost.
    assert first.stop(signal.SIGTERM) == 0, first.output_tail()

    second = restart(waggle_factory, first)
    second.wait_for_spans(http_trace, 1)
    second.wait_for_spans(grpc_trace, 1)
    logs = wait_for(
        lambda: [log for log in second.logs(service="before-sigterm") if log["body"] == "logged before SIGTERM"],
        what="the log record accepted before SIGTERM",
    )
    assert len(logs) == 1 and logs[0]["trace_id"] == log_trace


def test_flask_app_telemetry_survives_sigterm_and_restart(waggle_factory):
    first = waggle_factory()
    env = otlp_env("http/protobuf", "gzip", first.addresses["otlp_http"], first.addresses["otlp_grpc"])
    report = run_driver(env, "--requests", "2")
    assert all(e["result"] == "SUCCESS" for e in report["exports"]), report["exports"]

    assert first.stop(signal.SIGTERM) == 0, first.output_tail()

    second = restart(waggle_factory, first)
    traces = {}
    for span in report["spans"]:
        traces.setdefault(span["trace_id"], set()).add(span["span_id"])
    for trace_id, span_ids in traces.items():
        assert set(second.wait_for_spans(trace_id, len(span_ids))) == span_ids
    wanted = {(log["trace_id"], log["span_id"], log["body"]) for log in report["logs"]}
    wait_for(
        lambda: wanted <= {(l["trace_id"], l["span_id"], l["body"]) for l in second.logs(service="backend-flask")},
        what="every log record after the restart",
    )


def test_xray_segment_accepted_before_sigterm_is_there_after_restart(waggle_factory):
    first = waggle_factory()
    trace_id = new_xray_trace_id()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.sendto(xray_datagram(xray_segment(name="before-sigterm", trace_id=trace_id)), first.udp_address)
    # UDP has no acknowledgement: wait until waggle counts it as accepted, then stop at once.
    wait_for(lambda: first.counter("waggle_receiver_accepted_items_total", receiver="xray_udp") >= 1,
             what="the segment to be accepted")
    assert first.stop(signal.SIGTERM) == 0, first.output_tail()

    second = restart(waggle_factory, first)
    spans = second.wait_for_spans(xray_to_otlp_trace_id(trace_id), 1)
    assert [span["name"] for span in spans.values()] == ["before-sigterm"]


def test_sigterm_under_load_exits_0_within_deadline(waggle_factory):
    """Requests in flight while SIGTERM arrives: still exit 0 within the deadline."""
    first = waggle_factory()
    stop = threading.Event()
    accepted = []

    def sender():
        session_url = first.http_url
        while not stop.is_set():
            trace_id = new_trace_id()
            try:
                response = requests.post(
                    session_url + "/v1/traces",
                    data=otlp_trace_request(service="under-load", trace_id=trace_id).SerializeToString(),
                    headers={"Content-Type": "application/x-protobuf"},
                    timeout=5,
                )
            except requests.RequestException:
                return
            if response.status_code == 200:
                accepted.append(trace_id)

    threads = [threading.Thread(target=sender) for _ in range(4)]
    for thread in threads:
        thread.start()
    wait_for(lambda: len(accepted) >= 50, what="some traffic")
    try:
        assert first.stop(signal.SIGTERM) == 0, first.output_tail()
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=10)

    second = restart(waggle_factory, first)
    missing = set(accepted)

    def all_found():
        for trace_id in list(missing):
            if second.trace(trace_id):
                missing.discard(trace_id)
        return not missing

    wait_for(all_found, what=f"every one of {len(accepted)} traces answered 200 before SIGTERM")
