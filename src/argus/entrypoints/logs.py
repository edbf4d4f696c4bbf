"""Logging set-up shared by the CLI, the engine process and gunicorn workers."""

from __future__ import annotations

import logging
import sys

from argus.adapters.http.app import RequestIdFilter

FORMAT = "%(asctime)s %(levelname)s [%(process)d] [%(request_id)s] %(name)s: %(message)s"


def configure_logging(level: str = "INFO") -> None:
    """Log to stderr with the request id on every line; idempotent."""
    root = logging.getLogger()
    if any(getattr(h, "_argus", False) for h in root.handlers):
        root.setLevel(level)
        return
    handler = logging.StreamHandler(sys.stderr)
    handler._argus = True  # type: ignore[attr-defined]
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(logging.Formatter(FORMAT))
    root.addHandler(handler)
    root.setLevel(level)
    for noisy in ("lightning.pytorch", "lightning.fabric", "pytorch_lightning", "alembic.runtime.migration"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
