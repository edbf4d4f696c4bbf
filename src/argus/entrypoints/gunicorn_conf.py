"""Gunicorn settings used by ``argus serve`` (bind, workers and threads come from the command line)."""

import os

# Requests are read whole by the event loop before a thread serves them: a slow client holds no thread.
worker_class = "argus.entrypoints.gunicorn_worker.ReadaheadThreadWorker"
worker_connections = 1000  # per worker, slow ones included; the kernel's accept queue holds the rest
preload_app = False  # the app (and anything heavy) is built in each worker, never in the master
timeout = 60
graceful_timeout = 20
keepalive = 5
accesslog = None  # Argus logs each request itself, with its request id
errorlog = "-"
# Gunicorn's own lines through Argus's handler: one format (ARGUS_LOG_FORMAT), the same JSON for shippers.
logger_class = "argus.entrypoints.logs.GunicornLogger"
worker_tmp_dir = "/dev/shm"
limit_request_line = 8190


def post_fork(server, worker) -> None:
    """A worker was forked: large body copies get their own mappings, freed back to the OS (entrypoints/malloc.py)."""
    from argus.entrypoints.malloc import map_large_blocks

    map_large_blocks()


def child_exit(server, worker) -> None:
    """A worker exited: drop its live gauges from the /metrics multiprocess directory (counters stay summed)."""
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if path:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid, path)
