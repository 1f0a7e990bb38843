"""Rechunking keeps the dataset contract and content in bounded memory, in parts that resume; verify
finds any difference."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zarr

from wxpipe.dataset import Dataset, Part, array, read
from wxpipe.errors import WxpipeError
from wxpipe.fsutil import tree_files, tree_size
from wxpipe.rechunk import DONE, Layout, Plan, done, init, parse_extent, parse_size, plan, rechunk, verify, write_part
from wxpipe.summary import summary

WXPIPE = str(Path(sys.executable).parent / "wxpipe")


def test_plan_keeps_whole_dates_when_they_fit() -> None:
    p = plan((100, 3, 1, 1000), Layout((30, 256)), max_mem=10**6)
    assert p.chunks == (30, 3, 1, 256) and p.shards is None and p.grid == (4, 4)
    regions = p.regions()
    assert [(len(r.dates), len(r.values)) for r in regions] == [(30, 1000)] * 3 + [(10, 1000)]
    assert p.region_bytes == 30 * 3 * 1000 * 4 <= 10**6
    assert parse_size("1.5GB") == 1_500_000_000 and parse_size("300MB") == 300_000_000
    assert parse_extent("dates=250, values=1000") == (250, 1000)
    with pytest.raises(WxpipeError, match="not like"):
        parse_extent("dates=250")


def test_plan_splits_by_values_and_refuses_only_one_chunk_too_big() -> None:
    # whole dates of a 100-date chunk need 1.2 MB; one target chunk 100 x 256 points needs 0.31 MB
    p = plan((100, 3, 1, 1000), Layout((100, 256)), max_mem=700_000)
    assert p.per_region == 2 and p.region_bytes <= 700_000
    assert [(r.dates, r.values) for r in p.regions()] == [(range(100), range(512)), (range(100), range(512, 1000))]
    # exactly one chunk fits: one region per chunk
    one = plan((100, 3, 1, 1000), Layout((100, 256)), max_mem=100 * 3 * 256 * 4)
    assert [len(r.values) for r in one.regions()] == [256, 256, 256, 232]
    with pytest.raises(WxpipeError, match=r"one target chunk .* more than max_mem"):
        plan((100, 3, 1, 1000), Layout((100, 256)), max_mem=100 * 3 * 256 * 4 - 1)
    # sharded: the write unit is the shard, and writing one costs three times its size
    shard = 50 * 3 * 500 * 4
    s = plan((100, 3, 1, 1000), Layout((10, 100), (50, 500), 3), max_mem=3 * shard)
    assert s.unit == (50, 500) and s.grid == (2, 2) and len(s.regions()) == 4 and s.region_bytes == shard
    assert plan((100, 3, 1, 1000), Layout((10, 100), (50, 500), 3), max_mem=4 * shard).per_region == 2
    with pytest.raises(WxpipeError, match=r"one target shard .* \(x3 with its encoded copies\)"):
        plan((100, 3, 1, 1000), Layout((10, 100), (50, 500), 3), max_mem=3 * shard - 1)
    with pytest.raises(WxpipeError, match="multiples"):
        Layout((10, 100), (15, 500), 3)
    with pytest.raises(WxpipeError, match="zarr format 3"):
        Layout((10, 100), (20, 500), 2)


@pytest.mark.parametrize("n", [1, 2, 3, 7, 40])
def test_parts_are_disjoint_and_cover_every_chunk(n: int) -> None:
    p = plan((100, 3, 1, 1000), Layout((8, 64)), max_mem=8 * 3 * 200 * 4)
    seen: list[int] = []
    for i in range(1, n + 1):
        units = p.part_units(Part(i, n))
        regions = p.regions(units)
        covered = [u for r in regions for u in r.units]
        assert covered == list(units)
        for r in regions:  # a region is whole chunks of one row of dates, within max_mem
            assert r.dates.start % 8 == 0 and r.values.start % 64 == 0 and len(r.units) <= p.per_region
        seen += covered
    assert sorted(seen) == list(range(p.n_units)) == seen


def test_rechunk_round_trip_and_verify(tmp_path: Path, make_dataset: Callable[..., Dataset]) -> None:
    src = make_dataset(tmp_path / "src.zarr", n_dates=30, missing=(4,))
    tendency = np.arange(len(src.variables), dtype=np.float64)
    zarr.open_group(str(src.path), mode="r+").create_array("statistics_tendencies_6h_mean", data=tendency)
    out = rechunk(src.path, tmp_path / "ts.zarr", Layout((8, 100)), max_mem=10**8)
    assert out.data.chunks == (8, len(src.variables), 1, 100)
    np.testing.assert_array_equal(out.root["statistics_tendencies_6h_mean"][:], tendency)  # all statistics travel
    np.testing.assert_array_equal(out.data[:], src.data[:])
    assert out.variables == src.variables and out.attrs["source_uuid"] == src.uuid != out.uuid
    assert out.attrs["wxpipe_layout"] == {"chunks": [8, 3, 1, 100], "shards": None, "zarr_format": 2}
    np.testing.assert_array_equal(out.statistics()["mean"], src.statistics()["mean"])
    assert done(out.path).all()
    assert verify(src.path, out.path) == 4
    # under a small max_mem, verify compares regions split along the points
    assert verify(src.path, out.path, max_mem=3 * 8 * 3 * 200 * 4) == 4 * -(-len(src.latitudes) // 200)

    arr = array(zarr.open_group(str(out.path), mode="r+"), "data")
    arr[17, 1, 0, 5] = float(read(arr, (17, 1, 0, 5))) + 1.0
    with pytest.raises(WxpipeError, match=r"data differ .* dates 16\.\.23, points 0\.\."):
        verify(src.path, out.path)


def test_split_regions_give_the_same_layout(tmp_path: Path, make_dataset: Callable[..., Dataset]) -> None:
    src = make_dataset(tmp_path / "src.zarr", n_dates=20, missing=(3,))
    # one chunk (10 dates x 64 points) fits, whole dates do not: regions are split along the points
    small = 10 * 3 * 64 * 4
    assert plan(src.data.shape, Layout((10, 64)), small).per_region == 1
    out = rechunk(src.path, tmp_path / "ts.zarr", Layout((10, 64)), max_mem=small)
    np.testing.assert_array_equal(out.data[:], src.data[:])
    with pytest.raises(WxpipeError, match="more than max_mem"):
        rechunk(src.path, tmp_path / "no.zarr", Layout((10, 64)), max_mem=small - 1)
    assert not (tmp_path / "no.zarr").exists()


@pytest.mark.parametrize("max_mem", [10**8, 7 * 3 * 64 * 4])  # whole rows of dates; one chunk per region
def test_threads_write_the_same_chunk_files(tmp_path: Path, make_dataset: Callable[..., Dataset], max_mem: int) -> None:
    src = make_dataset(tmp_path / "src.zarr", n_dates=23, missing=(4, 5))
    layout = Layout((7, 64))  # 23 dates and the grid's points are no multiples: padded edge chunks
    one = rechunk(src.path, tmp_path / "one.zarr", layout, max_mem=max_mem, threads=1)
    many = rechunk(src.path, tmp_path / "many.zarr", layout, max_mem=max_mem, threads=3)
    files = sorted(f.name for f in (one.path / "data").iterdir())
    assert files == sorted(f.name for f in (many.path / "data").iterdir())
    assert all((one.path / "data" / f).read_bytes() == (many.path / "data" / f).read_bytes() for f in files)
    assert not [f for f in files if f.startswith(".") and f not in (".zarray", ".zattrs")]  # no temporaries
    np.testing.assert_array_equal(many.data[:], src.data[:])  # zarr-python reads our chunk files
    assert verify(src.path, many.path) > 0


def test_v3_sharded_layout_round_trips_with_far_fewer_files(
    tmp_path: Path, make_dataset: Callable[..., Dataset]
) -> None:
    src = make_dataset(tmp_path / "src.zarr", n_dates=40)
    n_values = len(src.latitudes)
    plain = rechunk(src.path, tmp_path / "v2.zarr", Layout((4, 32)), max_mem=10**8)
    sharded = rechunk(src.path, tmp_path / "v3.zarr", Layout((4, 32), (40, 320), 3), max_mem=10**8)
    assert sharded.root.metadata.zarr_format == 3
    assert sharded.data.chunks == (4, 3, 1, 32) and sharded.data.shards == (40, 3, 1, 320)
    np.testing.assert_array_equal(sharded.data[:], src.data[:])
    np.testing.assert_array_equal(sharded.dates, src.dates)
    np.testing.assert_array_equal(sharded.statistics()["stdev"], src.statistics()["stdev"])
    assert sharded.attrs["wxpipe_layout"]["shards"] == [40, 3, 1, 320]
    (_, files_v2), (_, files_v3) = tree_size(plain.path), tree_size(sharded.path)
    assert files_v2 >= 2 * (40 // 4) * -(-n_values // 32)  # a file and a done flag per chunk
    assert files_v3 * 10 <= files_v2
    text = summary(sharded.path)
    assert f"in {files_v3} files" in text and "shards (40, 3, 1, 320)" in text
    assert "written, not verified yet (`wxpipe verify`): 2/2 shards written" in text
    planted = [sharded.path / "data" / "c" / "0.3f2a9c.partial", sharded.path / "data" / ".zarr.json.tmp4242"]
    for f in planted:  # what a killed zarr-python shard write and a killed wxpipe write leave
        f.write_bytes(b"half")
    assert verify(src.path, sharded.path) == 1
    assert not any(f.exists() for f in planted)
    assert not (sharded.path / "_build").exists()  # verified: the build flags go, as anemoi's _build group
    assert "layout      complete: every shard written and verified" in summary(sharded.path)


def test_parts_write_disjoint_chunks(tmp_path: Path, make_dataset: Callable[..., Dataset]) -> None:
    src = make_dataset(tmp_path / "src.zarr", n_dates=24, missing=(5,))
    dst = tmp_path / "v3.zarr"
    p = init(src.path, dst, Layout((4, 64), (8, 128), 3))
    with pytest.raises(WxpipeError, match="not written yet"):
        verify(src.path, dst)
    text = summary(dst)
    assert f"UNFINISHED: 0/{p.n_units} shards" in text
    assert "complete" not in text and "statistics" not in text  # nothing of it shown as if it were there
    for i in (3, 1, 2):
        units = write_part(src.path, dst, Part(i, 3), max_mem=10**6)
        assert done(dst)[list(units)].all()
    assert done(dst).all() and p.n_units == 3 * -(-len(src.latitudes) // 128)
    assert verify(src.path, dst) > 0
    np.testing.assert_array_equal(Dataset(dst).data[:], src.data[:])


def test_part_resumes_after_kill(tmp_path: Path, make_dataset: Callable[..., Dataset]) -> None:
    src = make_dataset(tmp_path / "src.zarr", n_dates=20, missing=(3,))
    dst = tmp_path / "ts.zarr"
    cmd = [WXPIPE, "rechunk-init", str(src.path), str(dst), "--chunks", "dates=1,values=16"]
    subprocess.run(cmd, check=True, capture_output=True)
    n_units = done(dst).size
    flags = dst / DONE
    # one region per chunk (1 date x 16 points x 3 variables): hundreds of small writes, so the kill lands midway
    part = [WXPIPE, "rechunk", str(src.path), str(dst), "--part", "1/1", "--max-mem", "192B"]
    proc = subprocess.Popen(part, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while sum(not f.startswith(".") for f in os.listdir(flags)) < 20:
        assert proc.poll() is None and time.monotonic() < deadline, "the part ended before it was killed"
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL
    flagged = int(done(dst).sum())
    assert 20 <= flagged < n_units
    with pytest.raises(WxpipeError, match="not written yet"):
        verify(src.path, dst)

    (dst / "data" / ".0.0.0.0.tmp4242").write_bytes(b"")  # what a kill inside a chunk write leaves
    res = subprocess.run([*part[:-1], "1GB", "--resume"], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert f"{n_units - flagged} to write" in res.stderr
    res = subprocess.run([WXPIPE, "verify", str(src.path), str(dst)], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert not [f for f in tree_files(dst) if ".tmp" in f.name]  # verify, once every unit is written, clears them
    np.testing.assert_array_equal(Dataset(dst).data[:], src.data[:])


def test_cli_refuses_mixed_arguments(tmp_path: Path, make_dataset: Callable[..., Dataset]) -> None:
    src = make_dataset(tmp_path / "src.zarr", n_dates=8, missing=())
    dst = tmp_path / "ts.zarr"
    res = subprocess.run(
        [WXPIPE, "rechunk", str(src.path), str(dst), "--part", "1/2", "--chunks", "dates=4,values=64"],
        capture_output=True,
        text=True,
    )
    assert res.returncode == 1 and "with --part the layout is the one rechunk-init wrote" in res.stderr
    res = subprocess.run(
        [WXPIPE, "rechunk", str(src.path), str(dst), "--chunks", "dates=4,values=64", "--shards", "dates=8,values=64"],
        capture_output=True,
        text=True,
    )
    assert res.returncode == 0, res.stderr
    assert Dataset(dst).data.shards == (8, 3, 1, 64)


def test_rechunk_plans_once(
    tmp_path: Path, make_dataset: Callable[..., Dataset], monkeypatch: pytest.MonkeyPatch
) -> None:
    """One plan serves the refusal, the empty layout and the write (no second plan under another budget)."""
    from wxpipe.rechunk import _run

    made: list[tuple[Any, ...]] = []

    def counted(*args: Any, **kwargs: Any) -> Plan:
        made.append(args)
        return plan(*args, **kwargs)

    monkeypatch.setattr(_run, "plan", counted)
    src = make_dataset(tmp_path / "src.zarr", n_dates=8, missing=())
    out = rechunk(src.path, tmp_path / "ts.zarr", Layout((4, 64)), max_mem=10**6)
    assert len(made) == 1
    np.testing.assert_array_equal(out.data[:], src.data[:])
