"""Several workers and hosts: 4 gunicorn workers on PostgreSQL + Redis, and a standby engine that takes over."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from argus.testing import wire_record
from tests.conftest import POSTGRES_URL, REDIS_URL, _reset_postgres
from tests.e2e.test_serve import _free_port, _wait_for

pytestmark = [
    pytest.mark.slow,
    pytest.mark.postgres,
    pytest.mark.skipif(not (POSTGRES_URL and REDIS_URL),
                       reason="needs ARGUS_TEST_POSTGRES_URL and ARGUS_TEST_REDIS_URL (CI sets both)"),
]
KEY = "scale-key-abcdefghijklmnop"


def _env(tmp_path, **extra) -> dict:
    return {**os.environ, "ARGUS_DATA_DIR": str(tmp_path), "TACHYON_API_KEY": KEY, "ARGUS_DATABASE_URL": POSTGRES_URL,
            "ARGUS_RATE_LIMIT_STORAGE": REDIS_URL, "ARGUS_MODEL_DIR": str(tmp_path / "no-models"),
            "ARGUS_ENGINE_POLL_S": "0.1", "ARGUS_RECORDS_RETENTION_DAYS": "36500", **extra}  # data of 2025


def _call(port: int, path: str, body: object | None = None) -> tuple[int, dict]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, method="POST" if data else "GET",
                                     headers={"Content-Type": "application/json", "X-API-Key": KEY,
                                              "Connection": "close"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as ex:
        return ex.code, json.loads(ex.read())


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)


def test_four_workers_share_the_database_and_the_rate_limits(tmp_path):
    import redis

    _reset_postgres(POSTGRES_URL)
    redis.Redis.from_url(REDIS_URL).flushdb()
    port = _free_port()
    serve = subprocess.Popen([sys.executable, "-m", "argus", "serve", "--port", str(port), "--workers", "4"],
                             env=_env(tmp_path, ARGUS_RATE_LIMITS="feed=12/minute"), start_new_session=True,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_for(lambda: _call(port, "/health")[0] == 200, timeout_s=60)
        codes = [_call(port, "/feed/data", {"records": [wire_record(f"ppweb{i:03d}", 0)]})[0] for i in range(14)]
        assert codes.count(200) == 12 and codes.count(429) == 2  # one limit across four workers
        statuses = {json.dumps(_call(port, "/alerts/active")[1]["alerts"]) for _ in range(8)}
        assert len(statuses) == 1
        status = _wait_for(lambda: (s := _call(port, "/status")[1]).get("window_records") == 12 and s, timeout_s=60)
        assert status["servers_tracked"] == 12
    finally:
        _stop(serve)


def test_a_standby_engine_takes_over_when_the_leader_dies(tmp_path):
    _reset_postgres(POSTGRES_URL)
    port = _free_port()
    env = _env(tmp_path)
    web = subprocess.Popen([sys.executable, "-m", "argus", "serve", "--port", str(port), "--no-engine"], env=env,
                           start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    logs = [open(tmp_path / f"engine{i}.log", "w") for i in (1, 2)]  # noqa: SIM115
    leader = subprocess.Popen([sys.executable, "-m", "argus", "engine"], env=env, start_new_session=True,
                              stdout=logs[0], stderr=subprocess.STDOUT)
    standby = None
    try:
        _wait_for(lambda: _call(port, "/status")[1]["engine"]["running"], timeout_s=60)
        standby = subprocess.Popen([sys.executable, "-m", "argus", "engine"], env=env, start_new_session=True,
                                   stdout=logs[1], stderr=subprocess.STDOUT)
        _wait_for(lambda: "standing by" in (tmp_path / "engine2.log").read_text(), timeout_s=60)
        assert _call(port, "/feed/data", {"records": [wire_record("ppdb001", 0)]})[0] == 200

        os.killpg(leader.pid, signal.SIGKILL)
        leader.wait(10)
        killed_at = time.monotonic()
        _wait_for(lambda: "engine is the leader" in (tmp_path / "engine2.log").read_text(), timeout_s=30)
        took_over_s = time.monotonic() - killed_at
        assert took_over_s < 15
        assert _call(port, "/feed/data", {"records": [wire_record("ppdb001", 1)]})[0] == 200
        _wait_for(lambda: _call(port, "/status")[1]["window_records"] == 2, timeout_s=30)
    finally:
        for process in (standby, leader, web):
            if process is not None:
                _stop(process)
        for log in logs:
            log.close()
