"""Thin Falcon resources: parse, call a port, render. No business logic lives here."""

from __future__ import annotations

import gzip
import threading
import time
from datetime import UTC, datetime
from typing import Any

import falcon
import orjson

from argus.adapters.http.schemas import parse_feed
from argus.adapters.liveness import process_alive
from argus.adapters.telemetry import count_ingested
from argus.domain.errors import ModelNotLoadedError
from argus.domain.ingestion import WARMUP_MIN_RECORDS, AcceptedTimes, WarmupState
from argus.domain.metrics import METRIC_FIELDS, wire_time
from argus.ports.storage import MetricsStore, PublishedResults

SERVICE_NAME = "tft_inference_daemon"  # the reference's /health "service" value


def read_body(req: falcon.Request, max_bytes: int, expected: str = "a body") -> bytes:
    """Read the whole body: 413 over ``max_bytes`` (declared, streamed or chunked), 400 when short or empty.

    A body shorter than its Content-Length (the client left half-way) is refused, never parsed.
    ``expected`` names what an empty body should have held, for its 400.
    """
    declared = req.content_length
    if declared is not None and declared > max_bytes:
        raise falcon.HTTPContentTooLarge(description=f"Request body exceeds {max_bytes} bytes")
    # Chunked bodies come decoded from the server's own stream, which has no length to bound it by.
    chunked = declared is None and "chunked" in (req.get_header("Transfer-Encoding") or "").lower()
    try:
        raw = (req.stream if chunked else req.bounded_stream).read(max_bytes + 1)
    except Exception as ex:  # noqa: BLE001 - a broken chunk or a dropped socket, in the server's own error types
        raise falcon.HTTPBadRequest(description=f"Request body could not be read: {ex}") from None
    if len(raw) > max_bytes:
        raise falcon.HTTPContentTooLarge(description=f"Request body exceeds {max_bytes} bytes")
    if declared is not None and len(raw) < declared:
        raise falcon.HTTPBadRequest(description=f"Request body ended after {len(raw)} of {declared} bytes")
    if not raw:
        raise falcon.HTTPBadRequest(description=f"Request body is empty; expected {expected}")
    return raw


def read_json(req: falcon.Request, max_bytes: int) -> Any:
    """Read a JSON body: 415 unless JSON, then ``read_body``'s limits, 400 if malformed."""
    if req.content_type is None or req.content_type.split(";")[0].strip().lower() != falcon.MEDIA_JSON:
        raise falcon.HTTPUnsupportedMediaType(description="Content-Type must be application/json")
    raw = read_body(req, max_bytes, "a JSON object")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as ex:
        raise falcon.HTTPBadRequest(description=f"Request body is not valid JSON: {ex}") from None


class EngineView:
    """The engine's last published status, as web workers see it (None fields when never published)."""

    def __init__(self, published: PublishedResults, stale_after_s: float) -> None:
        self._published = published
        self._stale_after_s = stale_after_s

    def read(self) -> tuple[dict[str, Any] | None, bool, float | None]:
        """Return (status body or None, engine alive, heartbeat age in seconds or None).

        Alive means a fresh heartbeat and, when the engine runs on this host, its process still
        there: a killed engine reads as stopped at once, not ``stale_after_s`` later.
        """
        item = self._published.read_published("status")
        if item is None:
            return None, False, None
        age = max(0.0, time.time() - item.updated_at)
        status = orjson.loads(item.body)
        process = status.pop("process", None)
        stopped = isinstance(process, dict) and process.get("stopped_at") is not None
        alive = age <= self._stale_after_s and not stopped and process_alive(process) is not False
        return status, alive, round(age, 1)


class HealthResource:
    """GET /health: is this worker serving, can it reach the database, is the engine running."""

    auth_required = False

    def __init__(self, store: MetricsStore, engine: EngineView) -> None:
        self._store, self._engine = store, engine

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        try:
            self._store.ping()
            _, alive, _ = self._engine.read()
        except Exception:  # noqa: BLE001 - any storage failure means unhealthy, not a 500
            resp.status = falcon.HTTP_503
            resp.media = {"status": "unhealthy", "service": SERVICE_NAME, "running": False, "database": "unreachable"}
            return
        resp.media = {"status": "healthy", "service": SERVICE_NAME, "running": alive, "database": "ok"}


class StatusResource:
    """GET /status: the engine's published state; null where nothing exists yet."""

    auth_required = False

    def __init__(self, store: MetricsStore, engine: EngineView, rolling_window_size: int) -> None:
        self._store, self._engine = store, engine
        self._rolling_window_size = rolling_window_size

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        status, alive, age = self._engine.read()
        if status is None:
            resp.media = {
                "model_loaded": False,
                "model_path": None,
                "rolling_window_size": self._rolling_window_size,
                "servers_tracked": len(self._store.server_names()),
                "last_prediction": None,
                "last_prediction_iso": None,
                "uptime_seconds": None,
                "warmup_complete": self._store.count_records(WARMUP_MIN_RECORDS) >= WARMUP_MIN_RECORDS,
                "window_records": None,
                "servers_ready": None,
                "engine": {"running": False, "heartbeat_age_s": None},
            }
            return
        started_at = status.pop("started_at", None)
        status["uptime_seconds"] = int(time.time() - started_at) if alive and started_at else None
        status["engine"] = {"running": alive, "heartbeat_age_s": age, "started_at": started_at,
                            "started_at_iso": _iso_utc(started_at)}
        # the reference's last_prediction has no zone ("2025-01-15T10:05:00", UTC): kept, and said in full beside it
        status["last_prediction_iso"] = _iso_utc(status.get("last_prediction"))
        resp.media = status


def _iso_utc(moment: str | float | None) -> str | None:
    """ISO 8601 with its zone (``2025-01-15T10:05:00+00:00``) from an epoch or a zone-less UTC wire time."""
    if moment is None:
        return None
    if isinstance(moment, str):
        parsed = datetime.fromisoformat(moment)
        return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).isoformat(timespec="seconds")
    return datetime.fromtimestamp(moment, tz=UTC).isoformat(timespec="seconds")


class FeedResource:
    """POST /feed/data: validate every record, commit them all (or none), report warm-up."""

    rate_limit_group = "feed"

    def __init__(self, store: MetricsStore, *, max_body_bytes: int, max_records: int, rolling_window_size: int,
                 accepted_times: AcceptedTimes | None = None):
        self._store = store
        self._max_body_bytes = max_body_bytes
        self._max_records = max_records
        self._accepted_times = accepted_times  # None: any timestamp from 1970 to 2100
        self._rolling_window_size = rolling_window_size
        self._warm = False  # once the fleet is warm it stays warm: skip the count

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        records = parse_feed(read_json(req, self._max_body_bytes), self._max_records, self._accepted_times)
        receipt = self._store.write_batch(records, request_id=getattr(req.context, "request_id", None))
        count_ingested("feed", records=receipt.records, samples=receipt.records * len(METRIC_FIELDS))
        warmup = WarmupState(WARMUP_MIN_RECORDS if self._warm else self._store.count_records(WARMUP_MIN_RECORDS))
        self._warm = warmup.complete
        if warmup.complete:
            resp.media = {
                "status": "accepted",
                "records_received": receipt.records,
                "tick": receipt.batch_id,
                "rolling_window_size": self._rolling_window_size,
                "warmup_complete": True,
            }
        else:
            resp.media = {
                "status": "warming_up",
                "records_received": receipt.records,
                "tick": receipt.batch_id,
                "warmup_complete": False,
                "progress": warmup.progress,
            }


class PublishedBodies:
    """Serves engine-published JSON bodies, re-reading a body only when its version changed.

    A gzip copy is made once per version on first demand: the fleet snapshot is megabytes for
    a thousand servers, and clients that accept gzip (browsers, curl --compressed, requests)
    then get a tenth of it.
    """

    def __init__(self, published: PublishedResults) -> None:
        self._published = published
        self._cache: dict[str, list] = {}  # key -> [version, body, gzipped body or None]
        self._lock = threading.Lock()

    def get(self, key: str, gzipped: bool = False) -> tuple[bytes, float, str | None] | None:
        """Return (body, published_at, content encoding) or None when the engine never published ``key``."""
        version = self._published.published_version(key)
        if version is None:
            return None
        entry = self._cache.get(key)
        if entry is None or entry[0] != version:
            item = self._published.read_published(key)
            if item is None:
                return None
            entry = [item.updated_at, item.body.encode(), None]
            with self._lock:
                self._cache[key] = entry
        if not gzipped or len(entry[1]) < GZIP_MIN_BYTES:
            return entry[1], entry[0], None
        if entry[2] is None:
            entry[2] = gzip.compress(entry[1], compresslevel=5, mtime=0)
        return entry[2], entry[0], "gzip"


GZIP_MIN_BYTES = 1400  # below one packet compression buys nothing


def accepts_gzip(req: falcon.Request) -> bool:
    return "gzip" in (req.get_header("Accept-Encoding") or "").lower()


def _serve(resp: falcon.Response, body: bytes, published_at: float, encoding: str | None = None) -> None:
    resp.data = body
    resp.content_type = falcon.MEDIA_JSON
    resp.set_header("Vary", "Accept-Encoding")
    if encoding:
        resp.set_header("Content-Encoding", encoding)
    resp.set_header("X-Snapshot-Age-Seconds", str(max(0, int(time.time() - published_at))))


class PredictionsResource:
    """GET /predictions/current: the latest tick's snapshot, pre-rendered by the engine."""

    rate_limit_group = "predictions"

    def __init__(self, bodies: PublishedBodies, store: MetricsStore, engine: EngineView) -> None:
        self._bodies, self._store, self._engine = bodies, store, engine

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        found = self._bodies.get("predictions", gzipped=accepts_gzip(req))
        if found is not None:
            _serve(resp, *found)
            return
        status, _, _ = self._engine.read()
        if status is not None and not status.get("model_loaded"):
            raise ModelNotLoadedError()
        have = self._store.count_records(WARMUP_MIN_RECORDS)
        message = f"Need at least {WARMUP_MIN_RECORDS} records, have {have}"
        resp.media = {"error": "insufficient_data", "message": message, "predictions": {}}


class AlertsResource:
    """GET /alerts/active: the open alerts as of the latest tick."""

    rate_limit_group = "alerts"

    def __init__(self, bodies: PublishedBodies) -> None:
        self._bodies = bodies

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        found = self._bodies.get("alerts", gzipped=accepts_gzip(req))
        if found is not None:
            _serve(resp, *found)
            return
        resp.media = {"timestamp": wire_time(time.time()), "count": 0, "alerts": []}
