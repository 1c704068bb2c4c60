#!/usr/bin/env python3
"""Writes the generated seed inputs of the fuzz corpora (fuzz/corpus/<target>/gen-*): valid
OTLP logs and metrics requests (protobuf and OTLP/JSON), spool segment files (clean, damaged,
torn), sampling-proxy requests and daemon command lines. The captured SDK payloads in the
corpora are copied from tests/data. Run from the repository root with the test venv:
    .venv/bin/python fuzz/seeds/generate.py
"""
import json
import os
import struct

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

CORPUS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "corpus")
TRACE_ID = bytes.fromhex("5b8efff798038103d269b633813fc60c")
SPAN_ID = bytes.fromhex("eee19b7ec3c1b174")


def write(target, name, data):
    os.makedirs(os.path.join(CORPUS, target), exist_ok=True)
    with open(os.path.join(CORPUS, target, "gen-" + name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def logs_request():
    request = ExportLogsServiceRequest()
    scope = request.resource_logs.add().scope_logs.add()
    scope.scope.name = "fuzz"
    for i in range(3):
        record = scope.log_records.add()
        record.time_unix_nano = 1795239301147000000 + i
        record.severity_number = 9
        record.body.string_value = f"log {i}"
        record.attributes.add(key="n", value={"int_value": i})
        if i == 1:
            record.trace_id, record.span_id = TRACE_ID, SPAN_ID
    return request


def metrics_request():
    request = ExportMetricsServiceRequest()
    scope = request.resource_metrics.add().scope_metrics.add()
    gauge = scope.metrics.add(name="g")
    gauge.gauge.data_points.add(as_double=1.5, time_unix_nano=1)
    total = scope.metrics.add(name="s")
    total.sum.aggregation_temporality = 2
    total.sum.is_monotonic = True
    point = total.sum.data_points.add(as_int=5, time_unix_nano=1)
    point.exemplars.add(as_double=1.0, span_id=SPAN_ID, trace_id=TRACE_ID)
    histogram = scope.metrics.add(name="h")
    histogram.histogram.data_points.add(count=2, sum=3.0, bucket_counts=[1, 1], explicit_bounds=[1.0])
    exponential = scope.metrics.add(name="e")
    exponential.exponential_histogram.data_points.add(count=1, scale=1, zero_count=1)
    summary = scope.metrics.add(name="q")
    summary.summary.data_points.add(count=1, sum=1.0).quantile_values.add(quantile=0.5, value=1.0)
    return request


def traces_request():
    request = ExportTraceServiceRequest()
    resource = request.resource_spans.add()
    resource.resource.attributes.add(key="service.name", value={"string_value": "svc"})
    span = resource.scope_spans.add().spans.add(trace_id=TRACE_ID, span_id=SPAN_ID, name="s", kind=2)
    span.events.add(name="e", time_unix_nano=5)
    span.links.add(trace_id=TRACE_ID, span_id=SPAN_ID)
    span.status.code = 2
    return request


def crc32c(data, crc=0):
    crc ^= 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def varint(value):
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def field(number, wire, payload):
    key = varint(number << 3 | wire)
    if wire == 0:
        return key + varint(payload)
    if wire == 1:
        return key + struct.pack("<Q", payload)
    return key + varint(len(payload)) + payload


def envelope(sequence, signal, items, otlp=None, documents=None):
    out = field(1, 0, sequence) + field(2, 1, 1795239301147000000) + field(3, 0, signal) + field(4, 0, items)
    if otlp is not None:
        out += field(5, 2, otlp)
    if documents is not None:
        docs = b"".join(field(1, 2, field(1, 2, body) + field(2, 2, tid.encode()) + field(3, 2, sid.encode())) for body, tid, sid in documents)
        out += field(6, 2, docs)
    return out


def frame(env):
    length = struct.pack("<I", len(env))
    return length + struct.pack("<I", crc32c(env, crc32c(length))) + env


def main():
    logs, metrics, traces = logs_request(), metrics_request(), traces_request()
    write("otlp_protobuf", "logs.bin", logs.SerializeToString())
    write("otlp_protobuf", "metrics.bin", metrics.SerializeToString())
    write("otlp_protobuf", "traces.bin", traces.SerializeToString())
    write("otlp_json", "logs.json", json.dumps({"resourceLogs": [{"scopeLogs": [{"logRecords": [
        {"timeUnixNano": "1795239301147000000", "severityNumber": 9, "body": {"stringValue": "hi"},
         "traceId": TRACE_ID.hex(), "spanId": SPAN_ID.hex(), "attributes": [{"key": "n", "value": {"intValue": "3"}}]}]}]}]}))
    write("otlp_json", "metrics.json", json.dumps({"resourceMetrics": [{"scopeMetrics": [{"metrics": [
        {"name": "g", "gauge": {"dataPoints": [{"asDouble": 1.5, "timeUnixNano": "1"}]}},
        {"name": "s", "sum": {"aggregationTemporality": 2, "isMonotonic": True, "dataPoints": [
            {"asInt": "5", "exemplars": [{"spanId": SPAN_ID.hex(), "asDouble": 1.0}]}]}},
        {"name": "h", "histogram": {"dataPoints": [{"count": "2", "bucketCounts": ["1", "1"], "explicitBounds": [1.0]}]}},
        {"name": "e", "exponentialHistogram": {"dataPoints": [{"count": "1", "scale": 1, "positive": {"offset": 0, "bucketCounts": ["1"]}}]}},
        {"name": "q", "summary": {"dataPoints": [{"count": "1", "quantileValues": [{"quantile": 0.5, "value": 1.0}]}]}}]}]}]}))

    segment = b"WGLSPL01"
    doc = b'{"trace_id":"1-5f84c7a1-e7d1852db8c4fd35d88bf49a","id":"6226467e3f845502","name":"api"}'
    records = [
        frame(envelope(0, 1, 1, otlp=traces.SerializeToString())),
        frame(envelope(1, 2, 3, otlp=logs.SerializeToString())),
        frame(envelope(2, 3, 5, otlp=metrics.SerializeToString())),
        frame(envelope(3, 1, 1, documents=[(doc, "1-5f84c7a1-e7d1852db8c4fd35d88bf49a", "6226467e3f845502")])),
    ]
    clean = segment + b"".join(records)
    write("spool_segment", "clean.seg", clean)
    flipped = bytearray(clean)
    flipped[len(segment) + 1] ^= 0x04  # the first record's length
    write("spool_segment", "damaged-length.seg", bytes(flipped))
    flipped = bytearray(clean)
    flipped[len(segment) + len(records[0]) + 20] ^= 0x10  # inside the second record
    write("spool_segment", "damaged-record.seg", bytes(flipped))
    write("spool_segment", "torn-tail.seg", clean[:-7])
    write("spool_segment", "bad-header.seg", b"XXXXXXXX" + b"".join(records[1:]))
    write("spool_segment", "undecodable.seg", segment + frame(b"\xff\xff\xff") + records[0])
    write("spool_segment", "header-only.seg", segment)

    targets = open(os.path.join(CORPUS, "..", "..", "tests", "data", "run2json_011_xray_tcp_SamplingTargets.bin"), "rb").read()
    write("sampling_proxy", "rules", b"POST\n/GetSamplingRules\ncontent-type: application/json\ncontent-length: 2\n\n{}")
    write("sampling_proxy", "targets", b"POST\n/SamplingTargets\ncontent-type: application/json\nx-request-id: abc\n\n" + targets)
    write("sampling_proxy", "summaries", b"POST\n/SamplingStatisticSummaries\n\n{}")
    write("sampling_proxy", "gzip", b"POST\n/GetSamplingRules\ncontent-encoding: gzip\n\n\x1f\x8b")
    write("sampling_proxy", "get", b"GET\n/GetSamplingRules?x=1\n\n")
    write("sampling_proxy", "other-path", b"POST\n/TraceSegments\nauthorization: AWS4-HMAC-SHA256 x\n\n{}")
    write("sampling_proxy", "too-long", b"POST\n/GetSamplingRules\ncontent-length: 99999\n\n" + b"{}\n" * 400)

    flags = [
        ["-o", "-b", "127.0.0.1:2000", "-n", "eu-west-1"],
        ["xray", "-t=0.0.0.0:2000", "--local-mode=false", "-m", "16", "-l", "dev"],
        ["-bind=0.0.0.0:2000", "-p", "http://proxy:3128", "-r", "arn:aws:iam::1:role/x", "-f", "/tmp/x.log"],
        ["xray -o -b xray-daemon:2000"],
        ["config", "--set", "log.level=debug", "--", "-x"],
        ["-ob", "127.0.0.1:2000", "-m=2", "-v"],
    ]
    for i, args in enumerate(flags):
        write("daemon_config", f"flags-{i}", b"\x01" + b"\x00".join(a.encode() for a in args))


main()
