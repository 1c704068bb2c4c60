"""A loopback Honeycomb stand-in: an OTLP/HTTP receiver that checks the team header,
decompresses zstd or gzip, decodes every body with the official opentelemetry-proto package,
and answers with scripted statuses when a test asks it to. `GET /1/auth` answers as Honeycomb
documents it (docs.honeycomb.io/api/auth): 200 with the key's team, environment (empty for a
Classic key) and access, or 401 for any other key.
"""

import gzip
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import zstandard
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

MESSAGES = {
    "/v1/traces": (ExportTraceServiceRequest, ExportTraceServiceResponse),
    "/v1/logs": (ExportLogsServiceRequest, ExportLogsServiceResponse),
    "/v1/metrics": (ExportMetricsServiceRequest, ExportMetricsServiceResponse),
}


@dataclass
class Received:
    """One request the stand-in answered."""

    at: float
    path: str
    headers: dict
    status: int  # 0: never answered (a hung stand-in)
    message: object = None  # the decoded Export*ServiceRequest, when accepted


@dataclass
class Answer:
    status: int
    headers: dict = field(default_factory=dict)
    body: bytes = b""


class HoneycombStandIn:
    TEAM = {"name": "Cruddur", "slug": "cruddur"}
    ENVIRONMENT = {"name": "Development", "slug": "development"}

    def __init__(self, api_key, hang=False, classic=False, tls=None):
        """`tls`: an `ssl.SSLContext` to serve HTTPS with (see `tls_files`)."""
        self.api_key = api_key
        self.hang = hang
        self.classic = classic
        self.scheme = "https" if tls else "http"
        self.received = []
        self.script = []  # answers given before the default (200 or 401)
        self.lock = threading.Lock()
        self.release = threading.Event()
        standin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                standin._handle(self)

            def do_GET(self):
                standin._auth(self)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        if tls is not None:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self):
        host, port = self.server.server_address
        return f"{self.scheme}://{host}:{port}"

    def answer_next(self, *answers):
        with self.lock:
            self.script.extend(answers)

    def stop(self):
        self.release.set()
        self.server.shutdown()
        self.server.server_close()

    # -- what arrived --

    def accepted(self, path):
        with self.lock:
            return [r.message for r in self.received if r.path == path and r.status == 200]

    def attempts(self, path):
        with self.lock:
            return [r for r in self.received if r.path == path]

    def spans(self):
        """(resource attributes dict, scope name, span) for every accepted span."""
        found = []
        for request in self.accepted("/v1/traces"):
            for resource_spans in request.resource_spans:
                resource = attributes(resource_spans.resource.attributes)
                for scope_spans in resource_spans.scope_spans:
                    for span in scope_spans.spans:
                        found.append((resource, scope_spans.scope.name, span))
        return found

    def log_records(self):
        found = []
        for request in self.accepted("/v1/logs"):
            for resource_logs in request.resource_logs:
                resource = attributes(resource_logs.resource.attributes)
                for scope_logs in resource_logs.scope_logs:
                    for record in scope_logs.log_records:
                        found.append((resource, record))
        return found

    def metrics(self):
        found = []
        for request in self.accepted("/v1/metrics"):
            for resource_metrics in request.resource_metrics:
                resource = attributes(resource_metrics.resource.attributes)
                for scope_metrics in resource_metrics.scope_metrics:
                    for metric in scope_metrics.metrics:
                        found.append((resource, metric))
        return found

    # -- serving --

    def _auth(self, handler):
        headers = {k.lower(): v for k, v in handler.headers.items()}
        if handler.path != "/1/auth":
            answer = Answer(404, {"Content-Type": "application/json"}, b'{"error":"not found"}')
        elif headers.get("x-honeycomb-team") != self.api_key:
            answer = Answer(401, {"Content-Type": "application/json"}, b'{"error":"unknown API key - check your credentials"}')
        else:
            environment = {"name": "", "slug": ""} if self.classic else self.ENVIRONMENT
            body = {
                "id": "hcxik_01standin",
                "type": "ingest",
                "api_key_access": {"events": True, "markers": False, "createDatasets": True},
                "environment": environment,
                "team": self.TEAM,
            }
            answer = Answer(200, {"Content-Type": "application/json"}, json.dumps(body).encode())
        with self.lock:
            self.received.append(Received(time.monotonic(), handler.path, headers, answer.status))
        handler.send_response(answer.status)
        for name, value in answer.headers.items():
            handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(answer.body)))
        handler.end_headers()
        handler.wfile.write(answer.body)

    def _handle(self, handler):
        length = int(handler.headers.get("Content-Length", "0"))
        raw = handler.rfile.read(length)
        headers = {k.lower(): v for k, v in handler.headers.items()}
        if self.hang:
            with self.lock:
                self.received.append(Received(time.monotonic(), handler.path, headers, 0))
            self.release.wait(60)
            return
        with self.lock:
            scripted = self.script.pop(0) if self.script else None
        if headers.get("x-honeycomb-team") != self.api_key:
            answer = Answer(401, {"Content-Type": "application/json"}, b'{"error":"unknown API key"}')
        elif scripted is not None:
            answer = scripted
        else:
            answer = None
        message = None
        if answer is None:
            request_type, response_type = MESSAGES[handler.path]
            body = decompress(headers.get("content-encoding", ""), raw)
            message = request_type()
            message.ParseFromString(body)
            answer = Answer(200, {"Content-Type": "application/x-protobuf"}, response_type().SerializeToString())
        with self.lock:
            self.received.append(Received(time.monotonic(), handler.path, headers, answer.status, message))
        handler.send_response(answer.status)
        for name, value in answer.headers.items():
            handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(answer.body)))
        handler.end_headers()
        handler.wfile.write(answer.body)


def decompress(encoding, body):
    if encoding == "zstd":
        return zstandard.ZstdDecompressor().decompressobj().decompress(body)
    if encoding == "gzip":
        return gzip.decompress(body)
    assert encoding in ("", "identity"), f"unexpected Content-Encoding {encoding!r}"
    return body


def any_value(value):
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [any_value(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return attributes(value.kvlist_value.values)
    return getattr(value, kind) if kind else None


def attributes(key_values):
    return {kv.key: any_value(kv.value) for kv in key_values}


def tls_files(directory):
    """A throw-away CA and a certificate for 127.0.0.1 it signed, written to `directory`:
    returns (CA file, an `ssl.SSLContext` serving the certificate). Trust the CA with
    `SSL_CERT_FILE`, as a corporate CA in the system store would be.
    """
    import datetime
    import ipaddress
    import ssl

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "waggle test corporate CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    ca_file = directory / "corporate-ca.pem"
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_file = directory / "standin-cert.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file = directory / "standin-key.pem"
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    return ca_file, context
