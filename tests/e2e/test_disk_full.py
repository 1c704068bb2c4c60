"""A full disk under the data directory, on a small tmpfs the test mounts: waggle refuses what it
cannot keep (429 + Retry-After), says why on /status, keeps everything it acknowledged, and takes
data again by itself once space is freed.

- A spooled Honeycomb lane whose destination is down fills the disk: requests are refused, never
  answered 200 and dropped; freeing space lets them in again; restarted with Honeycomb up, every
  acknowledged span is delivered.
- The local store on a full disk keeps its sealed blocks in memory (still queryable), says so,
  and writes them once space is freed, losing nothing.

Mounting needs root (CAP_SYS_ADMIN), as CI and these machines have; elsewhere the tests skip,
except under CI=true where they fail.
"""

import os
import subprocess
import time

import pytest
import requests

from helpers import new_span_id, new_trace_id, unique_spans_body, wait_for
from honeycomb_standin import HoneycombStandIn
from test_spool import closed_port_url

KEY = "hcaik_01waggledisktestkey0000000"
FS_SIZE = "4m"
# Room left on the filesystem once the ballast is written.
HEADROOM = 192 * 1024
SPANS_PER_REQUEST = 50

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def small_fs(tmp_path):
    """A 4 MiB tmpfs at tmp_path/data, unmounted at the end."""
    mountpoint = tmp_path / "data"
    mountpoint.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={FS_SIZE}", "tmpfs", str(mountpoint)], capture_output=True, text=True
    )
    if mounted.returncode != 0:
        reason = f"cannot mount a tmpfs: {mounted.stderr.strip()}"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    yield mountpoint
    subprocess.run(["umount", "-l", str(mountpoint)], check=False)


def fill(mountpoint, headroom=HEADROOM):
    """Writes a ballast file leaving about `headroom` bytes free; returns its path."""
    stat = os.statvfs(mountpoint)
    free = stat.f_bavail * stat.f_frsize
    ballast = mountpoint / "ballast"
    with open(ballast, "wb") as file:
        file.write(b"\0" * max(free - headroom, 0))
    return ballast


def spans_body(span_ids, trace_id=None):
    return unique_spans_body(span_ids, "diskfull", trace_id)


def post(waggle, body):
    response = requests.post(
        f"{waggle.http_url}/v1/traces", data=body, headers={"Content-Type": "application/x-protobuf"}, timeout=10
    )
    return response.status_code, response.headers.get("Retry-After")


def send_until_refused(waggle, acknowledged, limit=2000):
    """Posts requests of unique spans until one is refused; returns that answer."""
    for _ in range(limit):
        span_ids = [new_span_id() for _ in range(SPANS_PER_REQUEST)]
        status, retry_after = post(waggle, spans_body(span_ids))
        if status != 200:
            return status, retry_after
        acknowledged.update(span_ids)
    pytest.fail(f"{limit} requests were all acknowledged on a full disk")


def honeycomb(url):
    return {
        "pipeline": {"shutdown_timeout": "1s"},
        "destinations": {
            "local": {"enabled": False},
            "honeycomb": {
                "api_key": KEY,
                "endpoint": url,
                "batch_timeout": "50ms",
                "spool": True,
                "retry": {"initial_interval": "100ms", "max_interval": "1s", "jitter": 0.0},
            },
        },
    }


def test_a_full_disk_refuses_spooled_data_and_keeps_what_it_acknowledged(waggle_factory, small_fs):
    acknowledged = set()
    waggle = waggle_factory(honeycomb(closed_port_url()), data_dir=small_fs, name="full")
    waggle.secrets.append(KEY)
    ballast = fill(small_fs)

    status, retry_after = send_until_refused(waggle, acknowledged)
    assert status == 429 and retry_after and int(retry_after) >= 1, (status, retry_after)
    assert acknowledged, "something fit in the headroom before the disk was full"
    problem = next(d for d in waggle.get_json("/status")["destinations"] if d["name"] == "honeycomb")
    assert "No space left on device" in str(problem), problem
    assert waggle.counter("waggle_destination_dropped_items_total", destination="honeycomb") == 0

    ballast.unlink()
    more = [new_span_id() for _ in range(SPANS_PER_REQUEST)]
    wait_for(lambda: post(waggle, spans_body(more))[0] == 200, timeout=10, what="a request taken once space is freed")
    acknowledged.update(more)
    waggle.stop()

    standin = HoneycombStandIn(KEY)
    try:
        final = waggle_factory(honeycomb(standin.url), data_dir=small_fs, name="final")
        final.secrets.append(KEY)
        delivered = lambda: {span.span_id.hex() for _, _, span in standin.spans()}  # noqa: E731
        wait_for(lambda: acknowledged <= delivered(), timeout=60, what=f"{len(acknowledged)} acknowledged spans")
        assert final.counter("waggle_destination_dropped_items_total", destination="honeycomb") == 0
    finally:
        standin.stop()


def store_status(waggle):
    return waggle.get_json("/status")["local_store"]


def test_the_store_on_a_full_disk_keeps_its_blocks_until_space_is_freed(waggle_factory, small_fs):
    waggle = waggle_factory(data_dir=small_fs)
    ballast = fill(small_fs, headroom=16 * 1024)
    trace_id = new_trace_id()
    sent = 0
    deadline = time.monotonic() + 60
    while not store_status(waggle)["unwritten_blocks"] and time.monotonic() < deadline:
        status, _ = post(waggle, spans_body([new_span_id() for _ in range(1000)], trace_id))
        assert status == 200, status
        sent += 1000
    status = store_status(waggle)
    assert status["unwritten_blocks"] >= 1, status
    assert "No space left on device" in (status["write_error"] or ""), status
    wait_for(lambda: len(waggle.trace(trace_id)["spans"]) == sent, what="every span queryable while unwritten")

    ballast.unlink()
    wait_for(lambda: store_status(waggle)["unwritten_blocks"] == 0, timeout=20, what="the blocks written")
    status = store_status(waggle)
    assert (status["write_error"], status["lost_spans"]) == (None, 0), status
    assert len(waggle.trace(trace_id)["spans"]) == sent
