"""A store written by the previous release (SQLite `waggle.db`) is imported when the new
waggle starts on the same data directory, and the old file is kept, renamed."""

import shutil
from pathlib import Path

FIXTURE = Path(__file__).resolve().parents[1] / "data" / "store-v1" / "waggle.db"


def test_the_previous_release_store_is_served_after_an_upgrade(waggle_factory, tmp_path):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    shutil.copy(FIXTURE, data_dir / "waggle.db")

    waggle = waggle_factory(data_dir=data_dir)

    listed = {trace["trace_id"] for trace in waggle.traces(limit=50)}
    assert {"01" * 16, "02" * 16} <= listed, listed
    checkout = waggle.get_json(f"/api/traces/{'01' * 16}")
    assert {span["service"] for span in checkout["spans"]} >= {"checkout", "card-gateway"}
    assert len(waggle.get_json("/api/logs", limit=50)["logs"]) == 6
    assert not (data_dir / "waggle.db").exists()
    assert (data_dir / "waggle.db.migrated-v1").exists()
    imported = [r for r in waggle.records() if "imported the previous release" in r.get("fields", {}).get("message", "")]
    assert imported and imported[0]["fields"]["spans"] == 9, imported


def test_status_reports_the_store_bounds_and_bytes_per_span(waggle_factory, tmp_path):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    shutil.copy(FIXTURE, data_dir / "waggle.db")

    waggle = waggle_factory(data_dir=data_dir)

    store = waggle.get_json("/status")["local_store"]
    # The import seals what it imported: the span block on disk has a size per span.
    assert store["spans"] == 9 and store["blocks"] >= 1, store
    assert store["bytes_per_span"] > 0, store
    assert store["max_age_seconds"] == 24 * 3600, store
    assert 0 < store["bytes"] <= store["max_bytes"], store


def test_an_unreadable_previous_store_is_set_aside_and_waggle_serves(waggle_factory, tmp_path):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "waggle.db").write_bytes(b"\x5a" * 8192)

    waggle = waggle_factory(data_dir=data_dir)

    assert waggle.get("/readyz").status_code == 200
    assert waggle.traces() == []
    assert (data_dir / "waggle.db.corrupt").exists()
