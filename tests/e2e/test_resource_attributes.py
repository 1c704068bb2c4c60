"""Resource attributes waggle adds (`[resource]`, `WAGGLE_RESOURCE_ATTRIBUTES`): real
OpenTelemetry SDK spans (OTLP/HTTP protobuf and JSON, OTLP/gRPC), logs and metrics arrive at the
Honeycomb stand-in and in the local store with them; the app's own values are kept unless
`resource.override` is on; X-Ray segments pass byte-for-byte.
"""

import socket

import pytest

from helpers import new_trace_id, post_otlp, otlp_trace_request, wait_for, xray_datagram, xray_segment, new_xray_trace_id
from honeycomb_standin import HoneycombStandIn

KEY = "hcaik_01waggleresourcekey000000"


@pytest.fixture
def standin():
    server = HoneycombStandIn(KEY)
    yield server
    server.stop()


def start(waggle_factory, standin, resource, env=None):
    config = {
        "resource": resource,
        "destinations": {"honeycomb": {"api_key": KEY, "endpoint": standin.url, "batch_timeout": "50ms"}},
    }
    waggle = waggle_factory(config, env=env)
    waggle.secrets.append(KEY)
    return waggle


def sdk_spans(waggle, service, resource_extra, exporters):
    """One span per exporter (named after it) from the real SDK; returns {name: trace id hex}."""
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    sent = {}
    for name, exporter in exporters:
        provider = TracerProvider(resource=Resource.create({"service.name": service, **resource_extra}))
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        with provider.get_tracer("resource-e2e").start_as_current_span(name) as span:
            sent[name] = format(span.get_span_context().trace_id, "032x")
        provider.shutdown()
    return sent


def exporters(waggle):
    from opentelemetry.exporter.otlp.json.http.trace_exporter import OTLPSpanExporter as JsonExporter
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as ProtobufExporter

    return [
        ("http-protobuf", ProtobufExporter(endpoint=waggle.http_url + "/v1/traces")),
        ("http-json", JsonExporter(endpoint=waggle.http_url + "/v1/traces")),
        ("grpc", GrpcExporter(endpoint=waggle.grpc_target, insecure=True)),
    ]


def standin_resources(standin, names):
    """{span name: resource attributes} at the stand-in, once every name has arrived."""

    def arrived():
        found = {span.name: resource for resource, _, span in standin.spans()}
        if all(name in found for name in names):
            return found

    return wait_for(arrived, what=f"spans {names} at the Honeycomb stand-in")


def stored_resource(waggle, trace_id):
    return waggle.wait_for_spans(trace_id, 1).popitem()[1]["resource"]


def test_attributes_reach_honeycomb_and_the_store_over_every_otlp_transport(waggle_factory, standin):
    waggle = start(
        waggle_factory,
        standin,
        {"attributes": {"deployment": {"environment": {"name": "prod"}}, "team": "core"}},
        env={"WAGGLE_RESOURCE_ATTRIBUTES": "cloud.region=eu-west-1, note=a%2Cb%3Dc%20d"},
    )
    sent = sdk_spans(waggle, "resource-e2e", {}, exporters(waggle))
    expected = {
        "deployment.environment.name": "prod",
        "team": "core",
        "cloud.region": "eu-west-1",
        "note": "a,b=c d",
        "service.name": "resource-e2e",
    }
    at_standin = standin_resources(standin, list(sent))
    for name, trace_id in sent.items():
        assert {k: at_standin[name].get(k) for k in expected} == expected, name
        stored = stored_resource(waggle, trace_id)
        assert {k: stored.get(k) for k in expected} == expected, name


def test_logs_and_metrics_get_the_attributes(waggle_factory, standin):
    import logging

    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
    from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
    from opentelemetry.sdk.resources import Resource

    waggle = start(waggle_factory, standin, {"attributes": {"deployment.environment.name": "prod"}})
    resource = Resource.create({"service.name": "resource-logs"})
    logger_provider = LoggerProvider(resource=resource)
    logger_provider.add_log_record_processor(SimpleLogRecordProcessor(OTLPLogExporter(endpoint=waggle.http_url + "/v1/logs")))
    logger = logging.getLogger("resource-e2e-logs")
    logger.propagate = False
    handler = LoggingHandler(level=logging.INFO, logger_provider=logger_provider)
    logger.addHandler(handler)
    try:
        logger.warning("resource attributes on a log")
    finally:
        logger.removeHandler(handler)
        logger_provider.shutdown()
    reader = PeriodicExportingMetricReader(
        OTLPMetricExporter(endpoint=waggle.http_url + "/v1/metrics"), export_interval_millis=3_600_000
    )
    meter_provider = MeterProvider(resource=resource, metric_readers=[reader])
    meter_provider.get_meter("resource-e2e").create_counter("resource.requests").add(1)
    meter_provider.force_flush()
    meter_provider.shutdown()

    logs = wait_for(lambda: standin.log_records(), what="the log record at the stand-in")
    assert logs[0][0]["deployment.environment.name"] == "prod"
    metrics = wait_for(
        lambda: [r for r, m in standin.metrics() if m.name == "resource.requests"], what="the metric at the stand-in"
    )
    assert metrics[0]["deployment.environment.name"] == "prod"
    stored = wait_for(lambda: waggle.logs(service="resource-logs"), what="the log record in the store")
    assert stored[0]["resource"]["deployment.environment.name"] == "prod"


@pytest.mark.parametrize("override, expected", [(False, "dev"), (True, "prod")])
def test_the_apps_own_value_is_kept_unless_override_is_on(waggle_factory, standin, override, expected):
    waggle = start(
        waggle_factory, standin, {"override": override, "attributes": {"deployment.environment.name": "prod"}}
    )
    sent = sdk_spans(waggle, "resource-own", {"deployment.environment.name": "dev"}, exporters(waggle)[:2])
    at_standin = standin_resources(standin, list(sent))
    for name, trace_id in sent.items():
        assert at_standin[name]["deployment.environment.name"] == expected, name
        assert stored_resource(waggle, trace_id)["deployment.environment.name"] == expected, name


def test_a_malformed_variable_stops_waggle_with_its_name(waggle_factory, standin):
    with pytest.raises(AssertionError) as failure:
        start(waggle_factory, standin, {}, env={"WAGGLE_RESOURCE_ATTRIBUTES": "team=core,oops"})
    assert "WAGGLE_RESOURCE_ATTRIBUTES" in str(failure.value) and "oops" in str(failure.value)
    waggle_factory.started.clear()


def test_malformed_protobuf_is_still_refused_and_waggle_keeps_serving(waggle_factory, standin):
    waggle = start(waggle_factory, standin, {"attributes": {"deployment.environment.name": "prod"}})
    for body in (b"\xff\xff\xff", b"\x0a\x05\x0a"):
        response = post_otlp(waggle, "/v1/traces", body)
        assert response.status_code == 400, response.text
    trace_id = new_trace_id()
    assert post_otlp(waggle, "/v1/traces", otlp_trace_request("after-bad", trace_id=trace_id).SerializeToString()).status_code == 200
    assert stored_resource(waggle, trace_id)["deployment.environment.name"] == "prod"


def test_xray_segments_are_forwarded_untouched(waggle_factory, standin):
    waggle = start(waggle_factory, standin, {"attributes": {"deployment.environment.name": "prod"}})
    trace_id = new_xray_trace_id()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.sendto(xray_datagram(xray_segment(name="xray-untouched", trace_id=trace_id)), waggle.udp_address)
    spans = wait_for(
        lambda: [(r, s) for r, _, s in standin.spans() if s.name == "xray-untouched"], what="the segment at the stand-in"
    )
    assert "deployment.environment.name" not in spans[0][0]
