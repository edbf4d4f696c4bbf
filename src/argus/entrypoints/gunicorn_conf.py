"""Gunicorn settings used by ``argus serve`` (bind, workers and threads come from the command line)."""

from argus.entrypoints.logs import FORMAT  # noqa: F401  (keeps one log format in mind)

preload_app = False  # the app (and anything heavy) is built in each worker, never in the master
timeout = 60
graceful_timeout = 20
keepalive = 5
accesslog = None  # Argus logs each request itself, with its request id
errorlog = "-"
worker_tmp_dir = "/dev/shm"
limit_request_line = 8190
