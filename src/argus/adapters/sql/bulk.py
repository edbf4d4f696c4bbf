"""Reading many records at once straight into numpy: the engine's restart rebuild.

The driver's own cursor (server-side on PostgreSQL) hands back plain tuples in chunks; each chunk
becomes a structured array in one ``np.fromiter`` call and its rows are filed by server at once,
so a record never becomes a Python object of ours and the rows are held once: a server's pieces
are freed as soon as its history is handed over.

Adapter-internal (no port): the fast path behind ``SqlMetricsStore.server_histories`` (``EngineFeed``).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Sequence

import numpy as np
import sqlalchemy as sa

from argus.domain.ingestion import ServerHistory
from argus.domain.metrics import METRIC_FIELDS

#: Rows per driver round trip. The driver's tuples of a chunk take ~20 MB at this size; smaller
#: chunks cut a server's rows into more pieces (1,000 servers: 2.88 M records in 10.5-11 s at
#: 32 k, 11.3 s at 16 k; peak RSS 310, 322 and 339 MB at 32 k, 16 k and 64 k).
CHUNK_ROWS = 32_768
#: One fetched row: ``SELECT server_name, ts, <status code>, <METRIC_FIELDS...>``. float32 is what
#: the windows hold; a NULL metric becomes NaN, as np.array(rows, dtype=float32) made it before.
ROW_DTYPE = np.dtype([("server_name", object), ("ts", np.int64), ("status", np.int8),
                      *((name, np.float32) for name in METRIC_FIELDS)])
#: A row once filed under its server (the name dropped).
_FILED_DTYPE = np.dtype([(name, ROW_DTYPE[name]) for name in ROW_DTYPE.names[1:]])


def read_histories(engine: sa.Engine, query: sa.Select, order: Sequence[str], limit_per_server: int | None,
                   older: Callable[[str, int], sa.Select] | None = None) -> Iterator[ServerHistory]:
    """Run ``query`` (columns as in ROW_DTYPE); yield the servers of ``order`` (in that order) that
    have rows: their newest ``limit_per_server`` (None: all), oldest first. Other names are dropped.

    ``older(name, count)``, when given, is the query for a server's ``count`` newest rows that
    ``query`` left out; it is run for each server that came back with fewer than the limit.
    """
    files = ServerFiles()
    with engine.connect() as connection:
        for rows in driver_rows(connection, query, CHUNK_ROWS):
            files.add(np.fromiter(rows, dtype=ROW_DTYPE, count=len(rows)))
        for name in order:
            rows = files.pop(name)
            have = 0 if rows is None else len(rows)
            if older is not None and limit_per_server is not None and have < limit_per_server:
                for extra in driver_rows(connection, older(name, limit_per_server - have), CHUNK_ROWS):
                    files.add(np.fromiter(extra, dtype=ROW_DTYPE, count=len(extra)))
                found = files.pop(name)
                if found is not None:
                    rows = found if rows is None else _joined([found, rows])
            if rows is None:
                continue
            if np.any(rows["ts"][1:] < rows["ts"][:-1]):  # fetched in rowid order: mostly sorted already
                rows = rows[np.argsort(rows["ts"], kind="stable")]
            if limit_per_server is not None:
                rows = rows[len(rows) - min(limit_per_server, len(rows)):]
            if len(rows):
                yield ServerHistory(server_name=name, timestamps=rows["ts"].copy(), statuses=rows["status"].copy(),
                                    values=np.stack([rows[field] for field in METRIC_FIELDS], axis=1))


class ServerFiles:
    """Fetched rows filed by server as each chunk arrives (copies, so a chunk is freed at once)."""

    def __init__(self) -> None:
        self._pieces: list[list[np.ndarray]] = []
        self._code = _Codes(self._pieces)

    def add(self, chunk: np.ndarray) -> None:
        """File a chunk of ROW_DTYPE rows."""
        codes = np.fromiter(map(self._code.__getitem__, chunk["server_name"]), dtype=np.int32, count=len(chunk))
        filed = np.empty(len(chunk), _FILED_DTYPE)
        for field in _FILED_DTYPE.names:
            filed[field] = chunk[field]
        by_server = np.argsort(codes, kind="stable")
        filed, codes = filed[by_server], codes[by_server]
        edges = [0, *(np.flatnonzero(codes[1:] != codes[:-1]) + 1).tolist(), len(codes)]
        for start, end in itertools.pairwise(edges):
            self._pieces[codes[start]].append(filed[start:end].copy())

    def pop(self, name: str) -> np.ndarray | None:
        """Hand over (and forget) every row filed under ``name``; None when there are none."""
        code = self._code.get(name)
        if code is None or not self._pieces[code]:
            return None
        pieces, self._pieces[code] = self._pieces[code], []
        return _joined(pieces)


class _Codes(dict):
    """Server name -> index into ``pieces``, opening an empty file for a name not seen yet."""

    def __init__(self, pieces: list[list[np.ndarray]]) -> None:
        super().__init__()
        self.pieces = pieces

    def __missing__(self, name: str) -> int:
        code = self[name] = len(self.pieces)
        self.pieces.append([])
        return code


def _joined(pieces: list[np.ndarray]) -> np.ndarray:
    """Concatenate filed rows (np.concatenate re-derives the structured dtype per piece: slow)."""
    if len(pieces) == 1:
        return pieces[0]
    rows = np.empty(sum(map(len, pieces)), _FILED_DTYPE)
    at = 0
    for piece in pieces:
        rows[at:at + len(piece)] = piece
        at += len(piece)
    return rows


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
