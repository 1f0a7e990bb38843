"""The anemoi-datasets side of ``python -m bench compat``: run by the anemoi venv's Python (zarr 2).

Usage: ``python _anemoi_side.py WXPIPE_STORE ANEMOI_STORE REFERENCE.npz``; prints one JSON object.

It opens the wxpipe store with ``anemoi.datasets.open_dataset`` and checks it against what wxpipe itself
reads from that store (``REFERENCE.npz``, written by the bench in the wxpipe venv), then compares it with
the store anemoi-datasets built from the same GRIB files: data float32 bit-equal per variable name,
dates, grid, frequency, statistics and root attributes. Only the standard library, numpy, zarr and
anemoi-datasets are imported: the bench package is not importable here.
"""

from __future__ import annotations

import json
import subprocess
import sys
import traceback
from pathlib import Path
from typing import Any

import numpy as np
import zarr
from anemoi.datasets import open_dataset

STATS = ("mean", "stdev", "minimum", "maximum")
# root attributes whose values should agree between the two builds
SHARED_ATTRS = (
    "variables",
    "frequency",
    "resolution",
    "field_shape",
    "start_date",
    "end_date",
    "missing_dates",
    "statistics_start_date",
    "statistics_end_date",
    "constant_fields",
)


def bits_equal(a: np.ndarray, b: np.ndarray) -> bool:
    a32, b32 = np.ascontiguousarray(a, np.float32), np.ascontiguousarray(b, np.float32)
    return a32.shape == b32.shape and bool(np.array_equal(a32.view(np.uint32), b32.view(np.uint32)))


def field_diff(a: np.ndarray, b: np.ndarray) -> dict[str, Any]:
    """Bit equality of two float32 fields, with the size of any difference."""
    a32, b32 = np.asarray(a, np.float32), np.asarray(b, np.float32)
    if a32.shape != b32.shape:
        return {"equal": False, "shape": [list(a32.shape), list(b32.shape)]}
    differ = a32.view(np.uint32) != b32.view(np.uint32)
    n = int(differ.sum())
    out: dict[str, Any] = {"equal": n == 0}
    if n:
        d = np.abs(a32.astype(np.float64) - b32.astype(np.float64))
        out |= {
            "values_differing": n,
            "of": int(a32.size),
            "max_abs_diff": float(np.nanmax(d)) if np.isfinite(d).any() else float("nan"),
            "nan_mismatch": int((np.isnan(a32) != np.isnan(b32)).sum()),
        }
    return out


def read_all(ds: Any) -> np.ndarray:
    """Every date of ``ds``; anemoi refuses to read a missing date, so those rows are NaN here."""
    missing = {int(i) for i in ds.missing}
    if not missing:
        return np.asarray(ds[:])
    out = np.full(ds.shape, np.nan, dtype=np.float32)
    for i in range(len(ds)):
        if i not in missing:
            out[i] = ds[i]
    return out


def blank_missing(data: np.ndarray, missing: set[int]) -> np.ndarray:
    """``data`` with the rows of missing dates set to the same NaN as :func:`read_all` writes."""
    out = np.array(data, dtype=np.float32)
    out[sorted(missing)] = np.nan
    return out


def jsonable(x: Any) -> Any:
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, np.generic):
        return x.item()
    return x


def tendencies(w: Any, a: Any, an_store: str, common: list[str]) -> dict[str, Any]:
    """``statistics_tendencies(delta)`` of both stores, per delta anemoi's additions wrote, to 1e-6 relative."""
    names = zarr.open_group(an_store, mode="r").array_keys()
    deltas = sorted({k.split("_")[2] for k in names if k.startswith("statistics_tendencies_")})
    if not deltas:
        return {"ok": False, "error": "anemoi's store has no statistics_tendencies_* arrays"}
    out: dict[str, Any] = {"deltas": deltas}
    try:
        for delta in deltas:
            wt, at = w.statistics_tendencies(delta), a.statistics_tendencies(delta)
            for k in STATS:
                wv = np.array([wt[k][w.name_to_index[v]] for v in common], dtype=np.float64)
                av = np.array([at[k][a.name_to_index[v]] for v in common], dtype=np.float64)
                r = np.abs(wv - av) / np.maximum(np.abs(av), 1e-300)
                out[f"{delta}_{k}"] = {"max_rel_diff": float(r.max()), "worst": common[int(r.argmax())]}
    except Exception as exc:
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}", "deltas": deltas}
    out["ok"] = all(v["max_rel_diff"] < 1e-6 for k, v in out.items() if isinstance(v, dict))
    return out


def try_(checks: dict[str, Any], name: str, fn: Any) -> Any:
    """Record ``fn()``'s result (or its error) under ``name``."""
    try:
        value = fn()
        checks[name] = {"ok": True, "value": jsonable(value)}
        return value
    except Exception as exc:
        checks[name] = {"ok": False, "error": f"{type(exc).__name__}: {exc}", "trace": traceback.format_exc(limit=3)}
        return None


def against_reference(store: str, ref: dict[str, np.ndarray]) -> dict[str, Any]:
    """``open_dataset(wxpipe store)`` must show exactly what wxpipe wrote."""
    out: dict[str, Any] = {}
    ds = try_(out, "open_dataset", lambda: repr(open_dataset(store))[:200])
    if ds is None:
        return out
    ds = open_dataset(store)
    variables = [str(v) for v in ref["variables"]]
    out["variables"] = {"ok": list(ds.variables) == variables, "anemoi": list(ds.variables), "wxpipe": variables}
    out["dates"] = {"ok": bool(np.array_equal(ds.dates.astype("datetime64[s]"), ref["dates"]))}
    out["latitudes"] = {"ok": bool(np.array_equal(ds.latitudes, ref["latitudes"]))}
    out["longitudes"] = {"ok": bool(np.array_equal(ds.longitudes, ref["longitudes"]))}
    out["shape"] = {"ok": tuple(ds.shape) == tuple(ref["data"].shape), "anemoi": list(ds.shape)}
    out["data"] = {"ok": bits_equal(read_all(ds), blank_missing(ref["data"], {int(i) for i in ds.missing}))}
    try_(out, "frequency", lambda: str(ds.frequency))
    try_(out, "resolution", lambda: str(ds.resolution))
    try_(out, "field_shape", lambda: list(ds.field_shape))
    try_(out, "missing", lambda: sorted(int(i) for i in ds.missing))
    try_(out, "name_to_index", lambda: dict(ds.name_to_index))
    if "mean" in ref:
        stats = try_(out, "statistics", lambda: {k: v.tolist() for k, v in ds.statistics.items()})
        if stats is not None:
            out["statistics_equal"] = {"ok": all(np.array_equal(ds.statistics[k], ref[k]) for k in STATS)}
    # what users do next with a dataset
    first, last = variables[0], variables[-1]
    try_(out, "select", lambda: list(open_dataset(store, select=[last, first]).variables))
    try_(out, "subsample_12h", lambda: len(open_dataset(store, frequency="12h")))
    d = ref["dates"]
    try_(out, "start_end", lambda: len(open_dataset(store, start=str(d[1]), end=str(d[-2]))))
    try_(out, "metadata", lambda: sorted(open_dataset(store).metadata().keys()))
    try_(out, "variables_metadata", lambda: sorted(ds.variables_metadata))
    try_(out, "constant_fields", lambda: list(ds.constant_fields))
    exe = Path(sys.executable).parent / "anemoi-datasets"
    insp = subprocess.run([str(exe), "inspect", store], capture_output=True, text=True)
    out["inspect_cli"] = {"ok": insp.returncode == 0, "tail": (insp.stdout + insp.stderr)[-1500:]}
    return out


def against_anemoi(wx_store: str, an_store: str) -> dict[str, Any]:
    """The two builds of the same recipe, compared through anemoi-datasets and raw zarr."""
    w, a = open_dataset(wx_store), open_dataset(an_store)
    out: dict[str, Any] = {
        "variables": {
            "ok": list(w.variables) == list(a.variables),
            "wxpipe": list(w.variables),
            "anemoi": list(a.variables),
        },
        "dates": {"ok": bool(np.array_equal(w.dates, a.dates)), "wxpipe": len(w.dates), "anemoi": len(a.dates)},
        "latitudes": {"ok": bool(np.array_equal(w.latitudes, a.latitudes))},
        "longitudes": {"ok": bool(np.array_equal(w.longitudes, a.longitudes))},
        "frequency": {"ok": w.frequency == a.frequency, "wxpipe": str(w.frequency), "anemoi": str(a.frequency)},
    }
    if not out["latitudes"]["ok"] and w.latitudes.shape == a.latitudes.shape:
        out["latitudes"]["max_abs_diff"] = float(np.max(np.abs(w.latitudes - a.latitudes)))
    if not out["longitudes"]["ok"] and w.longitudes.shape == a.longitudes.shape:
        out["longitudes"]["max_abs_diff"] = float(np.max(np.abs(w.longitudes - a.longitudes)))
    common = [v for v in a.variables if v in w.name_to_index]
    wdata, adata = read_all(w), read_all(a)
    per_var = {v: field_diff(wdata[:, w.name_to_index[v]], adata[:, a.name_to_index[v]]) for v in common}
    out["data"] = {
        "ok": all(r["equal"] for r in per_var.values()) and len(common) == len(a.variables) == len(w.variables),
        "per_variable": per_var,
        "only_in_wxpipe": [v for v in w.variables if v not in a.name_to_index],
        "only_in_anemoi": [v for v in a.variables if v not in w.name_to_index],
    }
    try:
        ws, as_ = w.statistics, a.statistics
        stats: dict[str, Any] = {}
        for k in STATS:
            wv = np.array([ws[k][w.name_to_index[v]] for v in common], dtype=np.float64)
            av = np.array([as_[k][a.name_to_index[v]] for v in common], dtype=np.float64)
            r = np.abs(wv - av) / np.maximum(np.abs(av), 1e-300)
            stats[k] = {
                "bit_equal": bool(np.array_equal(wv, av)),
                "max_rel_diff": float(r.max()),
                "worst": common[int(r.argmax())],
            }
        out["statistics"] = {
            "ok": all(s["max_rel_diff"] < 1e-6 for s in stats.values()),
            "tolerance": "relative 1e-6",
            **stats,
        }
    except Exception as exc:
        out["statistics"] = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    out["tendencies"] = tendencies(w, a, an_store, common)
    # users mix datasets: join (same dates and grid) and concat (successive dates) across the two tools
    mixed: dict[str, Any] = {}
    names = list(a.variables)
    v0, v1 = names[0], names[-1]
    mid = str(a.dates[len(a.dates) // 2 - 1].astype("datetime64[s]"))
    after = str(a.dates[len(a.dates) // 2].astype("datetime64[s]"))
    for label, first, second in (("anemoi+anemoi", an_store, an_store), ("wxpipe+anemoi", wx_store, an_store)):
        try_(
            mixed,
            f"join {label}",
            lambda f=first, s=second: list(
                open_dataset(join=[{"dataset": f, "select": [v0]}, {"dataset": s, "select": [v1]}]).shape
            ),
        )
        try_(
            mixed,
            f"concat {label}",
            lambda f=first, s=second: list(
                open_dataset(concat=[{"dataset": f, "end": mid}, {"dataset": s, "start": after}]).shape
            ),
        )
    out["mixing"] = mixed
    # zarr 2 here; typed loosely so that mypy run from the wxpipe venv (zarr 3) accepts it
    wz: Any = zarr.open_group(wx_store, mode="r")
    az: Any = zarr.open_group(an_store, mode="r")
    wa: dict[str, Any] = dict(wz.attrs)
    aa: dict[str, Any] = dict(az.attrs)
    out["attrs"] = {
        "missing_in_wxpipe": sorted(set(aa) - set(wa)),
        "only_in_wxpipe": sorted(set(wa) - set(aa)),
        "differing": {k: {"wxpipe": wa.get(k), "anemoi": aa.get(k)} for k in SHARED_ATTRS if wa.get(k) != aa.get(k)},
    }
    wvm, avm = wa.get("variables_metadata") or {}, aa.get("variables_metadata") or {}
    out["variables_metadata"] = {
        "keys_missing_in_wxpipe": sorted({k for v in avm.values() for k in v} - {k for v in wvm.values() for k in v}),
        # the richest entry (an accumulation has the most keys)
        "example": max(avm, key=lambda v: len(json.dumps(avm[v])), default=None),
        "example_anemoi": avm.get(max(avm, key=lambda v: len(json.dumps(avm[v])), default=""), {}),
        "example_wxpipe": wvm.get(max(avm, key=lambda v: len(json.dumps(avm[v])), default=""), {}),
    }
    out["arrays"] = {
        "missing_in_wxpipe": sorted(set(az.array_keys()) - set(wz.array_keys())),
        "only_in_wxpipe": sorted(set(wz.array_keys()) - set(az.array_keys())),
    }
    wd, ad = wz["data"], az["data"]
    out["encoding"] = {
        "wxpipe": {
            "chunks": list(wd.chunks),
            "dtype": str(wd.dtype),
            "compressor": repr(wd.compressor),
            "fill_value": repr(wd.fill_value),
        },
        "anemoi": {
            "chunks": list(ad.chunks),
            "dtype": str(ad.dtype),
            "compressor": repr(ad.compressor),
            "fill_value": repr(ad.fill_value),
        },
    }
    return out


def main() -> None:
    wx_store, an_store, ref_path = sys.argv[1:4]
    with np.load(ref_path, allow_pickle=False) as z:
        ref = {k: z[k] for k in z.files}
    import importlib.metadata as md

    result = {
        "versions": {p: md.version(p) for p in ("anemoi-datasets", "zarr", "numpy", "earthkit-data", "eccodes")},
        "open_wxpipe": against_reference(wx_store, ref),
        "wxpipe_vs_anemoi": against_anemoi(wx_store, an_store),
    }
    if len(sys.argv) > 4:  # a layout of the wxpipe store (other chunks): the same dataset to anemoi
        result["open_layout"] = against_reference(sys.argv[4], ref)
    print(json.dumps(result, default=jsonable))


if __name__ == "__main__":
    main()
