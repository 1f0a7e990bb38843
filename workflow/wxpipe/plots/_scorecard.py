"""The scorecard: every forecast's absolute RMSE per variable and lead, coloured by its skill against one
baseline, with a dot in the corner of each cell whose paired-bootstrap interval excludes 0."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from matplotlib.figure import Figure

from ._common import save, units

if TYPE_CHECKING:  # xarray only annotates: the training environment imports loss_curve without it
    import xarray as xr

ORDER = ("forecast", "variable", "lead")


def size(variables: int, forecasts: int, leads: int) -> tuple[float, float]:
    """The figure's size in inches: one column per lead and forecast, a blank column between forecasts."""
    return 2.8 + 0.62 * (forecasts * (leads + 1) - 1), 1.9 + 0.5 * variables


def scorecard(ds: xr.Dataset, sig: xr.Dataset, path: Path, *, region: str = "global", title: str | None = None) -> Path:
    """Rows are variables, one block of lead columns per forecast (the baseline's own block has skill 0).

    ``ds`` holds ``rmse`` and ``sig`` ``skill``/``significant`` over (forecast, region, lead, variable), as
    :func:`wxpipe.compare.significance` returns them; ``sig.attrs["baseline"]`` names the baseline.
    """
    forecasts = [str(f) for f in ds.forecast.values]
    variables = [str(v) for v in ds.variable.values]
    leads = [f"{h:g}h" for h in ds.lead.values]
    rmse, skill, marked = (_grid(a.sel(region=region), len(leads)) for a in (ds.rmse, sig.skill, sig.significant))
    finite = skill[np.isfinite(skill)]
    lim = min(1.0, max(0.05, float(np.abs(finite).max()))) if finite.size else 1.0  # below -1: saturated red
    fig = Figure(figsize=size(len(variables), len(forecasts), len(leads)))
    ax = fig.add_subplot()
    image = ax.imshow(np.ma.masked_invalid(skill), cmap="RdBu", vmin=-lim, vmax=lim, aspect="auto")
    unit = units(ds)
    for (i, j), value in np.ndenumerate(rmse):
        if not np.isfinite(value):
            continue
        s = skill[i, j]
        dark = bool(np.isfinite(s) and abs(s) > 0.6 * lim)
        text = f"{value:.3g}\n{unit[variables[i]]}".strip()
        ink = "white" if dark else "black"
        ax.text(j, i, text, ha="center", va="center", fontsize=6.5, color=ink)
        if marked[i, j] > 0:
            ax.plot(j + 0.33, i - 0.3, marker="o", ms=4, color=ink)
    step = len(leads) + 1
    columns = [k * step + j for k in range(len(forecasts)) for j in range(len(leads))]
    ax.set_xticks(columns, leads * len(forecasts), fontsize=7)
    ax.set_yticks(range(len(variables)), variables)
    ax.set_xlabel("lead time")
    for k, name in enumerate(forecasts):
        ax.text(k * step + (len(leads) - 1) / 2, -0.6, name, ha="center", va="bottom", fontsize=8, fontweight="bold")
    ax.tick_params(length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    baseline = str(sig.attrs.get("baseline", "baseline"))
    extend = "min" if finite.size and finite.min() < -lim else "neither"
    fig.colorbar(image, ax=ax, label=f"RMSE skill vs {baseline}", fraction=0.04, pad=0.02, extend=extend)
    if title is None:
        title = f"RMSE and skill vs {baseline}, {region}, {ds.sizes['init_date']} initial dates"
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return save(fig, path)


def _grid(values: xr.DataArray, leads: int) -> np.ndarray:
    """(variables, columns) of a (forecast, variable, lead) array: the forecasts' blocks side by side, NaN between."""
    blocks = values.transpose(*ORDER).values.astype(np.float64)
    gap = np.full((blocks.shape[1], 1), np.nan)
    parts = [p for block in blocks for p in (block, gap)][:-1]
    grid: np.ndarray = np.concatenate(parts, axis=1)
    return grid
