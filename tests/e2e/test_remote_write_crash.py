"""End to end: remote_write samples that got a 2xx survive a kill -9 and become records after the restart."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from argus.adapters.prometheus.sample_hosts import Host, shard_batches

pytestmark = pytest.mark.slow
KEY = "e2e-key-abcdefghijklmnop"
STEP = 300


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _write(port: int, body: bytes) -> tuple[int, dict]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/api/v1/write", data=body, method="POST", headers={
        "Content-Type": "application/x-protobuf", "Content-Encoding": "snappy", "Authorization": f"Bearer {KEY}",
        "X-Prometheus-Remote-Write-Version": "0.1.0"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as ex:
        return ex.code, json.loads(ex.read())


def _wait_for(predicate, timeout_s: float = 60.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(urllib.error.URLError, ConnectionError, OSError, sqlite3.Error):
            value = predicate()
            if value:
                return value
        time.sleep(0.2)
    raise AssertionError("condition not met in time")


def _healthy(port: int) -> bool:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as response:
        return response.status == 200


def _serve(tmp_path, port: int) -> subprocess.Popen:
    env = {**os.environ, "ARGUS_DATA_DIR": str(tmp_path), "TACHYON_API_KEY": KEY, "ARGUS_ENGINE_POLL_S": "0.2",
           "ARGUS_MODEL_DIR": str(tmp_path / "models"), "ARGUS_LOG_LEVEL": "WARNING"}
    log = open(tmp_path / f"serve-{time.monotonic_ns()}.log", "w")  # noqa: SIM115 - closed with the process
    return subprocess.Popen([sys.executable, "-m", "argus", "serve", "--port", str(port), "--workers", "1"],
                            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def _kill_9(process: subprocess.Popen) -> None:
    """No goodbye: the supervisor, gunicorn and the engine at once."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(10)


def _query(tmp_path, sql: str) -> list[tuple]:
    with contextlib.closing(sqlite3.connect(tmp_path / "argus.db")) as connection:
        return connection.execute(sql).fetchall()


def _all_five(tmp_path) -> list[tuple] | None:
    """The closed records, once all five hosts have theirs: each host's step closes when its own newer
    sample arrives, so the first rows can come before the last host's (seen on a loaded CI machine)."""
    rows = _query(tmp_path, "SELECT server_name, ts, cpu_user_pct, mem_used_pct, java_cpu_pct FROM records "
                            "ORDER BY server_name")
    return rows if len(rows) >= 5 else None


def test_acknowledged_samples_survive_a_kill_9_and_their_step_closes_after_the_restart(tmp_path):
    hosts = [Host(f"node{i}.example.com:9100") for i in range(5)]
    # Scrapes every 15 s through a step that ended at least 5 minutes ago (a backlog, as Prometheus
    # re-sends after an outage): no step can close while they arrive (nothing newer came, the hosts
    # are not quiet), so every acknowledged sample must be in the buffer when the kill comes.
    step_end = (int(time.time()) // STEP - 2) * STEP
    port = _free_port()
    served = _serve(tmp_path, port)
    acknowledged = 0
    try:
        _wait_for(lambda: _healthy(port))
        for k in range(STEP // 15):
            for body in shard_batches(hosts, (step_end - STEP + 15 * (k + 1)) * 1000):
                code, answer = _write(port, body)
                assert code == 200, answer
                acknowledged += answer["samples_stored"]
    finally:
        _kill_9(served)
    assert acknowledged == 5 * 46 * (STEP // 15)
    assert _query(tmp_path, "SELECT count(*) FROM rollup_samples") == [(acknowledged,)]
    assert _query(tmp_path, "SELECT count(*) FROM records") == [(0,)]

    served = _serve(tmp_path, port)
    try:
        _wait_for(lambda: _healthy(port))
        for body in shard_batches(hosts, int(time.time() * 1000) - 1000):  # data past the step's grace
            assert _write(port, body)[0] == 200
        rows = _wait_for(lambda: _all_five(tmp_path))
    finally:
        _kill_9(served)
    assert [(name, ts) for name, ts, *_ in rows] == [(f"node{i}.example.com", step_end) for i in range(5)]
    for _, _, cpu_user, mem_used, java in rows:
        assert cpu_user == pytest.approx(30.0) and mem_used == pytest.approx(62.5) and java is None
