"""The demo fleet written out as a JSON Lines records file (the ``/feed/data`` schema), for ``argus feed``."""

from __future__ import annotations

import gzip
import json
from datetime import datetime, timedelta
from pathlib import Path

from argus.adapters.demo.fleet import FleetSimulator
from argus.domain.metrics import STEP_SECONDS


def export_fleet(path: str | Path, *, servers: int, steps: int, end: datetime, seed: int = 7) -> int:
    """Write ``steps`` five-minute steps of ``servers`` simulated servers, the last at ``end``; return the count.

    The incidents of the demo (leaks, runaways, filling disks) play out in the last hours, as they
    would live. ``.gz`` paths are gzipped.
    """
    start = end - timedelta(seconds=STEP_SECONDS * (steps - 1))
    sim = FleetSimulator(servers, seed=seed, start=start, live_step=max(0, steps - 36))
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    written = 0
    with opener(path, "wt", encoding="utf-8") as handle:
        for records in sim.steps(0, steps):
            for record in records:
                handle.write(json.dumps(record, separators=(",", ":")) + "\n")
            written += len(records)
    return written
