"""Latency of every /historical/* endpoint over a month of synthetic history for 1,000 servers.

    .venv/bin/python benchmarks/history.py [--servers 1000] [--days 30] [--tick-minutes 5]
        [--episodes-per-server-day 0.5] [--url postgresql://...] [--db PATH] [--requests 10] [--json out.json]

Seeds the tick tables directly (what ``SqlMetricsStore.record_tick`` writes, in bulk): one fleet
snapshot per tick, one ``server_risk`` row per server per tick (1,000 x 30 days x 288 = 8.64M rows at
5-minute ticks) and alert episodes (raised, sometimes escalated and de-escalated, resolved), then
times the endpoints in-process through the Falcon app (``build_app`` with the real SqlHistoryStore,
JSON rendering included). The seeded month ends when seeding starts. Target: every endpoint under
200 ms at ``1M``. ``--db`` reuses an already seeded SQLite file (seeding takes minutes; the ranges
then end later than the data, by the time since seeding).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

KEY = "bench-key-0123456789abcdef"
LEVELS = np.array(["healthy", "degraded", "warning", "critical"])
PREFIXES = ("ppdb", "ppweb", "ppml", "ppetl", "ppapi", "pprisk", "ppcon")


def server_name(s: int) -> str:
    return f"{PREFIXES[s % len(PREFIXES)]}{s:04d}"


def level_of(scores: np.ndarray) -> np.ndarray:
    return LEVELS[(scores >= 50).astype(int) + (scores >= 60) + (scores >= 80)]


def episodes(rng, server: str, ticks: np.ndarray, rate_per_day: float, days: float) -> list[dict]:
    """Alert events of synthetic episodes: raised, maybe escalated + de-escalated, resolved."""
    rows = []
    for _ in range(rng.poisson(rate_per_day * days)):
        raised = float(rng.choice(ticks[:-100]))
        duration = 60.0 * float(rng.integers(15, 180))
        first = "warning" if rng.random() < 0.5 else "degraded"
        escalates = rng.random() < 0.3
        breached = bool(escalates and rng.random() < 0.5)
        peak = "critical" if escalates else first
        message = "Memory exhaustion predicted in 45 minutes" if rng.random() < 0.8 else 'Disk "data", filling up'
        steps = [("raised", "healthy", first, raised)]
        if escalates:
            steps += [("escalated", first, "critical", raised + duration / 3),
                      ("de-escalated", "critical", first, raised + 2 * duration / 3)]
        steps.append(("resolved", first, "healthy", raised + duration))
        for kind, previous, new, at in steps:
            rows.append({
                "at": at, "server_name": server, "event_type": kind, "previous_level": previous, "new_level": new,
                "risk_score": {"healthy": 20.0, "degraded": 55.0, "warning": 70.0, "critical": 88.0}[new],
                "message": message, "profile": "Database", "metric": "mem_pct", "raised_at": raised,
                "time_to_issue_minutes": 45.0, "resolved_at": raised + duration, "cause": "predicted",
                "peak_level": peak, "breached": breached,
            })
    return rows


def seed(engine, servers: int, days: float, tick_minutes: float, rate: float) -> dict[str, int]:
    """Bulk-write the tick tables for the ``days`` ending now, in time order as the engine does."""
    import sqlalchemy as sa

    rng = np.random.default_rng(0)
    start = float(int(time.time() - days * 86400))
    ticks = start + 60.0 * tick_minutes * np.arange(int(days * 1440 / tick_minutes))
    names = [server_name(s) for s in range(servers)]
    walks = np.cumsum(rng.normal(0, 1.5, (servers, len(ticks))), axis=1)
    daily = 15 * np.sin(2 * np.pi * (ticks - start)[None, :] / 86400 + np.arange(servers)[:, None])
    scores = np.round(np.clip(25 + daily + walks - walks.mean(axis=1, keepdims=True), 0, 100), 1)
    levels = level_of(scores)
    health = np.round(100.0 - scores.mean(axis=0), 1)
    events = sorted((e for name in names for e in episodes(rng, name, ticks, rate, days)), key=lambda e: e["at"])
    event_columns = tuple(events[0]) if events else ()
    counts = {"server_risk": scores.size, "alert_events": len(events), "fleet_snapshots": len(ticks)}
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        if engine.dialect.name == "sqlite":
            cursor.execute("PRAGMA synchronous=OFF")
        known = [(n, start, int(ticks[-1])) for n in names]
        _bulk(engine, cursor, "servers", ("name", "first_seen_at", "last_ts"), known)
        chunk, e = 36, 0  # three hours of ticks per transaction, tables interleaved like real ticks
        for i0 in range(0, len(ticks), chunk):
            i1 = min(len(ticks), i0 + chunk)
            rows = [(names[s], float(ticks[i]), float(scores[s, i]), str(levels[s, i]))
                    for i in range(i0, i1) for s in range(servers)]
            _bulk(engine, cursor, "server_risk", ("server_name", "at", "risk_score", "level"), rows)
            _bulk(engine, cursor, "fleet_snapshots", ("at", "total_servers", "critical_count", "warning_count",
                                                      "degraded_count", "healthy_count", "fleet_health", "prob_30m",
                                                      "prob_8h"),
                  [(float(ticks[i]), servers, 10, 40, 50, servers - 100, float(health[i]), 0.9, 0.99)
                   for i in range(i0, i1)])
            end = ticks[i1] if i1 < len(ticks) else float("inf")
            e1 = e
            while e1 < len(events) and events[e1]["at"] < end:
                e1 += 1
            if e1 > e:
                _bulk(engine, cursor, "alert_events", event_columns,
                      [tuple(ev[c] for c in event_columns) for ev in events[e:e1]])
                e = e1
            raw.commit()
            if (i0 // chunk) % 40 == 39:
                print(f"  seeded {i1}/{len(ticks)} ticks", file=sys.stderr, flush=True)
    finally:
        raw.close()
    with engine.begin() as connection:
        connection.execute(sa.text("ANALYZE"))
    return counts


def _bulk(engine, cursor, table: str, columns: tuple[str, ...], rows: list[tuple]) -> None:
    if engine.dialect.name == "postgresql":
        with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        return
    marks = ", ".join("?" for _ in columns)
    cursor.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", rows)


def time_endpoints(engine, requests: int) -> list[dict]:
    """Time each endpoint at 1M (and 1w) through the Falcon app; return rows of results."""
    from falcon import testing

    from argus.adapters.http.app import build_app
    from argus.adapters.http.options import Features, RequestLimits
    from argus.adapters.http.ratelimit import RateLimiter
    from argus.adapters.sql.history import SqlHistoryStore
    from argus.adapters.sql.store import SqlMetricsStore

    store = SqlMetricsStore(engine)
    history = SqlHistoryStore(engine)
    limiter = RateLimiter("memory://", "historical=1000000/minute")
    app = build_app(api_key=KEY, store=store, published=store, limiter=limiter,
                    limits=RequestLimits(max_body_bytes=1 << 20, max_records_per_request=1000,
                                         rolling_window_size=2880),
                    features=Features(history=history))
    client = testing.TestClient(app, headers={"X-API-Key": KEY})
    target = server_name(1)
    cases = [
        ("summary", "/historical/summary", {}),
        ("alerts (limit 1000)", "/historical/alerts", {}),
        ("alerts ?server_name", "/historical/alerts", {"server_name": target}),
        ("server/{name}", f"/historical/server/{target}", {}),
        ("environment", "/historical/environment", {}),
        ("export/alerts", "/historical/export/alerts", {}),
        ("export/alerts text/csv", "/historical/export/alerts", {"accept": "text/csv"}),
        ("export/environment", "/historical/export/environment", {}),
    ]
    results = []
    for time_range in ("1M", "1w"):
        for label, path, extra in cases:
            headers = {"Accept": extra["accept"]} if "accept" in extra else {}
            params = {"time_range": time_range, **{k: v for k, v in extra.items() if k != "accept"}}
            timings, size = [], 0
            for _ in range(requests + 1):
                started = time.perf_counter()
                response = client.simulate_get(path, params=params, headers=headers)
                timings.append((time.perf_counter() - started) * 1000)
                assert response.status_code == 200, (path, response.status_code, response.text[:200])
                size = len(response.content)
            timings = timings[1:]  # the first one warms caches
            results.append({"endpoint": label, "time_range": time_range, "p50_ms": round(statistics.median(timings), 1),
                            "max_ms": round(max(timings), 1), "bytes": size})
            row = results[-1]
            print(f"{time_range:>3} {label:<24} p50 {row['p50_ms']:>8.1f} ms  max {row['max_ms']:>8.1f} ms"
                  f"  {size:>10,} bytes", flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--servers", type=int, default=1000)
    parser.add_argument("--days", type=float, default=30.0)
    parser.add_argument("--tick-minutes", type=float, default=5.0)
    parser.add_argument("--episodes-per-server-day", type=float, default=0.5)
    parser.add_argument("--url", help="database URL, WIPED first (default: a new SQLite file in a temporary directory)")
    parser.add_argument("--db", type=Path, help="an SQLite file: seeded when missing, reused when present")
    parser.add_argument("--requests", type=int, default=10)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    from argus.adapters.sql.database import create_db_engine, migrate

    tmp = tempfile.TemporaryDirectory()
    db = args.db or Path(tmp.name) / "history.db"
    reuse = args.url is None and db.exists()
    url = args.url or f"sqlite:///{db}"
    engine = create_db_engine(url)
    if args.url and engine.dialect.name == "postgresql":
        import sqlalchemy as sa
        existing = sa.MetaData()
        existing.reflect(engine)
        existing.drop_all(engine)
    migrate(engine)
    counts = None
    if not reuse:
        started = time.perf_counter()
        counts = seed(engine, args.servers, args.days, args.tick_minutes, args.episodes_per_server_day)
        print(f"seeded {counts} in {time.perf_counter() - started:.0f} s", flush=True)
    results = time_endpoints(engine, args.requests)
    engine.dispose()
    if args.json:
        args.json.write_text(json.dumps({"database": engine.dialect.name, "servers": args.servers, "days": args.days,
                                         "tick_minutes": args.tick_minutes, "rows": counts, "results": results},
                                        indent=2))


if __name__ == "__main__":
    main()
