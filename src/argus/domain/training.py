"""Training runs as the admin API reports them, and the rule that decides promotion."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

import attrs

from argus.domain.metrics import wire_time

PROMOTION_RULES = ("better", "always", "never")


@attrs.frozen
class TrainingRun:
    """One training, from trigger to outcome (times are UTC epoch seconds)."""

    training_id: str
    status: str  # running | completed | failed | cancelled
    started_at: float
    epochs: int
    incremental: bool
    base_model: str | None = None
    finished_at: float | None = None
    epoch: int = 0
    percent: float = 0.0
    eta_minutes: float | None = None
    stage: str | None = None
    model_name: str | None = None
    promoted: bool | None = None
    promotion: Mapping[str, object] | None = None
    error: str | None = None
    pid: int | None = None


def new_training_id(now: float) -> str:
    """``train_20250115_103000``."""
    return "train_" + datetime.fromtimestamp(now, tz=UTC).strftime("%Y%m%d_%H%M%S")


def decide_promotion(rule: str, new_score: float | None, current_score: float | None) -> tuple[bool, str]:
    """Promote per ``ARGUS_AUTO_PROMOTE``: better (not worse than the current model on the same data), always, never.

    Scores are errors (lower is better). With no current model, or no score for it, "better" promotes.
    """
    if rule == "always":
        return True, "promoted: ARGUS_AUTO_PROMOTE=always"
    if rule == "never":
        return False, "kept the current model: ARGUS_AUTO_PROMOTE=never"
    if current_score is None:
        return True, "promoted: no current model to compare with"
    if new_score is None:
        return False, "kept the current model: the new model could not be scored"
    if new_score <= current_score:
        return True, f"promoted: score {new_score:.4f} is not worse than the current {current_score:.4f}"
    return False, f"kept the current model: score {new_score:.4f} is worse than the current {current_score:.4f}"


def training_stats(runs: list[TrainingRun]) -> dict[str, object]:
    """The /admin/training-stats body from every recorded run."""
    finished = [r for r in runs if r.finished_at is not None]
    completed = [r for r in finished if r.status == "completed"]
    last = max((r.finished_at for r in finished if r.finished_at is not None), default=None)
    minutes = [(r.finished_at - r.started_at) / 60 for r in completed if r.finished_at]
    return {
        "last_training": wire_time(last),
        "total_trainings": len(finished),
        "avg_training_time_minutes": round(sum(minutes) / len(minutes), 1) if minutes else None,
        "models_produced": sum(1 for r in completed if r.model_name),
        "promoted": sum(1 for r in completed if r.promoted),
        "failed": sum(1 for r in finished if r.status == "failed"),
        "cancelled": sum(1 for r in finished if r.status == "cancelled"),
    }
