"""Calibrated incident probabilities: a monotone map from the forecast's raw P(incident) to a frequency.

The raw probability of a server reads the forecast's quantiles (risk.exceedance_probability) and
combines its metrics; a forecast band that is too wide or too narrow makes it say 30 % where one
time in ten is what happens. A calibration map, fitted on replays of held-back data (isotonic
regression of "an incident started within the horizon" on the raw probability), is a
non-decreasing piecewise-linear function per horizon: served probabilities then mean what they
say — "the probability that this server breaches a critical limit within 30 minutes (8 hours)".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import attrs
import numpy as np


def _knots(value: Sequence[Sequence[float]]) -> tuple[tuple[float, ...], tuple[float, ...]]:
    xs, ys = (tuple(float(v) for v in seq) for seq in value)
    if len(xs) != len(ys) or len(xs) < 2:
        raise ValueError("a calibration map needs at least two (x, y) knots of equal length")
    if any(b < a for a, b in zip(xs, xs[1:], strict=False)) or any(b < a for a, b in zip(ys, ys[1:], strict=False)):
        raise ValueError("a calibration map must be non-decreasing in x and y")
    if not (min(ys) >= 0.0 and max(ys) <= 1.0):
        raise ValueError("calibrated probabilities must lie in [0, 1]")
    return xs, ys


@attrs.frozen
class CalibrationMap:
    """Non-decreasing piecewise-linear map raw → calibrated probability through ``(xs, ys)`` knots."""

    xs: tuple[float, ...]
    ys: tuple[float, ...]

    def __call__(self, raw: float) -> float:
        return float(np.interp(raw, self.xs, self.ys))

    @classmethod
    def from_knots(cls, knots: Sequence[Sequence[float]]) -> CalibrationMap:
        xs, ys = _knots(knots)
        return cls(xs, ys)

    def to_knots(self) -> list[list[float]]:
        return [[round(x, 6) for x in self.xs], [round(y, 6) for y in self.ys]]


@attrs.frozen
class ProbabilityCalibration:
    """The maps of P(30 min) and P(8 h), one per stratum of the server's recent breach share.

    The same raw probability means more on a server that breached a limit in 3 % of its last week's
    steps than on one that never did: ``edges`` cut the breach share into strata (share ≤ edges[0],
    ≤ edges[1], ..., above the last), each with its own map. ``apply`` keeps P(8 h) ≥ P(30 min).
    """

    maps_30m: tuple[CalibrationMap, ...]
    maps_8h: tuple[CalibrationMap, ...]
    edges: tuple[float, ...] = ()
    stratified_by: str = "breach_share_7d"  # or breach_age_minutes (a BreachHistory feature)
    method: str = "isotonic"
    fitted_on: Mapping[str, object] = attrs.field(factory=dict)

    def __attrs_post_init__(self) -> None:
        if not (len(self.maps_30m) == len(self.maps_8h) == len(self.edges) + 1):
            raise ValueError("a calibration needs one map per horizon for each of len(edges) + 1 strata")

    def stratum(self, value: float) -> int:
        return int(np.searchsorted(self.edges, value, side="left"))

    def apply(self, raw_30m: float, raw_8h: float, breaches: object = None) -> tuple[float, float]:
        """Map the raw probabilities through the maps of ``breaches``' stratum (a BreachHistory; None: the first)."""
        k = 0 if breaches is None else self.stratum(breaches.feature(self.stratified_by))  # type: ignore[attr-defined]
        p30 = self.maps_30m[k](raw_30m)
        return p30, max(self.maps_8h[k](raw_8h), p30)

    def to_manifest(self) -> dict[str, object]:
        return {"method": self.method, "stratified_by": self.stratified_by, "edges": list(self.edges),
                "30m": [m.to_knots() for m in self.maps_30m], "8h": [m.to_knots() for m in self.maps_8h],
                "fitted_on": dict(self.fitted_on)}

    @classmethod
    def from_manifest(cls, section: Mapping[str, object] | None) -> ProbabilityCalibration | None:
        """The manifest's ``probability_calibration`` section, or None for a model without one."""
        if not section:
            return None
        maps = {h: tuple(CalibrationMap.from_knots(k) for k in _per_stratum(section[h])) for h in ("30m", "8h")}
        edges = tuple(float(e) for e in section.get("edges") or ())  # type: ignore[attr-defined]
        return cls(maps["30m"], maps["8h"], edges, stratified_by=str(section.get("stratified_by", BREACH_SHARE)),
                   method=str(section.get("method", "isotonic")),
                   fitted_on=dict(section.get("fitted_on") or {}))  # type: ignore[call-overload]


def _per_stratum(knots: object) -> list[Any]:
    """A list of [xs, ys] per stratum; a single unstratified [xs, ys] is one stratum."""
    if isinstance(knots, list) and len(knots) == 2 and knots and all(
            isinstance(v, int | float) for v in knots[0]):
        return [knots]
    return list(knots)  # type: ignore[call-overload, no-any-return]


#: What the strata are cut on by default: the share of the server's last 7 days' steps over a limit.
BREACH_SHARE = "breach_share_7d"
BREACH_EDGES = (0.0, 0.01)  # never, up to 1 % of steps, more


def isotonic_knots(raw: np.ndarray, outcomes: np.ndarray, max_knots: int = 200, min_block: int = 1) -> CalibrationMap:
    """Fit a non-decreasing map by pool-adjacent-violators on (raw, outcome) pairs.

    Blocks of fewer than ``min_block`` samples are pooled with their closest neighbour (a level
    measured on a handful of samples is noise). Knots sit at the centres of the pooled blocks,
    thinned to ``max_knots``; the ends are pinned to
    raw 0 and 1 (flat beyond the data), so the map is defined on the whole unit interval.
    """
    raw = np.asarray(raw, dtype=np.float64)
    outcomes = np.asarray(outcomes, dtype=np.float64)
    if len(raw) == 0:
        raise ValueError("no samples to calibrate on")
    order = np.argsort(raw, kind="stable")
    x, y = raw[order], outcomes[order]
    # pool ties in x first, so the map is a function of the raw value
    ux, start = np.unique(x, return_index=True)
    sums = np.add.reduceat(y, start)
    counts = np.diff(np.append(start, len(x))).astype(np.float64)
    values: list[float] = []
    weights: list[float] = []
    lefts: list[float] = []
    rights: list[float] = []
    for xv, s, c in zip(ux, sums, counts, strict=True):
        values.append(s / c)
        weights.append(c)
        lefts.append(xv)
        rights.append(xv)
        while len(values) > 1 and values[-2] > values[-1]:
            w = weights[-2] + weights[-1]
            v = (values[-2] * weights[-2] + values[-1] * weights[-1]) / w
            right = rights[-1]
            for seq in (values, weights, lefts, rights):
                seq.pop()
            values[-1], weights[-1], rights[-1] = v, w, right
    while len(values) > 1 and min(weights) < min_block:  # too few samples to trust: pool with a neighbour
        i = int(np.argmin(weights))
        closer_left = i == len(values) - 1 or (i > 0 and values[i] - values[i - 1] <= values[i + 1] - values[i])
        j = i - 1 if closer_left else i + 1
        a, b = min(i, j), max(i, j)
        w = weights[a] + weights[b]
        values[a] = (values[a] * weights[a] + values[b] * weights[b]) / w
        weights[a], rights[a] = w, rights[b]
        for seq in (values, weights, lefts, rights):
            del seq[b]
    centres = np.array([(a + b) / 2 for a, b in zip(lefts, rights, strict=True)])
    levels, weights_ = np.array(values), np.array(weights)
    if len(centres) > max_knots:  # merge neighbouring blocks into groups of about equal weight
        group = np.minimum((np.cumsum(weights_) - weights_ / 2) * max_knots // weights_.sum(), max_knots - 1)
        _, first = np.unique(group, return_index=True)
        total = np.add.reduceat(weights_, first)
        centres = np.add.reduceat(centres * weights_, first) / total
        levels = np.add.reduceat(levels * weights_, first) / total
    xs = np.concatenate([[0.0], centres, [1.0]])
    ys = np.concatenate([[levels[0]], levels, [levels[-1]]])
    xs, idx = np.unique(xs, return_index=True)
    ys = np.maximum.accumulate(ys[idx])
    if len(xs) < 2:
        xs, ys = np.array([0.0, 1.0]), np.array([ys[0], ys[0]])
    return CalibrationMap(tuple(float(v) for v in xs), tuple(float(np.clip(v, 0.0, 1.0)) for v in ys))
