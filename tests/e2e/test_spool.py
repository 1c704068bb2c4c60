"""The disk spool with the real binary: while Honeycomb is hung or gone and the lane's memory
queue is tiny, waggle keeps answering 200 and writes to disk; after SIGTERM and a restart on
the same data_dir with a working Honeycomb, every span arrives, once, and the spool empties.
With the spool off the same full lane answers 429, as before.
"""

import signal
import socket
from collections import Counter

import pytest

from helpers import new_trace_id, otlp_trace_request, post_otlp, wait_for
from honeycomb_standin import HoneycombStandIn

KEY = "hcaik_01wagglespooltestkey00000"
REQUESTS = 60

pytestmark = pytest.mark.timeout(120)


def honeycomb(url, **extra):
    config = {
        "api_key": KEY,
        "endpoint": url,
        "batch_timeout": "50ms",
        # A few hundred-byte requests fill it: the rest must go to the spool.
        "queue_size": "2KiB",
        "timeout": "30s",
        "spool": True,
        "spool_max_size": "64MiB",
        "retry": {"initial_interval": "100ms", "max_interval": "1s", "jitter": 0.0},
    }
    config.update(extra)
    return {"pipeline": {"shutdown_timeout": "1s"}, "destinations": {"honeycomb": config}}


def closed_port_url():
    """A loopback URL where nothing listens (connections are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def send_traces(waggle, count):
    trace_ids = []
    for _ in range(count):
        trace_id = new_trace_id()
        body = otlp_trace_request(service="spooled", trace_id=trace_id).SerializeToString()
        response = post_otlp(waggle, "/v1/traces", body)
        assert response.status_code == 200, f"{response.status_code}: {response.text[:200]}"
        trace_ids.append(trace_id)
    return trace_ids


def segment_files(data_dir):
    return sorted((data_dir / "spool" / "honeycomb").glob("*.seg"))


@pytest.fixture(params=["hung", "absent"])
def unavailable_honeycomb(request):
    """A Honeycomb endpoint that never answers, or where nothing listens."""
    if request.param == "absent":
        yield closed_port_url()
        return
    hung = HoneycombStandIn(KEY, hang=True)
    try:
        yield hung.url
    finally:
        hung.stop()


def test_spooled_spans_survive_an_outage_and_a_restart(waggle_factory, unavailable_honeycomb):
    first = waggle_factory(honeycomb(unavailable_honeycomb))
    first.secrets.append(KEY)

    trace_ids = send_traces(first, REQUESTS)

    assert first.counter("waggle_receiver_refused_items_total") == 0
    written = first.counter("waggle_destination_spool_written_records_total", destination="honeycomb")
    assert written > REQUESTS // 2, f"the full queue spilled to disk: {written} records"
    assert first.counter("waggle_destination_spool_bytes", destination="honeycomb") > 0
    assert segment_files(first.data_dir), "segment files on disk"
    assert first.counter("waggle_destination_sent_items_total", destination="honeycomb") == 0

    assert first.stop(signal.SIGTERM) == 0, first.output_tail()
    assert not [r for r in first.records_at("WARN") if r["fields"]["message"] == "dropped items"], first.output_tail()

    standin = HoneycombStandIn(KEY)
    try:
        second = waggle_factory(honeycomb(standin.url), data_dir=first.data_dir, name="restarted")
        second.secrets.append(KEY)

        def delivered():
            return Counter(span.trace_id.hex() for _, _, span in standin.spans())

        wait_for(lambda: set(trace_ids) <= set(delivered()), what=f"all {REQUESTS} spans at Honeycomb")
        counts = delivered()
        assert all(counts[trace_id] == 1 for trace_id in trace_ids), "each span once"
        assert second.counter("waggle_destination_spool_replayed_records_total", destination="honeycomb") > 0
        wait_for(
            lambda: second.counter("waggle_destination_spool_bytes", destination="honeycomb") == 0,
            what="the spool to empty once Honeycomb acknowledged everything",
        )
        assert segment_files(second.data_dir) == []
        assert second.counter("waggle_destination_dropped_items_total", destination="honeycomb") == 0
        assert second.stop(signal.SIGTERM) == 0, second.output_tail()
    finally:
        standin.stop()


def test_with_the_spool_off_a_full_lane_answers_429(waggle_factory):
    hung = HoneycombStandIn(KEY, hang=True)
    try:
        waggle = waggle_factory(honeycomb(hung.url, spool=False))
        waggle.secrets.append(KEY)
        statuses = []
        for _ in range(REQUESTS):
            body = otlp_trace_request(service="unspooled", trace_id=new_trace_id()).SerializeToString()
            statuses.append(post_otlp(waggle, "/v1/traces", body).status_code)
        assert 429 in statuses, statuses
        assert set(statuses) <= {200, 429}, statuses
        assert segment_files(waggle.data_dir) == []
    finally:
        hung.stop()
