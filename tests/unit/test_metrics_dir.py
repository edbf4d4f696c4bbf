"""The /metrics multiprocess directory: made or emptied per run by `argus serve`, dead processes' gauges dropped."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector

from argus.entrypoints import gunicorn_conf
from argus.entrypoints.supervisor import MULTIPROC_ENV, mark_dead, prepare_metrics_dir

COUNT_AND_GAUGE = """
from argus.adapters import telemetry
telemetry.count_ingested("feed", records=1000)
telemetry.SINK_QUEUE.labels("webhook").set(7)
"""


def _run_a_process_counting_into(path) -> None:
    subprocess.run([sys.executable, "-c", COUNT_AND_GAUGE], env={MULTIPROC_ENV: str(path)}, check=True, timeout=60)


def _summed(path) -> dict[tuple[str, tuple], float]:
    registry = CollectorRegistry()
    MultiProcessCollector(registry, str(path))
    return {(s.name, tuple(sorted(s.labels.items()))): s.value for f in registry.collect() for s in f.samples}


def test_a_configured_directory_is_emptied_of_a_previous_runs_counts(tmp_path):
    _run_a_process_counting_into(tmp_path)
    (tmp_path / "notes.txt").write_text("not ours")
    assert _summed(tmp_path)[("argus_ingested_records_total", (("source", "feed"),))] == 1000
    path, made = prepare_metrics_dir({MULTIPROC_ENV: str(tmp_path)})
    assert path == tmp_path and made is False
    assert list(tmp_path.glob("*.db")) == [] and (tmp_path / "notes.txt").exists()
    assert ("argus_ingested_records_total", (("source", "feed"),)) not in _summed(tmp_path)


def test_without_a_configured_directory_each_run_gets_a_new_empty_one():
    first, made = prepare_metrics_dir({})
    second, _ = prepare_metrics_dir({})
    try:
        assert made is True and first != second
        assert first.is_dir() and list(first.iterdir()) == []
    finally:
        shutil.rmtree(first)
        shutil.rmtree(second)


def test_directories_of_supervisors_that_died_are_removed_at_start_and_live_ones_kept(tmp_path):
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    orphan = tmp_path / f"argus-metrics-{gone.pid}-abc123"
    live = tmp_path / f"argus-metrics-{os.getpid()}-def456"
    foreign = tmp_path / "argus-metrics-notapid-x"
    for path in (orphan, live, foreign):
        path.mkdir()
        (path / "counter_1.db").write_bytes(b"")
    made, _ = prepare_metrics_dir({}, parent=tmp_path)
    assert not orphan.exists() and live.exists() and foreign.exists()
    assert made.name.startswith(f"argus-metrics-{os.getpid()}-")


def test_a_dead_process_keeps_its_counts_but_not_its_live_gauges(tmp_path):
    _run_a_process_counting_into(tmp_path)
    (pid,) = {int(p.stem.rsplit("_", 1)[1]) for p in tmp_path.glob("gauge_livemax_*.db")}
    assert _summed(tmp_path)[("argus_alert_sink_queue_depth", (("sink", "webhook"),))] == 7
    mark_dead(tmp_path, pid)
    after = _summed(tmp_path)
    assert ("argus_alert_sink_queue_depth", (("sink", "webhook"),)) not in after
    assert after[("argus_ingested_records_total", (("source", "feed"),))] == 1000


class _Worker:
    def __init__(self, pid: int) -> None:
        self.pid = pid


def test_gunicorns_child_exit_hook_marks_the_worker_dead(tmp_path, monkeypatch):
    _run_a_process_counting_into(tmp_path)
    (pid,) = {int(p.stem.rsplit("_", 1)[1]) for p in tmp_path.glob("gauge_livemax_*.db")}
    monkeypatch.setenv(MULTIPROC_ENV, str(tmp_path))
    gunicorn_conf.child_exit(None, _Worker(pid))
    assert list(tmp_path.glob("gauge_livemax_*.db")) == []
    assert list(tmp_path.glob(f"counter_{pid}.db"))
