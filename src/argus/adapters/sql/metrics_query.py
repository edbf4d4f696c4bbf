"""A server's recent CPU and memory from the records table, for the web page's history chart.

Adapter-internal (no port): a read the web page's chart makes directly; the domain never asks for it.
"""

from __future__ import annotations

import sqlalchemy as sa

from argus.adapters.sql import tables as t
from argus.domain.metrics import STEP_SECONDS


class SqlMetricsQuery:
    """Read a server's last ``hours`` of CPU (100 - idle) and memory, at most ``max_points`` points."""

    def __init__(self, engine: sa.Engine, max_points: int = 300) -> None:
        self.engine = engine
        self.max_points = max_points

    def recent(self, server_name: str, hours: float) -> dict | None:
        """Return ``{"timestamps": [epoch s], "cpu_pct": [...], "mem_pct": [...]}``; None for an unknown server.

        The window ends at the server's latest record (data time, so backfills and accelerated
        feeds read the same); over ``max_points`` steps, neighbouring steps are averaged.
        """
        with self.engine.connect() as connection:
            last_ts = connection.execute(
                sa.select(t.servers.c.last_ts).where(t.servers.c.name == server_name)
            ).scalar_one_or_none()
            if last_ts is None:
                return None
            rows = connection.execute(
                sa.select(t.records.c.ts, t.records.c.cpu_idle_pct, t.records.c.mem_used_pct)
                .where(t.records.c.server_name == server_name, t.records.c.ts > last_ts - int(hours * 3600))
                .order_by(t.records.c.ts)
            ).all()
        return _downsample(rows, self.max_points)


def _downsample(rows, max_points: int) -> dict:
    stride = max(1, -(-len(rows) // max_points))  # ceil: at most max_points buckets
    out: dict = {"timestamps": [], "cpu_pct": [], "mem_pct": []}
    for start in range(0, len(rows), stride):
        bucket = rows[start:start + stride]
        out["timestamps"].append(int(bucket[-1][0]))
        out["cpu_pct"].append(round(100.0 - sum(float(r[1]) for r in bucket) / len(bucket), 2))
        out["mem_pct"].append(round(sum(float(r[2]) for r in bucket) / len(bucket), 2))
    out["step_s"] = STEP_SECONDS * stride
    return out
