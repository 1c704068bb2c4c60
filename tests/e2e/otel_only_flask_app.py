"""A Flask app instrumented only with the OpenTelemetry SDK, exactly as the typical user does it
(FlaskInstrumentor, RequestsInstrumentor, BatchSpanProcessor(OTLPSpanExporter()) configured
through the environment), with the `home-activities-mock-data` span and a route that raises.

Run as a subprocess: it makes the requests named on the command line, flushes, and prints one
JSON line describing every span it exported (so tests compare against the truth).
"""

import argparse
import json
from datetime import datetime, timezone

from flask import Flask
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.flask import FlaskInstrumentor
from opentelemetry.instrumentation.requests import RequestsInstrumentor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

provider = TracerProvider()
provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
memory = InMemorySpanExporter()
provider.add_span_processor(SimpleSpanProcessor(memory))
trace.set_tracer_provider(provider)

app = Flask(__name__)
FlaskInstrumentor().instrument_app(app)
RequestsInstrumentor().instrument()


@app.route("/api/activities/home", methods=["GET"])
def data_home():
    tracer = trace.get_tracer("home.activities")
    with tracer.start_as_current_span("home-activities-mock-data"):
        span = trace.get_current_span()
        now = datetime.now(timezone.utc).astimezone()
        span.set_attribute("app.now", now.isoformat())
        results = [
            {"handle": "Andrew Brown", "message": "Cloud is fun!"},
            {"handle": "Worf", "message": "I am out of prune juice"},
            {"handle": "Garek", "message": "My dear doctor, I am just a simple tailor."},
        ]
        span.set_attribute("app.result_length", len(results))
    return results, 200


@app.route("/api/activities/crash", methods=["GET"])
def data_crash():
    raise RuntimeError("mock failure in the crash route")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("paths", nargs="+")
    args = parser.parse_args()
    client = app.test_client()
    statuses = [client.get(path).status_code for path in args.paths]
    provider.force_flush()
    spans = [
        {
            "name": span.name,
            "trace_id": format(span.context.trace_id, "032x"),
            "span_id": format(span.context.span_id, "016x"),
            "parent_id": format(span.parent.span_id, "016x") if span.parent else None,
            "kind": span.kind.name,
            "attributes": dict(span.attributes),
        }
        for span in memory.get_finished_spans()
    ]
    provider.shutdown()
    print(json.dumps({"statuses": statuses, "spans": spans}, default=str))


if __name__ == "__main__":
    main()
