"""Run the example backend-flask app for real and report exactly what it emitted.

The OpenTelemetry global providers can be set only once per process, so every scenario runs
this script in its own subprocess, configured only through the environment the test gives it
(OTEL_EXPORTER_OTLP_*, OTEL_SERVICE_NAME, AWS_XRAY_DAEMON_ADDRESS).

It imports examples/backend-flask/app.py, serves it on a real werkzeug server on
127.0.0.1:0, sends requests to it with `requests` (instrumented by the app's
RequestsInstrumentor, so each trace is client span -> Flask server span -> custom span),
then flushes and shuts the providers down. Next to the app's own export pipeline it adds:

- a SimpleSpanProcessor(InMemorySpanExporter()) and a SimpleLogRecordProcessor(
  InMemoryLogRecordExporter()) to learn every span and log record (ids, parents, attributes);
- a wrapper around each OTLP exporter's export() recording what it returned;
- a wrapper around the X-Ray SDK's UDP emitter recording every datagram it sent.

The last line of stdout is one JSON object with all of that; everything else goes to stderr.
"""

import argparse
import base64
import json
import os
import sys
import threading
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
APP_DIR = os.path.join(REPO, "examples", "backend-flask")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1, help="GETs of /api/activities/home")
    parser.add_argument("--notifications", type=int, default=0, help="GETs of /api/activities/notifications")
    parser.add_argument("--xray-streaming", action="store_true", help="stream every subsegment as its own datagram")
    args = parser.parse_args()

    real_stdout = sys.stdout
    sys.stdout = sys.stderr  # keep stdout for the one JSON report line

    warnings.simplefilter("ignore", DeprecationWarning)
    sys.path.insert(0, APP_DIR)
    import app as backend  # noqa: E402  (sets up OTel and, if asked, X-Ray at import)
    import requests
    from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from werkzeug.serving import make_server

    telemetry = backend.telemetry
    memory_spans = InMemorySpanExporter()
    telemetry.tracer_provider.add_span_processor(SimpleSpanProcessor(memory_spans))
    memory_logs = InMemoryLogRecordExporter()
    telemetry.logger_provider.add_log_record_processor(SimpleLogRecordProcessor(memory_logs))

    exports = []
    record_exports(telemetry.span_exporter, "traces", exports)
    record_exports(telemetry.log_exporter, "logs", exports)
    record_exports(telemetry.metric_exporter, "metrics", exports)

    xray_datagrams = []
    if backend.xray_recorder is not None:
        emitter = backend.xray_recorder.emitter
        send = emitter._send_data

        def recording_send(data):
            xray_datagrams.append(data)
            send(data)

        emitter._send_data = recording_send
        if args.xray_streaming:
            backend.xray_recorder.configure(streaming_threshold=0)

    server = make_server("127.0.0.1", 0, backend.app, threaded=True)
    server_thread = threading.Thread(target=server.serve_forever, daemon=True)
    server_thread.start()
    base = f"http://127.0.0.1:{server.server_port}"

    responses = []
    with requests.Session() as session:
        for path in ["/api/activities/home"] * args.requests + ["/api/activities/notifications"] * args.notifications:
            response = session.get(base + path, timeout=10)
            responses.append(
                {
                    "path": path,
                    "status": response.status_code,
                    "result_length": len(response.json()),
                    "xray_trace_header": response.headers.get("X-Amzn-Trace-Id"),
                }
            )
    server.shutdown()
    server_thread.join(timeout=10)

    telemetry.shutdown()

    report = {
        "server_port": server.server_port,
        "responses": responses,
        "spans": [span_json(span) for span in memory_spans.get_finished_spans()],
        "logs": [log_json(record) for record in memory_logs.get_finished_logs()],
        "exports": exports,
        "exporters": {
            signal: exporter_json(exporter)
            for signal, exporter in (
                ("traces", telemetry.span_exporter),
                ("logs", telemetry.log_exporter),
                ("metrics", telemetry.metric_exporter),
            )
        },
        "xray_datagrams": xray_datagrams,
        "xray_streaming": args.xray_streaming,
    }
    real_stdout.write(json.dumps(report) + "\n")
    real_stdout.flush()


def record_exports(exporter, signal, exports):
    """Wrap `exporter.export` so the report says what every export call returned."""
    export = exporter.export

    def recording_export(batch, *args, **kwargs):
        try:
            result = export(batch, *args, **kwargs)
        except Exception as error:  # the report must show it, not hide it
            exports.append({"signal": signal, "result": f"raised {error!r}"})
            raise
        exports.append({"signal": signal, "result": getattr(result, "name", str(result)), "items": batch_size(batch)})
        return result

    exporter.export = recording_export


def exporter_json(exporter):
    compression = getattr(exporter, "_compression", None)
    if compression is None:
        compression = getattr(getattr(exporter, "_client", None), "_compression", None)
    compression = str(getattr(compression, "name", compression)).lower()  # grpc.Compression / Compression enums
    return {"class": f"{type(exporter).__module__}.{type(exporter).__name__}", "compression": compression}


def batch_size(batch):
    if hasattr(batch, "resource_metrics"):
        return sum(
            len(metric.data.data_points)
            for resource_metrics in batch.resource_metrics
            for scope_metrics in resource_metrics.scope_metrics
            for metric in scope_metrics.metrics
        )
    return len(batch)


def value_json(value):
    if isinstance(value, bytes):
        return {"bytes_base64": base64.b64encode(value).decode()}
    if isinstance(value, (list, tuple)):
        return [value_json(v) for v in value]
    if isinstance(value, dict):
        return {k: value_json(v) for k, v in value.items()}
    return value


def attributes_json(attributes):
    return {key: value_json(value) for key, value in (attributes or {}).items()}


def span_json(span):
    context = span.get_span_context()
    scope = span.instrumentation_scope
    return {
        "trace_id": format(context.trace_id, "032x"),
        "span_id": format(context.span_id, "016x"),
        "parent_span_id": format(span.parent.span_id, "016x") if span.parent else None,
        "name": span.name,
        "kind": span.kind.name.lower(),
        "start_time_unix_nano": span.start_time,
        "end_time_unix_nano": span.end_time,
        "attributes": attributes_json(span.attributes),
        "resource": attributes_json(span.resource.attributes),
        "scope": {"name": scope.name, "version": scope.version or None},
        "status": {"code": span.status.status_code.name.lower(), "message": span.status.description},
        "events": [
            {"name": e.name, "time_unix_nano": e.timestamp, "attributes": attributes_json(e.attributes)}
            for e in span.events
        ],
        "links": [
            {
                "trace_id": format(link.context.trace_id, "032x"),
                "span_id": format(link.context.span_id, "016x"),
                "attributes": attributes_json(link.attributes),
            }
            for link in span.links
        ],
    }


def log_json(readable):
    record = readable.log_record
    scope = readable.instrumentation_scope
    return {
        "time_unix_nano": record.timestamp,
        "observed_time_unix_nano": record.observed_timestamp,
        "severity_number": record.severity_number.value if record.severity_number is not None else None,
        "severity_text": record.severity_text,
        "body": value_json(record.body),
        "attributes": attributes_json(record.attributes),
        "resource": attributes_json(readable.resource.attributes),
        "scope": {"name": scope.name, "version": scope.version or None} if scope else None,
        "trace_id": format(record.trace_id, "032x") if record.trace_id else None,
        "span_id": format(record.span_id, "016x") if record.span_id else None,
    }


if __name__ == "__main__":
    main()
