"""The order training meets its samples in: a fresh permutation per epoch, and where in it the run is.

Each epoch's permutation is a function of the seed and the epoch number alone, so a :class:`Position`
(epoch, samples consumed) is the whole data state of a run: a resumed run draws exactly the batches the
uninterrupted one would have drawn, and a changed batch size goes on from the same sample.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Position:
    """The next batch starts at sample ``offset`` of epoch ``epoch``'s permutation."""

    epoch: int = 0
    offset: int = 0

    def to_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "offset": self.offset}

    @classmethod
    def from_dict(cls, d: dict[str, int]) -> Position:
        return cls(int(d["epoch"]), int(d["offset"]))


def permutation(starts: np.ndarray, seed: int, epoch: int) -> np.ndarray:
    """Epoch ``epoch``'s order of the sample starts."""
    return np.random.default_rng([seed, epoch]).permutation(starts)


def batches(starts: np.ndarray, size: int, seed: int, position: Position) -> Iterator[tuple[np.ndarray, Position]]:
    """Endless batches of ``size`` sample starts from ``position``, each with the position after it.

    An epoch's last batch may be short; the next epoch starts a new permutation.
    """
    if len(starts) == 0:
        raise ValueError("no samples to draw batches from")
    if size < 1:
        raise ValueError(f"batch size must be at least 1, got {size}")
    epoch, offset = position.epoch, position.offset
    while True:
        order = permutation(starts, seed, epoch)
        while offset < len(order):
            batch = order[offset : offset + size]
            offset += len(batch)
            yield batch, Position(epoch, offset) if offset < len(order) else Position(epoch + 1, 0)
        epoch, offset = epoch + 1, 0
