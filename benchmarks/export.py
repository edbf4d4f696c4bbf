"""Time to first byte and total time of the CSV exports, over a month of synthetic alert history.

    .venv/bin/python benchmarks/export.py [--servers 1000] [--days 30] [--requests 5] [--db PATH]

Seeds only what the exports read (alert events from about 0.5 episode per server per day, as in
benchmarks/history.py, and one fleet snapshot per 5-minute tick), then calls the WSGI app
directly: the time to the first body chunk is what a client waits before the download starts,
the total is until the last chunk. Also reports the Python heap's peak while the response is read.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

KEY = "bench-key-0123456789abcdef"


def _history_bench():
    spec = importlib.util.spec_from_file_location("history_bench", Path(__file__).with_name("history.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def seed(engine, servers: int, days: float) -> int:
    """Write alert events and fleet snapshots for the ``days`` ending now; return the number of events."""
    from argus.adapters.sql import tables as t

    bench = _history_bench()
    rng = np.random.default_rng(0)
    start = float(int(time.time() - days * 86400))
    ticks = start + 300.0 * np.arange(int(days * 288))
    events = sorted((e for s in range(servers) for e in bench.episodes(rng, bench.server_name(s), ticks, 0.5, days)),
                    key=lambda e: e["at"])
    with engine.begin() as connection:
        connection.execute(t.alert_events.insert(), events)
        connection.execute(t.fleet_snapshots.insert(), [
            {"at": float(at), "total_servers": servers, "critical_count": 10, "warning_count": 40,
             "degraded_count": 50, "healthy_count": servers - 100, "fleet_health": 91.5, "prob_30m": 0.9,
             "prob_8h": 0.99} for at in ticks])
        connection.execute(t.servers.insert(), [{"name": bench.server_name(s), "first_seen_at": start,
                                                 "last_ts": int(ticks[-1])} for s in range(servers)])
    return len(events)


def timed_get(app, path: str, query: str, accept: str) -> tuple[float, float, int]:
    """(seconds to the first body chunk, seconds to the last, bytes) of one GET through the WSGI app."""
    from falcon import testing

    environ = testing.create_environ(path=path, query_string=query, headers={"X-API-Key": KEY, "Accept": accept})
    status = []
    started = time.perf_counter()
    body = app(environ, lambda s, headers, exc_info=None: status.append(s))
    first, size = None, 0
    for chunk in body:
        if first is None and chunk:
            first = time.perf_counter() - started
        size += len(chunk)
    if hasattr(body, "close"):
        body.close()
    assert status and status[0].startswith("200"), status
    return first or 0.0, time.perf_counter() - started, size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--servers", type=int, default=1000)
    parser.add_argument("--days", type=float, default=30.0)
    parser.add_argument("--requests", type=int, default=5)
    parser.add_argument("--db", type=Path, help="an SQLite file: seeded when missing, reused when present")
    args = parser.parse_args()

    from argus.adapters.http.app import build_app
    from argus.adapters.http.options import Features, RequestLimits
    from argus.adapters.http.ratelimit import RateLimiter
    from argus.adapters.sql.database import create_db_engine, migrate
    from argus.adapters.sql.history import SqlHistoryStore
    from argus.adapters.sql.store import SqlMetricsStore

    with tempfile.TemporaryDirectory(prefix="argus-bench-") as tmp:
        db = args.db or Path(tmp) / "export.db"
        reuse = db.exists()
        engine = create_db_engine(f"sqlite:///{db}")
        migrate(engine)
        if not reuse:
            print(f"seeded {seed(engine, args.servers, args.days):,} alert events")
        store = SqlMetricsStore(engine)
        app = build_app(api_key=KEY, store=store, published=store,
                        limits=RequestLimits(max_body_bytes=1 << 20, max_records_per_request=1000,
                                             rolling_window_size=2880),
                        features=Features(history=SqlHistoryStore(engine)),
                        limiter=RateLimiter("memory://", "historical=1000000/minute"))
        for table in ("alerts", "environment"):
            for accept in ("application/json", "text/csv"):
                path = f"/historical/export/{table}"
                timed_get(app, path, "time_range=1M", accept)  # warm caches
                runs = [timed_get(app, path, "time_range=1M", accept) for _ in range(args.requests)]
                tracemalloc.start()
                timed_get(app, path, "time_range=1M", accept)
                peak = tracemalloc.get_traced_memory()[1]
                tracemalloc.stop()
                first, total = (statistics.median(r[i] for r in runs) * 1e3 for i in (0, 1))
                print(f"export/{table:<11} {accept:<16} first byte p50 {first:7.1f} ms"
                      f"  total p50 {total:7.1f} ms  {runs[0][2]:>10,} bytes"
                      f"  heap peak {peak / 1e6:6.1f} MB", flush=True)
        engine.dispose()


if __name__ == "__main__":
    main()
