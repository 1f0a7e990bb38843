"""The lineage catalogue as a Workflow Run RO-Crate (https://w3id.org/ro/wfrun/workflow/0.5).

The Snakefile and its rules are the crate's main ``ComputationalWorkflow``; each record is one
``CreateAction`` whose ``object`` is what its upstream records made and whose ``result`` is what it made.
Outputs are referenced where they lie (a path relative to the crate when under the project), never
copied: stores and checkpoints are large. Written as plain JSON-LD, so ``rocrate`` stays a test tool.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .fsutil import atomic_write_text
from .lineage_export import Record, is_local, location, on_disk, upstream

CONTEXT: list[Any] = [
    "https://w3id.org/ro/crate/1.1/context",
    {"sha256": "https://w3id.org/ro/terms/workflow-run#sha256"},
]
PROFILES = {
    "https://w3id.org/ro/crate/1.1": "RO-Crate",
    "https://w3id.org/ro/wfrun/process/0.5": "Process Run Crate",
    "https://w3id.org/ro/wfrun/workflow/0.5": "Workflow Run Crate",
    "https://w3id.org/workflowhub/workflow-ro-crate/1.0": "Workflow RO-Crate",
}
SNAKEMAKE = "https://w3id.org/workflowhub/workflow-ro-crate#snakemake"
METADATA = "ro-crate-metadata.json"
RULES = "workflow/rules"

Entity = dict[str, Any]


def ref(eid: str) -> dict[str, str]:
    return {"@id": eid}


def data_id(where: str, crate: Path, root: Path, directory: bool) -> str:
    """A path relative to the crate when it lies under the project; otherwise an absolute URI."""
    if not is_local(where):
        return where
    target = (root / where).resolve()
    if not target.is_relative_to(root.resolve()):
        return target.as_uri() + ("/" if directory else "")
    rel = Path(os.path.relpath(target, crate.resolve())).as_posix()
    return rel + "/" if directory else rel


def data_entity(rec: Record, out: Mapping[str, Any], crate: Path, root: Path) -> Entity | None:
    """A ``File`` (a checksummed output) or ``Dataset`` (a store) entity for one output; None without a location."""
    where = location(out)
    if where is None:
        return None
    directory = "sha256" not in out and ("files" in out or (is_local(where) and (root / where).is_dir()))
    gone = is_local(where) and not on_disk(where, root)
    entity: Entity = {
        "@id": f"#gone:{where}" if gone else data_id(where, crate, root, directory),
        "@type": "Dataset" if directory else "File",
        "name": where,
        "description": f"{rec['kind']} output of lineage record {rec['id']}",
    }
    if "size" in out:
        entity["contentSize"] = str(out["size"])
    if "sha256" in out:
        entity["sha256"] = out["sha256"]
    if "uuid" in out:
        entity["identifier"] = out["uuid"]
    for key in ("digest", "manifest_sha256"):
        if key in out:
            entity["description"] += f", {key} {out[key]}"
    if gone:
        entity["description"] += " (no longer on disk)"
    return entity


def _outputs(rec: Record, crate: Path, root: Path) -> list[Entity]:
    return [e for out in rec["outputs"] if (e := data_entity(rec, out, crate, root)) is not None]


def _sources(rec: Record, crate: Path, root: Path) -> list[Entity]:
    """The files a load part read (its record's ``sources``): inputs of its action, like upstream outputs."""
    found = (data_entity(rec, src, crate, root) for src in rec.get("sources") or [])
    return [e | {"description": f"read by lineage record {rec['id']}"} for e in found if e is not None]


def _action(
    rec: Record,
    records: Mapping[str, Record],
    workflow: str,
    outputs: Mapping[str, list[Entity]],
    sources: Mapping[str, list[Entity]],
) -> Entity:
    """A record's ``CreateAction``, from the entities of every record's outputs and sources (each made once)."""
    ex = rec.get("execution", {})
    used = [e["@id"] for up in upstream(records, rec) for e in outputs[up["id"]]]
    used += [e["@id"] for e in sources[rec["id"]]]
    action: Entity = {
        "@id": f"#{rec['id']}",
        "@type": "CreateAction",
        "name": f"{rec['kind']} ({rec['id']})",
        "instrument": ref(workflow),
        "object": [ref(i) for i in used],
        "result": [ref(e["@id"]) for e in outputs[rec["id"]]],
    }
    if ex.get("start"):
        action["startTime"] = ex["start"]
    if ex.get("end"):
        action["endTime"] = ex["end"]
    agent = ex.get("agent") or rec.get("agent")
    if agent:
        action["agent"] = ref(f"#agent-{agent}")
    return action


def _workflow(crate: Path, root: Path, records: Mapping[str, Record]) -> tuple[str, list[Entity]]:
    """The main workflow (Snakefile, its rule files as parts) and its language."""
    wid = data_id("Snakefile", crate, root, False)
    rules = sorted((root / RULES).glob("*.smk"))
    parts = [
        {"@id": data_id(str(p.relative_to(root)), crate, root, False), "@type": "File", "name": p.name} for p in rules
    ]
    versions = {v for r in records.values() if (v := r.get("software", {}).get("packages", {}).get("snakemake"))}
    language: Entity = {
        "@id": SNAKEMAKE,
        "@type": "ComputerLanguage",
        "name": "Snakemake",
        "identifier": ref("https://snakemake.readthedocs.io"),
        "url": ref("https://snakemake.readthedocs.io"),
    }
    if len(versions) == 1:
        language["version"] = versions.pop()
    main: Entity = {
        "@id": wid,
        "@type": ["File", "SoftwareSourceCode", "ComputationalWorkflow"],
        "name": "wxpipe",
        "programmingLanguage": ref(SNAKEMAKE),
        "hasPart": [ref(p["@id"]) for p in parts],
    }
    return wid, [main, language, *parts]


def crate_metadata(records: Mapping[str, Record], crate: Path, root: Path) -> dict[str, Any]:
    """The ``ro-crate-metadata.json`` document of the whole catalogue."""
    wid, workflow = _workflow(crate, root, records)
    outputs = {rid: _outputs(rec, crate, root) for rid, rec in records.items()}
    sources = {rid: _sources(rec, crate, root) for rid, rec in records.items()}
    files: dict[str, Entity] = {}
    for rid in records:
        for e in [*outputs[rid], *sources[rid]]:
            files.setdefault(e["@id"], e)
    actions = [_action(rec, records, wid, outputs, sources) for rec in records.values()]
    agents = sorted({a["agent"]["@id"] for a in actions if "agent" in a})
    root_entity: Entity = {
        "@id": "./",
        "@type": "Dataset",
        "name": "wxpipe lineage",
        "description": f"The runs of the wxpipe workflow that made {len(files)} outputs, from {len(records)} records",
        "datePublished": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "license": ref("https://spdx.org/licenses/Apache-2.0"),
        "conformsTo": [ref(p) for p in PROFILES if p != "https://w3id.org/ro/crate/1.1"],
        "mainEntity": ref(wid),
        "hasPart": [ref(wid), *(ref(i) for i in files if not i.startswith("#"))],
        "mentions": [ref(a["@id"]) for a in actions],
    }
    descriptor = {"@id": METADATA, "@type": "CreativeWork", "about": ref("./"), "conformsTo": ref(next(iter(PROFILES)))}
    profiles = [
        {"@id": p, "@type": "CreativeWork", "name": n, "version": p.rsplit("/", 1)[1]} for p, n in PROFILES.items()
    ]
    people = [{"@id": a, "@type": "Person", "name": a.removeprefix("#agent-")} for a in agents]
    graph = [descriptor, root_entity, *profiles, *workflow, *files.values(), *actions, *people]
    return {"@context": CONTEXT, "@graph": graph}


def write_crate(records: Mapping[str, Record], crate: Path, root: Path) -> None:
    crate.mkdir(parents=True, exist_ok=True)
    doc = crate_metadata(records, crate, root)
    atomic_write_text(crate / METADATA, json.dumps(doc, indent=2) + "\n")
