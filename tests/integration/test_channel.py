"""The worker → engine request channel over the real database (SQLite and PostgreSQL)."""

from __future__ import annotations

import threading

import pytest

from argus.adapters.sql.channel import SqlEngineChannel
from argus.domain.channel import EngineClient, RemoteError, RequestRouter
from argus.domain.errors import EngineUnavailableError, UnknownServerError


@pytest.fixture
def channel(sql_store):
    return SqlEngineChannel(sql_store.engine)


def _serve_once(router: RequestRouter, stop: threading.Event) -> threading.Thread:
    def loop():
        while not stop.is_set():
            router.handle_pending()
            stop.wait(0.02)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    return thread


def test_a_request_is_answered_by_the_engine(channel):
    router = RequestRouter(channel, {"echo": lambda payload: {"echo": payload["x"] * 2}})
    stop = threading.Event()
    _serve_once(router, stop)
    try:
        assert EngineClient(channel).call("echo", {"x": 21}, timeout_s=5) == {"echo": 42}
    finally:
        stop.set()


def test_engine_errors_come_back_with_their_code(channel):
    def explain(payload):
        raise UnknownServerError(payload["server"])

    router = RequestRouter(channel, {"explain": explain})
    stop = threading.Event()
    _serve_once(router, stop)
    try:
        with pytest.raises(RemoteError) as caught:
            EngineClient(channel).call("explain", {"server": "nope"}, timeout_s=5)
        assert caught.value.code == "unknown_server" and "nope" in str(caught.value)
    finally:
        stop.set()


def test_no_engine_means_a_timeout_and_the_request_is_withdrawn(channel):
    with pytest.raises(EngineUnavailableError) as caught:
        EngineClient(channel, poll_s=0.01).call("echo", {}, timeout_s=0.2)
    assert caught.value.retry_after_s >= 1
    router = RequestRouter(channel, {"echo": lambda p: {}})
    assert router.handle_pending() == 0  # the expired request is never run


def test_unknown_kinds_and_crashing_handlers_fail_cleanly(channel):
    def crash(payload):
        raise RuntimeError("boom")

    router = RequestRouter(channel, {"crash": crash})
    first = channel.submit("nothing", {}, deadline_at=1e12)
    second = channel.submit("crash", {}, deadline_at=1e12)
    assert router.handle_pending() == 2
    assert channel.state(first).error_code == "unknown_request"
    assert channel.state(second).error_code == "engine_error" and "boom" not in channel.state(second).error
