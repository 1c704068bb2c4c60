"""OTLP/gRPC bad input: refused with an error status, nothing stored, waggle keeps serving."""

import grpc
import pytest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from helpers import (
    assert_store_unchanged_but_for,
    new_trace_id,
    otlp_trace_request,
    send_sentinel_trace,
)

MAX_MESSAGE = 1 << 20  # max_message_size = "1MiB" below
EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
SIZE_CODES = {grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.OUT_OF_RANGE}


@pytest.fixture
def waggle(waggle_factory):
    return waggle_factory({"receivers": {"otlp_grpc": {"max_message_size": "1MiB"}}})


@pytest.fixture
def channel(waggle):
    channel = grpc.insecure_channel(waggle.grpc_target)
    yield channel
    channel.close()


def export(channel, request, compression=None):
    stub = trace_service_pb2_grpc.TraceServiceStub(channel)
    return stub.Export(request, timeout=30, compression=compression)


def export_raw(channel, body, compression=None):
    call = channel.unary_unary(EXPORT, request_serializer=None, response_deserializer=None)
    return call(body, timeout=30, compression=compression)


def assert_grpc_still_serves_and_nothing_stored(waggle, channel, before):
    trace_id = new_trace_id()
    export(channel, otlp_trace_request(service="grpc-sentinel", trace_id=trace_id))
    waggle.wait_for_spans(trace_id, 1)
    http_sentinel = send_sentinel_trace(waggle)
    assert_store_unchanged_but_for(waggle, before, [trace_id, http_sentinel])


def big_request(size):
    request = otlp_trace_request(service="must-not-be-stored", attributes={"padding": "x" * size})
    assert request.ByteSize() > size
    return request


def test_message_over_max_message_size_is_refused(waggle, channel):
    before = waggle.snapshot()
    with pytest.raises(grpc.RpcError) as refused:
        export(channel, big_request(2 * MAX_MESSAGE))
    assert refused.value.code() in SIZE_CODES, (refused.value.code(), refused.value.details())
    assert waggle.alive()
    assert_grpc_still_serves_and_nothing_stored(waggle, channel, before)


def test_gzip_message_expanding_past_max_is_refused_and_memory_bounded(waggle, channel):
    """grpc-encoding: gzip; small on the wire, 128 MiB once inflated."""
    body = big_request(128 * MAX_MESSAGE).SerializeToString()
    before = waggle.snapshot()
    memory_before = waggle.memory()
    with pytest.raises(grpc.RpcError) as refused:
        export_raw(channel, body, compression=grpc.Compression.Gzip)
    memory_after = waggle.memory()
    del body
    assert refused.value.code() in SIZE_CODES, (refused.value.code(), refused.value.details())
    grown_kib = memory_after["VmHWM"] - memory_before["VmHWM"]
    assert grown_kib < 48 * 1024, f"peak RSS grew by {grown_kib} KiB: {memory_before} -> {memory_after}"
    assert_grpc_still_serves_and_nothing_stored(waggle, channel, before)


@pytest.mark.parametrize(
    "body",
    [b"\x0a\x10short", b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01"],
    ids=["truncated", "bad-varint"],
)
def test_undecodable_message_is_refused(waggle, channel, body):
    before = waggle.snapshot()
    with pytest.raises(grpc.RpcError) as refused:
        export_raw(channel, body)
    # tonic reports a prost decode error as INTERNAL; INVALID_ARGUMENT would be as good.
    assert refused.value.code() in {grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.INTERNAL}, (
        refused.value.code(),
        refused.value.details(),
    )
    assert_grpc_still_serves_and_nothing_stored(waggle, channel, before)


def test_empty_request_is_ok(waggle, channel):
    before = waggle.snapshot()
    response = export(channel, ExportTraceServiceRequest())
    assert response.partial_success.rejected_spans == 0
    assert_grpc_still_serves_and_nothing_stored(waggle, channel, before)
