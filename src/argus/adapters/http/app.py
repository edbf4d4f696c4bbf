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
from argus.adapters.http.options import (
    DEFAULT_METRICS,
    DEFAULT_TIMEOUTS,
    NO_FEATURES,
    Features,
    MetricsOptions,
    RequestLimits,
    Timeouts,
)
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
    limits: RequestLimits,
    timeouts: Timeouts = DEFAULT_TIMEOUTS,
    features: Features = NO_FEATURES,
    metrics: MetricsOptions = DEFAULT_METRICS,
    storage_errors: Iterable[type[Exception]] = (),
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

    engine = EngineView(published, timeouts.engine_stale_after_s)
    app.add_route("/health", HealthResource(store, engine))
    app.add_route("/status", StatusResource(store, engine, limits.rolling_window_size))
    app.add_route(
        "/feed/data",
        FeedResource(store, max_body_bytes=limits.max_body_bytes, max_records=limits.max_records_per_request,
                     rolling_window_size=limits.rolling_window_size, accepted_times=limits.accepted_times),
    )
    bodies = PublishedBodies(published)
    app.add_route("/predictions/current", PredictionsResource(bodies, store, engine))
    app.add_route("/alerts/active", AlertsResource(bodies))
    app.add_route("/explain/{server_name}",
                  ExplainResource(published, store, engine, features.engine_client, timeouts.explain_s))
    _add_optional_routes(app, features, timeouts)
    app.add_route("/openapi.json", OpenApiResource())
    models = features.admin.models if features.admin is not None else None
    forecasts = PublishedCollector(published, engine, created_from(models), max_servers=metrics.max_servers)
    app.add_route("/metrics", MetricsResource(union(process_metrics(), forecasts), public=metrics.public))
    return app


def _add_optional_routes(app: falcon.App, features: Features, timeouts: Timeouts) -> None:
    """Routes of the features that were given: admin, history, the page's metrics, remote_write, OTLP."""
    if features.admin is not None and features.engine_client is not None:
        admin.add_routes(app, features.admin.models, features.admin.training_runs, features.engine_client,
                         timeouts.admin_s)
    history = features.history
    if history is not None:
        app.add_route("/historical/summary", SummaryResource(history))
        app.add_route("/historical/alerts", AlertHistoryResource(history))
        app.add_route("/historical/server/{server_name}", ServerHistoryResource(history))
        app.add_route("/historical/environment", EnvironmentResource(history))
        app.add_route("/historical/export/{table}", ExportResource(history))
    web.add_routes(app, features.metrics_query)  # the page at / (public files) and /servers/{name}/metrics
    if features.remote_write is not None:
        app.add_route("/api/v1/write", features.remote_write)  # Prometheus remote_write (adapters/http/remote_write.py)
    if features.otlp is not None:
        app.add_route("/v1/metrics", features.otlp)  # OTLP/HTTP metrics (adapters/http/otlp.py)
