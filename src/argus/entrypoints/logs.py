"""Logging set-up shared by the CLI, the engine process, the training job and gunicorn (master and workers).

Argus's own loggers (``argus.*``) log at ``ARGUS_LOG_LEVEL``; gunicorn's error log at gunicorn's level;
every other library only at ``ARGUS_LOG_LIBRARIES`` and above (WARNING by default: SHAP alone wrote
INFO dumps of numpy arrays on every explanation). ``ARGUS_LOG_FORMAT=json`` writes one JSON object
per line for log shippers; the request id is on every line written while a request is handled.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
from typing import TYPE_CHECKING, Any

from gunicorn import glogging

from argus.adapters.http.request_id import RequestIdFilter, current_request_id

if TYPE_CHECKING:
    from argus.entrypoints.settings import Settings

FORMAT = "%(asctime)s %(levelname)s [%(process)d] [%(request_id)s] %(name)s: %(message)s"

#: Loggers that are ours: they follow ARGUS_LOG_LEVEL, not ARGUS_LOG_LIBRARIES.
FIRST_PARTY = ("argus", "gunicorn.error")

#: Libraries that set their own logger's level (so the root's does not hold them) or log a lot at INFO.
NOISY = ("shap", "lightning", "lightning.pytorch", "lightning.fabric", "pytorch_lightning", "pytorch_forecasting",
         "alembic", "alembic.runtime.migration", "matplotlib", "numba", "urllib3", "PIL", "fsspec", "torch")

#: Attributes every LogRecord has; anything else on a record came through ``extra=`` and goes into the JSON.
_STANDARD = set(vars(logging.LogRecord("x", logging.INFO, "x", 0, "x", None, None))) | {"message", "asctime",
                                                                                          "request_id", "taskName"}

_state: dict[str, str] = {"role": "cli"}
_held: dict[str, int] = {}  # the levels configure_logging gave library loggers (so a later call may lower them)


def is_first_party(name: str) -> bool:
    return any(name == prefix or name.startswith(prefix + ".") for prefix in FIRST_PARTY)


class LibraryFilter(logging.Filter):
    """Let a library's record through only at ``level`` and above; Argus's own records pass untouched."""

    def __init__(self, level: int) -> None:
        super().__init__()
        self.level = level

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= self.level or is_first_party(record.name)


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time (ISO 8601 with zone), level, logger, message, role, pid,
    request_id (inside a request), exception and stack text when there is one, and ``extra=`` fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created).astimezone().isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "role": _state["role"],
            "pid": record.process,
        }
        request_id = current_request_id()
        if request_id is not None:
            entry["request_id"] = request_id
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        for key, value in vars(record).items():
            if key not in _STANDARD and key not in entry:
                entry[key] = value
        return json.dumps(entry, ensure_ascii=False, default=str)


def configure_logging(settings: Settings | str = "INFO", role: str | None = None) -> None:
    """Log to stderr as ``settings`` say (a bare level: text, libraries at WARNING); idempotent.

    ``role`` (engine, worker, web, supervisor, training, cli) goes on every JSON line; None keeps the last one.
    """
    if isinstance(settings, str):
        level, log_format, libraries = settings.upper(), "text", "WARNING"
    else:
        level, log_format, libraries = settings.log_level, settings.log_format, settings.log_libraries
    if role is not None:
        _state["role"] = role
    library_level = logging.getLevelName(libraries)
    root = logging.getLogger()
    handler = next((h for h in root.handlers if getattr(h, "_argus", False)), None)
    if handler is None:
        handler = logging.StreamHandler(sys.stderr)
        handler._argus = True  # type: ignore[attr-defined]
        handler.addFilter(RequestIdFilter())
        root.addHandler(handler)
    for old in [f for f in handler.filters if isinstance(f, LibraryFilter)]:
        handler.removeFilter(old)
    handler.addFilter(LibraryFilter(library_level))
    handler.setFormatter(JsonFormatter() if log_format == "json" else logging.Formatter(FORMAT))
    # The root holds every library that leaves its level unset; Argus's own loggers follow ARGUS_LOG_LEVEL.
    root.setLevel(library_level)
    logging.getLogger("argus").setLevel(level)
    for name in NOISY:
        _hold(logging.getLogger(name), library_level)
    if log_format == "json":
        logging.captureWarnings(True)  # a Python warning becomes a JSON line too, not raw text on stderr


def _hold(logger: logging.Logger, level: int) -> None:
    """Set a library logger to ``level`` (a level set higher by someone else stays) and route it through our
    handler: Lightning gives its logger a handler of its own when imported before logging is set up."""
    if logger.level < level or logger.level == _held.get(logger.name):
        logger.setLevel(level)
        _held[logger.name] = level
    for handler in [h for h in logger.handlers if type(h) is logging.StreamHandler]:
        logger.removeHandler(handler)
        logger.propagate = True


class GunicornLogger(glogging.Logger):
    """Gunicorn's error log through Argus's handler (same format, JSON included), gunicorn's own handlers dropped."""

    def setup(self, cfg) -> None:
        super().setup(cfg)
        from argus.entrypoints.settings import Settings

        configure_logging(Settings.from_env(), role="web")
        for log in (self.error_log, self.access_log):
            for handler in [h for h in log.handlers if getattr(h, "_gunicorn", False)]:
                log.removeHandler(handler)
            log.propagate = True
