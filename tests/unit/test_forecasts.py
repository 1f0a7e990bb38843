"""The forecasts file: what predict writes (Zarr v2, atomically) is what the model predicts, and all evaluate needs."""

from __future__ import annotations

import dataclasses
import json
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from wxpipe import predict as predict_module
from wxpipe.config import EvaluationConfig
from wxpipe.errors import WxpipeError
from wxpipe.forecasts import Forecasts, initial_dates, open_forecasts
from wxpipe.model import Forecaster, load, read_metadata
from wxpipe.predict import predict
from wxpipe.train import load_checkpoint
from wxpipe.train.features import forcings

REPO = Path(__file__).resolve().parents[2]
ZARR2_PYTHON = REPO / "bench/.venv-anemoi/bin/python"  # an environment with zarr-python 2, when built


@pytest.fixture(scope="module")
def made(trained: Any, evaluation_config: EvaluationConfig) -> Forecasts:
    return predict(
        trained.dataset, trained.result.checkpoint, evaluation_config, trained.tmp / "fc.zarr", lineage="ckpt-1"
    )


def test_layout_and_metadata(made: Forecasts, trained: Any, evaluation_config: EvaluationConfig) -> None:
    ds, h = trained.dataset, made.header
    assert (made.path / ".zgroup").exists() and not (made.path / "zarr.json").exists()  # Zarr v2
    starts = initial_dates(ds, evaluation_config.period, [1, 2, 4])
    np.testing.assert_array_equal(made.init_dates, ds.dates[starts])
    assert made.forecast.shape == (len(starts), 3, 1, len(ds.variables), len(ds.latitudes))
    assert made.forecast.dtype == np.float32 and np.isfinite(made.forecast[:]).all()
    assert (h.variables, h.leads, h.members, h.frequency) == (ds.variables, [1, 2, 4], 1, ds.frequency)
    np.testing.assert_array_equal(h.latitudes, ds.latitudes)
    assert (h.dataset_uuid, h.dataset_path, h.checkpoint) == (ds.uuid, str(ds.path), str(trained.result.checkpoint))
    assert h.model == dataclasses.replace(read_metadata(trained.result.checkpoint), lineage="ckpt-1")
    assert made.forecast.attrs["_ARRAY_DIMENSIONS"][:2] == ["init_dates", "leads"]
    assert sorted(p.name for p in made.path.parent.iterdir() if p.name.startswith(".fc.zarr")) == []


def test_forecasts_are_the_models_rollout(made: Forecasts, trained: Any) -> None:
    network, _ = load_checkpoint(trained.result.checkpoint)
    ds = trained.dataset
    t = ds.index_of(made.init_dates[3])
    with torch.no_grad():
        x = network.normalise(torch.from_numpy(np.ascontiguousarray(ds.data[t, :, 0].T, dtype=np.float32))[None])
        f = torch.from_numpy(forcings(made.init_dates[3:4], ds.latitudes, ds.longitudes))
        by_hand = network.denormalise(network(x, f)).numpy()[0].T
    np.testing.assert_allclose(made.forecast[3, 0, 0], by_hand, rtol=1e-6)


def test_a_killed_predict_leaves_no_store(
    trained: Any, evaluation_config: EvaluationConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Dying:
        def __init__(self, model: Forecaster) -> None:
            self.model, self.calls = model, 0

        @property
        def metadata(self) -> Any:
            return self.model.metadata

        def predict(self, states: np.ndarray, dates: np.ndarray, steps: Any) -> np.ndarray:
            self.calls += 1
            if self.calls == 2:
                raise KeyboardInterrupt
            return self.model.predict(states, dates, steps)

    monkeypatch.setattr(predict_module, "load", lambda checkpoint: Dying(load(checkpoint)))
    with pytest.raises(KeyboardInterrupt):
        predict(trained.dataset, trained.result.checkpoint, evaluation_config, tmp_path / "fc.zarr", memory_mb=1)
    assert list(tmp_path.iterdir()) == []


def test_a_rerun_replaces_the_store(made: Forecasts, trained: Any, tmp_path: Path) -> None:
    out = tmp_path / "fc.zarr"
    (out / "stale").mkdir(parents=True)
    cfg = EvaluationConfig.model_validate(
        {"period": {"start": str(made.init_dates[0]), "end": str(made.init_dates[1])}, "leads": [2]}
    )
    again = predict(trained.dataset, trained.result.checkpoint, cfg, out)
    assert not (out / "stale").exists() and again.header.leads == [2] and len(again.init_dates) == 2
    np.testing.assert_array_equal(again.forecast[:, 0], made.forecast[:2, 1])


def test_open_forecasts_refuses_a_dataset(trained: Any) -> None:
    with pytest.raises(WxpipeError, match="not a forecasts file"):
        open_forecasts(trained.dataset.path)


def test_an_input_window_needs_its_past_dates(trained: Any, evaluation_config: EvaluationConfig) -> None:
    ds = trained.dataset
    missing = ds.index_of(ds.missing_dates[0])
    period = evaluation_config.period.model_copy(update={"start": ds.dates[0].item(), "end": ds.dates[30].item()})
    one, two = initial_dates(ds, period, [1], 1), initial_dates(ds, period, [1], 2)
    assert missing + 1 in one and missing + 1 not in two  # its past date is the missing one
    assert 0 in one and 0 not in two  # no date before the first
    assert set(two) == {t for t in one if t >= 1 and t - 1 != missing}


@pytest.mark.skipif(not ZARR2_PYTHON.exists(), reason="no zarr-python 2 environment (bench/.venv-anemoi)")
def test_zarr_2_reads_it(made: Forecasts) -> None:
    code = (
        "import json, sys, zarr; g = zarr.open_group(sys.argv[1], mode='r'); assert zarr.__version__[0] == '2'\n"
        "leads = [int(x) for x in g['leads'][:]]\n"
        "print(json.dumps([g['forecast'].shape, str(g['init_dates'][-1]), leads, g.attrs['model']['engine']]))"
    )
    res = subprocess.run([str(ZARR2_PYTHON), "-c", code, str(made.path)], capture_output=True, text=True, check=False)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout) == [list(made.forecast.shape), str(made.init_dates[-1]), [1, 2, 4], "wxpipe"]
