"""``file:`` sites: a folder on a file system this process can see (local disk, Lustre, GPFS).

Each file is read once, hashed and written to a temporary name beside its target, then renamed into
place, so a file is either absent or whole after kill -9 and its bytes are checked as they are written.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, NamedTuple

from ..errors import WxpipeError
from ..fsutil import atomic_write_text, file_sha256, is_temporary, write_atomic
from .base import MARKER, Advance, Entry, Stat, Store, listed, parse_marker

LINK = Stat(-1, "symlink")  # a symbolic link to a file at a destination: never equal to a source file, so replaced


class Tree(NamedTuple):
    """A folder's content files, its symbolic links (never followed) and its writers' temporary files."""

    files: dict[str, Stat]
    links: list[str]
    temporaries: list[str]


def walk_tree(root: Path) -> Tree:
    """Every file under ``root`` by its relative path, with a symbolic link (to a file: in ``files`` as
    :data:`LINK`; to a folder: not entered) in ``links`` and temporaries apart (stat'ed with lstat, one call
    per file as before)."""
    files: dict[str, Stat] = {}
    links: list[str] = []
    temporaries: list[str] = []
    for dirpath, dirs, names in os.walk(root):
        rel = os.path.relpath(dirpath, root)
        prefix = "" if rel == "." else f"{rel}/"
        links += [prefix + d for d in dirs if os.path.islink(os.path.join(dirpath, d))]  # os.walk skips them
        for name in names:
            path = prefix + name
            st = os.lstat(os.path.join(dirpath, name))
            if stat.S_ISLNK(st.st_mode):
                links.append(path)
                files[path] = LINK
            elif is_temporary(name):
                temporaries.append(path)
            elif listed(path):
                files[path] = Stat(st.st_size, str(st.st_mtime_ns))
    return Tree(dict(sorted(files.items())), sorted(links), temporaries)


def local_listing(root: Path) -> dict[str, Stat]:
    return walk_tree(root).files


def links_on_paths(root: Path, links: Iterable[str], paths: Iterable[str]) -> None:
    """Refuse to write ``paths`` under ``root`` through a symbolic link to a folder (writes would land outside)."""
    folders = set(links)
    for path in paths:
        parts = path.split("/")
        for i in range(1, len(parts)):
            if (link := "/".join(parts[:i])) in folders:
                raise WxpipeError(f"copy: {root / link} is a symbolic link; refusing to write {path} through it")


def remove_empty_parents(root: Path, paths: Iterable[str]) -> None:
    """Remove the folders (below ``root``) that deleting ``paths`` left empty, deepest first."""
    for folder in sorted({p.rsplit("/", 1)[0] for p in paths if "/" in p}, key=lambda f: -f.count("/")):
        while folder:
            try:
                os.rmdir(root / folder)
            except OSError:  # not empty (or gone): its parents are not empty either
                break
            folder = folder.rsplit("/", 1)[0] if "/" in folder else ""


def read_checked(path: Path, entry: Entry) -> tuple[bytes, str]:
    """The bytes of a source file and their SHA-256, provided they are still those of its manifest entry."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise WxpipeError(f"copy: {path} vanished during the copy; run the copy again") from None
    sha = hashlib.sha256(data).hexdigest()
    if len(data) != entry.size or (entry.sha256 and sha != entry.sha256):
        raise WxpipeError(f"copy: {path} changed while it was being copied; run the copy again")
    return data, sha


def write_checked(path: Path, data: Any, entry: Entry, where: str) -> str:
    """Write fetched bytes only if they are the manifest's bytes (the check at the destination, in flight)."""
    view = memoryview(data)
    if len(view) != entry.size or hashlib.sha256(view).hexdigest() != entry.sha256:
        raise WxpipeError(f"copy: {where}/{entry.path} does not match its manifest (changed at the source?)")
    write_atomic(path, view)
    return entry.sha256


def copy_many(src: Path, dst: Path, entries: Sequence[Entry], threads: int, advance: Advance) -> dict[str, str]:
    def one(e: Entry) -> str:
        data, sha = read_checked(src / e.path, e)
        write_atomic(dst / e.path, data)
        advance(e.size)
        return sha

    with ThreadPoolExecutor(threads) as pool:
        return dict(zip([e.path for e in entries], pool.map(one, entries), strict=True))


class LocalStore(Store):
    def __init__(self, root: Path, url: str | None = None) -> None:
        self.local_root = root
        self.root = root
        self.url = url or root.absolute().as_uri()

    temporaries: Sequence[str] = ()  #: the temporary files the last listing found

    def listing(self) -> dict[str, Stat]:
        if not self.root.is_dir():
            self.links, self.temporaries = (), ()
            return {}
        tree = walk_tree(self.root)
        self.links, self.temporaries = tree.links, tree.temporaries
        return tree.files

    def remove_temporaries(self) -> int:
        """What a killed copy left (``.X.tmp<pid>``, older wxpipe's ``.X.wxpipe-part<pid>``); never zarr's."""
        ours = [p for p in self.temporaries if not p.endswith(".partial")]
        for p in ours:
            (self.root / p).unlink(missing_ok=True)
        self.temporaries = [p for p in self.temporaries if p.endswith(".partial")]
        return len(ours)

    def delete(self, paths: Sequence[str]) -> None:
        for p in paths:
            (self.root / p).unlink(missing_ok=True)
        remove_empty_parents(self.root, paths)

    def read_marker(self) -> dict[str, Any] | None:
        try:
            return parse_marker((self.root / MARKER).read_text(), self.url)
        except (FileNotFoundError, NotADirectoryError):
            return None

    def write_marker(self, data: dict[str, Any]) -> None:
        atomic_write_text(self.root / MARKER, _dumps(data))

    def remove_marker(self) -> None:
        (self.root / MARKER).unlink(missing_ok=True)

    def hashes(self, paths: Sequence[str], threads: int) -> dict[str, str]:
        def one(p: str) -> str | None:
            try:
                return file_sha256(self.root / p)
            except FileNotFoundError:
                return None

        with ThreadPoolExecutor(threads) as pool:
            sums = list(pool.map(one, paths))
        return {p: s for p, s in zip(paths, sums, strict=True) if s is not None}

    def upload(self, root: Path, entries: Sequence[Entry], threads: int, advance: Advance) -> dict[str, str]:
        return copy_many(root, self.root, entries, threads, advance)

    def download(self, entries: Sequence[Entry], root: Path, threads: int, advance: Advance) -> dict[str, str]:
        return copy_many(self.root, root, entries, threads, advance)


def _dumps(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=1) + "\n"
