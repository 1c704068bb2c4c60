"""A loopback Rollbar stand-in: the item API (`POST /api/1/item/`) that checks the access token
and validates each item against Rollbar's documented item schema (docs.rollbar.com/reference/
create-item): `data.environment` and `data.body` required, the body holding exactly one of
`trace`, `trace_chain`, `message`, `crash_report`; each trace's frames with a `filename`; the
exception with a `class`; the `level` one of Rollbar's five. It answers as Rollbar does
(`{"err": 0, "result": {"uuid": …}}`, 401 for a bad token, 403 for a token without the
`post_server_item` scope, 422 for an invalid item — the token is checked first, as Rollbar does,
which is what `waggle check` relies on) and with scripted statuses when a test asks it to.
"""

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ITEM_PATH = "/api/1/item/"
LEVELS = {"critical", "error", "warning", "info", "debug"}
BODY_KINDS = ("trace", "trace_chain", "message", "crash_report")


@dataclass
class Received:
    """One request the stand-in answered."""

    at: float
    headers: dict
    status: int
    item: object = None  # the parsed JSON, when it parsed
    problem: str = ""  # why it was refused as invalid


@dataclass
class Answer:
    status: int
    headers: dict = field(default_factory=dict)
    body: bytes = b""


def schema_problems(item):
    """What in `item` breaks Rollbar's documented schema; empty when valid."""
    problems = []
    if not isinstance(item, dict):
        return ["the item is not a JSON object"]
    data = item.get("data")
    if not isinstance(data, dict):
        return ["data is required"]
    if not isinstance(data.get("environment"), str) or not data["environment"]:
        problems.append("data.environment is required")
    if "level" in data and data["level"] not in LEVELS:
        problems.append(f"data.level {data['level']!r} is not one of {sorted(LEVELS)}")
    if "timestamp" in data and not isinstance(data["timestamp"], int):
        problems.append("data.timestamp must be an integer (unix seconds)")
    for key in ("code_version", "platform", "language", "framework", "context", "uuid"):
        if key in data and not isinstance(data[key], str):
            problems.append(f"data.{key} must be a string")
    for key in ("request", "server", "custom", "person", "notifier"):
        if key in data and not isinstance(data[key], dict):
            problems.append(f"data.{key} must be an object")
    body = data.get("body")
    if not isinstance(body, dict):
        return problems + ["data.body is required"]
    kinds = [kind for kind in BODY_KINDS if kind in body]
    if len(kinds) != 1:
        return problems + [f"data.body must hold exactly one of {BODY_KINDS}, has {kinds}"]
    kind = kinds[0]
    if kind == "trace":
        problems += trace_problems(body["trace"], "data.body.trace")
    elif kind == "trace_chain":
        chain = body["trace_chain"]
        if not isinstance(chain, list) or not chain:
            problems.append("data.body.trace_chain must be a non-empty list")
        else:
            for index, trace in enumerate(chain):
                problems += trace_problems(trace, f"data.body.trace_chain[{index}]")
    elif kind == "message":
        message = body["message"]
        if not isinstance(message, dict) or not isinstance(message.get("body"), str):
            problems.append("data.body.message.body is required")
    return problems


def trace_problems(trace, where):
    if not isinstance(trace, dict):
        return [f"{where} must be an object"]
    problems = []
    frames = trace.get("frames")
    if not isinstance(frames, list):
        problems.append(f"{where}.frames is required")
    else:
        for index, frame in enumerate(frames):
            at = f"{where}.frames[{index}]"
            if not isinstance(frame, dict) or not isinstance(frame.get("filename"), str) or not frame["filename"]:
                problems.append(f"{at}.filename is required")
                continue
            for key in ("lineno", "colno"):
                if key in frame and not isinstance(frame[key], int):
                    problems.append(f"{at}.{key} must be an integer")
            for key in ("method", "code"):
                if key in frame and not isinstance(frame[key], str):
                    problems.append(f"{at}.{key} must be a string")
    exception = trace.get("exception")
    if not isinstance(exception, dict) or not isinstance(exception.get("class"), str) or not exception["class"]:
        problems.append(f"{where}.exception.class is required")
    elif "message" in exception and not isinstance(exception["message"], str):
        problems.append(f"{where}.exception.message must be a string")
    return problems


class RollbarStandIn:
    def __init__(self, token, client_tokens=()):
        self.token = token
        self.client_tokens = set(client_tokens)  # tokens with post_client_item scope only
        self.received = []
        self.script = []  # answers given before the default
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
    def endpoint(self):
        """The API base, as the Rollbar SDKs and waggle's `endpoint` spell it."""
        host, port = self.server.server_address
        return f"http://{host}:{port}/api/1/"

    def answer_next(self, *answers):
        with self.lock:
            self.script.extend(answers)

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    # -- what arrived --

    def items(self):
        """The `data` of every accepted item."""
        with self.lock:
            return [r.item["data"] for r in self.received if r.status == 200]

    def attempts(self):
        with self.lock:
            return list(self.received)

    def invalid(self):
        with self.lock:
            return [r for r in self.received if r.problem]

    # -- serving --

    def _handle(self, handler):
        length = int(handler.headers.get("Content-Length", "0"))
        raw = handler.rfile.read(length)
        headers = {k.lower(): v for k, v in handler.headers.items()}
        item, problem = None, ""
        if handler.path != ITEM_PATH:
            answer = error(404, f"no such path {handler.path}")
        elif headers.get("x-rollbar-access-token") in self.client_tokens:
            answer = error(403, "insufficient privileges: post_server_item scope is required but the access token only has post_client_item.")
        elif headers.get("x-rollbar-access-token") != self.token:
            answer = error(401, "invalid access token")
        elif not headers.get("content-type", "").startswith("application/json"):
            answer = error(400, "Content-Type must be application/json")
        else:
            try:
                item = json.loads(raw)
            except ValueError as e:
                item, answer = None, error(400, f"invalid JSON: {e}")
            else:
                problems = schema_problems(item)
                body_token = item.get("access_token") if isinstance(item, dict) else None
                if body_token is not None and body_token != self.token:
                    problems.append("the body's access_token differs from the header's")
                if problems:
                    problem = "; ".join(problems)
                    answer = error(422, problem)
                else:
                    with self.lock:
                        scripted = self.script.pop(0) if self.script else None
                    uuid = item["data"].get("uuid")
                    answer = scripted or Answer(
                        200,
                        {"Content-Type": "application/json"},
                        json.dumps({"err": 0, "result": {"id": None, "uuid": uuid}}).encode(),
                    )
        with self.lock:
            self.received.append(Received(time.monotonic(), headers, answer.status, item, problem))
        handler.send_response(answer.status)
        for name, value in answer.headers.items():
            handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(answer.body)))
        handler.end_headers()
        handler.wfile.write(answer.body)


def error(status, message):
    return Answer(status, {"Content-Type": "application/json"}, json.dumps({"err": 1, "message": message}).encode())
