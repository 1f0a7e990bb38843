"""What the config makes of a dataset's variables: each one's role, normaliser and weight in the loss.

Roles follow anemoi-training: a ``forcing`` is read and never predicted (by default the dataset's
``constant_fields`` and whatever its forcings source computed, which ``variables_metadata`` records),
a ``diagnostic`` is predicted and never read (e.g. ``tp``), every other variable is ``prognostic``.
A name in the config that the dataset lacks is an error naming the config key, never ignored.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np

from ..config import LossWeightsConfig, TrainingConfig
from ..dataset import Dataset
from ..errors import WxpipeError
from ..roles import forcings, matching, normalisers, split_level
from ..samples import read_batch
from .data import evenly_spaced
from .model import safe_scale

TrainingRole = Literal["prognostic", "forcing", "diagnostic"]


@dataclass(frozen=True)
class Roles:
    """Per dataset variable, in dataset order: role, normaliser, its shift and scale, and its loss weight."""

    names: tuple[str, ...]
    roles: tuple[TrainingRole, ...]
    normalisers: tuple[str, ...]
    shift: np.ndarray
    scale: np.ndarray
    loss_weights: np.ndarray

    def indices(self, role: TrainingRole) -> tuple[int, ...]:
        return tuple(i for i, r in enumerate(self.roles) if r == role)

    def named(self, role: TrainingRole) -> list[str]:
        return [self.names[i] for i in self.indices(role)]


def roles_of(dataset: Dataset, cfg: TrainingConfig) -> Roles:
    """Each variable's role, normaliser and loss weight under ``cfg`` (normalisers from the statistics)."""
    names = tuple(dataset.variables)
    forcing = default_forcings(dataset) if cfg.variables.forcing is None else cfg.variables.forcing
    _check(names, "variables.forcing", forcing)
    _check(names, "variables.diagnostic", cfg.variables.diagnostic)
    both = sorted(set(forcing) & set(cfg.variables.diagnostic))
    if both:
        raise WxpipeError(f"training.variables: {both} are both forcing and diagnostic")
    roles: tuple[TrainingRole, ...] = tuple(
        "forcing" if v in forcing else "diagnostic" if v in cfg.variables.diagnostic else "prognostic" for v in names
    )
    if "prognostic" not in roles:
        raise WxpipeError(f"training.variables: no prognostic variable left of {list(names)}")
    kinds = normalisers(names, cfg.normaliser)
    shift, scale = normaliser_arrays(kinds, dataset.statistics())
    weights = loss_weights(names, cfg.loss_weights) * np.array([r != "forcing" for r in roles])
    return Roles(names, roles, kinds, shift, scale, weights)


def default_forcings(dataset: Dataset) -> list[str]:
    """The dataset's constant fields and the variables its forcings source computed (:func:`wxpipe.roles.forcings`)."""
    return forcings(dataset.variables, dataset.attrs)


def _check(names: tuple[str, ...], key: str, given: Iterable[str]) -> None:
    unknown = [g for g in given if g not in names]
    if unknown:
        raise WxpipeError(f"training.{key}: {unknown} not in the dataset's variables {list(names)}")


def normaliser_arrays(kinds: Iterable[str], stats: Mapping[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(shift, scale) per variable from the statistics; a scale of 0 or NaN (a constant field) is 1."""
    shift, scale = [], []
    for i, kind in enumerate(kinds):
        mean, stdev = float(stats["mean"][i]), float(stats["stdev"][i])
        low, high = float(stats["minimum"][i]), float(stats["maximum"][i])
        o, s = {
            "mean-std": (mean, stdev),
            "std": (0.0, stdev),
            "min-max": (low, high - low),
            "max": (0.0, high),
            "none": (0.0, 1.0),
        }[kind]
        shift.append(o)
        scale.append(s)
    return np.array(shift, dtype=np.float64), safe_scale(np.array(scale, dtype=np.float64))


def loss_weights(names: Iterable[str], cfg: LossWeightsConfig) -> np.ndarray:
    """Each variable's weight: its own or its parameter's (default 1), times its level's."""
    names = tuple(names)
    for name in cfg.variables:
        if not matching(names, name):
            raise WxpipeError(f"training.loss_weights.variables: {name!r} is no variable or parameter of {list(names)}")
    levels = {split_level(v)[1] for v in names}
    unknown = sorted(set(cfg.levels) - levels)
    if unknown:
        raise WxpipeError(f"training.loss_weights.levels: no variable on levels {unknown}")
    out = []
    for v in names:
        param, level = split_level(v)
        weight = cfg.variables.get(v, cfg.variables.get(param, 1.0))
        if level is not None and level in cfg.levels:
            weight *= cfg.levels[level]
        elif level is not None and cfg.pressure_level is not None:
            weight *= max(cfg.pressure_level.minimum, cfg.pressure_level.slope * level)
        out.append(weight)
    return np.array(out, dtype=np.float64)


def tendency_scale(dataset: Dataset, starts: np.ndarray, roles: Roles, limit: int = 64, batch: int = 8) -> np.ndarray:
    """Per variable, the standard deviation of its normalised one-step change over up to ``limit`` samples
    (NaN points left out); 1 for forcings and diagnostics, which are not stepped forward.

    The model's increments are in these units and the loss divides errors by them, so variables that
    change little per step weigh as much as those that change a lot.
    """
    chosen = evenly_spaced(starts, limit)
    total, squares, count = np.zeros(len(roles.names)), np.zeros(len(roles.names)), np.zeros(len(roles.names))
    for lo in range(0, len(chosen), batch):
        fields = read_batch(dataset, chosen[lo : lo + batch], (0, 1), drop_nan=False).fields
        change = (fields[:, 1] - fields[:, 0]).astype(np.float64) / roles.scale
        finite = np.isfinite(change)
        change = np.where(finite, change, 0.0)
        total += change.sum(axis=(0, 1))
        squares += (change**2).sum(axis=(0, 1))
        count += finite.sum(axis=(0, 1))
    n = np.maximum(count, 1)
    stdev = np.sqrt(np.clip(squares / n - (total / n) ** 2, 0.0, None))
    prognostic = np.array([r == "prognostic" for r in roles.roles]) & (count > 0)
    return np.where(prognostic, stdev, 1.0)
