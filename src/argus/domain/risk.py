"""Risk: from the current state and the quantile forecast to crossing probabilities and a 0–100 score.

The score of a server is the worst of its metrics' scores; each metric's score is the worst of
four monotone parts (see docs/risk.md for the plain-words version):

* **over now**: the metric is at or over its limit now → 80–100 (critical);
* **predicted crossing**: the median (p50) forecast reaches the limit within the horizon →
  80–100 within the hour, 60–80 later, higher when sooner and when the crossing is more certain;
* **possible crossing**: no median crossing, but the probability of reaching the limit within
  8 hours is p → 200·p up to p = 0.25, then 50 + 40·(p − 0.25), at most 59.9 (degraded from a
  one-in-four chance, never a warning on its own);
* **elevation**: the lower of the latest value and the last hour's mean ("elevated"), or the
  median forecast's peak ("approaching"), as a share e of the limit → 55·(e − 0.5)/0.45 clipped
  to 0–55 (degraded from 95% of the limit).

Every part is non-decreasing in every input getting worse (a higher value, a higher forecast
quantile, a lower limit), and so is a maximum of them: the score never drops when things worsen.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

import attrs
import numpy as np

from argus.domain.alerts import AlertLevel
from argus.domain.forecast import Forecast
from argus.domain.metric_table import METRICS, MetricTable
from argus.domain.metrics import STEP_SECONDS, MetricsWindow
from argus.domain.probability import ProbabilityCalibration
from argus.domain.profiles import LimitPolicy, Limits

STEPS_30M = 30 * 60 // STEP_SECONDS
STEPS_1H = 60 * 60 // STEP_SECONDS
STEPS_8H = 8 * 60 * 60 // STEP_SECONDS
_Z90 = 1.2815515655446004  # standard normal quantile of 0.9

#: Limit attribute of each metric in Limits: its key (a derived view of the metric table, for callers).
LIMIT_OF = {metric.key: metric.key for metric in METRICS}


def current_values(window: MetricsWindow, table: MetricTable = METRICS) -> dict[str, float]:
    """The latest observation of every risk metric (cpu_pct is 100 − idle)."""
    return values_from_row(window.values[-1], table)


def values_from_row(row: Sequence[float], table: MetricTable = METRICS) -> dict[str, float]:
    """Every risk metric of one record's values (aligned with METRIC_FIELDS), as the table reads it.

    close_wait is the larger CLOSE_WAIT count the record has: NaN only when it lacks both (its source
    cannot count them; ``assess`` then leaves the metric out).
    """
    return {metric.key: metric.value(row) for metric in table}


def recent_means(window: MetricsWindow, steps: int = STEPS_1H, table: MetricTable = METRICS) -> dict[str, float]:
    """The mean of every risk metric over the last ``steps`` observations (of those that have it: NaN when none).

    Each field is averaged first, then the metric read from the means (close_wait: the larger mean count).
    """
    tail = window.values[-steps:].astype(np.float64)
    known = np.isfinite(tail)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = np.where(known, tail, 0.0).sum(axis=0) / known.sum(axis=0)
    return values_from_row(means, table)


def metric_matrix(values: np.ndarray, table: MetricTable = METRICS) -> dict[str, np.ndarray]:
    """Every risk metric's series from a window's values (rows oldest first, columns METRIC_FIELDS)."""
    return table.read(np.asarray(values, dtype=np.float64))


def server_limits(limits: Limits, policy: LimitPolicy, window: MetricsWindow,
                  table: MetricTable = METRICS) -> tuple[Limits, dict[str, float]]:
    """The limits that apply to this server now, and each metric's normal ceiling (see LimitPolicy).

    The normal ceiling is the policy's quantile of the metric over the last ``lookback_steps`` before
    the most recent ``recent_steps``; it is empty under ``absolute`` or with too little history.
    """
    if policy.mode == "absolute" or len(window) < policy.recent_steps + policy.min_steps:
        return limits, {}
    series = metric_matrix(window.values[-policy.lookback_steps:-policy.recent_steps], table)
    normal = {}
    for m in table:
        known = series[m.key][np.isfinite(series[m.key])]  # a missing field (NaN) has no normal ceiling
        if getattr(limits, m.key) is not None and len(known):
            normal[m.key] = float(np.quantile(known, policy.quantile))
    if policy.mode == "both":
        return limits, normal
    learned = {}
    for metric, ceiling in normal.items():
        absolute = float(getattr(limits, metric))
        bound = table[metric].upper_bound
        if bound is not None:  # a percentage: a margin in points, capped at 100
            learned[metric] = max(0.5 * absolute, min(ceiling + policy.margin_points, bound))
        else:
            learned[metric] = max(0.5 * absolute, ceiling * (1 + policy.margin_share))
    return attrs.evolve(limits, **learned), normal


@attrs.frozen
class BreachHistory:
    """How often and how lately the server was over a limit in its last 7 days (the calibration's strata)."""

    share: float = 0.0  # of the steps with any limited metric at or over its limit
    age_minutes: float = math.inf  # since the latest such step before the current one (inf: none)

    def feature(self, name: str) -> float:
        return {"breach_share_7d": self.share, "breach_age_minutes": self.age_minutes}[name]


def breach_history(limits: Limits, window: MetricsWindow, steps: int = 7 * 288,
                   table: MetricTable = METRICS) -> BreachHistory:
    """The share of the last ``steps`` observations over a limit, and the age of the latest one before now."""
    series = metric_matrix(window.values[-steps:], table)
    over = np.zeros(len(next(iter(series.values()))), dtype=bool)
    for metric in table:
        limit = getattr(limits, metric.key)
        if limit is not None:
            over |= series[metric.key] >= limit
    if not len(over):
        return BreachHistory()
    before = np.flatnonzero(over[:-1])
    ts = window.timestamps[-len(over):]
    age = math.inf if not len(before) else float(ts[-1] - ts[before[-1]]) / 60.0
    return BreachHistory(float(over.mean()), age)


def exceedance_probability(p10: np.ndarray, p50: np.ndarray, p90: np.ndarray, limit: float) -> np.ndarray:
    """P(value ≥ limit) per step, from a two-piece normal through the p10/p50/p90 forecast.

    Exact at the three quantiles, monotone in the limit and in every quantile; a zero-width side
    becomes a step function.
    """
    p10, p50, p90 = (np.asarray(a, dtype=np.float64) for a in (p10, p50, p90))
    p90 = np.maximum(p90, p50)
    p10 = np.minimum(p10, p50)
    above = limit >= p50
    sigma = np.where(above, (p90 - p50) / _Z90, (p50 - p10) / _Z90)
    safe_sigma = np.where(sigma > 0, sigma, 1.0)
    with np.errstate(over="ignore"):
        # a zero-width side is a point mass at p50 holding that half: P(value >= p50) is then 0.5
        z = np.where(sigma > 0, (limit - p50) / safe_sigma,
                     np.where(limit > p50, np.inf, np.where(limit == p50, 0.0, -np.inf)))
    return normal_sf(z)


def normal_sf(z: np.ndarray) -> np.ndarray:
    """P(Z ≥ z) for a standard normal Z (Abramowitz & Stegun 7.1.26, error < 1.5e-7), vectorised."""
    z = np.asarray(z, dtype=np.float64)
    x = np.abs(z) / math.sqrt(2.0)
    t = 1.0 / (1.0 + 0.3275911 * np.where(np.isfinite(x), x, 0.0))
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    with np.errstate(over="ignore", invalid="ignore"):
        erfc_abs = np.where(np.isfinite(x), poly * np.exp(-x * x), 0.0)  # erfc(|z|/sqrt 2)
    return np.where(z >= 0, 0.5 * erfc_abs, 1.0 - 0.5 * erfc_abs)


@attrs.frozen
class MetricRisk:
    """The risk of one metric of one server."""

    metric: str
    limit: float
    current: float
    score: float
    over_now: bool
    prob_30m: float
    prob_8h: float
    minutes_to_p50_crossing: float | None
    minutes_to_p90_crossing: float | None
    cause: str  # over_now | predicted | possible | approaching | elevated | none
    forecast_peak: float | None = None  # highest median forecast over the horizon


def score_metric(
    metric: str,
    limit: float,
    current: float,
    sustained: float,
    forecast: Forecast | None,
    normal: float | None = None,
) -> MetricRisk:
    """Score one metric from its limit, current and sustained values, and (if any) its forecast.

    ``normal`` is the server's own normal ceiling of the metric (LimitPolicy): elevation then counts
    from it instead of from half the limit, when it is higher.
    """
    over_now = current >= limit
    parts = {"none": 0.0}
    if over_now:
        parts["over_now"] = 80.0 + 20.0 * _clip((current - limit) / max(0.1 * abs(limit), 1e-6))
    prob_30m = prob_8h = 1.0 if over_now else 0.0
    t50 = t90 = None
    peak_p50 = -math.inf
    if forecast is not None and metric in forecast.values:
        p10, p50, p90 = (forecast.quantile(metric, q) for q in (0.1, 0.5, 0.9))
        horizon = min(len(p50), STEPS_8H)
        probs = exceedance_probability(p10[:horizon], p50[:horizon], p90[:horizon], limit)
        if not over_now:
            prob_30m = float(probs[:STEPS_30M].max(initial=0.0))
            prob_8h = float(probs.max(initial=0.0))
        t50 = _first_crossing_minutes(p50[:horizon], limit)
        t90 = _first_crossing_minutes(p90[:horizon], limit)
        peak_p50 = float(p50[:horizon].max(initial=-math.inf))
        if t50 is not None:
            certainty = _clip((max(prob_8h, 0.5) - 0.5) / 0.5)
            if t50 <= 60:
                parts["predicted"] = 80.0 + 12.0 * (1.0 - t50 / 60.0) + 8.0 * certainty
            else:
                parts["predicted"] = 60.0 + 12.0 * (1.0 - (t50 - 60.0) / 420.0) + 7.9 * certainty
        parts["possible"] = _possible_score(prob_8h)
    if limit > 0:
        parts["elevated"] = _elevation_score(_share(min(current, sustained), limit, normal))
        parts["approaching"] = _elevation_score(_share(peak_p50, limit, normal))
    cause = max(parts, key=lambda k: (parts[k], _CAUSE_PRIORITY[k]))
    score = parts[cause]
    if over_now:
        cause = "over_now"  # the message says what is true now, whatever scored highest
    return MetricRisk(
        metric=metric, limit=limit, current=current, score=round(min(100.0, score), 1),
        over_now=over_now, prob_30m=prob_30m, prob_8h=prob_8h,
        minutes_to_p50_crossing=t50, minutes_to_p90_crossing=t90, cause=cause if parts[cause] > 0 else "none",
        forecast_peak=None if peak_p50 == -math.inf else peak_p50,
    )


def _possible_score(prob_8h: float) -> float:
    """200·p up to p = 0.25 (degraded from a one-in-four chance), then slowly to 59.9: never a warning."""
    return 200.0 * prob_8h if prob_8h <= 0.25 else min(59.9, 50.0 + 40.0 * (prob_8h - 0.25))


def _share(value: float, limit: float, normal: float | None) -> float:
    """``value`` as a share of ``limit``; a normal ceiling N above half the limit maps to 0.5, the limit to 1."""
    if normal is None or normal <= 0.5 * limit or limit - normal < 1e-6 * max(abs(limit), 1.0):
        return value / limit
    return 0.5 + 0.5 * (value - normal) / (limit - normal)


def _elevation_score(share_of_limit: float) -> float:
    """0 up to half the limit, rising to 55 (degraded) at 95% of it."""
    return 55.0 * _clip((share_of_limit - 0.5) / 0.45)


def earliest_crossing(risks: Iterable[MetricRisk]) -> tuple[float | None, bool, str | None]:
    """(minutes, from p90 only, metric) of the earliest median crossing, else the earliest p90 crossing."""
    pending = [r for r in risks if not r.over_now]
    by_median = [(r.minutes_to_p50_crossing, r.metric) for r in pending if r.minutes_to_p50_crossing is not None]
    if by_median:
        minutes, metric = min(by_median)
        return minutes, False, metric
    by_band = [(r.minutes_to_p90_crossing, r.metric) for r in pending if r.minutes_to_p90_crossing is not None]
    if by_band:
        minutes, metric = min(by_band)
        return minutes, True, metric
    return None, False, None


_CAUSE_PRIORITY = {"over_now": 5, "predicted": 4, "possible": 3, "elevated": 2, "approaching": 1, "none": 0}


def _first_crossing_minutes(path: np.ndarray, limit: float) -> float | None:
    hits = np.flatnonzero(path >= limit)
    return None if len(hits) == 0 else float((hits[0] + 1) * STEP_SECONDS / 60)


def _clip(x: float) -> float:
    return 0.0 if x <= 0 else 1.0 if x >= 1 else float(x)


@attrs.frozen
class RiskAssessment:
    """A server's risk on one tick: the score, its level, the metric that drives it and why."""

    server_name: str
    profile: str
    score: float
    level: AlertLevel
    driver: MetricRisk | None
    metrics: Mapping[str, MetricRisk]
    prob_30m: float
    prob_8h: float
    anomaly: float  # band widths outside the earlier forecasts' p10–p90 band (0 = inside)
    anomaly_metric: str | None
    message: str
    maintenance: bool = False
    raw_prob_30m: float | None = None  # before the calibration map (None: no map, same as prob_30m)
    raw_prob_8h: float | None = None
    breaches: BreachHistory = BreachHistory()  # the last 7 days' breaches: the calibration's strata

    @property
    def time_to_issue_minutes(self) -> float | None:
        """Minutes until the earliest predicted crossing of a metric not over its limit now.

        The median's crossing when any median crosses within 8 hours; otherwise the p90's
        (``time_to_issue_possible`` is then True); None when no band reaches a limit.
        """
        return self._issue()[0]

    @property
    def time_to_issue_possible(self) -> bool:
        """True when ``time_to_issue_minutes`` comes from the p90 only ("possible in ~3 hours")."""
        return self._issue()[1]

    @property
    def issue_metric(self) -> str | None:
        """The metric whose crossing ``time_to_issue_minutes`` times."""
        return self._issue()[2]

    def _issue(self) -> tuple[float | None, bool, str | None]:
        return earliest_crossing(self.metrics.values())


#: Anomaly at or above this many band widths outside the predicted band makes a server degraded.
ANOMALY_DEGRADED = 1.0


def assess(
    server_name: str,
    profile: str,
    limits: Limits,
    current: Mapping[str, float],
    sustained: Mapping[str, float],
    forecast: Forecast | None,
    anomaly: float = 0.0,
    anomaly_metric: str | None = None,
    maintenance: bool = False,
    calibration: ProbabilityCalibration | None = None,
    normal: Mapping[str, float] | None = None,
    breaches: BreachHistory | None = None,
    table: MetricTable = METRICS,
) -> RiskAssessment:
    """Score every limited metric of ``table`` and combine: the worst metric drives the server's score.

    The server's probabilities combine its metrics' as if independent, then go through the model's
    calibration map when it has one (a metric over its limit now keeps probability 1, except during
    maintenance, whose records are never an incident).
    """
    risks: dict[str, MetricRisk] = {}
    for row in table:
        metric, limit = row.key, getattr(limits, row.key)
        if limit is None or metric not in current or not math.isfinite(current[metric]):
            continue  # a metric the server's source lacks (NaN) is no risk, and no driver
        metric_forecast = forecast if row.forecast else None
        sustained_value = sustained.get(metric, current[metric])
        risks[metric] = score_metric(metric, float(limit), current[metric],
                                     sustained_value if math.isfinite(sustained_value) else current[metric],
                                     metric_forecast, (normal or {}).get(metric))
    driver = max(risks.values(), key=lambda r: (r.score, _CAUSE_PRIORITY[r.cause]), default=None)
    score = driver.score if driver else 0.0
    anomaly_score = min(59.9, 50.0 + 5.0 * (anomaly - ANOMALY_DEGRADED)) if anomaly >= ANOMALY_DEGRADED else 0.0
    anomalous = anomaly_score > score
    score = max(score, anomaly_score)
    raw_30m = 1.0 - math.prod(1.0 - r.prob_30m for r in risks.values())
    raw_8h = max(1.0 - math.prod(1.0 - r.prob_8h for r in risks.values()), raw_30m)
    prob_30m, prob_8h = raw_30m, raw_8h
    breaching = any(r.over_now for r in risks.values()) and not maintenance  # maintenance is never an incident
    if calibration is not None and not breaching:
        prob_30m, prob_8h = calibration.apply(raw_30m, raw_8h, breaches or BreachHistory())
    level = AlertLevel.for_score(score)
    return RiskAssessment(
        server_name=server_name, profile=profile, score=round(score, 1), level=level,
        driver=driver, metrics=risks, prob_30m=prob_30m, prob_8h=prob_8h,
        anomaly=round(anomaly, 2), anomaly_metric=anomaly_metric,
        message=_message(driver, level, anomalous, anomaly_metric, prob_8h, table), maintenance=maintenance,
        raw_prob_30m=raw_30m, raw_prob_8h=raw_8h, breaches=breaches or BreachHistory(),
    )


def _message(driver: MetricRisk | None, level: AlertLevel, anomalous: bool, anomaly_metric: str | None,
             prob_8h: float, table: MetricTable) -> str:
    if anomalous and anomaly_metric:
        return f"{table[anomaly_metric].title} outside its predicted band"
    if driver is None or level is AlertLevel.HEALTHY:
        return "All metrics within limits"
    row = table[driver.metric]
    limit = _fmt(driver.limit, row.unit)
    if driver.cause == "over_now":
        return f"{row.now_phrase} ({_fmt(driver.current, row.unit)} ≥ {limit})"
    chance = f"{round(100 * prob_8h)}% chance"
    if driver.cause == "predicted" and driver.minutes_to_p50_crossing is not None:
        when = format_duration(driver.minutes_to_p50_crossing)
        return f"{row.incident} predicted in {when} (limit {limit}, {chance})"
    if driver.cause == "possible":
        p90_at = driver.minutes_to_p90_crossing
        in_when = f" in ~{format_duration(p90_at)}" if p90_at is not None else " within 8 hours"
        return f"{row.incident} possible{in_when} (limit {limit}, {chance})"
    if driver.cause == "approaching" and driver.forecast_peak is not None:
        return f"{row.title} expected to reach {_fmt(driver.forecast_peak, row.unit)} (limit {limit})"
    return f"{row.title} elevated at {_fmt(driver.current, row.unit)} (limit {limit})"


def _fmt(value: float, unit: str) -> str:
    number = f"{value:.1f}".rstrip("0").rstrip(".")
    return number + unit if unit in ("", "%") else f"{number} {unit}"


def format_duration(minutes: float) -> str:
    """``45 minutes``, ``1 hour``, ``2 hours 15 minutes``."""
    total = int(round(minutes))
    hours, rest = divmod(total, 60)
    parts = []
    if hours:
        parts.append(f"{hours} hour{'s' if hours != 1 else ''}")
    if rest or not hours:
        parts.append(f"{rest} minute{'s' if rest != 1 else ''}")
    return " ".join(parts)


@attrs.frozen
class FleetSummary:
    """Counts per level, fleet health, and how many incidents the fleet should expect (see docs/risk.md).

    ``prob_30m``/``prob_8h`` are the probability that at least one server breaches a limit within
    30 minutes / 8 hours, as if servers failed independently: 1 − Π(1 − pᵢ). In a large fleet that
    is ~100 % as soon as one server is critical, so it says little; ``expected_incidents_*`` (Σ pᵢ,
    the expected number of servers with an incident) and ``servers_above_50pct_*`` (servers with
    pᵢ > 0.5) are what the page shows.
    """

    total_servers: int
    critical: int
    warning: int
    degraded: int
    healthy: int
    fleet_health: float
    prob_30m: float
    prob_8h: float
    expected_incidents_30m: float
    expected_incidents_8h: float
    servers_above_50pct_30m: int
    servers_above_50pct_8h: int


def summarize(assessments: Sequence[RiskAssessment]) -> FleetSummary:
    """Sum up a tick: ``fleet_health`` = 100 − mean risk score; probabilities and expected counts per horizon."""
    counts = {level: 0 for level in AlertLevel}
    for assessment in assessments:
        counts[assessment.level] += 1
    n = len(assessments)
    health = 100.0 - (sum(a.score for a in assessments) / n if n else 0.0)
    p30 = [a.prob_30m for a in assessments]
    p8h = [a.prob_8h for a in assessments]
    return FleetSummary(
        total_servers=n,
        critical=counts[AlertLevel.CRITICAL],
        warning=counts[AlertLevel.WARNING],
        degraded=counts[AlertLevel.DEGRADED],
        healthy=counts[AlertLevel.HEALTHY],
        fleet_health=round(health, 1),
        prob_30m=round(1.0 - math.prod(1.0 - p for p in p30), 4),
        prob_8h=round(1.0 - math.prod(1.0 - p for p in p8h), 4),
        expected_incidents_30m=round(math.fsum(p30), 2),
        expected_incidents_8h=round(math.fsum(p8h), 2),
        servers_above_50pct_30m=sum(p > 0.5 for p in p30),
        servers_above_50pct_8h=sum(p > 0.5 for p in p8h),
    )
