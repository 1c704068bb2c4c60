"""Shared pieces of the end-to-end tests: the waggle process, its admin/query API, polling,
OTLP request builders and the driver subprocess.
"""

import atexit
import ctypes
import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
import requests

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
DRIVER = HERE / "drive_app.py"

LISTENERS = ("otlp_http", "otlp_grpc", "xray_udp", "xray_tcp", "admin")
START_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0
# Data lands in the store within ~1 s; give it a generous deadline on a busy 2-core machine.
STORE_TIMEOUT = 15.0


class WaggleError(AssertionError):
    pass


# ---- polling ---------------------------------------------------------------------------------


def wait_for(predicate, timeout=STORE_TIMEOUT, interval=0.05, what="condition"):
    """Poll `predicate` until it returns something truthy; return that. Fail after `timeout`."""
    deadline = time.monotonic() + timeout
    last_error = None
    while True:
        try:
            value = predicate()
            if value:
                return value
            last_error = None
        except (requests.RequestException, AssertionError, KeyError, ValueError) as error:
            last_error = error
        if time.monotonic() >= deadline:
            detail = f" (last error: {last_error!r})" if last_error else ""
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}{detail}")
        time.sleep(interval)
        interval = min(interval * 1.5, 0.5)


# ---- the waggle binary -----------------------------------------------------------------------


def waggle_binary():
    path = Path(os.environ.get("WAGGLE_BIN") or REPO / "target" / "debug" / "waggle")
    if not path.is_file() or not os.access(path, os.X_OK):
        raise WaggleError(
            f"waggle binary not found or not executable at {path}. Build it first "
            f"(`cargo build` in {REPO}) or point WAGGLE_BIN at it."
        )
    return path


def clean_environment(extra=None):
    """PATH, HOME and LANG only: no WAGGLE_*, HONEYCOMB_*, AWS_*, OTEL_* from the caller.

    AWS lookups stay on this machine: instance metadata is switched off (its address is not
    loopback) and the developer's own AWS profile files are hidden. `extra` adds variables.
    """
    env = {key: os.environ[key] for key in ("PATH", "HOME", "LANG") if key in os.environ}
    env["RUST_BACKTRACE"] = "1"
    env["AWS_EC2_METADATA_DISABLED"] = "true"
    env["AWS_CONFIG_FILE"] = "/nonexistent/waggle-e2e/aws-config"
    env["AWS_SHARED_CREDENTIALS_FILE"] = "/nonexistent/waggle-e2e/aws-credentials"
    env.update(extra or {})
    return env


def toml_value(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {value!r} as TOML")


def toml_dumps(config, prefix=()):
    """A small TOML writer for nested dicts of strings, numbers, booleans and lists."""
    lines = []
    tables = []
    for key, value in config.items():
        if isinstance(value, dict):
            tables.append((key, value))
        else:
            lines.append(f"{key} = {toml_value(value)}")
    out = []
    if prefix and (lines or not tables):
        out.append("[" + ".".join(prefix) + "]")
    out.extend(lines)
    for key, value in tables:
        out.append(toml_dumps(value, prefix + (key,)))
    return "\n".join(part for part in out if part) + "\n"


def merge(base, extra):
    result = dict(base)
    for key, value in (extra or {}).items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = merge(result[key], value)
        else:
            result[key] = value
    return result


def base_config(data_dir):
    return {
        "data_dir": str(data_dir),
        "admin": {"endpoint": "127.0.0.1:0"},
        "receivers": {
            "otlp_http": {"endpoint": "127.0.0.1:0"},
            "otlp_grpc": {"endpoint": "127.0.0.1:0"},
            "xray_udp": {"endpoint": "127.0.0.1:0"},
            "xray_tcp": {"endpoint": "127.0.0.1:0"},
        },
    }


RUNNING = set()  # every waggle process started, killed at interpreter exit whatever happened


@atexit.register
def _kill_leftovers():
    for process in list(RUNNING):
        if process.poll() is None:
            process.kill()


def die_with_parent():
    """In the child before exec: SIGKILL it if the test process dies (even by os._exit)."""
    libc = ctypes.CDLL(None, use_errno=True)
    PR_SET_PDEATHSIG = 1
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


class Waggle:
    """One waggle process started from a config file in `workdir`; stdout kept as JSON lines."""

    def __init__(self, workdir, extra_config=None, data_dir=None, name="waggle", env=None, nofile=None):
        self.workdir = Path(workdir)
        self.nofile = nofile  # RLIMIT_NOFILE (soft and hard) for the process, like `ulimit -n`
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.data_dir = Path(data_dir) if data_dir else self.workdir / "data"
        self.config = merge(base_config(self.data_dir), extra_config)
        self.config_path = self.workdir / f"{name}.toml"
        self.name = name
        self.env = env or {}
        self.process = None
        self.lines = []  # every stdout line, raw
        self.stderr_lines = []
        self.addresses = {}
        self.secrets = []  # strings that must never appear in waggle's output
        self._events = queue.Queue()
        self._threads = []
        self.returncode = None

    # -- life cycle --

    def command_line(self):
        """The argv to start: the binary with this waggle's config file, JSON logs."""
        self.config_path.write_text(toml_dumps(self.config))
        return [str(waggle_binary()), "--config", str(self.config_path), "--log-format", "json"]

    def start(self):
        self.process = subprocess.Popen(
            self.command_line(),
            env=clean_environment(self.env),
            cwd=self.workdir,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
            preexec_fn=self._preexec,
        )
        RUNNING.add(self.process)
        for stream, sink, notify in (
            (self.process.stdout, self.lines, True),
            (self.process.stderr, self.stderr_lines, False),
        ):
            thread = threading.Thread(target=self._read, args=(stream, sink, notify), daemon=True)
            thread.start()
            self._threads.append(thread)
        try:
            self._wait_ready()
        except BaseException:
            self.kill()
            self.returncode = self.process.returncode
            raise
        return self

    def _preexec(self):
        if self.nofile is not None:
            import resource

            resource.setrlimit(resource.RLIMIT_NOFILE, (self.nofile, self.nofile))
        die_with_parent()

    def _read(self, stream, sink, notify):
        for raw in iter(stream.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip("\n")
            sink.append(line)
            if notify:
                self._events.put(line)
        if notify:
            self._events.put(None)

    def _wait_ready(self):
        deadline = time.monotonic() + START_TIMEOUT
        ready = False
        while not ready:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise WaggleError(f"waggle did not log 'ready' within {START_TIMEOUT:.0f}s\n{self.output_tail()}")
            try:
                line = self._events.get(timeout=remaining)
            except queue.Empty:
                continue
            if line is None:
                self.process.wait(timeout=5)
                # stdout has ended; let the stderr reader finish too, or its last lines (the
                # reason waggle exited) can be missing from the message.
                self._join_readers()
                raise WaggleError(
                    f"waggle exited with code {self.process.returncode} before it was ready\n{self.output_tail()}"
                )
            record = parse_json_line(line)
            fields = (record or {}).get("fields", {})
            if fields.get("message") == "listening" and fields.get("listener") in LISTENERS:
                self.addresses[fields["listener"]] = fields["address"]
            elif fields.get("message") == "ready":
                ready = True
        missing = [name for name in LISTENERS if name not in self.addresses]
        if missing:
            raise WaggleError(f"waggle said ready but never logged a 'listening' line for {missing}\n{self.output_tail()}")

    def stop(self, sig=signal.SIGTERM, timeout=STOP_TIMEOUT):
        """Signal waggle and wait for it; return its exit code. Kills it (and fails) on timeout."""
        if self.process is None or self.process.poll() is not None:
            self.returncode = None if self.process is None else self.process.returncode
            return self.returncode
        self.process.send_signal(sig)
        try:
            self.returncode = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise WaggleError(f"waggle did not exit within {timeout:.0f}s of {sig.name}\n{self.output_tail()}")
        self._join_readers()
        return self.returncode

    def kill(self):
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        self._join_readers()

    def _join_readers(self):
        """Waits (briefly) for the output reader threads to reach the end of waggle's output."""
        for thread in self._threads:
            thread.join(timeout=2)

    @property
    def pid(self):
        return self.process.pid

    def alive(self):
        return self.process is not None and self.process.poll() is None

    # -- output --

    def output_tail(self, n=60):
        out = "\n".join(self.lines[-n:])
        err = "\n".join(self.stderr_lines[-n:])
        return f"--- waggle stdout (last {n} lines) ---\n{out}\n--- waggle stderr ---\n{err}"

    def records(self):
        return [record for record in map(parse_json_line, list(self.lines)) if record is not None]

    def records_at(self, level, since=0):
        return [r for r in map(parse_json_line, list(self.lines[since:])) if r and r.get("level") == level]

    def assert_no_secrets(self):
        text = "\n".join(self.lines + self.stderr_lines)
        for secret in self.secrets:
            assert secret not in text, f"a secret ({secret[:4]}…) appeared in waggle's output"

    # -- addresses --

    def host_port(self, listener):
        host, _, port = self.addresses[listener].rpartition(":")
        return host.strip("[]"), int(port)

    @property
    def http_url(self):
        return "http://" + self.addresses["otlp_http"]

    @property
    def grpc_target(self):
        return self.addresses["otlp_grpc"]

    @property
    def admin_url(self):
        return "http://" + self.addresses["admin"]

    @property
    def udp_address(self):
        return self.host_port("xray_udp")

    # -- admin + query API --

    def get(self, path, **params):
        return requests.get(self.admin_url + path, params=params or None, timeout=10)

    def get_json(self, path, **params):
        response = self.get(path, **params)
        assert response.status_code == 200, f"GET {path} -> {response.status_code}: {response.text[:500]}"
        return response.json()

    def query(self, spec):
        """POST a Honeycomb query specification to /api/query; return the response."""
        return requests.post(self.admin_url + "/api/query", json=spec, timeout=30)

    def query_json(self, spec):
        response = self.query(spec)
        assert response.status_code == 200, f"POST /api/query -> {response.status_code}: {response.text[:500]}"
        return response.json()

    def traces(self, **params):
        params.setdefault("limit", 1000)
        return self.get_json("/api/traces", **params)["traces"]

    def trace(self, trace_id):
        """The stored spans of one trace, or None while it is unknown (404)."""
        response = self.get(f"/api/traces/{trace_id}")
        if response.status_code == 404:
            return None
        assert response.status_code == 200, f"GET /api/traces/{trace_id} -> {response.status_code}: {response.text[:500]}"
        return response.json()

    def wait_for_spans(self, trace_id, count, timeout=STORE_TIMEOUT):
        """Poll until the trace holds at least `count` spans; return its spans by span id."""

        def ready():
            body = self.trace(trace_id)
            if body and len(body["spans"]) >= count:
                return body

        body = wait_for(ready, timeout, what=f"{count} spans of trace {trace_id} in the store")
        return {span["span_id"]: span for span in body["spans"]}

    def logs(self, **params):
        params.setdefault("limit", 1000)
        return self.get_json("/api/logs", **params)["logs"]

    def metrics_list(self, **params):
        params.setdefault("limit", 1000)
        return self.get_json("/api/metrics", **params)["metrics"]

    def prometheus(self):
        response = self.get("/metrics")
        assert response.status_code == 200, f"GET /metrics -> {response.status_code}"
        return parse_prometheus(response.text)

    def counter(self, name, **labels):
        """Sum of every sample of `name` whose labels include `labels`."""
        return sum(
            value
            for (sample, sample_labels), value in self.prometheus().items()
            if sample == name and all(dict(sample_labels).get(k) == v for k, v in labels.items())
        )

    def snapshot(self):
        """What the store holds, to show that a bad request changed nothing."""
        return {
            "traces": sorted(t["trace_id"] for t in self.traces()),
            "logs": sorted(json.dumps(log, sort_keys=True) for log in self.logs()),
            "metrics": sorted(json.dumps(metric, sort_keys=True) for metric in self.metrics_list()),
        }

    def memory(self):
        """VmRSS and VmHWM of the waggle process, in KiB."""
        status = Path(f"/proc/{self.pid}/status").read_text()
        values = {}
        for line in status.splitlines():
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values[key] = int(rest.split()[0])
        return values


def parse_json_line(line):
    try:
        record = json.loads(line)
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)(\s+\S+)?$")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_prometheus(text):
    """Prometheus text exposition -> {(name, ((label, value), ...)): float}."""
    samples = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        match = _SAMPLE.match(line)
        if not match:
            continue
        name, _, labels, value, _ = match.groups()
        label_pairs = tuple(sorted(_LABEL.findall(labels or "")))
        samples[(name, label_pairs)] = float(value)
    return samples


class WaggleFactory:
    """Starts waggle processes in one directory and tears all of them down."""

    def __init__(self, workdir):
        self.workdir = workdir
        self.started = []

    def __call__(self, extra_config=None, data_dir=None, name=None, env=None, nofile=None):
        name = name or f"waggle{len(self.started)}"
        try:
            waggle_binary()
        except WaggleError as error:
            pytest.fail(str(error), pytrace=False)
        waggle = Waggle(self.workdir, extra_config=extra_config, data_dir=data_dir, name=name, env=env, nofile=nofile)
        self.started.append(waggle)
        waggle.start()
        return waggle

    def teardown(self):
        problems = []
        for waggle in self.started:
            try:
                if waggle.alive():
                    code = waggle.stop(signal.SIGTERM)
                    if code != 0:
                        problems.append(f"{waggle.name} exited {code} after SIGTERM\n{waggle.output_tail()}")
                elif waggle.process is not None and waggle.returncode is None:
                    problems.append(
                        f"{waggle.name} died during the test with exit code {waggle.process.returncode}\n"
                        f"{waggle.output_tail()}"
                    )
                waggle.assert_no_secrets()
            except (WaggleError, AssertionError) as error:
                problems.append(f"{waggle.name}: {error}")
            finally:
                waggle.kill()
            # Shown by pytest next to a failure; handy when the cause is on waggle's side.
            print(f"\n===== {waggle.name} (pid {waggle.process.pid if waggle.process else '-'}) =====")
            print(waggle.output_tail(200))
        if problems:
            pytest.fail("\n\n".join(problems), pytrace=False)


# ---- OTLP request builders -------------------------------------------------------------------


def new_trace_id():
    return uuid.uuid4().hex


def new_span_id():
    return uuid.uuid4().hex[:16]


def otlp_trace_request(service="sentinel", trace_id=None, span_id=None, name="sentinel-span", attributes=None):
    """A one-span ExportTraceServiceRequest (protobuf message)."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
    from opentelemetry.proto.trace.v1.trace_pb2 import Span

    now = time.time_ns()
    request = ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add()
    resource_spans.resource.attributes.append(KeyValue(key="service.name", value=AnyValue(string_value=service)))
    scope_spans = resource_spans.scope_spans.add()
    scope_spans.scope.name = "waggle-e2e"
    span = scope_spans.spans.add()
    span.trace_id = bytes.fromhex(trace_id or new_trace_id())
    span.span_id = bytes.fromhex(span_id or new_span_id())
    span.name = name
    span.kind = Span.SPAN_KIND_SERVER
    span.start_time_unix_nano = now - 1_000_000
    span.end_time_unix_nano = now
    for key, value in (attributes or {}).items():
        span.attributes.append(KeyValue(key=key, value=AnyValue(string_value=value)))
    return request


def otlp_logs_request(service="sentinel", body="sentinel log line", trace_id=None, span_id=None):
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

    request = ExportLogsServiceRequest()
    resource_logs = request.resource_logs.add()
    resource_logs.resource.attributes.append(KeyValue(key="service.name", value=AnyValue(string_value=service)))
    record = resource_logs.scope_logs.add().log_records.add()
    record.time_unix_nano = time.time_ns()
    record.severity_number = 9
    record.severity_text = "INFO"
    record.body.string_value = body
    if trace_id:
        record.trace_id = bytes.fromhex(trace_id)
    if span_id:
        record.span_id = bytes.fromhex(span_id)
    return request


def otlp_json_trace_body(trace_id, span_id, service="sentinel", name="json-span"):
    """An OTLP/JSON ExportTraceServiceRequest as a dict (hex ids, string int64s)."""
    now = time.time_ns()
    return {
        "resourceSpans": [
            {
                "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]},
                "scopeSpans": [
                    {
                        "scope": {"name": "waggle-e2e"},
                        "spans": [
                            {
                                "traceId": trace_id,
                                "spanId": span_id,
                                "name": name,
                                "kind": 2,
                                "startTimeUnixNano": str(now - 1_000_000),
                                "endTimeUnixNano": str(now),
                            }
                        ],
                    }
                ],
            }
        ]
    }


def post_otlp(waggle, path, body, content_type="application/x-protobuf", headers=None):
    all_headers = {"Content-Type": content_type} if content_type is not None else {}
    all_headers.update(headers or {})
    return requests.post(waggle.http_url + path, data=body, headers=all_headers, timeout=30)


def send_sentinel_trace(waggle):
    """A good OTLP/HTTP request must still succeed and land; return its trace id."""
    trace_id = new_trace_id()
    response = post_otlp(waggle, "/v1/traces", otlp_trace_request(trace_id=trace_id).SerializeToString())
    assert response.status_code == 200, f"a good request after the bad one got {response.status_code}: {response.text[:300]}"
    waggle.wait_for_spans(trace_id, 1)
    return trace_id


def assert_store_unchanged_but_for(waggle, before, trace_ids):
    """The store holds what it held `before` plus exactly `trace_ids`, and no new logs/metrics."""
    after = waggle.snapshot()
    assert after["traces"] == sorted(set(before["traces"]) | set(trace_ids)), (
        f"traces changed beyond the sentinel: before={before['traces']} after={after['traces']} sentinel={trace_ids}"
    )
    assert after["logs"] == before["logs"], "the log store changed"
    assert after["metrics"] == before["metrics"], "the metric store changed"


def xray_datagram(document, header=b'{"format":"json","version":1}'):
    body = document if isinstance(document, bytes) else json.dumps(document).encode()
    return header + b"\n" + body


def new_xray_trace_id():
    return "1-%08x-%s" % (int(time.time()), uuid.uuid4().hex[:24])


def xray_to_otlp_trace_id(xray_trace_id):
    _, epoch, rest = xray_trace_id.split("-")
    return epoch + rest


def xray_segment(name="sentinel-segment", trace_id=None, segment_id=None, **extra):
    now = time.time()
    document = {
        "name": name,
        "id": segment_id or new_span_id(),
        "trace_id": trace_id or new_xray_trace_id(),
        "start_time": now - 0.01,
        "end_time": now,
    }
    document.update(extra)
    return document


# ---- the example app, in its own process -----------------------------------------------------


def run_driver(env, *args, timeout=75):
    """Run drive_app.py with `env` on top of a scrubbed copy of ours; return its JSON report."""
    child_env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("OTEL_", "AWS_", "WAGGLE_", "HONEYCOMB_", "XRAY_"))
    }
    child_env.update(
        {
            "OTEL_EXPORTER_OTLP_TIMEOUT": "10",
            "OTEL_METRIC_EXPORT_INTERVAL": "600000",  # metrics only on flush/shutdown
            "PYTHONUNBUFFERED": "1",
        }
    )
    child_env.update(env)
    completed = subprocess.run(
        [sys.executable, str(DRIVER), *args],
        env=child_env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert completed.returncode == 0, (
        f"drive_app.py exited {completed.returncode}\n--- stderr ---\n{completed.stderr[-5000:]}"
    )
    lines = completed.stdout.strip().splitlines()
    assert lines, f"drive_app.py printed nothing\n--- stderr ---\n{completed.stderr[-5000:]}"
    report = json.loads(lines[-1])
    report["stderr"] = completed.stderr
    return report


def parse_xray_datagrams(datagrams):
    """The documents the X-Ray SDK sent, as (header, body) dicts."""
    documents = []
    for datagram in datagrams:
        header, _, body = datagram.partition("\n")
        documents.append((json.loads(header), json.loads(body)))
    return documents


def xray_entities(documents):
    """Every segment/subsegment in the sent documents with the parent waggle must give it.

    A segment's parent is its `parent_id` (absent for a root); an embedded subsegment's parent
    is the entity that encloses it; a streamed subsegment's parent is its `parent_id`.
    """
    entities = []

    def walk(entity, trace_id, parent_id, is_segment):
        entities.append(
            {
                "id": entity["id"],
                "trace_id": trace_id,
                "parent_id": parent_id,
                "name": entity["name"],
                "segment": is_segment,
                "document": entity,
            }
        )
        for child in entity.get("subsegments", []):
            walk(child, trace_id, entity["id"], False)

    for _, body in documents:
        if body.get("type") == "subsegment":
            walk(body, body["trace_id"], body["parent_id"], False)
        else:
            walk(body, body["trace_id"], body.get("parent_id"), True)
    return entities


# ---- how the example app is pointed at an OTLP receiver --------------------------------------

# (protocol, compression): every transport the Python SDK has, with and without gzip where the
# exporter supports it.
TRANSPORTS = [
    ("http/protobuf", None),
    ("http/protobuf", "gzip"),
    ("http/json", None),
    ("http/json", "gzip"),
    ("grpc", None),
    ("grpc", "gzip"),
]


def transport_id(transport):
    protocol, compression = transport
    return protocol.replace("/", "-") + (f"-{compression}" if compression else "")


def otlp_env(protocol, compression, http_address, grpc_address, service="backend-flask"):
    """The env a user sets to point the app at an OTLP receiver (nothing else)."""
    address = grpc_address if protocol == "grpc" else http_address
    env = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://{address}",
        "OTEL_EXPORTER_OTLP_PROTOCOL": protocol,
        "OTEL_SERVICE_NAME": service,
    }
    if compression:
        env["OTEL_EXPORTER_OTLP_COMPRESSION"] = compression
    return env


def unique_spans_body(span_ids, service, trace_id=None):
    """A serialized OTLP trace request with one span per id in `span_ids` (one trace)."""
    request = otlp_trace_request(service=service, trace_id=trace_id or new_trace_id(), span_id=span_ids[0])
    spans = request.resource_spans[0].scope_spans[0].spans
    for span_id in span_ids[1:]:
        span = spans.add()
        span.CopyFrom(spans[0])
        span.span_id = bytes.fromhex(span_id)
    return request.SerializeToString()
