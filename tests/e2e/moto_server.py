"""A moto server (the AWS API emulator) on a free loopback port, started and stopped by a test.

    with MotoServer() as moto:
        env = moto.aws_env()              # what waggle needs to reach it as CloudWatch Logs
        logs = moto.client("logs")        # boto3, same endpoint and test credentials

Self-contained on purpose: it needs only `moto_server` (PyPI `moto[server]`) next to the
running Python, or on PATH, and boto3.
"""

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

REGION = "us-east-1"
ACCESS_KEY_ID = "testing"
SECRET_ACCESS_KEY = "testing"
START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def moto_server_binary():
    beside_python = Path(sys.executable).parent / "moto_server"
    if beside_python.is_file():
        return str(beside_python)
    found = shutil.which("moto_server")
    if found is None:
        raise RuntimeError("moto_server not found: install moto[server] in the test environment")
    return found


class MotoServer:
    """One moto_server process; `start()` waits until it answers, `stop()` ends it."""

    def __init__(self):
        self.port = None
        self.process = None
        self.output = None
        self.workdir = None

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def start(self):
        # The port is free when chosen; if another process takes it first, moto exits and we
        # try another one.
        for _ in range(3):
            self.port = free_port()
            # moto writes its request recording (by default `moto_recording` in the current
            # directory) here, never into the repository; `stop()` removes it.
            self.workdir = tempfile.TemporaryDirectory(prefix="waggle-moto-")
            self.output = open(os.devnull, "wb")
            self.process = subprocess.Popen(
                [moto_server_binary(), "-H", "127.0.0.1", "-p", str(self.port)],
                cwd=self.workdir.name,
                env={**os.environ, "MOTO_RECORDER_FILEPATH": os.path.join(self.workdir.name, "moto_recording")},
                stdin=subprocess.DEVNULL,
                stdout=self.output,
                stderr=self.output,
                start_new_session=True,
            )
            if self._wait_ready():
                return self
            self.stop()
        raise RuntimeError("moto_server did not start on any of 3 free ports")

    def _wait_ready(self):
        deadline = time.monotonic() + START_TIMEOUT
        interval = 0.05
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False
            try:
                if requests.get(self.url + "/moto-api/", timeout=2).status_code < 500:
                    return True
            except requests.RequestException:
                pass
            time.sleep(interval)
            interval = min(interval * 1.5, 0.5)
        return False

    def stop(self):
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=STOP_TIMEOUT)
        if self.output is not None:
            self.output.close()
            self.output = None
        if self.workdir is not None:
            self.workdir.cleanup()
            self.workdir = None

    def running(self):
        return self.process is not None and self.process.poll() is None

    def aws_env(self):
        """Environment for waggle: moto as CloudWatch Logs, test credentials and region."""
        return {
            "AWS_ENDPOINT_URL_CLOUDWATCH_LOGS": self.url,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY_ID,
            "AWS_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY,
            "AWS_REGION": REGION,
        }

    def client(self, service):
        import boto3

        return boto3.client(
            service,
            endpoint_url=self.url,
            region_name=REGION,
            aws_access_key_id=ACCESS_KEY_ID,
            aws_secret_access_key=SECRET_ACCESS_KEY,
        )

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
