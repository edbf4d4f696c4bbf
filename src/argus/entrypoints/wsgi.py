"""create_app() for gunicorn: ``gunicorn 'argus.entrypoints.wsgi:create_app()'``.

Each worker builds its own app after the fork (no preload): workers never load the model or
touch CUDA; they validate, write and serve what the engine published.
"""

from __future__ import annotations

import falcon

from argus.entrypoints.container import Container
from argus.entrypoints.logs import configure_logging


def create_app(container: Container | None = None) -> falcon.App:
    """Build the WSGI app from ``ARGUS_*`` settings (or the given container)."""
    container = container or Container()
    configure_logging(container.settings(), role="worker")
    return container.app()
