"""Cruddur's backend-flask, instrumented the way the bootcamp does it, pointed at waggle.

Telemetry is configured only through the environment, so the same code talks to waggle,
to an OpenTelemetry Collector or (through waggle) to Honeycomb:

    OTEL_EXPORTER_OTLP_ENDPOINT=http://waggle:4318   # or http://waggle:4317 with grpc
    OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf        # or http/json, or grpc
    OTEL_EXPORTER_OTLP_COMPRESSION=gzip              # optional
    OTEL_SERVICE_NAME=backend-flask
    AWS_XRAY_DAEMON_ADDRESS=waggle:2000              # optional: turns the X-Ray SDK on

Traces go through a BatchSpanProcessor, logs (including one access line per request) through
the OpenTelemetry LoggingHandler and a BatchLogRecordProcessor, and a request counter through
a PeriodicExportingMetricReader. With AWS_XRAY_DAEMON_ADDRESS set, the X-Ray SDK's
XRayMiddleware records a segment per request and the home feed adds a custom subsegment with
an annotation and metadata. X-Ray sampling uses local rules that sample every request
(XRAY_SAMPLING=centralized asks the daemon's sampling proxy instead).
"""

import logging
import os
import sys
import warnings
from importlib.metadata import entry_points
from time import strftime

from flask import Flask, jsonify, request
from opentelemetry import metrics, trace
from opentelemetry._logs import set_logger_provider
from opentelemetry.instrumentation.flask import FlaskInstrumentor
from opentelemetry.instrumentation.requests import RequestsInstrumentor
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from opentelemetry.sdk._logs import LoggingHandler

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from services.home_activities import HomeActivities  # noqa: E402
from services.notifications_activities import NotificationsActivities  # noqa: E402

# ---- OpenTelemetry: which exporter class speaks OTEL_EXPORTER_OTLP_PROTOCOL ----------------
# The SDK's own auto-configuration only knows grpc and http/protobuf; OTLP/JSON comes from
# opentelemetry-exporter-otlp-json-http, registered under the entry point name
# "otlp_json_http" (classes opentelemetry.exporter.otlp.json.http.OTLPSpanExporter, ...).
OTLP_EXPORTER_ENTRY_POINTS = {
    "http/protobuf": "otlp_proto_http",
    "http/json": "otlp_json_http",
    "grpc": "otlp_proto_grpc",
}


def otlp_protocol(signal):
    """The OTLP protocol for one signal ("traces", "logs", "metrics"), as the spec's env says."""
    value = os.environ.get(f"OTEL_EXPORTER_OTLP_{signal.upper()}_PROTOCOL") or os.environ.get(
        "OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"
    )
    return value.strip()


def otlp_exporter(signal):
    """A new OTLP exporter for `signal`, configured by the exporter itself from the env."""
    protocol = otlp_protocol(signal)
    if protocol not in OTLP_EXPORTER_ENTRY_POINTS:
        raise RuntimeError(f"unsupported OTEL_EXPORTER_OTLP_PROTOCOL {protocol!r}")
    (entry_point,) = entry_points(group=f"opentelemetry_{signal}_exporter", name=OTLP_EXPORTER_ENTRY_POINTS[protocol])
    return entry_point.load()()


class Telemetry:
    """The providers and exporters this process set up (kept so they can be flushed)."""

    def __init__(self):
        # Resource.create() inside each provider reads OTEL_SERVICE_NAME / OTEL_RESOURCE_ATTRIBUTES.
        self.span_exporter = otlp_exporter("traces")
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(BatchSpanProcessor(self.span_exporter))
        trace.set_tracer_provider(self.tracer_provider)

        self.log_exporter = otlp_exporter("logs")
        self.logger_provider = LoggerProvider()
        self.logger_provider.add_log_record_processor(BatchLogRecordProcessor(self.log_exporter))
        set_logger_provider(self.logger_provider)

        self.metric_exporter = otlp_exporter("metrics")
        self.metric_reader = PeriodicExportingMetricReader(self.metric_exporter)
        self.meter_provider = MeterProvider(metric_readers=[self.metric_reader])
        metrics.set_meter_provider(self.meter_provider)

    def shutdown(self):
        """Flush and stop every provider (what a worker does on exit)."""
        self.tracer_provider.force_flush()
        self.tracer_provider.shutdown()
        self.logger_provider.force_flush()
        self.logger_provider.shutdown()
        self.meter_provider.force_flush()
        self.meter_provider.shutdown()


telemetry = Telemetry()

# ---- Logging: an app logger whose records also go out as OTLP logs -------------------------
LOGGER = logging.getLogger("backend-flask")
LOGGER.setLevel(logging.INFO)
with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    otel_log_handler = LoggingHandler(level=logging.INFO, logger_provider=telemetry.logger_provider)
LOGGER.addHandler(otel_log_handler)
LOGGER.addHandler(logging.StreamHandler(sys.stderr))

requests_counter = metrics.get_meter("backend-flask").create_counter(
    "app.activities.requests", unit="{request}", description="Activity feed requests served"
)

# ---- Flask ---------------------------------------------------------------------------------
app = Flask(__name__)
FlaskInstrumentor().instrument_app(app)
RequestsInstrumentor().instrument()

# ---- AWS X-Ray (only when a daemon address is given) ----------------------------------------
XRAY_LOCAL_SAMPLING_RULES = {"version": 2, "rules": [], "default": {"fixed_target": 1, "rate": 1.0}}

xray_recorder = None
if os.environ.get("AWS_XRAY_DAEMON_ADDRESS"):
    from aws_xray_sdk.core import xray_recorder
    from aws_xray_sdk.core.sampling.local.sampler import LocalSampler
    from aws_xray_sdk.ext.flask.middleware import XRayMiddleware

    xray_options = {"service": "backend-flask", "context_missing": "LOG_ERROR", "plugins": ()}
    if os.environ.get("AWS_XRAY_URL"):
        xray_options["dynamic_naming"] = os.environ["AWS_XRAY_URL"]
    if os.environ.get("XRAY_SAMPLING", "local") == "local":
        xray_options["sampler"] = LocalSampler(XRAY_LOCAL_SAMPLING_RULES)
    xray_recorder.configure(**xray_options)
    XRayMiddleware(app, xray_recorder)


@app.after_request
def after_request(response):
    """One access line per request, like the bootcamp's CloudWatch logger."""
    timestamp = strftime("[%Y-%b-%d %H:%M]")
    LOGGER.info(
        "%s %s %s %s %s %s",
        timestamp,
        request.remote_addr,
        request.method,
        request.scheme,
        request.full_path,
        response.status,
    )
    return response


@app.route("/api/activities/home", methods=["GET"])
def data_home():
    data = HomeActivities.run(xray_recorder=xray_recorder)
    requests_counter.add(1, {"app.feed": "home"})
    return jsonify(data), 200


@app.route("/api/activities/notifications", methods=["GET"])
def data_notifications():
    data = NotificationsActivities.run()
    requests_counter.add(1, {"app.feed": "notifications"})
    return jsonify(data), 200


@app.route("/healthz", methods=["GET"])
def healthz():
    return {"ok": True}, 200


if __name__ == "__main__":
    app.run(host=os.environ.get("HOST", "0.0.0.0"), port=int(os.environ.get("PORT", "4567")))
