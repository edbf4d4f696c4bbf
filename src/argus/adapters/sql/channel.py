"""SqlEngineChannel: the worker → engine request channel in the ``engine_requests`` table.

Port: ``argus.ports.channel`` (``WorkerChannel``, ``EngineChannel``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import orjson
import sqlalchemy as sa

from argus.adapters.sql import tables as t
from argus.domain.channel import EngineRequest, RequestState

_T = t.engine_requests
KEEP_FINISHED_S = 3600.0


class SqlEngineChannel:
    """Both ends of the channel.

    Workers ``submit``, poll ``state`` and ``expire``; the engine ``claim``s, ``answer``s and ``fail``s.
    """

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def submit(self, kind: str, payload: dict[str, Any], deadline_at: float, request_id: str | None = None) -> int:
        row = {"kind": kind, "payload": orjson.dumps(payload).decode(), "status": "pending",
               "created_at": time.time(), "deadline_at": deadline_at, "request_id": request_id}
        with self.engine.begin() as connection:
            return int(connection.execute(_T.insert().returning(_T.c.id), row).scalar_one())

    def state(self, request: int) -> RequestState:
        query = sa.select(_T.c.status, _T.c.result, _T.c.error_code, _T.c.error).where(_T.c.id == request)
        with self.engine.connect() as connection:
            row = connection.execute(query).first()
        if row is None:
            return RequestState("expired")
        result = orjson.loads(row.result) if row.result else None
        return RequestState(row.status, result, row.error_code, row.error)

    def expire(self, request: int) -> None:
        """Withdraw a request nobody answered in time (the engine skips it if not started yet)."""
        with self.engine.begin() as connection:
            connection.execute(_T.update().where(_T.c.id == request, _T.c.status == "pending")
                               .values(status="expired", finished_at=time.time()))

    def claim(self, limit: int, now: float,
              accept: Callable[[str, dict[str, Any]], bool] | None = None) -> list[EngineRequest]:
        """Mark up to ``limit`` pending, unexpired requests running and return them, oldest first.

        ``accept(kind, payload)`` leaves the requests it refuses pending for another engine (a
        sharded engine answers only about the servers it holds).
        """
        with self.engine.begin() as connection:
            connection.execute(_T.update().where(_T.c.status == "pending", _T.c.deadline_at < now)
                               .values(status="expired", finished_at=now))
            rows = connection.execute(
                sa.select(_T.c.id, _T.c.kind, _T.c.payload, _T.c.deadline_at)
                .where(_T.c.status == "pending").order_by(_T.c.id).limit(limit if accept is None else 200)
            ).all()
            claimed = []
            for row in rows:
                payload = orjson.loads(row.payload)
                if accept is not None and not accept(row.kind, payload):
                    continue
                updated = connection.execute(_T.update().where(_T.c.id == row.id, _T.c.status == "pending")
                                             .values(status="running"))
                if updated.rowcount:
                    claimed.append(EngineRequest(row.id, row.kind, payload, row.deadline_at))
                if len(claimed) >= limit:
                    break
            return claimed

    def answer(self, request: int, result: dict[str, Any]) -> None:
        self._finish(request, status="done", result=orjson.dumps(result, option=orjson.OPT_SERIALIZE_NUMPY).decode())

    def fail(self, request: int, code: str, message: str) -> None:
        self._finish(request, status="failed", error_code=code, error=message)

    def purge(self, before: float | None = None) -> int:
        """Delete finished requests older than an hour (or ``before``)."""
        cutoff = time.time() - KEEP_FINISHED_S if before is None else before
        with self.engine.begin() as connection:
            return connection.execute(_T.delete().where(_T.c.status.in_(["done", "failed", "expired"]),
                                                        _T.c.created_at < cutoff)).rowcount

    def _finish(self, request: int, **values: Any) -> None:
        with self.engine.begin() as connection:
            connection.execute(_T.update().where(_T.c.id == request).values(finished_at=time.time(), **values))
