"""The request channel port: how web workers ask the engine (the only process holding the model) for work.

The database is the only medium the processes share, so the one adapter is ``SqlEngineChannel``;
the worker side (``EngineClient``) and the engine side (``RequestRouter``) live in ``domain/channel.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

from argus.domain.channel import EngineRequest, RequestState

#: ``accept(kind, payload)``: whether this engine claims a pending request (a sharded engine claims
#: only the requests about the servers it holds).
Accept = Callable[[str, Mapping[str, Any]], bool]


class WorkerChannel(Protocol):
    """The worker's end: submit a request, poll its state, withdraw it when nobody answered in time."""

    def submit(self, kind: str, payload: dict[str, Any], deadline_at: float, request_id: str | None = None) -> int:
        """Store a pending request; return its id."""
        ...

    def state(self, request: int) -> RequestState:
        """Return the request's state (``expired`` when it is gone)."""
        ...

    def expire(self, request: int) -> None:
        """Withdraw a request nobody answered before its deadline (the engine skips it if not started)."""
        ...


class EngineChannel(Protocol):
    """The engine's end: claim pending requests, then answer or fail each."""

    def claim(self, limit: int, now: float, accept: Accept | None = None) -> list[EngineRequest]:
        """Mark up to ``limit`` pending, unexpired requests running and return them, oldest first."""
        ...

    def answer(self, request: int, result: dict[str, Any]) -> None:
        """Store the request's result (JSON-ready)."""
        ...

    def fail(self, request: int, code: str, message: str) -> None:
        """Store the request's error, with its machine code."""
        ...
