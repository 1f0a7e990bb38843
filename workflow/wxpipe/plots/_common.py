"""What every figure shares: the atomic PNG writer, units by variable and one colour per forecast."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ..fsutil import atomic_path

if TYPE_CHECKING:  # xarray only annotates: the training environment imports loss_curve without it
    import xarray as xr

DPI = 120


def save(fig: Figure, path: Path) -> Path:
    """Write the PNG beside its final name, then rename: a reader never sees half a file."""
    FigureCanvasAgg(fig)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=DPI)
    return path


def units(ds: xr.Dataset) -> dict[str, str]:
    """Units by variable name ("" when unknown)."""
    names = [str(v) for v in ds.variable.values]
    if "units" not in ds.coords:
        return dict.fromkeys(names, "")
    return dict(zip(names, (str(u) for u in ds.units.values), strict=True))


def with_units(label: str, unit: str) -> str:
    return f"{label} ({unit})" if unit else label


def colour(index: int) -> str:
    """The forecast's colour, the same in every figure of one dataset (its position on the forecast axis)."""
    return f"C{index % 10}"
