"""Scores against lead time: one panel per variable, one line per forecast; ACC, CRPS and spread get their own
rows only when some forecast has them."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from ._common import colour, save, units, with_units

if TYPE_CHECKING:  # xarray only annotates: the training environment imports loss_curve without it
    import xarray as xr


def rows(ds: xr.Dataset, region: str) -> list[str]:
    """The metrics shown, one row each: RMSE, then ACC and CRPS when any of their values is finite."""
    here = ds.sel(region=region)
    return ["rmse", *(m for m in ("acc", "crps") if m in ds and bool(np.isfinite(here[m].values).any()))]


COLUMNS = 4  # variables side by side; more wrap into further blocks of rows


def size(variables: int, metrics: int) -> tuple[float, float]:
    columns, blocks = min(COLUMNS, variables), -(-variables // COLUMNS)
    return 0.8 + 3.2 * columns, 0.9 + 2.5 * metrics * blocks


def lead_curves(ds: xr.Dataset, path: Path, *, region: str = "global") -> Path:
    """RMSE (and ACC, CRPS with the ensemble spread dotted) against lead hours, per variable: up to
    :data:`COLUMNS` variables side by side, one row per metric."""
    metrics = rows(ds, region)
    variables = [str(v) for v in ds.variable.values]
    columns, blocks = min(COLUMNS, len(variables)), -(-len(variables) // COLUMNS)
    fig = Figure(figsize=size(len(variables), len(metrics)))
    axes = fig.subplots(len(metrics) * blocks, columns, squeeze=False, sharex=True)
    unit = units(ds)
    here = ds.sel(region=region)
    for index, variable in enumerate(variables):
        block, col = divmod(index, COLUMNS)
        for m, metric in enumerate(metrics):
            ax = axes[block * len(metrics) + m, col]
            _panel(ax, here.sel(variable=variable), metric)
            label = {"rmse": "RMSE", "acc": "ACC", "crps": "CRPS, spread dotted"}[metric]
            ax.set_ylabel(label if metric == "acc" else with_units(label, unit[variable]), fontsize=8)
            if m == 0:
                ax.set_title(variable, fontsize=9)
            ax.set_xlabel("lead time (hours)", fontsize=8)
            ax.xaxis.set_tick_params(labelbottom=True)
            ax.grid(True, alpha=0.3)
            ax.tick_params(labelsize=7)
    for ax in _unused(axes, len(variables), len(metrics)):
        ax.set_visible(False)
    axes[0, 0].legend(fontsize=7)
    fig.suptitle(f"Scores against lead time, {region}, {ds.sizes['init_date']} initial dates", fontsize=9)
    fig.tight_layout()
    return save(fig, path)


def _unused(axes: np.ndarray, variables: int, metrics: int) -> list[Axes]:
    """The panels of the last block past its last variable."""
    last, filled = divmod(variables - 1, COLUMNS)
    return [axes[last * metrics + m, c] for m in range(metrics) for c in range(filled + 1, axes.shape[1])]


def _panel(ax: Axes, cell: xr.Dataset, metric: str) -> None:
    """One line per forecast with a finite value; the model runs solid with markers, the baselines dashed."""
    hours = cell.lead.values
    for index, (name, kind) in enumerate(zip(cell.forecast.values, cell.kind.values, strict=True)):
        values = cell[metric].sel(forecast=name).values
        if not np.isfinite(values).any():
            continue
        style = "o-" if kind == "model" else "--"
        ax.plot(hours, values, style, color=colour(index), label=str(name), ms=3, lw=1.2)
        if metric == "crps" and "spread" in cell:
            ax.plot(hours, cell["spread"].sel(forecast=name).values, ":", color=colour(index), lw=1.2)
