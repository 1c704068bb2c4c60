"""The CloudWatch Logs destination against moto (the AWS API emulator) and a throttling fake.

- The real OpenTelemetry SDK's logging pipeline (LoggingHandler → BatchLogRecordProcessor →
  OTLPLogExporter) sends through waggle; GetLogEvents on moto shows every message, in order, in
  the group and stream the templates name, with the record's trace and span ids; the group
  waggle created has the configured retention and tags.
- The request log: the example Flask app's server spans become one access line each.
- A log group deleted while waggle runs is created again (with its retention) and the batch
  sent again.
- A fake upstream that throttles PutLogEvents twice: everything arrives once, nothing is lost.
- CloudWatch Logs down: the local store keeps receiving traces and logs.
- `/status` says why the destination is off (no log group, no credentials, no region).
"""

import json
import logging
import time
import uuid
import warnings
from collections import defaultdict
from datetime import datetime, timezone

import pytest
from helpers import otlp_env, otlp_trace_request, post_otlp, run_driver, wait_for
from moto_server import MotoServer
from throttling_logs_upstream import ThrottlingLogsUpstream

pytestmark = pytest.mark.timeout(120)

DESTINATION = "cloudwatch_logs"
HOST = "e2e-host"
# Generous: the lane sends within a second, but the machine is shared.
CLOUDWATCH_TIMEOUT = 30.0


@pytest.fixture(scope="module")
def moto():
    server = MotoServer().start()
    yield server
    server.stop()


def cloudwatch_config(**cloudwatch):
    """waggle config: X-Ray off (it would call the real AWS), CloudWatch Logs as given, quick retries."""
    settings = {
        "log_group": "/waggle/{service.name}",
        "log_stream": "{host.name}/{date}",
        "batch_timeout": "200ms",
        "retry": {"initial_interval": "100ms", "max_interval": "1s"},
    }
    settings.update(cloudwatch)
    return {"destinations": {"xray": {"enabled": False}, DESTINATION: settings}}


def unique_service(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def utc_date(unix_ms):
    return datetime.fromtimestamp(unix_ms / 1000, tz=timezone.utc).strftime("%Y-%m-%d")


def log_events(logs, group, stream):
    """Every event of a stream, oldest first ([] while the group or stream does not exist)."""
    events, token = [], None
    while True:
        arguments = {"logGroupName": group, "logStreamName": stream, "startFromHead": True}
        if token:
            arguments["nextToken"] = token
        try:
            page = logs.get_log_events(**arguments)
        except logs.exceptions.ResourceNotFoundException:
            return []
        events.extend(page["events"])
        if not page["events"] or page.get("nextForwardToken") in (None, token):
            return events
        token = page["nextForwardToken"]


def destination_status(waggle):
    return next(d for d in waggle.get_json("/status")["destinations"] if d["name"] == DESTINATION)


def info_lines(waggle, message_prefix):
    return [
        record["fields"]
        for record in waggle.records_at("INFO")
        if str(record.get("fields", {}).get("message", "")).startswith(message_prefix)
    ]


# ---- the OpenTelemetry SDK's logging pipeline, in this process ------------------------------


class OtelLogging:
    """A Python logger whose records go out through the real OTel SDK to an OTLP/HTTP endpoint.

    The providers are local (not the global ones), so each test gets its own. A filter notes
    each record's `created`, from which the SDK takes the record's timestamp.
    """

    def __init__(self, endpoint, service):
        from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
        from opentelemetry.sdk._logs import LoggerProvider
        from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            from opentelemetry.sdk._logs import LoggingHandler

        resource = Resource.create({"service.name": service, "host.name": HOST})
        self.exporter = OTLPLogExporter(endpoint=endpoint + "/v1/logs", timeout=10)
        self.provider = LoggerProvider(resource=resource)
        # Exported on force_flush, as one request: the test controls when.
        self.provider.add_log_record_processor(BatchLogRecordProcessor(self.exporter, schedule_delay_millis=60_000))
        self.tracer_provider = TracerProvider(resource=resource)
        self.tracer = self.tracer_provider.get_tracer("cloudwatch-e2e")
        self.created = []
        self.logger = logging.getLogger(f"cloudwatch-e2e.{service}")
        self.logger.setLevel(logging.INFO)
        self.logger.propagate = False
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            self.handler = LoggingHandler(level=logging.INFO, logger_provider=self.provider)
        self.handler.addFilter(self._note_created)
        self.logger.addHandler(self.handler)

    def _note_created(self, record):
        self.created.append((record.getMessage(), int(record.created * 1e9) // 1_000_000))
        return True

    def flush(self):
        assert self.provider.force_flush(timeout_millis=15_000), "the OTel SDK did not flush its logs"

    def close(self):
        self.logger.removeHandler(self.handler)
        self.provider.shutdown()
        self.tracer_provider.shutdown()


def test_otel_sdk_logs_arrive_in_order_in_the_templated_group_and_stream(waggle_factory, moto):
    service = unique_service("orders")
    waggle = waggle_factory(
        cloudwatch_config(retention_days=7, tags={"team": "e2e", "app": service}), env=moto.aws_env()
    )
    status = destination_status(waggle)
    assert status["enabled"] is True, status
    assert "/waggle/{service.name}" in status["reason"] and "{host.name}/{date}" in status["reason"], status

    app = OtelLogging(waggle.http_url, service)
    try:
        for index in range(12):
            app.logger.info("message %03d", index)
        with app.tracer.start_as_current_span("checkout") as span:
            app.logger.warning("message %03d", 12)
            context = span.get_span_context()
        for index in range(13, 25):
            app.logger.info("message %03d", index, extra={"order.index": index})
        app.flush()
    finally:
        app.close()
    sent = [message for message, _ in app.created]
    assert sent == [f"message {index:03d}" for index in range(25)]

    group = f"/waggle/{service}"
    expected_streams = defaultdict(list)
    for message, unix_ms in app.created:
        expected_streams[f"{HOST}/{utc_date(unix_ms)}"].append((message, unix_ms))

    logs = moto.client("logs")

    def every_stream_complete():
        found = {stream: log_events(logs, group, stream) for stream in expected_streams}
        if all(len(found[stream]) == len(expected) for stream, expected in expected_streams.items()):
            return found

    found = wait_for(every_stream_complete, CLOUDWATCH_TIMEOUT, what=f"{len(sent)} events in {group}")
    stored = [event for stream in sorted(found) for event in found[stream]]
    bodies = [json.loads(event["message"])["body"] for event in stored]
    assert bodies == sent, "CloudWatch Logs does not hold every message in order"
    for stream, expected in expected_streams.items():
        assert [event["timestamp"] for event in found[stream]] == [unix_ms for _, unix_ms in expected], stream

    messages = [json.loads(event["message"]) for event in stored]
    in_span = messages[12]
    assert in_span["body"] == "message 012"
    assert in_span["trace_id"] == format(context.trace_id, "032x")
    assert in_span["span_id"] == format(context.span_id, "016x")
    assert in_span["severity_text"] == "WARN" and in_span["severity_number"] == 13
    for message in messages[:12] + messages[13:]:
        assert "trace_id" not in message and "span_id" not in message, message
        assert message["severity_text"] == "INFO" and message["severity_number"] == 9
    for message in messages:
        assert message["resource"]["service.name"] == service
        assert message["resource"]["host.name"] == HOST
        assert message["scope"]["name"] == f"cloudwatch-e2e.{service}"
    assert messages[20]["attributes"]["order.index"] == 20

    described = logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"]
    assert [g["logGroupName"] for g in described] == [group]
    assert described[0].get("retentionInDays") == 7
    assert logs.list_tags_log_group(logGroupName=group)["tags"] == {"team": "e2e", "app": service}

    lines = wait_for(
        lambda: info_lines(waggle, "Successfully sent batch of"), what="the lane's INFO line for the batch"
    )
    assert any(line.get("log_group") == group and line.get("destination") == DESTINATION for line in lines), lines
    assert waggle.counter("waggle_destination_sent_items_total", destination=DESTINATION, signal="logs") == len(sent)
    assert waggle.counter("waggle_destination_failed_items_total", destination=DESTINATION) == 0
    assert destination_status(waggle)["last_success"]


def test_request_log_has_one_line_per_server_span_of_the_flask_app(waggle_factory, moto):
    service = unique_service("backend-flask")
    waggle = waggle_factory(
        cloudwatch_config(request_log={"enabled": True, "log_stream": "requests"}), env=moto.aws_env()
    )
    assert set(destination_status(waggle)["signals"]) == {"logs", "traces"}

    env = otlp_env("http/protobuf", None, waggle.addresses["otlp_http"], waggle.addresses["otlp_grpc"], service)
    env["OTEL_RESOURCE_ATTRIBUTES"] = f"host.name={HOST}"
    report = run_driver(env, "--requests", "3", "--notifications", "1")
    assert [response["status"] for response in report["responses"]] == [200] * 4

    server_spans = {span["span_id"]: span for span in report["spans"] if span["kind"] == "server"}
    assert len(server_spans) == 4, [(s["name"], s["kind"]) for s in report["spans"]]
    group = f"/waggle/{service}"
    logs = moto.client("logs")
    events = wait_for(
        lambda: (lambda found: found if len(found) >= len(server_spans) else None)(log_events(logs, group, "requests")),
        CLOUDWATCH_TIMEOUT,
        what="one request-log line per server span",
    )
    assert len(events) == len(server_spans), events
    lines = [json.loads(event["message"]) for event in events]
    for line in lines:
        span = server_spans[line["span_id"]]
        assert line["trace_id"] == span["trace_id"]
        assert line["method"] == "GET"
        assert line["route"] == span["attributes"]["http.route"]
        assert line["status"] == 200
        assert line["duration_ms"] >= 0
    assert sorted(line["route"] for line in lines) == ["/api/activities/home"] * 3 + ["/api/activities/notifications"]

    # The app's own log records (its access lines included) went to the log stream, in the same group.
    emitted = report["logs"]
    by_stream = defaultdict(list)
    for record in emitted:
        by_stream[f"{HOST}/{utc_date(record['time_unix_nano'] // 1_000_000)}"].append(record["body"])

    def app_logs():
        found = {stream: log_events(logs, group, stream) for stream in by_stream}
        if all(len(found[stream]) == len(bodies) for stream, bodies in by_stream.items()):
            return found

    found = wait_for(app_logs, CLOUDWATCH_TIMEOUT, what="the app's log records in CloudWatch Logs")
    for stream, bodies in by_stream.items():
        assert sorted(json.loads(event["message"])["body"] for event in found[stream]) == sorted(bodies)


def otlp_logs_request_of(service, bodies):
    """One ExportLogsServiceRequest with a record per body, a millisecond apart, in order."""
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

    request = ExportLogsServiceRequest()
    resource_logs = request.resource_logs.add()
    resource_logs.resource.attributes.append(KeyValue(key="service.name", value=AnyValue(string_value=service)))
    records = resource_logs.scope_logs.add().log_records
    start = time.time_ns() - len(bodies) * 1_000_000
    for index, body in enumerate(bodies):
        record = records.add()
        record.time_unix_nano = start + index * 1_000_000
        record.body.string_value = body
    return request


def test_throttled_twice_then_delivered_without_loss(waggle_factory):
    bodies = [f"throttled line {index}" for index in range(50)]
    with ThrottlingLogsUpstream(throttle=2) as upstream:
        env = {
            "AWS_ENDPOINT_URL_CLOUDWATCH_LOGS": upstream.url,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_REGION": "us-east-1",
        }
        config = cloudwatch_config(log_group="/waggle/throttled", log_stream="s", message_format="raw")
        waggle = waggle_factory(config, env=env)
        response = post_otlp(waggle, "/v1/logs", otlp_logs_request_of("throttled", bodies).SerializeToString())
        assert response.status_code == 200, response.text

        wait_for(lambda: upstream.accepted_puts >= 1, CLOUDWATCH_TIMEOUT, what="the batch accepted after throttling")
        wait_for(
            lambda: waggle.counter("waggle_destination_sent_items_total", destination=DESTINATION) == len(bodies),
            what="the lane to count the batch as sent",
        )
        assert upstream.messages() == bodies, "lost, duplicated or reordered events"
        assert upstream.throttled == 2
        assert upstream.operations() == ["CreateLogStream", "PutLogEvents", "PutLogEvents", "PutLogEvents"]
        assert {service for _, service in upstream.calls} == {"logs"}, "requests must be SigV4-signed for logs"

    assert waggle.counter("waggle_destination_retries_total", destination=DESTINATION) == 2
    assert waggle.counter("waggle_destination_failed_items_total", destination=DESTINATION) == 0
    assert waggle.counter("waggle_destination_dropped_items_total", destination=DESTINATION) == 0
    retry_warnings = [
        record["fields"]
        for record in waggle.records_at("WARN")
        if record.get("fields", {}).get("message") == "send failed; will retry"
    ]
    assert retry_warnings and "ThrottlingException" in retry_warnings[0]["error"], retry_warnings


def test_a_log_group_deleted_while_running_is_created_again(waggle_factory, moto):
    service = unique_service("deleted")
    waggle = waggle_factory(cloudwatch_config(log_stream="app", retention_days=3), env=moto.aws_env())
    logs = moto.client("logs")
    group = f"/waggle/{service}"
    for body in ("before the deletion", "after the deletion"):
        response = post_otlp(waggle, "/v1/logs", otlp_logs_request_of(service, [body]).SerializeToString())
        assert response.status_code == 200, response.text
        events = wait_for(lambda: log_events(logs, group, "app"), CLOUDWATCH_TIMEOUT, what=f"{body!r} in {group}")
        assert [json.loads(event["message"])["body"] for event in events] == [body]
        if body == "before the deletion":
            logs.delete_log_group(logGroupName=group)
    assert logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"][0].get("retentionInDays") == 3
    gone = [
        record["fields"]
        for record in waggle.records_at("WARN")
        if record["fields"].get("message") == "log group or stream is gone; creating it again"
    ]
    assert gone and gone[0]["log_group"] == group, gone
    assert waggle.counter("waggle_destination_sent_items_total", destination=DESTINATION, signal="logs") == 2
    assert waggle.counter("waggle_destination_failed_items_total", destination=DESTINATION) == 0


def test_other_lanes_keep_delivering_while_cloudwatch_is_down(waggle_factory):
    service = unique_service("down")
    moto = MotoServer().start()
    try:
        waggle = waggle_factory(
            {**cloudwatch_config(), "pipeline": {"shutdown_timeout": "2s"}},
            env=moto.aws_env(),
        )
        logs = moto.client("logs")
        before = otlp_logs_request_of(service, ["before the outage"])
        sent_ms = before.resource_logs[0].scope_logs[0].log_records[0].time_unix_nano // 1_000_000
        # No host.name in the resource: the stream template renders "unknown".
        group, stream = f"/waggle/{service}", f"unknown/{utc_date(sent_ms)}"
        assert post_otlp(waggle, "/v1/logs", before.SerializeToString()).status_code == 200
        wait_for(lambda: log_events(logs, group, stream), CLOUDWATCH_TIMEOUT, what="the first event in moto")
    finally:
        moto.stop()
    assert not moto.running()

    retries_before = waggle.counter("waggle_destination_retries_total", destination=DESTINATION)
    bodies = [f"during the outage {index}" for index in range(5)]
    trace_ids = []
    for index, body in enumerate(bodies):
        logs_response = post_otlp(waggle, "/v1/logs", otlp_logs_request_of(service, [body]).SerializeToString())
        assert logs_response.status_code == 200, logs_response.text
        trace_id = uuid.uuid4().hex
        trace_request = otlp_trace_request(service=service, trace_id=trace_id, name=f"outage-{index}")
        traces_response = post_otlp(waggle, "/v1/traces", trace_request.SerializeToString())
        assert traces_response.status_code == 200, traces_response.text
        trace_ids.append(trace_id)

    for trace_id in trace_ids:
        waggle.wait_for_spans(trace_id, 1)
    wait_for(
        lambda: set(bodies) <= {log["body"] for log in waggle.logs(service=service)},
        what="every log record in the local store",
    )
    # The CloudWatch lane is failing and retrying all the while.
    wait_for(
        lambda: waggle.counter("waggle_destination_retries_total", destination=DESTINATION) > retries_before,
        CLOUDWATCH_TIMEOUT,
        what="the CloudWatch Logs lane to retry",
    )
    status = destination_status(waggle)
    assert status["enabled"] is True and status["last_error"], status
    local = next(d for d in waggle.get_json("/status")["destinations"] if d["name"] == "local")
    assert local["last_success"], local


@pytest.mark.parametrize(
    "case",
    [
        pytest.param(
            {
                "config": {},
                "env": {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1"},
                "reason": "no log group configured (destinations.cloudwatch_logs.log_group)",
            },
            id="no-log-group",
        ),
        pytest.param(
            {"config": {"log_group": "/waggle/x"}, "env": {"AWS_REGION": "us-east-1"}, "reason": "no AWS credentials"},
            id="no-credentials",
        ),
        pytest.param(
            {
                "config": {"log_group": "/waggle/x", "local_mode": True},
                "env": {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"},
                "reason": "no AWS region",
            },
            id="no-region",
        ),
    ],
)
def test_status_says_why_the_destination_is_off(waggle_factory, case):
    config = {"destinations": {"xray": {"enabled": False}, DESTINATION: case["config"]}}
    waggle = waggle_factory(config, env=case["env"])
    status = destination_status(waggle)
    assert status["enabled"] is False, status
    assert status["reason"].startswith(case["reason"]), status
    assert status["signals"] == ["logs"]
    startup = info_lines(waggle, f"{DESTINATION}: off")
    assert startup and case["reason"] in startup[0]["message"], startup
    # Logs still flow to the local store.
    response = post_otlp(waggle, "/v1/logs", otlp_logs_request_of("off-case", ["still stored"]).SerializeToString())
    assert response.status_code == 200
    wait_for(lambda: waggle.logs(service="off-case"), what="the record in the local store")


def test_an_invalid_template_stops_start_up_naming_the_key(waggle_factory):
    env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1"}
    with pytest.raises(AssertionError) as failure:
        waggle_factory(cloudwatch_config(log_group="/waggle/{service.name"), env=env)
    assert "destinations.cloudwatch_logs.log_group" in str(failure.value)
