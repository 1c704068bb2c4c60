"""A throwaway OTLP + X-Ray sink that only records what arrives (no waggle involved).

Used by test_harness.py to prove that the driver and the example app really export over every
transport, so a failure against waggle is waggle's and not the client side's.
"""

import base64
import gzip
import json
import socket
import threading
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import grpc
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2, logs_service_pb2_grpc
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2, metrics_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

REQUEST_TYPES = {
    "/v1/traces": trace_service_pb2.ExportTraceServiceRequest,
    "/v1/logs": logs_service_pb2.ExportLogsServiceRequest,
    "/v1/metrics": metrics_service_pb2.ExportMetricsServiceRequest,
}


ID_KEYS = {"traceId", "spanId", "parentSpanId"}


def hex_ids_to_base64(value):
    if isinstance(value, dict):
        return {
            k: base64.b64encode(bytes.fromhex(v)).decode() if k in ID_KEYS and isinstance(v, str) else hex_ids_to_base64(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [hex_ids_to_base64(v) for v in value]
    return value


class FakeSink:
    """OTLP/HTTP, OTLP/gRPC and X-Ray UDP on 127.0.0.1 free ports; records every request."""

    def __init__(self):
        self.http_requests = []  # dicts: path, headers, body (decompressed), message
        self.grpc_requests = []  # dicts: method, metadata, message
        self.datagrams = []
        self._lock = threading.Lock()

        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                raw = body
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                content_type = self.headers.get("Content-Type", "")
                message = REQUEST_TYPES[self.path]()
                if content_type == "application/x-protobuf":
                    message.ParseFromString(body)
                elif content_type == "application/json":
                    from google.protobuf import json_format

                    # OTLP/JSON writes ids as hex where proto3 JSON expects base64.
                    json_format.ParseDict(hex_ids_to_base64(json.loads(body)), message, ignore_unknown_fields=True)
                with sink._lock:
                    sink.http_requests.append(
                        {"path": self.path, "headers": dict(self.headers), "raw": raw, "body": body, "message": message}
                    )
                self.send_response(200)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self._http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.http_port = self._http.server_port
        threading.Thread(target=self._http.serve_forever, daemon=True).start()

        self._grpc = grpc.server(futures.ThreadPoolExecutor(max_workers=4))

        def recorder(method, response_type):
            def export(request, context):
                with sink._lock:
                    sink.grpc_requests.append(
                        {"method": method, "metadata": dict(context.invocation_metadata()), "message": request}
                    )
                return response_type()

            return export

        class Traces(trace_service_pb2_grpc.TraceServiceServicer):
            Export = staticmethod(recorder("traces", trace_service_pb2.ExportTraceServiceResponse))

        class Logs(logs_service_pb2_grpc.LogsServiceServicer):
            Export = staticmethod(recorder("logs", logs_service_pb2.ExportLogsServiceResponse))

        class Metrics(metrics_service_pb2_grpc.MetricsServiceServicer):
            Export = staticmethod(recorder("metrics", metrics_service_pb2.ExportMetricsServiceResponse))

        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(Traces(), self._grpc)
        logs_service_pb2_grpc.add_LogsServiceServicer_to_server(Logs(), self._grpc)
        metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(Metrics(), self._grpc)
        self.grpc_port = self._grpc.add_insecure_port("127.0.0.1:0")
        self._grpc.start()

        self._udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._udp.bind(("127.0.0.1", 0))
        self.udp_port = self._udp.getsockname()[1]
        self._udp.settimeout(0.2)
        self._stopping = False
        self._udp_thread = threading.Thread(target=self._read_udp, daemon=True)
        self._udp_thread.start()

    def _read_udp(self):
        while not self._stopping:
            try:
                data, _ = self._udp.recvfrom(65535)
            except socket.timeout:
                continue
            except OSError:
                return
            with self._lock:
                self.datagrams.append(data)

    def close(self):
        self._stopping = True
        self._http.shutdown()
        self._http.server_close()
        self._grpc.stop(grace=None)
        self._udp_thread.join(timeout=2)
        self._udp.close()
