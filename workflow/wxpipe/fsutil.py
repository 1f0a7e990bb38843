"""File helpers: atomic writes (nothing half-written is ever in its final place) and hashing."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

BLOCK = 1 << 20


def temporary_name(path: Path) -> Path:
    """The one temporary name the project writes ``path`` under (hidden, per process): ``.X.tmp<pid>``."""
    return path.with_name(f".{path.name}.tmp{os.getpid()}")


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary name beside ``path``; rename it into place only if the block succeeds.

    After a kill -9 the file is whole or absent; the temporary left behind is an :func:`is_temporary` name,
    which finalise, verify and copy remove or skip. The temporary is unlinked only when the block failed
    (after the rename it no longer exists: one system call fewer per file written). A folder (a store)
    works too: one that failed is removed whole, and one that replaces an older folder moves the old one
    aside first (a rename cannot land on a folder that has files), then removes it.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_name(path)
    try:
        yield tmp
        if tmp.is_dir() and path.is_dir() and not path.is_symlink():
            old = temporary_name(path.with_name(path.name + ".old"))
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old)
        else:
            os.replace(tmp, path)
    except BaseException:
        if tmp.is_dir() and not tmp.is_symlink():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)
        raise


def write_atomic(path: Path, data: Any) -> None:
    """Write bytes (or any buffer) to ``path`` through :func:`atomic_path`."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write(data)


_TEMP = re.compile(r"\..+\.tmp\d+")


def remove_temps(root: Path) -> int:
    """Delete what killed writers left under ``root`` (every :func:`is_temporary` name: ours and
    zarr-python's ``*.partial``); call only when no writer runs.

    A SIGKILL skips the ``finally`` that removes the temporary name; the final name was never
    written, so the leftover is garbage that would otherwise be counted, listed and transferred.
    """
    removed = 0
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            if is_temporary(name):
                Path(dirpath, name).unlink(missing_ok=True)
                removed += 1
    return removed


def atomic_write_text(path: Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(BLOCK):
            h.update(block)
    return h.hexdigest()


def tree_files(root: Path) -> list[Path]:
    """Every regular file under ``root``, as sorted relative paths."""
    out = []
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            out.append(Path(dirpath, name).relative_to(root))
    return sorted(out)


def tree_size(root: Path) -> tuple[int, int]:
    files = tree_files(root)
    return sum((root / f).stat().st_size for f in files), len(files)


SNAKEMAKE_STAMP = ".snakemake_timestamp"  # Snakemake puts it in a directory output after the job: never content


def is_temporary(name: str) -> bool:
    """Whether a file name (or the last part of a path) is a writer's temporary, never content to list or copy:
    :func:`atomic_path`'s ``.X.tmp<pid>``, a copy's ``.X.wxpipe-part<pid>`` or zarr-python's ``X.<hex>.partial``
    (an interrupted store write)."""
    base = name.rsplit("/", 1)[-1]
    return base.endswith(".partial") or ".wxpipe-part" in base or _TEMP.fullmatch(base) is not None


def store_attrs(store: Path) -> dict[str, Any] | None:
    """A Zarr store's root attributes read as JSON (v2 ``.zattrs``, else v3 ``zarr.json``), without zarr, so either
    training environment can read them; None where neither file is there and readable."""
    for name, key in ((".zattrs", None), ("zarr.json", "attributes")):
        try:
            doc = json.loads((store / name).read_text())
        except (OSError, json.JSONDecodeError):
            continue
        return dict(doc.get(key, {}) if key else doc)
    return None
