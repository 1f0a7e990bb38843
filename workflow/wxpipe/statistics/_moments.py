"""Running moments, merged exactly, and the summary of (part of) a statistics period.

Chunks are reduced to (count, mean, M2) and merged with Chan's pairwise formula, which stays exact
for fields with large offsets (geopotential ~5e5 with unit variance) where sums of squares would
cancel catastrophically.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass
class Moments:
    """Running per-variable moments; ``merge`` is exact (Chan et al. 1979).

    The mean is kept as ``shift + offset``: ``shift`` is a float32 value near the data and
    ``offset`` the mean of ``x - shift``, so means stay exact to float64 precision near zero even
    for fields with large offsets, and the differences of means that ``merge`` squares do not lose
    the digits that matter. ``count`` counts the values used, ``nans`` the NaNs that were excluded
    (``has_nans`` flags them).
    """

    count: np.ndarray
    shift: np.ndarray
    offset: np.ndarray
    m2: np.ndarray
    minimum: np.ndarray
    maximum: np.ndarray
    has_nans: np.ndarray
    nans: np.ndarray

    @classmethod
    def empty(cls, n: int) -> Moments:
        z = np.zeros(n)
        return cls(
            np.zeros(n, np.int64),
            z.copy(),
            z.copy(),
            z.copy(),
            np.full(n, np.inf),
            np.full(n, -np.inf),
            np.zeros(n, bool),
            np.zeros(n, np.int64),
        )

    @classmethod
    def of(cls, block: np.ndarray) -> Moments:
        """Moments of ``block`` shaped (variables, samples); NaNs are excluded, counted and flagged.

        The shift is the mean of a strided sample rounded to float32, so ``x - shift`` is exact in
        float64 and small: the sums of ``x - shift`` and of its squares (one compiled pass,
        :func:`~wxpipe._kernels.shifted_sums`) give the mean and M2 without cancellation. A constant
        row gets exactly its value as mean and a zero M2. Blocks with NaNs take a slower masked path.
        """
        from .._kernels import shifted_sums  # here: numba's start (~0.8 s) is for the passes alone, not the merge

        n = block.shape[1]
        mn = block.min(axis=1, initial=np.inf) if n else np.full(block.shape[0], np.inf)
        if np.isnan(mn).any() or n == 0:
            return cls._of_with_nans(block.astype(np.float64, copy=False))
        mx = block.max(axis=1).astype(np.float64)
        mn = mn.astype(np.float64)
        sample = block[:, :: max(1, n // 512)]
        shift = sample.mean(axis=1, dtype=np.float64).astype(np.float32).astype(np.float64)
        s1, s2 = shifted_sums(block, shift)
        offset = s1 / n
        m2 = np.maximum(s2 - n * offset * offset, 0.0)
        return cls._finish(
            np.full(block.shape[0], n, np.int64), np.zeros(block.shape[0], np.int64), mn, mx, shift, offset, m2
        )

    @classmethod
    def _of_with_nans(cls, x: np.ndarray) -> Moments:
        nans = np.isnan(x)
        n_nans = nans.sum(axis=1)
        count = x.shape[1] - n_nans
        has = count > 0
        safe = np.maximum(count, 1)
        with np.errstate(invalid="ignore"):
            mn = np.where(has, np.min(np.where(nans, np.inf, x), axis=1, initial=np.inf), np.inf)
            mx = np.where(has, np.max(np.where(nans, -np.inf, x), axis=1, initial=-np.inf), -np.inf)
            shift = (np.nansum(x, axis=1) / safe).astype(np.float32).astype(np.float64)
            y = x - shift[:, None]
            offset = np.nansum(y, axis=1) / safe
            m2 = np.nansum((y - offset[:, None]) ** 2, axis=1)
        return cls._finish(count.astype(np.int64), n_nans.astype(np.int64), mn, mx, shift, offset, m2)

    @classmethod
    def _finish(
        cls,
        count: np.ndarray,
        n_nans: np.ndarray,
        mn: np.ndarray,
        mx: np.ndarray,
        shift: np.ndarray,
        offset: np.ndarray,
        m2: np.ndarray,
    ) -> Moments:
        has = count > 0
        constant = ~has | (mn == mx)
        shift = np.where(constant, np.where(has, mn, 0.0), shift)
        offset = np.where(constant, 0.0, offset)
        m2 = np.where(constant, 0.0, m2)
        return cls(count, shift, offset, m2, mn, mx, np.asarray(n_nans > 0), n_nans)

    def merge(self, other: Moments) -> Moments:
        a, b = self, other
        n = a.count + b.count
        shift = a.shift
        ob = b.offset + (b.shift - shift)  # exact: both shifts are float32 values near the data
        delta = ob - a.offset
        frac = b.count / np.maximum(n, 1)
        offset = a.offset + delta * frac
        m2 = a.m2 + b.m2 + delta**2 * (a.count * frac)
        only_b, only_a = a.count == 0, b.count == 0  # take the other's values whole: no shift round trip
        return Moments(
            n,
            np.where(only_b, b.shift, shift),
            np.where(only_b, b.offset, np.where(only_a, a.offset, offset)),
            np.where(only_b, b.m2, np.where(only_a, a.m2, m2)),
            np.minimum(a.minimum, b.minimum),
            np.maximum(a.maximum, b.maximum),
            a.has_nans | b.has_nans,
            a.nans + b.nans,
        )

    @property
    def mean(self) -> np.ndarray:
        mean: np.ndarray = self.shift + self.offset
        return mean

    @property
    def stdev(self) -> np.ndarray:
        """Population standard deviation; never NaN (0 for constant fields and empty variables)."""
        stdev: np.ndarray = np.sqrt(np.maximum(self.m2 / np.maximum(self.count, 1), 0.0))
        return stdev

    def arrays(self) -> dict[str, np.ndarray]:
        """The anemoi statistics arrays, float64 except ``count`` (int64) and ``has_nans`` (bool)."""
        return {
            "mean": self.mean,
            "stdev": self.stdev,
            "minimum": self.minimum,
            "maximum": self.maximum,
            "sums": self.mean * self.count,
            "squares": self.m2 + self.mean**2 * self.count,
            "count": self.count,
            "has_nans": self.has_nans,
        }


@dataclass
class Summary:
    """The moments of part (or all) of a statistics period, and of its tendencies.

    ``part`` is ``(index, count)``; ``tendencies`` maps anemoi's delta name (``6h``) to the number of
    dates it spans, and ``deltas`` holds the moments of each.
    """

    uuid: str
    variables: list[str]
    start: dt.datetime
    end: dt.datetime
    allow_nans: bool
    tendencies: dict[str, int]
    part: tuple[int, int]
    dates: tuple[int, int]
    moments: Moments
    deltas: dict[str, Moments]

    def meta(self) -> dict[str, Any]:
        return {
            "uuid": self.uuid,
            "variables": self.variables,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "allow_nans": self.allow_nans,
            "tendencies": self.tendencies,
            "part": list(self.part),
            "dates": list(self.dates),
        }
