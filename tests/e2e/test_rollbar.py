"""The Rollbar destination against a loopback stand-in that checks the token and validates
every item against Rollbar's documented schema: exceptions from an app instrumented only with
OpenTelemetry, the real `rollbar` SDK relayed through waggle with waggle's token, a foreign
token refused, throttling retried without loss, a rejected token reported.
"""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from helpers import REPO, wait_for
from rollbar_standin import Answer, RollbarStandIn, schema_problems

pytestmark = pytest.mark.timeout(120)

TOKEN = "5d1f0e2c3b4a69788796a5b4c3d2e1f0"
FOREIGN_TOKEN = "0f1e2d3c4b5a69788796a5b4c3d2e1f5"
HERE = Path(__file__).resolve().parent
OTEL_APP = HERE / "otel_only_flask_app.py"
ROLLBAR_APP = HERE / "rollbar_flask_app.py"
CRASH = "/api/activities/crash"


@pytest.fixture
def standin():
    server = RollbarStandIn(TOKEN)
    yield server
    server.stop()


def start(waggle_factory, standin, token=TOKEN, **extra):
    config = {
        "access_token": token,
        "endpoint": standin.endpoint,
        "batch_timeout": "50ms",
        "retry": {"initial_interval": "100ms", "max_interval": "1s", "jitter": 0.0},
    }
    config.update(extra)
    waggle = waggle_factory({"destinations": {"rollbar": config}})
    waggle.secrets.append(token)
    return waggle


def scrubbed_env(extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "AWS_", "ROLLBAR_", "WAGGLE_"))}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def run(app, env, *args):
    done = subprocess.run(
        [sys.executable, str(app), *args], env=scrubbed_env(env), cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads(done.stdout.strip().splitlines()[-1]), done.stderr


def line_of(path, text):
    lines = Path(path).read_text().splitlines()
    return next(number for number, line in enumerate(lines, 1) if text in line)


def settle(standin, seconds=1.0):
    """Give waggle time to send anything more it would wrongly send."""
    time.sleep(seconds)
    return standin.items()


# ---- the stand-in refuses what Rollbar refuses ------------------------------------------------


def test_the_standin_refuses_a_bad_token_and_invalid_items(standin):
    good = {"data": {"environment": "e2e", "level": "error", "body": {"message": {"body": "hi"}}}}
    post = lambda item, token=TOKEN: requests.post(  # noqa: E731
        standin.endpoint + "item/", json=item, headers={"X-Rollbar-Access-Token": token}, timeout=5
    )
    assert post(good).status_code == 200
    assert post(good, token="wrong").status_code == 401
    bad_frame = {"data": {"environment": "e2e", "body": {"trace": {"frames": [{"lineno": 3}], "exception": {"class": "E"}}}}}
    for item in (
        {"data": {"body": {"message": {"body": "hi"}}}},
        {"data": {"environment": "e2e", "level": "fatal", "body": {"message": {"body": "hi"}}}},
        {"data": {"environment": "e2e", "body": {"message": {"body": "hi"}, "trace": {}}}},
        bad_frame,
        {"data": {"environment": "e2e", "body": {"trace": {"frames": [], "exception": {"message": "no class"}}}}},
    ):
        assert schema_problems(item), item
        assert post(item).status_code == 422, item
    assert len(standin.items()) == 1


# ---- exceptions recorded by OpenTelemetry ------------------------------------------------------


def test_a_crashing_route_of_an_otel_only_app_is_one_rollbar_item(waggle_factory, standin):
    waggle = start(waggle_factory, standin)
    env = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": waggle.http_url,
        "OTEL_SERVICE_NAME": "backend-flask",
        "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment.name=e2e,service.version=1.4.2",
    }
    report, _ = run(OTEL_APP, env, "/api/activities/home", CRASH)
    assert report["statuses"] == [200, 500]
    crash_span = next(s for s in report["spans"] if s["kind"] == "SERVER" and "crash" in s["name"])

    items = wait_for(standin.items, what="an item at the Rollbar stand-in")
    items = settle(standin)
    assert len(items) == 1, items
    item = items[0]
    trace = item["body"]["trace"]
    assert trace["exception"] == {"class": "RuntimeError", "message": "mock failure in the crash route"}
    raised = trace["frames"][-1]
    assert raised["filename"] == str(OTEL_APP)
    assert raised["lineno"] == line_of(OTEL_APP, 'raise RuntimeError("mock failure in the crash route")')
    assert raised["method"] == "data_crash"
    assert item["environment"] == "e2e"
    assert item["code_version"] == "1.4.2"
    assert item["level"] == "error"
    assert (item["language"], item["framework"]) == ("python", "flask")
    assert item["request"]["method"] == "GET"
    assert item["request"]["url"].endswith(CRASH)
    assert item["request"]["route"] == CRASH
    assert item["request"]["status_code"] == 500
    assert item["custom"]["trace_id"] == crash_span["trace_id"]
    assert item["custom"]["span_id"] == crash_span["span_id"]
    assert abs(item["timestamp"] - time.time()) < 120
    assert not standin.invalid()
    # The same trace is in the local store, and the exception in its errors query.
    spans = waggle.wait_for_spans(crash_span["trace_id"], 1)
    assert crash_span["span_id"] in spans
    errors = waggle.get_json("/api/errors", service="backend-flask")["errors"]
    assert [(e["exception_type"], e["count"]) for e in errors] == [("RuntimeError", 1)]
    assert errors[0]["trace_id"] == crash_span["trace_id"]
    assert errors[0]["message"] == "mock failure in the crash route"
    assert (errors[0]["top_frame"]["lineno"], errors[0]["top_frame"]["method"]) == (raised["lineno"], "data_crash")


def test_a_span_event_and_the_log_record_of_one_exception_are_one_item(waggle_factory, standin):
    import logging

    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
    from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    waggle = start(waggle_factory, standin)
    resource = Resource.create({"service.name": "rollbar-e2e"})
    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=waggle.http_url + "/v1/traces")))
    logger_provider = LoggerProvider(resource=resource)
    logger_provider.add_log_record_processor(BatchLogRecordProcessor(OTLPLogExporter(endpoint=waggle.http_url + "/v1/logs")))
    logger = logging.getLogger("rollbar-e2e")
    logger.propagate = False
    handler = LoggingHandler(level=logging.INFO, logger_provider=logger_provider)
    logger.addHandler(handler)
    try:
        with tracer_provider.get_tracer("checkout").start_as_current_span("checkout") as span:
            try:
                raise KeyError("cart-7")
            except KeyError as error:
                span.record_exception(error)
                logger.exception("checkout failed")
            trace_id = format(span.get_span_context().trace_id, "032x")
        logger_provider.force_flush()
        tracer_provider.force_flush()
    finally:
        logger.removeHandler(handler)
        logger_provider.shutdown()
        tracer_provider.shutdown()

    wait_for(standin.items, what="an item at the Rollbar stand-in")
    items = settle(standin, 1.5)
    assert [item["body"]["trace"]["exception"]["class"] for item in items] == ["KeyError"], items
    assert items[0]["custom"]["trace_id"] == trace_id


# ---- the Rollbar SDK through waggle's relay --------------------------------------------------


def rollbar_env(waggle, token="waggle"):
    return {
        "ROLLBAR_ACCESS_TOKEN": token,
        "ROLLBAR_ENDPOINT": waggle.http_url + "/api/1/",
        "ROLLBAR_ENVIRONMENT": "e2e",
    }


def test_the_rollbar_sdk_reaches_rollbar_through_waggle_with_waggles_token(waggle_factory, standin):
    waggle = start(waggle_factory, standin)
    report, _ = run(ROLLBAR_APP, rollbar_env(waggle), "message:deploy finished", "exc_info:bad cart id", CRASH)
    assert report["statuses"] == [500]

    items = wait_for(lambda: len(standin.items()) >= 3 and standin.items(), what="3 items at the stand-in")
    assert len(settle(standin, 0.5)) == 3
    assert not standin.invalid()
    assert all(attempt.headers["x-rollbar-access-token"] == TOKEN for attempt in standin.attempts())
    assert all("access_token" not in attempt.item for attempt in standin.attempts())
    message = next(item for item in items if "message" in item["body"])
    assert (message["body"]["message"]["body"], message["level"]) == ("deploy finished", "warning")
    assert message["environment"] == "e2e"
    traces = {item["body"]["trace"]["exception"]["class"]: item for item in items if "trace" in item["body"]}
    exc_info = traces["ValueError"]
    assert exc_info["body"]["trace"]["exception"]["message"] == "bad cart id"
    assert exc_info["body"]["trace"]["frames"][-1]["lineno"] == report["raised"]["exc_info"]
    crash = traces["RuntimeError"]
    assert crash["body"]["trace"]["frames"][-1]["lineno"] == report["raised"]["crash"]
    assert crash["request"]["url"].endswith(CRASH)
    assert crash["framework"] == "flask"


def test_an_item_with_another_projects_token_is_refused_and_never_relayed(waggle_factory, standin):
    waggle = start(waggle_factory, standin)
    waggle.secrets.append(FOREIGN_TOKEN)
    run(ROLLBAR_APP, rollbar_env(waggle, FOREIGN_TOKEN), "message:not for this project")
    answer = requests.post(
        waggle.http_url + "/api/1/item/",
        json={"data": {"environment": "e2e", "body": {"message": {"body": "x"}}}},
        headers={"X-Rollbar-Access-Token": FOREIGN_TOKEN},
        timeout=10,
    )
    assert answer.status_code == 403
    assert answer.json()["err"] == 1
    assert settle(standin) == []
    assert standin.attempts() == []


def test_nothing_is_lost_while_rollbar_answers_429_then_recovers(waggle_factory, standin):
    waggle = start(waggle_factory, standin)
    throttled = Answer(429, {"X-Rate-Limit-Remaining-Seconds": "1", "Content-Type": "application/json"}, b'{"err": 1}')
    standin.answer_next(throttled, throttled, throttled)
    actions = [f"message:item {n}" for n in range(5)]
    run(ROLLBAR_APP, rollbar_env(waggle), *actions)

    wait_for(lambda: len(standin.items()) >= 5, timeout=30, what="5 items after the throttling")
    bodies = sorted(item["body"]["message"]["body"] for item in settle(standin, 0.5))
    assert bodies == [f"item {n}" for n in range(5)]
    assert [a.status for a in standin.attempts()].count(429) == 3
    assert waggle.counter("waggle_destination_sent_items_total", destination="rollbar") == 5


def test_a_rejected_token_is_on_status_and_logged_without_the_token(waggle_factory, standin):
    wrong = "ffffffffffffffffffffffffffffffff"
    waggle = start(waggle_factory, standin, token=wrong)
    run(ROLLBAR_APP, rollbar_env(waggle), "message:hello")

    def problem():
        rollbar = next(d for d in waggle.get_json("/status")["destinations"] if d["name"] == "rollbar")
        return rollbar["problem"]

    assert wait_for(problem, what="the token problem on /status") == "Rollbar rejected the access token (HTTP 401)"
    assert [a.status for a in standin.attempts()] == [401]
    assert waggle.counter("waggle_destination_failed_items_total", destination="rollbar", reason="unauthorized") == 1
    warnings = [r for r in waggle.records_at("WARN") if "Rollbar rejected the access token" in json.dumps(r)]
    assert warnings, "a WARN line names the problem"
    assert wrong not in waggle.get("/status").text


def test_without_a_token_rollbar_is_off_and_says_why(waggle):
    rollbar = next(d for d in waggle.get_json("/status")["destinations"] if d["name"] == "rollbar")
    assert (rollbar["enabled"], rollbar["reason"]) == (False, "ROLLBAR_ACCESS_TOKEN not set")
    assert any("rollbar: off — ROLLBAR_ACCESS_TOKEN not set" in r["fields"]["message"] for r in waggle.records())
    item = {"data": {"environment": "e2e", "body": {"message": {"body": "x"}}}}
    assert requests.post(waggle.http_url + "/api/1/item/", json=item, timeout=10).status_code == 404


def test_with_a_token_status_names_the_endpoint_and_the_relay(waggle_factory, standin):
    waggle = start(waggle_factory, standin)
    rollbar = next(d for d in waggle.get_json("/status")["destinations"] if d["name"] == "rollbar")
    assert rollbar["enabled"] is True
    assert rollbar["reason"] == f"items to {standin.endpoint}item/; the Rollbar SDK relay is on"
    assert TOKEN not in waggle.get("/status").text
