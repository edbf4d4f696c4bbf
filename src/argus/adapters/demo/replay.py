"""Reading a JSONL(.gz) records file and cutting it into /feed/data batches, optionally paced."""

from __future__ import annotations

import gzip
import io
import json
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path

#: A batch grouped by timestamp is split above this many records (the API's default limit is 50,000).
MAX_GROUP_RECORDS = 10_000


class BadRecordFileError(Exception):
    """A line of the records file is not a JSON object."""


def read_records(path: str | Path) -> Iterator[dict]:
    """Yield the records of a JSONL file (``.gz`` decompressed; ``-`` reads stdin), skipping blank lines."""
    if str(path) == "-":
        handle: io.TextIOBase = sys.stdin
    elif str(path).endswith(".gz"):
        handle = gzip.open(path, "rt", encoding="utf-8")  # noqa: SIM115 - closed below
    else:
        handle = open(path, encoding="utf-8")  # noqa: SIM115 - closed below
    try:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError as ex:
                raise BadRecordFileError(f"{path}, line {number}: not JSON ({ex})") from None
            if not isinstance(record, dict):
                raise BadRecordFileError(f"{path}, line {number}: expected a JSON object per line")
            yield record
    finally:
        if handle is not sys.stdin:
            handle.close()


def batches(records: Iterable[dict], batch_size: int = 0) -> Iterator[list[dict]]:
    """Cut records into batches: ``batch_size`` records each, or (0) one batch per run of equal timestamps.

    A file sorted by timestamp (like a live feed) then posts one five-minute step of the fleet per
    request; a group larger than MAX_GROUP_RECORDS is split.
    """
    batch: list[dict] = []
    limit = batch_size if batch_size > 0 else MAX_GROUP_RECORDS
    for record in records:
        full = len(batch) >= limit
        new_step = batch_size <= 0 and batch and record.get("timestamp") != batch[-1].get("timestamp")
        if full or new_step:
            yield batch
            batch = []
        batch.append(record)
    if batch:
        yield batch


def data_time(record: dict) -> float | None:
    """The record's timestamp as epoch seconds (UTC when it has no zone); None when unreadable."""
    try:
        moment = datetime.fromisoformat(str(record.get("timestamp")))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


class Pacer:
    """Hold batches back so data time advances ``speed`` times faster than real time (0: no pacing)."""

    def __init__(self, speed: float, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.speed, self.clock, self.sleep = speed, clock, sleep
        self._origin: tuple[float, float] | None = None  # (data time, real time) of the first batch

    def wait_for(self, batch: list[dict]) -> None:
        if self.speed <= 0 or not batch:
            return
        at = data_time(batch[0])
        if at is None:
            return
        if self._origin is None:
            self._origin = (at, self.clock())
            return
        due = self._origin[1] + (at - self._origin[0]) / self.speed
        delay = due - self.clock()
        if delay > 0:
            self.sleep(delay)
