"""A loopback stand-in for AWS's own OTLP endpoints and the few API calls around them.

One instance plays one service, `xray` or `logs`, as AWS serves both on one host:

- `POST /v1/traces` (xray) and `POST /v1/logs` (logs): the SigV4 signature is checked with
  botocore for the service and region (over the body as received, so the payload hash is
  checked too), `Content-Type` must be `application/x-protobuf`, `Content-Encoding` gzip or
  none, and the body is decoded with the official opentelemetry-proto package. The documented
  limits are enforced as AWS does: traces over 10,000 spans or 5 MB uncompressed, or with a span
  over 200 KB, get 400; logs must name an existing group and stream in `x-aws-log-group` and
  `x-aws-log-stream` (400 otherwise). Accepted requests get 200 and an empty
  `Export…ServiceResponse`; tests can script answers (429, 403, partial success) ahead.
- `POST /GetTraceSegmentDestination` (xray): `{"Destination": <trace_destination>, "Status": "ACTIVE"}`.
- `POST /TelemetryRecords` (xray): accepted (the daemon telemetry).
- `POST /` with `X-Amz-Target: Logs_20140328.CreateLogGroup|CreateLogStream|PutRetentionPolicy`
  (logs): groups and streams are kept, so the OTLP endpoint can check its headers.

A request whose signature does not verify gets 403 `InvalidSignatureException` and is recorded
with the reason.
"""

import gzip
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsPartialSuccess,
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTracePartialSuccess,
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from sigv4_upstream import SignatureError, verify_sigv4

MAX_SPANS = 10_000
MAX_TRACE_BYTES = 5_000_000
MAX_SPAN_BYTES = 200_000


@dataclass
class Received:
    at: float
    path: str
    headers: dict
    body: bytes  # as received (compressed)
    signature: str  # "valid" or "invalid: <why>"
    status: int = 0
    message: object = None  # the decoded Export…ServiceRequest


@dataclass
class Answer:
    status: int
    headers: dict = field(default_factory=dict)
    body: bytes = b""


def partial_traces(rejected, message):
    response = ExportTraceServiceResponse(
        partial_success=ExportTracePartialSuccess(rejected_spans=rejected, error_message=message)
    )
    return Answer(200, {"Content-Type": "application/x-protobuf"}, response.SerializeToString())


def partial_logs(rejected, message):
    response = ExportLogsServiceResponse(
        partial_success=ExportLogsPartialSuccess(rejected_log_records=rejected, error_message=message)
    )
    return Answer(200, {"Content-Type": "application/x-protobuf"}, response.SerializeToString())


def aws_error(status, error_type, message, **headers):
    body = json.dumps({"message": message}).encode()
    return Answer(status, {"Content-Type": "application/json", "x-amzn-ErrorType": error_type, **headers}, body)


class AwsOtlpStandIn:
    def __init__(self, credentials, service, region="eu-west-1", trace_destination="CloudWatchLogs"):
        assert service in ("xray", "logs")
        self.credentials = credentials
        self.service = service
        self.region = region
        self.trace_destination = trace_destination
        self.received = []
        self.script = []
        self.groups = {}  # group name -> set of stream names
        self.lock = threading.Lock()
        standin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                standin._handle(self)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self):
        host, port = self.server.server_address
        return f"http://{host}:{port}"

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)

    def answer_next(self, *answers):
        """Answers for the next OTLP requests (after their signature checked out)."""
        with self.lock:
            self.script.extend(answers)

    # -- what arrived --

    def attempts(self, path):
        with self.lock:
            return [r for r in self.received if r.path == path]

    def accepted(self, path):
        return [r.message for r in self.attempts(path) if r.status == 200]

    def spans(self):
        """(resource attributes, scope name, span) for every span of an accepted request."""
        from honeycomb_standin import attributes

        return [
            (attributes(rs.resource.attributes), ss.scope.name, span)
            for request in self.accepted("/v1/traces")
            for rs in request.resource_spans
            for ss in rs.scope_spans
            for span in ss.spans
        ]

    def log_records(self):
        """(group, stream, resource attributes, record) for every accepted log record."""
        from honeycomb_standin import attributes

        found = []
        for received in self.attempts("/v1/logs"):
            if received.status != 200:
                continue
            group, stream = received.headers["x-aws-log-group"], received.headers["x-aws-log-stream"]
            for rl in received.message.resource_logs:
                for sl in rl.scope_logs:
                    for record in sl.log_records:
                        found.append((group, stream, attributes(rl.resource.attributes), record))
        return found

    # -- serving --

    def _handle(self, handler):
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        headers = {}
        for name, value in handler.headers.items():
            name = name.lower()
            headers[name] = f"{headers[name]},{value}" if name in headers else value
        received = Received(time.time(), handler.path, headers, body, "valid")
        try:
            verify_sigv4("POST", handler.path, headers, body, self.credentials, self.region, service=self.service)
            answer = self._answer(received)
        except SignatureError as error:
            received.signature = f"invalid: {error}"
            answer = aws_error(403, "InvalidSignatureException", str(error))
        received.status = answer.status
        with self.lock:
            self.received.append(received)
        handler.send_response(answer.status)
        for name, value in answer.headers.items():
            handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(answer.body)))
        handler.end_headers()
        handler.wfile.write(answer.body)

    def _answer(self, received):
        path = received.path
        if self.service == "xray" and path == "/GetTraceSegmentDestination":
            return Answer(200, {"Content-Type": "application/json"},
                          json.dumps({"Destination": self.trace_destination, "Status": "ACTIVE"}).encode())
        if self.service == "xray" and path == "/TelemetryRecords":
            return Answer(200, {"Content-Type": "application/json"}, b"{}")
        if self.service == "logs" and path == "/":
            return self._logs_api(received)
        if (self.service, path) in (("xray", "/v1/traces"), ("logs", "/v1/logs")):
            return self._otlp(received)
        return aws_error(404, "UnknownOperationException", f"no route for POST {path} on {self.service}")

    def _otlp(self, received):
        if received.headers.get("content-type") != "application/x-protobuf":
            return aws_error(415, "UnsupportedMediaType", f"content-type {received.headers.get('content-type')!r}")
        encoding = received.headers.get("content-encoding", "")
        if encoding not in ("", "gzip"):
            return aws_error(415, "UnsupportedMediaType", f"content-encoding {encoding!r}: only gzip or none")
        raw = gzip.decompress(received.body) if encoding == "gzip" else received.body
        if received.path == "/v1/traces":
            message = ExportTraceServiceRequest()
            message.ParseFromString(raw)
            received.message = message
            spans = [s for rs in message.resource_spans for ss in rs.scope_spans for s in ss.spans]
            if len(raw) > MAX_TRACE_BYTES:
                return aws_error(400, "ValidationException", f"{len(raw)} bytes uncompressed; the limit is 5 MB")
            if len(spans) > MAX_SPANS:
                return aws_error(400, "ValidationException", f"{len(spans)} spans; the limit is {MAX_SPANS}")
            if any(s.ByteSize() > MAX_SPAN_BYTES for s in spans):
                return aws_error(400, "ValidationException", "a span is over 200 KB")
        else:
            message = ExportLogsServiceRequest()
            message.ParseFromString(raw)
            received.message = message
            group, stream = received.headers.get("x-aws-log-group"), received.headers.get("x-aws-log-stream")
            with self.lock:
                exists = group in self.groups and stream in self.groups[group]
            if not exists:
                return aws_error(400, "ResourceNotFoundException", f"log group {group!r} / stream {stream!r} does not exist")
        with self.lock:
            scripted = self.script.pop(0) if self.script else None
        if scripted is not None:
            return scripted
        response = ExportTraceServiceResponse() if received.path == "/v1/traces" else ExportLogsServiceResponse()
        return Answer(200, {"Content-Type": "application/x-protobuf"}, response.SerializeToString())

    def _logs_api(self, received):
        target = received.headers.get("x-amz-target", "")
        request = json.loads(received.body or b"{}")
        group = request.get("logGroupName")
        ok = Answer(200, {"Content-Type": "application/x-amz-json-1.1"}, b"{}")
        with self.lock:
            if target.endswith(".CreateLogGroup"):
                if group in self.groups:
                    return aws_error(400, "ResourceAlreadyExistsException", "The specified log group already exists")
                self.groups[group] = set()
                return ok
            if target.endswith(".CreateLogStream"):
                if group not in self.groups:
                    return aws_error(400, "ResourceNotFoundException", "The specified log group does not exist.")
                stream = request.get("logStreamName")
                if stream in self.groups[group]:
                    return aws_error(400, "ResourceAlreadyExistsException", "The specified log stream already exists")
                self.groups[group].add(stream)
                return ok
            if target.endswith(".PutRetentionPolicy"):
                return ok
        return aws_error(400, "UnknownOperationException", f"unknown target {target!r}")
