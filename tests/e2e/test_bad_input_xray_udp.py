"""Malformed X-Ray datagrams: counted as rejected, logged at WARN, nothing stored.

UDP has no answer, so each case waits for the rejection to be counted in
waggle_receiver_rejected_requests_total{receiver="xray_udp"}, then for a WARN line, then sends
a good segment and checks that it (and only it) reaches the store.
"""

import json
import socket

import pytest

from helpers import (
    assert_store_unchanged_but_for,
    new_span_id,
    new_xray_trace_id,
    wait_for,
    xray_datagram,
    xray_segment,
    xray_to_otlp_trace_id,
)

HEADER = b'{"format":"json","version":1}'


def case(datagram_factory, id):
    return pytest.param(datagram_factory, id=id)


def good_body(trace_id):
    return json.dumps(xray_segment(name="must-not-be-stored", trace_id=trace_id)).encode()


def without(key):
    def make(trace_id):
        document = xray_segment(name="must-not-be-stored", trace_id=trace_id)
        del document[key]
        return HEADER + b"\n" + json.dumps(document).encode()

    return make


CASES = [
    case(lambda t: HEADER, "header-only-no-newline"),
    case(lambda t: good_body(t), "body-only-no-newline"),
    case(lambda t: HEADER + good_body(t), "header-and-body-without-newline"),
    case(lambda t: b'{"format":json,"version":1}\n' + good_body(t), "header-not-json"),
    case(lambda t: b'["json", 1]\n' + good_body(t), "header-not-an-object"),
    case(lambda t: b'{"format":"xml","version":1}\n' + good_body(t), "wrong-format"),
    case(lambda t: b'{"format":"json","version":2}\n' + good_body(t), "wrong-version"),
    case(lambda t: b'{"version":1}\n' + good_body(t), "header-without-format"),
    case(lambda t: HEADER + b"\n" + json.dumps([xray_segment(trace_id=t)]).encode(), "body-is-an-array"),
    case(lambda t: HEADER + b'\n"a string"', "body-is-a-string"),
    case(lambda t: HEADER + b"\n42", "body-is-a-number"),
    case(lambda t: HEADER + b"\n" + good_body(t)[:-10], "body-truncated"),
    case(lambda t: HEADER + b"\n", "body-empty"),
    case(without("id"), "missing-id"),
    case(without("trace_id"), "missing-trace_id"),
]


@pytest.fixture
def udp():
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    yield sock
    sock.close()


def rejected(waggle):
    return waggle.counter("waggle_receiver_rejected_requests_total", receiver="xray_udp")


@pytest.mark.parametrize("make_datagram", CASES)
def test_malformed_datagram_is_counted_logged_and_dropped(waggle, udp, make_datagram):
    trace_id = new_xray_trace_id()
    datagram = make_datagram(trace_id)
    before = waggle.snapshot()
    rejected_before = rejected(waggle)
    log_position = len(waggle.lines)

    udp.sendto(datagram, waggle.udp_address)

    wait_for(lambda: rejected(waggle) == rejected_before + 1,
             what='waggle_receiver_rejected_requests_total{receiver="xray_udp"} to count the datagram')
    reasons = {dict(labels).get("reason") for (name, labels), value in waggle.prometheus().items()
               if name == "waggle_receiver_rejected_requests_total" and dict(labels).get("receiver") == "xray_udp"
               and value > 0}
    assert reasons and None not in reasons, f"rejections carry no reason label: {reasons}"
    warnings = wait_for(lambda: waggle.records_at("WARN", since=log_position), timeout=5,
                        what="a WARN log line about the datagram")
    assert len(warnings) >= 1

    good_trace = new_xray_trace_id()
    udp.sendto(xray_datagram(xray_segment(name="good-after-bad", trace_id=good_trace)), waggle.udp_address)
    spans = waggle.wait_for_spans(good_trace, 1)
    assert [span["name"] for span in spans.values()] == ["good-after-bad"]
    assert waggle.trace(xray_to_otlp_trace_id(trace_id)) is None
    assert_store_unchanged_but_for(waggle, before, [xray_to_otlp_trace_id(good_trace)])
    assert rejected(waggle) == rejected_before + 1


def test_header_with_spaces_is_accepted(waggle, udp):
    """Other SDKs put spaces in the header; it is JSON, so parse it as JSON."""
    trace_id = new_xray_trace_id()
    segment_id = new_span_id()
    udp.sendto(
        xray_datagram(xray_segment(name="spaced-header", trace_id=trace_id, segment_id=segment_id),
                      header=b'{"format": "json", "version": 1}'),
        waggle.udp_address,
    )
    spans = waggle.wait_for_spans(trace_id, 1)
    assert list(spans) == [segment_id]
    assert rejected(waggle) == 0
