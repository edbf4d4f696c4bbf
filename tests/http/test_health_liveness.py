"""/health and /status judge the engine by its process where they can, not only by the heartbeat's age."""

from __future__ import annotations

import json
import signal
import subprocess
import sys

import pytest

from argus.adapters import liveness
from argus.adapters.liveness import this_process

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


@pytest.fixture
def fake_engine():
    """A process standing in for the engine, and the identity it would publish."""
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield process, {**this_process(), "pid": process.pid, "start_ticks": liveness._stat(process.pid)[1]}
    if process.poll() is None:
        process.kill()
        process.wait()


def _publish(container, process: dict | None) -> None:
    body = {"process": process, "model_loaded": False, "model_path": None, "rolling_window_size": 2880,
            "servers_tracked": 0, "last_prediction": None, "started_at": 1.0, "warmup_complete": False,
            "window_records": 0, "servers_ready": 0}
    container.store().publish({"status": json.dumps(body)})  # a fresh heartbeat


def test_a_killed_engine_is_not_running_while_its_heartbeat_is_still_fresh(client, container, fake_engine):
    process, identity = fake_engine
    _publish(container, identity)
    assert client.simulate_get("/health").json["running"] is True
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert client.simulate_get("/health").json["running"] is False
    status = client.simulate_get("/status").json
    assert status["engine"]["running"] is False and status["engine"]["heartbeat_age_s"] < 30
    assert "process" not in status and status["uptime_seconds"] is None


def test_an_engine_that_stopped_cleanly_is_not_running_on_any_host(client, container):
    _publish(container, {**this_process(), "host": "engine-host", "stopped_at": 2.0})
    assert client.simulate_get("/health").json["running"] is False


def test_an_engine_on_another_host_is_judged_by_its_heartbeat(client, container):
    _publish(container, {**this_process(), "host": "engine-host", "pid": 999_999})
    assert client.simulate_get("/health").json["running"] is True
