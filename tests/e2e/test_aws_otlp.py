"""AWS's own OTLP endpoints, against a loopback stand-in that checks every request's SigV4
signature with botocore (service `xray` / `logs`, region, payload hash) and decodes the OTLP
with the official protobuf package: `destinations.xray.protocol = "otlp"` and
`destinations.cloudwatch_logs.protocol = "otlp"`, and the Transaction Search check.
"""

import pytest
from botocore.credentials import Credentials

from aws_otlp_standin import AwsOtlpStandIn, aws_error, partial_traces
from helpers import (
    new_span_id,
    new_trace_id,
    otlp_env,
    otlp_logs_request,
    otlp_trace_request,
    parse_xray_datagrams,
    post_otlp,
    run_driver,
    wait_for,
    xray_entities,
    xray_to_otlp_trace_id,
)
from honeycomb_standin import attributes

pytestmark = pytest.mark.timeout(120)

REGION = "eu-west-1"
ACCESS_KEY, SECRET_KEY = "AKIDWAGGLEOTLPTEST", "waggle-otlp-test-secret"
CREDENTIALS = Credentials(ACCESS_KEY, SECRET_KEY)
FAST_RETRY = {"initial_interval": "200ms", "max_interval": "1s", "max_elapsed_time": "1m", "jitter": 0.0}


def aws_env(secret=SECRET_KEY):
    return {"AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": secret, "AWS_REGION": REGION}


@pytest.fixture
def xray():
    standin = AwsOtlpStandIn(CREDENTIALS, "xray", REGION)
    yield standin
    standin.stop()


@pytest.fixture
def logs():
    standin = AwsOtlpStandIn(CREDENTIALS, "logs", REGION)
    yield standin
    standin.stop()


def start_xray_otlp(waggle_factory, xray, secret=SECRET_KEY, **extra):
    config = {
        "protocol": "otlp",
        "endpoint": xray.url,
        "telemetry": False,
        "batch_timeout": "100ms",
        "batch_max_items": 20_000,
        "retry": FAST_RETRY,
        **extra,
    }
    waggle = waggle_factory({"destinations": {"xray": config}}, env=aws_env(secret))
    waggle.secrets.append(SECRET_KEY)
    return waggle


def send_trace(waggle, spans=1):
    trace_id = new_trace_id()
    request = otlp_trace_request(trace_id=trace_id)
    template = request.resource_spans[0].scope_spans[0].spans[0]
    for index in range(1, spans):
        span = request.resource_spans[0].scope_spans[0].spans.add()
        span.CopyFrom(template)
        span.span_id = bytes.fromhex(new_span_id())
        span.name = f"span-{index}"
    response = post_otlp(waggle, "/v1/traces", request.SerializeToString())
    assert response.status_code == 200, response.text
    return trace_id


def xray_status(waggle):
    return next(d for d in waggle.get_json("/status")["destinations"] if d["name"] == "xray")


# ---- traces: what arrives, signed ------------------------------------------------------------


def test_opentelemetry_spans_arrive_unchanged_and_signed_for_xray(waggle_factory, xray):
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.trace import Status, StatusCode

    waggle = start_xray_otlp(waggle_factory, xray)
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "otlp-e2e"}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=waggle.http_url + "/v1/traces")))
    tracer = provider.get_tracer("home.activities", "1.2.3")
    with tracer.start_as_current_span("GET /api/activities/home") as root:
        root.set_attribute("http.response.status_code", 200)
        with tracer.start_as_current_span("home-activities-mock-data") as child:
            child.set_attribute("app.result_length", 3)
            child.add_event("cache miss", {"key": "home"})
            child.set_status(Status(StatusCode.ERROR, "mock failure"))
    provider.force_flush()
    provider.shutdown()

    expected = encode_spans(memory.get_finished_spans())
    expected_spans = {s.span_id: s for rs in expected.resource_spans for ss in rs.scope_spans for s in ss.spans}
    wait_for(lambda: len(xray.spans()) >= 2, what="2 spans at the X-Ray OTLP stand-in")
    received = {span.span_id: span for _, _, span in xray.spans()}
    assert set(received) == set(expected_spans)
    for span_id, span in received.items():
        assert span.SerializeToString(deterministic=True) == expected_spans[span_id].SerializeToString(deterministic=True)
    request = xray.attempts("/v1/traces")[0]
    assert request.signature == "valid"
    assert f"/{REGION}/xray/aws4_request" in request.headers["authorization"]
    assert request.headers["content-encoding"] == "gzip"


def test_the_example_apps_spans_and_xray_sdk_segments_arrive_as_spans(waggle_factory, xray):
    waggle = start_xray_otlp(waggle_factory, xray)
    host, port = waggle.udp_address
    env = otlp_env("http/protobuf", None, waggle.addresses["otlp_http"], waggle.addresses["otlp_grpc"])
    env["AWS_XRAY_DAEMON_ADDRESS"] = f"{host}:{port}"
    report = run_driver(env, "--requests", "2")
    otel = {span["span_id"]: span for span in report["spans"]}
    entities = {e["id"]: e for e in xray_entities(parse_xray_datagrams(report["xray_datagrams"]))}
    assert otel and entities

    def everything():
        spans = {span.span_id.hex(): (resource, span) for resource, _, span in xray.spans()}
        return spans if set(otel) | set(entities) <= set(spans) else None

    spans = wait_for(everything, timeout=30, what="every OTel span and X-Ray SDK (sub)segment at the stand-in")
    for span_id, expected in otel.items():
        resource, span = spans[span_id]
        assert span.trace_id.hex() == expected["trace_id"]
        assert span.parent_span_id.hex() == (expected["parent_span_id"] or "")
        assert span.name == expected["name"]
        assert attributes(span.attributes) == expected["attributes"], expected["name"]
    for span_id, entity in entities.items():
        resource, span = spans[span_id]
        assert span.trace_id.hex() == xray_to_otlp_trace_id(entity["trace_id"])
        assert span.parent_span_id.hex() == (entity["parent_id"] or ""), entity["name"]
        assert span.name == entity["name"]
        assert resource["service.name"] == "backend-flask"
        request = entity["document"].get("http", {}).get("request", {})
        if "method" in request:
            assert attributes(span.attributes)["http.method"] == request["method"], entity["name"]
    assert any("method" in e["document"].get("http", {}).get("request", {}) for e in entities.values())
    assert all(r.signature == "valid" for r in xray.attempts("/v1/traces"))
    assert waggle.counter("waggle_destination_failed_items_total", destination="xray") == 0


def test_a_request_over_10000_spans_is_split(waggle_factory, xray):
    waggle = start_xray_otlp(waggle_factory, xray)
    trace_id = send_trace(waggle, spans=10_500)
    wait_for(lambda: len(xray.spans()) >= 10_500, what="10,500 spans at the stand-in")
    attempts = xray.attempts("/v1/traces")
    sizes = [sum(len(ss.spans) for rs in a.message.resource_spans for ss in rs.scope_spans) for a in attempts]
    assert len(attempts) >= 2 and all(a.status == 200 for a in attempts), [(a.status, s) for a, s in zip(attempts, sizes)]
    assert max(sizes) <= 10_000, sizes
    span_ids = [span.span_id for _, _, span in xray.spans()]
    assert len(span_ids) == len(set(span_ids)) == 10_500
    assert {span.trace_id.hex() for _, _, span in xray.spans()} == {trace_id}


def test_throttling_then_success_delivers_once(waggle_factory, xray):
    waggle = start_xray_otlp(waggle_factory, xray)
    xray.answer_next(aws_error(429, "ThrottlingException", "Rate exceeded", **{"Retry-After": "1"}))
    trace_id = send_trace(waggle)
    wait_for(lambda: xray.spans(), what="the span after the 429")
    attempts = xray.attempts("/v1/traces")
    assert [a.status for a in attempts] == [429, 200]
    assert attempts[1].at - attempts[0].at >= 0.95
    assert [span.trace_id.hex() for _, _, span in xray.spans()] == [trace_id]
    wait_for(lambda: waggle.counter("waggle_destination_sent_items_total", destination="xray") == 1, what="1 sent")


def test_a_403_is_on_status_and_the_span_is_kept(waggle_factory, xray):
    waggle = start_xray_otlp(waggle_factory, xray, secret="not-the-right-secret")
    send_trace(waggle)
    problem = wait_for(lambda: xray_status(waggle).get("problem"), what="the 403 on /status")
    assert "HTTP 403" in problem and "signature" in problem.lower(), problem
    assert xray.attempts("/v1/traces")[0].signature.startswith("invalid")
    # Refused credentials are waited out (issue 13): the span is kept for a retry, not failed.
    assert waggle.counter("waggle_destination_failed_items_total", destination="xray") == 0
    assert "not-the-right-secret" not in waggle.get("/status").text


def test_partial_success_is_counted_and_logged(waggle_factory, xray):
    waggle = start_xray_otlp(waggle_factory, xray)
    xray.answer_next(partial_traces(2, "2 spans were more than 14 days old"))
    send_trace(waggle, spans=5)
    wait_for(
        lambda: waggle.counter("waggle_destination_failed_items_total", destination="xray", reason="partial_success") == 2,
        what="2 spans counted as refused",
    )
    assert waggle.counter("waggle_destination_sent_items_total", destination="xray") == 3
    warnings = [r["fields"] for r in waggle.records_at("WARN") if "partial success" in r["fields"]["message"]]
    assert warnings and "14 days old" in warnings[0]["detail"], warnings


# ---- which protocol the account takes ------------------------------------------------------


@pytest.mark.parametrize(
    "destination, configured, level, advice",
    [
        ("CloudWatchLogs", "segments", "WARN", 'set destinations.xray.protocol = "otlp"'),
        ("CloudWatchLogs", "otlp", "INFO", 'destinations.xray.protocol = "otlp" is right'),
        ("XRay", "otlp", "WARN", 'set destinations.xray.protocol = "segments"'),
        ("XRay", "segments", "INFO", 'destinations.xray.protocol = "segments" is right'),
    ],
)
def test_startup_says_whether_transaction_search_is_on(waggle_factory, xray, destination, configured, level, advice):
    xray.trace_destination = destination
    waggle = start_xray_otlp(waggle_factory, xray, protocol=configured)

    def said():
        return [r for r in waggle.records_at(level) if "Transaction Search" in r["fields"]["message"]]

    line = wait_for(said, what="the Transaction Search line")[0]["fields"]["message"]
    assert advice in line, line
    assert ("Transaction Search is on" in line) == (destination == "CloudWatchLogs"), line
    asked = xray.attempts("/GetTraceSegmentDestination")
    assert len(asked) == 1 and asked[0].signature == "valid"


# ---- logs: OTLP to CloudWatch Logs ----------------------------------------------------------


def start_logs_otlp(waggle_factory, logs):
    config = {
        "xray": {"enabled": False},
        "cloudwatch_logs": {
            "protocol": "otlp",
            "endpoint": logs.url,
            "log_group": "/waggle/{service.name}",
            "log_stream": "otlp-stream",
            "batch_timeout": "100ms",
            "retry": FAST_RETRY,
        },
    }
    waggle = waggle_factory({"destinations": config}, env=aws_env())
    waggle.secrets.append(SECRET_KEY)
    return waggle


def test_log_records_arrive_as_otlp_in_their_group_and_stream_made_first(waggle_factory, logs):
    waggle = start_logs_otlp(waggle_factory, logs)
    for service, body in [("shop", "paid"), ("cart", "added"), ("shop", "shipped")]:
        response = post_otlp(waggle, "/v1/logs", otlp_logs_request(service=service, body=body).SerializeToString())
        assert response.status_code == 200, response.text
    wait_for(lambda: len(logs.log_records()) >= 3, what="3 log records at the CloudWatch Logs OTLP stand-in")
    arrived = sorted((group, stream, record.body.string_value) for group, stream, _, record in logs.log_records())
    assert arrived == [
        ("/waggle/cart", "otlp-stream", "added"),
        ("/waggle/shop", "otlp-stream", "paid"),
        ("/waggle/shop", "otlp-stream", "shipped"),
    ]
    assert logs.groups == {"/waggle/cart": {"otlp-stream"}, "/waggle/shop": {"otlp-stream"}}
    attempts = logs.attempts("/v1/logs")
    assert all(a.status == 200 and a.signature == "valid" for a in attempts), [(a.status, a.signature) for a in attempts]
    assert all(f"/{REGION}/logs/aws4_request" in a.headers["authorization"] for a in attempts)
    signed = attempts[0].headers["authorization"].split("SignedHeaders=")[1].split(",")[0].split(";")
    assert {"x-aws-log-group", "x-aws-log-stream"} <= set(signed), signed
    assert waggle.counter("waggle_destination_sent_items_total", destination="cloudwatch_logs") == 3
