"""Training and evaluation input: records (JSON Lines, optionally gzipped, or Record objects) per server."""

from __future__ import annotations

import gzip
from collections import defaultdict
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import orjson

from argus.domain.metrics import METRIC_FIELDS, STATUS_CODE, Record
from argus.domain.series import ServerSeries  # the adapters share it through the domain


def _epoch_s(raw: str) -> int:
    stamp = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)  # the wire schema: no zone means UTC
    return int(round(stamp.timestamp()))


def _rows_from_jsonl(path: Path) -> Iterator[tuple[int, str, int, list[float]]]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as fh:
        for line in fh:
            if not line.strip():
                continue
            rec = orjson.loads(line)
            values = [float(rec[name]) for name in METRIC_FIELDS]
            yield _epoch_s(rec["timestamp"]), rec["server_name"], STATUS_CODE.get(rec["status"], 0), values


def _rows_from_records(records: Iterable[Record]) -> Iterator[tuple[int, str, int, list[float]]]:
    for rec in records:
        yield rec.epoch_s, rec.server_name, STATUS_CODE[rec.status], list(rec.values)


def load_series(source: str | Path | Iterable[Record]) -> dict[str, ServerSeries]:
    """Read records from a JSONL(.gz) path or an iterable of Records, grouped by server name."""
    rows = _rows_from_jsonl(Path(source)) if isinstance(source, str | Path) else _rows_from_records(source)
    ts: dict[str, list[int]] = defaultdict(list)
    values: dict[str, list[list[float]]] = defaultdict(list)
    status: dict[str, list[int]] = defaultdict(list)
    for epoch_s, name, code, row in rows:
        ts[name].append(epoch_s)
        values[name].append(row)
        status[name].append(code)
    return {
        name: ServerSeries(
            name,
            np.asarray(ts[name], dtype=np.int64),
            np.asarray(values[name], dtype=np.float32),
            np.asarray(status[name], dtype=np.int8),
        )
        for name in sorted(ts)
    }
