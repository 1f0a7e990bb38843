"""The paired bootstrap over initial dates behind the scorecard's significance marks.

Both forecasts are resampled on the same dates (paired), so the day-to-day weather they share cancels and
only their difference is tested. Each resample is a row of multinomial counts over the dates, applied to every
cell at once with a matrix product: memory is resamples x cells, never resamples x dates x cells.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

BLOCK_BYTES = 1 << 26


@dataclass(frozen=True)
class Bootstrap:
    """RMSE skill of a candidate against a baseline per cell, its percentile interval and whether it excludes 0."""

    skill: np.ndarray
    low: np.ndarray
    high: np.ndarray
    significant: np.ndarray


def paired_bootstrap(
    candidate: np.ndarray,
    baseline: np.ndarray,
    *,
    resamples: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> Bootstrap:
    """Skill ``1 - RMSE(candidate) / RMSE(baseline)`` of per-date MSEs shaped (dates, ...cells).

    Per cell only the dates where both MSEs are finite count; a cell with none, or a perfect baseline, is NaN
    and never significant. ``low``/``high`` are the ``(1 -+ level) / 2`` percentiles of the resampled skills;
    a cell is significant when that interval excludes 0 (two identical forecasts: skill exactly 0, never).
    """
    c = np.asarray(candidate, dtype=np.float64)
    b = np.asarray(baseline, dtype=np.float64)
    if c.shape != b.shape or c.ndim < 1:
        raise ValueError(f"candidate {c.shape} and baseline {b.shape} must share one (dates, ...) shape")
    cells = c.shape[1:]
    dates = c.shape[0]
    c, b = c.reshape(dates, -1), b.reshape(dates, -1)
    valid = np.isfinite(c) & np.isfinite(b)
    c, b = np.where(valid, c, 0.0), np.where(valid, b, 0.0)
    n = valid.astype(np.float64)
    skill = _skill(c.sum(axis=0), b.sum(axis=0), n.sum(axis=0))
    rng = np.random.default_rng(seed)
    counts = rng.multinomial(dates, np.full(dates, 1.0 / dates), size=resamples).astype(np.float64)
    q = 50.0 * np.array([1.0 - level, 1.0 + level])
    bounds = np.full((2, c.shape[1]), np.nan)
    step = max(1, BLOCK_BYTES // (8 * max(1, resamples)))
    for start in range(0, c.shape[1], step):
        part = slice(start, start + step)
        sampled = _skill(counts @ c[:, part], counts @ b[:, part], counts @ n[:, part])
        bounds[:, part] = _percentiles(sampled, q)
    bounds[:, ~np.isfinite(skill)] = np.nan
    low, high = bounds
    with np.errstate(invalid="ignore"):
        significant = (low > 0) | (high < 0)
    return Bootstrap(*(a.reshape(cells) for a in (skill, low, high, significant)))


def _skill(candidate_sum: np.ndarray, baseline_sum: np.ndarray, count: np.ndarray) -> np.ndarray:
    """``1 - sqrt(mean candidate) / sqrt(mean baseline)``; NaN without dates or with a perfect baseline."""
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.sqrt(candidate_sum / count) / np.sqrt(baseline_sum / count)
    skill: np.ndarray = np.where((count > 0) & (baseline_sum > 0), 1.0 - ratio, np.nan)
    return skill


def _percentiles(sampled: np.ndarray, q: np.ndarray) -> np.ndarray:
    """(2, cells) percentiles over resamples, NaN resamples (no date drawn) left out; all-NaN cells stay NaN."""
    out = np.full((len(q), sampled.shape[1]), np.nan)
    finite = np.isfinite(sampled)
    full = finite.all(axis=0)
    if full.any():
        out[:, full] = np.percentile(sampled[:, full], q, axis=0)
    for cell in np.flatnonzero(~full & finite.any(axis=0)):
        out[:, cell] = np.percentile(sampled[finite[:, cell], cell], q)
    return out
