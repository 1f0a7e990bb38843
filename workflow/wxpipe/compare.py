"""Several evaluations side by side: their scores.nc files combined on what they share, paired-bootstrap
significance of RMSE skill against one baseline, and the comparison's files.

Runs are compared only on their common initial dates, leads, variables and regions, and their aggregates are
recomputed from the per-date scores on those dates: two runs evaluated over different periods would otherwise
differ by the weather, not by the model. Only files made from the same dataset (uuid) compare.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from functools import reduce
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from .errors import WxpipeError
from .fsutil import atomic_write_text
from .plots import lead_curves, scorecard
from .scores.bootstrap import paired_bootstrap
from .scores.metrics import aggregate
from .scores.table import AGGREGATES, FORMAT, PER_DATE, VERSION, finite_list, write_netcdf

log = logging.getLogger(__name__)

SIGNIFICANCE = ("skill", "low", "high", "significant")
CELL = ("forecast", "region", "lead", "variable")


def open_scores(path: Path) -> xr.Dataset:
    """A scores.nc in memory (the file closed), refused naming the file unless it is wxpipe's format and version."""
    try:
        with xr.open_dataset(path, engine="h5netcdf") as ds:
            loaded = ds.load()
    except (OSError, ValueError) as exc:
        raise WxpipeError(f"{path}: not a readable scores file ({exc})") from exc
    fmt, version = loaded.attrs.get("format"), loaded.attrs.get("version")
    if fmt != FORMAT or version != VERSION:
        raise WxpipeError(f"{path}: format {fmt!r} version {version!r}, expected {FORMAT!r} version {VERSION}")
    return loaded


def combine(paths: Sequence[Path]) -> xr.Dataset:
    """Every file's model forecast and each baseline once (from the first file that has it), on the
    intersection of initial dates, leads, variables and regions, with the aggregates recomputed there."""
    if not paths:
        raise WxpipeError("compare: no scores files given")
    files = [(Path(p), open_scores(Path(p))) for p in paths]
    _check_compatible(files)
    common = {dim: _intersection([ds[dim].values for _, ds in files], dim, paths) for dim in _ALIGNED}
    parts: list[xr.Dataset] = []
    taken: set[str] = set()
    for _path, ds in files:
        pairs = zip(ds.forecast.values, ds.kind.values, strict=True)
        names = [str(f) for f, k in pairs if k == "model" or str(f) not in taken]
        taken.update(names)
        part = ds[[f"date_{k}" for k in PER_DATE]].sel({"forecast": names, **common})
        parts.append(_with_aggregates(part, int(ds.attrs["members"])))
    out = xr.concat(parts, dim="forecast", coords="minimal", compat="override", join="exact")
    first = files[0][1]
    out.attrs = {
        "format": "wxpipe-comparison",
        "version": VERSION,
        "runs": json.dumps([str(ds.attrs["run"]) for _, ds in files]),
        "files": json.dumps([str(p) for p, _ in files]),
        "dataset_uuid": str(first.attrs["dataset_uuid"]),
        "baseline": str(first.attrs.get("baseline", "persistence")),
    }
    return out


_ALIGNED = ("init_date", "lead", "variable", "region")


def _check_compatible(files: Sequence[tuple[Path, xr.Dataset]]) -> None:
    """Refuse two files of one run, or of two datasets, naming both files."""
    for i, (path, ds) in enumerate(files):
        for other, prior in files[:i]:
            if ds.attrs["run"] == prior.attrs["run"]:
                raise WxpipeError(f"{other} and {path}: both score run {ds.attrs['run']!r}; compare each run once")
            if ds.attrs["dataset_uuid"] != prior.attrs["dataset_uuid"]:
                raise WxpipeError(
                    f"{other} (dataset {prior.attrs['dataset_uuid']}) and {path} (dataset {ds.attrs['dataset_uuid']}):"
                    " runs compare only on the same dataset"
                )


def _intersection(values: Sequence[np.ndarray], dim: str, paths: Sequence[Path]) -> np.ndarray:
    """The values every file has, in the first file's order; refused when they share none."""
    shared = reduce(np.intersect1d, values)
    kept = values[0][np.isin(values[0], shared)]
    if kept.size == 0:
        raise WxpipeError(f"{', '.join(map(str, paths))}: no {dim} in common")
    return kept


def _with_aggregates(part: xr.Dataset, members: int) -> xr.Dataset:
    """``part``'s per-date scores and their WeatherBench2 averages over its initial dates."""
    axis = part["date_mse"].get_axis_num("init_date")
    reduced = aggregate({k: part[f"date_{k}"].values for k in PER_DATE}, members, axis=axis)
    out = part.assign({k: (CELL, reduced[k]) for k in (*AGGREGATES, "n_dates")})
    return out.assign_coords(members=("forecast", np.full(part.sizes["forecast"], members, dtype=np.int64)))


def significance(ds: xr.Dataset, baseline: str, *, resamples: int, seed: int = 0) -> xr.Dataset:
    """RMSE skill of every forecast against ``baseline`` per (forecast, region, lead, variable), with its
    paired-bootstrap interval over initial dates and whether that excludes 0."""
    names = [str(f) for f in ds.forecast.values]
    if baseline not in names:
        raise WxpipeError(f"baseline {baseline!r} is not a forecast of these scores; choose one of {names}")
    mse = ds["date_mse"].transpose("init_date", *CELL)
    base = mse.sel(forecast=[baseline]).values
    result = paired_bootstrap(mse.values, np.broadcast_to(base, mse.shape), resamples=resamples, seed=seed)
    coords = {dim: ds[dim] for dim in CELL}
    out = xr.Dataset({k: (CELL, getattr(result, k)) for k in SIGNIFICANCE}, coords=coords)
    out.attrs.update({"baseline": baseline, "resamples": resamples, "seed": seed, "level": 0.95})
    return out


def compare(
    paths: Sequence[Path], out_dir: Path, *, baseline: str, resamples: int, region: str = "global"
) -> dict[str, Any]:
    """Write comparison.nc, comparison.json, scorecard.png and leads.png into ``out_dir``; return the JSON."""
    ds = combine(paths)
    regions = [str(r) for r in ds.region.values]
    if region not in regions:
        raise WxpipeError(f"region {region!r} is not scored by every run; choose one of {regions}")
    sig = significance(ds, baseline, resamples=resamples)
    out_dir.mkdir(parents=True, exist_ok=True)
    merged = ds.assign(skill=sig.skill, skill_low=sig.low, skill_high=sig.high, significant=sig.significant)
    merged.attrs.update({"skill_baseline": baseline, "resamples": resamples})
    written = [write_netcdf(merged, out_dir / "comparison.nc")]
    record = _record(ds, sig)
    atomic_write_text(out_dir / "comparison.json", json.dumps(record, indent=1, allow_nan=False) + "\n")
    written.append(out_dir / "comparison.json")
    title = f"{len(paths)} runs: RMSE and skill vs {baseline} ({region})"
    written.append(scorecard(ds, sig, out_dir / "scorecard.png", region=region, title=title))
    written.append(lead_curves(ds, out_dir / "leads.png", region=region))
    for path in written:
        log.info("wrote %s", path)
    return record


def _record(ds: xr.Dataset, sig: xr.Dataset) -> dict[str, Any]:
    """comparison.json: per forecast, region and variable, every aggregate and the skill as lists over leads."""
    dates = ds.init_date.values
    return {
        "runs": json.loads(ds.attrs["runs"]),
        "dataset_uuid": ds.attrs["dataset_uuid"],
        "baseline": sig.attrs["baseline"],
        "resamples": sig.attrs["resamples"],
        "forecasts": {str(f): str(k) for f, k in zip(ds.forecast.values, ds.kind.values, strict=True)},
        "variables": {str(v): str(u) for v, u in zip(ds.variable.values, ds.units.values, strict=True)},
        "leads_hours": [float(x) for x in ds.lead.values],
        "init_dates": {"first": str(dates[0])[:19], "last": str(dates[-1])[:19], "count": int(dates.size)},
        "scores": {
            str(f): {
                str(r): {
                    str(v): _cell(ds, sig, {"forecast": f, "region": r, "variable": v}) for v in ds.variable.values
                }
                for r in ds.region.values
            }
            for f in ds.forecast.values
        },
    }


def _cell(ds: xr.Dataset, sig: xr.Dataset, at: dict[str, Any]) -> dict[str, list[Any]]:
    """One forecast, region and variable: each aggregate and skill as a list over leads (null where NaN)."""
    out: dict[str, list[Any]] = {k: finite_list(ds[k].sel(at).values) for k in (*AGGREGATES, "n_dates")}
    out.update({k: finite_list(sig[k].sel(at).values) for k in ("skill", "low", "high")})
    out["significant"] = [bool(x) for x in sig["significant"].sel(at).values]
    return out
