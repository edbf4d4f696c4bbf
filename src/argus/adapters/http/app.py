"""build_app(): the Falcon application with its middleware, routes and error handlers."""

from __future__ import annotations

import hmac
import logging
from collections.abc import Iterable

import falcon
import falcon.media
import orjson

from argus.adapters.http import admin, errors, web
from argus.adapters.http.explain import ExplainResource
from argus.adapters.http.history import (
    AlertHistoryResource,
    EnvironmentResource,
    ExportResource,
    ServerHistoryResource,
    SummaryResource,
)
from argus.adapters.http.metrics import MetricsResource, PublishedCollector, TelemetryMiddleware, created_from
from argus.adapters.http.openapi import OpenApiResource
from argus.adapters.http.ratelimit import RateLimiter
from argus.adapters.http.request_id import RequestIdMiddleware
from argus.adapters.http.resources import (
    AlertsResource,
    EngineView,
    FeedResource,
    HealthResource,
    PredictionsResource,
    PublishedBodies,
    StatusResource,
)
from argus.adapters.telemetry import process_metrics, union
from argus.domain.ingestion import AcceptedTimes
from argus.ports.history import HistoryStore
from argus.ports.storage import MetricsStore, PublishedResults

log = logging.getLogger("argus.http")

def presented_key(req: falcon.Request) -> str:
    """The key a client sent: ``X-API-Key``, else an ``Authorization: Bearer`` token (how Prometheus sends one)."""
    key = req.get_header("X-API-Key")
    if key is not None:
        return key
    scheme, _, token = (req.get_header("Authorization") or "").strip().partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


class AuthMiddleware:
    """Check the API key in constant time; resources with ``auth_required = False`` are public.

    Wrong or missing keys count per client address (the ``auth_failures`` limit); past it the
    address gets 429 without its key being looked at, a right one included, until the window frees:
    otherwise a 429 for a wrong guess and a 200 for the right one would still tell them apart.
    """

    def __init__(self, api_key: str, limiter: RateLimiter) -> None:
        if not api_key:
            raise ValueError("an API key is required (fail closed)")
        self._key = api_key.encode()
        self._limiter = limiter

    def process_resource(self, req: falcon.Request, resp, resource, params) -> None:
        if resource is None or not getattr(resource, "auth_required", True):
            return
        address = req.remote_addr or "-"
        verdict = self._limiter.check("auth_failures", address)
        if not verdict.allowed:
            raise errors.RateLimitedError(verdict.retry_after_s)
        given = presented_key(req).encode()
        if not hmac.compare_digest(given, self._key):
            self._limiter.hit("auth_failures", address)
            raise falcon.HTTPUnauthorized(title="Unauthorized", description=errors.UNAUTHORIZED,
                                          challenges=[errors.API_KEY_CHALLENGE])
        req.context.api_key = given.decode()


class RateLimitMiddleware:
    """Apply the resource's ``rate_limit_group`` per API key (after authentication)."""

    def __init__(self, limiter: RateLimiter) -> None:
        self._limiter = limiter

    def process_resource(self, req: falcon.Request, resp, resource, params) -> None:
        group = getattr(resource, "rate_limit_group", None)
        if group is None or req.method == "OPTIONS":
            return
        verdict = self._limiter.hit(group, getattr(req.context, "api_key", ""))
        if not verdict.allowed:
            raise errors.RateLimitedError(verdict.retry_after_s)


def build_app(
    *,
    api_key: str,
    store: MetricsStore,
    published: PublishedResults,
    limiter: RateLimiter,
    rolling_window_size: int,
    max_body_bytes: int,
    max_records_per_request: int,
    engine_stale_after_s: float = 30.0,
    storage_errors: Iterable[type[Exception]] = (),
    history: HistoryStore | None = None,
    model_registry=None,
    training_runs=None,
    engine_client=None,
    admin_timeout_s: float = 60.0,
    explain_timeout_s: float = 10.0,
    metrics_query=None,
    accepted_times: AcceptedTimes | None = None,
    metrics_public: bool = False,
    metrics_max_servers: int = 500,
    remote_write=None,
    otlp=None,
) -> falcon.App:
    """Assemble the WSGI app; every collaborator comes in from the container."""
    app = falcon.App(
        middleware=[TelemetryMiddleware(), RequestIdMiddleware(), AuthMiddleware(api_key, limiter),
                    RateLimitMiddleware(limiter)],
        cors_enable=False,
    )
    json_handler = falcon.media.JSONHandler(dumps=orjson.dumps, loads=orjson.loads)
    app.req_options.media_handlers[falcon.MEDIA_JSON] = json_handler
    app.resp_options.media_handlers[falcon.MEDIA_JSON] = json_handler
    app.req_options.strip_url_path_trailing_slash = True
    errors.install(app, storage_errors)

    engine = EngineView(published, engine_stale_after_s)
    app.add_route("/health", HealthResource(store, engine))
    app.add_route("/status", StatusResource(store, engine, rolling_window_size))
    app.add_route(
        "/feed/data",
        FeedResource(store, max_body_bytes=max_body_bytes, max_records=max_records_per_request,
                     rolling_window_size=rolling_window_size, accepted_times=accepted_times),
    )
    bodies = PublishedBodies(published)
    app.add_route("/predictions/current", PredictionsResource(bodies, store, engine))
    app.add_route("/alerts/active", AlertsResource(bodies))
    app.add_route("/explain/{server_name}", ExplainResource(published, store, engine, engine_client, explain_timeout_s))
    if model_registry is not None and training_runs is not None and engine_client is not None:
        admin.add_routes(app, model_registry, training_runs, engine_client, admin_timeout_s)
    if history is not None:
        app.add_route("/historical/summary", SummaryResource(history))
        app.add_route("/historical/alerts", AlertHistoryResource(history))
        app.add_route("/historical/server/{server_name}", ServerHistoryResource(history))
        app.add_route("/historical/environment", EnvironmentResource(history))
        app.add_route("/historical/export/{table}", ExportResource(history))
    web.add_routes(app, metrics_query)  # the page at / (public files) and /servers/{name}/metrics
    app.add_route("/openapi.json", OpenApiResource())
    if remote_write is not None:
        app.add_route("/api/v1/write", remote_write)  # Prometheus remote_write (adapters/http/remote_write.py)
    if otlp is not None:
        app.add_route("/v1/metrics", otlp)  # OTLP/HTTP metrics (adapters/http/otlp.py)
    forecasts = PublishedCollector(published, engine, created_from(model_registry), max_servers=metrics_max_servers)
    app.add_route("/metrics", MetricsResource(union(process_metrics(), forecasts), public=metrics_public))
    return app
