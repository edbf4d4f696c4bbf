"""Request ids on log lines: every JSON line written while a request is handled carries its id."""

from __future__ import annotations

import io
import json
import logging

import attrs
import pytest
from falcon import testing

from argus.adapters.http.request_id import current_request_id
from argus.entrypoints import logs
from argus.testing import wire_record
from tests.conftest import API_KEY


@pytest.fixture
def json_log(settings):
    """Argus's logging in JSON mode, written to a buffer; the logging tree restored afterwards."""
    root = logging.getLogger()
    saved_handlers, saved_level, saved_argus = list(root.handlers), root.level, logging.getLogger("argus").level
    saved_role = logs._state["role"]
    for handler in [h for h in root.handlers if getattr(h, "_argus", False)]:
        root.removeHandler(handler)
    logs.configure_logging(attrs.evolve(settings, log_format="json"), role="worker")
    buffer = io.StringIO()
    next(h for h in root.handlers if getattr(h, "_argus", False)).setStream(buffer)
    yield buffer
    root.handlers[:] = saved_handlers
    root.setLevel(saved_level)
    logging.getLogger("argus").setLevel(saved_argus)
    logs._state["role"] = saved_role
    logging.captureWarnings(False)


def _entries(buffer: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in buffer.getvalue().splitlines()]


def test_the_access_line_of_a_request_carries_its_incoming_request_id(client, json_log):
    result = client.simulate_post("/feed/data", json={"records": [wire_record()]}, headers={"X-Request-ID": "feed-7"})
    assert result.status_code == 200 and result.headers["X-Request-ID"] == "feed-7"
    access = [e for e in _entries(json_log) if e["logger"] == "argus.access"]
    assert len(access) == 1
    assert access[0]["request_id"] == "feed-7" and access[0]["message"].startswith("POST /feed/data 200")
    assert access[0]["role"] == "worker"


def test_a_generated_id_is_the_one_logged_and_the_one_returned(client, json_log):
    result = client.simulate_get("/health")
    (access,) = (e for e in _entries(json_log) if e["logger"] == "argus.access")
    assert access["request_id"] == result.headers["X-Request-ID"] and len(access["request_id"]) == 32


def test_an_unexpected_error_logs_its_traceback_with_the_request_id_the_client_got(container, monkeypatch, json_log):
    def explode(*_args, **_kwargs):
        logging.getLogger("argus.adapters.sql.store").warning("about to fail")
        raise RuntimeError("secret internals")

    monkeypatch.setattr(container.store(), "write_batch", explode)
    client = testing.TestClient(container.app(), headers={"X-API-Key": API_KEY})
    result = client.simulate_post("/feed/data", json={"records": [wire_record()]})
    assert result.status_code == 500
    request_id = result.headers["X-Request-ID"]
    entries = _entries(json_log)[-3:]  # before them: the database migrating as the app is built
    assert [e["logger"] for e in entries] == ["argus.adapters.sql.store", "argus.adapters.http.errors", "argus.access"]
    assert all(e["request_id"] == request_id for e in entries)
    assert "RuntimeError: secret internals" in entries[1]["exception"]


def test_lines_after_a_request_carry_no_request_id(client, json_log):
    client.simulate_get("/health", headers={"X-Request-ID": "one"})
    assert current_request_id() is None
    logging.getLogger("argus.engine").info("tick")
    assert "request_id" not in _entries(json_log)[-1]
