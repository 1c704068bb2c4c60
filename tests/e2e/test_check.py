"""`waggle check` against real peers on loopback: moto (STS, CloudWatch Logs), the SigV4-checking
X-Ray fake (PutTraceSegments and GetSamplingRules; moto has no sampling API) and the Honeycomb
stand-in (`GET /1/auth`). Every line's text is asserted, and the exit code: 0 only when all
that is configured is OK.
"""

import json
import subprocess

import pytest
from botocore.credentials import Credentials

from helpers import base_config, clean_environment, merge, toml_dumps, waggle_binary
from honeycomb_standin import HoneycombStandIn
from rollbar_standin import RollbarStandIn
from moto import CREDENTIALS, MotoServer, free_port
from sigv4_upstream import SigV4Upstream

pytestmark = pytest.mark.timeout(90)

API_KEY = "hcaik_01checkstandinkey0000000000"
ROLLBAR_TOKEN = "0123456789abcdef0123456789abcdef"
ROLLBAR_CLIENT_TOKEN = "fedcba9876543210fedcba9876543210"
LOG_GROUP = "/waggle/check"


@pytest.fixture
def moto(tmp_path):
    server = MotoServer(tmp_path)
    yield server
    server.stop()


@pytest.fixture
def xray_fake():
    upstream = SigV4Upstream(Credentials(CREDENTIALS["AWS_ACCESS_KEY_ID"], CREDENTIALS["AWS_SECRET_ACCESS_KEY"]), region="us-east-1")
    yield upstream
    upstream.stop()


@pytest.fixture
def honeycomb():
    standin = HoneycombStandIn(API_KEY)
    yield standin
    standin.stop()


def run_check(workdir, config=None, env=None, json_output=False):
    """Runs `waggle check` with a clean environment; returns (exit code, stdout lines or JSON)."""
    config_path = workdir / "check.toml"
    config_path.write_text(toml_dumps(merge(base_config(workdir / "data"), config or {})))
    argv = [str(waggle_binary()), "--config", str(config_path), "check"] + (["--json"] if json_output else [])
    completed = subprocess.run(argv, env=clean_environment(env), cwd=workdir, capture_output=True, text=True, timeout=60)
    for secret in (API_KEY, ROLLBAR_TOKEN, ROLLBAR_CLIENT_TOKEN, "wrongwrongwrongwrongwrongwrong00"):
        assert secret not in completed.stdout + completed.stderr, "a secret was printed"
    if json_output:
        return completed.returncode, json.loads(completed.stdout)
    return completed.returncode, completed.stdout.splitlines()


def aws_env(moto, xray_fake):
    return {
        **CREDENTIALS,
        "AWS_ENDPOINT_URL_STS": moto.url,
        "AWS_ENDPOINT_URL_CLOUDWATCH_LOGS": moto.url,
        "AWS_ENDPOINT_URL_XRAY": xray_fake.url,
    }


def everything(honeycomb_url):
    return {
        "destinations": {
            "honeycomb": {"endpoint": honeycomb_url},
            "cloudwatch_logs": {"log_group": LOG_GROUP},
        }
    }


def closed_port_url():
    return f"http://127.0.0.1:{free_port()}"


def test_everything_configured_and_working_is_ok(tmp_path, moto, xray_fake, honeycomb):
    moto.client("logs").create_log_group(logGroupName=LOG_GROUP)
    env = {**aws_env(moto, xray_fake), "HONEYCOMB_API_KEY": API_KEY}
    code, lines = run_check(tmp_path, everything(honeycomb.url), env)
    assert lines == [
        "honeycomb: OK — key accepted: team Cruddur (cruddur), environment Development (development)",
        "aws: OK — identity arn:aws:sts::123456789012:user/moto (account 123456789012), "
        "region us-east-1 from the environment (AWS_REGION or AWS_DEFAULT_REGION)",
        f"xray: OK — PutTraceSegments and GetSamplingRules allowed at {xray_fake.url} (2 sampling rules)",
        'xray protocol: OK — Transaction Search is off (trace segment destination XRay, ACTIVE): '
        'destinations.xray.protocol = "segments" is right for this account',
        f"cloudwatch_logs: OK — log group {LOG_GROUP} exists; the identity may put events ({moto.url})",
    ], lines
    assert code == 0
    # The X-Ray calls were signed with the credentials found (the fake checks every signature).
    assert [r.signature for r in xray_fake.requests("/GetSamplingRules")] == ["valid"]


def test_json_output_for_scripts(tmp_path, moto, xray_fake, honeycomb):
    env = {**aws_env(moto, xray_fake), "HONEYCOMB_API_KEY": API_KEY}
    code, report = run_check(tmp_path, everything(honeycomb.url), env, json_output=True)
    assert report["ok"] is True and code == 0, report
    outcomes = {check["name"]: check["outcome"] for check in report["checks"]}
    assert outcomes == {"honeycomb": "ok", "aws": "ok", "xray": "ok", "xray protocol": "ok", "cloudwatch_logs": "ok"}, report
    cloudwatch = next(check for check in report["checks"] if check["name"] == "cloudwatch_logs")
    assert cloudwatch["message"].startswith(f"log group {LOG_GROUP} does not exist yet: waggle creates it on first write")


def xray_line(lines):
    [line] = [line for line in lines if line.startswith("xray protocol:")]
    return line


def test_otlp_without_transaction_search_fails_with_the_protocol_to_use(tmp_path, moto, xray_fake):
    config = {"destinations": {"xray": {"protocol": "otlp"}}}
    code, lines = run_check(tmp_path, config, aws_env(moto, xray_fake))
    assert xray_line(lines) == (
        'xray protocol: FAIL — Transaction Search is off (trace segment destination XRay, ACTIVE): '
        'set destinations.xray.protocol = "segments" ("otlp" is configured): '
        "X-Ray's OTLP endpoint refuses spans until Transaction Search is on"
    ), lines
    assert code == 1
    assert [r.signature for r in xray_fake.requests("/GetTraceSegmentDestination")] == ["valid"]


def test_transaction_search_on_suggests_otlp_and_passes(tmp_path, moto, xray_fake):
    xray_fake.trace_destination = "CloudWatchLogs"
    code, lines = run_check(tmp_path, None, aws_env(moto, xray_fake))
    assert xray_line(lines) == (
        'xray protocol: OK — Transaction Search is on (trace segment destination CloudWatchLogs, ACTIVE): '
        'set destinations.xray.protocol = "otlp" ("segments" is configured)'
    ), lines
    assert code == 0, lines


def test_a_wrong_honeycomb_key_fails_with_the_fix(tmp_path, honeycomb):
    code, lines = run_check(tmp_path, everything(honeycomb.url), {"HONEYCOMB_API_KEY": "hcaik_01wrongwrongwrongwrongwrong"})
    assert lines[0] == (
        "honeycomb: FAIL — Honeycomb rejected the API key (HTTP 401): check HONEYCOMB_API_KEY "
        "(an ingest key of the environment you look at)"
    ), lines
    assert code == 1


def test_a_classic_key_without_a_dataset_fails(tmp_path):
    standin = HoneycombStandIn(API_KEY, classic=True)
    try:
        code, lines = run_check(tmp_path, everything(standin.url), {"HONEYCOMB_API_KEY": API_KEY})
    finally:
        standin.stop()
    assert lines[0] == (
        "honeycomb: FAIL — key accepted (team Cruddur (cruddur)), but it is a Honeycomb Classic key "
        "without a dataset: set HONEYCOMB_DATASET"
    ), lines
    assert code == 1


def test_nothing_configured_is_off_and_passes(tmp_path):
    code, lines = run_check(tmp_path)
    assert lines == [
        "honeycomb: off — HONEYCOMB_API_KEY not set",
        "aws: off — no AWS region: set AWS_REGION, --region or the destination's region key",
    ], lines
    assert code == 0


def test_no_aws_credentials_fails_with_the_fix(tmp_path):
    code, lines = run_check(tmp_path, env={"AWS_REGION": "us-east-1"})
    assert lines[1] == (
        "aws: FAIL — no AWS credentials (looked in the environment, the shared profile, web identity, ECS and "
        "instance metadata): set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE, or give the task "
        "or instance an IAM role"
    ), lines
    assert code == 1


def test_unreachable_endpoints_say_connect(tmp_path, moto):
    closed = closed_port_url()
    env = {**CREDENTIALS, "AWS_ENDPOINT_URL_STS": moto.url, "AWS_ENDPOINT_URL_XRAY": closed, "HONEYCOMB_API_KEY": API_KEY}
    code, lines = run_check(tmp_path, {"destinations": {"honeycomb": {"endpoint": closed}}}, env)
    assert lines[0].startswith(
        f"honeycomb: FAIL — connect: {closed}/1/auth refused or dropped the connection: check the address and that it is up ("
    ), lines
    assert lines[1].startswith("aws: OK — identity arn:aws:sts::123456789012:user/moto"), lines
    assert lines[2].startswith(
        f"xray: FAIL — PutTraceSegments: connect: X-Ray at {closed} refused or dropped the connection"
    ), lines
    assert code == 1


def test_an_app_side_honeycomb_setup_says_how_to_move_the_key(tmp_path):
    env = {"OTEL_EXPORTER_OTLP_HEADERS": f"x-honeycomb-team={API_KEY}", "OTEL_EXPORTER_OTLP_ENDPOINT": "https://api.honeycomb.io"}
    code, lines = run_check(tmp_path, env=env)
    assert lines[0] == (
        "honeycomb: FAIL — this environment still sends to Honeycomb from the app (OTEL_EXPORTER_OTLP_HEADERS, "
        "OTEL_EXPORTER_OTLP_ENDPOINT) but waggle has no Honeycomb key: move the key to waggle — set HONEYCOMB_API_KEY "
        "on waggle to the x-honeycomb-team value, then point the app at waggle "
        "(OTEL_EXPORTER_OTLP_ENDPOINT=http://<waggle host>:4318) and drop the Honeycomb header from the app"
    ), lines
    assert code == 1


# ---- Rollbar: the token checked with an item Rollbar must refuse as incomplete ----------------


@pytest.fixture
def rollbar():
    standin = RollbarStandIn(ROLLBAR_TOKEN, client_tokens=[ROLLBAR_CLIENT_TOKEN])
    yield standin
    standin.stop()


def rollbar_line(lines):
    [line] = [line for line in lines if line.startswith("rollbar:")]
    return line


def test_a_good_rollbar_token_is_ok_and_records_nothing(tmp_path, rollbar):
    config = {"destinations": {"rollbar": {"endpoint": rollbar.endpoint, "environment": "staging"}}}
    code, lines = run_check(tmp_path, config, {"ROLLBAR_ACCESS_TOKEN": ROLLBAR_TOKEN})
    assert rollbar_line(lines) == (
        f"rollbar: OK — access token accepted: it may post items to {rollbar.endpoint}item/ (environment staging)"
    ), lines
    assert code == 0, lines
    [probe] = rollbar.attempts()
    assert probe.headers["x-rollbar-access-token"] == ROLLBAR_TOKEN
    assert probe.status == 422 and "data.body is required" in probe.problem
    assert rollbar.items() == [], "the check must not record an item"


def test_a_wrong_rollbar_token_fails_with_the_fix(tmp_path, rollbar):
    config = {"destinations": {"rollbar": {"endpoint": rollbar.endpoint}}}
    code, lines = run_check(tmp_path, config, {"ROLLBAR_ACCESS_TOKEN": "wrongwrongwrongwrongwrongwrong00"})
    assert rollbar_line(lines) == (
        "rollbar: FAIL — Rollbar rejected the access token (HTTP 401): check ROLLBAR_ACCESS_TOKEN "
        "(a project access token with the post_server_item scope)"
    ), lines
    assert code == 1


def test_a_client_side_rollbar_token_says_which_token_to_use(tmp_path, rollbar):
    config = {"destinations": {"rollbar": {"endpoint": rollbar.endpoint}}}
    code, lines = run_check(tmp_path, config, {"ROLLBAR_ACCESS_TOKEN": ROLLBAR_CLIENT_TOKEN})
    assert rollbar_line(lines) == (
        "rollbar: FAIL — the access token may not post server items: use the project's post_server_item token "
        "in ROLLBAR_ACCESS_TOKEN"
    ), lines
    assert code == 1


def test_an_unreachable_rollbar_says_connect(tmp_path):
    closed = closed_port_url() + "/api/1/"
    code, lines = run_check(tmp_path, {"destinations": {"rollbar": {"endpoint": closed}}}, {"ROLLBAR_ACCESS_TOKEN": ROLLBAR_TOKEN})
    assert rollbar_line(lines).startswith(
        f"rollbar: FAIL — connect: {closed}item/ refused or dropped the connection: check the address and that it is up ("
    ), lines
    assert code == 1
