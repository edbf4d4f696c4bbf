"""ExplainService: the engine's explanations, cached per server while its inputs are unchanged.

It sees every tick through the render step (``with_explanations``): it keeps the latest tick,
precomputes the explanations of the worst servers at warning or above and returns them as
published bodies (``explain:<server>``), and answers ``explain`` requests from web workers
(``handle``) for any other ready server.

An explanation is always of one tick, named in its body (``tick_at``, ``forecast_origin``), and its
``prediction`` is that tick's assessment of the server: the risk score the tick published.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import orjson

from argus.domain.alerts import AlertLevel
from argus.domain.errors import ModelNotLoadedError, UnknownServerError
from argus.domain.explanation import ExplanationContext, ServerNotReadyError
from argus.domain.metrics import wire_time
from argus.domain.ticks import TickResult
from argus.ports.explaining import Explainer

log = logging.getLogger(__name__)

KEY_PREFIX = "explain:"


def published_key(server_name: str) -> str:
    """The published-body key of a server's precomputed explanation."""
    return KEY_PREFIX + server_name


class ExplainService:
    """Explain one server of the latest tick with every explainer, in order; cache the result."""

    def __init__(self, predictor, explainers: Sequence[Explainer], known: Callable[[str], bool] | None = None,
                 precompute_max: int = 5) -> None:
        self.predictor = predictor
        self.explainers = list(explainers)
        self.known = known
        self.precompute_max = precompute_max
        self.latest: TickResult | None = None
        self._cache: dict[str, tuple[tuple, dict[str, Any]]] = {}
        self._frozen: dict[str, Any] = {}

    def observe(self, result: TickResult, between_chunks: Callable[[], object] | None = None) -> dict[str, str]:
        """Remember ``result`` and return the precomputed bodies of its worst servers at warning or above.

        ``between_chunks`` (the engine's) is called before each precomputed explanation: requests
        answered there are still of the previous tick, which is published until this one is recorded.
        """
        self._cache = {name: entry for name, entry in self._cache.items() if _inputs_unchanged(entry[0], result, name)}
        hot = sorted((a for a in result.assessments
                      if a.level >= AlertLevel.WARNING and a.server_name in result.forecasts),
                     key=lambda a: (-a.score, a.server_name))
        bodies = {}
        for assessment in hot[: self.precompute_max]:
            if between_chunks is not None:
                between_chunks()
            try:
                body = self.explain_in(result, assessment.server_name)
            except Exception:  # noqa: BLE001 - a failed explanation never costs the tick
                log.exception("precomputing the explanation of %s failed", assessment.server_name)
                continue
            text = orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY).decode()
            bodies[published_key(assessment.server_name)] = text
        self.latest = result
        # The forecaster each server's explanation re-runs, fixed now: the engine answers requests
        # between the next tick's forecast chunks, while the blend's per-server state moves on.
        freeze = getattr(self.predictor.forecaster, "frozen", None) if self.predictor is not None else None
        self._frozen = {name: freeze(f) for name, f in result.forecasts.items()} if freeze is not None else {}
        return bodies

    def handle(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        """The ``explain`` request handler: ``{"server_name": ...}`` -> the /explain response body."""
        name = str(payload.get("server_name", ""))
        if self.predictor is None or self.predictor.forecaster is None:
            raise ModelNotLoadedError()
        result = self.latest
        if result is None or name not in result.forecasts:
            if self.known is not None and not self.known(name):
                raise UnknownServerError(name)
            why = ("the engine has not run a tick since it started" if result is None else
                   f"it needs {self.predictor.forecaster.min_history_steps} consecutive 5-minute records "
                   "up to its latest one before it is forecast")
            raise ServerNotReadyError(name, why)
        return self.explain_in(result, name)

    def explain_in(self, result: TickResult, name: str) -> dict[str, Any]:
        """The explanation of ``name`` on ``result``; served from the cache while its inputs are unchanged.

        A cached body computed on an earlier tick with the same inputs is re-stamped with this
        tick (``tick_at``, ``timestamp``) and this tick's ``prediction``.
        """
        window, assessment = result.windows[name], _assessment(result, name)
        key = (*_inputs(result, name), assessment.score, assessment.anomaly)
        cached = self._cache.get(name)
        if cached is not None and cached[0] == key:
            return {**cached[1], **_of_tick(result, name, assessment), "cached": True}
        started = time.perf_counter()
        forecaster = self._frozen.get(name) if result is self.latest else None
        if forecaster is None:
            forecaster = self.predictor.forecaster
            if hasattr(forecaster, "frozen"):  # the blend: re-run with this tick's weights, not re-estimated ones
                forecaster = forecaster.frozen(result.forecasts[name])
        limits, normal = self.predictor.limits_for(window)  # what the tick scored against: re-runs reproduce it
        context = ExplanationContext(
            server_name=name, profile=self.predictor.profiles.profile_for(name), assessment=assessment,
            forecast=result.forecasts[name], window=window, forecaster=forecaster, at=result.at,
            limits=limits, normal=normal,
        )
        for explainer in self.explainers:
            try:
                context.sections[explainer.name] = explainer.explain(context)
            except Exception as ex:  # noqa: BLE001 - one failed section leaves the others standing
                log.exception("explainer %r failed for %s", explainer.name, name)
                context.sections[explainer.name] = {"error": f"{type(ex).__name__} in the {explainer.name} explainer"}
        body = _render(context, result, time.perf_counter() - started)
        self._cache[name] = (key, body)
        return {**body, "cached": False}


def _inputs(result: TickResult, name: str) -> tuple[str, int, int]:
    """What a server's explanation on ``result`` is computed from besides its assessment: model and window."""
    window = result.windows[name]
    return result.model_name, int(window.timestamps[-1]), len(window)


def _inputs_unchanged(key: tuple, result: TickResult, name: str) -> bool:
    """Whether a cached explanation (``key``) can still serve ``result``: same model, same window.

    Anything else is dropped when a tick is observed: the cache held every server's last explanation
    until that server was asked again, one stale body (~8 KB) per server ever explained.
    """
    return name in result.forecasts and name in result.windows and key[:3] == _inputs(result, name)


def _assessment(result: TickResult, name: str):
    return next(a for a in result.assessments if a.server_name == name)


def _of_tick(result: TickResult, name: str, assessment) -> dict[str, Any]:
    """The fields that name the tick an explanation is of, and the tick's own assessment of the server."""
    return {
        "prediction": {
            "risk_score": assessment.score,
            "alert_level": assessment.level.value,
            "driver": assessment.driver.metric if assessment.driver else None,
            "message": assessment.message,
            "profile": assessment.profile,
        },
        "tick_at": wire_time(result.at),
        "forecast_origin": wire_time(int(result.windows[name].timestamps[-1])),
        "timestamp": wire_time(result.at),
    }


def _render(context: ExplanationContext, result: TickResult, seconds: float) -> dict[str, Any]:
    tick = _of_tick(result, context.server_name, context.assessment)
    body: dict[str, Any] = {"server_name": context.server_name, "prediction": tick.pop("prediction")}
    for name in ("shap", "attention", "counterfactuals"):
        body[name] = context.sections.get(name, [] if name == "counterfactuals" else {})
    body.update({k: v for k, v in context.sections.items() if k not in body})
    body["missing_fields"] = context.window.missing_fields()
    body.update({**tick, "model": result.model_name, "computed_in_s": round(seconds, 3)})
    return body


def with_explanations(render: Callable[[TickResult], dict[str, str]],
                      service: ExplainService | None) -> Callable[[TickResult], dict[str, str]]:
    """Compose the engine's render step with the explain service's precompute (the container wires it)."""
    if service is None:
        return render

    def render_with_explanations(result: TickResult, between_chunks: Callable[[], object] | None = None
                                 ) -> dict[str, str]:
        bodies = dict(render(result))
        try:
            bodies.update(service.observe(result, between_chunks))
        except Exception:  # noqa: BLE001 - explanations never cost a tick
            log.exception("explanation precompute failed")
        return bodies

    return render_with_explanations
