"""OTLP/HTTP bad input gets the documented answer, changes nothing, and waggle keeps serving.

Documented answers: non-POST 405; unknown path 404; Content-Type other than
application/x-protobuf or application/json 415; undecodable body 400 with a google.rpc.Status
in the request's encoding; JSON ids of the wrong length 400; body larger than
receivers.otlp_http.max_body_size after decompression 413 (memory stays bounded); empty body
200; the response's Content-Type is the request's.

After every bad request a good one must still succeed and land, and the store must hold
nothing but that good one.
"""

import json
import zlib

import zstandard

import pytest
import requests
from google.rpc import status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from helpers import (
    assert_store_unchanged_but_for,
    new_span_id,
    new_trace_id,
    otlp_json_trace_body,
    otlp_trace_request,
    post_otlp,
    send_sentinel_trace,
    wait_for,
)

MAX_BODY = 1 << 20  # max_body_size = "1MiB" below
PROTOBUF = "application/x-protobuf"
JSON = "application/json"


@pytest.fixture
def waggle(waggle_factory):
    return waggle_factory({"receivers": {"otlp_http": {"max_body_size": "1MiB"}}})


def rejected(waggle):
    return waggle.counter("waggle_receiver_rejected_requests_total", receiver="otlp_http")


class Counted:
    """Where the rejection counter and the log stood before a bad request."""

    def __init__(self, waggle):
        self.rejected = rejected(waggle)
        self.log_position = len(waggle.lines)


def assert_nothing_stored_and_still_serving(waggle, before, counted=None):
    sentinel = send_sentinel_trace(waggle)
    assert_store_unchanged_but_for(waggle, before, [sentinel])
    if counted is not None:
        # A refused request is counted (receiver="otlp_http", signal, reason) and logged at WARN.
        wait_for(lambda: rejected(waggle) == counted.rejected + 1,
                 what="waggle_receiver_rejected_requests_total{receiver=otlp_http} to count the refusal")
        wait_for(lambda: waggle.records_at("WARN", since=counted.log_position), timeout=5,
                 what="a WARN line about the refused request")


def valid_body():
    return otlp_trace_request(service="must-not-be-stored").SerializeToString()


def assert_status_body(response, content_type):
    """A google.rpc.Status in the request's encoding, saying what was wrong."""
    assert response.headers.get("Content-Type", "").split(";")[0] == content_type, response.headers
    if content_type == PROTOBUF:
        status = status_pb2.Status.FromString(response.content)
        code, message = status.code, status.message
    else:
        status = response.json()
        assert isinstance(status, dict), status
        code, message = status.get("code"), status.get("message")
        assert isinstance(code, int), status
    assert code != 0, f"status code is OK in an error answer: {response.content!r}"
    assert isinstance(message, str) and message, f"no message in the status: {response.content!r}"


# ---- method / path / content type ------------------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH"])
def test_non_post_is_405(waggle, method):
    before = waggle.snapshot()
    response = requests.request(
        method, waggle.http_url + "/v1/traces", data=valid_body(), headers={"Content-Type": PROTOBUF}, timeout=10
    )
    assert response.status_code == 405, (response.status_code, response.text[:300])
    assert response.headers.get("Allow") == "POST", response.headers
    assert_nothing_stored_and_still_serving(waggle, before)


@pytest.mark.parametrize("path", ["/v1/trace", "/v2/traces", "/", "/v1/traces/extra", "/v1/spans"])
def test_unknown_path_is_404(waggle, path):
    before = waggle.snapshot()
    response = post_otlp(waggle, path, valid_body())
    assert response.status_code == 404, (response.status_code, response.text[:300])
    assert_nothing_stored_and_still_serving(waggle, before)


@pytest.mark.parametrize("content_type", ["text/plain", "application/xml", "application/grpc", "application/octet-stream", None])
def test_unsupported_content_type_is_415(waggle, content_type):
    before = waggle.snapshot()
    counted = Counted(waggle)
    response = post_otlp(waggle, "/v1/traces", valid_body(), content_type=content_type)
    assert response.status_code == 415, (response.status_code, response.text[:300])
    assert_nothing_stored_and_still_serving(waggle, before, counted)


# ---- undecodable bodies ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        b"\x0a\x10short",  # field 1, length 16, only 5 bytes follow
        b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01",  # invalid varint tag
        b'{"resourceSpans": []}',  # JSON sent as protobuf
    ],
    ids=["truncated", "bad-varint", "json-as-protobuf"],
)
def test_undecodable_protobuf_is_400_with_protobuf_status(waggle, body):
    before = waggle.snapshot()
    counted = Counted(waggle)
    response = post_otlp(waggle, "/v1/traces", body, PROTOBUF)
    assert response.status_code == 400, (response.status_code, response.content[:300])
    assert_status_body(response, PROTOBUF)
    assert_nothing_stored_and_still_serving(waggle, before, counted)


@pytest.mark.parametrize(
    "body",
    [
        b'{"resourceSpans": [',
        b"not json at all",
        b'{"resourceSpans": "not a list"}',
        b"[1, 2, 3]",
        b"\x0a\x02\x0a\x00",  # protobuf sent as JSON
    ],
    ids=["truncated", "not-json", "wrong-type", "array", "protobuf-as-json"],
)
def test_undecodable_json_is_400_with_json_status(waggle, body):
    before = waggle.snapshot()
    counted = Counted(waggle)
    response = post_otlp(waggle, "/v1/traces", body, JSON)
    assert response.status_code == 400, (response.status_code, response.content[:300])
    assert_status_body(response, JSON)
    assert_nothing_stored_and_still_serving(waggle, before, counted)


@pytest.mark.parametrize(
    "trace_id, span_id",
    [
        ("0af7651916cd43dd8448eb211c80319", new_span_id()),  # 31 hex digits
        ("0af7651916cd43dd8448eb211c80319c00", new_span_id()),  # 34
        ("0af7651916cd43dd", new_span_id()),  # a span id's length
        ("", new_span_id()),  # OTLP forbids an empty trace id
        (new_trace_id(), "b7ad6b7169203"),  # span id too short
        (new_trace_id(), "b7ad6b7169203331ff"),  # span id too long
        ("zz" * 16, new_span_id()),  # right length, not hex
    ],
    ids=["trace-31", "trace-34", "trace-16", "trace-empty", "span-13", "span-18", "trace-not-hex"],
)
def test_json_with_ids_of_wrong_length_is_400(waggle, trace_id, span_id):
    before = waggle.snapshot()
    counted = Counted(waggle)
    body = json.dumps(otlp_json_trace_body(trace_id, span_id, service="must-not-be-stored")).encode()
    response = post_otlp(waggle, "/v1/traces", body, JSON)
    assert response.status_code == 400, (response.status_code, response.content[:300])
    assert_status_body(response, JSON)
    assert_nothing_stored_and_still_serving(waggle, before, counted)


@pytest.mark.parametrize("content_type", [PROTOBUF, JSON])
def test_invalid_gzip_is_400(waggle, content_type):
    before = waggle.snapshot()
    counted = Counted(waggle)
    response = post_otlp(waggle, "/v1/traces", b"\x1f\x8b\x08\x00garbage-not-deflate", content_type,
                         headers={"Content-Encoding": "gzip"})
    assert response.status_code == 400, (response.status_code, response.content[:300])
    assert_status_body(response, content_type)
    assert_nothing_stored_and_still_serving(waggle, before, counted)


# ---- size limits -----------------------------------------------------------------------------


def big_valid_request(size):
    """A valid one-span request whose serialized size is just over `size`."""
    request = otlp_trace_request(service="must-not-be-stored", attributes={"padding": "x" * size})
    body = request.SerializeToString()
    assert len(body) > size
    return body


def gzip_bytes(chunks):
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    return b"".join(compressor.compress(chunk) for chunk in chunks) + compressor.flush()


def varint(n):
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def gzip_bomb(expanded_size):
    """A small gzip body that expands to a well-formed-looking request of `expanded_size`.

    ExportTraceServiceRequest{resource_spans{scope_spans{spans{name: "aaaa…"}}}}: the size
    limit, not the decoder, has to be what stops it.
    """
    name_length = expanded_size
    span = b"\x2a" + varint(name_length)  # Span.name = 5
    span_length = len(span) + name_length
    scope_spans = b"\x12" + varint(span_length)  # ScopeSpans.spans = 2
    scope_length = len(scope_spans) + span_length
    resource_spans = b"\x12" + varint(scope_length)  # ResourceSpans.scope_spans = 2
    resource_length = len(resource_spans) + scope_length
    request = b"\x0a" + varint(resource_length)  # ExportTraceServiceRequest.resource_spans = 1
    prefix = request + resource_spans + scope_spans + span
    chunk = b"a" * (1 << 20)

    def chunks():
        yield prefix
        for _ in range(name_length // len(chunk)):
            yield chunk
        yield b"a" * (name_length % len(chunk))

    return gzip_bytes(chunks())


def test_body_over_max_size_is_413(waggle):
    before = waggle.snapshot()
    counted = Counted(waggle)
    response = post_otlp(waggle, "/v1/traces", big_valid_request(2 * MAX_BODY), PROTOBUF)
    assert response.status_code == 413, (response.status_code, response.content[:300])
    assert_nothing_stored_and_still_serving(waggle, before, counted)


@pytest.mark.parametrize("content_type", [PROTOBUF, JSON])
def test_gzip_bomb_is_413_and_memory_stays_bounded(waggle, content_type):
    expanded = 256 * MAX_BODY
    bomb = gzip_bomb(expanded)
    assert len(bomb) < MAX_BODY // 2, "the bomb itself must be under the limit"
    before = waggle.snapshot()
    counted = Counted(waggle)
    memory_before = waggle.memory()
    response = post_otlp(waggle, "/v1/traces", bomb, content_type, headers={"Content-Encoding": "gzip"})
    memory_after = waggle.memory()
    assert response.status_code == 413, (response.status_code, response.content[:300])
    grown_kib = memory_after["VmHWM"] - memory_before["VmHWM"]
    # It expands to 256 MiB; reading it up to the 1 MiB limit must not cost anything near that.
    assert grown_kib < 48 * 1024, f"peak RSS grew by {grown_kib} KiB on a gzip bomb: {memory_before} -> {memory_after}"
    assert memory_after["VmRSS"] - memory_before["VmRSS"] < 48 * 1024, (memory_before, memory_after)
    assert_nothing_stored_and_still_serving(waggle, before, counted)


def test_gzip_body_expanding_just_past_the_limit_is_413(waggle):
    body = big_valid_request(MAX_BODY + 1024)
    compressed = gzip_bytes([body])
    assert len(compressed) < MAX_BODY // 10
    before = waggle.snapshot()
    counted = Counted(waggle)
    response = post_otlp(waggle, "/v1/traces", compressed, PROTOBUF, headers={"Content-Encoding": "gzip"})
    assert response.status_code == 413, (response.status_code, response.content[:300])
    assert_nothing_stored_and_still_serving(waggle, before, counted)


def test_gzip_body_under_the_limit_is_accepted(waggle):
    trace_id = new_trace_id()
    request = otlp_trace_request(service="under-limit", trace_id=trace_id, attributes={"padding": "x" * (MAX_BODY - 4096)})
    body = request.SerializeToString()
    assert len(body) < MAX_BODY
    response = post_otlp(waggle, "/v1/traces", gzip_bytes([body]), PROTOBUF, headers={"Content-Encoding": "gzip"})
    assert response.status_code == 200, (response.status_code, response.content[:300])
    spans = waggle.wait_for_spans(trace_id, 1)
    (span,) = spans.values()
    assert span["attributes"]["padding"] == "x" * (MAX_BODY - 4096)


# ---- empty bodies and response content types -------------------------------------------------


@pytest.mark.parametrize("content_type", [PROTOBUF, JSON])
@pytest.mark.parametrize("path", ["/v1/traces", "/v1/logs", "/v1/metrics"])
def test_empty_body_is_200(waggle, content_type, path):
    before = waggle.snapshot()
    response = post_otlp(waggle, path, b"", content_type)
    assert response.status_code == 200, (response.status_code, response.content[:300])
    assert response.headers.get("Content-Type", "").split(";")[0] == content_type
    assert_nothing_stored_and_still_serving(waggle, before)


@pytest.mark.parametrize("content_type", [PROTOBUF, JSON])
def test_response_content_type_is_the_request_s(waggle, content_type):
    trace_id, span_id = new_trace_id(), new_span_id()
    if content_type == PROTOBUF:
        body = otlp_trace_request(trace_id=trace_id, span_id=span_id).SerializeToString()
    else:
        body = json.dumps(otlp_json_trace_body(trace_id, span_id)).encode()
    response = post_otlp(waggle, "/v1/traces", body, content_type)
    assert response.status_code == 200, (response.status_code, response.content[:300])
    assert response.headers.get("Content-Type", "").split(";")[0] == content_type
    if content_type == PROTOBUF:
        answer = ExportTraceServiceResponse.FromString(response.content)
        assert answer.partial_success.rejected_spans == 0
    else:
        assert isinstance(response.json(), dict)
    spans = waggle.wait_for_spans(trace_id, 1)
    assert list(spans) == [span_id]


# ---- zstd (waggle's README: gzip or zstd) ----------------------------------------------------


def test_zstd_body_is_accepted(waggle):
    trace_id = new_trace_id()
    body = otlp_trace_request(service="zstd", trace_id=trace_id).SerializeToString()
    response = post_otlp(waggle, "/v1/traces", zstandard.ZstdCompressor().compress(body), PROTOBUF,
                         headers={"Content-Encoding": "zstd"})
    assert response.status_code == 200, (response.status_code, response.content[:300])
    assert len(waggle.wait_for_spans(trace_id, 1)) == 1


def test_zstd_bomb_is_413_and_memory_stays_bounded(waggle):
    compressor = zstandard.ZstdCompressor(level=19).compressobj()
    chunk = b"a" * (1 << 20)
    bomb = b"".join(compressor.compress(chunk) for _ in range(256)) + compressor.flush()
    assert len(bomb) < MAX_BODY // 2
    before = waggle.snapshot()
    counted = Counted(waggle)
    memory_before = waggle.memory()
    response = post_otlp(waggle, "/v1/traces", bomb, PROTOBUF, headers={"Content-Encoding": "zstd"})
    memory_after = waggle.memory()
    assert response.status_code == 413, (response.status_code, response.content[:300])
    grown_kib = memory_after["VmHWM"] - memory_before["VmHWM"]
    assert grown_kib < 48 * 1024, f"peak RSS grew by {grown_kib} KiB on a zstd bomb: {memory_before} -> {memory_after}"
    assert_nothing_stored_and_still_serving(waggle, before, counted)
