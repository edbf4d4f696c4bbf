"""Bulk loading a JSONL(.gz) records file: raw lines packed into bodies near the server's limit, several in flight.

Lines are never parsed here (the server validates every record anyway): each non-blank line must
look like one JSON object and is copied into ``{"records": [line, line, ...]}`` as it is. That
keeps the client's CPU out of the way: decompressing and packing 1.3 M records takes seconds, so
the server's validation and commit set the pace. A body the server still finds too large (413) is
split in two and both halves are sent.
"""

from __future__ import annotations

import gzip
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import BinaryIO

import attrs

from argus.adapters.demo.client import FeedRejectedError
from argus.adapters.demo.replay import BadRecordFileError

MIB = 1024 * 1024
DEFAULT_MAX_BODY_BYTES = 10 * MIB  # the server's ARGUS_MAX_BODY_BYTES default
DEFAULT_MAX_RECORDS = 50_000  # the server's ARGUS_MAX_RECORDS_PER_REQUEST default
_ENVELOPE = len(b'{"records":[]}')


@attrs.frozen
class Body:
    """One request: its records' raw lines and the file line number of each."""

    lines: tuple[bytes, ...]
    numbers: tuple[int, ...]

    def encode(self) -> bytes:
        return b'{"records":[' + b",".join(self.lines) + b"]}"

    def halves(self) -> tuple[Body, Body]:
        mid = len(self.lines) // 2
        return Body(self.lines[:mid], self.numbers[:mid]), Body(self.lines[mid:], self.numbers[mid:])


def _open(path: str | Path) -> BinaryIO:
    if str(path) == "-":
        return sys.stdin.buffer
    if str(path).endswith(".gz"):
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return open(path, "rb")  # noqa: SIM115 - closed by the callers


def raw_lines(path: str | Path) -> Iterator[tuple[int, bytes]]:
    """Yield (line number, line) for every non-blank line; refuse a line that is not one JSON object."""
    handle = _open(path)
    try:
        for number, line in enumerate(handle, start=1):
            line = line.strip()
            if not line:
                continue
            if not (line.startswith(b"{") and line.endswith(b"}")):
                raise BadRecordFileError(f"{path}, line {number}: expected a JSON object per line")
            yield number, line
    finally:
        if handle is not sys.stdin.buffer:
            handle.close()


def count_lines(path: str | Path) -> int | None:
    """Records in the file (non-blank lines), or None for stdin."""
    if str(path) == "-":
        return None
    handle = _open(path)
    try:
        return sum(1 for line in handle if line.strip())
    finally:
        handle.close()


def pack(lines: Iterable[tuple[int, bytes]], max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
         max_records: int = DEFAULT_MAX_RECORDS) -> Iterator[Body]:
    """Cut lines into bodies of at most ``max_body_bytes`` encoded and ``max_records`` records."""
    batch: list[bytes] = []
    numbers: list[int] = []
    size = _ENVELOPE
    for number, line in lines:
        if batch and (size + len(line) + 1 > max_body_bytes or len(batch) >= max_records):
            yield Body(tuple(batch), tuple(numbers))
            batch, numbers, size = [], [], _ENVELOPE
        batch.append(line)
        numbers.append(number)
        size += len(line) + 1
    if batch:
        yield Body(tuple(batch), tuple(numbers))


class BatchRejectedError(Exception):
    """The server refused a body for good; ``first_line`` locates it in the file."""

    def __init__(self, rejected: FeedRejectedError, body: Body) -> None:
        super().__init__(str(rejected))
        self.rejected, self.body = rejected, body

    def line_of(self, index: int) -> int | None:
        """The file line of the body's ``index``-th record (the server's loc), if any."""
        return self.body.numbers[index] if 0 <= index < len(self.body.numbers) else None


@attrs.define
class Tally:
    """What the server acknowledged so far (a 200 means committed)."""

    records: int = 0
    requests: int = 0
    splits: int = 0
    lock: threading.Lock = attrs.field(factory=threading.Lock, repr=False)

    def add(self, records: int) -> None:
        with self.lock:
            self.records += records
            self.requests += 1


def send(client, body: Body, tally: Tally, on_ack: Callable[[int], None]) -> None:
    """POST ``body``; on 413 send its two halves instead (down to one record)."""
    try:
        client.post_body("/feed/data", body.encode())
    except FeedRejectedError as ex:
        if ex.status == 413 and len(body.lines) > 1:
            tally.splits += 1
            for half in body.halves():
                send(client, half, tally, on_ack)
            return
        raise BatchRejectedError(ex, body) from None
    tally.add(len(body.lines))
    on_ack(len(body.lines))


def backfill(client, bodies: Iterable[Body], parallel: int, on_ack: Callable[[int], None],
             tally: Tally | None = None) -> Tally:
    """Send every body with up to ``parallel`` requests in flight; the first refusal stops the rest.

    On KeyboardInterrupt nothing more is sent; requests already in flight are waited for, so
    ``tally`` counts exactly what was acknowledged (a second interrupt stops waiting).
    """
    tally = tally or Tally()
    pool = ThreadPoolExecutor(max_workers=max(1, parallel), thread_name_prefix="feed")
    pending: set[Future] = set()
    try:
        for body in bodies:
            while len(pending) >= parallel:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    future.result()
            pending.add(pool.submit(send, client, body, tally, on_ack))
        for future in pending:
            future.result()
    except KeyboardInterrupt:
        client.stop()  # no retries or waits any more: what is in flight ends with its current try
        for future in pending:
            future.cancel()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    return tally
