"""Honeycomb traffic through a corporate proxy, on loopback: an HTTPS Honeycomb stand-in whose
certificate is signed by a throw-away CA trusted only through `SSL_CERT_FILE` (as a corporate
CA in the system store), and a CONNECT proxy written here. With `HTTPS_PROXY` the data goes
through the proxy; with the host in `NO_PROXY` it goes straight; a proxy that refuses is named
as such by `waggle check`.
"""

import pytest

from connect_proxy import ConnectProxy
from helpers import new_trace_id, otlp_trace_request, post_otlp, wait_for
from honeycomb_standin import HoneycombStandIn, tls_files
from test_check import run_check

pytestmark = pytest.mark.timeout(60)

KEY = "hcaik_01proxytestkey00000000000"


@pytest.fixture
def https_standin(tmp_path):
    ca_file, context = tls_files(tmp_path)
    standin = HoneycombStandIn(KEY, tls=context)
    standin.ca_file = ca_file
    yield standin
    standin.stop()


@pytest.fixture
def proxy():
    server = ConnectProxy()
    yield server
    server.stop()


def honeycomb(url):
    return {"destinations": {"honeycomb": {"api_key": KEY, "endpoint": url, "batch_timeout": "50ms"}}}


def send_one_span(waggle, standin):
    trace_id = new_trace_id()
    assert post_otlp(waggle, "/v1/traces", otlp_trace_request(trace_id=trace_id).SerializeToString()).status_code == 200
    wait_for(
        lambda: any(span.trace_id.hex() == trace_id for _, _, span in standin.spans()),
        what="the span at the HTTPS stand-in",
    )


def test_with_https_proxy_honeycomb_goes_through_the_connect_proxy(waggle_factory, https_standin, proxy):
    env = {"HTTPS_PROXY": proxy.url, "SSL_CERT_FILE": str(https_standin.ca_file)}
    waggle = waggle_factory(honeycomb(https_standin.url), env=env)
    waggle.secrets.append(KEY)
    send_one_span(waggle, https_standin)
    host_port = https_standin.url.split("://", 1)[1]
    assert proxy.connects() and set(proxy.connects()) == {host_port}, proxy.connects()


def test_a_host_in_no_proxy_goes_straight(waggle_factory, https_standin, proxy):
    env = {"HTTPS_PROXY": proxy.url, "NO_PROXY": "localhost,127.0.0.1", "SSL_CERT_FILE": str(https_standin.ca_file)}
    waggle = waggle_factory(honeycomb(https_standin.url), env=env)
    waggle.secrets.append(KEY)
    send_one_span(waggle, https_standin)
    assert proxy.connects() == []


def test_without_the_corporate_ca_tls_is_refused_and_check_says_tls(tmp_path, https_standin):
    code, lines = run_check(tmp_path, {"destinations": {"honeycomb": {"endpoint": https_standin.url}}}, {"HONEYCOMB_API_KEY": KEY})
    assert lines[0].startswith(f"honeycomb: FAIL — TLS: the certificate of {https_standin.url}/1/auth is not trusted"), lines
    assert code == 1


def test_check_goes_through_the_proxy_with_the_system_ca(tmp_path, https_standin, proxy):
    env = {"HONEYCOMB_API_KEY": KEY, "HTTPS_PROXY": proxy.url, "SSL_CERT_FILE": str(https_standin.ca_file)}
    code, lines = run_check(tmp_path, {"destinations": {"honeycomb": {"endpoint": https_standin.url}}}, env)
    assert lines[0] == "honeycomb: OK — key accepted: team Cruddur (cruddur), environment Development (development)", lines
    assert proxy.connects(), "the check did not go through the proxy"
    assert code == 0


def test_a_proxy_that_refuses_is_named_by_check(tmp_path, https_standin):
    refusing = ConnectProxy(refuse=True)
    try:
        env = {"HONEYCOMB_API_KEY": KEY, "HTTPS_PROXY": refusing.url, "SSL_CERT_FILE": str(https_standin.ca_file)}
        code, lines = run_check(tmp_path, {"destinations": {"honeycomb": {"endpoint": https_standin.url}}}, env)
    finally:
        refusing.stop()
    assert lines[0].startswith(
        f"honeycomb: FAIL — proxy: the proxy refused or failed the connection to {https_standin.url}/1/auth: "
        "check HTTPS_PROXY / HTTP_PROXY / -p and NO_PROXY ("
    ), lines
    assert refusing.connects(), "the check never asked the proxy"
    assert code == 1


def test_the_proxy_address_key_sends_honeycomb_through_the_proxy(tmp_path, https_standin, proxy):
    # destinations.honeycomb.proxy_address (which -p sets too), with no proxy variable set.
    env = {"HONEYCOMB_API_KEY": KEY, "SSL_CERT_FILE": str(https_standin.ca_file)}
    code, lines = run_check(
        tmp_path, {"destinations": {"honeycomb": {"endpoint": https_standin.url, "proxy_address": proxy.url}}}, env
    )
    assert lines[0].startswith("honeycomb: OK — key accepted"), lines
    assert proxy.connects()
