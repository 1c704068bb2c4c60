"""A real moto server (AWS X-Ray and CloudWatch Logs) on a free loopback port, started and
stopped by the test that uses it, with the boto3 client and the environment waggle needs.
"""

import base64
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import boto3
import requests

MOTO_SERVER = Path(sys.executable).parent / "moto_server"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1"}


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class MotoServer:
    def __init__(self, workdir):
        self.workdir = Path(workdir)
        self.port = free_port()
        self.process = None
        self.start()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout=30):
        """Starts (or restarts, on the same port) and waits until it answers."""
        log = open(self.workdir / f"moto-{self.port}.log", "ab")
        # moto's request recorder writes to a file (by default `moto_recording` in the current
        # directory): keep it in the test's own directory, never in the repository.
        recording = self.workdir / f"moto-{self.port}.recording"
        self.process = subprocess.Popen(
            [str(MOTO_SERVER), "-H", "127.0.0.1", "-p", str(self.port)],
            cwd=self.workdir,
            env={**os.environ, "MOTO_RECORDER_FILEPATH": str(recording)},
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while True:
            try:
                if requests.get(self.url + "/moto-api/", timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"moto_server did not start on port {self.port}")
            time.sleep(0.1)

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def env(self):
        """What waggle needs to send X-Ray and CloudWatch Logs calls here."""
        return {
            **CREDENTIALS,
            "AWS_ENDPOINT_URL_XRAY": self.url,
            "AWS_ENDPOINT_URL_CLOUDWATCH_LOGS": self.url,
        }

    def client(self, service):
        return boto3.client(
            service,
            endpoint_url=self.url,
            region_name=CREDENTIALS["AWS_REGION"],
            aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        )

    # -- X-Ray --

    def xray_documents(self, xray_trace_ids):
        """Every stored document of these traces, parsed, by segment id."""
        documents = {}
        ids = list(xray_trace_ids)
        for start in range(0, len(ids), 5):
            answer = self.client("xray").batch_get_traces(TraceIds=ids[start : start + 5])
            for trace in answer["Traces"]:
                for segment in trace["Segments"]:
                    documents.setdefault(segment["Id"], []).append(json.loads(segment["Document"]))
        return documents

    # -- the request recorder --

    def start_recording(self):
        requests.post(self.url + "/moto-api/recorder/start-recording", timeout=5).raise_for_status()

    def recorded(self, path):
        """Parsed JSON bodies of the recorded requests to `path`."""
        text = requests.get(self.url + "/moto-api/recorder/download-recording", timeout=5).text
        bodies = []
        for line in text.splitlines():
            entry = json.loads(line)
            if not entry["url"].endswith(path):
                continue
            body = entry["body"]
            if entry.get("body_encoded"):
                body = base64.b64decode(body)
            bodies.append(json.loads(body))
        return bodies
