"""What made an artefact: software versions, git commit and host (datasets and lineage records alike;
light on purpose: a record written by `wxpipe copy` should not import zarr for it)."""

from __future__ import annotations

import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

_PACKAGES = ("wxpipe", "zarr", "numpy", "eccodes", "xarray", "torch", "mlflow", "snakemake")


def provenance() -> dict[str, Any]:
    """Software versions, git commit and host: what made this artefact."""
    packages = {}
    for name in _PACKAGES:
        try:
            packages[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return {
        "python": platform.python_version(),
        "packages": packages,
        "git": git_commit(),
        "host": platform.node(),
    }


def git_commit() -> str | None:
    """The commit of the source tree wxpipe runs from; None outside a git checkout."""
    return _git("rev-parse", "HEAD") or None


def git_dirty() -> bool | None:
    """Whether tracked files of that tree differ from its commit; None outside a git checkout."""
    out = _git("status", "--porcelain", "--untracked-files=no")
    return None if out is None else bool(out)


def _git(*args: str) -> str | None:
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", "-C", str(here), *args], capture_output=True, text=True, timeout=5, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip()
