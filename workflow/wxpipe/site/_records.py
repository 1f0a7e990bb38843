"""What the site says about one record: its outputs (on disk or gone, with checksums), the files it read (a load
part's sources), inputs and execution.

Paths in records are relative to the project folder the rules ran in (``root``); a URL output (a copy at
a remote site) cannot be checked from here and is shown as such, never as gone.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..lineage import checksum_text, local_path, record_git

Record = dict[str, Any]


def output_path(rec: Mapping[str, Any]) -> str:
    return str(rec["outputs"][0].get("path", "")) if rec.get("outputs") else ""


def end_of(rec: Mapping[str, Any]) -> str:
    return str(rec.get("execution", {}).get("end", ""))


def state(out: Mapping[str, Any], root: Path) -> str:
    """``on disk``, ``no longer on disk`` or ``remote`` (a URL this machine cannot look at)."""
    where = local_path(str(out.get("path") or out.get("url") or ""), root)
    if where is None:
        return "remote"
    return "on disk" if where.exists() else "no longer on disk"


def run_name(rec: Mapping[str, Any]) -> str:
    """A training's or evaluation's run: the folder its first output lies in (``results/models/<run>/...``)."""
    return Path(output_path(rec)).parent.name or rec["id"]


def mlflow(rec: Mapping[str, Any]) -> dict[str, Any] | None:
    """The record's MLflow run; ``href`` is set when the tracking URI is a server's."""
    info = rec.get("mlflow")
    if not isinstance(info, Mapping) or "run_id" not in info:
        return None
    uri = str(info.get("tracking_uri") or "")
    href = None
    if uri.startswith(("http://", "https://")):
        href = f"{uri.rstrip('/')}/#/experiments/{info.get('experiment_id', '0')}/runs/{info['run_id']}"
    return {"run_id": info["run_id"], "uri": uri, "href": href, "metrics": info.get("metrics", {})}


def pretty(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, default=str)


def record_facts(rec: Mapping[str, Any], records: Mapping[str, Record], root: Path) -> dict[str, Any]:
    """Everything a record page shows; inputs without a record (written over since) are named, not linked."""
    commit, dirty = record_git(rec)
    software = rec.get("software", {})
    outputs = [{**out, "checksum": checksum_text(out), "state": state(out, root)} for out in rec.get("outputs", [])]
    sources = [{**src, "checksum": checksum_text(src), "state": state(src, root)} for src in rec.get("sources") or []]
    inputs = [{"id": i, "kind": records[i]["kind"] if i in records else None} for i in rec.get("inputs", [])]
    return {
        "id": rec["id"],
        "kind": rec["kind"],
        "execution": rec.get("execution", {}),
        "params": pretty(rec.get("params", {})),
        "git": commit,
        "dirty": dirty,
        "packages": software.get("packages", {}) if isinstance(software, Mapping) else {},
        "config_hash": rec.get("config_hash"),
        "outputs": outputs,
        "gone": any(o["state"] == "no longer on disk" for o in outputs),
        "sources": sources,
        "sources_size": sum(int(s.get("size", 0)) for s in sources),
        "inputs": inputs,
        "used_by": sorted(r["id"] for r in records.values() if rec["id"] in r.get("inputs", [])),
        "record_path": rec.get("record_path"),
        "mlflow": mlflow(rec),
    }
