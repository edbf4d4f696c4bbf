"""Engine start-up: rebuilding every server's rolling window from the database.

    .venv/bin/python benchmarks/rebuild.py [--servers 1000] [--records 2880]

Seeds SQLite with ``--servers`` × ``--records`` records (bulk insert through the store), then
times WindowKeeper.rebuild() (what a restarted engine does before its first tick) and reports
the windows' memory.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--servers", type=int, default=1000)
    parser.add_argument("--records", type=int, default=2880)
    args = parser.parse_args()

    from argus.adapters.sql.database import create_db_engine, migrate
    from argus.adapters.sql.store import SqlMetricsStore
    from argus.domain.metrics import METRIC_FIELDS, Record, utc_from_epoch
    from argus.domain.services import WindowKeeper

    with tempfile.TemporaryDirectory(prefix="argus-bench-") as tmp:
        engine = create_db_engine(f"sqlite:///{Path(tmp) / 'argus.db'}")
        migrate(engine)
        store = SqlMetricsStore(engine)
        rng = np.random.default_rng(0)
        started = time.perf_counter()
        base = 1_736_899_200
        for step in range(args.records):
            values = rng.uniform(0, 100, size=(args.servers, len(METRIC_FIELDS))).round(1)
            store.write_batch([
                Record(utc_from_epoch(base + 300 * step), f"srv{s:05d}", "healthy", tuple(values[s].tolist()))
                for s in range(args.servers)
            ])
        seeded = time.perf_counter() - started
        keeper = WindowKeeper(store, capacity=args.records)
        started = time.perf_counter()
        loaded = keeper.rebuild()
        rebuild = time.perf_counter() - started
        nbytes = sum(w.values.nbytes + w.timestamps.nbytes + w.statuses.nbytes for w in keeper.windows)
        print(f"seeded {args.servers} servers x {args.records} records in {seeded:.1f}s; "
              f"rebuild: {loaded} records in {rebuild:.2f}s ({loaded / rebuild:,.0f} records/s), "
              f"windows hold {nbytes / 1e6:.0f} MB")
        engine.dispose()


if __name__ == "__main__":
    main()
