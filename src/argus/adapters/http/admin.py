"""The six /admin/* resources. Reads come from the model directory and the database; actions go to
the engine (the only process holding the model and the training process) over the request channel."""

from __future__ import annotations

from pathlib import Path

import falcon

from argus.adapters.http.resources import read_json
from argus.adapters.http.schemas import RequestValidationError
from argus.domain.errors import ArgusError, BadRequestError, NotFoundError
from argus.domain.forecast import ModelLoadError
from argus.domain.metrics import wire_time
from argus.domain.training import training_stats

DEFAULT_TIMEOUT_S = 60.0  # ARGUS_ADMIN_TIMEOUT_S: loading and checking a model takes seconds, not minutes


def resolve_model_name(model_dir: Path, given: str) -> str:
    """Accept a model name or a path inside the model directory; refuse anything else.

    ``tft_x``, ``models/tft_x`` (relative to the service) or an absolute path inside the model
    directory all name ``tft_x``. Traversal (``..``), other directories and symlinks are refused.
    """
    if not isinstance(given, str) or not given.strip() or "\x00" in given:
        raise BadRequestError("model_path must be a model name or a path inside the model directory")
    root = model_dir.resolve()
    candidate = Path(given.strip())
    if ".." in candidate.parts:
        raise BadRequestError("model_path must not contain '..'")
    if candidate.is_absolute():
        path = candidate
    elif len(candidate.parts) > 1 and candidate.parts[0] == model_dir.name:
        path = root.joinpath(*candidate.parts[1:])
    else:
        path = root / candidate
    if path.parent != root:
        raise BadRequestError(f"model_path must name a folder directly inside the model directory ({model_dir.name}/)")
    if path.is_symlink():
        raise BadRequestError("model_path must not be a symbolic link")
    if not path.is_dir():
        raise NotFoundError(f"Model not found: {path.name}")
    return path.name


class _Admin:
    rate_limit_group = "admin"

    def __init__(self, registry, runs, client, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        self.registry, self.runs, self.client, self.timeout_s = registry, runs, client, timeout_s

    def _call(self, req: falcon.Request, kind: str, payload: dict) -> dict:
        return self.client.call(kind, payload, self.timeout_s, getattr(req.context, "request_id", None))


class ModelsResource(_Admin):
    """GET /admin/models."""

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        current = self.registry.current()
        models = []
        for info in self.registry.list():
            manifest = info.manifest
            training = manifest.get("training", {}) if isinstance(manifest.get("training"), dict) else {}
            data = training.get("data", {}) if isinstance(training.get("data"), dict) else {}
            models.append({
                "name": info.name,
                "path": f"{self.registry.root.name}/{info.name}",
                "created": str(info.created_at)[:19],
                "size_mb": round(float(manifest.get("size_bytes", 0)) / 1_000_000, 3),
                "is_current": info.name == current,
                "parameters": manifest.get("parameters"),
                "parent": training.get("parent"),
                "training_data": {"first_record": data.get("first_record"), "last_record": data.get("last_record"),
                                  "servers": data.get("servers"), "records": data.get("records")},
                "validation": manifest.get("validation"),
            })
        resp.media = {"models": models, "current_model": current}


class ReloadResource(_Admin):
    """POST /admin/reload-model (optional {"model_path": ...}; none: the newest model)."""

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        body = {}
        if req.content_length:
            body = read_json(req, 64 * 1024)
            if not isinstance(body, dict):
                raise RequestValidationError([{"loc": ["body"], "msg": "value is not a valid dict",
                                               "type": "type_error.dict"}])
        given = body.get("model_path")
        name = None if given is None else resolve_model_name(self.registry.root, given)
        if name is not None:
            try:
                self.registry.info(name)
            except ModelLoadError as ex:
                raise ReloadRefusedError(str(ex)) from None
        resp.media = self._call(req, "reload_model", {"name": name})


class ReloadRefusedError(ArgusError):
    code = "model_invalid"


class TriggerTrainingResource(_Admin):
    """POST /admin/trigger-training?epochs=10&incremental=true."""

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        errors = []
        epochs = req.get_param("epochs", default="10")
        if not epochs.isdigit() or not 1 <= int(epochs) <= 1000:
            errors.append({"loc": ["query", "epochs"], "msg": "ensure this value is an integer from 1 to 1000",
                           "type": "value_error.number"})
        incremental = (req.get_param("incremental", default="true") or "").lower()
        if incremental not in ("true", "false", "1", "0", "yes", "no"):
            errors.append({"loc": ["query", "incremental"], "msg": "value could not be parsed to a boolean",
                           "type": "type_error.bool"})
        if errors:
            raise RequestValidationError(errors)
        payload = {"epochs": int(epochs), "incremental": incremental in ("true", "1", "yes")}
        resp.media = self._call(req, "start_training", payload)


class TrainingStatusResource(_Admin):
    """GET /admin/training-status: progress written by the training process itself."""

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        run = self.runs.latest()
        if run is None:
            resp.media = {"training_active": False, "training_id": None, "progress": None, "last_run": None}
            return
        body = {
            "training_active": run.status == "running",
            "training_id": run.training_id,
            "progress": {"epoch": run.epoch, "total_epochs": run.epochs, "percent": round(run.percent),
                         "eta_minutes": None if run.eta_minutes is None else round(run.eta_minutes, 1),
                         "stage": run.stage},
        }
        if run.status != "running":
            body["last_run"] = {
                "training_id": run.training_id, "status": run.status, "error": run.error,
                "started_at": wire_time(run.started_at), "finished_at": wire_time(run.finished_at),
                "model": run.model_name, "promoted": run.promoted, "promotion": run.promotion,
                "incremental": run.incremental, "base_model": run.base_model,
            }
        resp.media = body


class TrainingStatsResource(_Admin):
    """GET /admin/training-stats: from the persisted training runs."""

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = training_stats(self.runs.all())


class CancelTrainingResource(_Admin):
    """POST /admin/cancel-training: really stops the training process; 409 when none runs."""

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = self._call(req, "cancel_training", {})


def add_routes(app: falcon.App, registry, runs, client, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
    for path, resource in (
        ("/admin/models", ModelsResource), ("/admin/reload-model", ReloadResource),
        ("/admin/trigger-training", TriggerTrainingResource), ("/admin/training-status", TrainingStatusResource),
        ("/admin/training-stats", TrainingStatsResource), ("/admin/cancel-training", CancelTrainingResource),
    ):
        app.add_route(path, resource(registry, runs, client, timeout_s))
