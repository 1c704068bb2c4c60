"""Log output as a pipe, a file or `docker logs` sees it: text without colour codes, `RUST_LOG`
as the filter when it is set, no AWS SDK noise when no AWS destination is configured, and the
two lines an app copies (`OTEL_EXPORTER_OTLP_ENDPOINT=…`, `AWS_XRAY_DAEMON_ADDRESS=…`).
"""

import subprocess
import threading

import pytest
import requests

from moto import free_port
from helpers import (
    RUNNING,
    new_trace_id,
    otlp_trace_request,
    START_TIMEOUT,
    STOP_TIMEOUT,
    base_config,
    clean_environment,
    die_with_parent,
    toml_dumps,
    waggle_binary,
)

pytestmark = pytest.mark.timeout(60)


def text_log_until_ready(workdir, env=None):
    """Starts waggle with text logs on a pipe, returns every line up to its `ready` line, stops it."""
    config_path = workdir / "waggle.toml"
    config_path.write_text(toml_dumps(base_config(workdir / "data")))
    argv = [str(waggle_binary()), "--config", str(config_path), "--log-format", "text"]
    process = subprocess.Popen(
        argv,
        env=clean_environment(env),
        cwd=workdir,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        preexec_fn=die_with_parent,
    )
    RUNNING.add(process)
    # A waggle that never gets ready is killed, which ends the read loop below.
    watchdog = threading.Timer(START_TIMEOUT, process.kill)
    watchdog.start()
    lines = []
    try:
        for raw in iter(process.stdout.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip("\n")
            lines.append(line)
            if line.endswith(" ready"):
                break
    finally:
        watchdog.cancel()
        process.terminate()
        process.wait(timeout=STOP_TIMEOUT)
        RUNNING.discard(process)
    assert any(line.endswith(" ready") for line in lines), "\n".join(lines)
    return lines


def test_text_logs_on_a_pipe_have_no_colour_codes(tmp_path):
    lines = text_log_until_ready(tmp_path)
    assert any("INFO" in line and "starting waggle" in line for line in lines), "\n".join(lines)
    coloured = [line for line in lines if "\x1b[" in line]
    assert coloured == [], coloured


def test_rust_log_is_the_filter_when_set(tmp_path):
    # Only WARN and above, except waggle::app at INFO: its `ready` line shows, the binary's
    # own `starting waggle` INFO line does not.
    lines = text_log_until_ready(tmp_path, {"RUST_LOG": "warn,waggle::app=info"})
    assert not any("starting waggle" in line for line in lines), "\n".join(lines)


def closed_port_url():
    """A loopback URL nothing listens on: instance metadata that never answers, off AWS."""
    return f"http://127.0.0.1:{free_port()}"


def test_without_aws_configuration_the_start_up_log_has_no_warning(waggle_factory):
    # As on a laptop: instance metadata is looked up (not switched off) and fails.
    waggle = waggle_factory(env={"AWS_EC2_METADATA_DISABLED": "false", "AWS_EC2_METADATA_SERVICE_ENDPOINT": closed_port_url()})
    warnings = waggle.records_at("WARN") + waggle.records_at("ERROR")
    assert warnings == [], warnings
    messages = [record.get("fields", {}).get("message", "") for record in waggle.records()]
    assert not any("us-east-1" in message for message in messages), "a region nobody chose was announced"
    proxy = [message for message in messages if message.startswith("X-Ray sampling proxy without AWS access")]
    assert proxy and "no AWS region: set AWS_REGION" in proxy[0], messages


def test_start_up_prints_the_environment_an_app_copies(waggle_factory):
    waggle = waggle_factory()
    messages = [record.get("fields", {}).get("message", "") for record in waggle.records()]
    otlp = [m for m in messages if m.startswith("OTEL_EXPORTER_OTLP_ENDPOINT=")]
    xray = [m for m in messages if m.startswith("AWS_XRAY_DAEMON_ADDRESS=")]
    assert otlp == [f"OTEL_EXPORTER_OTLP_ENDPOINT=http://{waggle.addresses['otlp_http']}"], messages
    # The test config puts UDP and TCP on different ports: the SDKs' two-part form.
    udp, tcp = waggle.addresses["xray_udp"], waggle.addresses["xray_tcp"]
    assert xray == [f"AWS_XRAY_DAEMON_ADDRESS=tcp:{tcp} udp:{udp}"], messages
    # What was printed works: a span sent to it lands.
    endpoint = otlp[0].split("=", 1)[1]
    trace_id = new_trace_id()
    body = otlp_trace_request(trace_id=trace_id).SerializeToString()
    answer = requests.post(endpoint + "/v1/traces", data=body, headers={"Content-Type": "application/x-protobuf"}, timeout=10)
    assert answer.status_code == 200, answer.text
    waggle.wait_for_spans(trace_id, 1)


def test_an_app_side_honeycomb_setup_gets_a_migration_hint_at_start(waggle_factory):
    key = "hcaik_01appsidekey000000000000"
    waggle = waggle_factory(env={"OTEL_EXPORTER_OTLP_HEADERS": f"x-honeycomb-team={key},x-honeycomb-dataset=cruddur"})
    waggle.secrets.append(key)
    hints = [r["fields"]["message"] for r in waggle.records_at("WARN")]
    assert len(hints) == 1 and hints[0].startswith(
        "this environment still sends to Honeycomb from the app (OTEL_EXPORTER_OTLP_HEADERS) but waggle has no "
        "Honeycomb key: move the key to waggle — set HONEYCOMB_API_KEY on waggle to the x-honeycomb-team value "
        "(and HONEYCOMB_DATASET to its x-honeycomb-dataset value)"
    ), hints


def test_every_receiver_announces_itself_before_ready(waggle_factory):
    # `ready` is the line people and scripts wait for: each receiver's own start-up line (and the
    # sampling proxy's mode) comes before it, not after, whichever task the runtime runs first.
    waggle = waggle_factory()
    messages = [record.get("fields", {}).get("message", "") for record in waggle.records()]
    before_ready = messages[: messages.index("ready")]
    announced = [
        "OTLP/HTTP receiver listening",
        "OTLP/gRPC receiver listening",
        "X-Ray UDP receiver listening",
        "X-Ray sampling proxy without AWS access",
        "Starting proxy http server on ",
    ]
    missing = [line for line in announced if not any(message.startswith(line) for message in before_ready)]
    assert missing == [], messages
