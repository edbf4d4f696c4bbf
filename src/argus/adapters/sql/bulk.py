"""Reading many records at once straight into numpy: the engine's restart rebuild.

The driver's own cursor (server-side on PostgreSQL) hands back plain tuples in chunks; each chunk
becomes a structured array in one ``np.fromiter`` call and is copied into preallocated columns, so
a record never becomes a Python object of ours. Rows are then grouped by server with one sort.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import NamedTuple

import numpy as np
import sqlalchemy as sa

from argus.domain.ingestion import ServerHistory
from argus.domain.metrics import METRIC_FIELDS

#: Rows per driver round trip: big enough to amortise it, small enough to keep a chunk near 5 MB.
CHUNK_ROWS = 65_536
#: One fetched row: ``SELECT server_name, ts, <status code>, <METRIC_FIELDS...>``. float32 is what
#: the windows hold; a NULL metric becomes NaN, as np.array(rows, dtype=float32) made it before.
ROW_DTYPE = np.dtype([("server_name", object), ("ts", np.int64), ("status", np.int8),
                      *((name, np.float32) for name in METRIC_FIELDS)])


class RecordColumns(NamedTuple):
    """Fetched records as columns; ``codes`` index ``names``."""

    names: list[str]
    codes: np.ndarray  # int32
    timestamps: np.ndarray  # int64 epoch seconds
    statuses: np.ndarray  # int8 codes into STATUS_VALUES
    values: np.ndarray  # (n, len(METRIC_FIELDS)) float32


class _Codes(dict):
    """Server name -> dense code, handing out the next code to a name not seen yet."""

    def __missing__(self, name: str) -> int:
        code = self[name] = len(self)
        return code


def fetch_columns(engine: sa.Engine, query: sa.Select, expected_rows: int = 0) -> RecordColumns:
    """Run ``query`` (columns as in ROW_DTYPE) and return its rows as columns, in fetch order."""
    codes = _Codes()
    size = max(expected_rows, 1)
    out = RecordColumns([], np.empty(size, np.int32), np.empty(size, np.int64), np.empty(size, np.int8),
                        np.empty((size, len(METRIC_FIELDS)), np.float32))
    n = 0
    with engine.connect() as connection:
        for rows in driver_rows(connection, query, CHUNK_ROWS):
            chunk = np.fromiter(rows, dtype=ROW_DTYPE, count=len(rows))
            end = n + len(chunk)
            if end > len(out.codes):  # more rows than counted: ingestion went on meanwhile
                out = _grown(out, max(end, 2 * len(out.codes)))
            out.codes[n:end] = np.fromiter(map(codes.__getitem__, chunk["server_name"]), np.int32, len(chunk))
            out.timestamps[n:end] = chunk["ts"]
            out.statuses[n:end] = chunk["status"]
            for j, name in enumerate(METRIC_FIELDS):
                out.values[n:end, j] = chunk[name]
            n = end
    return RecordColumns(list(codes), out.codes[:n], out.timestamps[:n], out.statuses[:n], out.values[:n])


def _grown(columns: RecordColumns, size: int) -> RecordColumns:
    def grow(a: np.ndarray) -> np.ndarray:
        bigger = np.empty((size, *a.shape[1:]), a.dtype)
        bigger[: len(a)] = a
        return bigger

    return RecordColumns(columns.names, *(grow(a) for a in columns[1:]))


def split_histories(columns: RecordColumns, order: Sequence[str],
                    limit_per_server: int | None) -> Iterator[ServerHistory]:
    """Yield the servers of ``order`` (in that order) that have records: their newest
    ``limit_per_server`` (None: all), oldest first. Names not in ``order`` are left out."""
    position = {name: i for i, name in enumerate(order)}
    rank = np.array([position.get(name, -1) for name in columns.names], dtype=np.int64)
    by_server = rank[columns.codes] if len(columns.codes) else np.empty(0, np.int64)
    sorted_rows = np.lexsort((columns.timestamps, by_server))
    starts = np.searchsorted(by_server[sorted_rows], np.arange(len(order) + 1))
    for i, name in enumerate(order):
        first, end = int(starts[i]), int(starts[i + 1])
        if limit_per_server is not None:
            first = max(first, end - limit_per_server)
        if first >= end:
            continue
        rows = sorted_rows[first:end]
        yield ServerHistory(server_name=name, timestamps=columns.timestamps[rows],
                            statuses=columns.statuses[rows], values=columns.values[rows])


def driver_rows(connection: sa.Connection, query: sa.Select, chunk_rows: int) -> Iterator[list[tuple]]:
    """Run ``query`` on the DBAPI driver's cursor and yield its rows as lists of plain tuples.

    SQLAlchemy's Row objects cost more than the rows themselves at millions of rows. On
    PostgreSQL the cursor is a named (server-side) one, so memory stays one chunk.
    """
    compiled = query.compile(dialect=connection.dialect, compile_kwargs={"render_postcompile": True})
    params = compiled.params
    if compiled.positiontup is not None:
        params = tuple(params[key] for key in compiled.positiontup)
    driver = connection.connection.driver_connection
    cursor = driver.cursor(name="argus_bulk") if connection.dialect.name == "postgresql" else driver.cursor()
    try:
        cursor.execute(str(compiled), params)
        while rows := cursor.fetchmany(chunk_rows):
            yield rows
    finally:
        cursor.close()
