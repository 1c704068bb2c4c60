"""Log output as a pipe, a file or `docker logs` sees it: text without colour codes, and
`RUST_LOG` as the filter when it is set.
"""

import subprocess
import threading

import pytest

from helpers import (
    RUNNING,
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
