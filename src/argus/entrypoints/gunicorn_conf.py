"""Gunicorn settings used by ``argus serve`` (bind, workers and threads come from the command line)."""

import os

from argus.entrypoints.logs import FORMAT  # noqa: F401  (keeps one log format in mind)

# Requests are read whole by the event loop before a thread serves them: a slow client holds no thread.
worker_class = "argus.entrypoints.gunicorn_worker.ReadaheadThreadWorker"
worker_connections = 1000  # per worker, slow ones included; the kernel's accept queue holds the rest
preload_app = False  # the app (and anything heavy) is built in each worker, never in the master
timeout = 60
graceful_timeout = 20
keepalive = 5
accesslog = None  # Argus logs each request itself, with its request id
errorlog = "-"
worker_tmp_dir = "/dev/shm"
limit_request_line = 8190


def child_exit(server, worker) -> None:
    """A worker exited: drop its live gauges from the /metrics multiprocess directory (counters stay summed)."""
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if path:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid, path)
