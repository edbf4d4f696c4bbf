"""A server's records as arrays, and the replay order of many servers' records.

Shared by the model's training and evaluation (``adapters/tft``) and the explanation evaluation
(``adapters/explain``): the adapters each import it from here, not from one another.
"""

from __future__ import annotations

from collections.abc import Mapping

import attrs
import numpy as np

from argus.domain.metrics import STATUS_VALUES, Record, utc_from_epoch

WARM_UP_S = 86_400  # records fed before a graded period, so windows are full when it starts


@attrs.frozen
class ServerSeries:
    """All records of one server as arrays (any order; the feature pipeline sorts them)."""

    server_name: str
    ts: np.ndarray  # int64 epoch seconds
    values: np.ndarray  # (n, len(METRIC_FIELDS)) float32
    status: np.ndarray  # int8 codes

    def __len__(self) -> int:
        return len(self.ts)


def records_between(series: Mapping[str, ServerSeries], start: int, end: int) -> list[Record]:
    """The records of every server with start <= ts <= end, in replay order (time, then server)."""
    rows = []
    for name, s in series.items():
        for i in range(len(s)):
            ts = int(s.ts[i])
            if start <= ts <= end:
                rows.append((ts, name, i))
    rows.sort()
    return [
        Record(utc_from_epoch(ts), name, STATUS_VALUES[int(series[name].status[i])],
               tuple(float(v) for v in series[name].values[i]))
        for ts, name, i in rows
    ]
