"""Content digests of directory outputs (Zarr stores), named by algorithm so a later check knows how to
recompute one: a record written today and verified next year must agree on what was hashed."""

from __future__ import annotations

import json
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from hashlib import sha256
from pathlib import Path
from typing import Any, NamedTuple

from .fsutil import SNAKEMAKE_STAMP, file_sha256, is_temporary, tree_files

TREE = "sha256-tree"  # every file's bytes
SHAPE = "sha256-shape"  # the metadata files' bytes, every other file by name and size
FULL_LIMIT = 2 * 2**30  # bytes: a larger store gets SHAPE, so a record of a TB dataset does not read it all again
THREADS = 8  # hashlib releases the GIL on large buffers: a store's ~1600 chunk files hash in parallel
METADATA = {".zarray", ".zattrs", ".zgroup", ".zmetadata", "zarr.json"}


def hashes(root: Path, files: Sequence[Path], threads: int = THREADS) -> list[str]:
    """SHA-256 of each file (relative to ``root``), in the order given."""
    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        return list(pool.map(lambda f: file_sha256(root / f), files))


class Tree(NamedTuple):
    """A directory output as its record names it: content digest, bytes and file count, from one walk."""

    digest: str
    size: int
    files: int


def describe(root: str | Path, threads: int = THREADS, algorithm: str | None = None) -> Tree:
    """The store's :class:`Tree`. The digest, ``<algorithm>:<hex>``, is SHA-256 over the sorted lines
    ``relative/path<TAB>size<TAB>sha256`` of every content file (writers' temporaries and Snakemake's stamp are
    not content). :data:`TREE` hashes every file; :data:`SHAPE` (chosen above :data:`FULL_LIMIT` unless
    ``algorithm`` says) hashes the Zarr metadata files and puts ``-`` for the others, whose names and sizes still
    count. One walk and one ``stat`` per file: on Lustre, listing a TB store is what costs."""
    root = Path(root)
    files = [f for f in tree_files(root) if not is_temporary(f.name) and f.name != SNAKEMAKE_STAMP]
    sizes = [(root / f).stat().st_size for f in files]
    algorithm = algorithm or (TREE if sum(sizes) <= FULL_LIMIT else SHAPE)
    if algorithm not in (TREE, SHAPE):
        raise ValueError(f"unknown tree digest {algorithm!r}")
    chosen = files if algorithm == TREE else [f for f in files if f.name in METADATA]
    sums = dict(zip(chosen, hashes(root, chosen, threads), strict=True))
    lines = (f"{f.as_posix()}\t{size}\t{sums.get(f, '-')}\n" for f, size in zip(files, sizes, strict=True))
    return Tree(f"{algorithm}:{sha256(''.join(lines).encode()).hexdigest()}", sum(sizes), len(files))


def tree_digest(root: str | Path, threads: int = THREADS, algorithm: str | None = None) -> str:
    """The digest of :func:`describe`."""
    return describe(root, threads, algorithm).digest


def recompute(recorded: str, root: str | Path) -> str:
    """The digest of ``root`` now, by the algorithm ``recorded`` names."""
    return tree_digest(root, algorithm=recorded.split(":", 1)[0])


def copy_manifest_digest(root: str | Path, threads: int = THREADS) -> str:
    """What a local copy's ``manifest_sha256`` would be if it were made from the files now there: the copy
    marker's order for the files it lists, then any others; equal to the recorded digest only when every
    file, size and checksum still matches. The files are listed and hashed as a copy lists and hashes them
    (:func:`wxpipe.transfer.make_manifest`)."""
    from .transfer import MARKER, make_manifest
    from .transfer.base import manifest_digest, manifest_to_json

    root = Path(root)
    present = {e.path: e for e in make_manifest(root, threads)}
    try:
        marker: dict[str, Any] = json.loads((root / MARKER).read_text())
        order = [str(e["path"]) for e in marker["manifest"]]
    except (OSError, ValueError, KeyError, TypeError):
        order = []
    names = [p for p in order if p in present] + sorted(set(present) - set(order))
    return manifest_digest(manifest_to_json([present[p] for p in names]))
