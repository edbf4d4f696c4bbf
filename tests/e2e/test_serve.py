"""End to end: `argus serve` (gunicorn + engine) on a free port, fed over HTTP, restarted warm."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from argus.testing import wire_record

pytestmark = pytest.mark.slow
KEY = "e2e-key-abcdefghijklmnop"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _request(port: int, path: str, body: object | None = None, key: str | None = KEY) -> tuple[int, dict]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, method="POST" if data else "GET")
    request.add_header("Content-Type", "application/json")
    if key:
        request.add_header("X-API-Key", key)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as ex:
        return ex.code, json.loads(ex.read())


def _wait_for(predicate, timeout_s: float = 30.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except (urllib.error.URLError, ConnectionError, OSError):
            pass
        time.sleep(0.2)
    raise AssertionError("condition not met in time")


class Served:
    def __init__(self, tmp_path, port: int, workers: int = 2) -> None:
        env = {**os.environ, "ARGUS_DATA_DIR": str(tmp_path), "TACHYON_API_KEY": KEY, "ARGUS_ENGINE_POLL_S": "0.2",
               "ARGUS_MODEL_DIR": str(tmp_path / "models"), "ARGUS_RECORDS_RETENTION_DAYS": "36500"}  # data of 2025
        self.log = open(tmp_path / f"serve-{time.monotonic_ns()}.log", "w")  # noqa: SIM115
        self.process = subprocess.Popen(
            [sys.executable, "-m", "argus", "serve", "--port", str(port), "--workers", str(workers)],
            env=env, stdout=self.log, stderr=subprocess.STDOUT,
        )
        self.port = port

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(30)
        finally:
            if self.process.poll() is None:
                self.process.kill()
            self.log.close()


def _status(port: int) -> dict:
    return _request(port, "/status", key=None)[1]


def test_serve_feeds_restarts_and_the_windows_survive(tmp_path):
    port = _free_port()
    served = Served(tmp_path, port)
    try:
        _wait_for(lambda: _status(port)["engine"]["running"])
        assert _request(port, "/feed/data", {"records": [wire_record("x")]}, key="wrong")[0] == 401
        for step in range(3):
            code, body = _request(port, "/feed/data", {"records": [wire_record(f"ppdb{i:03d}", step) for i in range(45)]})
            assert code == 200, body
        assert body["status"] == "accepted" and body["tick"] == 3
        status = _wait_for(lambda: (s := _status(port))["window_records"] == 135 and s)
        assert status["servers_tracked"] == 45
    finally:
        assert served.stop() == 0

    served = Served(tmp_path, port)
    try:
        status = _wait_for(lambda: (s := _status(port))["engine"]["running"] and s["window_records"] == 135 and s)
        assert status["servers_tracked"] == 45 and status["warmup_complete"] is True
        code, body = _request(port, "/feed/data", {"records": [wire_record("ppdb000", 3)]})
        assert code == 200 and body["tick"] == 4
        _wait_for(lambda: _status(port)["window_records"] == 136)
    finally:
        assert served.stop() == 0


def test_serve_refuses_to_start_without_a_key(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "TACHYON_API_KEY"}
    env["ARGUS_DATA_DIR"] = str(tmp_path)
    result = subprocess.run([sys.executable, "-m", "argus", "serve", "--port", str(_free_port())],
                            env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "No API key configured" in result.stderr


def test_every_record_that_got_a_200_survives_a_kill_9(tmp_path):
    import sqlalchemy as sa

    port = _free_port()
    served = Served(tmp_path, port, workers=1)
    acknowledged = 0
    try:
        _wait_for(lambda: _request(port, "/health", key=None)[0] == 200)
        for step in range(5):
            code, body = _request(port, "/feed/data", {"records": [wire_record(f"web{i:03d}", step) for i in range(200)]})
            assert code == 200
            acknowledged += body["records_received"]
    finally:
        # No goodbye: kill the supervisor, gunicorn and the engine at once.
        for pid in _descendants(served.process.pid) + [served.process.pid]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        served.process.wait(10)
        served.log.close()
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'argus.db'}")
    with engine.connect() as connection:
        stored = connection.execute(sa.text("SELECT count(*) FROM records")).scalar_one()
    engine.dispose()
    assert stored == acknowledged == 1000


def _descendants(pid: int) -> list[int]:
    result = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True)
    children = [int(p) for p in result.stdout.split()]
    return [d for child in children for d in (_descendants(child) + [child])]


def test_served_predictions_come_from_the_tft_after_feeding(tmp_path, engine_model_dir):
    import shutil

    shutil.copytree(engine_model_dir, tmp_path / "models")
    port = _free_port()
    served = Served(tmp_path, port, workers=1)
    try:
        _wait_for(lambda: _status(port)["engine"]["running"])
        assert _status(port)["model_loaded"] is True
        assert _status(port)["model_path"] == "models/tft_20250101_000000"
        for step in range(12):
            records = [wire_record(f"ppdb{i:03d}", step, mem_used_pct=60.0 + i) for i in range(10)]
            assert _request(port, "/feed/data", {"records": records})[0] == 200
        body = _wait_for(lambda: (b := _request(port, "/predictions/current")[1]).get("predictions") and b)
        assert len(body["predictions"]) == 10 and body["summary"]["total_servers"] == 10
        assert len(body["predictions"]["ppdb000"]["forecast"]["timestamps"]) == 24
        assert _status(port)["last_prediction"] is not None
        code, alerts = _request(port, "/alerts/active")
        assert code == 200 and alerts["count"] == len(alerts["alerts"])
    finally:
        assert served.stop() == 0
