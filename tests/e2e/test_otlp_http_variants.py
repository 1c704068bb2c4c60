"""OTLP/HTTP bodies the Python SDK does not send but other real clients do.

Node's @opentelemetry/exporter-trace-otlp-http posts OTLP/JSON with chunked transfer encoding
(no Content-Length) and int64 fields as JSON numbers instead of strings.
"""

import json
import time

import requests

from helpers import new_span_id, new_trace_id


def node_style_body(trace_id, span_id, now):
    return {
        "resourceSpans": [
            {
                "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "node-frontend"}}]},
                "scopeSpans": [
                    {
                        "scope": {"name": "@opentelemetry/instrumentation-fetch", "version": "0.57.0"},
                        "spans": [
                            {
                                "traceId": trace_id,
                                "spanId": span_id,
                                "name": "HTTP GET",
                                "kind": 3,
                                "startTimeUnixNano": now - 2_000_000,  # numbers, not strings
                                "endTimeUnixNano": now,
                                "attributes": [
                                    {"key": "http.status_code", "value": {"intValue": 200}},
                                    {"key": "http.url", "value": {"stringValue": "http://localhost:4567/api/activities/home"}},
                                    {"key": "app.ratio", "value": {"doubleValue": 0.5}},
                                    {"key": "app.cached", "value": {"boolValue": False}},
                                ],
                                "status": {"code": 0},
                            }
                        ],
                    }
                ],
            }
        ]
    }


def test_chunked_json_with_numeric_int64_is_accepted(waggle):
    trace_id, span_id, now = new_trace_id(), new_span_id(), time.time_ns()
    body = json.dumps(node_style_body(trace_id, span_id, now)).encode()

    def chunks():  # a generator body makes requests use Transfer-Encoding: chunked
        for start in range(0, len(body), 97):
            yield body[start : start + 97]

    response = requests.post(
        waggle.http_url + "/v1/traces", data=chunks(), headers={"Content-Type": "application/json"}, timeout=10
    )
    assert response.request.headers.get("Transfer-Encoding") == "chunked"
    assert response.status_code == 200, (response.status_code, response.content[:300])
    assert response.headers.get("Content-Type", "").split(";")[0] == "application/json"

    (span,) = waggle.wait_for_spans(trace_id, 1).values()
    assert span["span_id"] == span_id
    assert span["kind"] == "client"
    assert span["service"] == "node-frontend"
    assert int(span["start_time_unix_nano"]) == now - 2_000_000
    assert int(span["end_time_unix_nano"]) == now
    attributes = span["attributes"]
    assert attributes["http.status_code"] == 200 and type(attributes["http.status_code"]) is int
    assert attributes["app.ratio"] == 0.5 and type(attributes["app.ratio"]) is float
    assert attributes["app.cached"] is False
    assert attributes["http.url"] == "http://localhost:4567/api/activities/home"
