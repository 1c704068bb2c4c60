"""The X-Ray sampling proxy on waggle's TCP port, with the real aws-xray-sdk and a fake X-Ray API
that verifies every SigV4 signature with botocore (`sigv4_upstream.py`).

- The SDK, with centralized sampling and `AWS_XRAY_DAEMON_ADDRESS=tcp:… udp:…` pointing at
  waggle, gets its rules through waggle (its rule cache holds the Cruddur rule) and reports its
  statistics (`/SamplingTargets` reaches the fake, validly signed, and the SDK applies the
  quota the fake answered).
- Paths other than the three sampling calls get 404 and never reach the fake; headers a client
  or a mesh adds are not signed and do not break the signature; without credentials waggle
  answers 503 and forwards nothing.
- Without waggle: the SDK really polls `/GetSamplingRules` and `/SamplingTargets`, unsigned
  (the premise of the proxy), and the fake's botocore check accepts a correctly signed request
  and rejects tampered ones.

The SDK runs in a subprocess (this file, run as a script) so its global recorder and poller
threads are its own; it prints a JSON report of its rule cache.
"""

import json
import os
import subprocess
import sys
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))

ACCESS_KEY = "AKIDWAGGLEE2E0000001"
SECRET_KEY = "waggle/E2E+Secret/Key00000000000000000000"
REGION = "eu-west-1"
SDK_TIMEOUT = 45


# ---- the SDK side (runs in its own process) --------------------------------------------------


def sdk_client_main(argv):
    """Run the aws-xray-sdk's centralized sampler against AWS_XRAY_DAEMON_ADDRESS until it has
    the Cruddur rule and (unless --rules-only) has applied a target; print a JSON report."""
    import argparse
    import logging

    parser = argparse.ArgumentParser()
    parser.add_argument("--deadline", type=float, default=30.0)
    parser.add_argument("--rules-only", action="store_true")
    args = parser.parse_args(argv)

    errors = []

    class Collect(logging.Handler):
        def emit(self, record):
            errors.append(f"{record.levelname} {record.name}: {record.getMessage()}")

    logging.getLogger("aws_xray_sdk").addHandler(Collect(level=logging.WARNING))

    from aws_xray_sdk.core import xray_recorder

    xray_recorder.configure(service="backend-flask", sampling=True, context_missing="LOG_ERROR")
    sampler = xray_recorder.sampler
    # The target poller waits 10 s between reports; 1 s keeps the test short (same code path).
    sampler._target_poller._interval = 1
    deadline = time.monotonic() + args.deadline

    def rules():
        return {rule.name: rule for rule in sampler._cache.rules}

    sampler.start()
    while "Cruddur" not in rules() and time.monotonic() < deadline:
        time.sleep(0.1)

    request = {"service": "backend-flask", "host": "localhost:4567", "method": "GET", "path": "/api/activities/home"}
    decisions = []
    targets_applied = False
    while "Cruddur" in rules() and time.monotonic() < deadline:
        decisions.append(sampler.should_trace(dict(request)))
        cruddur = rules()["Cruddur"]
        if args.rules_only or cruddur.reservoir.quota is not None:
            targets_applied = cruddur.reservoir.quota is not None
            break
        time.sleep(0.2)

    report = {
        "rules": [
            {
                "name": rule.name,
                "priority": rule.priority,
                "rate": rule.rate,
                "can_borrow": rule.can_borrow,
                "service": rule._service,
                "quota": rule.reservoir.quota,
                "ttl": rule.reservoir.TTL,
            }
            for rule in sampler._cache.rules
        ],
        "decisions": decisions,
        "targets_applied": targets_applied,
        "errors": errors,
    }
    print(json.dumps(report), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(sdk_client_main(sys.argv[1:]))


# ---- the tests -------------------------------------------------------------------------------

import pytest  # noqa: E402
import requests  # noqa: E402
from botocore.auth import SigV4Auth  # noqa: E402
from botocore.awsrequest import AWSRequest  # noqa: E402
from botocore.credentials import Credentials  # noqa: E402

from sigv4_upstream import TARGET_QUOTA, SigV4Upstream, verify_sigv4  # noqa: E402

pytestmark = pytest.mark.timeout(90)

CREDENTIALS = Credentials(ACCESS_KEY, SECRET_KEY)
# The only headers waggle may send upstream; everything the SDK or a mesh added stays behind.
ALLOWED_UPSTREAM_HEADERS = {
    "host",
    "content-type",
    "content-length",
    "x-amz-date",
    "authorization",
    "x-amz-security-token",
    "user-agent",
}


def run_sdk_client(tcp, udp, *args):
    """Run this file as the SDK process with AWS_XRAY_DAEMON_ADDRESS=tcp:… udp:…; return its report."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("AWS_", "OTEL_", "XRAY_"))}
    env["AWS_XRAY_DAEMON_ADDRESS"] = f"tcp:{tcp[0]}:{tcp[1]} udp:{udp[0]}:{udp[1]}"
    env["PYTHONUNBUFFERED"] = "1"
    completed = subprocess.run(
        [sys.executable, os.path.abspath(__file__), *args],
        env=env,
        cwd=HERE,
        capture_output=True,
        text=True,
        timeout=SDK_TIMEOUT,
    )
    assert completed.returncode == 0, f"SDK process exited {completed.returncode}\n{completed.stderr[-5000:]}"
    lines = completed.stdout.strip().splitlines()
    assert lines, f"the SDK process printed nothing\n{completed.stderr[-5000:]}"
    report = json.loads(lines[-1])
    report["stderr"] = completed.stderr
    return report


def assert_cruddur_rule(report):
    rules = {rule["name"]: rule for rule in report["rules"]}
    assert "Cruddur" in rules, f"the SDK's rule cache has no Cruddur rule: {report}"
    cruddur = rules["Cruddur"]
    assert cruddur["priority"] == 9000
    assert cruddur["rate"] == 0.1
    assert cruddur["can_borrow"] is True  # reservoir 5
    assert cruddur["service"] == "backend-flask"
    assert "Default" in rules
    assert [rule["name"] for rule in report["rules"]] == ["Cruddur", "Default"], "sorted by priority"
    assert report["decisions"] and report["decisions"][0] == "Cruddur", report["decisions"]


def free_udp_port():
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def upstream():
    server = SigV4Upstream(CREDENTIALS, region=REGION)
    yield server
    server.stop()


# ---- waggle ----------------------------------------------------------------------------------


def aws_env(upstream, tmp_path, with_keys=True):
    env = {
        "AWS_ENDPOINT_URL_XRAY": upstream.url,
        "AWS_REGION": REGION,
        # No IMDS, no profile files from the machine: the only credentials are the ones given.
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-credentials"),
        "AWS_CONFIG_FILE": str(tmp_path / "no-config"),
    }
    if with_keys:
        env.update({"AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY})
    return env


def start_waggle(waggle_factory, upstream, tmp_path, with_keys=True):
    config = {"receivers": {"xray_tcp": {"endpoint": "127.0.0.1:0"}}}
    try:
        waggle = waggle_factory(config, env=aws_env(upstream, tmp_path, with_keys))
    except TypeError as error:
        if "env" not in str(error):
            raise
        pytest.fail("the e2e harness must accept waggle_factory(extra_config, env={...})", pytrace=False)
    waggle.secrets.append(SECRET_KEY)
    return waggle


def tcp_address(waggle):
    """The sampling proxy's address, from waggle's `listening` line for `xray_tcp`."""
    if "xray_tcp" in waggle.addresses:
        address = waggle.addresses["xray_tcp"]
    else:
        lines = [
            record.get("fields", {})
            for record in waggle.records()
            if record.get("fields", {}).get("message") == "listening"
            and record.get("fields", {}).get("listener") == "xray_tcp"
        ]
        assert lines, "waggle logged no 'listening' line for xray_tcp\n" + waggle.output_tail()
        address = lines[-1]["address"]
    host, _, port = address.rpartition(":")
    return host.strip("[]"), int(port)


def proxy_url(waggle, path):
    host, port = tcp_address(waggle)
    return f"http://{host}:{port}{path}"


def assert_signed_minimal(received):
    assert received.signature == "valid", received
    assert received.scope.startswith(f"{ACCESS_KEY}/") and received.scope.endswith(f"/{REGION}/xray/aws4_request")
    assert received.signed_headers == ["content-length", "content-type", "host", "x-amz-date"], received
    extra = set(received.headers) - ALLOWED_UPSTREAM_HEADERS
    assert not extra, f"headers reached the X-Ray API that waggle should not send: {extra}"
    assert "accept-encoding" not in received.headers, "waggle must not ask for compression"


def test_sdk_gets_rules_and_reports_targets_through_waggle(waggle_factory, upstream, tmp_path):
    waggle = start_waggle(waggle_factory, upstream, tmp_path)

    report = run_sdk_client(tcp_address(waggle), waggle.udp_address)

    assert_cruddur_rule(report)
    assert report["targets_applied"], f"the SDK never applied a sampling target: {report}"
    cruddur = next(rule for rule in report["rules"] if rule["name"] == "Cruddur")
    assert cruddur["quota"] == TARGET_QUOTA, "the quota the fake X-Ray API answered reached the SDK"
    rules_calls = upstream.requests("/GetSamplingRules")
    targets_calls = upstream.requests("/SamplingTargets")
    assert rules_calls and targets_calls, [(r.method, r.path) for r in upstream.requests()]
    for received in rules_calls + targets_calls:
        assert_signed_minimal(received)
        assert received.status == 200
        assert received.headers["content-type"] == "application/json"
    documents = targets_calls[0].json()["SamplingStatisticsDocuments"]
    cruddur_stats = [doc for doc in documents if doc["RuleName"] == "Cruddur"]
    assert cruddur_stats and cruddur_stats[0]["RequestCount"] >= 1, documents
    assert len(cruddur_stats[0]["ClientID"]) == 24
    assert not [r for r in upstream.requests() if r.signature != "valid"], upstream.requests()
    proxied = upstream.requests("/GetSamplingRules") + upstream.requests("/SamplingTargets")
    assert all("botocore" not in r.headers.get("user-agent", "").lower() for r in proxied), "the SDK's headers stay"


def test_other_paths_get_404_and_never_reach_the_upstream(waggle_factory, upstream, tmp_path):
    waggle = start_waggle(waggle_factory, upstream, tmp_path)
    marker = f"proxy-probe-{uuid.uuid4().hex}"
    probes = [
        ("POST", "/TraceSegments"),
        ("POST", "/TelemetryRecords"),
        ("POST", "/CreateSamplingRule"),
        ("POST", "/"),
        ("GET", "/GetSamplingRules"),
        ("DELETE", "/SamplingTargets"),
        ("POST", "/GetSamplingRules/extra"),
    ]

    for method, path in probes:
        body = json.dumps({"marker": marker, "TraceSegmentDocuments": []})
        response = requests.request(
            method, proxy_url(waggle, path), data=body, headers={"Content-Type": "application/json"}, timeout=10
        )
        assert response.status_code == 404, f"{method} {path}: {response.status_code} {response.text[:300]}"
        assert response.json()["__type"] == "UnknownOperationException"

    # The proxy works: the 404s were its choice.
    ok = requests.post(proxy_url(waggle, "/GetSamplingRules"), data="{}", timeout=10)
    assert ok.status_code == 200, ok.text
    assert [r["SamplingRule"]["RuleName"] for r in ok.json()["SamplingRuleRecords"]] == ["Cruddur", "Default"]
    for received in upstream.requests():
        assert marker.encode() not in received.body, f"a refused request reached the X-Ray API: {received}"
        assert received.method == "POST", received
        # Besides what was proxied: the X-Ray lane's own segments and its start-up Transaction
        # Search check (made by waggle itself, never through the proxy).
        assert received.path.split("?")[0] in {"/GetSamplingRules", "/TraceSegments", "/GetTraceSegmentDestination"}, (
            received
        )
    assert [r.path for r in upstream.requests("/GetSamplingRules")] == ["/GetSamplingRules"]
    rejected = waggle.counter("waggle_receiver_rejected_requests_total", receiver="xray_tcp", reason="not_found")
    assert rejected == len(probes)


def test_mesh_headers_neither_break_the_signature_nor_reach_aws(waggle_factory, upstream, tmp_path):
    waggle = start_waggle(waggle_factory, upstream, tmp_path)
    headers = {
        "Content-Type": "application/json",
        "x-envoy-foo": "bar",
        "x-envoy-expected-rq-timeout-ms": "15000",
        "x-request-id": str(uuid.uuid4()),
        "x-forwarded-proto": "http",
        "X-Amzn-Trace-Id": "Root=1-6b012ddc-0000000018e9f8b66bfabf1a",
        "Accept-Encoding": "gzip",
    }

    body = b'{"SamplingStatisticsDocuments":[]}'
    response = requests.post(proxy_url(waggle, "/SamplingTargets"), data=body, headers=headers, timeout=10)

    assert response.status_code == 200, response.text
    assert response.json()["SamplingTargetDocuments"] == []
    (received,) = upstream.requests("/SamplingTargets")
    assert_signed_minimal(received)
    assert received.body == body


def test_without_credentials_waggle_answers_503_and_forwards_nothing(waggle_factory, upstream, tmp_path):
    waggle = start_waggle(waggle_factory, upstream, tmp_path, with_keys=False)

    response = requests.post(proxy_url(waggle, "/GetSamplingRules"), data="{}", timeout=20)

    assert response.status_code == 503, response.text
    assert response.json()["__type"] == "CredentialsUnavailableException"
    assert "credentials" in response.json()["message"].lower()
    assert upstream.requests() == []


# ---- without waggle: the SDK's own behaviour, and the fake's signature check -----------------


def test_sdk_polls_rules_and_targets_unsigned_without_waggle():
    """The premise: the SDK calls the daemon's TCP port with unsigned POSTs to both paths."""
    fake = SigV4Upstream(CREDENTIALS, region=REGION, require_signature=False)
    try:
        report = run_sdk_client(("127.0.0.1", fake.port), ("127.0.0.1", free_udp_port()))
    finally:
        fake.stop()
    assert_cruddur_rule(report)
    assert report["targets_applied"], report
    rules_calls = fake.requests("/GetSamplingRules")
    targets_calls = fake.requests("/SamplingTargets")
    assert rules_calls and targets_calls, [(r.method, r.path) for r in fake.requests()]
    for received in rules_calls + targets_calls:
        assert received.method == "POST"
        assert received.signature == "unsigned"
        assert "authorization" not in received.headers
        assert received.headers["content-type"] == "application/json"
    assert rules_calls[0].json() == {}
    documents = targets_calls[0].json()["SamplingStatisticsDocuments"]
    assert {doc["RuleName"] for doc in documents} >= {"Cruddur"}
    assert set(documents[0]) == {"RuleName", "ClientID", "RequestCount", "BorrowCount", "SampledCount", "Timestamp"}


def botocore_signed(url, body, credentials=CREDENTIALS, region=REGION, service="xray", headers=None):
    request = AWSRequest(method="POST", url=url, data=body, headers=headers or {"Content-Type": "application/json"})
    SigV4Auth(credentials, service, region).add_auth(request)
    return request


def send(request, extra_headers=None, body=None, url=None):
    """Send a signed AWSRequest, optionally changed after signing."""
    headers = dict(request.headers.items())
    headers.update(extra_headers or {})
    data = request.body if body is None else body
    return requests.post(url or request.url, data=data, headers=headers, timeout=10)


def test_the_fake_accepts_a_botocore_signed_request_and_rejects_tampered_ones(upstream):
    url = upstream.url + "/GetSamplingRules"

    assert send(botocore_signed(url, b"{}")).status_code == 200
    assert upstream.requests()[-1].signature == "valid"

    token_credentials = Credentials(ACCESS_KEY, SECRET_KEY, "session-token-value")
    token_upstream = SigV4Upstream(token_credentials, region=REGION)
    try:
        ok = send(botocore_signed(token_upstream.url + "/SamplingTargets", b"{}", credentials=token_credentials))
        assert ok.status_code == 200, ok.text
        assert token_upstream.requests()[-1].signed_headers[-1] == "x-amz-security-token"
    finally:
        token_upstream.stop()

    tampered = {
        "changed body": lambda: send(botocore_signed(url, b"{}"), body=b'{"NextToken":"x"}'),
        "changed signed header": lambda: send(
            botocore_signed(url, b"{}"), extra_headers={"Content-Type": "application/x-amz-json-1.1"}
        ),
        "other secret": lambda: send(botocore_signed(url, b"{}", credentials=Credentials(ACCESS_KEY, "other"))),
        "other access key": lambda: send(botocore_signed(url, b"{}", credentials=Credentials("AKIDOTHER", SECRET_KEY))),
        "other region": lambda: send(botocore_signed(url, b"{}", region="us-east-1")),
        "other service": lambda: send(botocore_signed(url, b"{}", service="execute-api")),
        "other path": lambda: send(botocore_signed(upstream.url + "/SamplingTargets", b"{}"), url=url),
        "unsigned": lambda: requests.post(url, data=b"{}", timeout=10),
    }
    for what, attempt in tampered.items():
        before = len(upstream.requests())
        response = attempt()
        assert response.status_code == 403, f"{what}: {response.status_code} {response.text}"
        received = upstream.requests()[before]
        assert received.signature != "valid", what

    # Headers that were not signed may be added freely: the reason for a minimal set.
    ok = send(botocore_signed(url, b"{}"), extra_headers={"x-envoy-foo": "bar", "x-request-id": "1"})
    assert ok.status_code == 200, ok.text


def test_the_signature_check_refuses_an_old_date():
    request = botocore_signed("http://127.0.0.1:1/GetSamplingRules", b"{}")
    headers = {name.lower(): value for name, value in request.headers.items()}
    headers["host"] = "127.0.0.1:1"
    assert verify_sigv4("POST", "/GetSamplingRules", headers, b"{}", CREDENTIALS, REGION) == [
        "content-type",
        "host",
        "x-amz-date",
    ]
    with pytest.raises(Exception, match="expired"):
        verify_sigv4("POST", "/GetSamplingRules", headers, b"{}", CREDENTIALS, REGION, now=time.time() + 3600)
