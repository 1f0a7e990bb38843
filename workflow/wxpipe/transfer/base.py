"""What every site backend offers the copy engine: a few primitives, so manifest, resume and verify live once.

A backend lists its files with a *stamp* (what changes when a file is rewritten: the modification time in
nanoseconds on a file system, the ETag on S3), reads and writes the completion marker, hashes stored files,
and moves files to or from a local folder, each file atomically (whole or absent, never torn).
"""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from ..fsutil import SNAKEMAKE_STAMP, is_temporary

MARKER = ".wxpipe-copy.json"
TEMP_TAG = ".wxpipe-part"  # the remote marker's temporary name (ssh); never listed, never copied (is_temporary)

Advance = Callable[[int], None]  # called with the bytes of each file once it is safely in place


class Entry(NamedTuple):
    """One file of a manifest: its path relative to the tree root, size in bytes and SHA-256.

    A named tuple, not a dataclass: a manifest holds one per file, and ``dataclasses`` costs every CLI start
    ~10 ms of imports."""

    path: str
    size: int
    sha256: str


Manifest = list[Entry]


class Stat(NamedTuple):
    size: int
    stamp: str


def manifest_to_json(manifest: Sequence[Entry]) -> list[dict[str, Any]]:
    return [e._asdict() for e in manifest]


def manifest_digest(data: Sequence[dict[str, Any]]) -> str:
    """The SHA-256 of a manifest's JSON form (keys sorted): what lineage records name a copy's content by."""
    return hashlib.sha256(json.dumps(list(data), sort_keys=True).encode()).hexdigest()


def manifest_from_json(data: Sequence[dict[str, Any]]) -> Manifest:
    return [Entry(str(d["path"]), int(d["size"]), str(d["sha256"])) for d in data]


def listed(name: str) -> bool:
    """Whether a relative path is part of a tree's content (not our marker, Snakemake's stamp of a directory
    output, or a half-written file, ours or zarr's)."""
    return name.rsplit("/", 1)[-1] not in (MARKER, SNAKEMAKE_STAMP) and not is_temporary(name)


def parse_marker(text: str, url: str) -> dict[str, Any] | None:
    """The marker's content, or None when it is unreadable (then the copy counts as not complete)."""
    try:
        data = json.loads(text)
    except ValueError:
        return None
    return data if isinstance(data, dict) and "manifest" in data and data.get("destination") == url else None


class Store(ABC):
    """A tree of files at a site: a folder here, a prefix in an S3 bucket, or a folder on an SSH host."""

    url: str  #: where, for messages and lineage records; never carries a credential
    local_root: Path | None = None  #: the folder, for a ``file:`` store
    links: Sequence[str] = ()  #: symbolic links (files and folders) the last listing found (``file:`` stores)
    hashes_in_flight = True  #: upload and download hash the bytes they move (else the engine hashes after)

    @abstractmethod
    def listing(self) -> dict[str, Stat]:
        """Every content file (relative path → size and stamp); empty when the tree does not exist."""

    @abstractmethod
    def read_marker(self) -> dict[str, Any] | None: ...

    @abstractmethod
    def write_marker(self, data: dict[str, Any]) -> None:
        """Write the completion marker atomically."""

    @abstractmethod
    def remove_marker(self) -> None: ...

    @abstractmethod
    def hashes(self, paths: Sequence[str], threads: int) -> dict[str, str]:
        """SHA-256 of the stored bytes of each path (reads them all); missing files are left out."""

    def claimed_hashes(self, paths: Sequence[str], threads: int) -> dict[str, str]:
        """The cheapest trustworthy SHA-256 of each path: read the bytes unless the backend stores it."""
        return self.hashes(paths, threads)

    def snapshot(self) -> tuple[dict[str, Stat], dict[str, Any] | None]:
        """Listing and marker together (a remote backend does it in one round trip)."""
        return self.listing(), self.read_marker()

    @abstractmethod
    def upload(self, root: Path, entries: Sequence[Entry], threads: int, advance: Advance) -> dict[str, str]:
        """Send ``root/<path>`` of each entry here; returns the SHA-256 of the bytes sent, per path hashed in flight.

        An entry whose ``sha256`` is empty is not known yet: its sent bytes define it. A known one must match.
        """

    @abstractmethod
    def download(self, entries: Sequence[Entry], root: Path, threads: int, advance: Advance) -> dict[str, str]:
        """Fetch each entry into ``root/<path>``; returns the SHA-256 of the bytes written, per path hashed so."""

    @abstractmethod
    def delete(self, paths: Sequence[str]) -> None:
        """Remove these files (absent ones are fine) and the folders that this leaves empty."""

    def remove_temporaries(self) -> int:
        """Delete what killed copies left of their temporary names (none where writes are atomic by nature)."""
        return 0

    def confirm(self, listing: dict[str, Stat]) -> list[str]:
        """Paths sent by this process whose listed stamp is not the one the write answered (none by default)."""
        return []

    def close(self) -> None:  # noqa: B027 - most backends hold nothing
        """Release connections."""
