"""The reliability diagram of an incident backtest: do the forecast probabilities mean what they say?"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

HORIZONS = (("30m", "P(incident within 30 min)"), ("8h", "P(incident within 8 h)"))


def plot_reliability(report: Mapping, path: str | Path) -> None:
    """Save a PNG of mean forecast against observed rate per bin (with counts) for P(30 min) and P(8 h).

    ``report`` is the ``incidents`` section of ``argus evaluate --incidents`` (its ``reliability_*``
    tables and Brier scores).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 5), squeeze=False)
    for ax, (name, title) in zip(axes[0], HORIZONS, strict=True):
        table = report.get(f"reliability_{name}") or []
        forecast = [row["mean_forecast"] for row in table]
        observed = [row["observed_rate"] for row in table]
        ax.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1, label="perfectly reliable")
        ax.plot(forecast, observed, marker="o", color="tab:blue", label="calibrated forecast")
        for row in table:
            ax.annotate(f"n={row['count']}", (row["mean_forecast"], row["observed_rate"]),
                        textcoords="offset points", xytext=(5, 5), fontsize=8)
        ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="mean forecast probability", ylabel="observed rate",
               title=f"{title}\nBrier {report.get(f'brier_{name}')} "
                     f"(climatology {report.get(f'brier_{name}_climatology')}, "
                     f"skill {_or_na(report.get(f'brier_skill_{name}'))})")
        ax.set_aspect("equal")
        ax.grid(alpha=0.3)
        ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _or_na(value: object) -> object:
    return "n/a" if value is None else value
