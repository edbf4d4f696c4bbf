"""``argus serve``: gunicorn (web workers) and the engine process as one supervised unit."""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import attrs

from argus.adapters.sql.database import create_db_engine, migrate
from argus.domain.errors import ConfigurationError
from argus.entrypoints.keys import NO_KEY_MESSAGE, generate_api_key, resolve_api_key
from argus.entrypoints.logs import configure_logging
from argus.entrypoints.settings import Settings

log = logging.getLogger("argus.supervisor")

STOP_TIMEOUT_S = 25.0
ENGINE_RESTART_BACKOFF_S = (1, 2, 5, 10, 30)
#: An engine that ran this long crashed for a new reason: its restart waits the first step again.
ENGINE_HEALTHY_AFTER_S = 60.0
#: prometheus_client's multiprocess directory: every child counts there, /metrics sums it (docs/prometheus.md).
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def prepare_metrics_dir(env: Mapping[str, str], parent: Path | None = None) -> tuple[Path, bool]:
    """Return (directory, made here) for this run's metrics: the configured one emptied of old files, or a new one.

    A new one is in /dev/shm where there is one (values are mmapped files), named after this process,
    and is removed at exit; those of supervisors that died without cleaning up (kill -9) go now.
    """
    configured = env.get(MULTIPROC_ENV)
    if configured:
        path = Path(configured)
        path.mkdir(parents=True, exist_ok=True)
        for old in path.glob("*.db"):  # a previous run's processes: their counts must not add to this run's
            old.unlink(missing_ok=True)
        return path, False
    if parent is None:
        shm = Path("/dev/shm")
        parent = shm if shm.is_dir() and os.access(shm, os.W_OK) else Path(tempfile.gettempdir())
    _remove_orphaned_metrics_dirs(parent)
    return Path(tempfile.mkdtemp(prefix=f"{METRICS_DIR_PREFIX}{os.getpid()}-", dir=parent)), True


METRICS_DIR_PREFIX = "argus-metrics-"


def _remove_orphaned_metrics_dirs(parent: Path) -> None:
    for path in parent.glob(f"{METRICS_DIR_PREFIX}*-*"):
        pid = path.name[len(METRICS_DIR_PREFIX):].split("-", 1)[0]
        try:
            if not pid.isdigit() or path.stat().st_uid != os.getuid():
                continue
            os.kill(int(pid), 0)
        except ProcessLookupError:  # its supervisor is gone: nothing writes there any more
            shutil.rmtree(path, ignore_errors=True)
        except OSError:  # alive under another user, or vanished meanwhile
            continue


def mark_dead(metrics_dir: Path | None, pid: int) -> None:
    """Drop an exited process's live gauges from the metrics directory (its counters stay in the sums)."""
    if metrics_dir is None:
        return
    from prometheus_client import multiprocess

    try:
        multiprocess.mark_process_dead(pid, str(metrics_dir))
    except OSError as ex:
        log.warning("could not mark pid %d dead in %s: %s", pid, metrics_dir, ex)


def prepare(settings: Settings, generate_key: bool, echo: Callable[[str], None]) -> None:
    """Fail closed without a key (or create one), and migrate the database before any child starts."""
    configure_logging(settings, role="supervisor")
    if resolve_api_key(settings) is None:
        if not generate_key:
            raise ConfigurationError(NO_KEY_MESSAGE.format(path=settings.api_key_file))
        key = generate_api_key(settings)
        echo(f"Generated API key (stored in {settings.api_key_file}, shown only this once):\n\n    {key}\n")
    db = create_db_engine(settings.database_url)
    try:
        migrate(db)
    finally:
        db.dispose()


@attrs.define
class RestartBackoff:
    """Delays before restarting a crashed engine: longer after each quick crash, the first again after a healthy run."""

    steps_s: tuple[float, ...] = ENGINE_RESTART_BACKOFF_S
    healthy_after_s: float = ENGINE_HEALTHY_AFTER_S
    quick_crashes: int = 0
    started_at: float | None = None

    def started(self, now: float) -> None:
        """Note that the engine (re)started at ``now``."""
        self.started_at = now

    def delay_after_exit(self, now: float) -> float:
        """Return how long to wait before the next start, for an engine that exited at ``now``."""
        if self.started_at is not None and now - self.started_at >= self.healthy_after_s:
            self.quick_crashes = 0
        delay = self.steps_s[min(self.quick_crashes, len(self.steps_s) - 1)]
        self.quick_crashes += 1
        return delay


class Supervisor:
    """Start gunicorn and the engine, restart a crashed engine, stop both on SIGTERM/SIGINT."""

    def __init__(self, settings: Settings, *, host: str, port: int, workers: int, threads: int, engine: bool = True,
                 clock: Callable[[], float] = time.monotonic):
        self.settings = settings
        self.bind = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        self.workers, self.threads, self.run_engine = workers, threads, engine
        self._stopping = False
        self._engine: subprocess.Popen | None = None
        self._web: subprocess.Popen | None = None
        self._clock = clock
        self._backoff = RestartBackoff()
        self._engine_restart_at: float | None = None
        self._metrics_dir: Path | None = None

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", str(self.settings.torch_threads))}
        self._metrics_dir, made = prepare_metrics_dir(os.environ)
        env[MULTIPROC_ENV] = str(self._metrics_dir)
        try:
            return self._run(env)
        finally:
            if made:
                shutil.rmtree(self._metrics_dir, ignore_errors=True)

    def _run(self, env: dict[str, str]) -> int:
        if self.run_engine:
            self._engine = self._start_engine(env)
        self._web = subprocess.Popen(self._gunicorn_command(), env=env)
        log.info("serving on http://%s (workers=%d threads=%d, gunicorn pid %d, engine pid %s)",
                 self.bind, self.workers, self.threads, self._web.pid, self._engine.pid if self._engine else "-")
        try:
            return self._watch(env)
        finally:
            self._stop_children()

    def _watch(self, env: dict[str, str]) -> int:
        while not self._stopping:
            time.sleep(0.2)
            if self._web.poll() is not None:
                log.error("gunicorn exited with code %s; stopping", self._web.returncode)
                return self._web.returncode or 1
            if not self._stopping:
                self._tend_engine(env)
        return 0

    def _tend_engine(self, env: dict[str, str]) -> None:
        """Notice an engine that exited and start it again once its back-off delay has passed."""
        if self._engine is None or self._engine.poll() is None:
            return
        now = self._clock()
        if self._engine_restart_at is None:
            mark_dead(self._metrics_dir, self._engine.pid)
            delay = self._backoff.delay_after_exit(now)
            log.error("engine exited with code %s; restarting in %ss (%d quick crash%s in a row)",
                      self._engine.returncode, delay, self._backoff.quick_crashes,
                      "" if self._backoff.quick_crashes == 1 else "es")
            self._engine_restart_at = now + delay
        elif now >= self._engine_restart_at:
            self._engine_restart_at = None
            self._engine = self._start_engine(env)

    def _start_engine(self, env: dict[str, str]) -> subprocess.Popen:
        self._backoff.started(self._clock())
        return self._spawn_engine(env)

    def _spawn_engine(self, env: dict[str, str]) -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-m", "argus", "engine"], env=env)

    def _gunicorn_command(self) -> list[str]:
        return [
            sys.executable, "-m", "gunicorn",
            "--config", "python:argus.entrypoints.gunicorn_conf",
            "--bind", self.bind,
            "--workers", str(self.workers),
            "--threads", str(self.threads),
            "--no-control-socket",
            "argus.entrypoints.wsgi:create_app()",
        ]

    def _on_signal(self, signum, _frame) -> None:
        if not self._stopping:
            log.info("received %s; stopping gunicorn and the engine", signal.Signals(signum).name)
        self._stopping = True

    def _stop_children(self) -> None:
        children = [c for c in (self._web, self._engine) if c is not None and c.poll() is None]
        for child in children:
            child.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for child in children:
            try:
                child.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("pid %d did not stop in %.0fs; killing it", child.pid, STOP_TIMEOUT_S)
                child.kill()
                child.wait()
