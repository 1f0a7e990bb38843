"""Progress bars that suit both a terminal and a Snakemake log file."""

from __future__ import annotations

import sys
from typing import Any

from tqdm import tqdm


def progress(**kwargs: Any) -> tqdm:  # type: ignore[type-arg]
    """A tqdm bar on stderr: live in a terminal, one line every 30 s in a log file (not thousands)."""
    interactive = sys.stderr.isatty()
    kwargs.setdefault("mininterval", 0.5 if interactive else 30.0)
    kwargs.setdefault("file", sys.stderr)
    kwargs.setdefault("dynamic_ncols", interactive)
    return tqdm(**kwargs)
