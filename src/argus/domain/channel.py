"""The worker → engine request channel, over storage (the database is the only shared medium).

A web worker submits a request (kind + JSON payload + deadline) and polls for the answer; the
engine, the only process holding the model, claims pending requests between its other work, runs
the handler registered for the kind and stores the result or the error. A request nobody answers
before its deadline fails with EngineUnavailableError (HTTP 503 with Retry-After).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection, Mapping
from typing import TYPE_CHECKING, Any

import attrs

from argus.domain.errors import ArgusError, EngineUnavailableError

if TYPE_CHECKING:  # the domain names ports only for the type checker (see tests/test_architecture.py)
    from argus.ports.channel import Accept, EngineChannel, WorkerChannel

log = logging.getLogger(__name__)


@attrs.frozen
class EngineRequest:
    """One claimed request, as the engine sees it."""

    id: int
    kind: str
    payload: Mapping[str, Any]
    deadline_at: float


@attrs.frozen
class RequestState:
    """A request's state, as the worker sees it."""

    status: str  # pending | running | done | failed | expired
    result: Mapping[str, Any] | None = None
    error_code: str | None = None
    error: str | None = None


class RemoteError(ArgusError):
    """An error the engine raised while handling a request, re-raised in the worker with its code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class EngineClient:
    """Worker side: submit a request and wait (polling) for the engine's answer."""

    def __init__(self, channel: WorkerChannel, poll_s: float = 0.05, clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.channel = channel
        self.poll_s = poll_s
        self.clock = clock
        self.sleep = sleep

    def call(self, kind: str, payload: Mapping[str, Any], timeout_s: float,
             request_id: str | None = None) -> dict[str, Any]:
        """Return the engine's result; raise the engine's error, or EngineUnavailableError after ``timeout_s``."""
        deadline = self.clock() + timeout_s
        request = self.channel.submit(kind, dict(payload), deadline, request_id)
        while True:
            state = self.channel.state(request)
            if state.status == "done":
                return dict(state.result or {})
            if state.status == "failed":
                raise RemoteError(state.error_code or "engine_error", state.error or "The engine failed")
            if self.clock() >= deadline:
                self.channel.expire(request)
                busy = "busy" if state.status == "running" else "busy or not running"
                raise EngineUnavailableError(f"The engine did not answer within {timeout_s:g} s ({busy}); retry later",
                                             retry_after_s=max(1, int(timeout_s)))
            self.sleep(self.poll_s)


Handler = Callable[[Mapping[str, Any]], dict[str, Any]]


class RequestRouter:
    """Engine side: claim pending requests and run the handler registered for each kind."""

    def __init__(self, channel: EngineChannel, handlers: Mapping[str, Handler] | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.channel = channel
        self.handlers: dict[str, Handler] = dict(handlers or {})
        self.clock = clock

    def register(self, kind: str, handler: Handler) -> None:
        self.handlers[kind] = handler

    def handle_pending(self, limit: int = 20, budget_s: float = 1.0, kinds: Collection[str] | None = None) -> int:
        """Answer pending requests, one claim at a time, until ``limit`` or ``budget_s`` is used up.

        The budget keeps a flood of slow requests (explanations take a second or two) from
        starving the engine's other work: ingestion, ticks and the heartbeat workers rely on.
        ``kinds`` answers only requests of those kinds and leaves the others pending (inside a
        tick the engine answers explanations, never a model reload).
        """
        handled = 0
        started = self.clock()
        accept = None if kinds is None else _of_kinds(frozenset(kinds))
        while handled < limit and self.clock() - started < budget_s:
            claimed = (self.channel.claim(1, self.clock()) if accept is None
                       else self.channel.claim(1, self.clock(), accept=accept))
            if not claimed:
                break
            self._handle(claimed[0])
            handled += 1
        return handled

    def _handle(self, request: EngineRequest) -> None:
        handler = self.handlers.get(request.kind)
        if handler is None:
            self.channel.fail(request.id, "unknown_request", f"The engine cannot handle {request.kind!r} requests")
            return
        try:
            result = handler(request.payload)
        except ArgusError as ex:
            self.channel.fail(request.id, ex.code, str(ex))
        except Exception as ex:  # noqa: BLE001 - answered as a failure, logged with its traceback
            log.exception("engine request %s (%s) failed", request.id, request.kind)
            self.channel.fail(request.id, "engine_error", f"{type(ex).__name__} while handling {request.kind}")
        else:
            self.channel.answer(request.id, result)


def _of_kinds(kinds: frozenset[str]) -> Accept:
    def accept(kind: str, payload: Mapping[str, Any]) -> bool:
        return kind in kinds

    return accept
