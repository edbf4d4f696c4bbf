"""Soak: 1,000 servers feeding every 5 simulated minutes while clients poll, on loopback.

    .venv/bin/python benchmarks/load.py [--minutes 30] [--servers 1000] [--step-seconds 5] [--json out.json]

Starts `argus serve --workers 2` on a fresh SQLite database with the shipped model, backfills
``--backfill-steps`` 5-minute steps (default 2,880: ten days, the engine's full rolling window, so
windows no longer grow during the soak), waits until the engine holds them all and has ticked, then
for ``--minutes``: one feeder posts the whole fleet's next 5-minute step every ``--step-seconds``
real seconds (60x faster than life at 5 s), and three clients poll /predictions/current,
/alerts/active and /explain/{random server} as fast as they are answered (explanations at the
reference's 30/minute limit: the excess gets 429).
Reports throughput, p50/p99 latency and status codes per endpoint (``explain_503``: explanations
the engine did not answer within the timeout, target 0), ticks seen, and the RSS of every Argus
process sampled every ``--sample-seconds`` (total and its anonymous part, ``anon``: heap rather than
mapped files): first and last value and the least-squares slope in MB/hour after ``--warm-up-minutes``
(target: about 0); every sample is kept in the JSON (``rss_samples``). Those samples swing by ~100 MB
with the phase of the engine's tick; ``engine_after_ticks`` reads the engine's own line after each tick
(resident set and malloc's in-use bytes, after its trim) from the server's log: the slope to judge.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from datetime import datetime
from pathlib import Path

KEY = "load-key-0123456789abcdef"
BASE = 1_736_899_200
PREFIXES = ("ppdb", "ppweb", "ppml", "ppetl", "ppapi", "pprisk", "ppcon")


def _records(servers: int, step: int, rng: random.Random) -> bytes:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(BASE + 300 * step))
    out = []
    for s in range(servers):
        cpu = 30 + 20 * ((s * 7 + step) % 24) / 24 + rng.uniform(-3, 3)
        mem = min(99.0, 50 + (s % 40) + 0.02 * step * (s % 3))
        out.append({"timestamp": stamp, "server_name": f"{PREFIXES[s % 7]}{s:04d}", "status": "healthy",
                    "cpu_user_pct": round(cpu * 0.8, 1), "cpu_sys_pct": round(cpu * 0.2, 1), "cpu_iowait_pct": 1.0,
                    "cpu_idle_pct": round(100 - cpu - 1, 1), "java_cpu_pct": 5.0, "mem_used_pct": round(mem, 1),
                    "swap_used_pct": 2.0, "disk_usage_pct": 40.0 + s % 30, "net_in_mb_s": 5.0, "net_out_mb_s": 3.0,
                    "back_close_wait": 2, "front_close_wait": 1, "load_average": round(cpu / 20, 2),
                    "uptime_days": 30})
    return json.dumps({"records": out}).encode()


class Stats:
    def __init__(self) -> None:
        self.latencies: dict[str, list[float]] = defaultdict(list)
        self.codes: dict[str, Counter] = defaultdict(Counter)
        self.lock = threading.Lock()

    def add(self, name: str, seconds: float, code: int) -> None:
        with self.lock:
            self.latencies[name].append(seconds)
            self.codes[name][code] += 1


def _request(connection: http.client.HTTPConnection, method: str, path: str, body: bytes | None = None) -> int:
    headers = {"X-API-Key": KEY}
    if body is not None:
        headers["Content-Type"] = "application/json"
    connection.request(method, path, body=body, headers=headers)
    response = connection.getresponse()
    response.read()
    return response.status


def _rss_mb(root_pid: int) -> dict[str, float]:
    """RSS (MB) of every process of the serve tree, keyed ``role pid`` (engine, gunicorn-master, worker, supervisor)."""
    out: dict[str, float] = {}
    pids = [(root_pid, None)]
    while pids:
        pid, parent_role = pids.pop()
        try:
            status = Path(f"/proc/{pid}/status").read_text()
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        fields = {line.split(":")[0]: int(line.split()[1]) / 1024 for line in status.splitlines()
                  if line.startswith(("VmRSS", "RssAnon"))}
        if " engine" in cmdline:
            role = "engine"
        elif "gunicorn" in cmdline:
            role = "worker" if parent_role == "gunicorn-master" else "gunicorn-master"
        else:
            role = "supervisor"
        out[f"{role} {pid}"] = round(fields.get("VmRSS", 0.0), 1)
        out[f"{role} {pid} anon"] = round(fields.get("RssAnon", 0.0), 1)  # heap; the rest is mapped files
        children = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True).stdout
        pids.extend((int(child), role) for child in children.split())
    return out


def _slope_mb_per_hour(samples: list[tuple[float, dict[str, float]]]) -> dict[str, float]:
    """Least-squares RSS slope of each process present in every sample, in MB/hour."""
    if len(samples) < 3:
        return {}
    keys = set.intersection(*(set(rss) for _, rss in samples))
    t = [at for at, _ in samples]
    t_mean = statistics.fmean(t)
    denominator = sum((x - t_mean) ** 2 for x in t)
    out = {}
    for key in sorted(keys):
        y = [rss[key] for _, rss in samples]
        y_mean = statistics.fmean(y)
        per_s = sum((x - t_mean) * (v - y_mean) for x, v in zip(t, y, strict=True)) / denominator
        out[key] = round(per_s * 3600, 1)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--servers", type=int, default=1000)
    parser.add_argument("--step-seconds", type=float, default=5.0)
    parser.add_argument("--model-dir", type=Path, default=Path("models"))
    parser.add_argument("--backfill-steps", type=int, default=2880,
                        help="5-minute steps of history posted first (2880: ten days, the engine's whole rolling "
                             "window, so memory is not still growing with the windows during the soak)")
    parser.add_argument("--warm-up-minutes", type=float, default=None,
                        help="minutes of load before the RSS slope is fitted (default: a sixth of --minutes, <= 5)")
    parser.add_argument("--sample-seconds", type=float, default=30.0, help="RSS sampling interval")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--server-log", type=Path, help="write the server's output here (default: discarded)")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the server we started, also when killed
    rng = random.Random(0)
    with tempfile.TemporaryDirectory(prefix="argus-load-") as tmp:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        env = {**os.environ, "ARGUS_DATA_DIR": tmp, "TACHYON_API_KEY": KEY,
               "ARGUS_LOG_LEVEL": "INFO", "ARGUS_LOG_FORMAT": "text",  # the engine's memory lines are read back
               "ARGUS_MODEL_DIR": str(args.model_dir.resolve()),
               "ARGUS_RECORDS_RETENTION_DAYS": "36500",  # the records are dated 2025
               # Explanations keep the reference's 30/minute: each costs the engine a second or two of
               # model time, so a client polling them faster gets documented 429s, not a queue.
               "ARGUS_RATE_LIMITS": ",".join(f"{g}=1000000/minute" for g in ("feed", "predictions", "alerts"))}
        server_log = args.server_log or Path(tmp) / "server.log"
        log = server_log.open("wb")
        server = subprocess.Popen([sys.executable, "-m", "argus", "serve", "--port", str(port), "--workers", "2"],
                                  env=env, start_new_session=True, stdout=log, stderr=subprocess.STDOUT)
        try:
            result = _soak(port, server.pid, args, rng)
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(60)
            log.close()
        result["engine_after_ticks"] = _after_ticks(server_log, result.pop("warm_up_ended_at"))
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


def _soak(port: int, root_pid: int, args, rng: random.Random) -> dict:
    deadline = time.monotonic() + 60
    while True:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            if _request(connection, "GET", "/health") == 200:
                break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
    started = time.monotonic()
    for step in range(args.backfill_steps):  # full windows from the start: memory is not still growing with them
        assert _request(connection, "POST", "/feed/data", _records(args.servers, step, rng)) == 200
    backfill_s = time.monotonic() - started
    caught_up_s = _wait_for_engine(port, args.servers * args.backfill_steps) - started
    stats, stop = Stats(), threading.Event()
    names = [f"{PREFIXES[s % 7]}{s:04d}" for s in range(args.servers)]

    def feeder() -> None:
        feed = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        step = args.backfill_steps
        while not stop.is_set():
            started = time.perf_counter()
            try:
                code = _request(feed, "POST", "/feed/data", _records(args.servers, step, rng))
            except (OSError, http.client.HTTPException):  # keep-alive closed by the server as we sent: retry
                feed = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                continue
            stats.add("POST /feed/data", time.perf_counter() - started, code)
            step += 1
            stop.wait(max(0.0, args.step_seconds - (time.perf_counter() - started)))

    def poller(name: str, path_for) -> None:
        client = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        while not stop.is_set():
            started = time.perf_counter()
            try:
                code = _request(client, "GET", path_for())
            except (OSError, http.client.HTTPException):
                code = 599
                client = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            stats.add(name, time.perf_counter() - started, code)

    threads = [threading.Thread(target=feeder, daemon=True),
               threading.Thread(target=poller, args=("GET /predictions/current", lambda: "/predictions/current"),
                                daemon=True),
               threading.Thread(target=poller, args=("GET /alerts/active", lambda: "/alerts/active"), daemon=True),
               threading.Thread(target=poller, args=("GET /explain/{server}", lambda: f"/explain/{rng.choice(names)}"),
                                daemon=True)]
    for thread in threads:
        thread.start()
    duration = args.minutes * 60
    warm_up_s = 60 * args.warm_up_minutes if args.warm_up_minutes is not None else min(300.0, duration / 6)
    load_started = time.monotonic()
    warm_up_ended_at = time.time() + warm_up_s
    samples: list[tuple[float, dict[str, float]]] = []  # after the warm-up
    ticks: set[str] = set()
    rss_start = _rss_mb(root_pid)
    while (elapsed := time.monotonic() - load_started) < duration:
        time.sleep(min(args.sample_seconds, max(0.0, duration - elapsed)))
        ticks.add(json.loads(_get(port, "/status")).get("last_prediction"))
        if time.monotonic() - load_started >= warm_up_s:
            samples.append((time.monotonic(), _rss_mb(root_pid)))
    stop.set()
    for thread in threads:
        thread.join(60)
    status = json.loads(_get(port, "/status"))
    explain_codes = stats.codes["GET /explain/{server}"]
    return {
        "servers": args.servers, "minutes": args.minutes, "step_seconds": args.step_seconds,
        "backfill_steps": args.backfill_steps, "backfill_s": round(backfill_s),
        "engine_caught_up_s": round(caught_up_s),
        "ticks_seen": len(ticks - {None}), "ticks_last_prediction": status.get("last_prediction"),
        "window_records": status.get("window_records"),
        "explain_503": explain_codes.get(503, 0), "explain_200": explain_codes.get(200, 0),
        "endpoints": {
            name: {"requests": len(lat), "per_s": round(len(lat) / duration, 2),
                   "p50_ms": round(1000 * statistics.median(lat), 1),
                   "p99_ms": round(1000 * sorted(lat)[int(0.99 * (len(lat) - 1))], 1),
                   "codes": dict(stats.codes[name])}
            for name, lat in stats.latencies.items() if lat
        },
        "rss_mb_load_start": rss_start,
        "rss_mb_after_warm_up": samples[0][1] if samples else None, "rss_mb_end": samples[-1][1] if samples else None,
        "rss_slope_mb_per_hour": _slope_mb_per_hour(samples),
        "rss_fit_minutes": round((samples[-1][0] - samples[0][0]) / 60, 1) if samples else 0,
        "rss_samples": [(round(at - samples[0][0]), rss) for at, rss in samples],
        "warm_up_ended_at": warm_up_ended_at,
    }


MEMORY_LINE = re.compile(r"^(\S+ \S+) .*memory after the tick: rss ([\d,]+) MB, malloc in use ([\d,]+) MB")


def _after_ticks(server_log: Path, since: float) -> dict:
    """The engine's resident set and malloc's in-use bytes right after each tick's trim (its log lines), after
    the warm-up: sampled at the same point of every tick, so their slopes are not the tick's own swing."""
    points = []
    with server_log.open(errors="replace") as lines:
        for line in lines:
            if (found := MEMORY_LINE.match(line)) is not None:
                at = datetime.strptime(found[1], "%Y-%m-%d %H:%M:%S,%f").timestamp()  # local, as logged
                if at >= since:
                    points.append((at, {"rss": float(found[2].replace(",", "")),
                                        "malloc_in_use": float(found[3].replace(",", ""))}))
    return {"ticks": len(points), "first": points[0][1] if points else None, "last": points[-1][1] if points else None,
            "slope_mb_per_hour": _slope_mb_per_hour(points)}


def _wait_for_engine(port: int, records: int, timeout_s: float = 3600.0) -> float:
    """Wait until the engine's windows hold ``records`` (or are full) and it has ticked; return when."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        status = json.loads(_get(port, "/status"))
        full = (status.get("servers_tracked") or 0) * (status.get("rolling_window_size") or 0)
        if (status.get("window_records") or 0) >= min(records, full or records) and status.get("last_prediction"):
            return time.monotonic()
        time.sleep(2.0)
    raise SystemExit(f"the engine did not catch up with {records} records in {timeout_s:.0f} s")


def _get(port: int, path: str) -> bytes:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    connection.request("GET", path, headers={"X-API-Key": KEY})
    return connection.getresponse().read()


if __name__ == "__main__":
    main()
