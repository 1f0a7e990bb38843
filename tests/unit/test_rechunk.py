"""Rechunking keeps the dataset contract and content; verify finds any difference."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import zarr

from wxpipe.dataset import Dataset
from wxpipe.errors import WxpipeError
from wxpipe.rechunk import parse_size, plan, rechunk, verify


def test_plan_respects_max_mem() -> None:
    p = plan((100, 3, 1, 1000), dates_chunk=30, values_chunk=256, max_mem=10**6)
    assert p.chunks == (30, 3, 1, 256)
    assert [len(s) for s in p.slabs] == [30, 30, 30, 10]
    assert p.slab_bytes <= 10**6
    with pytest.raises(WxpipeError, match="more than max_mem"):
        plan((100, 3, 1, 1000), dates_chunk=100, values_chunk=256, max_mem=10**6)
    assert parse_size("1.5GB") == 1_500_000_000 and parse_size("300MB") == 300_000_000


def test_rechunk_round_trip_and_verify(tmp_path: Path, make_dataset: Callable[..., Dataset]) -> None:
    src = make_dataset(tmp_path / "src.zarr", n_dates=30, missing=(4,))
    out = rechunk(src.path, tmp_path / "ts.zarr", dates_chunk=8, values_chunk=100, max_mem=10**8)
    assert out.data.chunks == (8, len(src.variables), 1, 100)
    np.testing.assert_array_equal(out.data[:], src.data[:])
    assert out.variables == src.variables and out.attrs["source_uuid"] == src.uuid != out.uuid
    np.testing.assert_array_equal(out.statistics()["mean"], src.statistics()["mean"])
    assert verify(src.path, out.path) == 4

    arr = zarr.open_group(str(out.path), mode="r+")["data"]
    arr[17, 1, 0, 5] = arr[17, 1, 0, 5] + 1.0
    with pytest.raises(WxpipeError, match=r"data differ .* dates 16\.\.23"):
        verify(src.path, out.path)
