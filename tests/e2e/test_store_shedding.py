"""The local store never holds up the other destinations. A store that cannot keep up (here by
configuration alone: a queue with room for one request and a long batch timeout, so it holds
the first request of a burst for two seconds) sheds what it cannot take while Honeycomb is on:
the stand-in receives everything, the store keeps the rest, and the difference is counted as
dropped with reason="store_behind" on /metrics and /status. With the store alone, the caller
is refused with 429 + Retry-After instead.
"""

import pytest

from helpers import new_trace_id, otlp_trace_request, post_otlp, wait_for
from honeycomb_standin import HoneycombStandIn

KEY = "hcaik_01waggleshedkey00000000000"
BURST = 20
# One request fills the store's lane, and the store's batcher keeps it for two seconds.
BEHIND_STORE = {"queue_size": "1B", "batch_timeout": "2s"}


@pytest.fixture
def standin():
    server = HoneycombStandIn(KEY)
    yield server
    server.stop()


def send_burst(waggle, count):
    """`count` one-span requests back to back, each its own trace; returns the trace ids."""
    trace_ids = [new_trace_id() for _ in range(count)]
    for trace_id in trace_ids:
        response = post_otlp(waggle, "/v1/traces", otlp_trace_request(trace_id=trace_id).SerializeToString())
        assert response.status_code == 200, f"{response.status_code} {response.headers} {response.text[:300]}"
    return trace_ids


def local_traces(waggle):
    status = waggle.get_json("/status")
    return next(d for d in status["destinations"] if d["name"] == "local")["items"]["traces"]


def test_a_store_that_falls_behind_sheds_while_honeycomb_receives_everything(waggle_factory, standin):
    honeycomb = {"api_key": KEY, "endpoint": standin.url, "batch_timeout": "50ms"}
    waggle = waggle_factory({"destinations": {"local": BEHIND_STORE, "honeycomb": honeycomb}})
    waggle.secrets.append(KEY)

    trace_ids = send_burst(waggle, BURST)

    wait_for(lambda: len(standin.spans()) >= BURST, what=f"{BURST} spans at the Honeycomb stand-in")
    received = sorted(span.trace_id.hex() for _, _, span in standin.spans())
    assert received == sorted(trace_ids), "Honeycomb got every request once"

    def store_accounted_for_everything():
        traces = local_traces(waggle)
        return traces if traces["sent"] + traces["dropped"].get("store_behind", 0) == BURST else None

    counts = wait_for(store_accounted_for_everything, what="/status counting every span as stored or shed")
    shed = counts["dropped"]["store_behind"]
    assert shed >= 1, counts
    assert counts["dropped"] == {"store_behind": shed}, counts
    stored = {trace["trace_id"] for trace in waggle.traces()}
    assert len(stored) == BURST - shed and stored <= set(trace_ids), (stored, shed)
    dropped = waggle.counter(
        "waggle_destination_dropped_items_total", destination="local", signal="traces", reason="store_behind"
    )
    assert dropped == shed
    assert waggle.counter("waggle_destination_dropped_items_total", destination="honeycomb") == 0
    assert waggle.counter("waggle_receiver_refused_items_total") == 0


def test_a_store_that_falls_behind_alone_refuses_with_429_and_retry_after(waggle_factory):
    waggle = waggle_factory({"destinations": {"local": BEHIND_STORE}, "pipeline": {"retry_after": "1s"}})

    first, second = (otlp_trace_request(trace_id=new_trace_id()).SerializeToString() for _ in range(2))
    assert post_otlp(waggle, "/v1/traces", first).status_code == 200
    refused = post_otlp(waggle, "/v1/traces", second)

    assert refused.status_code == 429, refused.text[:300]
    assert refused.headers["Retry-After"] == "1"
    # Once the store caught up, the caller's retry gets in.
    wait_for(lambda: post_otlp(waggle, "/v1/traces", second).status_code == 200, what="the retry accepted")
    assert waggle.counter("waggle_destination_dropped_items_total", destination="local") == 0
