"""The web UI at the admin port, in headless Chromium, against the release binary fed by the
example Flask app (OpenTelemetry SDK and aws-xray-sdk). What a person would see is checked
against what the app emitted and what waggle's APIs answer, never against constants; every
view's console must stay free of errors, and each test saves a screenshot
(target/e2e-artifacts/ui/, or $WAGGLE_E2E_ARTIFACTS/ui/).
"""

import json
import math
import time
import urllib.parse

import pytest

from browser import Browser
from helpers import (
    WaggleFactory,
    new_trace_id,
    otlp_env,
    otlp_trace_request,
    post_otlp,
    run_driver,
    send_sentinel_trace,
    wait_for,
    xray_to_otlp_trace_id,
)
from honeycomb_standin import HoneycombStandIn

pytestmark = pytest.mark.timeout(120)

HOME_REQUESTS = 3
NOTIFICATION_REQUESTS = 2
SERVICE = "backend-flask"


class App:
    """One waggle fed by the example app, and what the app says it emitted."""

    def __init__(self, waggle, report):
        self.waggle = waggle
        self.report = report
        self.spans = report["spans"]

    def spans_named(self, name):
        return [span for span in self.spans if span["name"] == name]

    def root_of(self, span):
        by_id = {s["span_id"]: s for s in self.spans}
        while span.get("parent_span_id") in by_id:
            span = by_id[span["parent_span_id"]]
        return span

    def xray_trace_ids(self):
        ids = []
        for datagram in self.report["xray_datagrams"]:
            body = json.loads(datagram.partition("\n")[2])
            if body["trace_id"] not in ids:
                ids.append(body["trace_id"])
        return ids


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    factory = WaggleFactory(tmp_path_factory.mktemp("ui"))
    waggle = factory()
    try:
        host, port = waggle.udp_address
        env = otlp_env("http/protobuf", None, waggle.addresses["otlp_http"], waggle.addresses["otlp_grpc"], SERVICE)
        env["AWS_XRAY_DAEMON_ADDRESS"] = f"{host}:{port}"
        report = run_driver(env, "--requests", str(HOME_REQUESTS), "--notifications", str(NOTIFICATION_REQUESTS))
        result = App(waggle, report)
        for span in result.spans_named("home-activities-mock-data"):
            waggle.wait_for_spans(span["trace_id"], sum(1 for s in result.spans if s["trace_id"] == span["trace_id"]))
        yield result
    finally:
        factory.teardown()


@pytest.fixture
def browser(app, request):
    session = Browser(app.waggle.admin_url)
    try:
        yield session
        errors = session.console_errors()
        assert not errors, f"browser console errors: {errors}"
    finally:
        try:
            session.screenshot(request.node.name)
        finally:
            session.close()


def query_fragment(spec):
    return "#/query?" + urllib.parse.urlencode({"q": json.dumps(spec)})


# ---- Home ------------------------------------------------------------------------------------


def test_home_shows_the_local_store_on_and_cloud_destinations_off_with_their_reasons(app, browser):
    browser.open("#/")
    status = app.waggle.get_json("/status")
    cards = browser.wait_for("#destinations .destination", "a card per destination", count=len(status["destinations"]))
    shown = {card.get_attribute("data-destination"): card for card in cards}
    for destination in status["destinations"]:
        card = shown[destination["name"]]
        badge = card.find_element("css selector", ".badge").text
        reason = card.find_element("css selector", ".reason").text
        if destination["enabled"]:
            assert (badge, reason) == ("ON", f"On: {destination['reason']}"), destination["name"]
        else:
            assert (badge, reason) == ("OFF", f"Off: {destination['reason']}"), destination["name"]
    assert status["destinations"][0]["name"] == "local" and status["destinations"][0]["enabled"]
    assert "HONEYCOMB_API_KEY" in shown["honeycomb"].text
    traces_sent = status["destinations"][0]["items"]["traces"]["sent"]
    assert traces_sent > 0
    browser.wait(
        lambda _: any(
            row.text.split()[:2] == ["traces", str(traces_sent)]
            for row in browser.find('[data-destination="local"] tbody tr')
        ),
        f"the local store's {traces_sent} traces sent",
    )
    setup = browser.find("#app-env")[0].text
    assert f"OTEL_EXPORTER_OTLP_ENDPOINT=http://{app.waggle.addresses['otlp_http']}" in setup
    assert f"AWS_XRAY_DAEMON_ADDRESS={app.waggle.addresses['xray_udp']}" in setup
    receivers = browser.wait_for("#receivers tbody tr", "the receivers' counts")
    assert any("OTLP/HTTP" in row.text and "traces" in row.text for row in receivers)
    assert browser.find("#headline")[0].text.startswith("Data is arriving")


def test_home_says_why_a_failing_destination_fails_and_what_to_fix(tmp_path, request):
    standin = HoneycombStandIn("hcaik_01theonekeythestandinaccepts0")
    request.addfinalizer(standin.stop)
    factory = WaggleFactory(tmp_path)
    request.addfinalizer(factory.teardown)
    wrong_key = "hcaik_01wrongkeywrongkey000000"
    waggle = factory({"destinations": {"honeycomb": {"api_key": wrong_key, "endpoint": standin.url, "batch_timeout": "50ms"}}})
    waggle.secrets.append(wrong_key)
    send_sentinel_trace(waggle)
    session = Browser(waggle.admin_url)
    try:
        session.open("#/")
        problem = session.wait_for('[data-destination="honeycomb"] p.problem', "Honeycomb's problem")[0].text
        expected = next(d for d in waggle.get_json("/status")["destinations"] if d["name"] == "honeycomb")["problem"]
        assert problem.startswith(expected) and "Check HONEYCOMB_API_KEY" in problem, problem
        assert session.find('[data-destination="honeycomb"] .badge')[0].text == "PROBLEM"
        assert wrong_key not in session.text()
        assert not session.console_errors()
    finally:
        session.screenshot("home-failing-destination")
        session.close()


# ---- Traces and one trace ---------------------------------------------------------------------


def test_the_trace_list_shows_the_home_trace(app, browser):
    home = app.spans_named("home-activities-mock-data")[0]
    root = app.root_of(home)
    browser.open("#/traces")
    row = browser.wait_for(f'tr[data-trace-id="{home["trace_id"]}"]', "the /api/activities/home trace")[0]
    assert row.find_element("css selector", "td a").text == root["name"]
    # The driver's HTTP client span is the root; the trace is the one that fetched the home feed.
    assert root["attributes"].get("http.url", "").endswith("/api/activities/home"), root
    spans_in_trace = sum(1 for span in app.spans if span["trace_id"] == home["trace_id"])
    assert row.find_elements("css selector", "td")[3].text == str(spans_in_trace)
    services_in_trace = {span["resource"].get("service.name") for span in app.spans if span["trace_id"] == home["trace_id"]}
    assert set(row.find_element("css selector", "td.services").text.split(", ")) == services_in_trace
    assert row.find_elements("css selector", ".durbar"), "a duration bar"


def test_the_trace_search_filters_by_span_name(app, browser):
    notifications = [s for s in app.spans if s["attributes"].get("http.route") == "/api/activities/notifications"]
    assert len(notifications) == NOTIFICATION_REQUESTS and len({s["name"] for s in notifications}) == 1
    browser.open("#/traces?" + urllib.parse.urlencode({"name": notifications[0]["name"]}))
    rows = browser.wait_for("tr.trace-row", "the notifications traces", count=NOTIFICATION_REQUESTS)
    assert {row.get_attribute("data-trace-id") for row in rows} == {s["trace_id"] for s in notifications}


def test_the_waterfall_shows_the_mock_data_span_with_its_attributes(app, browser):
    home = app.spans_named("home-activities-mock-data")[0]
    browser.open(f"#/trace/{home['trace_id']}")
    rows = browser.wait_for(".wf-row[data-span-id]", "the waterfall", count=sum(1 for s in app.spans if s["trace_id"] == home["trace_id"]))
    row = next(r for r in rows if r.get_attribute("data-span-id") == home["span_id"])
    assert row.find_element("css selector", ".wf-span-name").text == "home-activities-mock-data"
    assert row.find_elements("css selector", ".wf-bar"), "a waterfall bar"
    assert int(row.get_attribute("aria-level")) > 1, "nested under its parent"
    row.click()
    details = browser.wait(lambda _: (d := browser.find("#span-details")) and "home-activities-mock-data" in d[0].text and d[0], "the span's details")
    cells = [td.text for td in details.find_elements("css selector", "table.kv td")]
    for key in ("app.now", "app.result_length"):
        assert key in cells, f"{key} not in the details: {cells}"
        assert cells[cells.index(key) + 1] == str(home["attributes"][key]), key
    assert browser.find(".wf-bar.critical"), "the critical path is outlined"


def test_the_trace_view_shows_the_trace_logs_beside_the_waterfall(app, browser):
    home = app.spans_named("home-activities-mock-data")[0]
    logged = [log for log in app.report["logs"] if log.get("trace_id") == home["trace_id"]]
    assert logged, "the app logs inside its traces"
    browser.open(f"#/trace/{home['trace_id']}")
    rows = browser.wait_for("#trace-logs tbody tr", "the trace's log records", count=len(logged))
    shown = " ".join(row.text for row in rows)
    for log in logged:
        assert str(log["body"]) in shown


def test_an_xray_sdk_trace_shows_its_subsegments(app, browser):
    xray_id = app.xray_trace_ids()[0]
    documents = [json.loads(d.partition("\n")[2]) for d in app.report["xray_datagrams"]]
    segment = next(d for d in documents if d["trace_id"] == xray_id and d.get("type") != "subsegment")
    subsegments = []

    def walk(entity, depth):
        for child in entity.get("subsegments", []):
            subsegments.append((child, depth + 1))
            walk(child, depth + 1)

    walk(segment, 1)
    assert subsegments, "the X-Ray SDK sent subsegments"
    browser.open(f"#/trace/{xray_id}")
    rows = browser.wait_for(".wf-row[data-span-id]", "the X-Ray segment and its subsegments", count=1 + len(subsegments))
    by_id = {row.get_attribute("data-span-id"): row for row in rows}
    assert by_id[segment["id"]].find_element("css selector", ".wf-span-name").text == segment["name"]
    for subsegment, depth in subsegments:
        row = by_id[subsegment["id"]]
        assert row.find_element("css selector", ".wf-span-name").text == subsegment["name"]
        assert int(row.get_attribute("aria-level")) == depth
    assert xray_to_otlp_trace_id(xray_id) in browser.text()


HONEYCOMB_KEY = "hcaik_01theonekeythestandinaccepts0"


@pytest.fixture(scope="module")
def honeycomb(tmp_path_factory):
    """A waggle sending to the Honeycomb stand-in, once its key's slugs are known."""
    standin = HoneycombStandIn(HONEYCOMB_KEY)
    factory = WaggleFactory(tmp_path_factory.mktemp("honeycomb"))
    try:
        waggle = factory({"destinations": {"honeycomb": {"api_key": HONEYCOMB_KEY, "endpoint": standin.url, "batch_timeout": "50ms"}}})
        waggle.secrets.append(HONEYCOMB_KEY)
        wait_for(lambda: waggle.get_json("/api/honeycomb")["state"] == "ready", what="the key's slugs from /1/auth")
        yield waggle, standin
    finally:
        try:
            factory.teardown()
        finally:
            standin.stop()


def honeycomb_browser(waggle, request):
    session = Browser(waggle.admin_url)
    request.addfinalizer(session.close)
    request.addfinalizer(lambda: session.screenshot(request.node.name))
    return session


def test_a_trace_links_to_honeycomb_with_the_slugs_of_the_key(honeycomb, request):
    waggle, standin = honeycomb
    trace_id = send_sentinel_trace(waggle)
    spans = waggle.trace(trace_id)["spans"]
    start = min(int(span["start_time_unix_nano"]) for span in spans)
    end = max(int(span["end_time_unix_nano"]) for span in spans)
    team, environment = HoneycombStandIn.TEAM["slug"], HoneycombStandIn.ENVIRONMENT["slug"]
    expected = (
        f"https://ui.honeycomb.io/{team}/environments/{environment}/datasets/{spans[0]['service']}/trace?"
        + urllib.parse.urlencode({"trace_id": trace_id, "trace_start_ts": start // 10**9, "trace_end_ts": -(-end // 10**9)})
    )
    session = honeycomb_browser(waggle, request)
    session.open(f"#/trace/{trace_id}")
    link = session.wait_for("#open-in-honeycomb", "the Honeycomb link")[0]
    assert link.get_attribute("href") == expected
    assert HONEYCOMB_KEY not in session.driver.page_source
    assert len(standin.attempts("/1/auth")) == 1, "asked once at start-up, then cached"
    assert not session.console_errors()


def test_a_query_on_one_service_opens_in_its_honeycomb_dataset(honeycomb, request):
    waggle, _ = honeycomb
    spec = {"calculations": [{"op": "COUNT"}], "filters": [{"column": "service.name", "op": "=", "value": "sentinel"}], "time_range": 600}
    session = honeycomb_browser(waggle, request)
    session.open(query_fragment(spec))
    link = session.wait_for("#open-in-honeycomb", "the query template link")[0]
    team, environment = HoneycombStandIn.TEAM["slug"], HoneycombStandIn.ENVIRONMENT["slug"]
    base, query = link.get_attribute("href").split("?", 1)
    assert base == f"https://ui.honeycomb.io/{team}/environments/{environment}/datasets/sentinel"
    assert json.loads(urllib.parse.parse_qs(query)["query"][0]) == spec
    assert not session.console_errors()


def test_a_trace_has_no_honeycomb_link_when_honeycomb_is_off(app, browser):
    home = app.spans_named("home-activities-mock-data")[0]
    assert app.waggle.get_json("/api/honeycomb") == {"state": "off"}
    browser.open(f"#/trace/{home['trace_id']}")
    browser.wait_for(".wf-row[data-span-id]", "the waterfall")
    assert not browser.find("#open-in-honeycomb")


# ---- Query builder ----------------------------------------------------------------------------


def test_the_query_builder_p90_by_route_lists_the_routes_the_app_served(app, browser):
    spec = {"calculations": [{"op": "P90", "column": "duration_ms"}], "breakdowns": ["http.route"], "time_range": 3600}
    browser.open(query_fragment(spec))
    rows = browser.wait_for("#summary-table tbody tr", "the summary table")
    served = {s["attributes"]["http.route"] for s in app.spans if "http.route" in s["attributes"]}
    shown = {row.find_elements("css selector", "td")[0].text for row in rows}
    assert served <= shown, f"served {served}, shown {shown}"
    answer = app.waggle.query_json(spec)
    assert len(rows) == len(answer["results"])
    lines = browser.find(".line-chart .line-series")
    assert len(lines) == len(answer["results"]), "a line per group"
    assert json.loads(browser.find("#query-json")[0].get_attribute("value")) == spec, "the spec round-trips"


def test_the_query_builder_runs_what_is_built_in_the_form(app, browser):
    browser.open("#/query")
    browser.wait_for("#summary-table tbody tr", "the default query's table")
    group_by = browser.find("#group-by")[0]
    group_by.send_keys("http.route")
    browser.find("#run-query")[0].click()
    browser.wait(lambda driver: "http.route" in urllib.parse.unquote(driver.current_url), "the query in the address")
    header = browser.wait(lambda _: (th := browser.find("#summary-table thead th")) and th[0].text == "http.route" and th, "a http.route column")
    assert header[0].text == "http.route"
    spec = json.loads(urllib.parse.parse_qs(urllib.parse.urlsplit(browser.driver.current_url).fragment.split("?", 1)[1])["q"][0])
    assert spec["breakdowns"] == ["http.route"]


def test_pasted_query_json_replaces_the_query(app, browser):
    browser.open("#/query")
    browser.wait_for("#summary-table tbody tr", "the default query's table")
    spec = {"calculations": [{"op": "COUNT"}], "breakdowns": ["name"], "filters": [{"column": "service.name", "op": "=", "value": SERVICE}], "time_range": 600}
    browser.find("details.json-panel summary")[0].click()
    area = browser.find("#query-json")[0]
    area.clear()
    area.send_keys(json.dumps(spec))
    browser.find("#apply-json")[0].click()
    rows = browser.wait(lambda _: (th := browser.find("#summary-table thead th")) and th[0].text == "name" and browser.find("#summary-table tbody tr"), "the pasted query's table")
    expected = {row["data"]["name"] for row in app.waggle.query_json(spec)["results"]}
    assert {row.find_elements("css selector", "td")[0].text for row in rows} == expected


def route_counts(app, spec):
    return {row["data"]["http.route"]: row["data"]["COUNT"] for row in app.waggle.query_json(spec)["results"] if row["data"]["http.route"]}


def test_a_having_built_in_the_form_keeps_only_the_groups_that_meet_it(app, browser):
    spec = {"calculations": [{"op": "COUNT"}], "breakdowns": ["http.route"], "filters": [{"column": "http.route", "op": "exists"}], "time_range": 3600}
    counts = route_counts(app, spec)
    threshold = min(counts.values())
    kept = {route for route, count in counts.items() if count > threshold}
    assert kept and kept != set(counts), f"the app's routes must differ in count: {counts}"
    browser.open(query_fragment(spec))
    browser.wait_for("#summary-table tbody tr", "the summary table", count=len(counts))
    browser.find("#add-having")[0].click()
    having = browser.wait_for("#having .having", "a HAVING clause")[0]
    assert having.find_element("css selector", '[aria-label="having calculation"]').get_attribute("value") == json.dumps({"op": "COUNT"}, separators=(",", ":"))
    value = having.find_element("css selector", '[aria-label="having value"]')
    value.clear()
    value.send_keys(str(threshold))
    browser.find("#run-query")[0].click()
    browser.wait(lambda driver: "havings" in urllib.parse.unquote(driver.current_url), "the HAVING in the address")
    sent = json.loads(urllib.parse.parse_qs(urllib.parse.urlsplit(browser.driver.current_url).fragment.split("?", 1)[1])["q"][0])
    assert sent["havings"] == [{"calculate_op": "COUNT", "op": ">", "value": threshold}]
    rows = browser.wait(lambda _: (r := browser.find("#summary-table tbody tr")) and len(r) == len(kept) and r, "only the routes above the threshold")
    assert {row.find_elements("css selector", "td")[0].text for row in rows} == kept


def test_a_having_in_the_address_opens_in_the_form_and_in_the_json(app, browser):
    having = {"calculate_op": "P90", "column": "duration_ms", "op": ">=", "value": 0.5}
    spec = {"calculations": [{"op": "P90", "column": "duration_ms"}], "breakdowns": ["http.route"], "havings": [having], "time_range": 3600}
    browser.open(query_fragment(spec))
    clause = browser.wait_for("#having .having", "the HAVING clause")[0]
    assert clause.find_element("css selector", '[aria-label="having operator"]').get_attribute("value") == ">="
    assert clause.find_element("css selector", '[aria-label="having value"]').get_attribute("value") == "0.5"
    browser.wait_for("#summary-table tbody tr, .empty", "the query's answer")
    assert json.loads(browser.find("#query-json")[0].get_attribute("value")) == spec
    browser.find("#run-query")[0].click()
    browser.wait(lambda _: json.loads(browser.find("#query-json")[0].get_attribute("value")) == spec, "the same spec after running it from the form")


def test_a_heatmap_cell_lists_exactly_the_traces_with_a_span_in_it(app, browser):
    # `exists` is no equality: the cell's list must still honour it (X-Ray SDK segments of the
    # same service have no http.route and must not be listed).
    filters = [{"column": "service.name", "op": "=", "value": SERVICE}, {"column": "http.route", "op": "exists"}]
    spec = {"calculations": [{"op": "HEATMAP", "column": "duration_ms"}], "filters": filters, "time_range": 600}
    browser.open(query_fragment(spec))
    cells = browser.wait_for(".heatmap .heat-cell", "heatmap cells")
    busiest = max(cells, key=lambda cell: int(cell.get_attribute("data-count")))
    start, end = float(busiest.get_attribute("data-start")), float(busiest.get_attribute("data-end"))
    lower, upper = (float(busiest.get_attribute(f"data-{bound}") or "nan") for bound in ("lower", "upper"))

    def in_cell(span):
        duration = (span["end_time_unix_nano"] - span["start_time_unix_nano"]) / 1e6
        return (
            span["resource"].get("service.name") == SERVICE
            and "http.route" in span["attributes"]
            and start <= span["start_time_unix_nano"] / 1e9 < end
            and (math.isnan(lower) or lower <= duration)
            and (math.isnan(upper) or duration < upper)
        )

    expected = {span["trace_id"] for span in app.spans if in_cell(span)}
    assert expected and sum(1 for span in app.spans if in_cell(span)) == int(busiest.get_attribute("data-count"))
    busiest.click()
    rows = browser.wait_for("#cell-traces tbody tr", "the traces in the selected cell")
    assert {row.get_attribute("data-trace-id") for row in rows} == expected
    for row in rows:
        assert row.find_element("css selector", "a").get_attribute("href").endswith(f"#/trace/{row.get_attribute('data-trace-id')}")


# ---- Logs, service map, metrics ---------------------------------------------------------------


def test_the_logs_view_shows_the_app_records_and_links_to_their_trace(app, browser):
    logged = [log for log in app.report["logs"] if log.get("trace_id")]
    browser.open("#/logs?" + urllib.parse.urlencode({"service": SERVICE}))
    rows = browser.wait_for("#log-list tbody tr", "the app's log records", count=len(logged))
    bodies = [row.find_element("css selector", ".log-body").text for row in rows]
    for log in logged:
        assert str(log["body"]) in bodies
    browser.screenshot("logs")
    target = logged[0]
    link = next(a for a in browser.find("a.trace-link") if f"/trace/{target['trace_id']}?span={target['span_id']}" in a.get_attribute("href"))
    link.click()
    browser.wait(lambda driver: f"#/trace/{target['trace_id']}" in driver.current_url, "the trace's address")
    browser.wait_for(f'.wf-row[data-span-id="{target["span_id"]}"].selected', "the span that logged it, selected")


def test_the_service_map_shows_the_app(app, browser):
    browser.open("#/services")
    nodes = browser.wait_for(".svc-map .node", "service nodes")
    services = {node.get_attribute("data-service") for node in nodes}
    assert SERVICE in services, services


CALLER = "storefront"
CALLEE = "inventory"
CALLS = 5
FAILED_CALLS = 2


class Calls:
    """A waggle fed by two real OpenTelemetry SDK tracer providers: `storefront` calls
    `inventory` CALLS times, the parent context propagated as W3C `traceparent`;
    FAILED_CALLS of inventory's server spans end in error."""

    def __init__(self, waggle, callee_spans):
        self.waggle = waggle
        self.callee_spans = callee_spans

    def p90_ms(self):
        durations = sorted((span.end_time - span.start_time) / 1e6 for span in self.callee_spans)
        return durations[math.ceil(0.9 * len(durations)) - 1]


def send_calls(waggle):
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.trace import SpanKind, Status, StatusCode
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    def provider(service, memory):
        made = TracerProvider(resource=Resource.create({"service.name": service}))
        made.add_span_processor(SimpleSpanProcessor(memory))
        made.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=waggle.http_url + "/v1/traces")))
        return made

    caller_memory, callee_memory = InMemorySpanExporter(), InMemorySpanExporter()
    caller, callee = provider(CALLER, caller_memory), provider(CALLEE, callee_memory)
    propagator = TraceContextTextMapPropagator()
    for call in range(CALLS):
        with caller.get_tracer("shop").start_as_current_span("GET /cart", kind=SpanKind.SERVER):
            with caller.get_tracer("shop").start_as_current_span("GET inventory", kind=SpanKind.CLIENT):
                headers = {}
                propagator.inject(headers)
                context = propagator.extract(headers)
                with callee.get_tracer("stock").start_as_current_span("GET /stock", context=context, kind=SpanKind.SERVER) as served:
                    time.sleep(0.002 * (call + 1))
                    if call < FAILED_CALLS:
                        served.set_status(Status(StatusCode.ERROR, "out of stock"))
    for made in (caller, callee):
        made.force_flush()
        made.shutdown()
    callee_spans = callee_memory.get_finished_spans()
    assert len(callee_spans) == CALLS
    for span in callee_spans:
        assert span.parent is not None and span.parent.is_remote, "the callee's parent came from the caller"
        waggle.wait_for_spans(format(span.context.trace_id, "032x"), 3)
    return callee_spans


@pytest.fixture(scope="module")
def calls(tmp_path_factory):
    factory = WaggleFactory(tmp_path_factory.mktemp("calls"))
    try:
        waggle = factory()
        yield Calls(waggle, send_calls(waggle))
    finally:
        factory.teardown()


def test_the_dependencies_api_counts_the_calls_between_two_sdk_services(calls):
    body = calls.waggle.get_json("/jaeger/api/dependencies", endTs=str(int(time.time() * 1000)), lookback="600000")
    links = [(link["parent"], link["child"], link["callCount"], link["errorCount"]) for link in body["data"]]
    assert links == [(CALLER, CALLEE, CALLS, FAILED_CALLS)], body
    assert body["data"][0]["p90DurationMs"] == pytest.approx(calls.p90_ms(), abs=0.002)


def test_the_service_map_draws_the_call_with_its_figures(calls, request):
    session = Browser(calls.waggle.admin_url)
    try:
        session.open("#/services")
        edge = session.wait_for(f'.svc-map .svc-edge[data-from="{CALLER}"][data-to="{CALLEE}"]', "the call on the map")[0]
        nodes = {node.get_attribute("data-service") for node in session.find(".svc-map .node")}
        assert nodes == {CALLER, CALLEE}
        label = edge.find_element("css selector", ".edge-label").text
        assert f"{CALLS} calls" in label and f"{100 * FAILED_CALLS / CALLS:.1f}% errors" in label, label
        row = session.find(f'#service-edges tr[data-from="{CALLER}"][data-to="{CALLEE}"]')[0]
        assert row.find_element("css selector", ".calls").text == str(CALLS)
        assert row.find_element("css selector", ".error-rate").text == f"{100 * FAILED_CALLS / CALLS:.1f}%"
        shown_p90 = row.find_element("css selector", ".p90").text
        assert shown_p90.endswith(" ms") and float(shown_p90[:-3]) == pytest.approx(calls.p90_ms(), abs=0.06), shown_p90
        assert not session.console_errors()
    finally:
        session.screenshot(request.node.name)
        session.close()


def test_the_metrics_view_lists_and_charts_the_app_metrics(app, browser):
    stored = app.waggle.metrics_list()
    assert stored, "the app sent metrics"
    name = stored[0]["name"]
    browser.open("#/metrics")
    links = browser.wait_for("#metric-names a", "the metric names")
    assert name in {link.text for link in links}
    browser.open("#/metrics?" + urllib.parse.urlencode({"name": name}))
    browser.wait_for(".line-chart .line-series", "a chart of the metric")


# ---- keyboard, dark mode, live updates --------------------------------------------------------


def test_slash_focuses_the_search_and_enter_runs_it(app, browser):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    notifications = [s for s in app.spans if s["attributes"].get("http.route") == "/api/activities/notifications"]
    browser.open("#/traces")
    browser.wait_for("tr.trace-row", "the trace list")
    ActionChains(browser.driver).send_keys("/").perform()
    focused = browser.driver.switch_to.active_element
    assert focused.get_attribute("name") == "name", "the span-name field has the keyboard"
    focused.send_keys(notifications[0]["name"], Keys.ENTER)
    rows = browser.wait(lambda _: "name=" in browser.driver.current_url and (r := browser.find("tr.trace-row")) and len(r) == NOTIFICATION_REQUESTS and r, "the search's traces")
    assert {row.get_attribute("data-trace-id") for row in rows} == {s["trace_id"] for s in notifications}


def test_the_waterfall_is_walked_and_opened_with_the_keyboard(app, browser):
    from selenium.webdriver.common.keys import Keys

    home = app.spans_named("home-activities-mock-data")[0]
    browser.open(f"#/trace/{home['trace_id']}")
    rows = browser.wait_for(".wf-row[data-span-id]", "the waterfall", count=2)
    order = [row.get_attribute("data-span-id") for row in rows]
    rows[0].click()
    browser.driver.switch_to.active_element.send_keys(Keys.ARROW_DOWN)
    assert browser.driver.switch_to.active_element.get_attribute("data-span-id") == order[1]
    browser.driver.switch_to.active_element.send_keys(Keys.ENTER)
    second = next(span for span in app.spans if span["span_id"] == order[1])
    browser.wait_for(f'.wf-row[data-span-id="{order[1]}"].selected', "the second span selected")
    browser.wait(lambda _: second["name"] in browser.find("#span-details")[0].text, "the second span's details")
    browser.driver.switch_to.active_element.send_keys(Keys.ARROW_UP, Keys.ARROW_LEFT)
    root = browser.wait_for(f'.wf-row[data-span-id="{order[0]}"][aria-expanded="false"]', "the root collapsed")[0]
    assert not browser.find(f'.wf-row[data-span-id="{order[1]}"]'), "its child hidden"
    assert browser.driver.switch_to.active_element == root


def test_dark_mode_gives_a_dark_page(app, browser):
    browser.driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": [{"name": "prefers-color-scheme", "value": "dark"}]})
    browser.open("#/traces")
    browser.wait_for("tr.trace-row", "the trace list")

    def luminance(css_colour):
        red, green, blue = (int(part) for part in css_colour[css_colour.index("(") + 1 : css_colour.index(")")].split(",")[:3])
        return (0.2126 * red + 0.7152 * green + 0.0722 * blue) / 255

    style = "return getComputedStyle(arguments[0])[arguments[1]]"
    body = browser.find("body")[0]
    background = luminance(browser.driver.execute_script(style, body, "backgroundColor"))
    text = luminance(browser.driver.execute_script(style, body, "color"))
    assert background < 0.15 and text > 0.7, (background, text)


def test_a_new_trace_appears_in_the_open_list_without_a_reload(app, browser):
    browser.open("#/traces")
    browser.wait_for("tr.trace-row", "the trace list")
    browser.driver.execute_script("window.notReloaded = true")
    trace_id = new_trace_id()
    response = post_otlp(app.waggle, "/v1/traces", otlp_trace_request(service="late-arrival", trace_id=trace_id).SerializeToString())
    assert response.status_code == 200
    browser.wait_for(f'tr.trace-row[data-trace-id="{trace_id}"]', "the new trace", timeout=10)
    assert browser.driver.execute_script("return window.notReloaded === true"), "the page was not reloaded"


def test_an_unknown_view_says_so_without_errors(app, browser):
    browser.open("#/nowhere")
    browser.wait(lambda _: "No view called" in browser.text(), "a not-found message")


# ---- serving ----------------------------------------------------------------------------------


def test_the_page_is_served_at_the_admin_root_by_default(app):
    response = app.waggle.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in response.headers["content-security-policy"]
    script = app.waggle.get("/ui/main.js")
    assert (script.status_code, script.headers["content-type"].split(";")[0]) == (200, "text/javascript")


def test_admin_ui_false_turns_the_page_off_and_keeps_the_apis(tmp_path):
    factory = WaggleFactory(tmp_path)
    try:
        waggle = factory({"admin": {"ui": False}})
        assert waggle.get("/").status_code == 404
        assert waggle.get("/ui/main.js").status_code == 404
        assert waggle.get("/status").status_code == 200
        assert waggle.get("/api/traces").status_code == 200
    finally:
        factory.teardown()
