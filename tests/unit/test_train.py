"""Training: the grid helpers, the sampler, the loop, the checkpoint and the MLflow record."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from wxpipe.dataset import Dataset
from wxpipe.errors import WxpipeError
from wxpipe.grid import grid_fingerprint
from wxpipe.model import ModelMetadata, Variable, read_metadata
from wxpipe.samples import read_batch, sample_starts
from wxpipe.tracking import flatten, redact, sqlite_path
from wxpipe.train import Hyper, Network, load_checkpoint, save_checkpoint, train
from wxpipe.train.features import FORCING_NAMES, forcings, neighbour_indices, neighbour_offsets, unit_vectors

Grid = Callable[[int], tuple[np.ndarray, np.ndarray]]


def test_neighbours_are_the_nearest_points_self_first(octahedral_grid: Grid) -> None:
    lat, lon = octahedral_grid(8)
    k = 7
    nb = neighbour_indices(lat, lon, k, chunk=100)  # several chunks
    assert nb.shape == (len(lat), k)
    assert (nb[:, 0] == np.arange(len(lat))).all()
    assert all(len(set(row)) == k for row in nb)
    xyz = unit_vectors(lat, lon)
    for i in [0, 17, len(lat) // 2, len(lat) - 1]:  # brute force: the k largest dot products
        brute = np.argsort(-(xyz @ xyz[i]), kind="stable")[:k]
        assert set(nb[i]) == set(brute)


def test_neighbour_offsets_point_the_right_way(octahedral_grid: Grid) -> None:
    lat, lon = octahedral_grid(8)
    nb = neighbour_indices(lat, lon, 5)
    off = neighbour_offsets(lat, lon, nb)
    assert off.shape == (len(lat), 4, 2)
    i = len(lat) // 2 - 10  # a point just north of the equator
    for m, j in enumerate(nb[i, 1:]):
        north = lat[j] - lat[i]
        if abs(north) > 1e-6:
            assert np.sign(off[i, m, 1]) == np.sign(north)


def test_forcings_follow_the_sun() -> None:
    dates = np.array(["2020-06-21T12:00:00", "2020-06-22T00:00:00"], dtype="datetime64[s]")
    lat = np.array([0.0, 45.0])
    lon = np.array([0.0, 180.0])
    f = forcings(dates, lat, lon)
    assert f.shape == (2, 2, 6) and f.dtype == np.float32
    # local noon at 12 UTC on the Greenwich meridian, and midnight at 180E: cos of solar angle -1 and +1
    np.testing.assert_allclose(f[0, 0, 3], -1.0, atol=1e-6)
    np.testing.assert_allclose(f[0, 1, 3], 1.0, atol=1e-6)
    np.testing.assert_allclose(f[0, 1, 0], np.sin(np.deg2rad(45.0)), atol=1e-6)


def test_samples_skip_missing_dates_and_stay_in_period(tiny_dataset: Dataset, training_config: Any) -> None:
    cfg = training_config(Path("/unused"))
    starts = sample_starts(tiny_dataset, cfg.train, (0, 1))
    missing = tiny_dataset.index_of(tiny_dataset.missing_dates[0])
    assert missing not in starts and missing - 1 not in starts
    last = tiny_dataset.index_of(cfg.train.end)
    assert starts.max() == last - 1
    batch = read_batch(tiny_dataset, starts[:3], (0, 1))
    assert batch.fields.shape == (3, 2, len(tiny_dataset.latitudes), len(tiny_dataset.variables))
    np.testing.assert_array_equal(batch.fields[1, 1, :, 0], tiny_dataset.data[starts[1] + 1, 0, 0])
    # a sample that still meets a NaN date is dropped, the others kept in order
    mixed = read_batch(tiny_dataset, [missing - 3, missing - 1, missing + 1], (0, 1))
    assert list(mixed.starts) == [missing - 3, missing + 1]
    assert np.isfinite(mixed.fields).all()


def test_training_lowers_the_loss(trained: Any) -> None:
    m = trained.result.metrics
    assert m["val_loss"] < 0.5 * m["val_loss_persistence"]  # the untrained model is exactly persistence
    from mlflow.tracking import MlflowClient

    history = MlflowClient(trained.cfg.mlflow.tracking_uri).get_metric_history(trained.result.run_id, "train_loss")
    values = [h.value for h in sorted(history, key=lambda h: h.step)]
    assert len(values) >= 10
    assert np.mean(values[-3:]) < 0.5 * np.mean(values[:3])


def test_mlflow_run_has_params_metrics_tags_and_artifacts(trained: Any) -> None:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(trained.cfg.mlflow.tracking_uri)
    run = client.get_run(trained.result.run_id)
    assert run.info.run_name == "unit-run"
    assert run.info.status == "FINISHED"
    assert run.data.params["steps"] == str(trained.cfg.steps)
    assert run.data.params["train.start"] == trained.cfg.train.start.isoformat()
    assert run.data.params["data.variables"] == ",".join(trained.dataset.variables)
    assert {"train_loss", "val_loss", "val_loss_persistence"} <= set(run.data.metrics)
    assert run.data.tags["wxpipe.lineage"] == "abc123"
    assert run.data.tags["wxpipe.dataset_uuid"] == trained.dataset.uuid
    assert "loss_curve.png" in [a.path for a in client.list_artifacts(run.info.run_id)]
    experiment = client.get_experiment(run.info.experiment_id)
    assert experiment.artifact_location == (trained.tmp / "mlflow-artifacts").as_uri()
    assert not Path("mlruns").exists()


def test_checkpoint_holds_what_prediction_needs(trained: Any) -> None:
    model, meta = load_checkpoint(trained.result.checkpoint)
    ds = trained.dataset
    assert meta == read_metadata(trained.result.checkpoint)  # readable without torch, the same
    assert (meta.engine, meta.run_id, meta.dataset_uuid) == ("wxpipe", trained.result.run_id, ds.uuid)
    assert meta.tracking_uri == trained.cfg.mlflow.tracking_uri
    assert meta.inputs == meta.outputs == ds.variables  # every dataset variable is prognostic
    assert [v.name for v in meta.variables if v.computed] == list(FORCING_NAMES)
    assert all(v.role == "forcing" for v in meta.variables if v.computed)
    assert (meta.grid, meta.points) == (grid_fingerprint(ds.latitudes, ds.longitudes), len(ds.latitudes))
    assert (meta.frequency, meta.input_steps, meta.training_step) == (ds.frequency, 1, trained.cfg.steps)
    assert (model.hyper.input_steps, model.hyper.forcing, model.hyper.diagnostic) == (1, (), ())
    assert {v.normaliser for v in meta.variables if not v.computed} == {"mean-std"}
    mean = [v.mean for v in meta.variables if not v.computed]
    np.testing.assert_allclose(mean, ds.statistics()["mean"])
    np.testing.assert_allclose(model.shift.numpy(), ds.statistics()["mean"], rtol=1e-6)  # mean-std by default
    expect = neighbour_indices(ds.latitudes, ds.longitudes, trained.cfg.neighbours)
    np.testing.assert_array_equal(model.neighbours.numpy(), expect)
    assert not model.training


def test_checkpoint_round_trip_predicts_the_same(tmp_path: Path, octahedral_grid: Grid) -> None:
    lat, lon = octahedral_grid(4)
    nb = neighbour_indices(lat, lon, 5)
    hyper = Hyper(n_variables=2, n_points=len(lat), n_neighbours=5, hidden=8)
    torch.manual_seed(1)
    model = Network.build(
        hyper, nb, neighbour_offsets(lat, lon, nb), np.array([1.0, 2.0]), np.array([0.0, 3.0]), np.ones(2)
    )
    with torch.no_grad():
        for p in model.parameters():
            p.normal_()  # the zero-initialised last layer would make every model look alike
    meta = ModelMetadata(
        engine="wxpipe",
        variables=(Variable("a", "prognostic"), Variable("b", "prognostic")),
        grid=grid_fingerprint(lat, lon),
        points=len(lat),
        frequency_seconds=6 * 3600,
        dataset_uuid="u",
    )
    path = save_checkpoint(tmp_path / "sub" / "m.ckpt", model, meta, lat, lon)
    loaded, loaded_meta = load_checkpoint(path)
    assert loaded.hyper == hyper and loaded_meta == meta
    assert float(loaded.scale[0]) == 1.0  # a zero scale is guarded
    x = torch.randn(3, len(lat), 2)
    f = torch.from_numpy(forcings(np.array(["2020-01-01T06"] * 3, dtype="datetime64[s]"), lat, lon))
    with torch.no_grad():
        torch.testing.assert_close(loaded(x, f), model.eval()(x, f), rtol=0, atol=0)
        assert not torch.equal(loaded(x, f), x)
    assert [p.name for p in path.parent.iterdir()] == ["m.ckpt"]  # no temporary left behind


def test_training_is_deterministic(trained: Any, tmp_path: Path, training_config: Any) -> None:
    cfg = training_config(trained.tmp, steps=20)
    a = train(trained.dataset, cfg, tmp_path / "a.ckpt", "det-a", {}, threads=1)
    b = train(trained.dataset, cfg, tmp_path / "b.ckpt", "det-b", {}, threads=1)
    assert a.run_id != b.run_id
    assert a.metrics["val_loss"] == b.metrics["val_loss"]
    ma, _ = load_checkpoint(a.checkpoint)
    mb, _ = load_checkpoint(b.checkpoint)
    for (name, pa), (_, pb) in zip(ma.state_dict().items(), mb.state_dict().items(), strict=True):
        assert torch.equal(pa, pb), name


def test_training_runs_on_the_jobs_threads(
    tiny_dataset: Dataset, training_config: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from wxpipe.train import loop

    seen: list[int] = []
    monkeypatch.setattr(loop, "_train", lambda *args: seen.append(torch.get_num_threads()))
    before = torch.get_num_threads()
    train(tiny_dataset, training_config(tmp_path), tmp_path / "x.ckpt", "threads", {}, threads=3)
    assert seen == [3] and torch.get_num_threads() == before


def test_training_refuses_an_empty_period(tiny_dataset: Dataset, tmp_path: Path, training_config: Any) -> None:
    later = tiny_dataset.dates[-1].astype(dt.datetime) + dt.timedelta(days=10)
    cfg = training_config(
        tmp_path, validation={"start": later.isoformat(), "end": (later + dt.timedelta(days=1)).isoformat()}
    )
    with pytest.raises(WxpipeError, match="validation period"):
        train(tiny_dataset, cfg, tmp_path / "x.ckpt", "empty", {})


def test_tracking_helpers() -> None:
    assert redact("https://user:secret@mlflow.example.org:5000/x") == "https://mlflow.example.org:5000/x"
    assert redact("sqlite:///results/mlflow.db") == "sqlite:///results/mlflow.db"
    assert sqlite_path("sqlite:///results/mlflow.db") == Path("results/mlflow.db")
    assert sqlite_path("sqlite:////abs/m.db") == Path("/abs/m.db")
    assert sqlite_path("http://host") is None
    assert flatten({"a": 1, "b": {"c": "x", "d": {"e": None}}}) == {"a": "1", "b.c": "x", "b.d.e": "None"}
