"""Moments merged chunk by chunk equal a numpy float64 reference, even for large offsets and NaNs."""

from __future__ import annotations

import numpy as np

from wxpipe.statistics import Moments


def _merged(x: np.ndarray, pieces: int) -> Moments:
    total = Moments.empty(x.shape[0])
    for block in np.array_split(x, pieces, axis=1):
        total = total.merge(Moments.of(block))
    return total


def test_matches_numpy_with_offsets_and_constants() -> None:
    rng = np.random.default_rng(1)
    x = np.stack(
        [
            5e5 + rng.standard_normal(20000),  # geopotential-like: huge offset, unit variance
            np.full(20000, 273.15),  # constant field
            rng.gamma(0.5, 1e-3, 20000),  # precipitation-like
        ]
    ).astype(np.float32)
    m = _merged(x, 37)
    ref = x.astype(np.float64)
    np.testing.assert_allclose(m.mean, ref.mean(axis=1), rtol=1e-12)
    np.testing.assert_allclose(m.stdev, ref.std(axis=1), rtol=1e-9, atol=0)
    assert m.stdev[1] == 0.0 and not np.isnan(m.stdev).any()
    np.testing.assert_array_equal(m.minimum, ref.min(axis=1))
    np.testing.assert_array_equal(m.maximum, ref.max(axis=1))


def test_nans_are_excluded_and_flagged() -> None:
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 1000))
    x[0, ::7] = np.nan
    m = _merged(x, 5)
    assert m.has_nans.tolist() == [True, False]
    assert m.count[0] == np.isfinite(x[0]).sum()
    np.testing.assert_allclose(m.mean[0], np.nanmean(x[0]), rtol=1e-12)
    np.testing.assert_allclose(m.stdev[0], np.nanstd(x[0]), rtol=1e-9)


def test_merge_order_does_not_matter() -> None:
    rng = np.random.default_rng(3)
    x = rng.standard_normal((1, 999)) * 3 + 1e4
    a, b = _merged(x, 3), _merged(x[:, ::-1], 11)
    np.testing.assert_allclose(a.mean, b.mean, rtol=1e-13)
    np.testing.assert_allclose(a.m2, b.m2, rtol=1e-9)
