"""Fleet tick time with 1 and with 2 sharded engines on PostgreSQL (ARGUS_ENGINE_SHARDING=1).

    nice .venv/bin/python benchmarks/sharding.py --url postgresql://postgres@127.0.0.1:5432/bench \
        [--servers 10000] [--engines 1 2] [--ticks 2] [--json out.json]

Seeds an EMPTIED database (every table is dropped first: never point it at real data) with
``--history`` 5-minute steps of synthetic metrics per server, then for each engine count starts
that many ``argus engine`` processes (the model in ARGUS_MODEL_DIR, default ./models), keeps a
trickle of new records coming so every engine keeps ticking, and waits until each engine has run
``--ticks`` ticks. An engine's tick time is read from its log ("tick: N servers in X s"); the
fleet's tick time is the slowest engine's last tick (they tick side by side). On a 2-core machine
two engines cannot be twice as fast: the point is the split, which the e2e test proves exact.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

START = int(time.time()) // 300 * 300 - 86400  # history ends within the last day (older records are purged)
TICK_LINE = re.compile(r"tick: (\d+) servers in ([\d.]+)s")


def seed(url: str, servers: int, steps: int) -> list[str]:
    """Drop every table, migrate, write ``steps`` records for each of ``servers`` servers; return their names."""
    import sqlalchemy as sa

    from argus.adapters.sql.database import create_db_engine, migrate
    from argus.adapters.sql.store import SqlMetricsStore
    from argus.domain.metrics import FIELD_INDEX, METRIC_FIELDS, Record, utc_from_epoch

    engine = create_db_engine(url)
    existing = sa.MetaData()
    existing.reflect(engine)
    existing.drop_all(engine)
    migrate(engine)
    store = SqlMetricsStore(engine)
    rng = np.random.default_rng(0)
    names = [f"{('ppdb', 'ppweb', 'ppml', 'ppapi')[s % 4]}{s:05d}" for s in range(servers)]
    t = np.arange(steps)
    batch: list[Record] = []
    for s, name in enumerate(names):
        daily = np.sin(2 * np.pi * t / 288 + s)
        cpu = np.clip(35 + 20 * daily + rng.normal(0, 4, steps), 0, 100)
        values = np.zeros((steps, len(METRIC_FIELDS)))
        values[:, FIELD_INDEX["cpu_user_pct"]] = cpu * 0.8
        values[:, FIELD_INDEX["cpu_sys_pct"]] = cpu * 0.2
        values[:, FIELD_INDEX["cpu_idle_pct"]] = 100 - cpu
        values[:, FIELD_INDEX["mem_used_pct"]] = np.clip(55 + 10 * daily + rng.normal(0, 1, steps), 0, 100)
        values[:, FIELD_INDEX["disk_usage_pct"]] = 40 + (s % 40)
        values[:, FIELD_INDEX["load_average"]] = cpu / 25
        values[:, FIELD_INDEX["uptime_days"]] = 30
        batch.extend(Record(utc_from_epoch(START + i * 300), name, "healthy", tuple(float(v) for v in values[i]))
                     for i in range(steps))
        if len(batch) >= 20_000:
            store.write_batch(batch)
            batch = []
    if batch:
        store.write_batch(batch)
    engine.dispose()
    return names


def trickle(url: str, names: list[str], steps: int, stop: threading.Event) -> None:
    """Re-send one record of every 50th server each second: new data for every engine, so each keeps ticking."""
    from argus.adapters.sql.database import create_db_engine
    from argus.adapters.sql.store import SqlMetricsStore
    from argus.domain.metrics import METRIC_FIELDS, Record, utc_from_epoch

    engine = create_db_engine(url)
    store = SqlMetricsStore(engine)
    last = utc_from_epoch(START + (steps - 1) * 300)
    while not stop.wait(1.0):
        store.write_batch([Record(last, name, "healthy", (30.0,) * len(METRIC_FIELDS)) for name in names[::50]])
    engine.dispose()


def run(url: str, servers: int, engines: int, ticks: int, logs: Path, timeout_s: float) -> dict:
    env = {**os.environ, "ARGUS_DATABASE_URL": url, "ARGUS_ENGINE_SHARDING": "1", "ARGUS_TICK_INTERVAL_S": "1",
           "ARGUS_EXPLAIN_PRECOMPUTE_MAX": "0", "ARGUS_DATA_DIR": str(logs), "ARGUS_LOG_LEVEL": "INFO"}
    files = [logs / f"engines{engines}-{i}.log" for i in range(engines)]
    even = servers / engines
    processes = []
    started = time.monotonic()
    try:
        for path in files:
            with path.open("w") as out:
                processes.append(subprocess.Popen([sys.executable, "-m", "argus", "engine"], env=env,
                                                  stdout=out, stderr=subprocess.STDOUT, start_new_session=True))
        while True:
            # Before the partitions settle an engine may tick a bigger or smaller share (even none):
            # only ticks over about an even share count.
            seen = [[(int(n), float(s)) for n, s in TICK_LINE.findall(p.read_text())
                     if 0.5 * even <= int(n) <= 1.5 * even]
                    for p in files]
            if all(len(t) >= ticks for t in seen) and all(p.poll() is None for p in processes):
                break
            if time.monotonic() - started > timeout_s or any(p.poll() is not None for p in processes):
                raise SystemExit(f"engines did not tick {ticks} times in {timeout_s:.0f} s; see {logs}")
            time.sleep(1.0)
    finally:
        for process in processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in processes:
            process.wait(60)
    last = [t[-1] for t in seen]
    return {"engines": engines, "servers_per_engine": [n for n, _ in last], "tick_s_per_engine": [s for _, s in last],
            "all_ticks": seen, "fleet_tick_s": max(s for _, s in last),
            "wall_to_last_tick_s": round(time.monotonic() - started, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default=os.environ.get("ARGUS_TEST_POSTGRES_URL"), help="PostgreSQL URL (emptied!)")
    parser.add_argument("--servers", type=int, default=10_000)
    parser.add_argument("--history", type=int, default=36, help="5-minute steps per server (36 = 3 hours, < 288)")
    parser.add_argument("--engines", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--ticks", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds per engine count")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if not args.url or not args.url.startswith("postgresql"):
        raise SystemExit("needs --url postgresql://... (or ARGUS_TEST_POSTGRES_URL); every table in it is dropped")
    seeded = time.monotonic()
    names = seed(args.url, args.servers, args.history)
    print(f"seeded {args.servers} servers x {args.history} steps in {time.monotonic() - seeded:.0f} s", flush=True)
    stop = threading.Event()
    feeder = threading.Thread(target=trickle, args=(args.url, names, args.history, stop), daemon=True)
    feeder.start()
    results = []
    logs = Path(tempfile.mkdtemp(prefix="argus-sharding-"))  # the engines' logs, kept for a look afterwards
    for count in args.engines:
        result = run(args.url, args.servers, count, args.ticks, logs, args.timeout)
        print(f"{count} engine(s): servers {result['servers_per_engine']}, last tick "
              f"{result['tick_s_per_engine']} s -> fleet tick {result['fleet_tick_s']:.1f} s (logs in {logs})",
              flush=True)
        results.append(result)
    stop.set()
    report = {"servers": args.servers, "history_steps": args.history, "cpus": os.cpu_count(),
              "load_average": os.getloadavg(), "results": results}
    if len(results) >= 2:
        report["speedup"] = round(results[0]["fleet_tick_s"] / results[-1]["fleet_tick_s"], 2)
    print(json.dumps({k: v for k, v in report.items() if k != "results"}))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
