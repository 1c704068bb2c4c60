"""Jaeger's query API (`/jaeger/api/...` on the admin port) over traces from the real SDKs.

One waggle (local store on) receives, from one run of the example Flask app, the real
OpenTelemetry Python SDK's spans over OTLP/HTTP (service `otel-flask`) and the real
aws-xray-sdk's segments over UDP (service `backend-flask`). Every Jaeger answer is checked
against Jaeger's documented response shape (its `model/json` and the query service's
envelope, written out below as a small schema) and against what the SDKs say they emitted:
service and operation names, CHILD_OF references to the right parent, times and durations in
microseconds, typed tags.
"""

import json
from urllib.parse import quote

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

OTEL_SERVICE = "otel-flask"
XRAY_SERVICE = "backend-flask"  # the app's X-Ray recorder names its segments so
REQUESTS = 2
HEX = set("0123456789abcdef")

# ---- Jaeger's response shape, as a schema -----------------------------------------------------
#
# From Jaeger's query service: every answer is {"data", "total", "limit", "offset", "errors"};
# a trace is {"traceID", "spans", "processes", "warnings"?}; a span is {"traceID", "spanID",
# "flags"?, "operationName", "references", "startTime", "duration", "tags", "logs", "processID",
# "warnings"?}; references are {"refType": CHILD_OF|FOLLOWS_FROM, "traceID", "spanID"}; tags and
# log fields are {"key", "type": string|bool|int64|float64|binary, "value"}; logs are
# {"timestamp", "fields"}; processes are {"serviceName", "tags"}. Times are microseconds.

TAG_VALUE_TYPES = {
    "string": (str,),
    "bool": (bool,),
    "int64": (int,),
    "float64": (int, float),
    "binary": (str,),
}


class ShapeError(AssertionError):
    pass


def expect(condition, path, message):
    if not condition:
        raise ShapeError(f"{path}: {message}")


def check_keys(value, path, required, optional=()):
    expect(isinstance(value, dict), path, f"expected an object, got {type(value).__name__}")
    missing = [key for key in required if key not in value]
    expect(not missing, path, f"missing keys {missing}")
    unknown = [key for key in value if key not in required and key not in optional]
    expect(not unknown, path, f"keys Jaeger does not define: {unknown}")


def check_int(value, path, minimum=0):
    expect(isinstance(value, int) and not isinstance(value, bool), path, f"expected an integer, got {value!r}")
    expect(value >= minimum, path, f"expected >= {minimum}, got {value}")


def check_hex(value, path, length):
    expect(isinstance(value, str) and len(value) == length and set(value) <= HEX, path,
           f"expected {length} lowercase hex digits, got {value!r}")


def check_optional_strings(value, path):
    expect(value is None or (isinstance(value, list) and all(isinstance(v, str) for v in value)), path,
           f"expected null or a list of strings, got {value!r}")


def check_key_value(value, path):
    check_keys(value, path, ("key", "type", "value"))
    expect(isinstance(value["key"], str) and value["key"], path, "key must be a non-empty string")
    expect(value["type"] in TAG_VALUE_TYPES, path, f"type {value['type']!r} is not a Jaeger value type")
    kinds = TAG_VALUE_TYPES[value["type"]]
    ok = isinstance(value["value"], kinds) and (value["type"] == "bool" or not isinstance(value["value"], bool))
    expect(ok, path, f"value {value['value']!r} is not of type {value['type']}")


def check_key_values(values, path):
    expect(isinstance(values, list), path, "expected a list")
    for index, value in enumerate(values):
        check_key_value(value, f"{path}[{index}]")


def check_span(span, path, processes):
    check_keys(span, path,
               ("traceID", "spanID", "operationName", "references", "startTime", "duration", "tags", "logs",
                "processID"),
               ("flags", "warnings"))
    check_hex(span["traceID"], f"{path}.traceID", 32)
    check_hex(span["spanID"], f"{path}.spanID", 16)
    expect(isinstance(span["operationName"], str), f"{path}.operationName", "expected a string")
    if "flags" in span:
        check_int(span["flags"], f"{path}.flags")
    check_int(span["startTime"], f"{path}.startTime")
    check_int(span["duration"], f"{path}.duration")
    expect(isinstance(span["references"], list), f"{path}.references", "expected a list")
    for index, reference in enumerate(span["references"]):
        where = f"{path}.references[{index}]"
        check_keys(reference, where, ("refType", "traceID", "spanID"))
        expect(reference["refType"] in ("CHILD_OF", "FOLLOWS_FROM"), where, f"refType {reference['refType']!r}")
        check_hex(reference["traceID"], f"{where}.traceID", 32)
        check_hex(reference["spanID"], f"{where}.spanID", 16)
    check_key_values(span["tags"], f"{path}.tags")
    expect(isinstance(span["logs"], list), f"{path}.logs", "expected a list")
    for index, log in enumerate(span["logs"]):
        check_keys(log, f"{path}.logs[{index}]", ("timestamp", "fields"))
        check_int(log["timestamp"], f"{path}.logs[{index}].timestamp")
        check_key_values(log["fields"], f"{path}.logs[{index}].fields")
    expect(span["processID"] in processes, f"{path}.processID", f"{span['processID']!r} is not in processes")
    check_optional_strings(span.get("warnings"), f"{path}.warnings")


def check_trace(trace, path):
    check_keys(trace, path, ("traceID", "spans", "processes"), ("warnings",))
    check_hex(trace["traceID"], f"{path}.traceID", 32)
    processes = trace["processes"]
    expect(isinstance(processes, dict) and processes, f"{path}.processes", "expected a non-empty object")
    for process_id, process in processes.items():
        check_keys(process, f"{path}.processes.{process_id}", ("serviceName", "tags"))
        expect(isinstance(process["serviceName"], str) and process["serviceName"],
               f"{path}.processes.{process_id}.serviceName", "expected a non-empty string")
        check_key_values(process["tags"], f"{path}.processes.{process_id}.tags")
    expect(isinstance(trace["spans"], list) and trace["spans"], f"{path}.spans", "expected a non-empty list")
    for index, span in enumerate(trace["spans"]):
        check_span(span, f"{path}.spans[{index}]", processes)
        expect(span["traceID"] == trace["traceID"], f"{path}.spans[{index}].traceID", "differs from the trace's")
    used = {span["processID"] for span in trace["spans"]}
    expect(used == set(processes), f"{path}.processes", f"unused processes {set(processes) - used}")
    check_optional_strings(trace.get("warnings"), f"{path}.warnings")


def check_envelope(body, check_item, path="response"):
    check_keys(body, path, ("data", "total", "limit", "offset", "errors"))
    check_int(body["total"], f"{path}.total")
    check_int(body["limit"], f"{path}.limit")
    check_int(body["offset"], f"{path}.offset")
    expect(isinstance(body["data"], list), f"{path}.data", "expected a list")
    for index, item in enumerate(body["data"]):
        check_item(item, f"{path}.data[{index}]")
    return body["data"]


def check_error_envelope(body, code, path="response"):
    check_keys(body, path, ("data", "total", "limit", "offset", "errors"))
    expect(body["data"] is None, f"{path}.data", "expected null")
    errors = body["errors"]
    expect(isinstance(errors, list) and len(errors) == 1, f"{path}.errors", "expected one error")
    check_keys(errors[0], f"{path}.errors[0]", ("code", "msg"), ("traceID",))
    expect(errors[0]["code"] == code, f"{path}.errors[0].code", f"expected {code}, got {errors[0]['code']}")
    expect(isinstance(errors[0]["msg"], str) and errors[0]["msg"], f"{path}.errors[0].msg", "expected a message")


def check_string(value, path):
    expect(isinstance(value, str) and value, path, f"expected a non-empty string, got {value!r}")


def check_operation(value, path):
    check_keys(value, path, ("name", "spanKind"))
    check_string(value["name"], f"{path}.name")
    expect(value["spanKind"] in ("", "server", "client", "producer", "consumer", "internal"), f"{path}.spanKind",
           f"unexpected span kind {value['spanKind']!r}")


# ---- the run ----------------------------------------------------------------------------------


class Run:
    def __init__(self, waggle, report):
        self.waggle = waggle
        self.report = report
        self.otel_spans = report["spans"]
        self.otel_traces = {}
        for span in self.otel_spans:
            self.otel_traces.setdefault(span["trace_id"], []).append(span)
        self.xray_entities = xray_entities(parse_xray_datagrams(report["xray_datagrams"]))
        self.xray_traces = {}
        for entity in self.xray_entities:
            self.xray_traces.setdefault(entity["trace_id"], []).append(entity)

    def jaeger(self, path, **params):
        response = self.waggle.get("/jaeger/api" + path, **params)
        assert response.status_code == 200, f"GET /jaeger/api{path} -> {response.status_code}: {response.text[:500]}"
        return response.json()

    def jaeger_trace(self, trace_id):
        body = self.jaeger(f"/traces/{quote(trace_id, safe='')}")
        (trace,) = check_envelope(body, check_trace)
        return trace


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    factory = WaggleFactory(tmp_path_factory.mktemp("jaeger-api"))
    try:
        waggle = factory()
        host, port = waggle.udp_address
        env = otlp_env("http/protobuf", None, waggle.addresses["otlp_http"], waggle.addresses["otlp_grpc"], OTEL_SERVICE)
        env["AWS_XRAY_DAEMON_ADDRESS"] = f"{host}:{port}"
        report = run_driver(env, "--requests", str(REQUESTS))
        result = Run(waggle, report)
        assert len(result.otel_traces) == REQUESTS, report["spans"]
        assert len(result.xray_traces) == REQUESTS, report["xray_datagrams"]
        for trace_id, spans in result.otel_traces.items():
            waggle.wait_for_spans(trace_id, len(spans))
        for trace_id, entities in result.xray_traces.items():
            waggle.wait_for_spans(trace_id, len(entities))
        yield result
    finally:
        factory.teardown()


def tags_of(owner):
    return {tag["key"]: (tag["type"], tag["value"]) for tag in owner["tags"]}


def jaeger_type(value):
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int64"
    if isinstance(value, float):
        return "float64"
    return "string"


# ---- services and operations ------------------------------------------------------------------


def test_services_name_both_sdks_services(run):
    body = run.jaeger("/services")
    services = check_envelope(body, check_string)
    assert {OTEL_SERVICE, XRAY_SERVICE} <= set(services), services
    assert services == sorted(services)
    assert body["total"] == len(services)


def test_operations_are_the_span_names_the_otel_sdk_emitted(run):
    names = check_envelope(run.jaeger(f"/services/{OTEL_SERVICE}/operations"), check_string)
    assert sorted(names) == sorted({span["name"] for span in run.otel_spans})

    operations = check_envelope(run.jaeger("/operations", service=OTEL_SERVICE), check_operation)
    emitted = {(span["name"], span["kind"]) for span in run.otel_spans}
    assert {(op["name"], op["spanKind"]) for op in operations} == emitted

    servers = check_envelope(run.jaeger("/operations", service=OTEL_SERVICE, spanKind="server"), check_operation)
    assert {op["name"] for op in servers} == {name for name, kind in emitted if kind == "server"}


def test_operations_of_the_xray_service_are_its_segment_and_subsegment_names(run):
    names = check_envelope(run.jaeger(f"/services/{XRAY_SERVICE}/operations"), check_string)
    assert sorted(names) == sorted({entity["name"] for entity in run.xray_entities})


# ---- one trace ----------------------------------------------------------------------------------


def test_otel_traces_match_what_the_sdk_emitted(run):
    for trace_id, emitted_spans in run.otel_traces.items():
        trace = run.jaeger_trace(trace_id)
        assert trace["traceID"] == trace_id
        spans = {span["spanID"]: span for span in trace["spans"]}
        assert sorted(spans) == sorted(span["span_id"] for span in emitted_spans)
        for emitted in emitted_spans:
            span = spans[emitted["span_id"]]
            where = f"span {emitted['name']!r} {emitted['span_id']}"
            assert span["operationName"] == emitted["name"], where
            parents = [ref for ref in span["references"] if ref["refType"] == "CHILD_OF"]
            if emitted["parent_span_id"] is None:
                assert parents == [], where
            else:
                assert parents == [{"refType": "CHILD_OF", "traceID": trace_id, "spanID": emitted["parent_span_id"]}], where
            assert span["startTime"] == emitted["start_time_unix_nano"] // 1000, where
            assert span["duration"] == (emitted["end_time_unix_nano"] - emitted["start_time_unix_nano"]) // 1000, where
            tags = tags_of(span)
            assert tags["span.kind"] == ("string", emitted["kind"]), where
            assert tags["otel.scope.name"] == ("string", emitted["scope"]["name"]), where
            for key, value in emitted["attributes"].items():
                if isinstance(value, (list, dict)):
                    continue
                assert tags[key] == (jaeger_type(value), value), f"{where}: tag {key}"
            process = trace["processes"][span["processID"]]
            assert process["serviceName"] == OTEL_SERVICE, where
            process_tags = tags_of(process)
            assert process_tags["telemetry.sdk.language"] == ("string", "python"), where
            assert "service.name" not in process_tags, where
        # One SDK, one resource: one process for the whole trace.
        assert len(trace["processes"]) == 1


def assert_close(actual, expected, what, slack=1):
    assert abs(actual - expected) <= slack, f"{what}: {actual} vs {expected}"


def test_xray_traces_match_what_the_sdk_sent_by_either_id_form(run):
    for xray_trace_id, entities in run.xray_traces.items():
        otlp_id = xray_to_otlp_trace_id(xray_trace_id)
        trace = run.jaeger_trace(xray_trace_id)
        assert trace == run.jaeger_trace(otlp_id)
        assert trace["traceID"] == otlp_id
        spans = {span["spanID"]: span for span in trace["spans"]}
        assert sorted(spans) == sorted(entity["id"] for entity in entities)
        for entity in entities:
            span = spans[entity["id"]]
            document = entity["document"]
            where = f"{entity['name']} {entity['id']}"
            assert span["operationName"] == entity["name"], where
            parents = [ref for ref in span["references"] if ref["refType"] == "CHILD_OF"]
            expected_parents = [] if entity["parent_id"] is None else [
                {"refType": "CHILD_OF", "traceID": otlp_id, "spanID": entity["parent_id"]}
            ]
            assert parents == expected_parents, where
            assert_close(span["startTime"], round(document["start_time"] * 1e6), f"{where} startTime")
            duration = round((document["end_time"] - document["start_time"]) * 1e6)
            assert_close(span["duration"], duration, f"{where} duration", slack=2)
            tags = tags_of(span)
            for key, value in document.get("annotations", {}).items():
                assert tags[key] == (jaeger_type(value), value), f"{where}: annotation {key}"
            assert trace["processes"][span["processID"]]["serviceName"] == XRAY_SERVICE, where
        root = next(spans[e["id"]] for e in entities if e["segment"])
        assert tags_of(root)["span.kind"] == ("string", "server")


def test_an_unknown_trace_is_a_404_in_jaeger_error_shape(run):
    response = run.waggle.get("/jaeger/api/traces/" + "f" * 32)
    assert response.status_code == 404
    check_error_envelope(response.json(), 404)


# ---- search -------------------------------------------------------------------------------------


def search(run, **params):
    """A search as Grafana sends it: Jaeger's parameters with a time range and lookback=custom."""
    starts = [span["start_time_unix_nano"] for span in run.otel_spans]
    params.setdefault("start", min(starts) // 1000 - 60_000_000)
    params.setdefault("end", max(starts) // 1000 + 60_000_000)
    params.setdefault("limit", 20)
    params["lookback"] = "custom"
    return check_envelope(run.jaeger("/traces", **params), check_trace)


def test_search_by_service_and_operation_finds_the_otel_traces(run):
    server = next(span for span in run.otel_spans if span["kind"] == "server")
    found = search(run, service=OTEL_SERVICE, operation=server["name"])
    expected = {span["trace_id"] for span in run.otel_spans if span["name"] == server["name"]}
    assert {trace["traceID"] for trace in found} == expected
    for trace in found:
        assert len(trace["spans"]) == len(run.otel_traces[trace["traceID"]]), "search answers whole traces"


def test_search_by_an_integer_attribute_given_as_text(run):
    custom = next(span for span in run.otel_spans if "app.result_length" in span["attributes"])
    tags = json.dumps({"app.result_length": str(custom["attributes"]["app.result_length"])})
    found = search(run, service=OTEL_SERVICE, tags=tags)
    assert {trace["traceID"] for trace in found} == set(run.otel_traces)


def test_search_by_duration_bounds(run):
    longest = max(span["end_time_unix_nano"] - span["start_time_unix_nano"] for span in run.otel_spans)
    assert {t["traceID"] for t in search(run, service=OTEL_SERVICE, minDuration="0ms")} == set(run.otel_traces)
    too_long = f"{longest // 1000 + 1000}us"
    assert search(run, service=OTEL_SERVICE, minDuration=too_long) == []


def test_search_outside_the_time_range_finds_nothing(run):
    latest = max(span["start_time_unix_nano"] for span in run.otel_spans) // 1000
    assert search(run, service=OTEL_SERVICE, start=latest + 60_000_000, end=latest + 120_000_000) == []


def test_search_by_an_xray_annotation(run):
    found = search(run, service=XRAY_SERVICE, tags=json.dumps({"formatted": "true"}))
    expected = {xray_to_otlp_trace_id(t) for t, entities in run.xray_traces.items()
                if any(e["document"].get("annotations", {}).get("formatted") is True for e in entities)}
    assert expected and {trace["traceID"] for trace in found} == expected


def test_search_without_a_service_is_a_400_in_jaeger_error_shape(run):
    response = run.waggle.get("/jaeger/api/traces", limit=20)
    assert response.status_code == 400
    check_error_envelope(response.json(), 400)


# ---- the app's log records come with their trace -----------------------------------------------


def test_a_trace_carries_the_log_records_the_app_wrote_in_it(run):
    with_trace = [log for log in run.report["logs"] if log["trace_id"] in run.otel_traces]
    assert with_trace, run.report["logs"]
    for trace_id in run.otel_traces:
        expected = sorted((log["time_unix_nano"], log["body"]) for log in with_trace if log["trace_id"] == trace_id)

        def stored():
            logs = run.waggle.get_json(f"/api/traces/{trace_id}")["logs"]
            return logs if len(logs) >= len(expected) else None

        logs = wait_for(stored, what=f"the log records of trace {trace_id}")
        assert [(log["time_unix_nano"], log["body"]) for log in logs] == expected
        searched = run.waggle.logs(trace_id=trace_id)
        assert sorted((log["time_unix_nano"], log["body"]) for log in searched) == expected
