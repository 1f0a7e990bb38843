"""What made an artefact: software versions, git commit and host (datasets and lineage records alike;
light on purpose: a record written by `wxpipe copy` should not import zarr for it), and the command line
that ran, with what looks like a credential blanked out."""

from __future__ import annotations

import os
import platform
import re
import shlex
import subprocess
import sys
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

_PACKAGES = ("wxpipe", "zarr", "numpy", "eccodes", "xarray", "torch", "mlflow", "snakemake")
SECRET_NAME = re.compile(r"secret|passw|token|key|credential", re.IGNORECASE)
HIDDEN = "***"
CONFIG_HASH = "WXPIPE_CONFIG_HASH"  # set by the Snakefile: the hash of the config the run was given


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


def config_hash() -> str | None:
    return os.environ.get(CONFIG_HASH) or None


def command_line(argv: Sequence[str] | None = None) -> str:
    """``sys.argv`` as one shell line, the program by its basename, secrets blanked: the value of an option
    named like a credential (``--secret-key X``, ``--token=X``), of ``name=value`` pairs named so, and the
    user and password of URLs."""
    args = list(sys.argv if argv is None else argv)
    if args:
        args[0] = os.path.basename(args[0])
    out: list[str] = []
    hide_next = False
    for arg in args:
        if hide_next and not arg.startswith("--"):
            out.append(HIDDEN)
            hide_next = False
            continue
        hide_next = arg.startswith("-") and "=" not in arg and SECRET_NAME.search(arg) is not None
        out.append(_redact_arg(arg))
    return shlex.join(out)


def _redact_arg(arg: str) -> str:
    from .tracking import redact

    name, eq, value = arg.partition("=")
    if eq and SECRET_NAME.search(name) and "://" not in name:
        return f"{name}={HIDDEN}"
    if "://" in arg:
        return f"{name}={redact(value)}" if eq and "://" not in name else redact(arg)
    return arg


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
