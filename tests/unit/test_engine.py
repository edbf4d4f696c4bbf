"""The engine's window keeper follows ingestion through storage, the source of truth."""

from __future__ import annotations

import json

from argus.adapters.http.snapshots import render_status
from argus.domain.services import Engine, EngineStatus, WindowKeeper
from argus.testing import InMemoryMetricsStore, make_record


def test_rebuild_restores_every_servers_window_from_storage():
    store = InMemoryMetricsStore()
    store.write_batch([make_record("a", s) for s in range(5)] + [make_record("b", 0)])
    keeper = WindowKeeper(store, capacity=3)
    assert keeper.rebuild() == 4
    assert len(keeper.windows.get("a")) == 3 and len(keeper.windows.get("b")) == 1


def test_poll_applies_new_batches_once_and_replaces_resent_records():
    store = InMemoryMetricsStore()
    keeper = WindowKeeper(store, capacity=10)
    keeper.rebuild()
    store.write_batch([make_record("a", 0), make_record("a", 1)])
    assert keeper.poll() == 2
    assert keeper.poll() == 0
    store.write_batch([make_record("a", 1, mem_used_pct=99.0)])
    keeper.poll()
    window = keeper.windows.get("a")
    assert len(window) == 2 and window.column("mem_used_pct")[-1] == 99.0


def test_a_batch_committed_late_is_still_applied():
    store = InMemoryMetricsStore()
    keeper = WindowKeeper(store, capacity=10, gap_timeout_s=60)
    keeper.rebuild()
    store.write_batch([make_record("a", 0)])
    store.write_batch([make_record("b", 0)])
    store.hidden_batches.add(1)  # batch 1 is still committing when batch 2 is visible
    keeper.poll()
    assert "b" in keeper.windows and "a" not in keeper.windows
    store.hidden_batches.clear()
    keeper.poll()
    assert "a" in keeper.windows


def test_a_batch_that_never_appears_is_skipped_after_the_timeout():
    now = [1000.0]
    store = InMemoryMetricsStore()
    keeper = WindowKeeper(store, capacity=10, gap_timeout_s=30, clock=lambda: now[0])
    keeper.rebuild()
    for server in "abc":
        store.write_batch([make_record(server, 0)])
    store.hidden_batches.add(1)  # rolled back: never visible
    keeper.poll()
    assert keeper.watermark == 0
    now[0] += 31
    keeper.poll()
    assert keeper.watermark == 3


def test_engine_publishes_status_with_servers_and_warmup():
    store = InMemoryMetricsStore()
    store.write_batch([make_record(f"s{i}", step) for i in range(10) for step in range(12)])
    engine = Engine(WindowKeeper(store, capacity=2880), store, EngineStatus(started_at=0.0, rolling_window_size=2880),
                    render_status)
    engine.start()
    status = json.loads(store.read_published("status").body)
    assert status["servers_tracked"] == 10
    assert status["warmup_complete"] is True
    assert status["servers_ready"] == 10
    assert status["model_loaded"] is False and status["model_path"] is None
