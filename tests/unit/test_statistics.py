"""Statistics equal a numpy float64 reference (large offsets, constants, NaNs), in one pass or merged parts,
and so do the tendency statistics."""

from __future__ import annotations

import datetime as dt
import itertools
import json
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest
import zarr

from wxpipe import statistics
from wxpipe.cli import main
from wxpipe.dataset import STATISTICS_SET, Dataset, Part, Writer, finalise, init
from wxpipe.errors import WxpipeError
from wxpipe.recipe import Recipe
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
            np.where(np.arange(20000) == 12345, 1e6, 0.0),  # one outlier: the sampled shift misses it
            rng.standard_normal(20000) * 1e-3 - 2e-4,  # small values either side of zero
        ]
    ).astype(np.float32)
    m = _merged(x, 37)
    ref = x.astype(np.float64)
    np.testing.assert_allclose(m.mean, ref.mean(axis=1), rtol=1e-12)
    np.testing.assert_allclose(m.stdev, ref.std(axis=1), rtol=1e-9, atol=0)
    assert m.stdev[1] == 0.0 and not np.isnan(m.stdev).any()
    np.testing.assert_array_equal(m.minimum, ref.min(axis=1))
    np.testing.assert_array_equal(m.maximum, ref.max(axis=1))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_compiled_sums_equal_numpy_float64(dtype: type) -> None:
    from wxpipe._kernels import shifted_sums

    rng = np.random.default_rng(3)
    x = (rng.standard_normal((4, 2 * 1001 + 1)) * 50 + 300).astype(dtype)[:, ::2]  # strided, odd length
    shift = np.array([300.0, 0.0, -7.5, 1e4])
    s1, s2 = shifted_sums(x, shift)
    y = x.astype(np.float64) - shift[:, None]
    np.testing.assert_allclose(s1, y.sum(axis=1), rtol=1e-12)
    np.testing.assert_allclose(s2, (y * y).sum(axis=1), rtol=1e-12)


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


# --- whole datasets: one pass, parts, tendencies, NaN policy ---------------------------------------

START = dt.datetime(2021, 3, 1)
STEP = dt.timedelta(hours=6)
VARIABLES = ["z_500", "lsm", "tp"]


def _fields(n_dates: int, members: int, points: int, seed: int = 0) -> np.ndarray:
    """(dates, variables, members, points): a huge offset with unit variance, a constant, a skewed field."""
    rng = np.random.default_rng(seed)
    x = np.empty((n_dates, len(VARIABLES), members, points), np.float32)
    x[:, 0] = 5e5 + rng.standard_normal((n_dates, members, points)) + np.arange(n_dates)[:, None, None] * 0.1
    x[:, 1] = 0.75
    x[:, 2] = rng.gamma(0.5, 1e-3, (n_dates, members, points))
    return x


def _store(
    path: Path,
    x: np.ndarray,
    *,
    missing: Sequence[int] = (),
    chunk: int = 4,
    allow_nans: bool = False,
    tendencies: Sequence[str] = ("6h", "12h"),
    period: tuple[int, int] | None = None,
) -> Dataset:
    """A finalised dataset holding ``x`` (NaN at the ``missing`` dates), chunked ``chunk`` dates."""
    n = len(x)
    dates = [START + i * STEP for i in range(n)]
    stats: dict[str, object] = {"allow_nans": allow_nans, "tendencies": list(tendencies)}
    if period:
        stats.update(start=dates[period[0]].isoformat(), end=dates[period[1]].isoformat())
    recipe = Recipe.model_validate(
        {
            "dates": {
                "start": dates[0].isoformat(),
                "end": dates[-1].isoformat(),
                "frequency": "6h",
                "missing": [dates[i].isoformat() for i in missing],
            },
            "input": {"join": [{"grib": {"path": "unused.grib", "param": ["z"]}}]},
            "output": {"chunking": {"dates": chunk}},
            "build": {"allow_nans": True},
            "statistics": stats,
        }
    )
    points = x.shape[-1]
    lat, lon = np.linspace(-80, 80, points), np.linspace(0, 350, points)
    init(path, recipe, VARIABLES, lat, lon, field_shape=[points], resolution="test", ensembles=x.shape[2])
    writer = Writer(path)
    for i in range(n):
        if i not in missing:
            writer.write(i, x[i : i + 1])
    writer.close()
    return finalise(path)


def _reference(x: np.ndarray, dates: Sequence[int]) -> np.ndarray:
    """(variables, samples) in float64 over ``dates``."""
    return x[list(dates)].astype(np.float64).transpose(1, 0, 2, 3).reshape(x.shape[1], -1)


def _assert_matches(m: Moments, ref: np.ndarray) -> None:
    finite = np.where(np.isnan(ref), np.nan, ref)
    np.testing.assert_allclose(m.mean, np.nanmean(finite, axis=1), rtol=1e-12)
    np.testing.assert_allclose(m.stdev, np.nanstd(finite, axis=1), rtol=1e-9, atol=1e-12)
    np.testing.assert_array_equal(m.minimum, np.nanmin(finite, axis=1))
    np.testing.assert_array_equal(m.maximum, np.nanmax(finite, axis=1))
    np.testing.assert_array_equal(m.count, (~np.isnan(ref)).sum(axis=1))
    assert not np.isnan(m.stdev).any()


def test_dataset_statistics_match_numpy(tmp_path: Path) -> None:
    x = _fields(30, 2, 200)
    ds = _store(tmp_path / "d.zarr", x, missing=(5, 13))
    present = [i for i in range(30) if i not in (5, 13)]
    s = statistics.compute(ds, START, START + 29 * STEP, allow_nans=False)
    _assert_matches(s.moments, _reference(x, present))
    assert s.moments.stdev[1] == 0.0 and s.moments.mean[1] == np.float32(0.75)
    assert not s.moments.has_nans.any()


def test_period_is_respected(tmp_path: Path) -> None:
    x = _fields(30, 1, 100, seed=3)
    ds = _store(tmp_path / "d.zarr", x, missing=(8,))
    s = statistics.compute(ds, START + 3 * STEP, START + 17 * STEP, allow_nans=False)
    _assert_matches(s.moments, _reference(x, [i for i in range(3, 18) if i != 8]))


@pytest.mark.parametrize("parts", [2, 3, 7, 20])
def test_parts_merged_equal_one_pass(tmp_path: Path, parts: int) -> None:
    x = _fields(41, 2, 150, seed=4)
    ds = _store(tmp_path / "d.zarr", x, missing=(0, 9, 10, 22), chunk=3)
    start, end = START + 2 * STEP, START + 38 * STEP
    tend = {"6h": 1, "12h": 2, "1d": 4}
    whole = statistics.compute(ds, start, end, False, tend)
    files = []
    for i in range(1, parts + 1):
        files.append(tmp_path / f"part-{i}.npz")
        statistics.save_part(files[-1], statistics.compute(ds, start, end, False, tend, Part(i, parts)))
    merged = statistics.merge_parts([statistics.load_part(f) for f in reversed(files)], uuid=ds.uuid)
    ranges = [statistics.load_part(f).dates for f in files]
    assert ranges[0][0] == 2 and ranges[-1][1] == 39
    assert all(a[1] == b[0] for a, b in itertools.pairwise(ranges))  # contiguous, no overlap
    for a, b in [(whole.moments, merged.moments)] + [(whole.deltas[k], merged.deltas[k]) for k in tend]:
        np.testing.assert_array_equal(a.count, b.count)
        np.testing.assert_allclose(a.mean, b.mean, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(a.stdev, b.stdev, rtol=1e-12)
        np.testing.assert_array_equal(a.minimum, b.minimum)
        np.testing.assert_array_equal(a.maximum, b.maximum)


def test_merge_refuses_missing_or_foreign_parts(tmp_path: Path) -> None:
    x = _fields(12, 1, 20)
    ds = _store(tmp_path / "d.zarr", x)
    end = START + 11 * STEP
    p1, p2 = (statistics.compute(ds, START, end, False, {}, Part(i, 2)) for i in (1, 2))
    with pytest.raises(WxpipeError, match="not exactly the parts"):
        statistics.merge_parts([p1])
    with pytest.raises(WxpipeError, match="not exactly the parts"):
        statistics.merge_parts([p1, p1, p2])
    other = statistics.compute(ds, START, end - STEP, False, {}, Part(2, 2))
    with pytest.raises(WxpipeError, match="not of the same run"):
        statistics.merge_parts([p1, other])
    with pytest.raises(WxpipeError, match="not of"):
        statistics.merge_parts([p1, p2], uuid="someone-else")


def test_threads_give_the_same_result_bit_for_bit(tmp_path: Path) -> None:
    x = _fields(37, 2, 120, seed=8)
    ds = _store(tmp_path / "d.zarr", x, missing=(5, 6, 30), chunk=3)
    tend = {"6h": 1, "1d": 4}
    one, many = (statistics.compute(ds, START + STEP, START + 35 * STEP, False, tend, None, t) for t in (1, 3))
    for a, b in [(one.moments, many.moments)] + [(one.deltas[k], many.deltas[k]) for k in tend]:
        for f in ("count", "shift", "offset", "m2", "minimum", "maximum"):
            np.testing.assert_array_equal(getattr(a, f), getattr(b, f))
    _assert_matches(many.moments, _reference(x, [i for i in range(1, 36) if i not in (5, 6, 30)]))


def test_tendencies_equal_numpy_diffs_skipping_missing_dates(tmp_path: Path) -> None:
    x = _fields(33, 2, 80, seed=5)
    missing = (4, 11, 12, 27)
    ds = _store(tmp_path / "d.zarr", x, missing=missing, chunk=4)
    lo, hi = 1, 30
    s = statistics.compute(ds, START + lo * STEP, START + hi * STEP, False, {"6h": 1, "12h": 2, "1d": 4})
    for name, k in {"6h": 1, "12h": 2, "1d": 4}.items():
        pairs = [(t, t + k) for t in range(lo, hi + 1 - k) if t not in missing and t + k not in missing]
        diffs = np.stack([x[b].astype(np.float64) - x[a].astype(np.float64) for a, b in pairs])
        _assert_matches(s.deltas[name], _reference(diffs, range(len(pairs))))
        assert s.deltas[name].stdev[1] == 0.0  # the constant field's tendency


def test_nan_with_allow_nans_false_names_variable_and_date(tmp_path: Path) -> None:
    x = _fields(10, 1, 30)
    x[6, 2, 0, 7] = np.nan
    ds = _store(tmp_path / "d.zarr", x, chunk=4)
    with pytest.raises(WxpipeError, match=r"NaN in tp at 2021-03-02T12:00:00 \(allow_nans is false\)"):
        statistics.compute(ds, START, START + 9 * STEP, allow_nans=False)
    # NaNs outside the period do not matter
    statistics.compute(ds, START, START + 5 * STEP, allow_nans=False)


def test_nans_allowed_are_excluded_and_counted(tmp_path: Path) -> None:
    x = _fields(16, 2, 50, seed=6)
    x[3, 0, 1, ::4] = np.nan
    x[9, 0, 0, 2] = np.nan
    ds = _store(tmp_path / "d.zarr", x, allow_nans=True)
    s = statistics.compute(ds, START, START + 15 * STEP, True, {"6h": 1})
    _assert_matches(s.moments, _reference(x, range(16)))
    assert s.moments.has_nans.tolist() == [True, False, False]
    assert s.moments.nans.tolist() == [int(np.isnan(x[:, 0]).sum()), 0, 0]
    diffs = x[1:].astype(np.float64) - x[:-1].astype(np.float64)
    _assert_matches(s.deltas["6h"], _reference(diffs, range(15)))


def test_the_statistics_record_counts_each_variables_nans(tmp_path: Path) -> None:
    """What the catalogue's Variables table shows: NaNs left out of each variable's statistics, over the period."""
    import json

    x = _fields(16, 2, 50, seed=6)
    x[3, 0, 1, ::4] = np.nan
    x[12, 1, 0, :3] = np.nan  # after the period: not counted
    _store(tmp_path / "d.zarr", x, allow_nans=True, period=(0, 10))
    assert main(["statistics", str(tmp_path / "d.zarr"), "--lineage", str(tmp_path / "r.json")]) == 0
    out = json.loads((tmp_path / "r.json").read_text())["outputs"][0]
    variables = json.loads((tmp_path / "d.zarr/.zattrs").read_text())["variables"]
    counts = [int(np.isnan(x[:11, i]).sum()) for i in range(len(variables))]
    assert out["nans"] == dict(zip(variables, counts, strict=True))
    assert counts[0] == 13 and counts[1] == 0


def test_cli_parts_write_anemoi_arrays(tmp_path: Path) -> None:
    """``statistics-part`` x N then ``statistics-merge`` equal ``statistics``, stored as anemoi names them."""
    x = _fields(24, 1, 60, seed=7)
    one, two = tmp_path / "one.zarr", tmp_path / "two.zarr"
    for p in (one, two):
        _store(p, x, missing=(7,), chunk=4, period=(0, 19))
    assert main(["statistics", str(one)]) == 0
    parts = [str(tmp_path / f"p{i}.npz") for i in (1, 2, 3)]
    for i, out in enumerate(parts, 1):
        assert main(["statistics-part", str(two), "--part", f"{i}/3", "--out", out]) == 0
    record = tmp_path / "record.json"
    assert main(["statistics-merge", str(two), *parts, "--lineage", str(record)]) == 0
    params = json.loads(record.read_text())["params"]
    assert params["tendencies"] == {"6h": 1, "12h": 2} and params["end"] == (START + 19 * STEP).isoformat()
    a, b = zarr.open_group(str(one), mode="r"), zarr.open_group(str(two), mode="r")
    names = [*STATISTICS_SET] + [f"statistics_tendencies_{d}_{k}" for d in ("6h", "12h") for k in STATISTICS_SET]
    for name in names:
        np.testing.assert_allclose(a[name][:], b[name][:], rtol=1e-12, atol=1e-12, err_msg=name)
    assert a["mean"].dtype == np.float64 and a["count"].dtype == np.int64 and a["has_nans"].dtype == bool
    np.testing.assert_allclose(a["mean"][:], _reference(x, [i for i in range(20) if i != 7]).mean(axis=1), rtol=1e-12)
    assert a.attrs["statistics_end_date"] == (START + 19 * STEP).isoformat()
    # a configured period overrides the recipe's; the merge checks its parts cover it
    assert main(["statistics-merge", str(two), *parts, "--end", (START + 18 * STEP).isoformat()]) == 1


def test_waves_dataset(make_dataset: Callable[..., Dataset], tmp_path: Path) -> None:
    """The conftest dataset's numpy statistics are what the stage computes over all its dates."""
    ds = make_dataset(tmp_path / "tiny.zarr", n_dates=24, missing=(3, 17))
    ref = ds.statistics()
    first = dt.datetime(2020, 1, 1)  # the conftest dataset starts there
    s = statistics.compute(ds, first, first + 23 * STEP, allow_nans=False)
    np.testing.assert_allclose(s.moments.mean, ref["mean"], rtol=1e-12)
    np.testing.assert_allclose(s.moments.stdev, ref["stdev"], rtol=1e-9)


def test_direct_chunk_reads_equal_zarr(tmp_path: Path, make_dataset: Callable[..., Dataset]) -> None:
    """Statistics read chunk files directly; that must give what zarr-python gives, absent chunks as NaN."""
    from wxpipe.dataset import read, read_dates

    ds = make_dataset(tmp_path / "ds.zarr", n_dates=20, missing=(4,))
    assert ds.direct_codec not in (None, False)
    for start, stop in [(0, 20), (3, 9), (4, 5), (19, 20)]:
        np.testing.assert_array_equal(read_dates(ds, start, stop), read(ds.data, slice(start, stop)))
    assert np.isnan(read_dates(ds, 4, 5)).all()


@pytest.mark.parametrize(("command", "threads"), [("statistics", "1"), ("train", "unset")])
def test_data_commands_start_numpy_without_blas_threads(
    tmp_path: Path, make_dataset: Callable[..., Dataset], command: str, threads: str
) -> None:
    """A data command sets OPENBLAS_NUM_THREADS=1 before numpy loads (its spinning threads cost every job
    ~0.1 s of CPU); training keeps the site's BLAS threads. ``main`` runs in a fresh interpreter."""
    import os
    import subprocess
    import sys

    ds = make_dataset(tmp_path / "ds.zarr", n_dates=8, missing=())
    code = (
        "import os, sys; from wxpipe.cli import main\n"
        "assert 'numpy' not in sys.modules\n"
        "try: main(sys.argv[1:])\n"
        "except BaseException: pass  # train fails on its settings, after the choice was made\n"
        "print('BLAS', os.environ.get('OPENBLAS_NUM_THREADS', 'unset'))"
    )
    args = [str(ds.path)]
    if command == "train":
        args += [str(tmp_path / "x.pt"), "--name", "x", "--settings", "{}"]
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    res = subprocess.run([sys.executable, "-c", code, command, *args], capture_output=True, text=True, env=env)
    assert f"BLAS {threads}" in res.stdout, res.stdout + res.stderr
