"""Explanations: the model's input features, importances and stars, attention phrases, counterfactual scenarios.

Pure (stdlib, attrs, numpy). The explainers that compute numbers from the model live in
``argus.adapters.explain``; this module says what the numbers mean and how they are worded.

A *feature* is one input series of the model's encoder, named as the API shows it: the forecast
targets by their risk-metric name (``cpu_pct``, ``mem_pct`` ...) and the observed covariates by
their record field (``cpu_user_pct``, ``back_close_wait`` ...). ``uptime_days`` and ``status`` are
not model inputs, so no explanation can attribute anything to them; nor to a *missing* feature (an
optional field the server's source lacks: the model read a masked stand-in, not the server): the
explainers leave it out of their game and their rankings, and report it under ``missing_features``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

import attrs
import numpy as np

from argus.domain import actions
from argus.domain.errors import ArgusError
from argus.domain.forecast import TARGET_FIELDS, TARGETS, Forecast
from argus.domain.metric_table import METRICS, MetricTable, RiskMetric
from argus.domain.metrics import FIELD_INDEX, STEP_SECONDS, MetricsWindow, missing_fields
from argus.domain.profiles import Limits, ServerProfile
from argus.domain.risk import STEPS_8H, RiskAssessment

COVARIATE_FIELDS: tuple[str, ...] = (
    "cpu_user_pct", "cpu_sys_pct", "java_cpu_pct", "net_in_mb_s", "net_out_mb_s",
    "back_close_wait", "front_close_wait",
)
#: Every encoder input series (the players of the SHAP game), API name -> the record field it is read from.
FEATURE_FIELDS: Mapping[str, str] = {**TARGET_FIELDS, **{field: field for field in COVARIATE_FIELDS}}
FEATURES: tuple[str, ...] = tuple(FEATURE_FIELDS)
FEATURE_LABELS: Mapping[str, str] = {
    **{target: METRICS[target].label for target in TARGETS},
    "cpu_user_pct": "user CPU", "cpu_sys_pct": "system CPU", "java_cpu_pct": "Java CPU",
    "net_in_mb_s": "inbound network", "net_out_mb_s": "outbound network",
    "back_close_wait": "backend CLOSE_WAIT", "front_close_wait": "frontend CLOSE_WAIT",
}
#: The TFT's own variable names (variable-selection weights) -> feature.
MODEL_VARIABLES: Mapping[str, str] = {
    **{f"{t}_z": t for t in TARGETS},
    "user_pct_obs": "cpu_user_pct", "sys_pct_obs": "cpu_sys_pct", "java_pct_obs": "java_cpu_pct",
    "net_in_obs": "net_in_mb_s", "net_out_obs": "net_out_mb_s",
    "back_cw_obs": "back_close_wait", "front_cw_obs": "front_close_wait",
}
#: Record fields a feature stands for, when grading against labelled ``metrics_involved``
#: (a target's related fields too: cpu_pct = 100 − idle is the sum of user, system and iowait time).
FEATURE_RECORD_FIELDS: Mapping[str, tuple[str, ...]] = {
    **{f: (field,) for f, field in FEATURE_FIELDS.items()},
    **{target: (*METRICS[target].fields, *METRICS[target].related_fields) for target in TARGETS},
}


class ServerNotReadyError(ArgusError):
    """The server is known but has no forecast on the latest tick (warming up, offline, or no tick yet)."""

    code = "insufficient_data"

    def __init__(self, server_name: str, why: str) -> None:
        super().__init__(f"Server {server_name} is not ready to be explained yet: {why}")
        self.server_name = server_name


def feature_series(values: np.ndarray, feature: str) -> np.ndarray:
    """Return ``feature`` in natural units from record rows aligned with METRIC_FIELDS."""
    column = values[:, FIELD_INDEX[FEATURE_FIELDS[feature]]].astype(np.float64)
    return METRICS[feature].derive(column) if feature in TARGETS else column


def mask_features(values: np.ndarray, masked: Sequence[str], encoder_rows: slice) -> np.ndarray:
    """Replace each masked feature by its median over ``encoder_rows`` (on every row): the feature says nothing.

    The median of the values the feature has there; a feature with none there is left as it is.
    """
    out = values.copy()
    for feature in masked:
        column = FIELD_INDEX[FEATURE_FIELDS[feature]]
        known = values[encoder_rows, column]
        known = known[np.isfinite(known)]
        if len(known):
            out[:, column] = np.median(known)
    return out


def missing_features(window: MetricsWindow, encoder_rows: slice) -> list[str]:
    """The features the server's source lacks: no value over the rows the model read, or none lately.

    Lately is the window's ``missing_fields()`` (the last hour), what /predictions/current reports:
    a covariate gone for the last hour reaches the model as a masked stand-in, not as the server's.
    """
    gone = set(window.missing_fields()) | set(missing_fields(window.values[encoder_rows]))
    return [feature for feature in FEATURES if FEATURE_FIELDS[feature] in gone]


# -- importances ---------------------------------------------------------------------------------


SHAP_OUTPUTS = ("driver_forecast", "risk_score")


@attrs.frozen
class ExplainSettings(Mapping[str, str]):
    """Every ``ARGUS_EXPLAIN_*`` setting, as the ``argus_explainers`` hook receives it.

    Typed attributes (``settings.shap_samples == 128``) and, for plugins written against the
    older contract, a read-only mapping of the same settings as strings, lower-cased without the
    prefix (``settings["shap_samples"] == "128"``).
    """

    timeout_s: float = 10.0  # ARGUS_EXPLAIN_TIMEOUT_S: how long a worker waits for an on-demand explanation
    precompute_max: int = 5  # ARGUS_EXPLAIN_PRECOMPUTE_MAX: servers explained ahead on each tick
    shap_samples: int = 128  # ARGUS_EXPLAIN_SHAP_SAMPLES: Kernel SHAP coalitions per explanation
    shap_output: str = "driver_forecast"  # ARGUS_EXPLAIN_SHAP_OUTPUT: one of SHAP_OUTPUTS

    @classmethod
    def from_strings(cls, values: Mapping[str, str]) -> ExplainSettings:
        """From string values keyed like the mapping view (missing keys keep their defaults)."""
        default = cls()
        return cls(
            timeout_s=float(values.get("timeout_s") or default.timeout_s),
            precompute_max=int(values.get("precompute_max") or default.precompute_max),
            shap_samples=int(values.get("shap_samples") or default.shap_samples),
            shap_output=values.get("shap_output") or default.shap_output,
        )

    def _strings(self) -> dict[str, str]:
        return {"timeout_s": f"{self.timeout_s:g}", "precompute_max": str(self.precompute_max),
                "shap_samples": str(self.shap_samples), "shap_output": self.shap_output}

    def __getitem__(self, key: str) -> str:
        return self._strings()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._strings())

    def __len__(self) -> int:
        return len(self._strings())


@attrs.frozen
class FeatureImportance:
    """One feature's attribution: signed value (output units), importance (|value| / the top one) and share."""

    feature: str
    value: float
    importance: float
    share: float


def stars(importance: float) -> str:
    """Five-star rendering of a 0–1 importance, rounded half up: 0.85 → ★★★★☆, 1.0 → ★★★★★, 0.34 → ★★☆☆☆."""
    n = int(math.floor(5.0 * min(max(importance, 0.0), 1.0) + 0.5))
    if importance > 0 and n == 0:
        n = 1  # a returned feature with any weight gets one star
    return "★" * n + "☆" * (5 - n)


def rank_importances(values: Mapping[str, float], top: int) -> list[FeatureImportance]:
    """Sort by |value|, normalise to the largest (which gets 1.0), keep ``top``; shares are of the total."""
    ranked = sorted(values.items(), key=lambda kv: (-abs(kv[1]), kv[0]))
    largest = max((abs(v) for v in values.values()), default=0.0)
    total = sum(abs(v) for v in values.values())
    return [
        FeatureImportance(
            feature=name,
            value=float(v),
            importance=round(abs(v) / largest, 3) if largest > 0 else 0.0,
            share=round(abs(v) / total, 3) if total > 0 else 0.0,
        )
        for name, v in ranked[:top]
    ]


def explained_metric(assessment: RiskAssessment, forecast: Forecast) -> str:
    """The forecast target to explain: the risk driver when it is a forecast target, else the one nearest its limit."""
    driver = assessment.driver
    if driver is not None and driver.metric in forecast.values and driver.score > 0:
        return driver.metric
    candidates = [m for m in assessment.metrics.values() if m.metric in forecast.values and m.limit > 0]
    if not candidates:
        return "cpu_pct"
    return max(candidates, key=lambda m: ((m.forecast_peak or m.current) / m.limit, m.score)).metric


def forecast_peak(forecast: Forecast, metric: str, steps: int = STEPS_8H) -> float:
    """The highest median forecast of ``metric`` over the risk horizon (at most 8 hours)."""
    return float(np.max(forecast.p50(metric)[:steps]))


# -- attention -----------------------------------------------------------------------------------

BLOCK_STEPS = 6  # attention is read in 30-minute blocks, counted back from the last observation


@attrs.frozen
class FocusPeriod:
    """A stretch of the encoder window the model attended to more than evenly."""

    start_epoch_s: int
    end_epoch_s: int
    attention: float  # share of the total attention (0–1)
    phrase: str
    latest: bool


def focus_periods(attention: np.ndarray, timestamps: np.ndarray, max_periods: int = 3,
                  lift: float = 1.5) -> list[FocusPeriod]:
    """The 30-minute blocks holding at least ``lift`` × their even share of attention, strongest first.

    When no block stands out, the single strongest block is returned. Phrases repeat for
    neighbouring blocks ("2 hours ago"): only the strongest of equal phrases is kept.
    """
    n = min(len(attention), len(timestamps))
    if n == 0:
        return []
    attention, timestamps = np.asarray(attention[-n:], dtype=np.float64), np.asarray(timestamps[-n:])
    last = int(timestamps[-1])
    blocks = []
    for end in range(n, 0, -BLOCK_STEPS):
        start = max(0, end - BLOCK_STEPS)
        share = float(attention[start:end].sum())
        even = (end - start) / n
        blocks.append((share, share / even if even else 0.0, start, end))
    chosen = [b for b in sorted(blocks, key=lambda b: -b[0]) if b[1] >= lift] or [max(blocks, key=lambda b: b[0])]
    out: list[FocusPeriod] = []
    for share, _, start, end in chosen:
        phrase = period_phrase(last - int(timestamps[end - 1]), last - int(timestamps[start]))
        if any(p.phrase == phrase for p in out):
            continue
        out.append(FocusPeriod(int(timestamps[start]), int(timestamps[end - 1]), round(share, 3), phrase, end == n))
        if len(out) == max_periods:
            break
    return out


def period_phrase(newest_age_s: int, oldest_age_s: int) -> str:
    """Word a period by its age: "Last 30 minutes", "45 minutes ago", "2 hours ago", "Yesterday at this time"."""
    if newest_age_s <= STEP_SECONDS:
        return f"Last {max(5, oldest_age_s // 60 + 5)} minutes"
    middle_h = (newest_age_s + oldest_age_s) / 2 / 3600
    if middle_h < 1.25:
        return f"{int(round(middle_h * 4)) * 15} minutes ago"
    if middle_h < 21.5:
        hours = int(round(middle_h))
        return f"{hours} hour{'s' if hours != 1 else ''} ago"
    if middle_h < 27:
        return "Yesterday at this time"
    return f"{int(round(middle_h / 24))} days ago"


def analysis_sentence(period: FocusPeriod | None, feature: str | None, values: np.ndarray,
                      timestamps: np.ndarray) -> str:
    """One sentence from where the model looked and what the top feature did there.

    ``values`` is the top feature in natural units over the encoder window, aligned with ``timestamps``.
    """
    if period is None:
        return "The model has no attention over the input to report"
    when = "recent" if period.latest else f"{period.phrase.lower()}"
    if feature is None or len(values) == 0:
        return f"Model focused on {period.phrase.lower()}"
    inside = values[(timestamps >= period.start_epoch_s) & (timestamps <= period.end_epoch_s)]
    if len(inside) == 0:
        return f"Model focused on {period.phrase.lower()}"
    label = FEATURE_LABELS.get(feature, feature)
    kind = _movement(inside, values)
    detail = f"{_fmt(inside[0], feature)} → {_fmt(inside[-1], feature)}"
    if period.latest:
        return f"Model focused on {when} {label} {kind} ({period.phrase.lower()}: {detail})"
    return f"Model focused on the {label} {kind} {when} ({detail})"


def _movement(inside: np.ndarray, whole: np.ndarray) -> str:
    spread = max(float(np.std(whole)), 1e-6)
    change = float(inside[-1] - inside[0])
    if float(np.max(inside)) >= float(np.quantile(whole, 0.9)) and np.max(inside) - np.median(whole) > spread:
        return "spike"
    if change > 0.5 * spread:
        return "rise"
    if change < -0.5 * spread:
        return "drop"
    if float(np.min(inside)) <= float(np.quantile(whole, 0.1)) and np.median(whole) - np.min(inside) > spread:
        return "dip"
    return "level"


def _fmt(value: float, feature: str) -> str:
    unit = "%" if feature.endswith("_pct") else ""
    return f"{float(value):.1f}{unit}"


# -- counterfactuals -------------------------------------------------------------------------------

EFFECT_STEPS = actions.EFFECT_STEPS  # a scenario rewrites the last hour: "as if the operator had acted an hour ago"


@attrs.frozen
class Scenario:
    """An operator action, as a change of the recorded window the model and the risk scorer re-read."""

    id: str
    label: str
    features: frozenset[str]  # the features it acts on: listed only when one of them matters for the server
    changes: str  # what is changed in the window, in words
    apply: Callable[[np.ndarray], np.ndarray]  # METRIC_FIELDS rows (oldest first) -> changed copy
    recommendations: Mapping[str, str]  # profile name -> text; "default" for every other profile

    def recommendation(self, profile: str) -> str:
        return self.recommendations.get(profile, self.recommendations["default"])

    @classmethod
    def advised_for(cls, metric: RiskMetric) -> Scenario | None:
        """The scenario of the metric's own advice (None without), acting on the features that stand for it."""
        advice = metric.advice
        if advice is None:
            return None
        return cls(advice.id, advice.label, frozenset(metric.explained_by), advice.changes, advice.apply,
                   advice.recommendations)


#: Actions on several metrics, or on covariates only: no single row of the metric table owns them.
SHARED_SCENARIOS: tuple[Scenario, ...] = (
    Scenario("shed_cpu", "Shed 30% of CPU load", frozenset({"cpu_pct", "load", "cpu_user_pct", "cpu_sys_pct",
                                                            "java_cpu_pct"}),
             "CPU busy time (100 − idle), user, system and Java CPU and load × 0.7 over the last hour",
             actions.shed_cpu,
             {"default": "Move or throttle CPU-heavy work on this server",
              "web_api": "Scale out: add an instance behind the load balancer",
              "ml_compute": "Lower job parallelism or move a job to another node",
              "etl": "Stagger the ingestion jobs or lower their concurrency"}),
    Scenario("restart", "Restart the service", frozenset({"mem_pct", "swap_pct", "back_close_wait",
                                                          "front_close_wait"}),
             "as after a restart an hour ago: swap and CLOSE_WAIT 0, memory no higher than its low of the last "
             "day (5th percentile); uptime is not a model input, so it plays no part", actions.restart,
             {"default": "Schedule a restart of the service in a quiet period",
              "database": "Fail over to a replica, then restart the database",
              "web_api": "Do a rolling restart of the instances"}),
    Scenario("throttle_network", "Throttle network traffic by 30%", frozenset({"net_in_mb_s", "net_out_mb_s"}),
             "net_in_mb_s and net_out_mb_s × 0.7 over the last hour",
             actions.scale(("net_in_mb_s", "net_out_mb_s"), 0.7),
             {"default": "Rate-limit or move bulk transfers off-peak"}),
)


def scenarios(table: MetricTable = METRICS) -> tuple[Scenario, ...]:
    """Every scenario: each metric's own advice, in table order, then the shared ones."""
    own = (Scenario.advised_for(metric) for metric in table)
    return (*(scenario for scenario in own if scenario is not None), *SHARED_SCENARIOS)


SCENARIOS: tuple[Scenario, ...] = scenarios()


def relevant_scenarios(features: Sequence[str], driver: str | None = None,
                       missing: Sequence[str] = (), table: MetricTable = METRICS) -> list[Scenario]:
    """The scenarios acting on one of ``features`` (the server's top features) or on its risk driver.

    The driver counts through the features standing for it (close_wait: both CLOSE_WAIT counts).
    A feature in ``missing`` (the server's source lacks it) makes no scenario relevant, and a
    scenario acting only on missing features is never listed: it would change nothing real.
    """
    wanted = set(features)
    if driver:
        wanted |= {driver, *(table[driver].explained_by if driver in table else ())}
    wanted -= set(missing)
    return [s for s in scenarios(table) if s.features & wanted and s.features - set(missing)]


def impact_text(before: float, after: float) -> str:
    """``Risk drops from 72.5 to 45.2``, ``Risk rises from ...`` or ``Risk stays at 72.5``."""
    if round(after, 1) < round(before, 1):
        return f"Risk drops from {before:.1f} to {after:.1f}"
    if round(after, 1) > round(before, 1):
        return f"Risk rises from {before:.1f} to {after:.1f}"
    return f"Risk stays at {before:.1f}"


# -- what an explainer is given ------------------------------------------------------------------


@attrs.define(eq=False)
class ExplanationContext:
    """One server on one tick, as explainers see it; ``sections`` fills up as explainers run, in order.

    ``forecaster`` is the engine's Forecaster (``forecast(windows, profiles) -> {name: Forecast}``):
    explainers that re-run the model call it with changed copies of ``window``. ``limits`` and
    ``normal`` are what the tick scored the server against (its LimitPolicy applied to ``window``):
    a re-run scored against anything else would not reproduce the tick's risk score.
    """

    server_name: str
    profile: ServerProfile
    assessment: RiskAssessment
    forecast: Forecast
    window: MetricsWindow
    forecaster: Any
    at: datetime
    sections: dict[str, Any] = attrs.Factory(dict)
    limits: Limits | None = None  # None: the profile's absolute limits
    normal: Mapping[str, float] = attrs.Factory(dict)  # each metric's normal ceiling on the tick

    @property
    def tick_limits(self) -> Limits:
        """The limits the tick applied: ``limits`` when given, else the profile's."""
        return self.limits if self.limits is not None else self.profile.limits

    def top_features(self, n: int = 3, min_importance: float = 0.0) -> list[str]:
        """The SHAP section's top features when it ran, else the model's own variable-selection weights.

        ``min_importance`` drops features weighing less than that share of the top one; a missing
        feature (``missing_features``) is never one of them, whatever weight the model gave its stand-in.
        """
        missing = set(self.missing_features())
        shap = self.sections.get("shap")
        if isinstance(shap, Mapping) and shap.get("top_features"):
            ranked = [(item["feature"], float(item["importance"])) for item in shap["top_features"]
                      if item["feature"] not in missing]
        else:
            weights: dict[str, float] = {}
            for name, weight in self.forecast.encoder_importance.items():
                feature = MODEL_VARIABLES.get(name)
                if feature is not None and feature not in missing:
                    weights[feature] = weights.get(feature, 0.0) + float(weight)
            ranked = [(f.feature, f.importance) for f in rank_importances(weights, n)]
        return [feature for feature, importance in ranked[:n] if importance >= min_importance or importance == 1.0]

    def missing_features(self) -> list[str]:
        """The features the server's source lacks (see ``missing_features``), in FEATURES order."""
        return missing_features(self.window, self.encoder_rows())

    def encoder_rows(self) -> slice:
        """The rows of ``window`` the model read (its encoder), from the forecast's encoder timestamps."""
        ts = self.window.timestamps
        if len(self.forecast.encoder_timestamps) == 0:
            return slice(max(0, len(ts) - 288), len(ts))
        first = int(self.forecast.encoder_timestamps[0]) - STEP_SECONDS // 2
        return slice(int(np.searchsorted(ts, first, side="left")), len(ts))
