"""The lineage catalogue in other tools' vocabularies: W3C PROV-JSON here, a Workflow Run RO-Crate in
:mod:`wxpipe.lineage_crate`.

Both read every record under the records folder, not only the ones the current config declares, so an
earlier run's datasets stay traceable. PROV-JSON is written as plain JSON: the ``prov`` package is only
the tests' validator. Identifiers derive from record ids, so exporting twice gives the same names.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from .fsutil import atomic_write_text
from .lineage import checksum_text, local_path, params_hash, record_git, records_under

log = logging.getLogger(__name__)

NAMESPACE = "https://w3id.org/wxpipe/lineage#"
_RECORD_KEYS = {
    "id",
    "kind",
    "outputs",
    "inputs",
    "sources",
    "params",
    "params_hash",
    "software",
    "execution",
    "record_path",
}
_QNAME_UNSAFE = re.compile(r"[^A-Za-z0-9_.\-]")

Record = dict[str, Any]


def location(output: Mapping[str, Any]) -> str | None:
    """Where an output lives: its path, or its copy's URL (``file:`` URLs read as paths)."""
    if output.get("path"):
        return str(output["path"])
    url = output.get("url")
    if not url:
        return None
    return str(url)[len("file:") :].removeprefix("//") if str(url).startswith("file:") else str(url)


def is_local(where: str) -> bool:
    return "://" not in where


def on_disk(where: str, root: Path) -> bool:
    path = local_path(where, root)
    return path is not None and path.exists()


def upstream(records: Mapping[str, Record], rec: Record) -> list[Record]:
    """The records a record's inputs name (those that have one)."""
    return [records[rid] for rid in rec["inputs"] if rid in records]


def report_gaps(records: Mapping[str, Record], root: Path) -> list[str]:
    """Inputs without a record and outputs no longer on disk, one warning each: exported without them."""
    missing = []
    for rec in records.values():
        for rid in rec["inputs"]:
            if rid not in records:
                log.warning("lineage export: %s names input %s, which has no record", rec["id"], rid)
                missing.append(rid)
        for out in rec["outputs"]:
            where = location(out)
            if where and is_local(where) and not on_disk(where, root):
                log.warning("lineage export: %s output %s no longer exists", rec["id"], where)
                missing.append(where)
    return missing


def export(
    records_dir: str | Path, prov: Path | None = None, crate: Path | None = None, root: Path | None = None
) -> None:
    """Write the catalogue as PROV-JSON (``prov``) and/or a Workflow Run RO-Crate (``crate``).

    ``root`` is the project the records' relative paths start from (the working directory by default).
    """
    records = records_under(records_dir)
    base = Path.cwd() if root is None else Path(root)
    report_gaps(records, base)
    if prov is not None:
        atomic_write_text(Path(prov), json.dumps(prov_document(records, base), indent=2, sort_keys=True) + "\n")
        log.info("lineage export: %s (%d records)", prov, len(records))
    if crate is not None:
        from .lineage_crate import write_crate

        write_crate(records, Path(crate), base)
        log.info("lineage export: %s/ro-crate-metadata.json (%d records)", crate, len(records))


def activity_id(rec: Mapping[str, Any]) -> str:
    return f"wxpipe:record/{rec['id']}"


def entity_id(rec: Mapping[str, Any], n: int) -> str:
    return f"wxpipe:entity/{rec['id']}/{n}"


def source_id(src: Mapping[str, Any]) -> str:
    """A file a record read, named by its path and checksum: parts that read the same bytes use one entity."""
    return f"wxpipe:source/{params_hash({'path': src.get('path'), 'checksum': checksum_text(src)})}"


def agent_id(rec: Mapping[str, Any]) -> str:
    """One agent per wxpipe version and commit (a dirty tree is its own agent: its code is not the commit's)."""
    commit, dirty = record_git(rec)
    version = rec.get("software", {}).get("wxpipe") or "unknown"
    return f"wxpipe:agent/wxpipe-{version}-{commit or 'unknown'}{'-dirty' if dirty else ''}"


def flatten(prefix: str, value: Any) -> Iterator[tuple[str, Any]]:
    """Nested settings as ``wxpipe:a.b.c`` attributes: scalars stay, lists become JSON text, None is left out."""
    if isinstance(value, Mapping):
        for k, v in value.items():
            yield from flatten(f"{prefix}.{_QNAME_UNSAFE.sub('_', str(k))}", v)
    elif isinstance(value, list | tuple):
        yield prefix, json.dumps(value, default=str)
    elif value is not None:
        yield prefix, value if isinstance(value, bool | int | float | str) else str(value)


def _qname(value: str) -> dict[str, str]:
    return {"$": value, "type": "prov:QUALIFIED_NAME"}


def _activity(rec: Record) -> dict[str, Any]:
    ex = rec.get("execution", {})
    attrs: dict[str, Any] = {"prov:type": _qname(f"wxpipe:{rec['kind']}"), "prov:label": rec["id"]}
    attrs.update({"prov:startTime": ex.get("start"), "prov:endTime": ex.get("end")})
    for key in ("host", "slurm_job_id", "command"):
        attrs.update(flatten(f"wxpipe:{key}", ex.get(key)))
    attrs.update(flatten("wxpipe:params", rec.get("params", {})))
    attrs.update(flatten("wxpipe:params_hash", rec.get("params_hash")))
    attrs.update(flatten("wxpipe:record_path", rec.get("record_path")))
    for key in sorted(set(rec) - _RECORD_KEYS):
        attrs.update(flatten(f"wxpipe:{_QNAME_UNSAFE.sub('_', key)}", rec[key]))
    return {k: v for k, v in attrs.items() if v is not None}


def _entity(kind: str, out: Mapping[str, Any], root: Path) -> dict[str, Any]:
    """An output of a record of ``kind``, or a file a record read (``kind`` "source")."""
    attrs: dict[str, Any] = {"prov:type": _qname(f"wxpipe:{kind}"), "wxpipe:kind": kind}
    where = location(out)
    if where:
        attrs["prov:location"] = where
        if is_local(where):
            attrs["wxpipe:exists"] = on_disk(where, root)
    for key, value in out.items():
        attrs.update(flatten(f"wxpipe:{_QNAME_UNSAFE.sub('_', str(key))}", value))
    return attrs


def _agent(rec: Record) -> dict[str, Any]:
    software = rec.get("software", {})
    commit, dirty = record_git(rec)
    attrs: dict[str, Any] = {"prov:type": _qname("prov:SoftwareAgent"), "prov:label": "wxpipe"}
    attrs.update(flatten("wxpipe:version", software.get("wxpipe")))
    attrs.update(flatten("wxpipe:git_commit", commit))
    attrs.update(flatten("wxpipe:git_dirty", dirty))
    attrs.update(flatten("wxpipe:packages", software.get("packages", {})))
    return attrs


def prov_document(records: Mapping[str, Record], root: Path) -> dict[str, Any]:
    """The PROV-JSON document: records as activities, outputs and the files a part read as entities, wxpipe as
    the agent. An output derives from everything its activity used, upstream outputs and source files alike."""
    doc: dict[str, dict[str, Any]] = {
        "prefix": {"wxpipe": NAMESPACE},
        "activity": {},
        "entity": {},
        "agent": {},
        "wasGeneratedBy": {},
        "used": {},
        "wasDerivedFrom": {},
        "wasAssociatedWith": {},
    }

    def relate(kind: str, **ends: str) -> None:
        doc[kind][f"_:{kind}{len(doc[kind]) + 1}"] = {f"prov:{k}": v for k, v in ends.items()}

    for rec in records.values():
        act = activity_id(rec)
        doc["activity"][act] = _activity(rec)
        doc["agent"].setdefault(agent_id(rec), _agent(rec))
        relate("wasAssociatedWith", activity=act, agent=agent_id(rec))
        used = [entity_id(up, n) for up in upstream(records, rec) for n in range(len(up["outputs"]))]
        for src in rec.get("sources") or []:
            used.append(source_id(src))
            doc["entity"].setdefault(source_id(src), _entity("source", src, root))
        for ent in used:
            relate("used", activity=act, entity=ent)
        for n, out in enumerate(rec["outputs"]):
            doc["entity"][entity_id(rec, n)] = _entity(rec["kind"], out, root)
            relate("wasGeneratedBy", entity=entity_id(rec, n), activity=act)
            for ent in used:
                relate("wasDerivedFrom", generatedEntity=entity_id(rec, n), usedEntity=ent)
    return doc
