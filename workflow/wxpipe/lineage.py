"""Lineage records: what each rule made, from what, with which settings and software.

Every rule writes one small JSON record next to its output; :func:`catalogue` joins them. An id is
a hash of the record's content (kind, outputs, inputs, params), so a rerun that makes the same
thing from the same inputs gets the same id. What ran it (command line, git commit and dirty flag,
config hash, host, SLURM job, times) is recorded beside the content but not hashed into the id.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import platform
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlparse

from .digest import describe
from .errors import WxpipeError
from .fsutil import atomic_write_text, file_sha256

Kind = Literal[
    "archive",
    "dataset",
    "statistics",
    "layout",
    "copy",
    "checkpoint",
    "forecasts",
    "climatology",
    "evaluation",
    "comparison",
    "part",
]

log = logging.getLogger(__name__)

SECRET_WORDS = ("secret", "password", "token", "credential", "access_key")


def describe_file(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    return {"path": str(p), "size": p.stat().st_size, "sha256": file_sha256(p)}


def describe_tree(path: str | Path, **extra: Any) -> dict[str, Any]:
    """A directory output (a Zarr store): size, file count and content digest, plus e.g. the dataset uuid."""
    tree = describe(path)
    return {"path": str(Path(path)), "size": tree.size, "files": tree.files, "digest": tree.digest, **extra}


def params_hash(params: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(params, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _check_no_secrets(params: Any, where: str = "params") -> None:
    if isinstance(params, Mapping):
        for k, v in params.items():
            if any(w in str(k).lower() for w in SECRET_WORDS):
                raise WxpipeError(f"lineage {where}.{k}: refusing to record a credential-like key")
            _check_no_secrets(v, f"{where}.{k}")
    elif isinstance(params, list):
        for i, v in enumerate(params):
            _check_no_secrets(v, f"{where}[{i}]")


def read_record(path: str | Path) -> dict[str, Any]:
    try:
        return json.loads(Path(path).read_text())  # type: ignore[no-any-return]
    except (OSError, json.JSONDecodeError) as exc:
        raise WxpipeError(f"{path}: not a lineage record ({exc})") from None


def records_under(records_dir: str | Path) -> dict[str, dict[str, Any]]:
    """Every record under ``records_dir`` (recursively, ``.pending/`` left out) by id, whatever the current config
    declares: an earlier run's records stay in the catalogue. An unreadable file is logged and left out."""
    root = Path(records_dir)
    by_id: dict[str, dict[str, Any]] = {}
    for path in sorted(root.rglob("*.json")):
        if ".pending" in path.relative_to(root).parts:
            continue
        try:
            rec = read_record(path)
        except WxpipeError as exc:
            log.warning("%s", exc)
            continue
        if isinstance(rec, dict) and "id" in rec and "outputs" in rec:
            by_id.setdefault(rec["id"], rec | {"record_path": str(path)})
    return by_id


def software() -> dict[str, Any]:
    from .provenance import git_dirty, provenance

    info = provenance()
    git = {"commit": info["git"], "dirty": git_dirty()}
    return {"wxpipe": info["packages"].get("wxpipe"), "git": git, "packages": info["packages"]}


def local_path(path: str, root: Path) -> Path | None:
    """Where an output a record names lies on this machine: a path (relative ones against ``root``, the project the
    rules ran in) or a ``file:`` URL; None for a URL of another scheme (a copy at a remote site)."""
    parsed = urlparse(path)
    if parsed.scheme not in ("", "file"):
        return None
    p = Path(parsed.path if parsed.scheme else path)
    return p if p.is_absolute() else Path(os.path.abspath(root / p))


CHECKSUMS = (("sha256", "sha256:"), ("digest", ""), ("manifest_sha256", "manifest-sha256:"))


def checksum_text(out: Mapping[str, Any]) -> str | None:
    """An output's recorded checksum, prefixed with its algorithm (a store digest names its own); None if none."""
    return next((f"{prefix}{out[key]}" for key, prefix in CHECKSUMS if key in out), None)


def record_git(record: Mapping[str, Any]) -> tuple[str | None, bool | None]:
    """A record's git commit and dirty flag; records written before the flag hold the bare commit."""
    git = record.get("software", {}).get("git")
    if isinstance(git, Mapping):
        return git.get("commit"), git.get("dirty")
    return git, None


def write_record(
    path: str | Path,
    kind: Kind,
    outputs: Sequence[Mapping[str, Any]],
    inputs: Iterable[str | Path] = (),
    params: Mapping[str, Any] | None = None,
    started: dt.datetime | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Write the record for one rule's output; ``inputs`` are the upstream records' paths."""
    from .provenance import command_line, config_hash

    params = dict(params or {})
    _check_no_secrets(params)
    upstream = [read_record(p)["id"] for p in inputs]
    content = {"kind": kind, "outputs": list(outputs), "inputs": upstream, "params": params}
    if extra and "sources" in extra:  # the files read define the output as much as the records followed
        content["sources"] = extra["sources"]
    rid = f"{kind}-{params_hash(content)}"
    now = dt.datetime.now(dt.UTC)
    record = {
        "id": rid,
        "kind": kind,
        "outputs": list(outputs),
        "inputs": upstream,
        "params": params,
        "params_hash": params_hash(params),
        "software": software(),
        "config_hash": config_hash(),
        "execution": {
            "command": command_line(),
            "host": platform.node(),
            "slurm_job_id": os.environ.get("SLURM_JOB_ID"),
            "start": (started or now).isoformat(timespec="seconds"),
            "end": now.isoformat(timespec="seconds"),
        },
        **dict(extra or {}),
    }
    atomic_write_text(Path(path), json.dumps(record, indent=2, sort_keys=True, default=str) + "\n")
    return record


def publish(record: Path, target: Path) -> None:
    """Copy a pending record to its stage's place (the stage rule's output), checking it first."""
    read_record(record)
    atomic_write_text(target, record.read_text())


def catalogue(records: Iterable[str | Path]) -> dict[str, Any]:
    """Join records; every input id must resolve to another record of the catalogue."""
    by_id: dict[str, dict[str, Any]] = {}
    for p in sorted(Path(r) for r in records):
        rec = read_record(p)
        rec["record_path"] = str(p)
        by_id[rec["id"]] = rec
    dangling = sorted({i for r in by_id.values() for i in r["inputs"] if i not in by_id})
    if dangling:
        raise WxpipeError(f"lineage: inputs without a record: {', '.join(dangling)}")
    edges = [[i, r["id"]] for r in by_id.values() for i in r["inputs"]]
    return {"records": by_id, "edges": edges}


def write_catalogue(records: Iterable[str | Path] | Mapping[str, dict[str, Any]], out_dir: Path) -> dict[str, Any]:
    """``catalogue.json`` and a Graphviz ``catalogue.dot``. ``records`` are record paths, joined strictly by
    :func:`catalogue`, or records by id (:func:`records_under`: every record on disk), where an input whose
    record was written over since is listed under ``dangling`` rather than refused."""
    if isinstance(records, Mapping):
        by_id = dict(records)
        edges = [[i, rid] for rid, r in by_id.items() for i in r["inputs"] if i in by_id]
        dangling = sorted({i for r in by_id.values() for i in r["inputs"] if i not in by_id})
        cat: dict[str, Any] = {"records": by_id, "edges": edges, "dangling": dangling}
    else:
        cat = catalogue(records)
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out_dir / "catalogue.json", json.dumps(cat, indent=2, sort_keys=True, default=str) + "\n")
    atomic_write_text(out_dir / "catalogue.dot", graph_dot(cat))
    return cat


def _label(rec: Mapping[str, Any]) -> str:
    """``kind`` (a part's stage: ``init``, ``load 1/2``) and the first output's name."""
    out = rec["outputs"][0] if rec["outputs"] else {}
    kind = str(out.get("stage") or "part") if rec["kind"] == "part" else rec["kind"]
    return f"{kind}\\n{Path(str(out.get('path', ''))).name}".replace('"', "'")


def graph_dot(cat: Mapping[str, Any], href: Callable[[str], str] | None = None) -> str:
    """The records as a Graphviz graph; ``href(id)`` makes each node a link (the site's record pages)."""
    lines = ["digraph lineage {", "  rankdir=LR; node [shape=box, fontsize=10];"]
    for rid, rec in cat["records"].items():
        url = f', URL="{href(rid)}", target="_top"' if href else ""
        lines.append(f'  "{rid}" [label="{_label(rec)}"{url}];')
    lines += [f'  "{a}" -> "{b}";' for a, b in cat["edges"]]
    return "\n".join([*lines, "}"]) + "\n"
