"""Copying datasets and layouts between sites (``file:``, ``s3://``, ``ssh://``), proven by a checksummed manifest.

One engine (:mod:`.engine`) makes the manifest, decides what to send, verifies and marks a copy complete;
the backends (:mod:`.local`, :mod:`.s3`, :mod:`.ssh`) only list, hash and move files atomically.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .base import MARKER, Entry, Manifest, Store
from .engine import copy, describe
from .local import LocalStore
from .sites import file_path, open_store, scheme_of

__all__ = [
    "MARKER",
    "Entry",
    "LocalStore",
    "Manifest",
    "Store",
    "copy",
    "copy_tree",
    "describe",
    "file_path",
    "make_manifest",
    "open_store",
    "scheme_of",
    "verify_tree",
]


def make_manifest(root: Path, threads: int = 4) -> Manifest:
    """The manifest of a local tree (every file hashed)."""
    store = LocalStore(root)
    listing = store.listing()
    sums = store.hashes(list(listing), threads)
    return [Entry(p, st.size, sums[p]) for p, st in listing.items()]


def verify_tree(root: Path, manifest: Manifest, threads: int = 4) -> Manifest:
    """The entries whose file at ``root`` is missing, truncated or different (every file read)."""
    store = LocalStore(root)
    listing = store.listing()
    sums = store.hashes([e.path for e in manifest if e.path in listing], threads)
    return [e for e in manifest if sums.get(e.path) != e.sha256 or listing[e.path].size != e.size]


def copy_tree(src: Path, dst: Path, threads: int = 4) -> dict[str, Any]:
    """Copy one local tree to another (see :func:`copy`)."""
    return copy(LocalStore(src), LocalStore(dst), threads)
