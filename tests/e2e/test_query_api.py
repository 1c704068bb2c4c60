"""Honeycomb's query specification over spans stored through the OTLP/HTTP receiver: every
calculation op and every filter op of `POST /api/query`, compared with the same computation
done here from the spans sent (protobuf, so every duration is exact to the nanosecond).

One waggle (local store on) is loaded once for the module with spans of known durations,
attributes, errors, services, kinds and times inside a fixed 20-minute window in the past;
each test runs one query over that window and checks every group (service.name × http.route)
and every time bucket.
"""

import math
import time
from collections import defaultdict

import pytest

from helpers import WaggleFactory, new_span_id, new_trace_id, post_otlp, wait_for

RELATIVE_WIDTH = 1 / 128  # the engine's histogram buckets: width <= lower bound / 128
SERVICES = ["api", "web", "worker"]
ROUTES = ["/a", "/b", "/api/x", "/api/y"]
WINDOW = 1200  # seconds
GRANULARITY = 60
N = 300
NS = 1_000_000_000
BREAKDOWNS = ["service.name", "http.route"]


def make_spans(window_start):
    """N spans spread over the window; every column as Honeycomb names it."""
    spans = []
    trace_ids = [new_trace_id() for _ in range(40)]
    for i in range(N):
        start = window_start * NS + (i * 3_989_123_457) % (WINDOW * NS - 60 * NS)
        duration = ((i * 7919) % 4000 + 1) * 10_000 + i * 7  # 10 µs .. 40 ms, odd nanoseconds
        error = i % 7 == 0
        columns = {
            "duration_ms": duration / 1e6,
            "name": f"op-{i % 5}",
            "service.name": SERVICES[i % 3],
            "trace.trace_id": trace_ids[i % 40],
            "trace.span_id": new_span_id(),
            "status_code": 2 if error else (1 if i % 2 else 0),
            "span.kind": "client" if i % 2 else "server",
            "http.route": ROUTES[(i // 3) % 4],
            "http.status_code": [200, 404, 500][(i // 2) % 3],
            "bytes": (i * 7907) % 100_000,
            "ratio": (i % 13) / 8,
            "user.id": f"user-{i % 17}",
        }
        if error:
            columns["error"] = True
        if i % 2 == 0:
            columns["cache.hit"] = i % 4 == 0
        spans.append({"start": start, "end": start + duration, "columns": columns})
    return spans


def otlp_request(spans):
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
    from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

    def any_value(value):
        if isinstance(value, bool):
            return AnyValue(bool_value=value)
        if isinstance(value, int):
            return AnyValue(int_value=value)
        if isinstance(value, float):
            return AnyValue(double_value=value)
        return AnyValue(string_value=value)

    request = ExportTraceServiceRequest()
    for service in SERVICES:
        resource_spans = request.resource_spans.add()
        resource_spans.resource.attributes.append(KeyValue(key="service.name", value=AnyValue(string_value=service)))
        scope_spans = resource_spans.scope_spans.add()
        scope_spans.scope.name = "waggle-e2e-query"
        for sent in spans:
            columns = sent["columns"]
            if columns["service.name"] != service:
                continue
            span = scope_spans.spans.add()
            span.trace_id = bytes.fromhex(columns["trace.trace_id"])
            span.span_id = bytes.fromhex(columns["trace.span_id"])
            span.name = columns["name"]
            span.kind = Span.SPAN_KIND_CLIENT if columns["span.kind"] == "client" else Span.SPAN_KIND_SERVER
            span.start_time_unix_nano = sent["start"]
            span.end_time_unix_nano = sent["end"]
            span.status.code = [Status.STATUS_CODE_UNSET, Status.STATUS_CODE_OK, Status.STATUS_CODE_ERROR][columns["status_code"]]
            for key in ("http.route", "http.status_code", "bytes", "ratio", "user.id", "cache.hit"):
                if key in columns:
                    span.attributes.append(KeyValue(key=key, value=any_value(columns[key])))
    return request


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    """(waggle, spans, window_start): one waggle holding the N spans."""
    factory = WaggleFactory(tmp_path_factory.mktemp("query"))
    try:
        waggle = factory()
        window_start = (int(time.time()) // 60) * 60 - 1800
        spans = make_spans(window_start)
        for part in range(3):
            body = otlp_request(spans[part::3]).SerializeToString()
            response = post_otlp(waggle, "/v1/traces", body)
            assert response.status_code == 200, response.text[:300]

        def all_stored():
            body = waggle.query_json(window({"calculations": [{"op": "COUNT"}]}, window_start))
            return body["results"] and body["results"][0]["data"]["COUNT"] == N

        wait_for(all_stored, what=f"{N} spans counted by /api/query")
        yield waggle, spans, window_start
    finally:
        factory.teardown()


def window(spec, window_start):
    return dict(spec, start_time=window_start, end_time=window_start + WINDOW, granularity=GRANULARITY, limit=1000)


def bucket_of(span, window_start):
    return (span["start"] - window_start * NS) // (GRANULARITY * NS)


def group_key(span):
    return tuple(span["columns"].get(name) for name in BREAKDOWNS)


def row_key(data):
    return tuple(data.get(name) for name in BREAKDOWNS)


def groups_of(spans):
    groups = defaultdict(list)
    for span in spans:
        groups[group_key(span)].append(span)
    return groups


def numbers(spans, column):
    return [s["columns"][column] for s in spans if isinstance(s["columns"].get(column), (int, float)) and not isinstance(s["columns"].get(column), bool)]


def nearest_rank(values, q):
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q * len(ordered))) - 1]


def run(loaded, calculations, filters=None):
    waggle, spans, window_start = loaded
    spec = {"calculations": calculations, "breakdowns": BREAKDOWNS}
    if filters:
        spec["filters"] = filters
    body = waggle.query_json(window(spec, window_start))
    results = {row_key(row["data"]): row["data"] for row in body["results"]}
    series = defaultdict(dict)
    for point in body["series"]:
        series[row_key(point["data"])][(point["time_unix"] - window_start) // GRANULARITY] = point["data"]
    return body, results, series


def close(actual, expected, relative=1e-12):
    return actual is not None and abs(actual - expected) <= abs(expected) * relative + 1e-12


# ---- calculations ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "op,column",
    [("COUNT", None), ("SUM", "bytes"), ("SUM", "duration_ms"), ("AVG", "duration_ms"), ("AVG", "ratio"), ("MIN", "duration_ms"), ("MAX", "bytes")],
)
def test_simple_calculations_per_group_and_time_bucket(loaded, op, column):
    _, spans, window_start = loaded
    calculation = {"op": op, "column": column} if column else {"op": op}
    label = f"{op}({column})" if column else op
    body, results, series = run(loaded, [calculation])

    def expected(rows):
        if op == "COUNT":
            return len(rows)
        values = numbers(rows, column)
        if not values:
            return None
        if op == "SUM":
            return sum(values) if all(isinstance(v, int) for v in values) else math.fsum(values)
        if op == "AVG":
            return math.fsum(values) / len(values)
        return min(values) if op == "MIN" else max(values)

    groups = groups_of(spans)
    assert set(results) == set(groups)
    for key, rows in groups.items():
        want = expected(rows)
        got = results[key][label]
        if isinstance(want, int):
            assert got == want, (key, got, want)
        else:
            assert close(got, want), (key, got, want)
        by_bucket = defaultdict(list)
        for span in rows:
            by_bucket[bucket_of(span, window_start)].append(span)
        assert set(series[key]) == set(by_bucket), key
        for bucket, bucket_rows in by_bucket.items():
            want = expected(bucket_rows)
            got = series[key][bucket][label]
            assert got == want if isinstance(want, int) else close(got, want), (key, bucket, got, want)
    assert body["total_count"] == N


def test_count_distinct_per_group(loaded):
    _, spans, _ = loaded
    _, results, _ = run(loaded, [{"op": "COUNT_DISTINCT", "column": "user.id"}, {"op": "COUNT_DISTINCT", "column": "trace.trace_id"}])
    for key, rows in groups_of(spans).items():
        assert results[key]["COUNT_DISTINCT(user.id)"] == len({s["columns"]["user.id"] for s in rows}), key
        assert results[key]["COUNT_DISTINCT(trace.trace_id)"] == len({s["columns"]["trace.trace_id"] for s in rows}), key


@pytest.mark.parametrize("op,q", [("P001", 0.001), ("P01", 0.01), ("P05", 0.05), ("P10", 0.1), ("P20", 0.2), ("P25", 0.25), ("P50", 0.5), ("P75", 0.75), ("P80", 0.8), ("P90", 0.9), ("P95", 0.95), ("P99", 0.99), ("P999", 0.999)])
def test_percentiles_are_within_one_histogram_bucket_of_the_exact_value(loaded, op, q):
    _, spans, _ = loaded
    label = f"{op}(duration_ms)"
    _, results, _ = run(loaded, [{"op": op, "column": "duration_ms"}])
    for key, rows in groups_of(spans).items():
        exact = nearest_rank(numbers(rows, "duration_ms"), q)
        assert abs(results[key][label] - exact) <= exact * RELATIVE_WIDTH, (key, results[key][label], exact)


def test_heatmap_counts_each_duration_in_the_bucket_that_holds_it(loaded):
    _, spans, window_start = loaded
    body, results, series = run(loaded, [{"op": "HEATMAP", "column": "duration_ms"}])
    buckets = body["heatmaps"]["HEATMAP(duration_ms)"]
    assert 0 < len(buckets) <= 50

    def counts(rows):
        out = [0] * len(buckets)
        for value in numbers(rows, "duration_ms"):
            hits = [i for i, b in enumerate(buckets) if (b["lower"] is None or b["lower"] <= value) and (b["upper"] is None or value < b["upper"])]
            assert len(hits) == 1, (value, hits)
            out[hits[0]] += 1
        return out

    for key, rows in groups_of(spans).items():
        assert results[key]["HEATMAP(duration_ms)"] == counts(rows), key
        by_bucket = defaultdict(list)
        for span in rows:
            by_bucket[bucket_of(span, window_start)].append(span)
        for bucket, bucket_rows in by_bucket.items():
            assert series[key][bucket]["HEATMAP(duration_ms)"] == counts(bucket_rows), (key, bucket)


def test_concurrency_is_the_time_spans_are_in_flight_over_each_bucket(loaded):
    _, spans, window_start = loaded
    _, results, series = run(loaded, [{"op": "CONCURRENCY"}])
    start_ns, end_ns = window_start * NS, (window_start + WINDOW) * NS
    for key, rows in groups_of(spans).items():
        total = sum(min(s["end"], end_ns) - s["start"] for s in rows)
        assert close(results[key]["CONCURRENCY"], total / (end_ns - start_ns), 1e-9), key
        per_bucket = defaultdict(int)
        for span in rows:
            for bucket in range(WINDOW // GRANULARITY):
                lo = start_ns + bucket * GRANULARITY * NS
                hi = lo + GRANULARITY * NS
                overlap = min(span["end"], hi) - max(span["start"], lo)
                if overlap > 0:
                    per_bucket[bucket] += overlap
        for bucket, overlap in per_bucket.items():
            assert close(series[key][bucket]["CONCURRENCY"], overlap / (GRANULARITY * NS), 1e-9), (key, bucket)


@pytest.mark.parametrize("op", ["RATE_AVG", "RATE_SUM", "RATE_MAX"])
def test_rates_are_differences_between_successive_buckets(loaded, op):
    _, spans, window_start = loaded
    label = f"{op}(bytes)"
    _, results, series = run(loaded, [{"op": op, "column": "bytes"}])
    aggregate = {"RATE_AVG": lambda v: sum(v) / len(v), "RATE_SUM": sum, "RATE_MAX": max}[op]
    for key, rows in groups_of(spans).items():
        by_bucket = defaultdict(list)
        for span in rows:
            by_bucket[bucket_of(span, window_start)].append(span["columns"]["bytes"])
        previous, rates = None, {}
        for bucket in sorted(by_bucket):
            current = aggregate(by_bucket[bucket])
            rates[bucket] = None if previous is None else current - previous
            previous = current
        for bucket, rate in rates.items():
            got = series[key][bucket][label]
            assert (got is None) if rate is None else close(got, rate, 1e-9), (key, bucket, got, rate)
        defined = [r for r in rates.values() if r is not None]
        want = sum(defined) / len(defined) if defined else None
        got = results[key][label]
        assert (got is None) if want is None else close(got, want, 1e-9), (key, got, want)


# ---- filters --------------------------------------------------------------------------------


def positive(value, op, operand):
    if value is None:
        return False
    if op == "exists":
        return True
    if op == "=":
        return value == operand and type(value) is type(operand)
    if op in (">", ">=", "<", "<="):
        return {">": value > operand, ">=": value >= operand, "<": value < operand, "<=": value <= operand}[op]
    if op == "starts-with":
        return value.startswith(operand)
    if op == "ends-with":
        return value.endswith(operand)
    if op == "contains":
        return operand in value
    if op == "in":
        return value in operand
    raise AssertionError(op)


NEGATIONS = {"!=": "=", "does-not-start-with": "starts-with", "does-not-end-with": "ends-with", "does-not-contain": "contains", "does-not-exist": "exists", "not-in": "in"}

FILTERS = [
    ("http.route", "=", "/a"),
    ("http.route", "!=", "/a"),
    ("http.status_code", ">", 200),
    ("duration_ms", ">=", 20),
    ("duration_ms", "<", 10.5),
    ("http.status_code", "<=", 404),
    ("http.route", "starts-with", "/api"),
    ("http.route", "does-not-start-with", "/api"),
    ("http.route", "ends-with", "x"),
    ("http.route", "does-not-end-with", "x"),
    ("name", "contains", "op-1"),
    ("name", "does-not-contain", "op-1"),
    ("cache.hit", "exists", None),
    ("cache.hit", "does-not-exist", None),
    ("service.name", "in", ["api", "web"]),
    ("http.status_code", "not-in", [200, 500]),
    ("error", "=", True),
    ("cache.hit", "!=", True),
    ("span.kind", "=", "client"),
    ("status_code", "=", 2),
    ("ratio", ">", 0.75),
]


@pytest.mark.parametrize("column,op,value", FILTERS, ids=[f"{c} {o} {v}" for c, o, v in FILTERS])
def test_filter_op_keeps_the_spans_it_should(loaded, column, op, value):
    _, spans, _ = loaded
    base = NEGATIONS.get(op, op)
    if isinstance(value, (int, float)) and not isinstance(value, bool) and base in ("=", "in"):
        keep = lambda v: v is not None and not isinstance(v, bool) and (v in value if base == "in" else v == value)
    else:
        keep = lambda v: positive(v, base, value)
    kept = [s for s in spans if keep(s["columns"].get(column)) != (op in NEGATIONS)]
    assert 0 < len(kept) < N, f"the filter must tell spans apart ({len(kept)})"
    filter_spec = {"column": column, "op": op}
    if value is not None:
        filter_spec["value"] = value
    _, results, _ = run(loaded, [{"op": "COUNT"}], [filter_spec])
    expected = {key: len(rows) for key, rows in groups_of(kept).items()}
    assert {key: row["COUNT"] for key, row in results.items()} == expected


def test_filter_combination_or(loaded):
    _, spans, _ = loaded
    filters = [{"column": "http.route", "op": "=", "value": "/a"}, {"column": "error", "op": "exists"}]
    kept = [s for s in spans if s["columns"]["http.route"] == "/a" or "error" in s["columns"]]
    waggle, _, window_start = loaded
    body = waggle.query_json(window({"filters": filters, "filter_combination": "OR"}, window_start))
    assert body["results"][0]["data"]["COUNT"] == len(kept)


# ---- refusals -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "spec,named",
    [
        ({"calculations": [{"op": "MEDIAN", "column": "duration_ms"}]}, "MEDIAN"),
        ({"filters": [{"column": "name", "op": "like", "value": "x"}]}, "like"),
        ({"breakdowns": ["no.such.column"]}, "no.such.column"),
        ({"calculations": [{"op": "SUM", "column": "http.route"}]}, "http.route"),
    ],
)
def test_a_bad_op_or_column_is_a_400_naming_it(loaded, spec, named):
    waggle, _, _ = loaded
    response = waggle.query(spec)
    assert response.status_code == 400, response.text[:300]
    assert named in response.json()["error"]
