"""`waggle status` against a running waggle: what `/status` says, for people —
per destination the items sent since start and in the last minute, backlog, last success; per
receiver what was accepted and rejected, by reason.
"""

import json
import subprocess

import pytest

from helpers import clean_environment, new_trace_id, otlp_trace_request, post_otlp, waggle_binary, wait_for

pytestmark = pytest.mark.timeout(60)


def run_status(waggle, *extra):
    completed = subprocess.run(
        [str(waggle_binary()), "status", "--url", waggle.admin_url, *extra],
        env=clean_environment(),
        capture_output=True,
        text=True,
        timeout=30,
    )
    return completed.returncode, completed.stdout, completed.stderr


def test_status_shows_what_was_sent_and_rejected(waggle):
    trace_id = new_trace_id()
    assert post_otlp(waggle, "/v1/traces", otlp_trace_request(trace_id=trace_id).SerializeToString()).status_code == 200
    assert post_otlp(waggle, "/v1/traces", b"not protobuf").status_code == 400
    waggle.wait_for_spans(trace_id, 1)

    # /status carries the new figures: last minute per signal and the backlog.
    def local_sent():
        local = next(d for d in waggle.get_json("/status")["destinations"] if d["name"] == "local")
        return local if local["last_minute"]["traces"]["sent"] == 1 else None

    local = wait_for(local_sent, what="the local store's last-minute count")
    assert local["backlog"] == {"queue_bytes": 0, "spool_bytes": 0}, local
    # ... and each receiver's accepted items and refusals / rejections by reason.
    receivers = waggle.get_json("/status")["receivers"]
    assert receivers["otlp_http"]["traces"] == {"accepted": 1, "refused": {}, "rejected_requests": {"malformed": 1}}, receivers
    assert receivers["otlp_http"]["logs"] == {"accepted": 0, "refused": {}, "rejected_requests": {}}, receivers

    code, out, err = run_status(waggle)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("waggle 0.1.0 — ready, up "), out
    assert "  honeycomb: off — HONEYCOMB_API_KEY not set" in lines, out
    local_at = lines.index(next(line for line in lines if line.startswith("  local: on — embedded store at ")))
    local_lines = lines[local_at + 1 : local_at + 6]
    assert local_lines[:3] == [
        "    logs: sent 0, failed 0, dropped 0; last minute: sent 0, failed 0, dropped 0",
        "    metrics: sent 0, failed 0, dropped 0; last minute: sent 0, failed 0, dropped 0",
        "    traces: sent 1, failed 0, dropped 0; last minute: sent 1, failed 0, dropped 0",
    ], out
    assert local_lines[3] == "    backlog: 0 B queued, 0 B spooled on disk", out
    assert local_lines[4].startswith("    last success: 20") and local_lines[4].endswith("; last error: none"), out
    receiver = [line for line in lines if line.startswith("  otlp_http traces: ")]
    assert receiver == ["  otlp_http traces: accepted 1; rejected requests 1 (malformed 1)"], out


def test_status_of_a_waggle_that_is_not_running_fails_and_says_so(tmp_path):
    completed = subprocess.run(
        [str(waggle_binary()), "status", "--url", "http://127.0.0.1:9"],
        env=clean_environment(),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert completed.returncode == 1
    assert completed.stderr.startswith("waggle: cannot read the status: http://127.0.0.1:9/status: "), completed.stderr
    assert "is waggle running?" in completed.stderr


def test_status_json_is_the_status_endpoint(waggle):
    code, out, _ = run_status(waggle, "--json")
    assert code == 0
    assert json.loads(out)["destinations"] == waggle.get_json("/status")["destinations"]
