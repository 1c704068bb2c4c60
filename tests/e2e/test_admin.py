"""The admin port: health, readiness, Prometheus metrics, status, and the query API's errors."""

import pytest

from helpers import (
    new_span_id,
    new_trace_id,
    otlp_logs_request,
    otlp_trace_request,
    parse_prometheus,
    post_otlp,
    wait_for,
)


def test_startup_logs_each_listener_and_ready(waggle):
    assert set(waggle.addresses) == {"otlp_http", "otlp_grpc", "xray_udp", "xray_tcp", "admin"}
    for listener, address in waggle.addresses.items():
        host, port = waggle.host_port(listener)
        assert host == "127.0.0.1" and port > 0, (listener, address)
    records = waggle.records()
    assert any(r.get("fields", {}).get("message") == "ready" for r in records)
    assert all({"timestamp", "level", "fields"} <= set(r) for r in records), "not tracing JSON lines"


def test_healthz_and_readyz(waggle):
    assert waggle.get("/healthz").status_code == 200
    assert waggle.get("/readyz").status_code == 200


def test_prometheus_metrics_count_what_came_in(waggle):
    trace_id = new_trace_id()
    request = otlp_trace_request(trace_id=trace_id)
    for _ in range(2):
        request.resource_spans[0].scope_spans[0].spans.add().CopyFrom(request.resource_spans[0].scope_spans[0].spans[0])
    request.resource_spans[0].scope_spans[0].spans[1].span_id = bytes.fromhex(new_span_id())
    request.resource_spans[0].scope_spans[0].spans[2].span_id = bytes.fromhex(new_span_id())
    assert post_otlp(waggle, "/v1/traces", request.SerializeToString()).status_code == 200
    assert post_otlp(waggle, "/v1/logs", otlp_logs_request().SerializeToString()).status_code == 200
    waggle.wait_for_spans(trace_id, 3)

    response = waggle.get("/metrics")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain") or "openmetrics" in response.headers["Content-Type"]
    samples = parse_prometheus(response.text)
    assert samples, response.text[:500]
    assert waggle.counter("waggle_receiver_received_items_total", receiver="otlp_http", signal="traces") == 3
    assert waggle.counter("waggle_receiver_accepted_items_total", receiver="otlp_http", signal="traces") == 3
    assert waggle.counter("waggle_receiver_received_items_total", receiver="otlp_http", signal="logs") == 1
    wait_for(
        lambda: waggle.counter("waggle_destination_sent_items_total", destination="local", signal="traces") == 3
        and waggle.counter("waggle_destination_sent_items_total", destination="local", signal="logs") == 1,
        what="the local destination's sent counters",
    )


def test_status_lists_the_local_destination(waggle):
    status = waggle.get_json("/status")
    names = [d["name"] for d in status["destinations"]]
    assert names.count("local") == 1, status
    local = next(d for d in status["destinations"] if d["name"] == "local")
    assert local["enabled"] is True
    assert isinstance(local["reason"], str)
    assert {"traces", "logs", "metrics"} <= set(local["signals"])
    assert "last_success" in local and "last_error" in local
    assert local["last_error"] is None


def test_unknown_trace_is_404(waggle):
    assert waggle.get(f"/api/traces/{new_trace_id()}").status_code == 404
    assert waggle.get("/api/traces/1-5759e988-bd862e3fe1be46a994272793").status_code == 404


@pytest.mark.parametrize(
    "trace_id",
    [
        "xyz",
        "0af7651916cd43dd8448eb211c80319",  # 31 hex
        "0af7651916cd43dd8448eb211c80319cc",  # 33 hex
        "zz" * 16,
        "1-5759e988-bd862e3fe1be46a99427279",  # X-Ray form, 23 hex
        "1-5759e98-bd862e3fe1be46a994272793",
        "2-5759e988-bd862e3fe1be46a994272793",
    ],
)
def test_malformed_trace_id_is_400(waggle, trace_id):
    response = waggle.get(f"/api/traces/{trace_id}")
    assert response.status_code == 400, (trace_id, response.status_code, response.text[:200])


def test_empty_store_answers_empty_lists(waggle):
    assert waggle.traces() == []
    assert waggle.logs() == []
    assert waggle.metrics_list() == []


def test_status_counts_what_each_destination_took(waggle):
    trace_id = new_trace_id()
    request = otlp_trace_request(trace_id=trace_id)
    for _ in range(3):
        extra = request.resource_spans[0].scope_spans[0].spans.add()
        extra.CopyFrom(request.resource_spans[0].scope_spans[0].spans[0])
        extra.span_id = bytes.fromhex(new_span_id())
    assert post_otlp(waggle, "/v1/traces", request.SerializeToString()).status_code == 200
    waggle.wait_for_spans(trace_id, 4)

    def local_items():
        status = waggle.get_json("/status")
        local = next(d for d in status["destinations"] if d["name"] == "local")
        return local["items"]

    wait_for(lambda: local_items()["traces"]["sent"] == 4, what="/status counting the 4 stored spans")
    items = local_items()
    assert items["traces"] == {"sent": 4, "failed": {}, "dropped": {}}, items
    assert {"traces", "logs", "metrics"} == set(items), items
