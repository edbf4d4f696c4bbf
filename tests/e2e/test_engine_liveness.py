"""End to end: `argus serve` reports a killed engine as not running at once, and its supervisor restarts it."""

from __future__ import annotations

import json
import os
import signal
import time

import pytest

from argus.adapters.sql.database import create_db_engine
from argus.adapters.sql.store import SqlMetricsStore
from tests.e2e.test_serve import Served, _free_port, _request, _wait_for

pytestmark = pytest.mark.slow


def _published_engine_pid(tmp_path) -> int | None:
    db = create_db_engine(f"sqlite:///{tmp_path / 'argus.db'}")
    try:
        item = SqlMetricsStore(db).read_published("status")
    finally:
        db.dispose()
    return None if item is None else (json.loads(item.body).get("process") or {}).get("pid")


def _running(port: int) -> bool:
    return _request(port, "/health", key=None)[1]["running"]


def test_health_says_not_running_within_a_second_of_a_kill_9_and_running_again_after_the_restart(tmp_path):
    port = _free_port()
    served = Served(tmp_path, port, workers=1)
    try:
        _wait_for(lambda: _running(port), timeout_s=60)
        pid = _published_engine_pid(tmp_path)
        assert pid is not None and pid != served.process.pid
        os.kill(pid, signal.SIGKILL)
        killed_at = time.monotonic()
        _wait_for(lambda: not _running(port), timeout_s=10)  # the heartbeat alone would take 30 s
        noticed_s = time.monotonic() - killed_at
        _wait_for(lambda: _running(port) and _published_engine_pid(tmp_path) not in (None, pid), timeout_s=60)
    finally:
        assert served.stop() == 0
    assert noticed_s < 3.0  # measured 0.2 s (a zombie not yet reaped already reads as dead)
