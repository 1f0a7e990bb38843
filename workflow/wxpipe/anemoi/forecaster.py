"""The anemoi engine's :class:`~wxpipe.model.Forecaster`: wxpipe's predict stage drives an anemoi inference
checkpoint through :mod:`.worker`, started in anemoi-training's environment.

Predict itself stays in wxpipe's environment, where datasets and forecasts files are read and written; only the
model runs in anemoi's. The worker's Python is ``$WXPIPE_ANEMOI_PYTHON`` when set (a command, e.g. a conda env's
``python`` or ``apptainer exec --nv train-anemoi.sif python``), else the one beside anemoi-training
(:func:`.runner.executable`: on PATH, or ``make anemoi-env``'s).
"""

from __future__ import annotations

import json
import logging
import math
import os
import shlex
import subprocess
import weakref
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import WxpipeError
from ..model.checkpoint import read_metadata
from ..model.metadata import ModelMetadata
from .layout import ENGINE, Layout, read_meta
from .worker import read_array, send, send_array

log = logging.getLogger(__name__)

PYTHON = "WXPIPE_ANEMOI_PYTHON"
SOURCE = Path(__file__).resolve().parents[2]  # the folder holding the wxpipe package, for the worker's imports


def worker_command(checkpoint: Path) -> list[str]:
    """How to start the worker for ``checkpoint``."""
    given = os.environ.get(PYTHON, "").strip()
    if given:
        python = shlex.split(given)
    else:
        from .runner import executable

        python = [str(Path(executable()).with_name("python"))]
    return [*python, "-m", "wxpipe.anemoi.worker", str(checkpoint)]


class AnemoiForecaster:
    """An anemoi model behind a worker process; ``device`` and ``memory_mb`` (its free GPU memory) are the
    worker's."""

    def __init__(self, checkpoint: Path, metadata: ModelMetadata, layout: Layout, command: Sequence[str]) -> None:
        self.checkpoint, self._metadata, self.layout = checkpoint, metadata, layout
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(SOURCE), os.environ.get("PYTHONPATH")]))}
        log.info("starting the anemoi worker: %s", shlex.join(command))
        try:
            self._process = subprocess.Popen(list(command), stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
        except OSError as exc:
            what = f"cannot start the anemoi worker {command[0]} ({exc}): set {PYTHON}"
            raise WxpipeError(f"{checkpoint}: {what}") from None
        weakref.finalize(self, _stop, self._process)
        hello = self._reply()
        self.device: str = hello["device"]
        self.memory_mb: int | None = hello["memory_mb"]
        self.versions: dict[str, str] = hello["versions"]
        log.info("anemoi worker on %s (torch %s)", self.device, self.versions.get("torch"))

    @property
    def metadata(self) -> ModelMetadata:
        return self._metadata

    def predict(
        self, states: np.ndarray, dates: np.ndarray, steps: Sequence[int], forcings: np.ndarray | None = None
    ) -> np.ndarray:
        meta, layout = self._metadata, self.layout
        b, m, k, _, n = states.shape
        calls = math.ceil(max(steps) / layout.output_steps)
        x = states[:, :, :, [meta.inputs.index(v) for v in layout.inputs]]
        x = x.reshape(b * m, k, len(layout.inputs), n).transpose(0, 1, 3, 2)
        ahead = (calls - 1) * layout.output_steps  # the forcings of the states carried into a next call
        if layout.forcings and ahead:
            if forcings is None:
                raise ValueError(f"this model needs its forcings {meta.forcings} at every valid time: pass forcings=")
            f = np.broadcast_to(forcings[:, :, :ahead], (b, m, ahead, *forcings.shape[3:]))
            f = f[:, :, :, [meta.forcings.index(v) for v in layout.forcings]]
            f = f.reshape(b * m, ahead, len(layout.forcings), n).transpose(0, 1, 3, 2)
        else:
            f = np.zeros((b * m, 0, n, len(layout.forcings)), dtype=np.float32)
        y = self._call(calls, np.asarray(x, dtype=np.float32), np.asarray(f, dtype=np.float32))
        y = y[:, [s - 1 for s in steps]][..., [layout.outputs.index(v) for v in meta.outputs]]
        return y.transpose(0, 1, 3, 2).reshape(b, m, len(steps), len(meta.outputs), n)

    def _call(self, calls: int, states: np.ndarray, forcings: np.ndarray) -> np.ndarray:
        stdin = self._process.stdin
        assert stdin is not None
        try:
            send(stdin, {"calls": calls})
            send_array(stdin, states)
            send_array(stdin, forcings)
        except BrokenPipeError:
            self._reply()  # says how it ended
        self._reply()
        assert self._process.stdout is not None
        return read_array(self._process.stdout)

    def _reply(self) -> dict[str, Any]:
        assert self._process.stdout is not None
        line = self._process.stdout.readline()
        if not line:
            code = self._process.wait()
            raise WxpipeError(f"{self.checkpoint}: the anemoi worker exited with status {code}; its messages are above")
        message: dict[str, Any] = json.loads(line)
        if message.get("ok") is False:
            raise WxpipeError(f"{self.checkpoint}: the anemoi model failed: {message['error']}")
        return message


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None and process.stdin is not None:
        try:
            process.stdin.write(b"\n")
            process.stdin.close()
            process.wait(timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            process.kill()


def load(checkpoint: Path) -> AnemoiForecaster:
    """The engine's entry point (:data:`wxpipe.model.engines.ENGINES`)."""
    metadata = read_metadata(checkpoint)
    if metadata.engine != ENGINE:
        raise WxpipeError(f"{checkpoint}: engine {metadata.engine!r}, not {ENGINE!r}")
    layout = Layout.of(read_meta(checkpoint), checkpoint)
    return AnemoiForecaster(checkpoint, metadata, layout, worker_command(checkpoint))
