"""Properties of the statistics plan and of the moments it merges.

A plan's reads are disjoint, in date order, each within one data chunk and the period (the look-back
included); the parts' own dates, samples and tendency pairs cover the period's exactly once. Moments
merged in any split equal the moments of the whole block, and merging is associative.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from wxpipe.dataset import Part
from wxpipe.statistics import Moments, StatisticsPlan, plan_statistics

FAST = settings(max_examples=60, deadline=None)


@dataclass(frozen=True)
class _Period:
    period: range
    present: list[bool]
    chunk: int
    unit: int
    tendencies: dict[str, int]
    count: int

    def plans(self) -> list[StatisticsPlan]:
        return [
            plan_statistics(Part(i, self.count), self.period, self.present, self.chunk, self.unit, self.tendencies)
            for i in range(1, self.count + 1)
        ]


@st.composite
def _periods(draw: st.DrawFn) -> _Period:
    chunk = draw(st.integers(1, 6))
    n_dates = draw(st.integers(1, 120))
    first = draw(st.integers(0, n_dates - 1))
    last = draw(st.integers(first, n_dates - 1))
    deltas = draw(st.lists(st.integers(1, 8), max_size=3, unique=True))
    return _Period(
        period=range(first, last + 1),
        present=draw(st.lists(st.booleans(), min_size=n_dates, max_size=n_dates)),
        chunk=chunk,
        unit=chunk * draw(st.integers(1, 3)),
        tendencies={f"{6 * k}h": k for k in deltas},
        count=draw(st.integers(1, 12)),
    )


@FAST
@given(_periods())
def test_statistics_plans_read_each_chunk_once_and_cover_the_period_exactly(case: _Period) -> None:
    period, present, chunk = case.period, case.present, case.chunk
    plans = case.plans()
    assert [d for p in plans for d in p.dates] == list(period)
    samples: list[int] = []
    pairs: dict[str, list[tuple[int, int]]] = {name: [] for name in case.tendencies}
    for p in plans:
        read = [d for r in p.reads for d in r.dates]
        back = max(period.start, p.dates.start - p.look_back)
        assert read == (list(range(back, p.dates.stop)) if len(p.dates) else [])  # disjoint, in order, no gap
        assert [d for r in p.reads for d in r.own] == list(p.dates)
        for r in p.reads:
            assert r.dates.start // chunk == (r.dates.stop - 1) // chunk  # one data chunk, decoded once
            assert r.dates.start >= period.start  # the look-back stays in the period
            assert list(r.present) == [i for i in r.dates if present[i]]
            samples += r.reduced
            for name, got in r.pairs.items():
                assert all(i in r.own for i, _ in got)
                pairs[name] += got
    assert samples == [i for i in period if present[i]]
    for name, k in case.tendencies.items():
        expected = [(i, i - k) for i in period if i - k >= period.start and present[i] and present[i - k]]
        assert pairs[name] == expected


@st.composite
def _blocks(draw: st.DrawFn) -> tuple[np.ndarray, list[int], float]:
    """A float32 (variables, samples) block with an offset and a scale, and cut points along the samples."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    n_var, n = draw(st.integers(1, 4)), draw(st.integers(1, 600))
    offset = draw(st.sampled_from([0.0, -2e-4, 273.15, 5e5]))
    scale = draw(st.sampled_from([1e-3, 1.0, 100.0]))
    x = (offset + scale * rng.standard_normal((n_var, n))).astype(np.float32)
    if draw(st.booleans()):
        x[:, :: draw(st.integers(2, 50))] = np.nan
    cuts = sorted(draw(st.lists(st.integers(0, n), max_size=6)))
    return x, cuts, scale


def _assert_close(a: Moments, b: Moments, scale: float) -> None:
    np.testing.assert_array_equal(a.count, b.count)
    np.testing.assert_array_equal(a.nans, b.nans)
    np.testing.assert_array_equal(a.minimum, b.minimum)
    np.testing.assert_array_equal(a.maximum, b.maximum)
    np.testing.assert_allclose(a.mean, b.mean, rtol=1e-12, atol=1e-12 * scale)
    np.testing.assert_allclose(a.m2, b.m2, rtol=1e-11, atol=1e-20 * scale**2)


@FAST
@given(_blocks())
def test_moments_merged_in_any_split_equal_the_whole_block(case: tuple[np.ndarray, list[int], float]) -> None:
    x, cuts, scale = case
    merged = Moments.empty(x.shape[0])
    for lo, hi in itertools.pairwise([0, *cuts, x.shape[1]]):
        merged = merged.merge(Moments.of(x[:, lo:hi]))
    _assert_close(merged, Moments.of(x), scale)


@FAST
@given(_blocks())
def test_merging_moments_is_associative(case: tuple[np.ndarray, list[int], float]) -> None:
    x, cuts, scale = case
    one, two = (cuts + [x.shape[1]] * 2)[:2]
    a, b, c = (Moments.of(x[:, lo:hi]) for lo, hi in itertools.pairwise([0, one, two, x.shape[1]]))
    _assert_close(a.merge(b).merge(c), a.merge(b.merge(c)), scale)
