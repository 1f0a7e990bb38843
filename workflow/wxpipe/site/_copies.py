"""Where copies of an artefact lie: the ``copy`` records that read it, as the Locations tables show them.

A dataset's copies read its family of records; a model's copies read its training and evaluation records.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ._records import Record, end_of, output_path, state


def site_of(rec: Mapping[str, Any]) -> str:
    """A copy's site: its record lies at ``<records>/<stage>/<site>/<name>.json``."""
    where = rec.get("record_path")
    return Path(str(where)).parent.name if where else Path(output_path(rec)).parent.name


def downstream(ids: set[str], records: Mapping[str, Record], kind: str) -> list[Record]:
    """The records of ``kind`` that read any of ``ids``, oldest first."""
    return sorted((r for r in records.values() if r["kind"] == kind and ids & set(r["inputs"])), key=end_of)


def copy_facts(rec: Record, of: str, root: Path) -> dict[str, Any]:
    """One row of a Locations table."""
    out = rec["outputs"][0]
    return {
        "id": rec["id"],
        "site": site_of(rec),
        "of": of,
        "url": out.get("url") or out.get("path"),
        "when": end_of(rec),
        "manifest": out.get("manifest_sha256", ""),
        "files": out.get("files"),
        "size": out.get("size"),
        "state": state(out, root),
    }


def locations(ids: set[str], of: str, records: Mapping[str, Record], root: Path) -> list[dict[str, Any]]:
    """Every copy made from the records ``ids``."""
    return [copy_facts(r, of, root) for r in downstream(ids, records, "copy")]
