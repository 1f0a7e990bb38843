"""Figures for MLflow and the Snakemake report: the training loss curve and the evaluation scorecard.

Figures are built with :class:`matplotlib.figure.Figure` on the Agg canvas, never pyplot, so
nothing depends on a display or on pyplot's global state, and each file is written atomically.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from .fsutil import atomic_path


def _save(fig: Figure, path: Path) -> Path:
    """Write the PNG beside its final name, then rename: a reader never sees half a file."""
    FigureCanvasAgg(fig)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    return path


def loss_curve(
    train: Sequence[tuple[int, float]],
    validation: Sequence[tuple[int, float]],
    path: Path,
    *,
    persistence: float | None = None,
    title: str = "Training loss",
) -> Path:
    """Train and validation loss against step (log scale), with persistence's validation loss for scale."""
    fig = Figure(figsize=(6.4, 4.0))
    ax = fig.add_subplot()
    if train:
        s, v = zip(*train, strict=True)
        ax.plot(s, v, label="train", color="tab:blue", lw=1)
    if validation:
        s, v = zip(*validation, strict=True)
        ax.plot(s, v, "o-", label="validation", color="tab:orange")
    if persistence is not None and np.isfinite(persistence):
        ax.axhline(persistence, ls="--", color="grey", label="persistence (validation)")
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("area-weighted MSE / tendency variance")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return _save(fig, path)


def skill(scores: Mapping[str, Any]) -> np.ndarray:
    """(variables, leads) 1 - rmse_model / rmse_persistence; NaN where persistence is perfect."""
    model = np.array([scores["rmse"]["model"][v] for v in scores["variables"]], dtype=np.float64)
    pers = np.array([scores["rmse"]["persistence"][v] for v in scores["variables"]], dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(pers > 0, 1.0 - model / pers, np.nan)


def scorecard(scores: Mapping[str, Any], path: Path, *, title: str | None = None) -> Path:
    """Heatmap of :func:`skill`, variables x leads: blue beats persistence, red loses to it."""
    values = skill(scores)
    variables = list(scores["variables"])
    leads = [f"{h:g}h" for h in scores["leads_hours"]]
    finite = values[np.isfinite(values)]
    lim = max(0.05, float(np.abs(finite).max())) if finite.size else 1.0
    fig = Figure(figsize=(max(4.8, 2.4 + 0.9 * len(leads)), 1.4 + 0.45 * len(variables)))
    ax = fig.add_subplot()
    image = ax.imshow(values, cmap="RdBu", vmin=-lim, vmax=lim, aspect="auto")
    ax.set_xticks(range(len(leads)), leads)
    ax.set_yticks(range(len(variables)), variables)
    ax.set_xlabel("lead time")
    for i in range(len(variables)):
        for j in range(len(leads)):
            v = values[i, j]
            text = "n/a" if not np.isfinite(v) else f"{v:.2f}"
            colour = "white" if np.isfinite(v) and abs(v) > 0.6 * lim else "black"
            ax.text(j, i, text, ha="center", va="center", fontsize=8, color=colour)
    fig.colorbar(image, ax=ax, label="1 - RMSE / RMSE persistence")
    if title is None:
        period = scores.get("period", {})
        title = f"RMSE skill vs persistence, {scores.get('n_forecasts')} forecasts"
        if "first_init" in period:
            first, last = (str(period[k])[:13].replace("T", " ") + "h" for k in ("first_init", "last_init"))
            title += f"\ninitial dates {first} .. {last}"
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return _save(fig, path)
