"""The training loss curve, logged to MLflow and shown in the Snakemake report."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from ._common import save


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
    return save(fig, path)
