"""One memory budget (`limits.memory_limit`, 256 MiB by default): 64 concurrent 19 MiB bodies,
64 concurrent gzip and zstd bombs, or both at once, keep waggle's peak RSS within the budget
plus 64 MiB; every request is answered (200, or 429 with Retry-After when the budget is full;
a bomb 413 or 429), waggle keeps serving and delivering, and 10 s after the burst its RSS is
back within 32 MiB of idle.

The 19 MiB bodies are valid OTLP trace requests whose bulk is one resource attribute and that
carry no span, so the whole receive path (reading, checking) runs on them while the local
store is left out of the memory measured here.
"""

import gzip
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
import zstandard
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from helpers import new_trace_id, otlp_trace_request, wait_for

MIB = 1024 * 1024
BUDGET_MIB = 256
CONCURRENT = 64
SETTLE_SECONDS = 10
REQUEST_TIMEOUT = 120


def large_body(size=19 * MIB):
    """A valid OTLP trace request of `size` bytes with no span."""
    request = ExportTraceServiceRequest()
    resource = request.resource_spans.add().resource
    resource.attributes.append(KeyValue(key="padding", value=AnyValue(string_value="")))
    resource.attributes[0].value.string_value = "x" * size
    excess = len(request.SerializeToString()) - size
    resource.attributes[0].value.string_value = "x" * (size - excess - 8)
    body = request.SerializeToString()
    assert size - 16 <= len(body) <= size, len(body)
    return body


def gzip_bomb(concealed):
    """~32 KiB of gzip that inflates to 32 MiB, past the 20 MiB body limit. `concealed`: an
    empty second member follows, so the trailer's size says 0 and only inflating tells."""
    bomb = gzip.compress(bytes(32 * MIB), compresslevel=9)
    return bomb + gzip.compress(b"") if concealed else bomb


def zstd_bomb(concealed):
    """~1 KiB of zstd that inflates to 32 MiB; `concealed`: without its content size."""
    return zstandard.ZstdCompressor(level=19, write_content_size=not concealed).compress(bytes(32 * MIB))


def bombs(count):
    """`count` gzip and `count` zstd bombs, half of each with their size concealed."""
    jobs = []
    for concealed in (False, True):
        jobs += [(gzip_bomb(concealed), "gzip")] * (count // 2) + [(zstd_bomb(concealed), "zstd")] * (count // 2)
    return jobs


def post(url, body, encoding=None):
    headers = {"Content-Type": "application/x-protobuf"}
    if encoding:
        headers["Content-Encoding"] = encoding
    response = requests.post(f"{url}/v1/traces", data=body, headers=headers, timeout=REQUEST_TIMEOUT)
    return response.status_code, response.headers.get("Retry-After")


def burst(waggle, jobs):
    """Sends every (body, encoding) at once from its own thread; returns the answers in order."""
    start = threading.Barrier(len(jobs))

    def send(job):
        body, encoding = job
        start.wait(timeout=60)
        return post(waggle.http_url, body, encoding)

    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        return list(pool.map(send, jobs))


def send_sentinel(waggle):
    trace_id = new_trace_id()
    body = otlp_trace_request(service="budget-sentinel", trace_id=trace_id).SerializeToString()
    assert post(waggle.http_url, body) == (200, None)
    waggle.wait_for_spans(trace_id, 1)


def idle_rss_kib(waggle):
    """RSS once waggle has started and delivered one trace (its working set warmed up)."""
    send_sentinel(waggle)
    time.sleep(1)
    return waggle.memory()["VmRSS"]


def assert_refusal(status, retry_after, allowed):
    assert status in allowed, f"answered {status}, expected one of {sorted(allowed)}"
    if status == 429:
        assert retry_after is not None and int(retry_after) >= 1, "a 429 carries Retry-After"


def assert_bounded_and_recovers(waggle, idle_kib):
    peak_kib = waggle.memory()["VmHWM"]
    assert peak_kib <= (BUDGET_MIB + 64) * 1024, f"peak RSS {peak_kib / 1024:.0f} MiB over budget + 64 MiB"
    assert waggle.alive(), waggle.output_tail()
    send_sentinel(waggle)
    time.sleep(SETTLE_SECONDS)
    settled_kib = waggle.memory()["VmRSS"]
    print(f"\npeak RSS {peak_kib / 1024:.0f} MiB; {settled_kib / 1024:.0f} MiB {SETTLE_SECONDS} s later; idle {idle_kib / 1024:.0f} MiB")
    assert settled_kib <= idle_kib + 32 * 1024, (
        f"RSS {settled_kib / 1024:.0f} MiB {SETTLE_SECONDS} s after the burst; idle was {idle_kib / 1024:.0f} MiB"
    )
    return peak_kib


@pytest.fixture
def budgeted(waggle_factory):
    return waggle_factory({"limits": {"memory_limit": f"{BUDGET_MIB}MiB"}})


def test_concurrent_large_bodies_stay_within_the_budget(budgeted):
    idle = idle_rss_kib(budgeted)
    body = large_body()
    answers = burst(budgeted, [(body, None)] * CONCURRENT)
    for status, retry_after in answers:
        assert_refusal(status, retry_after, {200, 429})
    accepted = sum(status == 200 for status, _ in answers)
    assert accepted >= 1, f"no large body was accepted: {answers}"
    assert accepted < CONCURRENT, "64 bodies of 19 MiB cannot all fit in 256 MiB at once"
    assert_bounded_and_recovers(budgeted, idle)


def test_concurrent_gzip_and_zstd_bombs_are_refused_within_the_budget(budgeted):
    idle = idle_rss_kib(budgeted)
    jobs = bombs(CONCURRENT)
    answers = burst(budgeted, jobs)
    for status, retry_after in answers:
        assert_refusal(status, retry_after, {413, 429})
    assert_bounded_and_recovers(budgeted, idle)


def test_large_bodies_and_bombs_together_stay_within_the_budget(budgeted):
    idle = idle_rss_kib(budgeted)
    large = large_body()
    jobs = [(large, None)] * CONCURRENT + bombs(CONCURRENT // 2)
    answers = burst(budgeted, jobs)
    for (_, encoding), (status, retry_after) in zip(jobs, answers):
        assert_refusal(status, retry_after, {413, 429} if encoding else {200, 429})
    assert_bounded_and_recovers(budgeted, idle)


def test_a_small_budget_refuses_a_body_that_does_not_fit_before_reading_it(waggle_factory):
    waggle = waggle_factory({"limits": {"memory_limit": "4MiB"}})
    status, retry_after = post(waggle.http_url, large_body(6 * MIB))
    assert_refusal(status, retry_after, {429})
    assert status == 429
    refused = wait_for(
        lambda: waggle.counter("waggle_receiver_rejected_requests_total", reason="memory_limit"),
        what="the refusal counted",
    )
    assert refused == 1
    send_sentinel(waggle)
