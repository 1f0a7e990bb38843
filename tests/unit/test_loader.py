"""The training loader yields what ``read_batch`` reads, from every layout wxpipe writes, in order, keeping
NaN samples when told; it stops its threads when its consumer stops, and measures the consumer's wait.
Training reads a configured layout; config refuses one of another dataset."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pydantic
import pytest
import torch

from wxpipe import smk
from wxpipe._kernels import all_finite
from wxpipe.config import Config, LoaderConfig
from wxpipe.dataset import Dataset
from wxpipe.rechunk import Layout, rechunk
from wxpipe.samples import read_batch
from wxpipe.train.loader import Loader, WaitClock, prefetched, to_device

MISSING = 21  # tiny_dataset's declared missing date: its chunk is absent, it reads as NaN

# layouts of tiny_dataset (60 dates x 3 variables x 544 points): 8-date chunks; 4-date chunks split into
# points (an edge chunk); Zarr v3 with shards of 8 dates (read through zarr-python)
LAYOUTS = {
    "dates8": Layout((8, 544)),
    "values": Layout((4, 200)),
    "sharded": Layout((4, 272), (8, 544), 3),
}


@pytest.fixture(scope="module")
def stores(tiny_dataset: Dataset, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Dataset]:
    tmp = tmp_path_factory.mktemp("layouts")
    made = {name: rechunk(tiny_dataset.path, tmp / f"{name}.zarr", lay, 10**7) for name, lay in LAYOUTS.items()}
    return {"dataset": tiny_dataset, **made}


def random_batches(n: int, size: int, offsets: tuple[int, ...], seed: int = 0) -> list[np.ndarray]:
    """Starts whose windows lie in 0..59, with samples repeated within a batch (their dates read once)."""
    rng = np.random.default_rng(seed)
    lo, hi = -min(offsets), 60 - max(offsets)
    out = [rng.integers(lo, hi, size=size) for _ in range(n)]
    out[0][1] = out[0][0]  # the same sample twice
    return out


def check_same(got: list[Any], source: Dataset, batches: list[np.ndarray], offsets: tuple[int, ...], **kw: Any) -> None:
    assert len(got) == len(batches)
    for starts, batch in zip(batches, got, strict=True):
        want = read_batch(source, starts, offsets, **kw)
        np.testing.assert_array_equal(batch.starts, want.starts)
        np.testing.assert_array_equal(batch.dates, want.dates)
        assert batch.fields.dtype == np.float32 and batch.fields.shape == want.fields.shape
        np.testing.assert_array_equal(batch.fields, want.fields)  # NaN equals NaN


@pytest.mark.parametrize("store", ["dataset", *LAYOUTS])
def test_the_loader_yields_what_read_batch_reads(stores: dict[str, Dataset], store: str) -> None:
    ds, source = stores[store], stores["dataset"]
    offsets = (-1, 0, 1, 2, 3, 4)  # multistep input + rollout: dates shared between samples
    batches = random_batches(6, 5, offsets)
    loader = Loader(ds, iter(batches), offsets, len(batches), workers=4)
    assert (loader.reader.files is None) == (store == "sharded")  # chunk files but for Zarr v3
    assert loader.reader.direct == (store == "dataset")  # one date per chunk: decoded in place
    check_same(list(loader), source, batches, offsets)
    check_same(list(Loader(ds, iter(batches), (0, 1), 6, workers=2, prefetch=1)), source, batches, (0, 1))


def test_a_layout_opens_as_a_dataset_with_what_training_needs(stores: dict[str, Dataset]) -> None:
    source = stores["dataset"]
    for name in LAYOUTS:
        lay = Dataset(stores[name].path)
        assert lay.variables == source.variables and lay.missing_dates == source.missing_dates
        np.testing.assert_array_equal(lay.dates, source.dates)
        np.testing.assert_array_equal(lay.latitudes, source.latitudes)
        for key, values in source.statistics().items():
            np.testing.assert_array_equal(lay.statistics()[key], values)
        assert lay.attrs["source_uuid"] == source.uuid


def test_nan_samples_are_dropped_or_kept(stores: dict[str, Dataset]) -> None:
    batches = [np.array([MISSING - 1, 5, MISSING, 30])]
    for ds in stores.values():
        dropped = next(iter(Loader(ds, iter(batches), (0, 1), 1)))
        assert dropped.starts.tolist() == [5, 30]
        check_same([dropped], stores["dataset"], batches, (0, 1))
        kept = next(iter(Loader(ds, iter(batches), (0, 1), 1, drop_nan=False)))
        assert kept.starts.tolist() == batches[0].tolist() and np.isnan(kept.fields[[0, 2]]).any(axis=(1, 2, 3)).all()
        check_same([kept], stores["dataset"], batches, (0, 1), drop_nan=False)


def test_the_finite_check_finds_nan_and_infinity() -> None:
    x = np.linspace(-1e30, 1e30, 1001, dtype=np.float32)
    assert all_finite(x)
    for bad in (np.nan, np.inf, -np.inf):
        y = x.copy()
        y[500] = bad
        assert not all_finite(y)


def test_order_is_kept_under_four_workers(stores: dict[str, Dataset]) -> None:
    batches = random_batches(40, 3, (0, 1), seed=3)
    for name in ("dataset", "values"):
        got = list(Loader(stores[name], iter(batches), (0, 1), 40, workers=4, prefetch=3, drop_nan=False))
        check_same(got, stores["dataset"], batches, (0, 1), drop_nan=False)


def test_buffers_are_reused_once_the_consumer_lets_go(tiny_dataset: Dataset) -> None:
    batches = random_batches(30, 4, (0, 1), seed=5)
    loader = Loader(tiny_dataset, iter(batches), (0, 1), 30, workers=2, prefetch=2, drop_nan=False)
    owners = set()
    for starts, batch in zip(batches, loader, strict=True):
        owners.add(id(batch.fields.base))
        np.testing.assert_array_equal(batch.fields, read_batch(tiny_dataset, starts, (0, 1), drop_nan=False).fields)
    assert len(owners) <= 2 + 3 + 1  # the batches in flight and the one held, never one per batch


def test_count_limits_the_batches_and_an_empty_share_is_an_empty_batch(tiny_dataset: Dataset) -> None:
    endless = itertools.repeat(np.array([3, 4]))
    assert len(list(Loader(tiny_dataset, endless, (0, 1), 3))) == 3
    empty = next(iter(Loader(tiny_dataset, iter([np.array([], dtype=np.int64)]), (0, 1), 1)))
    assert empty.fields.shape == read_batch(tiny_dataset, [], (0, 1)).fields.shape == (0, 2, 544, 3)
    with pytest.raises(IndexError, match="outside"):
        list(Loader(tiny_dataset, iter([np.array([0])]), (-1, 0), 1))


def _loading_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("wxpipe-load")]


def test_threads_stop_when_the_consumer_stops_early(tiny_dataset: Dataset) -> None:
    drawn: list[int] = []

    def starts() -> Iterator[np.ndarray]:
        for i in itertools.count():
            drawn.append(i)
            yield np.array([i % 50, (i + 7) % 50])

    loader = Loader(tiny_dataset, starts(), (0, 1), 10_000, workers=4, prefetch=2)
    for i, _ in enumerate(loader):
        if i == 2:
            break
    assert len(drawn) <= 3 + 2 + 1  # never more than prefetch + 1 ahead of the batch taken
    deadline = time.monotonic() + 10
    while _loading_threads() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not _loading_threads()
    closed = Loader(tiny_dataset, starts(), (0, 1), 10_000, workers=4)
    it = iter(closed)
    next(it)
    closed.close()
    with pytest.raises(StopIteration):
        next(it)
    assert not _loading_threads()


def test_the_wait_for_each_batch_is_measured(tiny_dataset: Dataset, monkeypatch: pytest.MonkeyPatch) -> None:
    from wxpipe.train import loader as module

    read = module._Reader.read

    def slow(self: Any, dates: np.ndarray, places: Any) -> None:
        time.sleep(0.05)
        read(self, dates, places)

    monkeypatch.setattr(module._Reader, "read", slow)
    loader = Loader(tiny_dataset, iter([np.array([3])] * 4), (0, 1), 4, workers=1, prefetch=1)
    for _ in loader:
        pass
    assert len(loader.waits) == 4 and min(loader.waits) >= 0.04
    assert loader.wait_seconds == pytest.approx(sum(loader.waits))


def test_the_wait_clock_reports_the_fraction_of_step_time() -> None:
    clock = WaitClock(window=2)
    for _ in range(3):
        clock.ask()
        time.sleep(0.03)
        clock.got()
        time.sleep(0.03)
        clock.stepped()
    assert len(clock.steps) == 2 and 0.3 < clock.fraction() < 0.7
    (name, fraction, step), (name2, seconds, _), (name3, wall, _) = clock.metrics(20)
    assert (name, name2, name3, step) == ("data_wait_fraction", "data_wait_seconds", "step_seconds", 20)
    assert fraction == clock.fraction() and 0.025 < seconds < 0.1 and seconds < wall < 0.2

    class Bar:
        postfix = "loss=0.1234, wait=3%"

        def set_postfix_str(self, text: str, refresh: bool = True) -> None:
            self.postfix = text

    bar = Bar()
    clock.show(bar)
    assert bar.postfix.startswith("loss=0.1234, wait=") and bar.postfix.count("wait=") == 1


def test_to_device_gives_a_contiguous_tensor(tiny_dataset: Dataset) -> None:
    batch = next(iter(prefetched(tiny_dataset, iter([np.array([2, 9])]), (0, 1), 1, LoaderConfig(workers=2))))
    tensor = to_device(batch.fields, "cpu")
    assert tensor.is_contiguous() and np.array_equal(tensor.numpy(), batch.fields)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_on_a_gpu_batches_are_pinned_and_copied_without_blocking(tiny_dataset: Dataset) -> None:
    batch = next(iter(prefetched(tiny_dataset, iter([np.array([2, 9])]), (0, 1), 1, device="cuda:0")))
    assert torch.from_numpy(batch.fields).is_pinned()
    assert np.array_equal(to_device(batch.fields, "cuda:0").cpu().numpy(), batch.fields)


def _config(layout: str | None, site: str | None = "here", layout_dataset: str = "d") -> Config:
    run: dict[str, Any] = {"dataset": "d", "site": site, "loader": {"layout": layout}}
    run |= {"train": {"start": "2020-01-01", "end": "2020-01-02"}}
    run |= {"validation": {"start": "2020-01-03", "end": "2020-01-04"}}
    return Config.model_validate(
        {
            "datasets": {"d": {"recipe": "r.yaml"}, "e": {"recipe": "e.yaml"}},
            "layouts": {
                "l": {"dataset": layout_dataset, "chunks": {"dates": 8, "values": 40320}},
                "m": {"dataset": "d", "chunks": {"dates": 8, "values": 40320}},
            },
            "sites": {"here": {"url": "file:sites/here/"}},
            "transfers": [{"dataset": "d", "site": "here"}, {"layout": "l", "site": "here"}],
            "training": {"t": run},
            "evaluation": {"period": {"start": "2020-01-05", "end": "2020-01-06"}},
        }
    )


def test_training_reads_its_layout_and_evaluation_the_dataset() -> None:
    at_site = _config("l")
    assert smk.training_source(at_site, "t") == str(Path("sites/here/l.zarr"))
    assert smk.training_source_records(at_site, "t") == [
        "results/lineage/rechunk/l.json",
        "results/lineage/transfer/here/l.json",
    ]
    assert smk.dataset_copy(at_site, "t") == "sites/here/d.zarr"  # what predict and evaluate read
    local = _config("m")  # not copied to the site: the layout in results/
    assert smk.training_source(local, "t") == "results/layouts/m.zarr"
    assert smk.training_source_records(local, "t") == ["results/lineage/rechunk/m.json"]
    plain = _config(None, site=None)
    assert smk.training_source(plain, "t") == smk.dataset_copy(plain, "t") == "results/datasets/d.zarr"
    assert smk.training_source_records(plain, "t") == smk.dataset_copy_records(plain, "t")


def test_config_refuses_an_unknown_layout_or_one_of_another_dataset() -> None:
    with pytest.raises(pydantic.ValidationError, match=r"training\.t\.loader\.layout: no layout 'x'"):
        _config("x")
    with pytest.raises(pydantic.ValidationError, match=r"training\.t\.loader\.layout: 'l' is a layout of 'e'"):
        _config("l", layout_dataset="e")
