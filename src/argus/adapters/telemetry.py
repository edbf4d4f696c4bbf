"""Argus's own health as Prometheus metrics (prometheus_client), counted in every process that serves or ticks.

Under ``argus serve`` the supervisor points ``PROMETHEUS_MULTIPROC_DIR`` at a directory of its own
before it starts gunicorn and the engine: each process then keeps its values in files there, and
``GET /metrics`` in any worker sums them, so every worker and the engine are counted once. A dead
process's counters and histograms stay in the sums (counters never go back); its gauges leave with it
(``mark_process_dead``). Without the variable (tests, a bare gunicorn) a process serves its own values.

Ingest adapters report what they take in with ``count_ingested`` and ``count_rejected_samples``; the
HTTP middleware counts refused ingest requests itself (``INGEST_ROUTES``). The series are listed in
docs/prometheus.md ("Metrics Argus exposes").
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics
from prometheus_client.multiprocess import MultiProcessCollector

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

#: Where data comes in; a fixed set keeps the ``source`` label bounded.
SOURCES = ("feed", "remote_write", "otlp")
#: The ingest endpoints by route template, for counting refused requests per source.
INGEST_ROUTES: Mapping[str, str] = {"/feed/data": "feed", "/api/v1/write": "remote_write", "/v1/metrics": "otlp"}
#: Why a whole ingest request was refused, by HTTP status (anything else: ``http_<code>``).
REJECT_REASONS: Mapping[int, str] = {
    400: "malformed", 401: "unauthorized", 408: "timeout", 413: "too_large", 415: "unsupported_media_type",
    422: "invalid", 429: "rate_limited", 500: "error", 503: "unavailable",
}
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
SINK_OUTCOMES = ("sent", "resent", "failed", "dropped")

disable_created_metrics()  # no ``*_created`` twin of every counter: half the series, nothing Argus's users read

#: This process's metrics (the multiprocess files hold the same values when the variable is set).
REGISTRY = CollectorRegistry(auto_describe=True)

INGESTED_RECORDS = Counter(
    "argus_ingested_records", "Argus records stored (5-minute steps per server), by source.", ["source"],
    registry=REGISTRY)
INGESTED_SAMPLES = Counter(
    "argus_ingested_samples",
    "Values accepted, by source: remote_write samples, OTLP data points, the numeric fields of /feed/data records.",
    ["source"], registry=REGISTRY)
REJECTED_REQUESTS = Counter(
    "argus_rejected_requests", "Ingest requests refused whole (nothing of them stored), by source and reason.",
    ["source", "reason"], registry=REGISTRY)
REJECTED_SAMPLES = Counter(
    "argus_rejected_samples", "Values dropped from requests that were otherwise accepted, by source and reason.",
    ["source", "reason"], registry=REGISTRY)
REQUEST_SECONDS = Histogram(
    "argus_http_request_duration_seconds", "Time to handle an HTTP request, by route template and method.",
    ["route", "method"], registry=REGISTRY,
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0))
RESPONSES = Counter(
    "argus_http_responses", "HTTP responses, by route template and status code.", ["route", "code"],
    registry=REGISTRY)
TICK_SECONDS = Histogram(
    "argus_tick_duration_seconds", "Engine inference ticks: forecast, risk, alerts, render and record.",
    registry=REGISTRY, buckets=(0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0))
SINK_QUEUE = Gauge(
    "argus_alert_sink_queue_depth", "Alert events waiting in each sink's queue in the engine.", ["sink"],
    registry=REGISTRY, multiprocess_mode="livemax")
SINK_DELIVERIES = Counter(
    "argus_alert_sink_deliveries", "Alert sink work by outcome: sent, resent, failed, dropped (queue full).",
    ["sink", "outcome"], registry=REGISTRY)

for _source in SOURCES:  # every source shows from the start, at 0
    INGESTED_RECORDS.labels(_source)
    INGESTED_SAMPLES.labels(_source)


def _checked_source(source: str) -> str:
    if source not in SOURCES:
        raise ValueError(f"unknown ingest source {source!r}; one of {', '.join(SOURCES)}")
    return source


def count_ingested(source: str, records: int = 0, samples: int = 0) -> None:
    """Count what ``source`` stored: Argus ``records`` and the ``samples`` (values) they came from."""
    source = _checked_source(source)
    if records > 0:
        INGESTED_RECORDS.labels(source).inc(records)
    if samples > 0:
        INGESTED_SAMPLES.labels(source).inc(samples)


def count_rejected_samples(source: str, reason: str, n: int = 1) -> None:
    """Count values ``source`` dropped from an accepted request; ``reason`` is a short fixed word (``nan``)."""
    if n > 0:
        REJECTED_SAMPLES.labels(_checked_source(source), reason).inc(n)


def observe_request(route: str, method: str, status: int, seconds: float) -> None:
    """Time one HTTP request; count it as refused when an ingest route answered 4xx or 5xx."""
    method = method if method in HTTP_METHODS else "other"
    REQUEST_SECONDS.labels(route, method).observe(seconds)
    RESPONSES.labels(route, str(status)).inc()
    source = INGEST_ROUTES.get(route)
    if source is not None and status >= 400 and method == "POST":
        REJECTED_REQUESTS.labels(source, REJECT_REASONS.get(status, f"http_{status}")).inc()


class EngineTelemetry:
    """The engine process's series: tick durations, and each alert sink's queue and deliveries."""

    def __init__(self, sink_stats: Callable[[], Mapping[str, Mapping[str, int]]] | None = None) -> None:
        self._sink_stats = sink_stats
        self._seen: dict[tuple[str, str], int] = {}

    def tick_finished(self, duration_s: float) -> None:
        """Observe one tick's wall time; the engine calls it after every tick."""
        TICK_SECONDS.observe(duration_s)
        self.sample_sinks()

    def sample_sinks(self) -> None:
        """Copy the dispatcher's counters: queue depth as a gauge, sent/failed/dropped as counters."""
        if self._sink_stats is None:
            return
        for sink, stats in self._sink_stats().items():
            SINK_QUEUE.labels(sink).set(stats.get("queued", 0))
            for outcome in SINK_OUTCOMES:
                total = stats.get(outcome, 0)
                delta = total - self._seen.get((sink, outcome), 0)
                if delta > 0:
                    SINK_DELIVERIES.labels(sink, outcome).inc(delta)
                self._seen[(sink, outcome)] = total


class _Union:
    """Several collectors exposed as one."""

    def __init__(self, collectors: Iterable) -> None:
        self._collectors = tuple(collectors)

    def collect(self):
        for collector in self._collectors:
            yield from collector.collect()


def process_metrics(env: Mapping[str, str] | None = None):
    """What this host's Argus processes counted: summed over the multiprocess directory, or this process's own."""
    path = (os.environ if env is None else env).get(MULTIPROC_ENV)
    if not path:
        return REGISTRY
    registry = CollectorRegistry(auto_describe=False)
    MultiProcessCollector(registry, path)
    return registry


def union(*collectors) -> _Union:
    """One collector over ``collectors`` (their metric names must not overlap)."""
    return _Union(collectors)
