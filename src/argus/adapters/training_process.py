"""TrainingSupervisor: the engine starts, watches and cancels training in a separate process."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from argus.domain.errors import ArgusError, ConflictError
from argus.domain.training import TrainingRun, new_training_id

log = logging.getLogger("argus.engine")


class InsufficientHistoryError(ArgusError):
    """The database holds too little history for a training to cut a single window (HTTP 409)."""

    code = "insufficient_data"


def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class TrainingSupervisor:
    """One training at a time, as ``argus train-job`` in its own process group.

    The child writes its progress and outcome into ``training_runs``; the supervisor (polled by the
    engine's housekeeping) notices the end, cleans up after a crash or a cancel, and hands a
    promoted model to ``on_promoted`` (the ModelManager's reload).
    """

    def __init__(self, runs, model_dir: Path, on_promoted: Callable[[str], object],
                 current_model: Callable[[], str | None], cancel_grace_s: float = 30.0,
                 command: list[str] | None = None, env: dict[str, str] | None = None,
                 history_shortfall: Callable[[str | None], str | None] | None = None):
        self.runs = runs
        self.model_dir = Path(model_dir)
        self.on_promoted = on_promoted
        self.current_model = current_model
        self.cancel_grace_s = cancel_grace_s
        self.command = command or [sys.executable, "-m", "argus", "train-job"]
        self.env = env
        self.history_shortfall = history_shortfall  # base model -> why there is too little history, or None
        self._process: subprocess.Popen | None = None
        self._active: TrainingRun | None = None
        self._cancel_at: float | None = None

    # -- requests (through the engine's request channel) ---------------------------------------

    def start(self, payload) -> dict:
        """Start a training; 409 while one runs."""
        self.poll()
        if self._active is not None:
            raise ConflictError(f"Training {self._active.training_id} is already running; cancel it or wait")
        epochs = int(payload.get("epochs", 10))
        base = self.current_model() if payload.get("incremental", True) else None
        shortfall = self.history_shortfall(base) if self.history_shortfall else None
        if shortfall:
            raise InsufficientHistoryError(shortfall)
        now = time.time()
        run = TrainingRun(training_id=new_training_id(now), status="running", started_at=now, epochs=epochs,
                          incremental=base is not None, base_model=base, stage="starting")
        if self.runs.get(run.training_id) is not None:
            raise ConflictError("A training was started less than a second ago; retry")
        self.runs.create(run)
        command = [*self.command, "--training-id", run.training_id, "--epochs", str(epochs)]
        if base:
            command += ["--from-model", base]
        self._process = subprocess.Popen(command, env=self.env, start_new_session=True)
        self.runs.update(run.training_id, pid=self._process.pid)
        self._active, self._cancel_at = run, None
        log.info("training %s started (pid %d, %d epochs, %s)", run.training_id, self._process.pid, epochs,
                 f"from {base}" if base else "from scratch")
        return {"success": True, "training_id": run.training_id, "message": "Training started", "epochs": epochs,
                "incremental": run.incremental}

    def cancel(self, payload=None) -> dict:
        """Stop the running training: SIGTERM now (it stops between batches), SIGKILL after the grace period."""
        self.poll()
        if self._active is None:
            raise ConflictError(self._nothing_to_cancel())
        pid = self._process.pid if self._process else self._active.pid
        self._signal(pid, signal.SIGTERM)
        self._cancel_at = time.monotonic()
        deadline = time.monotonic() + min(5.0, self.cancel_grace_s)
        while time.monotonic() < deadline and _alive_or_unreaped(self._process, pid):
            time.sleep(0.1)
        self.poll()
        return {"success": True, "message": "Training cancelled", "training_id": self._active_id_or_last()}

    def _nothing_to_cancel(self) -> str:
        """Say why there is nothing to cancel: no training ever, or how the latest one already ended."""
        latest = self.runs.latest()
        if latest is None or latest.status == "running":
            return "No training is running"
        reason = f" ({latest.error})" if latest.error else ""
        return f"No training is running: the latest, {latest.training_id}, already {latest.status}{reason}"

    # -- housekeeping -------------------------------------------------------------------------

    def adopt(self) -> None:
        """At engine start: resume watching a training still running, or close runs whose process is gone."""
        for run in self.runs.running():
            if _alive(run.pid):
                self._active = run
                log.info("watching training %s (pid %s) started before this engine", run.training_id, run.pid)
            else:
                self.runs.update(run.training_id, status="failed", finished_at=time.time(), stage="failed",
                                 error="the training process ended without reporting (engine restarted?)")

    def poll(self) -> None:
        """Notice a finished, crashed or overdue training and act on it."""
        if self._active is None:
            return
        pid = self._process.pid if self._process else self._active.pid
        if _alive_or_unreaped(self._process, pid):
            if self._cancel_at is not None and time.monotonic() - self._cancel_at > self.cancel_grace_s:
                log.warning("training %s ignored SIGTERM for %.0fs; killing it", self._active.training_id,
                            self.cancel_grace_s)
                self._signal(pid, signal.SIGKILL)
            return
        self._finish(pid)

    def _finish(self, pid: int | None) -> None:
        run_id = self._active.training_id
        row = self.runs.get(run_id)
        cancelled = self._cancel_at is not None
        self._active, self._process, self._cancel_at = None, None, None
        self._remove_partial(pid)
        if row is None:
            return
        if row.status == "running":
            status, error = ("cancelled", None) if cancelled else ("failed", "the training process exited unexpectedly")
            self.runs.update(run_id, status=status, finished_at=time.time(), error=error, stage=status)
            return
        if row.status == "completed" and row.promoted and row.model_name:
            try:
                self.on_promoted(row.model_name)
            except Exception as ex:  # noqa: BLE001 - the old model keeps serving; the outcome says why
                log.error("promoting %s failed: %s", row.model_name, ex)
                self.runs.update(run_id, promoted=False,
                                 promotion={**(row.promotion or {}), "promote": False,
                                            "reason": f"promotion failed at reload: {ex}"})

    def _remove_partial(self, pid: int | None) -> None:
        """A killed training may leave its temporary folder; it is never registered, remove it."""
        if pid is None:
            return
        for leftover in self.model_dir.glob(f".tmp_*_{pid}"):
            shutil.rmtree(leftover, ignore_errors=True)

    def _active_id_or_last(self) -> str | None:
        if self._active is not None:
            return self._active.training_id
        latest = self.runs.latest()
        return latest.training_id if latest else None

    @staticmethod
    def _signal(pid: int | None, sig: signal.Signals) -> None:
        if not pid:
            return
        try:
            os.killpg(pid, sig)  # its own session: the whole group (lightning may start helpers)
        except (ProcessLookupError, PermissionError):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)


def _alive_or_unreaped(process: subprocess.Popen | None, pid: int | None) -> bool:
    if process is not None:
        return process.poll() is None
    return _alive(pid)
