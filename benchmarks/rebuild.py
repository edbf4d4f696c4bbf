"""Engine start-up: rebuilding every server's rolling window from the database.

    .venv/bin/python benchmarks/rebuild.py [--servers 1000] [--records 2880] [--db PATH | --url URL] [--repeat 1]

Seeds SQLite with ``--servers`` × ``--records`` records (bulk insert through the store), then
times WindowKeeper.rebuild() (what a restarted engine does before its first tick) and reports
the windows' memory. ``--db`` keeps the seeded database at PATH and reuses it when it exists
(seeding 2.88 M records takes minutes), so runs before and after a change read the same file: run
another revision's code on it with ``PYTHONPATH=<its worktree>/src``. Each run prints the load average
next to its times (CPU seconds grow too when other processes share the cores).
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from pathlib import Path

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--servers", type=int, default=1000)
    parser.add_argument("--records", type=int, default=2880)
    parser.add_argument("--db", type=Path, default=None, help="keep the seeded SQLite file here; reuse it if present")
    parser.add_argument("--url", default=None, help="a database URL instead (PostgreSQL); seeded if it has no records")
    parser.add_argument("--repeat", type=int, default=1, help="time the rebuild this many times")
    args = parser.parse_args()

    from argus.adapters.sql.database import create_db_engine, migrate
    from argus.adapters.sql.store import SqlMetricsStore
    from argus.domain.metrics import METRIC_FIELDS, Record, utc_from_epoch
    from argus.domain.services import WindowKeeper

    with tempfile.TemporaryDirectory(prefix="argus-bench-") as tmp:
        path = args.db or Path(tmp) / "argus.db"
        engine = create_db_engine(args.url or f"sqlite:///{path}")
        migrate(engine)
        store = SqlMetricsStore(engine)
        started = time.perf_counter()
        if store.count_records(up_to=1) == 0:
            rng = np.random.default_rng(0)
            base = 1_736_899_200
            for step in range(args.records):
                values = rng.uniform(0, 100, size=(args.servers, len(METRIC_FIELDS))).round(1)
                store.write_batch([
                    Record(utc_from_epoch(base + 300 * step), f"srv{s:05d}", "healthy", tuple(values[s].tolist()))
                    for s in range(args.servers)
                ])
            print(f"seeded {args.servers} servers x {args.records} records in {time.perf_counter() - started:.1f}s")
        for _ in range(args.repeat):
            keeper = WindowKeeper(store, capacity=args.records)
            started, cpu = time.perf_counter(), time.process_time()
            loaded = keeper.rebuild()
            rebuild, cpu = time.perf_counter() - started, time.process_time() - cpu
            nbytes = sum(w.values.nbytes + w.timestamps.nbytes + w.statuses.nbytes for w in keeper.windows)
            peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # includes seeding, if it ran here
            print(f"rebuild: {loaded} records of {len(keeper.windows)} servers in {rebuild:.2f}s (CPU {cpu:.2f}s) "
                  f"({loaded / rebuild:,.0f} records/s), windows hold {nbytes / 1e6:.0f} MB, "
                  f"peak RSS {peak_mb:.0f} MB, load average {os.getloadavg()[0]:.1f}")
        engine.dispose()


if __name__ == "__main__":
    main()
