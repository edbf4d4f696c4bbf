"""Reading many records at once straight into numpy: the engine's restart rebuild.

The database packs each record into one binary string (its timestamp, status code, which fields
are NULL and every field as a big-endian float64), so a row crosses the driver as two values, its
server's name and that string, instead of seventeen: the sqlite3 module's per-value work (C calls
and a Python object for each) was over half the rebuild. A chunk's strings are joined and read
by numpy in one ``np.frombuffer``, its rows filed by server at once, and a server's pieces are
freed as soon as its history is handed over.

Adapter-internal (no port): the fast path behind ``SqlMetricsStore.server_histories`` (``EngineFeed``).
"""

from __future__ import annotations

import contextlib
import functools
import gc
import itertools
import operator
import struct
from collections.abc import Callable, Iterator, Sequence

import numpy as np
import sqlalchemy as sa

from argus.domain.ingestion import ServerHistory
from argus.domain.metrics import METRIC_FIELDS

#: Rows per driver round trip (~4 MB of packed records). Smaller chunks cut a server's rows into
#: more pieces; larger ones hold more of the driver's tuples at once.
CHUNK_ROWS = 32_768
#: One packed record, as ``packed_rows`` has the database write it: big-endian, no padding
#: (PostgreSQL's ``int8send``/``float8send`` are network byte order; SQLite packs to match).
PACKED_DTYPE = np.dtype([("ts", ">i8"), ("status", ">i2"), ("missing", ">i4"),
                         ("values", ">f8", (len(METRIC_FIELDS),))])
#: SQLite has no function that writes a float's bytes: this one, registered on the connection,
#: is ``struct`` packing (C code; a Python function per row would cost more than it saves).
_SQLITE_PACK = "argus_pack_record"
_PACK = struct.Struct(">qhi" + "d" * len(METRIC_FIELDS))
_first, _second = operator.itemgetter(0), operator.itemgetter(1)


def read_histories(engine: sa.Engine, query: sa.Select, order: Sequence[str], limit_per_server: int | None,
                   older: Callable[[str, int], sa.Select] | None = None) -> Iterator[ServerHistory]:
    """Run ``query`` (``SELECT server_name, ts, <status code>, <METRIC_FIELDS...>``); yield the servers
    of ``order`` (in that order) that have rows: their newest ``limit_per_server`` (None: all), oldest
    first. Other names are dropped.

    ``older(name, count)``, when given, is the query for a server's ``count`` newest rows that
    ``query`` left out; it is run for each server that came back with fewer than the limit.
    """
    files = ServerFiles()
    with engine.connect() as connection:
        with _collector_paused():
            for chunk in packed_rows(connection, query):
                files.add(*chunk)
        for name in order:
            rows = files.pop(name)
            have = 0 if rows is None else len(rows[0])
            if older is not None and limit_per_server is not None and have < limit_per_server:
                for chunk in packed_rows(connection, older(name, limit_per_server - have)):
                    files.add(*chunk)
                found = files.pop(name)
                if found is not None:
                    rows = found if rows is None else _joined([found, rows])
            if rows is not None:
                yield _history(name, *rows, limit_per_server)


def _history(name: str, ts: np.ndarray, statuses: np.ndarray, values: np.ndarray,
             limit: int | None) -> ServerHistory:
    """A server's rows oldest first (they come in rowid order: mostly sorted already), newest ``limit``."""
    if np.any(ts[1:] < ts[:-1]):
        by_time = np.argsort(ts, kind="stable")
        ts, statuses, values = ts[by_time], statuses[by_time], values[by_time]
    start = 0 if limit is None else max(len(ts) - limit, 0)
    return ServerHistory(server_name=name, timestamps=ts[start:], statuses=statuses[start:], values=values[start:])


def packed_rows(connection: sa.Connection,
                query: sa.Select) -> Iterator[tuple[list[str], np.ndarray, np.ndarray, np.ndarray]]:
    """Run ``query`` (columns as in ``read_histories``) with each record packed by the database; yield
    chunks of (server names, int64 timestamps, int8 status codes, float32 values with NaN for NULL)."""
    if connection.dialect.name == "sqlite":
        connection.connection.driver_connection.create_function(
            _SQLITE_PACK, 3 + len(METRIC_FIELDS), _PACK.pack, deterministic=True)
    for rows in driver_rows(connection, _packing(query, connection.dialect.name), CHUNK_ROWS):
        records = np.frombuffer(b"".join(map(_second, rows)), dtype=PACKED_DTYPE)
        yield (list(map(_first, rows)), *unpacked(records))


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause Python's cycle collector: the driver's millions of row tuples (no cycles among them)
    would otherwise set off full collections walking the whole heap, ~20 % of the scan's time."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def unpacked(records: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Native arrays from PACKED_DTYPE records; float32 is what the windows hold (as before, a value
    past float32's range becomes an infinity, which the windows clip)."""
    with np.errstate(over="ignore"):
        values = records["values"].astype(np.float32)
    missing = records["missing"].astype(np.int64)
    if missing.any():
        values[(missing[:, None] >> np.arange(len(METRIC_FIELDS))) & 1 == 1] = np.nan
    return records["ts"].astype(np.int64), records["status"].astype(np.int8), values


def _packing(query: sa.Select, dialect: str) -> sa.Select:
    """``query`` selecting (server_name, packed record): the record's columns become one PACKED_DTYPE
    string. A NULL field is packed as 0 with its bit set in ``missing`` (SQLite stores no NaN)."""
    name, ts, status, *fields = query.selected_columns
    missing = functools.reduce(sa.ColumnElement.__add__, (
        sa.case((field.is_(None), 1 << i), else_=0) for i, field in enumerate(fields)))
    if dialect == "sqlite":
        packed = getattr(sa.func, _SQLITE_PACK)(ts, status, missing, *(sa.func.coalesce(f, 0.0) for f in fields))
    else:  # PostgreSQL: *send() writes a value's binary wire form, || joins bytea
        parts = [sa.func.int8send(sa.cast(ts, sa.BigInteger)), sa.func.int2send(sa.cast(status, sa.SmallInteger)),
                 sa.func.int4send(sa.cast(missing, sa.Integer)),
                 *(sa.func.float8send(sa.func.coalesce(sa.cast(f, sa.Double), 0.0)) for f in fields)]
        packed = functools.reduce(lambda left, right: left.op("||")(right), parts)
    return query.with_only_columns(name, packed)


class ServerFiles:
    """Fetched rows filed by server as each chunk arrives (copies, so a chunk is freed at once)."""

    def __init__(self) -> None:
        self._pieces: list[list[tuple[np.ndarray, np.ndarray, np.ndarray]]] = []
        self._code = _Codes(self._pieces)

    def add(self, names: Sequence[str], ts: np.ndarray, statuses: np.ndarray, values: np.ndarray) -> None:
        """File a chunk of rows (aligned arrays, one server name per row)."""
        codes = np.fromiter(map(self._code.__getitem__, names), dtype=np.int32, count=len(names))
        by_server = np.argsort(codes, kind="stable")
        codes, ts, statuses, values = codes[by_server], ts[by_server], statuses[by_server], values[by_server]
        edges = [0, *(np.flatnonzero(codes[1:] != codes[:-1]) + 1).tolist(), len(codes)]
        for start, end in itertools.pairwise(edges):
            self._pieces[codes[start]].append((ts[start:end].copy(), statuses[start:end].copy(),
                                               values[start:end].copy()))

    def pop(self, name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """Hand over (and forget) every row filed under ``name``; None when there are none."""
        code = self._code.get(name)
        if code is None or not self._pieces[code]:
            return None
        pieces, self._pieces[code] = self._pieces[code], []
        return _joined(pieces)


class _Codes(dict):
    """Server name -> index into ``pieces``, opening an empty file for a name not seen yet."""

    def __init__(self, pieces: list) -> None:
        super().__init__()
        self.pieces = pieces

    def __missing__(self, name: str) -> int:
        code = self[name] = len(self.pieces)
        self.pieces.append([])
        return code


def _joined(pieces: Sequence[tuple[np.ndarray, ...]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Concatenate filed pieces, array by array."""
    ts, statuses, values = (np.concatenate(arrays) for arrays in zip(*pieces, strict=True))
    return ts, statuses, values


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
