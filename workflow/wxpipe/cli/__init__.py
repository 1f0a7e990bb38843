"""``wxpipe <stage>``: every Snakemake rule is one of these commands, runnable by hand with the same arguments."""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import sys
import time
from collections.abc import Sequence

from .._malloc import keep_freed_buffers
from ..errors import WxpipeError
from ._commands import COMMANDS
from ._parser import build

__all__ = ["BLAS_COMMANDS", "main", "parser"]

BLAS_COMMANDS = {"train", "predict", "evaluate"}  # the commands whose numpy may gain from a threaded BLAS


def parser() -> argparse.ArgumentParser:
    """The ``wxpipe`` parser: one subcommand per entry of the command table."""
    return build(COMMANDS, __doc__)


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # to start the same command on every rank
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    args.started = dt.datetime.now(dt.UTC)
    args.clock = time.monotonic()
    keep_freed_buffers()
    if args.command not in BLAS_COMMANDS:
        # numpy's OpenBLAS starts a thread per core at import, which spins ~0.1 s of CPU per extra core; the data
        # stages make no BLAS calls worth threading, and parallel jobs on a node would each steal that CPU
        os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    try:
        args.func(args)
    except WxpipeError as exc:
        print(f"wxpipe {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # `wxpipe inspect X | head`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    return 0
