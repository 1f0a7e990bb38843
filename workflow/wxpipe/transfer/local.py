"""Copies to ``file:`` sites: parallel, resumable, verified against a manifest made at the source.

The destination is marked complete (``.wxpipe-copy.json``) only after every file verifies, so an
interrupted copy is never mistaken for a finished one; a rerun sends only what is missing or different.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from ..errors import WxpipeError
from ..fsutil import atomic_write_text, file_sha256, tree_files
from ..progress import progress

log = logging.getLogger(__name__)

MARKER = ".wxpipe-copy.json"


@dataclass(frozen=True)
class Entry:
    path: str
    size: int
    sha256: str


Manifest = list[Entry]


def make_manifest(root: Path, threads: int = 4) -> Manifest:
    files = [f for f in tree_files(root) if f.name != MARKER]
    with ThreadPoolExecutor(threads) as pool:
        sums = list(pool.map(lambda f: file_sha256(root / f), files))
    return [Entry(str(f), (root / f).stat().st_size, s) for f, s in zip(files, sums, strict=True)]


def _matches(path: Path, entry: Entry) -> bool:
    try:
        return path.stat().st_size == entry.size and file_sha256(path) == entry.sha256
    except FileNotFoundError:
        return False


def verify_tree(root: Path, manifest: Iterable[Entry], threads: int = 4) -> list[Entry]:
    """The entries whose file at ``root`` is missing, truncated or different."""
    entries = list(manifest)
    with ThreadPoolExecutor(threads) as pool:
        ok = list(pool.map(lambda e: _matches(root / e.path, e), entries))
    return [e for e, good in zip(entries, ok, strict=True) if not good]


def _send(src: Path, dst: Path, entry: Entry) -> None:
    target = dst / entry.path
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.part{os.getpid()}")
    shutil.copyfile(src / entry.path, tmp)
    os.replace(tmp, target)  # a file is either absent or whole: no torn chunk after kill -9


def copy_tree(src: Path, dst: Path, threads: int = 4) -> dict[str, object]:
    """Copy ``src`` to ``dst``, verify it, then write the completion marker; returns a summary."""
    if not src.is_dir():
        raise WxpipeError(f"copy: source {src} is not a directory")
    (dst / MARKER).unlink(missing_ok=True)
    manifest = make_manifest(src, threads)
    todo = verify_tree(dst, manifest, threads)
    total = sum(e.size for e in todo)
    log.info("copy %s -> %s: %d of %d files to send (%.1f MB)", src, dst, len(todo), len(manifest), total / 1e6)
    with (
        progress(total=total, desc="copy", unit="B", unit_scale=True) as bar,
        ThreadPoolExecutor(threads) as pool,
    ):
        for e, _ in zip(todo, pool.map(lambda e: _send(src, dst, e), todo), strict=True):
            bar.update(e.size)
    bad = verify_tree(dst, manifest, threads)
    if bad:
        raise WxpipeError(f"copy {src} -> {dst}: {len(bad)} files failed verification, e.g. {bad[0].path}")
    summary = {
        "source": str(src),
        "destination": str(dst),
        "files": len(manifest),
        "bytes": sum(e.size for e in manifest),
        "sent_files": len(todo),
        "sent_bytes": total,
        "manifest": [e.__dict__ for e in manifest],
    }
    atomic_write_text(dst / MARKER, json.dumps(summary, indent=1) + "\n")
    log.info("copied %d files (%d sent), verified", len(manifest), len(todo))
    return summary
