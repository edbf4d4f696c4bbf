"""Operator actions as edits of a recorded window: what the counterfactual scenarios re-forecast and re-score.

Each function takes record rows aligned with METRIC_FIELDS (oldest first) and returns a changed
copy in which the action was taken ``EFFECT_STEPS`` ago ("as if the operator had acted an hour
ago"). The metric table's own advice and the explanation's shared scenarios both apply them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from argus.domain.metrics import FIELD_INDEX

EFFECT_STEPS = 12  # a scenario rewrites the last hour

Edit = Callable[[np.ndarray], np.ndarray]


def scale(fields: Sequence[str], factor: float) -> Edit:
    """Multiply ``fields`` by ``factor`` over the last hour."""
    def apply(values: np.ndarray) -> np.ndarray:
        out = values.copy()
        for field in fields:
            out[-EFFECT_STEPS:, FIELD_INDEX[field]] *= factor
        return out
    return apply


def set_measured(fields: Sequence[str], value: float) -> Edit:
    """Set ``fields`` to ``value`` over the last hour, where they were measured (a missing one stays missing)."""
    def apply(values: np.ndarray) -> np.ndarray:
        out = values.copy()
        for field in fields:
            tail = out[-EFFECT_STEPS:, FIELD_INDEX[field]]
            out[-EFFECT_STEPS:, FIELD_INDEX[field]] = np.where(np.isnan(tail), tail, value)
        return out
    return apply


def shed_cpu(values: np.ndarray) -> np.ndarray:
    """CPU busy time, user, system and Java CPU and load × 0.7; the busy time given up becomes idle."""
    out = scale(("cpu_user_pct", "cpu_sys_pct", "java_cpu_pct", "load_average"), 0.7)(values)
    tail = out[-EFFECT_STEPS:]
    busy = 100.0 - values[-EFFECT_STEPS:, FIELD_INDEX["cpu_idle_pct"]]
    tail[:, FIELD_INDEX["cpu_idle_pct"]] = 100.0 - 0.7 * busy
    return out


def halve_iowait(values: np.ndarray) -> np.ndarray:
    """I/O wait × 0.5; the time saved becomes idle."""
    out = values.copy()
    tail = out[-EFFECT_STEPS:]
    saved = 0.5 * tail[:, FIELD_INDEX["cpu_iowait_pct"]]
    tail[:, FIELD_INDEX["cpu_iowait_pct"]] -= saved
    tail[:, FIELD_INDEX["cpu_idle_pct"]] += saved
    return out


def free_disk(values: np.ndarray) -> np.ndarray:
    """Disk usage − 10 points (never below 0)."""
    out = values.copy()
    column = out[-EFFECT_STEPS:, FIELD_INDEX["disk_usage_pct"]]
    out[-EFFECT_STEPS:, FIELD_INDEX["disk_usage_pct"]] = np.maximum(column - 10.0, 0.0)
    return out


def restart(values: np.ndarray) -> np.ndarray:
    """What a restart resets and the model can see; uptime_days is set to 0 too but is no model input."""
    out = set_measured(("swap_used_pct", "back_close_wait", "front_close_wait", "uptime_days"), 0.0)(values)
    day = values[-288:, FIELD_INDEX["mem_used_pct"]]
    low = float(np.quantile(day, 0.05))
    column = out[-EFFECT_STEPS:, FIELD_INDEX["mem_used_pct"]]
    out[-EFFECT_STEPS:, FIELD_INDEX["mem_used_pct"]] = np.minimum(column, low)
    return out
