"""The metric table: every fact about a risk metric in one row, which every layer reads.

A risk metric is what a server is scored on: it is read from a record's fields, has a limit in
each profile's ``Limits``, is named in messages, may be forecast (and then has a scale floor and a
narrowest anomaly band) and may carry the operator's advice a counterfactual tries. Risk, anomaly,
explanation, the model's features and the HTTP bodies derive their per-metric constants from
``METRICS``; docs/risk.md "Adding a metric" says what else a new row needs.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

import attrs
import numpy as np

from argus.domain import actions
from argus.domain.metrics import FIELD_INDEX

#: A field's values: one record's (a float) or a column of many (an array, in the rows' dtype).
Reading = TypeVar("Reading", float, np.ndarray)
#: The metric from its fields' readings, in ``fields`` order (a function of Readings, as below).
Derive = Callable[..., Any]


def as_recorded(value: Reading) -> Reading:
    """The field itself."""
    return value


def busy_share(idle_pct: Reading) -> Reading:
    """The share of time not idle: CPU busy = 100 − idle (user, system and I/O wait together)."""
    return 100.0 - idle_pct


def larger(*values: Reading) -> Reading:
    """The largest of the fields that are there: NaN only when all are missing."""
    return functools.reduce(np.fmax, values)


@attrs.frozen
class Advice:
    """An operator action that relieves one metric, as an edit of the recorded window (a counterfactual)."""

    id: str
    label: str
    changes: str  # what is changed in the window, in words
    apply: actions.Edit
    recommendations: Mapping[str, str]  # profile name -> text; "default" for every other profile


@attrs.frozen(kw_only=True)
class RiskMetric:
    """One risk metric: how it is read, limited, named, forecast and relieved."""

    key: str  # its name everywhere: API, Limits attribute, forecast target, explanation feature
    fields: tuple[str, ...]  # the record fields it is read from (domain.metrics.FIELDS)
    derive: Derive = as_recorded
    default_limit: float | None  # Limits' default (None: no incident on its own unless a profile sets one)
    title: str  # starts a message: "Swap usage elevated at 40%"
    label: str  # inside a sentence: "Model focused on recent swap rise"
    incident: str  # "Swap exhaustion predicted in 2 hours"
    now_phrase: str  # "Swap exhausted now (55% ≥ 50%)"
    unit: str = "%"  # after its values in messages ("%" and "" attached, "MB/s" after a space); "%": at most 100
    forecast: bool = False  # a model target: changing which rows forecast needs a retrained model
    scale_floor: float | None = None  # forecast targets: smallest per-window scale (flat series stay finite)
    min_band_width: float = 1.0  # forecast targets: narrowest p10–p90 band an anomaly is measured in
    drifts: bool = False  # fails by sustained drift (leaks, filling disks): training's drift augmentation
    advice: Advice | None = None  # the counterfactual acting on this metric alone
    related_fields: tuple[str, ...] = ()  # fields an incident label may name for it besides ``fields``
    _columns: tuple[int, ...] = attrs.field(init=False, repr=False, eq=False)

    @_columns.default
    def _field_columns(self) -> tuple[int, ...]:
        """Where ``fields`` sit in a row (an unknown field: -1, which the table refuses)."""
        return tuple(FIELD_INDEX.get(field, -1) for field in self.fields)

    @property
    def upper_bound(self) -> float | None:
        """The largest value it can take (forecasts are clipped to it); None when unbounded."""
        return 100.0 if self.unit == "%" else None

    @property
    def explained_by(self) -> tuple[str, ...]:
        """The explanation features standing for it: a forecast target itself, an observed metric its fields."""
        return (self.key,) if self.forecast else self.fields

    def series(self, values: np.ndarray) -> np.ndarray:
        """This metric from record rows (columns aligned with METRIC_FIELDS, oldest first), in the rows' dtype."""
        series: np.ndarray = self.derive(*(values[:, column] for column in self._columns))
        return series

    def value(self, row: Sequence[float]) -> float:
        """This metric from one record's values (aligned with METRIC_FIELDS), without array overhead."""
        return float(self.derive(*[float(row[column]) for column in self._columns]))


@attrs.frozen
class MetricTable:
    """The risk metrics in order (forecast targets in the model's output order); checked when built."""

    rows: tuple[RiskMetric, ...]
    _by_key: Mapping[str, RiskMetric] = attrs.field(init=False, repr=False, eq=False)

    @_by_key.default
    def _index(self) -> Mapping[str, RiskMetric]:
        return {row.key: row for row in self.rows}

    def __attrs_post_init__(self) -> None:
        problems = _problems(self.rows)
        if problems:
            raise ValueError("inconsistent metric table: " + "; ".join(problems))

    def __iter__(self) -> Iterator[RiskMetric]:
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)

    def __contains__(self, key: object) -> bool:
        return key in self._by_key

    def __getitem__(self, key: str) -> RiskMetric:
        return self._by_key[key]

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(self._by_key)

    @property
    def targets(self) -> tuple[str, ...]:
        """The forecast targets, in table order: the model's output order."""
        return tuple(row.key for row in self.rows if row.forecast)

    def read(self, values: np.ndarray) -> dict[str, np.ndarray]:
        """Every metric from record rows (columns aligned with METRIC_FIELDS), in the rows' dtype."""
        return {row.key: row.series(values) for row in self.rows}

    def extended(self, *rows: RiskMetric) -> MetricTable:
        """This table with ``rows`` added at the end, for the functions taking ``table=`` (the tests' extra metric)."""
        return MetricTable((*self.rows, *rows))


def _problems(rows: tuple[RiskMetric, ...]) -> list[str]:
    keys = [row.key for row in rows]
    problems = [f"duplicate key {key!r}" for key in sorted({k for k in keys if keys.count(k) > 1})]
    for row in rows:
        problems += [f"{row.key}: unknown record field {field!r}" for field in (*row.fields, *row.related_fields)
                     if field not in FIELD_INDEX]
        if not row.fields:
            problems.append(f"{row.key}: read from no field")
        if row.forecast and (len(row.fields) != 1 or row.scale_floor is None):
            problems.append(f"{row.key}: a forecast target needs exactly one field and a scale floor")
    return problems


METRICS = MetricTable((
    RiskMetric(
        key="cpu_pct", fields=("cpu_idle_pct",), derive=busy_share, default_limit=95.0,
        title="CPU", label="CPU", incident="CPU saturation", now_phrase="CPU saturated now",
        forecast=True, scale_floor=1.0, related_fields=("cpu_user_pct", "cpu_sys_pct"),
    ),
    RiskMetric(
        key="mem_pct", fields=("mem_used_pct",), default_limit=95.0,
        title="Memory", label="memory", incident="Memory exhaustion", now_phrase="Memory exhausted now",
        forecast=True, scale_floor=0.5, drifts=True,
        advice=Advice("reduce_memory", "Reduce memory by 15%", "mem_used_pct × 0.85 over the last hour",
                      actions.scale(("mem_used_pct",), 0.85),
                      {"default": "Consider restarting memory-heavy processes",
                       "database": "Shrink the buffer pool or cache, or move reporting queries to a replica",
                       "ml_compute": "Lower the batch size or the number of concurrent jobs on this node",
                       "web_api": "Recycle the worker processes (max-requests) and check for a memory leak"}),
    ),
    RiskMetric(
        key="swap_pct", fields=("swap_used_pct",), default_limit=50.0,
        title="Swap usage", label="swap", incident="Swap exhaustion", now_phrase="Swap exhausted now",
        forecast=True, scale_floor=0.5, drifts=True,
        advice=Advice("clear_swap", "Clear swap", "swap_used_pct = 0 over the last hour",
                      actions.set_measured(("swap_used_pct",), 0.0),
                      {"default": "Free memory, then cycle swap (swapoff -a && swapon -a) in a quiet period"}),
    ),
    RiskMetric(
        key="iowait_pct", fields=("cpu_iowait_pct",), default_limit=30.0,
        title="I/O wait", label="I/O wait", incident="I/O wait saturation", now_phrase="I/O wait saturated now",
        forecast=True, scale_floor=0.5,
        advice=Advice("reduce_iowait", "Halve I/O wait",
                      "cpu_iowait_pct × 0.5 over the last hour (the time becomes idle)", actions.halve_iowait,
                      {"default": "Find the processes waiting on disk (iotop) and move batch I/O off-peak",
                       "database": "Check for missing indexes and long scans; add IOPS to the volume"}),
    ),
    RiskMetric(
        key="disk_pct", fields=("disk_usage_pct",), default_limit=90.0,
        title="Disk usage", label="disk usage", incident="Disk full", now_phrase="Disk full now",
        forecast=True, scale_floor=0.5, drifts=True,
        advice=Advice("free_disk", "Free 10% of disk", "disk_usage_pct − 10 points over the last hour",
                      actions.free_disk,
                      {"default": "Rotate and compress logs, remove old artifacts",
                       "database": "Purge old partitions or archive tables; grow the volume"}),
    ),
    RiskMetric(
        key="load", fields=("load_average",), default_limit=12.0, unit="",
        title="Load average", label="load", incident="Load overload", now_phrase="Load over its limit now",
        forecast=True, scale_floor=0.05, min_band_width=0.1,
    ),
    RiskMetric(  # observed, never forecast: the larger of the backend's and the frontend's count
        key="close_wait", fields=("back_close_wait", "front_close_wait"), derive=larger, default_limit=None,
        unit="", title="CLOSE_WAIT connections", label="CLOSE_WAIT connections", incident="CLOSE_WAIT buildup",
        now_phrase="CLOSE_WAIT connections over their limit now",
        advice=Advice("close_connections", "Close stale connections",
                      "back_close_wait and front_close_wait = 0 over the last hour",
                      actions.set_measured(("back_close_wait", "front_close_wait"), 0.0),
                      {"default": "Fix the client that leaves sockets in CLOSE_WAIT, or restart it",
                       "web_api": "Check the upstream connection pool's timeouts and keep-alive settings"}),
    ),
))
