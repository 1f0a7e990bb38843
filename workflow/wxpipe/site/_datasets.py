"""A dataset's page and index row: facts from its records, and from the store's JSON and small arrays where
the store is still on disk (a store that is gone keeps its page, from the records alone).

A dataset is the store a ``dataset`` record names, keyed by its uuid; its *family* is every record that wrote
that store (init, load parts, dataset, statistics). Layouts and copies are the records that read the family.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from ..errors import WxpipeError
from ..fsutil import store_attrs
from ..lineage import local_path
from ..timeutil import parse_frequency, to_datetime
from ._copies import downstream, locations
from ._records import Record, end_of, output_path, run_name, state

log = logging.getLogger(__name__)

FAMILY = ("part", "dataset", "statistics")
STATISTICS = ("mean", "stdev", "minimum", "maximum", "has_nans")
STRIP = 1000.0


def _statistics(store: Path) -> dict[str, list[Any]]:
    """mean/stdev/minimum/maximum (and has_nans) per variable, through the dataset contract; {} without them."""
    from ..dataset import array, open_dataset, read

    try:
        ds = open_dataset(store)
        stats = {k: v.tolist() for k, v in ds.statistics().items()}
    except (WxpipeError, KeyError, OSError) as exc:
        log.info("%s: no statistics to show (%s)", store, exc)
        return {}
    if "has_nans" in ds.root:
        stats["has_nans"] = read(array(ds.root, "has_nans")).tolist()
    return stats


def _variables(
    attrs: Mapping[str, Any], stats: Mapping[str, list[Any]], nans: Mapping[str, int]
) -> list[dict[str, Any]]:
    """A row per variable: units, statistics, and the NaNs its statistics left out (their count where the
    statistics record has it, else the store's has_nans flag)."""
    meta = attrs.get("variables_metadata") or {}
    rows = []
    for i, name in enumerate(attrs.get("variables") or []):
        row: dict[str, Any] = {"name": name, "units": (meta.get(name) or {}).get("units", "")}
        row |= {k: stats[k][i] if i < len(stats.get(k, ())) else None for k in STATISTICS}
        row["nans"] = nans.get(name, row["has_nans"])
        rows.append(row)
    return rows


def _nans(family: list[Record]) -> dict[str, int]:
    """NaNs per variable over the statistics period, from the latest statistics record that counted them."""
    counted = [r["outputs"][0]["nans"] for r in family if r["kind"] == "statistics" and "nans" in r["outputs"][0]]
    return dict(counted[-1]) if counted else {}


def coverage(dates: Mapping[str, Any]) -> dict[str, Any] | None:
    """Dates present and missing as runs along a strip ``STRIP`` wide: what the SVG draws."""
    try:
        start, end = to_datetime(dates["start"]), to_datetime(dates["end"])
        step = parse_frequency(dates["frequency"])
    except (KeyError, TypeError, ValueError, WxpipeError):
        return None
    n = int((end - start) / step) + 1
    missing = sorted({int((to_datetime(m) - start) / step) for m in dates.get("missing") or []})
    runs: list[dict[str, Any]] = []
    at = 0
    for i in [*missing, n]:
        if i > at:
            runs.append({"present": True, "first": at, "count": i - at})
        if i < n:
            runs.append({"present": False, "first": i, "count": 1})
        at = i + 1
    scale = STRIP / max(n, 1)
    for r in runs:
        r |= {"x": r["first"] * scale, "width": max(r["count"] * scale, 0.5), "date": start + r["first"] * step}
    return {"rows": n, "missing": len(missing), "runs": runs, "width": STRIP}


def _dates(attrs: Mapping[str, Any], recipe: Mapping[str, Any]) -> dict[str, Any]:
    if "start_date" in attrs:
        keys = ("start_date", "end_date", "frequency", "missing_dates")
        return dict(zip(("start", "end", "frequency", "missing"), (attrs.get(k) for k in keys), strict=True))
    return dict(recipe.get("dates") or {})


def _layout(rec: Record, records: Mapping[str, Record], root: Path) -> dict[str, Any]:
    """A layout's row: its chunks, and what it serves: the read its chunks favour, and the trainings that read it
    (directly, or through a copy at a site)."""
    out, params = rec["outputs"][0], rec.get("params", {})
    chunks = params.get("chunks")
    pattern = "whole fields (one date per chunk)"
    if chunks and chunks[0] > 1:
        pattern = "time series at a point (many dates per chunk)"
    copies = {c["id"] for c in downstream({rec["id"]}, records, "copy")}
    readers = sorted({run_name(r) for r in downstream({rec["id"]} | copies, records, "checkpoint")})
    if readers:
        pattern += "; read by training " + ", ".join(readers)
    return {
        "id": rec["id"],
        "name": Path(output_path(rec)).stem,
        "path": output_path(rec),
        "chunks": chunks,
        "shards": params.get("shards"),
        "zarr_format": params.get("zarr_format"),
        "files": out.get("files"),
        "size": out.get("size"),
        "pattern": pattern,
        "state": state(out, root),
    }


def dataset_facts(rec: Record, records: Mapping[str, Record], root: Path) -> dict[str, Any]:
    """The index row and page of the dataset ``rec`` names."""
    path, out = output_path(rec), rec["outputs"][0]
    family = sorted(
        (r for r in records.values() if r["kind"] in FAMILY and output_path(r) == path), key=lambda r: end_of(r)
    )
    ids = {r["id"] for r in family}
    latest = next((r["outputs"][0] for r in reversed(family) if "size" in r["outputs"][0]), out)
    store = local_path(path, root)
    on_disk = store is not None and store.is_dir()
    recipe = dict(rec.get("params", {}).get("recipe") or {})
    attrs = (store_attrs(store) or {}) if on_disk and store else {}
    attrs = attrs or {**recipe, "uuid": out.get("uuid")}
    layouts = [_layout(r, records, root) for r in downstream(ids, records, "layout")]
    copies = locations(ids, Path(path).stem, records, root)
    for lay in layouts:
        copies += locations({lay["id"]}, lay["name"], records, root)
    shape = attrs.get("shape") or [None] * 4
    dates = _dates(attrs, recipe)
    cover = coverage(dates)
    return {
        "id": rec["id"],
        "uuid": attrs.get("uuid") or out.get("uuid"),
        "name": attrs.get("name") or recipe.get("name") or Path(path).stem,
        "stem": Path(path).stem,
        "path": path,
        "on_disk": on_disk,
        "size": latest.get("size"),
        "files": latest.get("files"),
        "resolution": attrs.get("resolution"),
        "frequency": dates.get("frequency"),
        "rows": shape[0] or (cover or {}).get("rows"),
        "variables": _variables(attrs, _statistics(store) if on_disk and store else {}, _nans(family)),
        "ensembles": shape[2],
        "points": shape[3],
        "created": end_of(rec),
        "where": sorted({c["site"] for c in copies}),
        "overview": {k: attrs.get(k) for k in ("description", "attribution", "licence")},
        "dates": dates,
        "coverage": cover,
        "recipe": yaml.safe_dump(attrs.get("recipe") or recipe, sort_keys=False)
        if (attrs.get("recipe") or recipe)
        else "",
        "store_chunks": attrs.get("chunks"),
        "layouts": layouts,
        "copies": copies,
        "family": [r["id"] for r in family],
        "ids": ids | {c["id"] for c in copies} | {lay["id"] for lay in layouts},
    }


def all_datasets(records: Mapping[str, Record], root: Path) -> list[dict[str, Any]]:
    """One entry per dataset uuid (the latest ``dataset`` record of it), in order of creation."""
    latest: dict[str, Record] = {}
    for rec in sorted((r for r in records.values() if r["kind"] == "dataset"), key=end_of):
        latest[str(rec["outputs"][0].get("uuid") or output_path(rec))] = rec
    return [dataset_facts(rec, records, root) for rec in latest.values()]


def created(value: str) -> str:
    """A record time as the index shows it (to the minute, UTC)."""
    try:
        return dt.datetime.fromisoformat(value).strftime("%Y-%m-%d %H:%M")
    except ValueError:
        return value
