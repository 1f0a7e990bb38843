"""A model's bundle: the files its transfers send, gathered under one folder as the copy engine wants a tree.

Hard links where the file system allows (no byte is copied, and a link keeps the file's modification time, so a
rerun's quick check still recognises what a site already holds), else copies. The folder is built under a
temporary name and renamed into place: a killed job leaves no half bundle that looks whole.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from pathlib import Path

from ..errors import WxpipeError
from ..fsutil import atomic_path


def parse_files(pairs: list[str]) -> dict[str, Path]:
    """``NAME=PATH`` arguments -> {name in the bundle: file}; a name must stay inside the bundle."""
    files: dict[str, Path] = {}
    for pair in pairs:
        name, sep, path = pair.partition("=")
        parts = Path(name).parts
        if not sep or not name or not path or Path(name).is_absolute() or ".." in parts:
            raise WxpipeError(f"bundle: {pair!r}: give NAME=PATH with a relative NAME inside the bundle")
        if name in files:
            raise WxpipeError(f"bundle: {name!r} given twice")
        files[name] = Path(path)
    return files


def make_bundle(out: Path, files: Mapping[str, Path]) -> int:
    """Gather ``files`` under ``out`` (replacing what was there); returns their total size in bytes."""
    missing = [str(p) for p in files.values() if not p.is_file()]
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise WxpipeError(f"bundle {out}: no file {missing[0]}{more}")
    with atomic_path(out) as tmp:
        tmp.mkdir()
        for name, src in files.items():
            dst = tmp / name
            dst.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(src, dst)
            except OSError:  # another file system, or one without hard links
                shutil.copy2(src, dst)
    return sum(p.stat().st_size for p in files.values())
