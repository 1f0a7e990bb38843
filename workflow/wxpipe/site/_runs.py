"""Training and evaluation pages: what a run used, what it made, and how it scored.

A training is a ``checkpoint`` record, an evaluation an ``evaluation`` record; the run is the folder their
outputs lie in. Pictures and ``scores.json`` are read from where the records say they are.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..lineage import checksum_text, local_path
from ._copies import locations
from ._records import Record, end_of, mlflow, output_path, pretty, run_name, state

ENGINES = {"wxpipe": "built-in", "anemoi": "anemoi-training"}
HEADLINE = ("rmse", "global")


def _existing(path: Path | str, root: Path) -> str | None:
    where = local_path(str(path), root)
    return str(path) if where is not None and where.is_file() else None


def training_facts(rec: Record, records: Mapping[str, Record], root: Path) -> dict[str, Any]:
    """A ``checkpoint`` record as its page shows it; uuid and step only where the record holds them."""
    out, params = rec["outputs"][0], rec.get("params", {})
    anemoi = rec.get("anemoi") if isinstance(rec.get("anemoi"), Mapping) else {}
    copies = [records[i] for i in rec["inputs"] if i in records and records[i]["kind"] == "copy"]
    engine = str(params.get("engine", "wxpipe"))
    return {
        "id": rec["id"],
        "run": run_name(rec),
        "engine": ENGINES.get(engine, engine),
        "copies": [{"id": c["id"], "url": c["outputs"][0].get("url") or output_path(c)} for c in copies],
        "config": pretty(params),
        "mlflow": mlflow(rec),
        "checkpoint": {
            "path": out.get("path"),
            "size": out.get("size"),
            "checksum": checksum_text(out),
            "uuid": out.get("uuid") or (anemoi or {}).get("uuid"),
            "step": out.get("step") or rec.get("step"),
            "state": state(out, root),
        },
        "loss_curve": _existing(Path(output_path(rec)).parent / "loss_curve.png", root),
        "locations": locations({rec["id"]}, "model", records, root),
        "inputs": list(rec["inputs"]),
        "finished": end_of(rec),
    }


def _scores(rec: Record, root: Path) -> dict[str, Any]:
    path = next((o["path"] for o in rec["outputs"] if str(o.get("path", "")).endswith("scores.json")), None)
    where = local_path(str(path), root) if path else None
    if where is None or not where.is_file():
        return {}
    try:
        return dict(json.loads(where.read_text()))
    except (OSError, json.JSONDecodeError):
        return {}


def headline(scores: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Global RMSE per forecast (the model, then its baselines), variable and lead, from ``scores.json``."""
    metric, region = HEADLINE
    by_forecast = scores.get("scores", {}).get(metric, {})
    kinds = scores.get("forecasts", {})
    tables = []
    for name, regions in by_forecast.items():
        rows = [{"variable": v, "values": values} for v, values in regions.get(region, {}).items()]
        tables.append({"forecast": name, "kind": kinds.get(name, ""), "rows": rows})
    return tables


def evaluation_facts(rec: Record, records: Mapping[str, Record], root: Path) -> dict[str, Any]:
    """An ``evaluation`` record as its page shows it, with the checkpoint it scored found through the records."""
    scores = _scores(rec, root)
    forecasts = [records[i] for i in rec["inputs"] if i in records and records[i]["kind"] == "forecasts"]
    checkpoints = {i for f in forecasts for i in f["inputs"]}
    pictures = [o["path"] for o in rec["outputs"] if str(o.get("path", "")).endswith(".png")]
    return {
        "id": rec["id"],
        "run": run_name(rec),
        "pictures": [{"path": p, "href": _existing(p, root), "name": Path(p).stem} for p in pictures],
        "leads_hours": scores.get("leads_hours", []),
        "units": scores.get("units", {}),
        "tables": headline(scores),
        "baseline": scores.get("baseline"),
        "period": scores.get("period", {}),
        "n_forecasts": scores.get("n_forecasts"),
        "scored_checkpoint": scores.get("checkpoint"),
        "checkpoint_ids": checkpoints,
        "locations": locations({rec["id"]}, "evaluation", records, root),
        "inputs": list(rec["inputs"]),
        "mlflow": mlflow(rec),
        "finished": end_of(rec),
    }
