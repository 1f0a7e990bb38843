"""Whether a training run continues its saved state, starts afresh, or is refused: a plan, then its one action.

:func:`plan_start` is a pure function of the state found and the run's settings; every rank computes the
same plan from the same file, and rank 0 alone carries it out (:func:`move_aside`, the MLflow run). The
rules, from the config's two kinds of keys (``TrainingConfig.SCHEDULE`` against the rest):

- no state: afresh;
- a state of another build of the dataset (its uuid differs): moved aside, afresh;
- a run in progress: continued under any schedule (steps, learning rate, batch size, checkpoint_every,
  site, mlflow: in a new MLflow run when its own is not in that store), provided ``steps`` still lies
  ahead of it; an identity change (model, variables, periods, normalisation, seed) is refused, naming
  the keys, since it would silently mix two models, unless the config asks for a fork (``fork: true``):
  then the state is moved aside and a new run starts at step 0 from its weights where they fit
  (:func:`seed_weights`), in a new MLflow run tagged with the one it forked from;
- a finished run (it reached its ``steps``): continued to train longer when only ``steps`` was raised
  (or to write its checkpoint again when nothing changed); any other change trains a new model, the
  finished state moved aside (from its weights when it is a fork).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path

from ..config import TrainingConfig, params_of
from ..dataset import Dataset
from ..errors import WxpipeError
from ..tracking import flatten, recorded_uri
from .model import Network
from .state import TrainingState

log = logging.getLogger(__name__)

FREE = frozenset({"steps", "checkpoint_every", "site", "fork"})  # a finished run continues under new values of these


@dataclass(frozen=True)
class Settings:
    """A run's config as the state compares it, flattened to strings: identity and schedule."""

    identity: dict[str, str]
    schedule: dict[str, str]

    @classmethod
    def of(cls, cfg: TrainingConfig, dataset: Dataset, model: Network) -> Settings:
        """Split ``cfg``; the identity also holds what the data made of the model (variables, normalisation)."""
        flat = flatten(params_of(cfg))
        flat["mlflow.tracking_uri"] = recorded_uri(cfg.mlflow.tracking_uri)
        schedule = {k: v for k, v in flat.items() if k.split(".", 1)[0] in TrainingConfig.SCHEDULE}
        identity = {k: v for k, v in flat.items() if k not in schedule}
        identity["data.variables"] = ",".join(dataset.variables)
        identity["data.points"] = str(len(dataset.latitudes))
        identity["normalisation"] = _digest(model)
        return cls(identity, schedule)


@dataclass(frozen=True)
class Start:
    """The plan: continue ``state``, or start afresh after moving ``replaced`` (its folder) aside, from its
    weights when ``fork``."""

    state: TrainingState | None = None
    replaced: TrainingState | None = None
    reason: str = ""
    changes: dict[str, tuple[str, str]] = field(default_factory=dict)
    fork: bool = False


def plan_start(found: TrainingState | None, folder: Path, uuid: str, settings: Settings, fork: bool = False) -> Start:
    """What to do with the state ``found`` in ``folder`` for a run on dataset ``uuid`` with ``settings``;
    ``fork``: an identity change forks the run instead of being refused."""
    if found is None:
        return Start()
    where = f"the state in {folder} (run {found.run.name!r}, step {found.step} of {found.steps})"
    if found.dataset_uuid != uuid:
        return Start(replaced=found, reason=f"the dataset was rebuilt (uuid {found.dataset_uuid} -> {uuid})")
    identity = _changes(found.identity, settings.identity)
    schedule = _changes(found.schedule, settings.schedule)
    steps = int(settings.schedule["steps"])
    if found.finished:
        if identity or steps < found.step or set(schedule) - FREE:
            reason = f"{where} is finished, and {listed(identity or schedule)} changed"
            return Start(replaced=found, reason=reason, fork=fork and bool(identity))
        return Start(state=found, changes=schedule)
    if identity and fork:
        return Start(replaced=found, reason=f"{where} is forked: {listed(identity)}", fork=True)
    if identity:
        raise WxpipeError(
            f"{where} was trained with other settings: {listed(identity)}; set fork: true to train a new run "
            "from its weights, or remove it or rename the run to start afresh"
        )
    if steps < found.step:
        raise WxpipeError(
            f"{where} is past steps: {steps}; raise steps to continue it, or remove it (or rename the run) "
            "to start afresh"
        )
    return Start(state=found, changes=schedule)


def move_aside(folder: Path) -> Path:
    """Rename the state folder to ``<name>.<UTC time>`` (kept for a look; delete it at will)."""
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
    target = folder.with_name(f"{folder.name}.{stamp}")
    n = 1
    while target.exists():
        n += 1
        target = folder.with_name(f"{folder.name}.{stamp}-{n}")
    folder.rename(target)
    return target


def seed_weights(model: Network, state: TrainingState) -> list[str]:
    """Load the parameters of ``state`` whose name and shape fit ``model`` (a fork's start); the names left.

    Buffers (grid, normalisation) stay the new run's: they come from its data, not from the old run.
    """
    saved, loaded, left = state.model, {}, []
    for name, param in model.named_parameters():
        old = saved.get(name)
        if old is not None and tuple(old.shape) == tuple(param.shape):
            loaded[name] = old
        else:
            left.append(name)
    model.load_state_dict(loaded, strict=False)
    return left


def _changes(saved: dict[str, str], now: dict[str, str]) -> dict[str, tuple[str, str]]:
    keys = sorted(set(saved) | set(now))
    return {k: (saved.get(k, "-"), now.get(k, "-")) for k in keys if saved.get(k) != now.get(k)}


def listed(changes: dict[str, tuple[str, str]]) -> str:
    """``key old -> new, ...`` for a log line or an error."""
    return ", ".join(f"{k} {a} -> {b}" for k, (a, b) in changes.items())


def _digest(model: Network) -> str:
    """A fingerprint of the normalisation the data gave the model (shift, scale, one-step change)."""
    h = hashlib.sha256()
    for t in (model.shift, model.scale, model.tendency):
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]
