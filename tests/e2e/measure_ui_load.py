"""Measures how long each web UI view takes to show its data with 100,000 traces stored.

    WAGGLE_BIN=$PWD/target/release/waggle .venv/bin/python tests/e2e/measure_ui_load.py [traces]

Starts a waggle on loopback, stores the traces (one request of 1,000 root spans at a time, each
its own trace, three routes), then loads each view in headless Chromium from a blank page and
prints the time until the view's data is on screen (median of 5 loads). Not a pytest test.
"""

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from browser import Browser  # noqa: E402
from helpers import WaggleFactory, post_otlp, wait_for  # noqa: E402

PER_REQUEST = 1000
ROUTES = ["/api/activities/home", "/api/activities/notifications", "/api/users"]


def request_of(batch, now):
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
    from opentelemetry.proto.trace.v1.trace_pb2 import Span

    request = ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add()
    resource_spans.resource.attributes.append(KeyValue(key="service.name", value=AnyValue(string_value="load")))
    spans = resource_spans.scope_spans.add()
    for i in range(PER_REQUEST):
        n = batch * PER_REQUEST + i
        span = spans.spans.add()
        span.trace_id = n.to_bytes(8, "big") + os.urandom(8)
        span.span_id = os.urandom(8)
        span.name = "GET " + ROUTES[n % 3]
        span.kind = Span.SPAN_KIND_SERVER
        span.start_time_unix_nano = now - (n % 600) * 1_000_000_000
        span.end_time_unix_nano = span.start_time_unix_nano + (1 + n % 250) * 1_000_000
        span.attributes.append(KeyValue(key="http.route", value=AnyValue(string_value=ROUTES[n % 3])))
    return request.SerializeToString()


def main():
    traces = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    factory = WaggleFactory(Path(tempfile.mkdtemp(prefix="waggle-ui-load-")))
    try:
        waggle = factory({"destinations": {"local": {"max_size": "1GiB"}}})
        now = time.time_ns()
        for batch in range(traces // PER_REQUEST):
            response = post_otlp(waggle, "/v1/traces", request_of(batch, now))
            assert response.status_code == 200, response.text
        wait_for(lambda: waggle.get_json("/status")["local_store"]["traces"] >= traces, timeout=120, what="the traces stored")
        print(f"{waggle.get_json('/status')['local_store']['traces']} traces stored")
        browser = Browser(waggle.admin_url)
        views = {
            "#/": "#destinations .destination",
            "#/traces": "tr.trace-row",
            "#/query": "#summary-table tbody tr",
            "#/logs": "#view h1",
            "#/services": ".svc-map .node",
        }
        try:
            for fragment, ready in views.items():
                times = []
                for _ in range(5):
                    browser.driver.get("about:blank")
                    started = time.monotonic()
                    browser.driver.get(f"{waggle.admin_url}/{fragment}")
                    browser.wait_for(ready, fragment, timeout=60)
                    times.append(time.monotonic() - started)
                print(f"{fragment:12} median {statistics.median(times) * 1000:7.0f} ms   max {max(times) * 1000:7.0f} ms")
            assert not browser.console_errors()
        finally:
            browser.close()
    finally:
        factory.teardown()


if __name__ == "__main__":
    main()
