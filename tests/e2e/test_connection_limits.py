"""Connection hygiene: with `ulimit -n 1024`, 2,000 slow connections on any TCP listener
(OTLP/HTTP, OTLP/gRPC, the sampling proxy, admin) do not stop a normal client of every
listener being served within 100 ms. At the per-listener cap a new connection closes the one
that has been quiet longest (logged), and the soft open-file limit is raised and logged.
"""

import resource
import select
import socket
import time

import grpc
import pytest
import requests
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc

from helpers import otlp_trace_request, wait_for

SLOW_CONNECTIONS = 2_000
NOFILE = 1024
SERVED_WITHIN = 0.100
PROBES = 5

# What a slow client has sent when it stops: part of a request, never the end of its headers.
PARTIAL = {
    "otlp_http": b"POST /v1/traces HTTP/1.1\r\nHost: waggle\r\nContent-Type: application/x-protobuf\r\n",
    "otlp_grpc": b"PRI * HTTP/2.0\r\n\r\nSM",
    "xray_tcp": b"POST /GetSamplingRules HTTP/1.1\r\nHost: waggle\r\n",
    "admin": b"GET /healthz HTTP/1.1\r\nHost: wag",
}


@pytest.fixture(autouse=True)
def enough_files_for_the_test_process():
    """This process holds the slow connections: it needs more than waggle's 1,024."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = SLOW_CONNECTIONS + 512
    if hard != resource.RLIM_INFINITY and hard < wanted:
        pytest.skip(f"the test process may open only {hard} files")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, wanted), hard))
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def open_slow_connections(address, partial, count=SLOW_CONNECTIONS, timeout=20.0):
    """`count` connections to `address` that each send `partial` and then nothing."""
    sockets = []
    for _ in range(count):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        sock.connect_ex(address)
        sockets.append(sock)
    by_fd = {sock.fileno(): sock for sock in sockets}
    poller = select.poll()
    for fd in by_fd:
        poller.register(fd, select.POLLOUT)
    deadline = time.monotonic() + timeout
    while by_fd and time.monotonic() < deadline:
        for fd, _ in poller.poll(500):
            try:
                by_fd[fd].send(partial)
            except OSError:
                pass  # closed by waggle already: that is one of the answers allowed
            poller.unregister(fd)
            del by_fd[fd]
    return sockets


def closed_by_peer(sockets):
    """How many of `sockets` waggle has closed."""
    by_fd = {sock.fileno(): sock for sock in sockets}
    poller = select.poll()
    for fd in by_fd:
        poller.register(fd, select.POLLIN)
    closed = 0
    for fd, _ in poller.poll(0):
        if ended(by_fd[fd]):
            closed += 1
    return closed


def ended(sock):
    """Whether the peer closed `sock` (what it sent before closing is read and ignored)."""
    for _ in range(64):
        try:
            if sock.recv(65536) == b"":
                return True
        except BlockingIOError:
            return False
        except OSError:
            return True
    return False


def probe_http(waggle):
    body = otlp_trace_request(service="hygiene-probe").SerializeToString()
    with requests.Session() as session:
        response = session.post(
            f"{waggle.http_url}/v1/traces",
            data=body,
            headers={"Content-Type": "application/x-protobuf"},
            timeout=5,
        )
    assert response.status_code == 200, response.status_code


def probe_grpc(waggle):
    with grpc.insecure_channel(waggle.grpc_target) as channel:
        stub = trace_service_pb2_grpc.TraceServiceStub(channel)
        stub.Export(otlp_trace_request(service="hygiene-probe"), timeout=5)


def probe_sampling_proxy(waggle):
    host, port = waggle.host_port("xray_tcp")
    response = requests.post(f"http://{host}:{port}/GetSamplingRules", json={}, timeout=5)
    # Without AWS access the proxy answers itself; any HTTP answer means it served the client.
    assert 200 <= response.status_code < 600


def probe_admin(waggle):
    response = requests.get(f"{waggle.admin_url}/healthz", timeout=5)
    assert response.status_code == 200


PROBE = {
    "otlp_http": probe_http,
    "otlp_grpc": probe_grpc,
    "xray_tcp": probe_sampling_proxy,
    "admin": probe_admin,
}


def served_times(waggle):
    """Seconds each listener's normal client took, PROBES times per listener."""
    times = {}
    for listener, probe in PROBE.items():
        times[listener] = []
        for _ in range(PROBES):
            started = time.monotonic()
            probe(waggle)
            times[listener].append(time.monotonic() - started)
    return times


@pytest.mark.parametrize("flooded", list(PARTIAL))
def test_slow_connections_do_not_lock_out_a_normal_client(waggle_factory, flooded):
    waggle = waggle_factory(nofile=NOFILE)
    served_times(waggle)  # warm up every client library once
    slow = open_slow_connections(waggle.host_port(flooded), PARTIAL[flooded])
    try:
        # Let waggle take in the whole burst before the normal clients come.
        time.sleep(2)
        times = served_times(waggle)
        for listener, took in times.items():
            fast = sum(t <= SERVED_WITHIN for t in took)
            assert fast >= PROBES - 1, f"{listener} while {flooded} is flooded: {[f'{t * 1000:.0f} ms' for t in took]}"
        assert waggle.alive(), waggle.output_tail()
        closed = closed_by_peer(slow)
        assert closed >= SLOW_CONNECTIONS // 2, f"only {closed} of {SLOW_CONNECTIONS} slow connections were closed"
    finally:
        for sock in slow:
            sock.close()
    cap_lines = [
        r for r in waggle.records() if "connection cap reached" in r.get("fields", {}).get("message", "")
    ]
    assert cap_lines and cap_lines[0]["fields"].get("listener") == flooded, waggle.output_tail()


def test_the_open_file_limit_and_the_connection_cap_are_logged(waggle_factory):
    waggle = waggle_factory(nofile=NOFILE)

    def logged(message):
        return [r for r in waggle.records() if r.get("fields", {}).get("message") == message]

    limit = wait_for(lambda: logged("open-file limit (RLIMIT_NOFILE)"), what="the open-file limit logged")
    assert limit[0]["fields"]["soft"] == NOFILE and limit[0]["fields"]["hard"] == NOFILE
    lowered = logged("lowered the connections each listener keeps, to fit the open-file limit")
    assert lowered and lowered[0]["fields"]["max_connections"] == (NOFILE - 128) // 4
