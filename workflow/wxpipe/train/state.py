"""The training state of a run in progress: what a rerun needs to continue it bit for bit after a kill.

One ``torch.save`` file, ``<checkpoint stem>.state/last.pt`` beside the declared checkpoint and never a
declared output itself (Snakemake deletes the outputs of a failed job). It holds the weights, the
optimiser, the RNG states of every rank, the step, the data :class:`~.order.Position`, the loss history,
the MLflow run, the dataset uuid and the config split into identity and schedule (:mod:`.resume`). The
learning rate is a function of the step (:func:`learning_rate`), so no scheduler state is needed.
Written through :func:`wxpipe.fsutil.atomic_path`: the previous state stays whole until the new one
is; loaded with ``weights_only`` (no pickled code runs).
"""

from __future__ import annotations

import logging
import math
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import WxpipeError
from ..fsutil import atomic_path
from . import distributed
from .order import Position

log = logging.getLogger(__name__)

STATE_FORMAT = 2  # 2: roles, multistep input, rollout (identity keys of 1 are gone)
STATE_FILE = "last.pt"


def state_folder(checkpoint: Path) -> Path:
    """Where the training state of the run writing ``checkpoint`` lives: ``<stem>.state/`` beside it."""
    checkpoint = Path(checkpoint)
    return checkpoint.with_name(f"{checkpoint.stem}.state")


def learning_rate(step: int, steps: int, peak: float, warmup: int = 0, floor: float | None = None) -> float:
    """The rate of optimiser step ``step`` (1-based): linear from ``peak / warmup`` up to ``peak`` over the
    ``warmup`` steps, then cosine from ``peak`` down towards ``floor`` (default ``peak / 10``) at ``steps``."""
    if step <= warmup:
        return peak * step / warmup
    low = peak / 10 if floor is None else floor
    return low + (peak - low) * (1 + math.cos(math.pi * (step - 1 - warmup) / max(1, steps - warmup))) / 2


@dataclass(frozen=True)
class RunInfo:
    """The MLflow run a state belongs to, and the store it is logged to (the URI, never with credentials), which
    a resumed run continues in; None in a state written before stores were recorded (the resolved URI applies)."""

    name: str
    run_id: str
    experiment_id: str
    store: str | None = None

    def to_dict(self) -> dict[str, str | None]:
        return {"name": self.name, "run_id": self.run_id, "experiment_id": self.experiment_id, "store": self.store}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunInfo:
        store = d.get("store")
        return cls(str(d["name"]), str(d["run_id"]), str(d["experiment_id"]), None if store is None else str(store))


@dataclass
class History:
    """Loss points as they are logged (the loss curve and final metrics need them all), and the train
    losses since the last logged point."""

    train: list[tuple[int, float]] = field(default_factory=list)
    validation: list[tuple[int, float]] = field(default_factory=list)
    persistence: float = float("nan")
    seconds: float = 0.0
    recent: list[float] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "train": [[s, v] for s, v in self.train],
            "validation": [[s, v] for s, v in self.validation],
            "persistence": self.persistence,
            "seconds": self.seconds,
            "recent": list(self.recent),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> History:
        return cls(
            [(int(s), float(v)) for s, v in d["train"]],
            [(int(s), float(v)) for s, v in d["validation"]],
            float(d["persistence"]),
            float(d["seconds"]),
            [float(v) for v in d["recent"]],
        )


@dataclass
class TrainingState:
    """Everything a rerun restores; ``rng`` holds one entry per rank, in rank order."""

    run: RunInfo
    dataset_uuid: str
    identity: dict[str, str]
    schedule: dict[str, str]
    step: int
    position: Position
    world_size: int
    model: dict[str, torch.Tensor]
    optimiser: dict[str, Any]
    rng: list[dict[str, Any]]
    history: History

    @property
    def steps(self) -> int:
        """The run's length when the state was saved."""
        return int(self.schedule["steps"])

    @property
    def finished(self) -> bool:
        """Whether the run had reached its ``steps`` (its checkpoint may already be written)."""
        return self.step >= self.steps


def save_state(folder: Path, state: TrainingState) -> Path:
    """Write ``state`` as ``folder/last.pt``, replacing the previous one only once it is whole."""
    payload = {
        "format": STATE_FORMAT,
        "run": state.run.to_dict(),
        "dataset_uuid": state.dataset_uuid,
        "identity": dict(state.identity),
        "schedule": dict(state.schedule),
        "step": state.step,
        "position": state.position.to_dict(),
        "world_size": state.world_size,
        "model": state.model,
        "optimiser": state.optimiser,
        "rng": state.rng,
        "history": state.history.to_dict(),
    }
    path = Path(folder) / STATE_FILE
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return path


def load_state(folder: Path) -> TrainingState | None:
    """The state saved in ``folder``, or None when there is none."""
    path = Path(folder) / STATE_FILE
    if not path.exists():
        return None
    try:
        p = torch.load(path, map_location="cpu", weights_only=True)
        if p.get("format") != STATE_FORMAT:
            raise ValueError(f"format {p.get('format')}, not {STATE_FORMAT}")
        return TrainingState(
            RunInfo.from_dict(p["run"]),
            str(p["dataset_uuid"]),
            {str(k): str(v) for k, v in p["identity"].items()},
            {str(k): str(v) for k, v in p["schedule"].items()},
            int(p["step"]),
            Position.from_dict(p["position"]),
            int(p["world_size"]),
            p["model"],
            p["optimiser"],
            list(p["rng"]),
            History.from_dict(p["history"]),
        )
    except (OSError, RuntimeError, EOFError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise WxpipeError(
            f"{path}: not a training state this wxpipe can continue ({exc}); remove {folder} to start afresh"
        ) from None


def saved_step(folder: Path) -> int | None:
    """The step of the training state in ``folder`` (None when there is none), without loading its tensors."""
    path = Path(folder) / STATE_FILE
    if not path.exists():
        return None
    try:
        return int(torch.load(path, map_location="cpu", weights_only=True, mmap=True)["step"])
    except (OSError, RuntimeError, EOFError, KeyError, TypeError, ValueError) as exc:
        log.warning("%s: cannot read its step (%s)", path, exc)
        return None


def rng_states(ctx: distributed.Context) -> list[dict[str, Any]]:
    """The RNG states of every rank, in rank order (a collective: every rank calls it)."""
    mine = _rng_state(ctx.device)
    if not ctx.distributed:
        return [mine]
    every: list[Any] = [None] * ctx.world_size
    torch.distributed.all_gather_object(every, mine)
    return every


def restore_rng(states: list[dict[str, Any]], ctx: distributed.Context) -> bool:
    """Set this rank's RNGs to its saved states; False when the state has none for this rank."""
    if ctx.rank >= len(states):
        return False
    s = states[ctx.rank]
    torch.set_rng_state(s["torch"])
    if "cuda" in s and ctx.device.startswith("cuda"):
        torch.cuda.set_rng_state(s["cuda"], ctx.device)
    name, key, pos, has_gauss, gauss = s["numpy"]
    np.random.set_state((name, key.numpy().astype(np.uint32), int(pos), int(has_gauss), float(gauss)))
    version, internal, gauss_next = s["python"]
    random.setstate((version, tuple(internal), gauss_next))
    return True


def _rng_state(device: str) -> dict[str, Any]:
    """torch, numpy and python RNG states in types ``weights_only`` loading accepts."""
    name, key, pos, has_gauss, gauss = np.random.get_state(legacy=True)
    out: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": (str(name), torch.from_numpy(np.asarray(key, dtype=np.int64)), int(pos), int(has_gauss), float(gauss)),
        "python": random.getstate(),
    }
    if device.startswith("cuda"):
        out["cuda"] = torch.cuda.get_rng_state(device)
    return out
