"""Logging: Argus's INFO kept, libraries' INFO dropped by default, one JSON object per line on request."""

from __future__ import annotations

import io
import json
import logging
import sys
from datetime import datetime

import attrs
import pytest

from argus.adapters.http.request_id import request_id_var
from argus.domain.errors import ConfigurationError
from argus.entrypoints import logs
from argus.entrypoints.settings import Settings

TOUCHED = ("argus", "shap", "some.library", "lightning.pytorch", *logs.NOISY)


@pytest.fixture
def stderr(monkeypatch):
    """What the Argus handler writes (to a buffer instead of stderr); the logging tree restored afterwards."""
    buffer = io.StringIO()
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    saved = {name: (logging.getLogger(name).level, list(logging.getLogger(name).handlers),
                    logging.getLogger(name).propagate) for name in TOUCHED}
    saved_role = logs._state["role"]
    for handler in [h for h in root.handlers if getattr(h, "_argus", False)]:
        root.removeHandler(handler)
    for name in TOUCHED:  # as a fresh process has them, whatever earlier tests configured
        logging.getLogger(name).setLevel(logging.NOTSET)
    real = logs.configure_logging

    def configure(*args, **kwargs):
        real(*args, **kwargs)
        next(h for h in root.handlers if getattr(h, "_argus", False)).setStream(buffer)

    monkeypatch.setattr(logs, "configure_logging", configure)
    yield buffer
    root.handlers[:] = saved_handlers
    root.setLevel(saved_level)
    for name, (level, handlers, propagate) in saved.items():
        logger = logging.getLogger(name)
        logger.setLevel(level)
        logger.handlers[:] = handlers
        logger.propagate = propagate
    logs._state["role"] = saved_role
    logging.captureWarnings(False)


def _settings(**env: str) -> Settings:
    return Settings.from_env({"ARGUS_DATA_DIR": "/tmp/argus-test-logs", **env})


def _lines(buffer: io.StringIO) -> list[str]:
    return buffer.getvalue().splitlines()


def test_library_info_is_dropped_by_default_and_argus_info_kept(stderr):
    logs.configure_logging(_settings(), role="engine")
    logging.getLogger("shap").info("phi = %r", [1.0e-16, 4.17e1])  # what SHAP wrote on every explanation
    logging.getLogger("some.library").info("chatter")
    logging.getLogger("argus.engine").info("engine is the leader")
    logging.getLogger("some.library").warning("disk nearly full")
    lines = _lines(stderr)
    assert len(lines) == 2
    assert "argus.engine: engine is the leader" in lines[0]
    assert "some.library: disk nearly full" in lines[1]


def test_a_library_that_set_its_own_level_and_handler_is_held_too(stderr):
    # Lightning sets its logger to INFO and, when imported before logging is set up, gives it a handler of its own.
    lightning = logging.getLogger("lightning.pytorch")
    lightning.setLevel(logging.INFO)
    own = logging.StreamHandler(sys.stderr)
    lightning.addHandler(own)
    lightning.propagate = False
    logs.configure_logging(_settings(ARGUS_LOG_FORMAT="json"))
    lightning.setLevel(logging.INFO)  # and it may do so again after we set up, on a later import
    lightning.info("GPU available: False")
    lightning.warning("checkpoint directory exists")
    lines = _lines(stderr)
    assert own not in lightning.handlers
    assert [json.loads(line)["message"] for line in lines] == ["checkpoint directory exists"]


def test_libraries_can_be_let_through_at_a_chosen_level(stderr):
    logs.configure_logging(_settings(ARGUS_LOG_LIBRARIES="info"))
    logging.getLogger("shap").info("num_full_subsets = 1")
    logging.getLogger("shap").debug("too much")
    assert len(_lines(stderr)) == 1 and "shap: num_full_subsets = 1" in _lines(stderr)[0]


def test_a_later_configuration_may_lower_the_library_level_it_set(stderr):
    logs.configure_logging(_settings())
    logs.configure_logging(_settings(ARGUS_LOG_LIBRARIES="info"))
    logging.getLogger("shap").info("let through now")
    assert "shap: let through now" in stderr.getvalue()


def test_argus_log_level_still_rules_argus_loggers_only(stderr):
    logs.configure_logging(_settings(ARGUS_LOG_LEVEL="debug"))
    logging.getLogger("argus.engine").debug("tick took 3 ms")
    logging.getLogger("some.library").debug("library detail")
    logs.configure_logging(_settings(ARGUS_LOG_LEVEL="warning"))
    logging.getLogger("argus.engine").info("now hidden")
    assert [line.split(": ", 1)[1] for line in _lines(stderr)] == ["tick took 3 ms"]


def test_json_lines_parse_and_carry_time_level_logger_role_pid_request_and_exception(stderr):
    logs.configure_logging(_settings(ARGUS_LOG_FORMAT="json"), role="worker")
    log = logging.getLogger("argus.http")
    log.info("outside a request")
    token = request_id_var.set("req-42")
    try:
        try:
            raise ValueError("boom")
        except ValueError:
            log.exception("handling failed for %s", "ppdb001", extra={"server": "ppdb001"})
    finally:
        request_id_var.reset(token)
    first, second = (json.loads(line) for line in _lines(stderr))
    assert first["message"] == "outside a request" and "request_id" not in first and "exception" not in first
    assert second["request_id"] == "req-42"
    assert second["level"] == "ERROR" and second["logger"] == "argus.http" and second["role"] == "worker"
    assert second["message"] == "handling failed for ppdb001" and second["server"] == "ppdb001"
    assert second["pid"] > 0
    assert "ValueError: boom" in second["exception"] and "Traceback" in second["exception"]
    stamp = datetime.fromisoformat(second["time"])
    assert stamp.tzinfo is not None and abs(stamp.timestamp() - datetime.now().timestamp()) < 60


def test_json_messages_with_newlines_stay_one_line(stderr):
    logs.configure_logging(_settings(ARGUS_LOG_FORMAT="json"))
    logging.getLogger("argus.x").warning("line one\nline two")
    lines = _lines(stderr)
    assert len(lines) == 1 and json.loads(lines[0])["message"] == "line one\nline two"


def test_configuring_twice_keeps_one_handler_and_switches_format(stderr):
    logs.configure_logging(_settings())
    logs.configure_logging(_settings(ARGUS_LOG_FORMAT="json"), role="engine")
    logging.getLogger("argus.engine").info("once")
    lines = _lines(stderr)
    assert len(lines) == 1 and json.loads(lines[0])["role"] == "engine"


def test_python_warnings_become_json_lines_in_json_mode(stderr):
    import warnings

    logs.configure_logging(_settings(ARGUS_LOG_FORMAT="json"))
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        logging.captureWarnings(True)  # catch_warnings swapped showwarning back; json mode captures it again
        warnings.warn("deprecated knob", DeprecationWarning, stacklevel=1)
    entry = json.loads(_lines(stderr)[0])
    assert entry["logger"] == "py.warnings" and "deprecated knob" in entry["message"]


@pytest.mark.parametrize(("name", "value"), [("ARGUS_LOG_FORMAT", "yaml"), ("ARGUS_LOG_LEVEL", "loud"),
                                              ("ARGUS_LOG_LIBRARIES", "quiet")])
def test_bad_log_settings_are_refused_up_front(name, value):
    with pytest.raises(ConfigurationError, match=name):
        _settings(**{name: value})


def test_log_settings_reach_child_processes():
    settings = attrs.evolve(_settings(), log_format="json", log_libraries="ERROR")
    env = settings.child_env({})
    assert env["ARGUS_LOG_FORMAT"] == "json" and env["ARGUS_LOG_LIBRARIES"] == "ERROR"
    assert Settings.from_env(env).log_format == "json"
