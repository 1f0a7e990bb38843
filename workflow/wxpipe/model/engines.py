"""From a checkpoint to a :class:`Forecaster`: its metadata names the engine, the engine loads it.

Engines are imported only here, on demand, so the interface costs nothing where no engine is
installed (the evaluation's environment). An engine module has ``load(checkpoint) -> Forecaster``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path

from ..errors import WxpipeError
from .checkpoint import read_metadata
from .protocol import Forecaster

ENGINES: dict[str, str] = {"wxpipe": "wxpipe.train.forecaster", "anemoi": "wxpipe.anemoi.forecaster"}


def load(checkpoint: str | Path) -> Forecaster:
    """The checkpoint's model, loaded by the engine that wrote it (which must be importable here)."""
    engine = read_metadata(checkpoint).engine
    if engine not in ENGINES:
        raise WxpipeError(f"{checkpoint}: engine {engine!r} is not one of {sorted(ENGINES)}")
    try:
        module = importlib.import_module(ENGINES[engine])
    except ImportError as exc:
        raise WxpipeError(f"{checkpoint}: engine {engine!r} is not installed in this environment ({exc})") from None
    loader: Callable[[Path], Forecaster] = module.load
    forecaster = loader(Path(checkpoint))
    if not isinstance(forecaster, Forecaster):
        raise WxpipeError(f"engine {engine!r} gave a {type(forecaster).__name__}, not a Forecaster")
    return forecaster
