"""The model's error maps on its native grid: each grid point drawn where it is, so reduced Gaussian and
limited-area grids need no regridding."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from ._common import save, units, with_units

if TYPE_CHECKING:  # xarray only annotates: the training environment imports loss_curve without it
    import xarray as xr


def size(panels: int) -> tuple[float, float]:
    """Two columns (bias, RMSE), one row per mapped lead and variable."""
    return 10.0, 0.8 + 2.9 * panels


def error_maps(ds: xr.Dataset, path: Path) -> Path | None:
    """Bias (diverging, symmetric) and RMSE of every (map_lead, map_variable); None when ``ds`` has no maps."""
    if "map_bias" not in ds or ds["map_bias"].size == 0:
        return None
    pairs = [(lead, str(v)) for lead in ds.map_lead.values for v in ds.map_variable.values]
    fig = Figure(figsize=size(len(pairs)))
    axes = fig.subplots(len(pairs), 2, squeeze=False)
    lon = (np.asarray(ds.longitude.values, dtype=np.float64) + 180.0) % 360.0 - 180.0
    lat = np.asarray(ds.latitude.values, dtype=np.float64)
    dot = float(np.clip(20000.0 / max(1, lon.size), 0.3, 30.0))
    unit = units(ds)
    for row, (lead, variable) in enumerate(pairs):
        at = {"map_lead": lead, "map_variable": variable}
        bias = ds.map_bias.sel(at).values.astype(np.float64)
        finite = bias[np.isfinite(bias)]
        lim = float(np.abs(finite).max()) if finite.size and np.abs(finite).max() > 0 else 1.0
        u = unit.get(variable, "")
        panels = (
            (axes[row, 0], bias, "RdBu_r", (-lim, lim), "bias"),
            (axes[row, 1], ds.map_rmse.sel(at).values, "viridis", (None, None), "RMSE"),
        )
        for ax, values, cmap, (low, high), name in panels:
            drawn = ax.scatter(lon, lat, c=values, s=dot, cmap=cmap, vmin=low, vmax=high, linewidths=0)
            fig.colorbar(drawn, ax=ax, label=with_units(name, u))
            _frame(ax, f"{variable} {name}, +{lead:g}h")
    fig.suptitle(f"{ds.attrs.get('run', 'model')}: error maps over {ds.sizes.get('init_date', 0)} initial dates")
    fig.tight_layout()
    return save(fig, path)


def _frame(ax: Axes, title: str) -> None:
    ax.set_title(title, fontsize=9)
    ax.set_xlabel("longitude", fontsize=8)
    ax.set_ylabel("latitude", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.set_aspect("equal", adjustable="box")  # the data's extent, a limited-area grid's too
