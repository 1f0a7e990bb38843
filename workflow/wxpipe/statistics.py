"""Per-variable statistics over the statistics period, exact in float64 and mergeable.

Chunks are reduced to (count, mean, M2) and merged with Chan's pairwise formula, which stays
exact for fields with large offsets (geopotential ~5e5 with unit variance) where sums of squares
would cancel catastrophically. ``sums``/``squares`` are still written: they are the merge inputs
anemoi-datasets expects.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import zarr

from .dataset import Dataset, chunks_of, read
from .errors import WxpipeError
from .progress import progress
from .timeutil import iso

log = logging.getLogger(__name__)


@dataclass
class Moments:
    """Running per-variable moments; ``merge`` is exact (Chan et al. 1979)."""

    count: np.ndarray
    mean: np.ndarray
    m2: np.ndarray
    minimum: np.ndarray
    maximum: np.ndarray
    has_nans: np.ndarray

    @classmethod
    def empty(cls, n: int) -> Moments:
        z = np.zeros(n)
        return cls(
            np.zeros(n, np.int64), z.copy(), z.copy(), np.full(n, np.inf), np.full(n, -np.inf), np.zeros(n, bool)
        )

    @classmethod
    def of(cls, block: np.ndarray) -> Moments:
        """Moments of ``block`` shaped (variables, samples); NaNs are excluded and flagged."""
        x = block.astype(np.float64, copy=False)
        nans = np.isnan(x)
        count = (~nans).sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(count > 0, np.nansum(x, axis=1) / np.maximum(count, 1), 0.0)
            m2 = np.nansum((x - mean[:, None]) ** 2, axis=1)
        has = count > 0
        mn = np.where(has, np.nanmin(np.where(nans, np.inf, x), axis=1), np.inf)
        mx = np.where(has, np.nanmax(np.where(nans, -np.inf, x), axis=1), -np.inf)
        return cls(count.astype(np.int64), mean, m2, mn, mx, np.asarray(nans.any(axis=1)))

    def merge(self, other: Moments) -> Moments:
        n = self.count + other.count
        safe = np.maximum(n, 1)
        delta = other.mean - self.mean
        mean = self.mean + delta * other.count / safe
        m2 = self.m2 + other.m2 + delta**2 * self.count * other.count / safe
        return Moments(
            n,
            mean,
            m2,
            np.minimum(self.minimum, other.minimum),
            np.maximum(self.maximum, other.maximum),
            self.has_nans | other.has_nans,
        )

    @property
    def stdev(self) -> np.ndarray:
        return np.sqrt(np.maximum(self.m2 / np.maximum(self.count, 1), 0.0))


def compute(ds: Dataset, start: dt.datetime, end: dt.datetime, allow_nans: bool) -> Moments:
    """One read pass over the dates in ``[start, end]``, skipping declared missing dates."""
    idx = ds.indices(start, end)
    if len(idx) == 0:
        raise WxpipeError(f"{ds.path}: no dates between {start} and {end} for statistics")
    missing = set(ds.missing_dates)
    chunk = ds.data.chunks[0]
    total = Moments.empty(len(ds.variables))
    rng = range(int(idx[0]), int(idx[-1]) + 1)
    aligned = range(rng.start - rng.start % chunk, rng.stop)
    with progress(total=len(rng), desc="statistics", unit="date") as bar:
        for c in chunks_of(aligned, chunk):
            lo, hi = max(c.start, rng.start), c.stop
            block = read(ds.data, slice(lo, hi))
            for k, i in enumerate(range(lo, hi)):
                if ds.dates[i] in missing:
                    continue
                fields = block[k].reshape(len(ds.variables), -1)
                if not allow_nans:
                    bad = [v for v, row in zip(ds.variables, fields, strict=True) if np.isnan(row).any()]
                    if bad:
                        raise WxpipeError(
                            f"{ds.path}: NaN in {', '.join(bad)} at {iso(ds.dates[i])} (allow_nans is false)"
                        )
                total = total.merge(Moments.of(fields))
            bar.update(hi - lo)
    return total


def write(path: str | Path, m: Moments, start: dt.datetime, end: dt.datetime) -> None:
    """Store the statistics arrays and their period in the dataset (overwriting earlier ones)."""
    root = zarr.open_group(str(path), mode="r+")
    arrays = {
        "mean": m.mean,
        "stdev": m.stdev,
        "minimum": m.minimum,
        "maximum": m.maximum,
        "sums": m.mean * m.count,
        "squares": m.m2 + m.mean**2 * m.count,
        "count": m.count,
        "has_nans": m.has_nans,
    }
    for name, values in arrays.items():
        root.create_array(name, data=np.asarray(values), overwrite=True)
    root.attrs.update({"statistics_start_date": iso(start), "statistics_end_date": iso(end)})
    log.info("statistics over %s .. %s written to %s", start, end, path)
