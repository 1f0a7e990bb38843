"""Progress bars that suit both a terminal and a log file (Snakemake's, SLURM's).

In a terminal: tqdm's live bar with rate and ETA. Elsewhere (a log file, a pipe, a tty that
reports 0 columns, as some batch ptys do): one plain line every few seconds with the same counts,
rate and ETA, never carriage returns that glue a whole run into one line, and a last line when the
work ends. :func:`done` is the one-line summary each long command ends with.
"""

from __future__ import annotations

import os
import sys
import time
from typing import IO, Any

from tqdm import tqdm

LOG_INTERVAL = 5.0  # seconds between two lines of a bar in a log


def interactive(stream: IO[str]) -> bool:
    """A terminal that can draw a bar: a tty with a known, non-zero width."""
    try:
        return stream.isatty() and os.get_terminal_size(stream.fileno()).columns > 0
    except (OSError, ValueError, AttributeError):
        return False


class _Lines:
    """A stream for tqdm that turns each redraw (``\\r`` + bar) into a line of its own."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream

    def write(self, text: str) -> None:
        line = text.replace("\r", "").strip()
        if line:
            self.stream.write(line + "\n")

    def flush(self) -> None:
        self.stream.flush()


def progress(**kwargs: Any) -> tqdm:
    """A tqdm bar on stderr: live in a terminal, a line every few seconds in a log (not thousands)."""
    stream = kwargs.pop("file", sys.stderr)
    if interactive(stream):
        kwargs.setdefault("mininterval", 0.5)
        kwargs.setdefault("dynamic_ncols", True)
        return tqdm(file=stream, **kwargs)
    kwargs.setdefault("mininterval", LOG_INTERVAL)
    kwargs.setdefault("maxinterval", LOG_INTERVAL)
    return tqdm(file=_Lines(stream), ncols=0, **kwargs)  # ncols 0: counts, ETA and rate, no bar


def done(what: str, started: float, size: int | None = None) -> str:
    """``what, size, time``: the line a long command ends with (``started`` from time.monotonic())."""
    took = time.monotonic() - started
    return f"{what}; {human(size) + ', ' if size is not None else ''}{took:.1f} s"


def human(n: float) -> str:
    """Bytes in decimal units, as file managers and ``du --si`` show them."""
    if abs(n) < 1000:
        return f"{n:.0f} B"
    for unit in ("kB", "MB", "GB"):
        n /= 1000
        if abs(n) < 1000:
            return f"{n:.1f} {unit}"
    return f"{n / 1000:.1f} TB"
