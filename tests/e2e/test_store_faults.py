"""The local store under damage from outside: its directory deleted while waggle runs, or made
unwritable. waggle notices, says so, counts what was lost and goes on storing."""

import shutil

from helpers import new_span_id, new_trace_id, otlp_trace_request, post_otlp, wait_for

# A block is sealed (and written) at this many rows.
BLOCK_ROWS = 8192


def many_spans_request(trace_id, count):
    """One request with `count` spans of one trace."""
    request = otlp_trace_request(trace_id=trace_id)
    spans = request.resource_spans[0].scope_spans[0].spans
    template = spans[0]
    for _ in range(count - 1):
        span = spans.add()
        span.CopyFrom(template)
        span.span_id = bytes.fromhex(new_span_id())
    return request.SerializeToString()


def send(waggle, trace_id, count):
    response = post_otlp(waggle, "/v1/traces", many_spans_request(trace_id, count))
    assert response.status_code == 200, response.text[:300]


def store_status(waggle):
    return waggle.get_json("/status")["local_store"]


def test_a_store_directory_deleted_while_running_is_made_again_and_the_loss_counted(waggle_factory, tmp_path):
    data_dir = tmp_path / "data"
    waggle = waggle_factory(data_dir=data_dir)
    send(waggle, new_trace_id(), BLOCK_ROWS)
    wait_for(lambda: store_status(waggle)["blocks"] == 1, what="the first block written")

    shutil.rmtree(data_dir / "store")
    later = new_trace_id()
    send(waggle, later, BLOCK_ROWS)
    wait_for(
        lambda: (store_status(waggle)["lost_spans"], store_status(waggle)["blocks"]) == (BLOCK_ROWS, 1),
        what="the deleted block counted as lost and the new one written",
    )

    assert any(path.suffix == ".block" for path in (data_dir / "store").iterdir())
    assert len(waggle.trace(later)["spans"]) == BLOCK_ROWS
    lost = waggle.counter(
        "waggle_destination_dropped_items_total", destination="local", signal="traces", reason="store_error"
    )
    assert lost == BLOCK_ROWS
    warned = [r for r in waggle.records_at("WARN") if "directory was deleted or replaced" in r["fields"]["message"]]
    assert warned and warned[0]["fields"]["spans"] == BLOCK_ROWS, warned


def test_blocks_that_cannot_be_written_wait_and_are_written_once_the_directory_can_be_made(waggle_factory, tmp_path):
    data_dir = tmp_path / "data"
    waggle = waggle_factory(data_dir=data_dir)
    shutil.rmtree(data_dir / "store")
    (data_dir / "store").write_bytes(b"a file where the store's directory was")
    trace_id = new_trace_id()

    send(waggle, trace_id, BLOCK_ROWS)
    wait_for(lambda: store_status(waggle)["unwritten_blocks"] == 1, what="the block kept in memory")
    assert store_status(waggle)["write_error"], store_status(waggle)
    assert len(waggle.trace(trace_id)["spans"]) == BLOCK_ROWS

    (data_dir / "store").unlink()
    wait_for(lambda: store_status(waggle)["blocks"] == 1, timeout=15, what="the block written after the retry")
    status = store_status(waggle)
    assert (status["unwritten_blocks"], status["write_error"], status["lost_spans"]) == (0, None, 0), status
    assert len(waggle.trace(trace_id)["spans"]) == BLOCK_ROWS
