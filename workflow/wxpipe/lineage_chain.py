"""What made an artefact, and whether it is still what was recorded: ``wxpipe lineage show`` and ``verify``.

Both read every record under the records folder (``results/lineage``, recursively, not ``.pending/``),
whatever the current config declares, so an earlier run's datasets stay traceable. Several records may
name one path: a store is written by init, load parts, the dataset and statistics stages in turn. ``show``
starts from the last of them (the one the others lead to); ``verify`` checks a path against the record
that wrote it last, and the earlier ones count as superseded, not as drift. A load part also names the files
it read (``sources``, with their checksums): ``show`` lists them under it, ``verify`` checks them for every
record that read them, since a source changed after the build is drift whoever read it last.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any

from .digest import SHAPE, TREE, copy_manifest_digest, recompute
from .errors import WxpipeError
from .fsutil import file_sha256
from .lineage import checksum_text, local_path, record_git, records_under

log = logging.getLogger(__name__)

Record = dict[str, Any]
INDENT = "    "
SOURCE = "source "
"""The prefix of a source file's status in :func:`checks` (``source ok``, ``source changed``)."""
SHOWN_SOURCES = 20
"""How many of a part's source files ``show`` lists unless asked for all."""


@dataclass(frozen=True)
class Drift:
    """A recorded output that no longer holds: ``what`` is "changed" or "missing"."""

    record: str
    path: str
    what: str
    expected: str
    found: str


def _same(a: Path, b: Path) -> bool:
    try:
        return a == b or os.path.samefile(a, b)
    except OSError:
        return False


def _upstream(records: Mapping[str, Record], rid: str) -> set[str]:
    seen: set[str] = set()
    todo = list(records[rid]["inputs"])
    while todo:
        i = todo.pop()
        if i not in seen and i in records:
            seen.add(i)
            todo.extend(records[i]["inputs"])
    return seen


def find(records: Mapping[str, Record], target: str, root: Path) -> list[str]:
    """The record with id ``target``, or the last records to write the output ``target`` names."""
    if target in records:
        return [target]
    want = local_path(target, root)
    hits = {
        rid
        for rid, rec in records.items()
        for out in rec["outputs"]
        if out.get("path") == target or (want and (w := local_path(str(out.get("path", "")), root)) and _same(w, want))
    }
    return sorted(_last(records, hits))


def _last(records: Mapping[str, Record], hits: set[str]) -> set[str]:
    """Those of ``hits`` that no other of them leads to: the last to write what they all name."""
    below = {u for rid in hits for u in _upstream(records, rid)}
    return {rid for rid in hits if rid not in below}


def show(records_dir: str | Path, target: str, root: str | Path | None = None, everything: bool = False) -> str:
    """The chain of records that made ``target`` (an output path or a record id), down to the records with
    no inputs; each record once, later mentions refer back to it. A part lists the files it read, the first
    :data:`SHOWN_SOURCES` of them unless ``everything``."""
    records = records_under(records_dir)
    tops = find(records, target, Path(root or Path.cwd()))
    if not tops:
        raise WxpipeError(
            f"lineage show: no record has id or output {target!r} ({len(records)} records searched in {records_dir})"
        )
    lines: list[str] = []
    seen: set[str] = set()
    for rid in tops:
        _walk(records, rid, 0, seen, lines, everything)
    return "\n".join(lines)


def _walk(
    records: Mapping[str, Record], rid: str, depth: int, seen: set[str], lines: list[str], everything: bool = False
) -> None:
    pad = INDENT * depth
    if rid in seen:
        lines.append(f"{pad}{rid} (shown above)")
        return
    if rid not in records:
        lines.append(f"{pad}{rid} (no record on disk)")
        return
    seen.add(rid)
    lines += [pad + line for line in record_lines(records[rid], everything)]
    for up in records[rid]["inputs"]:
        _walk(records, up, depth + 1, seen, lines, everything)


def record_lines(rec: Mapping[str, Any], everything: bool = False) -> list[str]:
    """One record as a few lines: kind and id, outputs with their checksums, the files it read (a load part's
    ``sources``: the first :data:`SHOWN_SOURCES` unless ``everything``), who ran it where and when."""
    ex = rec.get("execution", {})
    commit, dirty = record_git(rec)
    git = f"{commit or 'unknown'}{' (dirty)' if dirty else ''}"
    stages = ", ".join(str(out["stage"]) for out in rec["outputs"] if out.get("stage"))  # init, load i/N
    lines = [f"{rec['kind']} {rec['id']}" + (f" ({stages})" if stages else "")]
    for out in rec["outputs"]:
        size = f"  {out['size']} bytes" if "size" in out else ""
        lines.append(f"  output {out.get('path')}{size}  {checksum_text(out) or 'no checksum'}")
    lines += source_lines(rec.get("sources") or [], everything)
    lines.append(f"  git {git}  host {ex.get('host')}  slurm job {ex.get('slurm_job_id') or '-'}  end {ex.get('end')}")
    lines.append(f"  command {ex.get('command') or '(not recorded)'}")
    return lines


def source_lines(sources: Sequence[Mapping[str, Any]], everything: bool = False) -> list[str]:
    """``sources: N files, X bytes``, then a line per file (or store) with its checksum."""
    if not sources:
        return []
    total = sum(int(src.get("size", 0)) for src in sources)
    lines = [f"  sources: {len(sources)} files, {total} bytes"]
    shown = sources if everything else sources[:SHOWN_SOURCES]
    for src in shown:
        files = f"  {src['files']} files" if "files" in src else ""
        lines.append(
            f"    {src.get('path')}  {src.get('size', '?')} bytes{files}  {checksum_text(src) or 'no checksum'}"
        )
    if len(shown) < len(sources):
        lines.append(f"    … and {len(sources) - len(shown)} more (lineage show --all)")
    return lines


def _last_writers(records: Mapping[str, Record], root: Path) -> dict[Path | str, str]:
    """Each output path (local path or URL) -> the record that wrote it last: the one the others lead to,
    else (unrelated records) the latest to end."""
    naming: dict[Path | str, set[str]] = {}
    for rid, rec in records.items():
        for out in rec["outputs"]:
            naming.setdefault(_key(str(out.get("path", "")), root), set()).add(rid)
    end = {rid: (str(rec.get("execution", {}).get("end", "")), rid) for rid, rec in records.items()}
    return {path: max(_last(records, rids), key=end.__getitem__) for path, rids in naming.items()}


def _key(path: str, root: Path) -> Path | str:
    where = local_path(path, root)
    return path if where is None else where


def _recompute(out: Mapping[str, Any], where: Path) -> tuple[str, str] | None:
    """(expected, found) for an output's recorded checksum, or None when it has none this can recompute."""
    if "sha256" in out and where.is_file():
        return str(out["sha256"]), file_sha256(where)
    digest = str(out.get("digest", ""))
    if digest.startswith((f"{TREE}:", f"{SHAPE}:")) and where.is_dir():
        return digest, recompute(digest, where)
    if "manifest_sha256" in out and where.is_dir():
        return str(out["manifest_sha256"]), copy_manifest_digest(where)
    if ("sha256" in out or digest) and where.exists():
        return checksum_text(out) or "", f"a {'directory' if where.is_dir() else 'file'}"
    return None


Remote = Callable[[Mapping[str, Any]], tuple[str, str]]  # a remote output -> (status, what was found)
SiteCheck = Callable[[Mapping[str, Any], Mapping[str, Any]], tuple[str, str]]  # (record params, output) -> the same


def _check(
    rid: str, out: Mapping[str, Any], root: Path, last: str, remote: Remote | None = None
) -> tuple[str, Drift | None]:
    path = str(out.get("path", ""))
    where = local_path(path, root)
    if last != rid:
        return f"superseded by {last}", None
    if where is None:
        if remote is None or "manifest_sha256" not in out:
            return "unchecked (remote)", None
        status, found = remote(out)
        return status, None if status == "ok" else Drift(rid, path, status, checksum_text(out) or "", found)
    if not where.exists():
        return "missing", Drift(rid, path, "missing", checksum_text(out) or "present", "nothing")
    pair = _recompute(out, where)
    if pair is None:
        return "unchecked", None
    expected, found = pair
    if expected == found:
        return "ok", None
    return "changed", Drift(rid, path, "changed", expected, found)


def checks(
    records: Mapping[str, Record], root: Path, sites: SiteCheck | None = None
) -> Iterator[tuple[str, str, str, Drift | None]]:
    """(record id, path, status, drift or None) for every output of every record; ``sites`` checks the copies
    at remote sites (else they are unchecked)."""
    last = _last_writers(records, root)
    for rid in sorted(records):
        remote = None if sites is None else partial(sites, records[rid].get("params", {}))
        for out in records[rid]["outputs"]:
            path = str(out.get("path", ""))
            status, drift = _check(rid, out, root, last[_key(path, root)], remote)
            yield rid, path, status, drift
    yield from source_checks(records, root)


def source_checks(records: Mapping[str, Record], root: Path) -> Iterator[tuple[str, str, str, Drift | None]]:
    """(record id, path, ``source <status>``, drift or None) for every file a record read (a load part's
    ``sources``). Every reader is checked, not only the last: a dataset made from a file that has changed since
    cannot be made again from it. A file is hashed once per recorded checksum, however many records read it."""
    done: dict[tuple[str, str | None], tuple[str, Drift | None]] = {}
    for rid in sorted(records):
        for src in records[rid].get("sources") or []:
            path = str(src.get("path", ""))
            key = (path, checksum_text(src))
            if key not in done:
                done[key] = _check(rid, src, root, rid)
            status, drift = done[key]
            yield rid, path, SOURCE + status, drift and replace(drift, record=rid)


def verify(
    records_dir: str | Path,
    root: str | Path | None = None,
    *,
    sites: bool = False,
    full: bool = False,
    strict: bool = False,
) -> list[Drift]:
    """Recompute every recorded checksum (file SHA-256, store digest, a local copy's manifest, the files a part
    read) and return what no longer matches or is gone; outputs recorded without one are listed as unchecked,
    not drift. Sources are counted apart in the summary: an input changed since the build is drift too.

    ``sites``: also check each copy at a remote site (:mod:`.lineage_remote`; ``full`` re-reads its files).
    A site that cannot be reached is listed, and is drift only when ``strict``."""
    from .lineage_remote import SiteProbe

    records = records_under(records_dir)
    drift: list[Drift] = []
    counts: Counter[str] = Counter()
    sources: Counter[str] = Counter()
    probe = SiteProbe(full) if sites else None
    for rid, path, status, d in checks(records, Path(root or Path.cwd()), probe):
        (sources if status.startswith(SOURCE) else counts)[status.removeprefix(SOURCE).split(" ", 1)[0]] += 1
        if d is None:
            log.info("%s: %s (%s)", status, path, rid)
        else:
            log.warning("%s: %s (%s): recorded %s, found %s", status, path, rid, d.expected, d.found)
            if strict or d.what != "unreachable":
                drift.append(d)
    summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "no outputs"
    if sources:
        summary += "; sources: " + ", ".join(f"{n} {s}" for s, n in sorted(sources.items()))
    log.info("lineage verify: %d records, %s", len(records), summary)
    return drift
