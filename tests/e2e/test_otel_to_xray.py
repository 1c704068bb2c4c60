"""OpenTelemetry traces into AWS X-Ray: a Flask app instrumented only with the OTel SDK, as in
the typical user's setup, exports to waggle; moto's BatchGetTraces shows the shape the X-Ray SDK
would have given it, and accepts every document (no UnprocessedTraceSegments).
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import REPO, wait_for
from moto import MotoServer

pytestmark = pytest.mark.timeout(120)

APP = Path(__file__).resolve().parent / "otel_only_flask_app.py"


@pytest.fixture
def moto(tmp_path):
    server = MotoServer(tmp_path)
    yield server
    server.stop()


def run_app(waggle, *paths):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "AWS_"))}
    env.update(
        {
            "OTEL_EXPORTER_OTLP_ENDPOINT": waggle.http_url,
            "OTEL_SERVICE_NAME": "backend-flask",
            "PYTHONUNBUFFERED": "1",
        }
    )
    done = subprocess.run(
        [sys.executable, str(APP), *paths], env=env, cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def xray_trace_id(otel_trace_id):
    return f"1-{otel_trace_id[:8]}-{otel_trace_id[8:]}"


@pytest.fixture
def exported(waggle_factory, moto):
    config = {"destinations": {"xray": {"batch_timeout": "100ms"}}}
    waggle = waggle_factory(config, env=moto.env())
    report = run_app(waggle, "/api/activities/home", "/api/activities/crash")
    assert report["statuses"] == [200, 500]
    trace_ids = {xray_trace_id(span["trace_id"]) for span in report["spans"]}
    span_ids = {span["span_id"] for span in report["spans"]}
    stored = wait_for(
        lambda: (found := moto.xray_documents(trace_ids)) and span_ids <= set(found) and found,
        timeout=30,
        what="every span as an X-Ray document in moto",
    )
    documents = {segment_id: docs[0] for segment_id, docs in stored.items()}
    return waggle, report, documents


def span_named(report, name):
    return next(span for span in report["spans"] if span["name"] == name)


def test_the_request_becomes_a_segment_with_method_url_and_status(exported):
    _, report, documents = exported
    request_span = next(s for s in report["spans"] if s["kind"] == "SERVER" and "home" in s["name"])
    segment = documents[request_span["span_id"]]
    assert segment.get("type") != "subsegment"
    assert segment["name"] == "backend-flask"
    assert segment["trace_id"] == xray_trace_id(request_span["trace_id"])
    assert segment["http"]["request"]["method"] == "GET"
    assert segment["http"]["request"]["url"].endswith("/api/activities/home")
    assert segment["http"]["response"]["status"] == 200
    assert "fault" not in segment and "error" not in segment


def test_the_custom_span_is_a_subsegment_with_its_two_attributes(exported):
    _, report, documents = exported
    custom = span_named(report, "home-activities-mock-data")
    subsegment = documents[custom["span_id"]]
    assert subsegment["type"] == "subsegment"
    assert subsegment["name"] == "home-activities-mock-data"
    assert subsegment["parent_id"] == custom["parent_id"]
    metadata = subsegment["metadata"]["default"]
    assert metadata["app.now"] == custom["attributes"]["app.now"]
    assert metadata["app.result_length"] == 3


def test_the_raising_route_is_a_fault_with_a_cause(exported):
    _, report, documents = exported
    crash_span = next(s for s in report["spans"] if s["kind"] == "SERVER" and "crash" in s["name"])
    segment = documents[crash_span["span_id"]]
    assert segment["fault"] is True
    assert segment["http"]["response"]["status"] == 500
    exception = segment["cause"]["exceptions"][0]
    assert exception["type"] == "RuntimeError"
    assert "mock failure in the crash route" in exception["message"]
    assert any(frame.get("label") == "data_crash" for frame in exception.get("stack", [])), exception


def test_moto_accepted_every_document(exported):
    waggle, report, _ = exported
    wait_for(
        lambda: waggle.counter("waggle_destination_sent_items_total", destination="xray") >= len(report["spans"]),
        what="every span counted as sent",
    )
    assert waggle.counter("waggle_destination_failed_items_total", destination="xray") == 0
    assert not [r for r in waggle.records() if "Unprocessed" in r["fields"].get("message", "")]
