"""A fake CloudWatch Logs that throttles: a small HTTP server speaking the service's JSON
protocol (`x-amz-target: Logs_20140328.<Operation>`, `application/x-amz-json-1.1`).

PutLogEvents is answered 400 `{"__type":"ThrottlingException","message":"Rate exceeded"}` the
first `throttle` times, then `{}`; CreateLogGroup, CreateLogStream and PutRetentionPolicy are
answered `{}`. It records every call and the events of every accepted PutLogEvents, so a test
can count what arrived. Binds 127.0.0.1 on a free port; `stop()` ends it.
"""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TARGET_PREFIX = "Logs_20140328."
CONTENT_TYPE = "application/x-amz-json-1.1"


class ThrottlingLogsUpstream:
    def __init__(self, throttle=2):
        self.throttle = throttle
        self.lock = threading.Lock()
        self.calls = []  # (operation, credential scope service) in arrival order
        self.throttled = 0
        self.accepted_events = []  # {"timestamp", "message"} of accepted PutLogEvents
        self.accepted_puts = 0
        self.server = None
        self.thread = None

    @property
    def url(self):
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self):
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep pytest output clean
                pass

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                target = self.headers.get("x-amz-target", "")
                operation = target[len(TARGET_PREFIX):] if target.startswith(TARGET_PREFIX) else target
                status, answer = upstream.answer(operation, self.headers.get("Authorization", ""), body)
                payload = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", CONTENT_TYPE)
                self.send_header("Content-Length", str(len(payload)))
                self.send_header("x-amzn-RequestId", "00000000-0000-0000-0000-000000000000")
                self.end_headers()
                self.wfile.write(payload)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def answer(self, operation, authorization, body):
        scope_service = signed_service(authorization)
        with self.lock:
            self.calls.append((operation, scope_service))
            if operation == "PutLogEvents":
                if self.throttled < self.throttle:
                    self.throttled += 1
                    return 400, {"__type": "ThrottlingException", "message": "Rate exceeded"}
                request = json.loads(body or b"{}")
                self.accepted_events.extend(request.get("logEvents", []))
                self.accepted_puts += 1
                return 200, {}
            if operation in ("CreateLogGroup", "CreateLogStream", "PutRetentionPolicy"):
                return 200, {}
            return 400, {"__type": "UnknownOperationException", "message": f"not faked: {operation}"}

    def operations(self):
        with self.lock:
            return [operation for operation, _ in self.calls]

    def messages(self):
        with self.lock:
            return [event["message"] for event in self.accepted_events]

    def stop(self):
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.thread.join(timeout=5)
            self.server = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def signed_service(authorization):
    """The service in a SigV4 credential scope (`Credential=AKID/date/region/service/aws4_request`)."""
    marker = "Credential="
    start = authorization.find(marker)
    if start < 0:
        return None
    scope = authorization[start + len(marker):].split(",", 1)[0].split("/")
    return scope[3] if len(scope) >= 5 else None
