"""What build_app() is assembled from, grouped by concern: limits, timeouts, optional features, /metrics."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import attrs

from argus.domain.forecast import ModelInfo
from argus.domain.training import TrainingRun

if TYPE_CHECKING:
    from argus.adapters.http.otlp import OtlpMetricsResource
    from argus.adapters.http.remote_write import RemoteWriteResource
    from argus.adapters.http.web import MetricsQuery
    from argus.domain.channel import EngineClient
    from argus.domain.ingestion import AcceptedTimes
    from argus.ports.history import HistoryStore


class ModelDirectory(Protocol):
    """The trained models the /admin routes list and name.

    The directory registry is adapter-internal to the TFT adapters (it has no port), so the HTTP
    adapter states here the shape it reads instead of importing another technology's adapter.
    """

    root: Path

    def list(self) -> list[ModelInfo]: ...

    def current(self) -> str | None: ...

    def info(self, name: str) -> ModelInfo: ...


class TrainingRunLog(Protocol):
    """The persisted training runs the /admin routes report on."""

    def latest(self) -> TrainingRun | None: ...

    def all(self) -> list[TrainingRun]: ...


@attrs.frozen
class RequestLimits:
    """How much one request may carry, which record times are accepted, and the window records feed."""

    max_body_bytes: int
    max_records_per_request: int
    rolling_window_size: int
    accepted_times: AcceptedTimes | None = None  # None: the feed's defaults


@attrs.frozen
class Timeouts:
    """How long the API waits on the engine, and when the engine's heartbeat counts as stale (seconds)."""

    engine_stale_after_s: float = 30.0
    admin_s: float = 60.0
    explain_s: float = 10.0


@attrs.frozen
class AdminSources:
    """What the /admin routes read; their actions go to the engine through ``Features.engine_client``."""

    models: ModelDirectory
    training_runs: TrainingRunLog


@attrs.frozen
class Features:
    """The optional parts of the API: a part left None leaves its routes out (or, for the engine client,
    makes /explain serve only precomputed explanations)."""

    history: HistoryStore | None = None  # /historical/*
    engine_client: EngineClient | None = None  # /explain asks the engine; /admin actions
    admin: AdminSources | None = None  # /admin/* (also needs engine_client); model ages in /metrics
    metrics_query: MetricsQuery | None = None  # /servers/{name}/metrics, the page's charts
    remote_write: RemoteWriteResource | None = None  # /api/v1/write
    otlp: OtlpMetricsResource | None = None  # /v1/metrics


@attrs.frozen
class MetricsOptions:
    """GET /metrics: public or behind the API key, and how many servers get their own series."""

    public: bool = False
    max_servers: int = 500


#: build_app's defaults (frozen values, safe to share).
DEFAULT_TIMEOUTS = Timeouts()
NO_FEATURES = Features()
DEFAULT_METRICS = MetricsOptions()
