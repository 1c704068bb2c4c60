"""Durable before acknowledged, with the real binary and the Honeycomb stand-in.

- The crash test: Honeycomb is down, spans with unique ids are sent from two clients, every id
  answered 200 is recorded, and waggle is killed with SIGKILL at a random moment (mid-request,
  and so mid-segment-rotation with small segments), several rounds on the same data_dir; one
  round kills it while it replays to a Honeycomb that is back. Last, a restart with Honeycomb
  up: every acknowledged span arrives at least once; duplicates are counted and reported.
- A rotated API key (401) keeps the data on disk, says so on /status, and it flows once the
  key is fixed: nothing is discarded.
"""

import random
import signal
import socket
import threading
import time

import pytest
import requests

from helpers import new_span_id, unique_spans_body, wait_for
from honeycomb_standin import HoneycombStandIn

KEY = "hcaik_01waggledurabilitytestkey0"
SPANS_PER_REQUEST = 20
ROUNDS = 4

pytestmark = pytest.mark.timeout(240)


def closed_port_url():
    """A loopback URL where nothing listens (connections are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def config(url, **extra):
    honeycomb = {
        "api_key": KEY,
        "endpoint": url,
        "batch_timeout": "50ms",
        # Some batches fit in memory, the rest wait on disk: both must survive a kill.
        "queue_size": "64KiB",
        "timeout": "5s",
        "spool": True,
        # Segments of 2 MiB (an eighth): two clients fill one in about a second, so kills land
        # before, during and after rotations; 16 MiB holds every round's ~2-4 MB without
        # refusing (a full spool answers 429, which would leave a round with nothing to check).
        "spool_max_size": "16MiB",
        "retry": {"initial_interval": "100ms", "max_interval": "1s", "jitter": 0.0},
    }
    honeycomb.update(extra)
    return {
        "pipeline": {"shutdown_timeout": "1s"},
        "destinations": {"local": {"enabled": False}, "honeycomb": honeycomb},
    }


def request_body(span_ids):
    return unique_spans_body(span_ids, "durable")


class Client(threading.Thread):
    """Posts requests of unique spans until stopped; records the ids of every one answered 200."""

    def __init__(self, url, acknowledged, lock, stop):
        super().__init__(daemon=True)
        self.url = url + "/v1/traces"
        self.acknowledged = acknowledged
        self.lock = lock
        self.stop = stop
        self.refused = 0

    def run(self):
        session = requests.Session()
        deadline = time.monotonic() + 30
        while not self.stop.is_set() and time.monotonic() < deadline:
            span_ids = [new_span_id() for _ in range(SPANS_PER_REQUEST)]
            try:
                response = session.post(
                    self.url,
                    data=request_body(span_ids),
                    headers={"Content-Type": "application/x-protobuf"},
                    timeout=5,
                )
            except requests.RequestException:
                continue  # killed mid-request: not acknowledged
            if response.status_code == 200:
                with self.lock:
                    self.acknowledged.update(span_ids)
            else:
                self.refused += 1


def kill9(waggle):
    """SIGKILL, as the OOM killer or a crashing host does; no shutdown runs."""
    waggle.process.send_signal(signal.SIGKILL)
    waggle.process.wait(timeout=10)
    waggle.returncode = waggle.process.returncode
    for thread in waggle._threads:
        thread.join(timeout=2)


def send_and_kill(waggle, acknowledged, lock, rng):
    stop = threading.Event()
    clients = [Client(waggle.http_url, acknowledged, lock, stop) for _ in range(2)]
    for client in clients:
        client.start()
    time.sleep(rng.uniform(0.5, 2.0))
    kill9(waggle)  # while both clients are mid-request
    stop.set()
    for client in clients:
        client.join(timeout=10)
    return sum(client.refused for client in clients)


def test_kill_9_at_random_moments_loses_no_acknowledged_span(waggle_factory, tmp_path):
    rng = random.Random(13)
    acknowledged, lock = set(), threading.Lock()
    data_dir = tmp_path / "data"
    down = closed_port_url()
    for round_number in range(ROUNDS):
        waggle = waggle_factory(config(down), data_dir=data_dir, name=f"round{round_number}")
        waggle.secrets.append(KEY)
        before = len(acknowledged)
        send_and_kill(waggle, acknowledged, lock, rng)
        assert len(acknowledged) > before, f"round {round_number}: some requests were acknowledged"

    standin = HoneycombStandIn(KEY)
    try:
        # Killed again while it replays to a Honeycomb that is back.
        replaying = waggle_factory(config(standin.url), data_dir=data_dir, name="replaying")
        replaying.secrets.append(KEY)
        wait_for(lambda: standin.spans(), timeout=30, what="the replay to start")
        send_and_kill(replaying, acknowledged, lock, rng)

        final = waggle_factory(config(standin.url), data_dir=data_dir, name="final")
        final.secrets.append(KEY)

        def delivered():
            return [span.span_id.hex() for _, _, span in standin.spans()]

        wait_for(lambda: acknowledged <= set(delivered()), timeout=120, what=f"{len(acknowledged)} acknowledged spans")
        ids = delivered()
        duplicates = len(ids) - len(set(ids))
        print(
            f"\nkill -9 x{ROUNDS + 1}: {len(acknowledged)} spans acknowledged, all delivered; "
            f"{len(ids)} delivered in all, {duplicates} duplicates (at least once)"
        )
        assert final.counter("waggle_destination_dropped_items_total", destination="honeycomb") == 0
        wait_for(
            lambda: final.counter("waggle_destination_spool_bytes", destination="honeycomb") == 0,
            timeout=30,
            what="the spool to empty once everything was acknowledged",
        )
    finally:
        standin.stop()


def test_a_rotated_api_key_keeps_the_data_until_it_is_fixed(waggle_factory):
    # Honeycomb knows another key (the one waggle has was rotated out): every send is 401.
    standin = HoneycombStandIn("hcaik_01therotatedinkey000000000")
    try:
        waggle = waggle_factory(config(standin.url, retry={"initial_interval": "100ms", "max_interval": "1s"}))
        waggle.secrets.append(KEY)
        span_ids = [new_span_id() for _ in range(500)]
        for start in range(0, len(span_ids), 50):
            response = requests.post(
                waggle.http_url + "/v1/traces",
                data=request_body(span_ids[start : start + 50]),
                headers={"Content-Type": "application/x-protobuf"},
                timeout=10,
            )
            assert response.status_code == 200, response.text[:200]
        wait_for(lambda: len(standin.attempts("/v1/traces")) >= 3, what="a few refused sends")

        def problem():
            honeycomb = [d for d in waggle.get_json("/status")["destinations"] if d["name"] == "honeycomb"][0]
            return honeycomb.get("problem")

        assert "API key" in (wait_for(problem, what="the problem on /status") or "")
        assert waggle.counter("waggle_destination_failed_items_total", destination="honeycomb") == 0
        assert waggle.counter("waggle_destination_dropped_items_total", destination="honeycomb") == 0

        standin.api_key = KEY  # the key is fixed
        wait_for(
            lambda: set(span_ids) <= {span.span_id.hex() for _, _, span in standin.spans()},
            timeout=30,
            what="all 500 spans once the key works again",
        )
        assert waggle.counter("waggle_destination_failed_items_total", destination="honeycomb") == 0
        wait_for(lambda: problem() is None, what="the problem to clear")
    finally:
        standin.stop()
