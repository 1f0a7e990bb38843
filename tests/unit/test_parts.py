"""Properties of parts and write units: every date in exactly one part, no write unit in two; a load
plan writes the part's units but those a resumed run keeps, exactly the ones flagged loaded."""

from __future__ import annotations

import numpy as np
import zarr
from hypothesis import given, settings
from hypothesis import strategies as st

from wxpipe.dataset import Part, load_dates, plan_load, write_unit_of
from wxpipe.recipe import Recipe

FAST = settings(max_examples=150, deadline=None)


def _units(r: range, unit: int) -> set[int]:
    return {d // unit for d in r}


@FAST
@given(n_dates=st.integers(0, 300), unit=st.integers(1, 12), count=st.integers(1, 40))
def test_parts_cover_every_date_once_in_order_and_never_share_a_unit(n_dates: int, unit: int, count: int) -> None:
    ranges = [Part(i, count).dates(n_dates, unit) for i in range(1, count + 1)]
    assert [d for r in ranges for d in r] == list(range(n_dates))  # each date once, parts in order
    assert all(r.step == 1 for r in ranges)  # contiguous
    assert all(r.start % unit == 0 for r in ranges if len(r))
    seen: set[int] = set()
    for r in ranges:
        assert not seen & _units(r, unit)
        seen |= _units(r, unit)


@FAST
@given(
    first=st.integers(0, 100),
    length=st.integers(0, 200),
    unit=st.integers(1, 12),
    count=st.integers(1, 40),
)
def test_parts_of_a_period_cover_it_and_never_share_a_unit(first: int, length: int, unit: int, count: int) -> None:
    span = range(first, first + length)
    ranges = [Part(i, count).dates_in(span, unit) for i in range(1, count + 1)]
    assert [d for r in ranges for d in r] == list(span)
    seen: set[int] = set()
    for r in ranges:
        assert not seen & _units(r, unit)
        seen |= _units(r, unit)
    # a period that starts at 0 is shared out as the whole dataset is
    assert [Part(i, count).dates_in(range(length), unit) for i in range(1, count + 1)] == [
        Part(i, count).dates(length, unit) for i in range(1, count + 1)
    ]


@FAST
@given(
    n_dates=st.integers(0, 200),
    unit=st.integers(1, 10),
    count=st.integers(1, 8),
    data=st.data(),
)
def test_load_plan_writes_the_part_and_resume_keeps_exactly_the_flagged_units(
    n_dates: int, unit: int, count: int, data: st.DataObject
) -> None:
    index = data.draw(st.integers(1, count))
    flags = np.array(data.draw(st.lists(st.booleans(), min_size=n_dates, max_size=n_dates)), dtype=bool)
    part = Part(index, count)
    fresh, resumed = plan_load(part, n_dates, unit), plan_load(part, n_dates, unit, flags)
    assert fresh.dates == resumed.dates == part.dates(n_dates, unit) and not fresh.kept
    assert [d for c in fresh.todo for d in c] == list(fresh.dates)
    assert all(c.start % unit == 0 and len(c) <= unit for c in fresh.todo)
    assert sorted([*resumed.todo, *resumed.kept], key=lambda c: c.start) == list(fresh.todo)
    assert all(flags[c.start : c.stop].all() for c in resumed.kept)
    assert not any(flags[c.start : c.stop].all() for c in resumed.todo)


def test_write_unit_is_the_shard_else_the_chunk_for_recipes_and_arrays() -> None:
    base = {
        "dates": {"start": "2020-01-01T00:00", "end": "2020-01-03T18:00", "frequency": "6h"},
        "input": {"join": [{"grib": {"path": "unused.grib", "param": ["2t"]}}]},
    }
    chunked = Recipe.model_validate({**base, "output": {"chunking": {"dates": 3}}})
    sharded = Recipe.model_validate({**base, "output": {"zarr_format": 3, "shards": 4, "chunking": {"dates": 2}}})
    assert write_unit_of(chunked.output) == 3 and write_unit_of(sharded.output) == 4
    assert load_dates(sharded, Part(2, 2)) == range(4, 12) == Part(2, 2).dates(12, 4)
    v2 = zarr.create_array(store={}, shape=(12, 2), chunks=(3, 2), dtype="f4", zarr_format=2)
    v3 = zarr.create_array(store={}, shape=(12, 2), chunks=(2, 2), shards=(4, 2), dtype="f4")
    assert write_unit_of(v2) == 3 and write_unit_of(v3) == 4
