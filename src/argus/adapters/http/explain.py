"""GET /explain/{server_name}: the engine's precomputed explanation, or one asked of the engine on demand."""

from __future__ import annotations

import time

import falcon

from argus.adapters.http.resources import EngineView, PublishedBodies
from argus.domain.channel import RemoteError
from argus.domain.errors import EngineUnavailableError, ModelNotLoadedError, UnknownServerError
from argus.ports.storage import MetricsStore, PublishedResults

KEY_PREFIX = "explain:"  # the engine publishes precomputed explanations under explain:<server>
#: Engine error codes the edge maps to their own status; anything else is an internal error.
PASSED_THROUGH = {"unknown_server", "insufficient_data", "model_not_loaded", "engine_unavailable"}


class ExplainResource:
    """Serve the latest tick's precomputed body when there is one, else ask the engine (with a timeout)."""

    rate_limit_group = "explain"

    def __init__(self, published: PublishedResults, store: MetricsStore, engine: EngineView, client,
                 timeout_s: float = 10.0) -> None:
        self._published, self._store, self._engine = published, store, engine
        self._bodies = PublishedBodies(published)
        self._client = client
        self._timeout_s = timeout_s

    def on_get(self, req: falcon.Request, resp: falcon.Response, server_name: str) -> None:
        if not self._store.server_exists(server_name):
            raise UnknownServerError(server_name)
        status, alive, _ = self._engine.read()
        if status is not None and not status.get("model_loaded"):
            raise ModelNotLoadedError()
        precomputed = self._precomputed(server_name)
        if precomputed is not None:
            resp.data, resp.content_type = precomputed, falcon.MEDIA_JSON
            resp.set_header("X-Explanation-Source", "precomputed")
            return
        if self._client is None or not alive:
            raise EngineUnavailableError("The engine is not running; explanations need it, retry later",
                                         retry_after_s=max(1, int(self._timeout_s)))
        started = time.perf_counter()
        try:
            body = self._client.call("explain", {"server_name": server_name}, self._timeout_s,
                                     getattr(req.context, "request_id", None))
        except RemoteError as ex:
            if ex.code in PASSED_THROUGH:
                raise
            resp.status = falcon.HTTP_500
            resp.media = {"detail": "Internal server error", "error": f"Explanation failed in the engine: {ex}"}
            return
        resp.media = body
        resp.set_header("X-Explanation-Source", "engine")
        resp.set_header("X-Engine-Seconds", f"{time.perf_counter() - started:.3f}")

    def _precomputed(self, server_name: str) -> bytes | None:
        """The published body when it belongs to the latest tick (published with its predictions)."""
        found = self._bodies.get(KEY_PREFIX + server_name)
        if found is None:
            return None
        if self._published.published_version("predictions") != found[1]:
            return None  # from an earlier tick: the server has calmed down or changed since
        return found[0]
