"""Evaluation beside its baselines, through the real files: a forecasts file that holds the truth, the climatology
(its own store), a reference dataset by valid time, and an initial-condition ensemble rolled out member by member."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import scores as scores_lib
import xarray as xr
import zarr

from wxpipe import forecasts
from wxpipe.climatology import compute, needed_days, open_climatology
from wxpipe.config import ClimatologyConfig, EvaluationConfig
from wxpipe.dataset import Dataset, open_dataset
from wxpipe.evaluate import evaluate
from wxpipe.grid import area_weights
from wxpipe.model import read_metadata
from wxpipe.predict import predict
from wxpipe.scoring import Baselines


def _file(trained: Any, cfg: EvaluationConfig, out: Path, values: Any) -> Path:
    """A forecasts file from each initial date of ``cfg.period`` whose forecast at each lead is ``values(valid)``
    (valid dates -> (dates, variables, values))."""
    ds, meta = trained.dataset, read_metadata(trained.result.checkpoint)
    leads = forecasts.lead_steps(cfg.leads)
    starts = forecasts.initial_dates(ds, cfg.period, leads, meta.input_steps)
    header = forecasts.Header.of(ds, meta, leads, trained.result.checkpoint)
    step = np.timedelta64(6, "h")
    block = np.stack([values(ds.dates[starts] + lead * step) for lead in leads], axis=1)[:, :, None]
    with forecasts.create(out, header, len(starts)) as writer:
        writer.append(ds.dates[starts], block)
    return out


def _truth(ds: Dataset) -> Any:
    return lambda valid: np.asarray(ds.data.oindex[[ds.index_of(d) for d in valid]])[:, :, 0]


@pytest.fixture(scope="module")
def setting(trained: Any, evaluation_config: EvaluationConfig, tmp_path_factory: pytest.TempPathFactory) -> Any:
    tmp = tmp_path_factory.mktemp("baselines")
    ds = trained.dataset
    clim_cfg = ClimatologyConfig.model_validate({"period": {"start": str(ds.dates[0]), "end": str(ds.dates[39])}})
    cfg = evaluation_config.model_copy(
        update={"climatology": clim_cfg, "reference": {"name": "copy", "leads": {1: "r", 4: "r"}}}
    )
    valid = needed_days(cfg.period, 4 * ds.frequency, ds.frequency)
    climatology = open_climatology(compute(ds, clim_cfg, valid, tmp / "clim.zarr"))
    reference = open_dataset(shutil.copytree(ds.path, tmp / "reference.zarr"))
    baselines = Baselines(climatology=climatology, reference="copy", references={1: reference, 4: reference})
    return tmp, cfg, baselines


def _scored(trained: Any, setting: Any, name: str, values: Any) -> xr.Dataset:
    tmp, cfg, baselines = setting
    fc = _file(trained, cfg, tmp / f"{name}.zarr", values)
    evaluate(trained.dataset, fc, cfg, tmp / name, {}, run=name, baselines=baselines)
    with xr.open_dataset(tmp / name / "scores.nc", engine="h5netcdf") as scored:
        return scored.load()


def test_the_truth_scores_zero_error_and_acc_one(trained: Any, setting: Any) -> None:
    s = _scored(trained, setting, "perfect", _truth(trained.dataset))
    assert list(s.forecast.values) == ["perfect", "persistence", "climatology", "copy"]
    assert list(s.kind.values) == ["model", "persistence", "climatology", "reference"]
    model = s.sel(forecast="perfect")
    for metric in ("rmse", "mae", "bias"):
        np.testing.assert_array_equal(model[metric].values, 0.0)
    np.testing.assert_allclose(model.acc.values, 1.0, atol=1e-9)
    np.testing.assert_array_equal(s.map_rmse.values, 0.0)
    assert np.isnan(model.crps.values).all()  # one member: no CRPS
    ref = s.rmse.sel(forecast="copy")  # the reference holds the truth at leads 1 and 4, nothing at lead 2
    np.testing.assert_array_equal(ref.sel(lead=[6.0, 24.0]).values, 0.0)
    assert np.isnan(ref.sel(lead=12.0).values).all()
    persistence = s.sel(forecast="persistence")
    assert (persistence.rmse.values > 0).all() and (persistence.acc.values < 0.99).all()
    assert (s.rmse.sel(forecast="climatology").values > 0).all()
    assert np.isnan(s.acc.sel(forecast="climatology").values).all()  # ACC is against the climatology itself
    assert int(s.n_dates.sel(forecast="perfect").min()) == s.sizes["init_date"]


def test_climatology_plus_noise_has_no_skill_in_acc(trained: Any, setting: Any) -> None:
    _, _, baselines = setting
    rng = np.random.default_rng(5)
    stdev = trained.dataset.statistics()["stdev"][None, :, None]

    def noisy(valid: np.ndarray) -> np.ndarray:
        clim = baselines.climatology.at(valid).transpose(0, 2, 1)
        return clim + 0.5 * stdev * rng.standard_normal(clim.shape)

    s = _scored(trained, setting, "noisy", noisy)
    acc = s.acc.sel(forecast="noisy", region="global").values
    assert np.abs(acc).max() < 0.15, acc


def _ensemble(dataset: Dataset, out: Path, members: int) -> Dataset:
    """A copy of the dataset with ``members`` members: member 0 is the dataset's, the others perturbed."""
    shutil.copytree(dataset.path, out)
    root = zarr.open_group(str(out), mode="r+")
    data = np.asarray(root["data"][:])
    stdev = dataset.statistics()["stdev"][None, :, None, None]
    rng = np.random.default_rng(1)
    noise = 0.05 * stdev * rng.standard_normal((data.shape[0], data.shape[1], members - 1, data.shape[3]))
    stacked = np.concatenate([data, data + noise.astype(np.float32)], axis=2)
    attrs = dict(root["data"].attrs)
    root.create_array("data", data=stacked, chunks=(1, *stacked.shape[1:]), fill_value=np.nan, overwrite=True)
    root["data"].attrs.update(attrs)
    return open_dataset(out)


def test_an_ensemble_is_rolled_out_member_by_member_and_scored_by_fair_crps(
    trained: Any, evaluation_config: EvaluationConfig, tmp_path: Path
) -> None:
    ens = _ensemble(trained.dataset, tmp_path / "ens.zarr", 4)
    cfg = evaluation_config.model_copy(update={"leads": [1, 2]})
    fc = predict(ens, trained.result.checkpoint, cfg, tmp_path / "ens-fc.zarr")
    single = predict(trained.dataset, trained.result.checkpoint, cfg, tmp_path / "fc.zarr")
    assert fc.header.members == 4
    np.testing.assert_allclose(fc.forecast[:, :, 0], single.forecast[:, :, 0], rtol=1e-5, atol=1e-4)
    assert not np.allclose(fc.forecast[:, :, 1], fc.forecast[:, :, 0])  # each member rolled out from its own state

    evaluate(ens, fc.path, cfg, tmp_path / "out", {}, run="ens")
    with xr.open_dataset(tmp_path / "out/scores.nc", engine="h5netcdf") as s:
        model, persistence = s.sel(forecast="ens"), s.sel(forecast="persistence")
        assert (model.crps.values > 0).all() and np.isfinite(model.spread_skill.values).all()
        assert np.isnan(persistence.crps.values).all()
        crps = float(model.crps.sel(region="global", lead=6.0, variable="2t"))

    # the same fair CRPS from the `scores` library, area-weighted per date, then averaged over dates
    v = ens.variables.index("2t")
    starts = [ens.index_of(d) for d in fc.init_dates]
    truth = np.asarray(ens.data.oindex[[t + 1 for t in starts]])[:, v, 0]  # member 0 is the truth
    members = np.asarray(fc.forecast[:, 0, :, v])  # (dates, members, values)
    weights = xr.DataArray(area_weights(ens.latitudes), dims=["values"])
    per_date = [
        scores_lib.probability.crps_for_ensemble(
            xr.DataArray(members[t], dims=["member", "values"]),
            xr.DataArray(truth[t], dims=["values"]),
            ensemble_member_dim="member",
            method="fair",
            weights=weights,
        )
        for t in range(len(starts))
    ]
    assert crps == pytest.approx(float(np.mean([float(x) for x in per_date])), rel=1e-6)


def test_a_models_forcings_are_not_scored(
    trained: Any, training_config: Any, evaluation_config: EvaluationConfig, tmp_path: Path
) -> None:
    """The forecasts file holds the forcings as the model was given them: scored, they would show RMSE 0."""
    from wxpipe.train import train

    cfg = training_config(tmp_path, steps=10, variables={"forcing": ["msl"]})
    result = train(trained.dataset, cfg, tmp_path / "forced.ckpt", "forced", {})
    fc = predict(trained.dataset, result.checkpoint, evaluation_config, tmp_path / "fc.zarr")
    scores = evaluate(trained.dataset, fc.path, evaluation_config, tmp_path / "out", {}, run="forced")
    assert scores["variables"] == [v for v in trained.dataset.variables if v != "msl"]
    assert set(scores["scores"]["rmse"]["forced"]["global"]) == set(scores["variables"])
