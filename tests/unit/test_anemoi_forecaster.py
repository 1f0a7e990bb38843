"""Predicting from anemoi checkpoints: the layout read from anemoi's metadata, the rollout the worker runs, and
predict end to end through a real worker process, with a stand-in model that keeps anemoi's ``predict_step``
contract (the real model and anemoi-inference's forecast are compared in make test-anemoi)."""

from __future__ import annotations

import json
import os
import sys
import threading
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from wxpipe.anemoi.forecaster import PYTHON
from wxpipe.anemoi.layout import Layout, model_metadata
from wxpipe.anemoi.worker import read_array, rollout, send_array
from wxpipe.config import EvaluationConfig
from wxpipe.dataset import Dataset
from wxpipe.errors import WxpipeError
from wxpipe.forecasts import open_forecasts
from wxpipe.model import embed_metadata, load, read_metadata
from wxpipe.predict import predict

NAMES = ["2t", "msl", "t_850"]  # prognostic, diagnostic, forcing

# Keeps anemoi's contract: (batch, k, grid, inputs) in physical units in, (batch, 1, 1, grid, outputs) out. The
# state moves by its last tendency (scaled by a weight) and by the forcings; the diagnostic is twice the state.
STUB = """
import torch


class Stub(torch.nn.Module):
    def __init__(self, into, out_of, forced, diagnostic, outputs, fail=False):
        super().__init__()
        self.into, self.out_of, self.forced, self.diagnostic, self.outputs, self.fail = (
            into, out_of, forced, diagnostic, outputs, fail
        )
        self.scale = torch.nn.Parameter(torch.tensor(0.5))

    def predict_step(self, batch):
        if self.fail:
            raise RuntimeError("CUDA out of memory (stand-in)")
        x = batch["data"]
        last, first = x[:, -1][..., self.into], x[:, 0][..., self.into]
        drive = 1e-3 * x[:, -1][..., self.forced].sum(-1, keepdim=True)
        state = last + drive + self.scale * (last - first)
        y = x.new_zeros((x.shape[0], x.shape[2], self.outputs))
        y[..., self.out_of] = state
        y[..., self.diagnostic] = 2 * state[..., :1]
        return {"data": y[:, None, None]}
"""


def _layout(anemoi_meta: Callable[..., dict[str, Any]], **kw: Any) -> Layout:
    return Layout.of(anemoi_meta(NAMES, forcings=["t_850"], diagnostics=["msl"], **kw))


def test_the_layout_names_anemois_tensor_columns(anemoi_meta: Callable[..., dict[str, Any]]) -> None:
    layout = _layout(anemoi_meta)
    assert (layout.inputs, layout.outputs) == (("2t", "t_850"), ("2t", "msl"))
    assert (layout.prognostic, layout.forcings, layout.input_steps, layout.output_steps) == (("2t",), ("t_850",), 2, 1)
    with pytest.raises(WxpipeError, match="no data indices"):
        Layout.of({"config": {}})
    meta = anemoi_meta(NAMES)
    meta["data_indices"]["data"]["data"]["output"]["target"] = [1]
    with pytest.raises(WxpipeError, match="target-only"):
        Layout.of(meta)


def test_the_rollout_carries_each_calls_outputs_into_the_next_window(
    anemoi_meta: Callable[..., dict[str, Any]],
) -> None:
    """Two states per call from a window of three: outputs must run on unbroken, +1 per model step."""

    class TwoSteps(torch.nn.Module):
        def predict_step(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
            x = batch["data"]
            tendency = x[:, -1] - x[:, -2]
            return {"data": torch.stack([x[:, -1] + tendency, x[:, -1] + 2 * tendency], 1)[:, :, None]}

    layout = Layout.of(anemoi_meta(["2t", "msl"], input_steps=3, output_steps=2))
    states = torch.arange(3, dtype=torch.float32)[None, :, None, None].expand(4, 3, 5, 2).contiguous()
    out = rollout(TwoSteps(), layout, states, torch.zeros(4, 0, 5, 0), calls=3)
    assert out.shape == (4, 6, 5, 2)
    np.testing.assert_array_equal(out[0, :, 0, 0].numpy(), [3, 4, 5, 6, 7, 8])


def test_arrays_cross_a_pipe_whole() -> None:
    big = np.random.default_rng(0).standard_normal((3, 70_000)).astype(np.float32)  # past a pipe's buffer
    read_fd, write_fd = os.pipe()
    with os.fdopen(read_fd, "rb") as reader, os.fdopen(write_fd, "wb") as writer:
        thread = threading.Thread(target=lambda: (send_array(writer, big), send_array(writer, big[:, :3].T)))
        thread.start()
        np.testing.assert_array_equal(read_array(reader), big)
        np.testing.assert_array_equal(read_array(reader), big[:, :3].T)
        thread.join()
    read_fd, write_fd = os.pipe()
    with os.fdopen(read_fd, "rb") as reader:
        with os.fdopen(write_fd, "wb") as writer:
            writer.write(json.dumps({"shape": [10], "dtype": "<f4"}).encode() + b"\n" + b"\0" * 8)
        with pytest.raises(EOFError, match="32 bytes into"):
            read_array(reader)


def _checkpoint(
    tmp: Path, dataset: Dataset, meta: dict[str, Any], monkeypatch: pytest.MonkeyPatch, fail: bool = False
) -> Path:
    """A stand-in model saved as anemoi saves one (torch.save's zip with anemoi's metadata and grid), with
    wxpipe's model metadata embedded as training embeds it; the worker runs in this Python."""
    (tmp / "anemoi_stub.py").write_text(STUB)
    monkeypatch.syspath_prepend(str(tmp))
    monkeypatch.setenv("PYTHONPATH", str(tmp))
    monkeypatch.setenv(PYTHON, sys.executable)
    import anemoi_stub

    layout = Layout.of(meta)
    positions = layout.positions
    model = anemoi_stub.Stub(
        positions(layout.prognostic, layout.inputs),
        positions(layout.prognostic, layout.outputs),
        positions(layout.forcings, layout.inputs),
        positions(("msl",), layout.outputs),
        len(layout.outputs),
        fail,
    )
    path = tmp / "inference-last.ckpt"
    torch.save(model, path)
    with zipfile.ZipFile(path, "a") as archive:
        top = archive.namelist()[0].split("/")[0] + "/anemoi-metadata/"
        grid = {"latitudes": dataset.latitudes, "longitudes": dataset.longitudes}
        paths = {n: {"path": f"{top}data/{n}.numpy", "shape": [len(a)], "dtype": "float64"} for n, a in grid.items()}
        archive.writestr(top + "anemoi.json", json.dumps({**meta, "supporting_arrays_paths": {"data": paths}}))
        for name, values in grid.items():
            archive.writestr(paths[name]["path"], np.asarray(values, dtype=np.float64).tobytes())
    embed_metadata(path, model_metadata(path, dataset.source_uuid))
    return path


def test_predict_runs_an_anemoi_checkpoint_through_its_worker(
    make_dataset: Callable[..., Dataset],
    anemoi_meta: Callable[..., dict[str, Any]],
    evaluation_config: EvaluationConfig,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ds = make_dataset(tmp_path / "d.zarr", variables=NAMES)
    checkpoint = _checkpoint(tmp_path, ds, anemoi_meta(NAMES, forcings=["t_850"], diagnostics=["msl"]), monkeypatch)
    assert read_metadata(checkpoint).forcings == ["t_850"]
    fc = open_forecasts(predict(ds, checkpoint, evaluation_config, tmp_path / "fc.zarr").path)
    leads = evaluation_config.leads
    data = np.asarray(ds.data[:, :, 0], dtype=np.float64)  # (dates, variables, values)
    index = {d: i for i, d in enumerate(ds.dates)}
    assert len(fc.init_dates) > 5
    for n, init in enumerate(fc.init_dates):
        t0 = index[init]
        s = [data[t0 - 1, 0], data[t0, 0]]  # the stand-in's dynamics in numpy, forcings from the dataset
        for t in range(1, max(leads) + 1):
            s.append(s[-1] + 1e-3 * data[t0 + t - 1, 2] + 0.5 * (s[-1] - s[-2]))
        got = np.asarray(fc.forecast[n][:, 0])  # (leads, variables, values)
        for j, lead in enumerate(leads):
            np.testing.assert_allclose(got[j, 0], s[lead + 1], rtol=1e-6)
            np.testing.assert_allclose(got[j, 1], 2 * s[lead + 1], rtol=1e-6)
            np.testing.assert_array_equal(got[j, 2], data[t0 + lead, 2].astype(np.float32))  # the forcing as given


def test_a_failing_model_or_a_missing_worker_is_named(
    make_dataset: Callable[..., Dataset],
    anemoi_meta: Callable[..., dict[str, Any]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ds = make_dataset(tmp_path / "d.zarr", variables=NAMES, n_dates=8, missing=())
    meta = anemoi_meta(NAMES, forcings=["t_850"], diagnostics=["msl"])
    checkpoint = _checkpoint(tmp_path, ds, meta, monkeypatch, fail=True)
    model = load(checkpoint)
    states = np.zeros((1, 1, 2, 2, len(ds.latitudes)), dtype=np.float32)
    with pytest.raises(WxpipeError, match="the anemoi model failed: RuntimeError: CUDA out of memory"):
        model.predict(states, np.array([]), [1, 2], np.zeros((1, 1, 2, 1, len(ds.latitudes)), dtype=np.float32))
    monkeypatch.setenv(PYTHON, str(tmp_path / "no-such-python"))
    with pytest.raises(WxpipeError, match=f"cannot start the anemoi worker .*no-such-python.*set {PYTHON}"):
        load(checkpoint)
