"""Crash test: kill -9 `argus serve` at random moments during ingestion, restart, check nothing is lost.

    .venv/bin/python benchmarks/crash.py [--iterations 100] [--seed 1]

Each iteration starts `argus serve` (gunicorn + engine) on one SQLite database, feeds batches from
a client thread, kills the whole process group with SIGKILL after a random delay, and remembers
every batch that got a 200. After each restart it checks that every acknowledged record is in the
database and, once the engine has rebuilt, that its windows hold exactly the stored records.
Exits non-zero on any loss.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

KEY = "crash-key-0123456789abcdef"
BASE = 1_736_899_200


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _record(server: int, step: int) -> dict:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(BASE + 300 * step))
    return {"timestamp": stamp, "server_name": f"crash{server:03d}", "status": "healthy",
            "cpu_user_pct": 20.0, "cpu_sys_pct": 5.0, "cpu_iowait_pct": 1.0, "cpu_idle_pct": 74.0,
            "java_cpu_pct": 3.0, "mem_used_pct": 50.0 + server % 40, "swap_used_pct": 1.0, "disk_usage_pct": 40.0,
            "net_in_mb_s": 2.0, "net_out_mb_s": 1.0, "back_close_wait": 1, "front_close_wait": 1,
            "load_average": 1.0, "uptime_days": 3}


def _post(port: int, body: bytes, timeout: float = 5.0) -> int:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/feed/data", data=body, method="POST",
                                     headers={"Content-Type": "application/json", "X-API-Key": KEY})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return response.status


def _get_status(port: int) -> dict | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/status", timeout=2) as response:
            return json.loads(response.read())
    except (urllib.error.URLError, OSError, ValueError):
        return None


class Fleet:
    """Feeds 50 servers one step at a time; remembers the records of every acknowledged batch."""

    def __init__(self) -> None:
        self.step = 0
        self.acked: set[tuple[str, int]] = set()

    def feed_until_dead(self, port: int) -> None:
        while True:
            records = [_record(s, self.step) for s in range(50)]
            try:
                status = _post(port, json.dumps({"records": records}).encode())
            except (urllib.error.URLError, OSError):
                return  # the server died (or is not up yet): an unacknowledged batch may or may not be stored
            if status == 200:
                self.acked.update((r["server_name"], BASE + 300 * self.step) for r in records)
                self.step += 1


def _start(data_dir: Path, port: int) -> subprocess.Popen:
    env = {**os.environ, "ARGUS_DATA_DIR": str(data_dir), "TACHYON_API_KEY": KEY, "ARGUS_LOG_LEVEL": "WARNING",
           "ARGUS_MODEL_DIR": str(data_dir / "no-models"), "ARGUS_RATE_LIMITS": "feed=100000/minute",
           "ARGUS_ENGINE_POLL_S": "0.1", "ARGUS_RECORDS_RETENTION_DAYS": "36500"}  # the records are dated 2025
    return subprocess.Popen([sys.executable, "-m", "argus", "serve", "--port", str(port)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


def _wait_up(port: int, launched: float, timeout_s: float = 120.0) -> dict:
    """Wait for the status published by *this* run's engine (a killed engine's row lingers)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        status = _get_status(port)
        started = ((status or {}).get("engine") or {}).get("started_at")
        if started is not None and started >= launched:
            return status
        time.sleep(0.1)
    raise RuntimeError("argus serve did not come up")


def _stored(db: Path) -> set[tuple[str, int]]:
    with sqlite3.connect(db) as connection:
        return set(connection.execute("SELECT server_name, ts FROM records"))


def _expected_window_records(stored: set[tuple[str, int]], capacity: int = 2880) -> int:
    """What rebuilt windows must hold: each server's newest ``capacity`` records."""
    per_server: dict[str, int] = {}
    for server, _ in stored:
        per_server[server] = per_server.get(server, 0) + 1
    return sum(min(n, capacity) for n in per_server.values())


def run(iterations: int, seed: int, data_dir: Path) -> dict:
    rng = random.Random(seed)
    fleet = Fleet()
    lost_total = 0
    for i in range(iterations):
        port = _free_port()
        launched = time.time()
        server = _start(data_dir, port)
        try:
            status = _wait_up(port, launched)
            expected = _expected_window_records(_stored(data_dir / "argus.db"))
            if status["window_records"] != expected:  # give a late publish a moment
                time.sleep(1.0)
                status = _get_status(port) or status
            windows_ok = status["window_records"] == expected
            if not windows_ok:
                print(f"  windows hold {status['window_records']} records, the database's newest per server "
                      f"{expected}; status {status}", flush=True)
            feeder = threading.Thread(target=fleet.feed_until_dead, args=(port,), daemon=True)
            feeder.start()
            time.sleep(rng.uniform(0.05, 1.5))
        finally:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(10)
        feeder.join(10)
        lost = fleet.acked - _stored(data_dir / "argus.db")
        lost_total += len(lost)
        print(f"iteration {i + 1}/{iterations}: acknowledged {len(fleet.acked)} records, lost {len(lost)}, "
              f"windows {'intact' if windows_ok else 'MISMATCH'} at restart", flush=True)
        if lost or not windows_ok:
            return {"iterations": i + 1, "acknowledged": len(fleet.acked), "lost": lost_total, "ok": False}
    return {"iterations": iterations, "acknowledged": len(fleet.acked), "lost": lost_total, "ok": True}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--iterations", type=int, default=100)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="argus-crash-") as tmp:
        result = run(args.iterations, args.seed, Path(tmp))
    print(json.dumps(result))
    sys.exit(0 if result["ok"] else 1)


if __name__ == "__main__":
    main()
