"""GET /metrics: Argus's health and its forecasts in Prometheus's text format.

Web workers stay stateless: the forecasts and the engine's state come from what the engine
published in the database (the /predictions/current body and the status), read at most once per
``cache_s`` by each worker; the process counters (requests, ingestion, ticks) come from
``argus.adapters.telemetry``. Series and labels are documented in docs/prometheus.md.
"""

from __future__ import annotations

import gzip
import logging
import math
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

import falcon
import orjson
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import GaugeMetricFamily

from argus.adapters import telemetry
from argus.adapters.http.resources import EngineView, PublishedBodies, accepts_gzip
from argus.domain.forecast import TARGETS

log = logging.getLogger("argus.http")

#: ``argus_alert_level`` values (documented; Prometheus rules compare numbers).
LEVEL_VALUES = {"healthy": 0, "degraded": 1, "warning": 2, "critical": 3}
#: ``argus_forecast`` horizons: label -> seconds after the server's last observation.
HORIZONS = (("30m", 1800), ("2h", 7200), ("8h", 28800))
#: Forecast targets with a median (p50); cpu and mem also carry their p10/p90 band. (``quantile`` is reserved
#: for summaries: promtool refuses it on a gauge, hence ``percentile``.)
BAND_TARGETS = ("cpu_pct", "mem_pct")
MEDIAN_TARGETS = TARGETS
DEFAULT_MAX_SERVERS = 500
DEFAULT_CACHE_S = 5.0


class TelemetryMiddleware:
    """Time every request by its route template (never the raw path: bounded labels); count refused ingests."""

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        req.context.telemetry_started = time.perf_counter()

    def process_response(self, req: falcon.Request, resp: falcon.Response, resource, req_succeeded: bool) -> None:
        started = getattr(req.context, "telemetry_started", None)
        if started is None:
            return
        route = (req.uri_template or "unmatched") if resource is not None else "unmatched"
        try:
            telemetry.observe_request(route, req.method, int(resp.status[:3]), time.perf_counter() - started)
        except Exception:  # noqa: BLE001 - counting must never cost a response
            log.exception("could not record request metrics")


class MetricsResource:
    """GET /metrics: the text format (OpenMetrics when asked for), gzipped when the scraper accepts it."""

    def __init__(self, collector, public: bool = False) -> None:
        self._collector = collector
        self.auth_required = not public

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        encoder, content_type = choose_encoder(req.get_header("Accept") or "")
        body = encoder(self._collector)
        resp.content_type = content_type
        if accepts_gzip(req) and len(body) > 1400:
            body = gzip.compress(body, compresslevel=5, mtime=0)
            resp.set_header("Content-Encoding", "gzip")
        resp.set_header("Vary", "Accept-Encoding")
        resp.data = body


def _epoch(iso: str | None) -> float | None:
    if not iso:
        return None
    try:
        moment = datetime.fromisoformat(iso)
    except ValueError:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def created_from(registry) -> Callable[[str], float | None] | None:
    """A model's training time from the model registry's manifest (``created_at``), or None without one."""
    if registry is None:
        return None
    return lambda name: _epoch(registry.info(name).created_at)


def _finite(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


class PublishedCollector:
    """The engine's state and its forecasts, read from the published bodies (cached ``cache_s`` seconds).

    At most ``max_servers`` servers get per-server series, the highest risk first, so a big fleet
    cannot blow up Prometheus; ``argus_metrics_servers_omitted`` says how many were left out.
    """

    def __init__(self, published, engine: EngineView, model_created: Callable[[str], float | None] | None = None,
                 max_servers: int = DEFAULT_MAX_SERVERS, cache_s: float = DEFAULT_CACHE_S,
                 clock: Callable[[], float] = time.time) -> None:
        self._bodies = PublishedBodies(published)
        self._engine = engine
        self._model_created = model_created
        self._max_servers = max_servers
        self._cache_s = cache_s
        self._clock = clock
        self._lock = threading.Lock()
        self._read_at = -math.inf
        self._status: tuple[dict | None, bool, float | None] = (None, False, None)
        self._predictions: tuple[float, list] | None = None  # (published_at, families)
        self._created: dict[str, float | None] = {}

    def collect(self):
        now = self._clock()
        with self._lock:
            if now - self._read_at >= self._cache_s:
                self._refresh()
                self._read_at = now
            status, alive, age = self._status
            predictions = self._predictions
            since_read = now - self._read_at
        yield from self._engine_families(status, alive, None if age is None else age + since_read, now)
        if predictions is not None:
            yield _gauge("argus_predictions_age_seconds", "Seconds since the engine published its latest forecasts.",
                         max(0.0, now - predictions[0]))
            yield from predictions[1]

    def _refresh(self) -> None:
        self._status = self._engine.read()
        found = self._bodies.get("predictions")
        if found is None:
            self._predictions = None
        elif self._predictions is None or self._predictions[0] != found[1]:
            self._predictions = (found[1], self._forecast_families(orjson.loads(found[0])))

    def _engine_families(self, status: dict | None, alive: bool, age: float | None, now: float):
        yield _gauge("argus_engine_up", "1 while the engine's heartbeat is fresh and its process runs.", int(alive))
        if age is not None:
            yield _gauge("argus_engine_heartbeat_age_seconds", "Seconds since the engine last published its status.",
                         age)
        status = status or {}
        for key, help_text in (("servers_tracked", "Servers the engine holds a rolling window for."),
                               ("servers_ready", "Servers with enough history to be forecast.")):
            if _finite(status.get(key)):
                yield _gauge(f"argus_{key}", help_text, status[key])
        loaded = int(bool(status.get("model_loaded")))
        yield _gauge("argus_model_loaded", "1 when the engine has a forecasting model.", loaded)
        model = (status.get("model_path") or "").rsplit("/", 1)[-1]
        if model:
            info = GaugeMetricFamily("argus_model_info", "The model the engine serves (value 1).", labels=["model"])
            info.add_metric([model], 1)
            yield info
            created = self._model_created_at(model)
            if created is not None:
                yield _gauge("argus_model_age_seconds", "Seconds since the served model was trained.",
                             max(0.0, now - created))

    def _model_created_at(self, model: str) -> float | None:
        if model not in self._created and self._model_created is not None:
            try:
                self._created[model] = self._model_created(model)
            except Exception as ex:  # noqa: BLE001 - a model folder gone or unreadable: no age, not a 500
                log.debug("no creation time for model %s: %s", model, ex)
                self._created[model] = None
        return self._created.get(model)

    def _forecast_families(self, body: dict) -> list:
        families = _ForecastFamilies()
        summary = body.get("summary") or {}
        for level in LEVEL_VALUES:
            if _finite(summary.get(level)):
                families.by_level.add_metric([level], summary[level])
        servers = [(name, entry) for name, entry in (body.get("predictions") or {}).items() if isinstance(entry, dict)]
        servers.sort(key=lambda item: (-(item[1].get("risk_score") or 0.0), item[0]))
        for name, entry in servers[: self._max_servers]:
            families.add_server(name, entry)
        families.omitted.add_metric([], max(0, len(servers) - self._max_servers))
        return families.all()


def _gauge(name: str, help_text: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, help_text, value=value)


class _ForecastFamilies:
    """The per-server forecast series of one published snapshot."""

    def __init__(self) -> None:
        self.by_level = GaugeMetricFamily("argus_servers_by_level", "Servers at each alert level (the whole fleet).",
                                          labels=["level"])
        self.omitted = GaugeMetricFamily("argus_metrics_servers_omitted",
                                         "Servers left out of the per-server series (ARGUS_METRICS_MAX_SERVERS).")
        self.risk = GaugeMetricFamily("argus_risk_score", "Risk score 0-100.", labels=["server", "profile"])
        self.level = GaugeMetricFamily("argus_alert_level",
                                       "Alert level: 0 healthy, 1 degraded, 2 warning, 3 critical.", labels=["server"])
        self.probability = GaugeMetricFamily("argus_incident_probability",
                                             "Calibrated probability of an incident within the horizon.",
                                             labels=["server", "horizon"])
        self.time_to_issue = GaugeMetricFamily("argus_time_to_issue_seconds",
                                               "Predicted time until the metric crosses its limit.",
                                               labels=["server", "metric"])
        self.forecast = GaugeMetricFamily("argus_forecast",
                                          "Forecast value of a metric at the horizon after the last observation.",
                                          labels=["server", "metric", "percentile", "horizon"])
        self.observed = GaugeMetricFamily("argus_observed", "The server's latest observed value of a forecast metric.",
                                          labels=["server", "metric"])

    def all(self) -> list:
        return [self.by_level, self.omitted, self.risk, self.level, self.probability, self.time_to_issue,
                self.forecast, self.observed]

    def add_server(self, name: str, entry: dict) -> None:
        if _finite(entry.get("risk_score")):
            self.risk.add_metric([name, str(entry.get("profile") or "")], entry["risk_score"])
        level = (entry.get("alert") or {}).get("level")
        if level in LEVEL_VALUES:
            self.level.add_metric([name], LEVEL_VALUES[level])
        for horizon in ("30m", "8h"):
            if _finite(entry.get(f"prob_{horizon}")):
                self.probability.add_metric([name, horizon], entry[f"prob_{horizon}"])
        minutes, metric = entry.get("time_to_issue_minutes"), entry.get("time_to_issue_metric")
        if _finite(minutes) and metric:
            self.time_to_issue.add_metric([name, str(metric)], minutes * 60.0)
        for metric, value in (entry.get("observed") or {}).items():
            if _finite(value):
                self.observed.add_metric([name, metric], value)
        self._add_forecast(name, entry.get("forecast") or {})

    def _add_forecast(self, name: str, forecast: dict) -> None:
        indices = _horizon_indices(forecast.get("timestamps") or [])
        bands = forecast.get("bands") or {}
        for horizon, index in indices:
            for metric in MEDIAN_TARGETS:
                self._point(name, metric, "p50", horizon, forecast.get(metric), index)
            for metric in BAND_TARGETS:
                band = bands.get(metric) or {}
                self._point(name, metric, "p10", horizon, band.get("p10"), index)
                self._point(name, metric, "p90", horizon, band.get("p90"), index)

    def _point(self, name: str, metric: str, percentile: str, horizon: str, values, index: int) -> None:
        if isinstance(values, list) and index < len(values) and _finite(values[index]):
            self.forecast.add_metric([name, metric, percentile, horizon], values[index])


def _horizon_indices(timestamps: list[str]) -> list[tuple[str, int]]:
    """(horizon label, index into the forecast) for each horizon the forecast reaches.

    The first timestamp is one step after the last observation, so the step at ``h`` seconds is
    index ``h / step - 1``; the step comes from the timestamps themselves.
    """
    if len(timestamps) < 2:
        return []
    first, second = _epoch(timestamps[0]), _epoch(timestamps[1])
    if first is None or second is None or second <= first:
        return []
    step = second - first
    out = []
    for label, seconds in HORIZONS:
        index = round(seconds / step) - 1
        if 0 <= index < len(timestamps):
            out.append((label, index))
    return out
