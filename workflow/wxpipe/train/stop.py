"""Stopping a training run on request: SIGTERM (a ``kill``, ``scancel``, preemption) and SIGUSR1 (SLURM's
warning before the time limit, with ``--signal=USR1@<seconds>``) end the run with :data:`EXIT_STOPPED`;
rerunning the same command continues it.

During the training steps the handler only records the signal: the loop asks :meth:`StopSignals.agreed`
once per step, saves the state and stops. On several ranks that takes the largest signal of all of them,
so every rank stops after the same step even when the signal reached them at different moments. Before
the first step and after the last there is nothing to wait for (the state on disk is the latest): the
handler raises :class:`Stopped` at once.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

import torch

from ..errors import WxpipeError
from . import distributed

log = logging.getLogger(__name__)

EXIT_STOPPED = 75  # sysexits' EX_TEMPFAIL: not done, the state is saved, run it again
SIGNALS = (signal.SIGTERM, signal.SIGUSR1)


class Stopped(BaseException):
    """A signal outside the training steps (a BaseException, like KeyboardInterrupt: nothing catches it)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


class TrainingStopped(WxpipeError):
    """The run stopped on a signal; ``step`` is None when it came outside the training steps."""

    def __init__(self, signum: int, step: int | None, steps: int, folder: Path) -> None:
        self.signum, self.step, self.steps, self.folder = signum, step, steps, folder
        name = signal.Signals(signum).name
        if step is None:
            what = f"stopped by {name} outside the training steps: nothing trained was lost; rerun to continue"
        else:
            what = f"stopped by {name} at step {step} of {steps}: state saved in {folder}, rerun to continue"
        super().__init__(what)


class StopSignals:
    """A context in which SIGTERM and SIGUSR1 ask the training loop to stop (main thread only: Python
    delivers signals there; elsewhere the handlers stay as they were)."""

    def __init__(self) -> None:
        self.signum = 0
        self.deferring = False
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            for s in SIGNALS:
                self._previous[s] = signal.signal(s, self._handle)
        else:
            log.debug("not the main thread: SIGTERM and SIGUSR1 keep their handlers")
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        for s, handler in self._previous.items():
            signal.signal(s, handler)
        self._previous.clear()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.signum = signum
        if not self.deferring:
            raise Stopped(signum)

    @contextmanager
    def deferred(self) -> Iterator[None]:
        """While training steps run: a signal waits for the next step boundary."""
        self.deferring = True
        try:
            yield
        finally:
            self.deferring = False

    def agreed(self, ctx: distributed.Context) -> int:
        """The signal every rank stops on now, or 0 (a collective when distributed: every rank asks)."""
        if not ctx.distributed:
            return self.signum
        t = torch.tensor([self.signum], dtype=torch.int64, device=ctx.device)
        torch.distributed.all_reduce(t, op=torch.distributed.ReduceOp.MAX)
        return int(t.item())
