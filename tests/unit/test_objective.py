"""The objective a weather-ML user expects: variable roles, rollout, masked loss, normalisers, loss weights,
the learning-rate schedule, accumulation, bf16 and model size; checked on the autograd graph and on numbers."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import zarr

from wxpipe.config import LossWeightsConfig, NormaliserConfig, RolloutConfig, TrainingConfig
from wxpipe.dataset import Dataset
from wxpipe.errors import WxpipeError
from wxpipe.samples import Batch, read_batch
from wxpipe.train.features import neighbour_indices, neighbour_offsets
from wxpipe.train.model import Hyper, Network
from wxpipe.train.objective import backward, loss, samples
from wxpipe.train.state import learning_rate
from wxpipe.train.variables import default_forcings, loss_weights, normaliser_arrays, normalisers, roles_of

Grid = Callable[[int], tuple[np.ndarray, np.ndarray]]
SIX_HOURS = dt.timedelta(hours=6)
DATES = np.array(["2020-01-02T00", "2020-01-03T06", "2020-01-04T12"], dtype="datetime64[s]")


def _network(grid: Grid, *, k: int = 1, forcing: tuple[int, ...] = (), diagnostic: tuple[int, ...] = ()) -> Network:
    """A 4-variable model on O4 with random weights (the zeroed last layer would hide every dependence)."""
    lat, lon = grid(4)
    nb = neighbour_indices(lat, lon, 5)
    hyper = Hyper(4, len(lat), 5, 16, input_steps=k, forcing=forcing, diagnostic=diagnostic)
    model = Network.build(hyper, nb, neighbour_offsets(lat, lon, nb), np.zeros(4), np.ones(4), np.full(4, 0.5))
    torch.manual_seed(3)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 0.3)
    return model


def _fields(grid: Grid, dates: int, seed: int = 0) -> np.ndarray:
    lat, _ = grid(4)
    return np.random.default_rng(seed).standard_normal((len(DATES), dates, len(lat), 4)).astype(np.float32)


def _area(grid: Grid) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
    lat, lon = grid(4)
    return torch.ones(len(lat)), lat, lon


def test_the_loss_at_step_r_reaches_the_first_step(octahedral_grid: Grid) -> None:
    """Only step 3 is scored (the truth of steps 1 and 2 is NaN); its loss still moves the first step's output
    and, through it, the weights: the rollout is not detached anywhere."""
    model = _network(octahedral_grid)
    weights, lat, lon = _area(octahedral_grid)
    fields = _fields(octahedral_grid, 4)
    fields[:, 1:3] = np.nan
    first: list[torch.Tensor] = []

    def keep_first(module: torch.nn.Module, args: Any, out: torch.Tensor) -> None:
        if not first:
            out.retain_grad()
            first.append(out)

    model.register_forward_hook(keep_first)
    value = loss(model, fields, DATES, weights, lat, lon, frequency=SIX_HOURS)
    assert torch.isfinite(value) and value > 0
    value.backward()  # type: ignore[no-untyped-call]
    assert first[0].grad is not None and first[0].grad.abs().sum() > 0
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())
    only_step_one = loss(model, fields[:, :2], DATES, weights, lat, lon)
    assert only_step_one.item() == 0.0  # its truth is NaN: what step 3 moved came through the rollout


def test_nan_truth_is_masked_and_nan_inputs_are_the_mean(octahedral_grid: Grid) -> None:
    model = _network(octahedral_grid)
    weights, lat, lon = _area(octahedral_grid)
    fields = _fields(octahedral_grid, 3)
    land = np.arange(0, len(lat), 3)
    masked = fields.copy()
    masked[:, :, land, 2] = np.nan  # a field like sst: NaN over land at every date
    value = loss(model, masked, DATES, weights, lat, lon, frequency=SIX_HOURS)
    value.backward()  # type: ignore[no-untyped-call]
    assert torch.isfinite(value) and all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    # masked points contribute nothing: the same as zero weight there with the input at the mean (shift 0)
    zeroed = torch.ones(len(lat), 4)
    zeroed[land, 2] = 0.0
    filled = fields.copy()
    filled[:, :, land, 2] = 0.0
    same = loss(model, filled, DATES, zeroed, lat, lon, frequency=SIX_HOURS)
    torch.testing.assert_close(value.detach(), same.detach(), rtol=1e-6, atol=0)


def test_forcings_are_never_scored_and_diagnostics_never_read(octahedral_grid: Grid) -> None:
    model = _network(octahedral_grid, forcing=(1,), diagnostic=(3,))
    weights, lat, lon = _area(octahedral_grid)
    assert model.net[-1].out_features == 3  # prognostic 0, 2 and diagnostic 3: no forcing output
    fields = _fields(octahedral_grid, 2)
    other = fields.copy()
    other[:, 1, :, 1] += 5.0  # the forcing's truth at the target date
    other[:, 0, :, 3] -= 7.0  # the diagnostic at the input date
    a = loss(model, fields, DATES, weights, lat, lon)
    b = loss(model, other, DATES, weights, lat, lon)
    assert a.item() == b.item()
    x = torch.from_numpy(fields[:, 0])
    f = torch.zeros(len(DATES), len(lat), 6)
    with torch.no_grad():
        y = model(x, f)
        torch.testing.assert_close(y[..., 1], x[..., 1])  # the forcing slot is carried, not predicted
        assert not torch.equal(y[..., 3], torch.zeros_like(y[..., 3]))


def test_multistep_input_reads_every_past_state(octahedral_grid: Grid) -> None:
    model = _network(octahedral_grid, k=2)
    _, lat, _ = _area(octahedral_grid)
    x = torch.from_numpy(_fields(octahedral_grid, 2))
    f = torch.zeros(len(DATES), len(lat), 6)
    with torch.no_grad():
        y = model(x, f)
        older = x.clone()
        older[:, 0] += 1.0
        assert not torch.equal(model(older, f), y)


@pytest.mark.parametrize(
    ("kind", "shift", "scale"),
    [("mean-std", 10.0, 2.0), ("std", 0.0, 2.0), ("min-max", 4.0, 16.0), ("max", 0.0, 20.0), ("none", 0.0, 1.0)],
)
def test_normalisers_round_trip(kind: str, shift: float, scale: float) -> None:
    stats = {k: np.array([v]) for k, v in {"mean": 10.0, "stdev": 2.0, "minimum": 4.0, "maximum": 20.0}.items()}
    s, c = normaliser_arrays([kind], stats)
    assert (s[0], c[0]) == (shift, scale)
    hyper = Hyper(1, 2, 1, 4)
    model = Network.build(hyper, np.zeros((2, 1)), np.zeros((2, 0, 2)), s, c, np.ones(1))
    x = torch.tensor([[[4.0], [20.0]]])
    torch.testing.assert_close(model.denormalise(model.normalise(x)), x)
    if kind == "min-max":
        torch.testing.assert_close(model.normalise(x).flatten(), torch.tensor([0.0, 1.0]))


def test_normalisers_by_variable_or_parameter() -> None:
    names = ("2t", "t_500", "t_850", "tp")
    cfg = NormaliserConfig.model_validate({"default": "mean-std", "std": ["tp"], "min-max": ["t"]})
    assert normalisers(names, cfg) == ("mean-std", "min-max", "min-max", "std")
    with pytest.raises(WxpipeError, match=r"normaliser\.none: 'q'"):
        normalisers(names, NormaliserConfig.model_validate({"none": ["q"]}))
    with pytest.raises(WxpipeError, match="both"):
        normalisers(names, NormaliserConfig.model_validate({"none": ["t"], "max": ["t_850"]}))


def test_loss_weights_per_variable_and_level() -> None:
    names = ("2t", "t_500", "t_850", "z_500")
    cfg = LossWeightsConfig.model_validate({"variables": {"t": 2.0, "t_850": 3.0}, "levels": {500: 0.5}})
    np.testing.assert_allclose(loss_weights(names, cfg), [1.0, 1.0, 3.0, 0.5])
    relu = LossWeightsConfig.model_validate({"pressure_level": {"minimum": 0.2, "slope": 0.001}})
    np.testing.assert_allclose(loss_weights(names, relu), [1.0, 0.5, 0.85, 0.5])
    with pytest.raises(WxpipeError, match=r"loss_weights\.variables: 'q'"):
        loss_weights(names, LossWeightsConfig.model_validate({"variables": {"q": 1.0}}))
    with pytest.raises(WxpipeError, match=r"loss_weights\.levels"):
        loss_weights(names, LossWeightsConfig.model_validate({"levels": {1000: 1.0}}))


def test_learning_rate_warms_up_then_decays() -> None:
    assert learning_rate(1, 100, 1.0, warmup=10) == pytest.approx(0.1)
    assert learning_rate(10, 100, 1.0, warmup=10) == pytest.approx(1.0)
    assert learning_rate(11, 100, 1.0, warmup=10) == pytest.approx(1.0)  # the cosine starts at the peak
    assert learning_rate(56, 100, 1.0, warmup=10) == pytest.approx(0.55)  # half way: between peak and floor
    assert learning_rate(100, 100, 1.0, warmup=10, floor=0.0) == pytest.approx(0.0, abs=1e-3)
    assert learning_rate(1, 100, 1.0) == 1.0 and learning_rate(100, 100, 1.0) == pytest.approx(0.1, abs=1e-3)
    rates = [learning_rate(s, 100, 1.0, warmup=10) for s in range(1, 101)]
    assert rates[:10] == sorted(rates[:10]) and rates[10:] == sorted(rates[10:], reverse=True)


def test_rollout_grows_on_schedule() -> None:
    r = RolloutConfig.model_validate({"start": 1, "max": 3, "every": 10})
    assert [r.at(s) for s in (1, 10, 11, 20, 21, 1000)] == [1, 1, 2, 2, 3, 3]
    with pytest.raises(ValueError, match="below start"):
        RolloutConfig.model_validate({"start": 4, "max": 2})


def _gradients(model: Network, batch: Batch, grid: Grid, parts: int, precision: str = "fp32") -> list[torch.Tensor]:
    weights, lat, lon = _area(grid)
    model.zero_grad(set_to_none=True)
    args = (model, batch, weights, lat, lon)
    backward(*args, parts=parts, scale=1 / len(batch.starts), frequency=SIX_HOURS, precision=precision)
    return [p.grad.clone() for p in model.parameters() if p.grad is not None]


def test_two_micro_batches_equal_one_batch_of_both(octahedral_grid: Grid) -> None:
    model = _network(octahedral_grid)
    fields = np.concatenate([_fields(octahedral_grid, 3, seed=1), _fields(octahedral_grid, 3, seed=2)])
    batch = Batch(np.arange(6), np.concatenate([DATES, DATES]), fields)
    whole, split = _gradients(model, batch, octahedral_grid, 1), _gradients(model, batch, octahedral_grid, 2)
    for a, b in zip(whole, split, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_bf16_autocast_runs_on_cpu(octahedral_grid: Grid) -> None:
    model = _network(octahedral_grid)
    batch = Batch(np.arange(3), DATES, _fields(octahedral_grid, 3))
    exact, half = _gradients(model, batch, octahedral_grid, 1), _gradients(model, batch, octahedral_grid, 1, "bf16")
    assert all(p.dtype == torch.float32 for p in model.parameters())
    for a, b in zip(exact, half, strict=True):
        assert torch.isfinite(b).all()
        assert (a - b).norm() <= 0.1 * a.norm() + 1e-6


def test_a_model_of_ten_million_parameters_builds() -> None:
    small = Network(Hyper(9, 100, 9, 16, layers=1))
    big = Network(Hyper(9, 100, 9, 1024, layers=11))
    count = [sum(p.numel() for p in m.parameters()) for m in (small, big)]
    assert count[0] < 10_000 and count[1] >= 10_000_000, count


def _masked_dataset(make: Callable[..., Dataset], path: Path) -> Dataset:
    """A dataset whose ``t_500`` is NaN over a third of the points at every date (like ``sst`` over land),
    with NaN-aware statistics, and whose ``t_850`` the recipe's forcings source computed."""
    ds = make(path, variables=("2t", "t_500", "t_850", "tp"), n_dates=40)
    root = zarr.open_group(str(path), mode="r+")
    data = root["data"]
    values = np.asarray(data[:])
    values[:, 1, :, ::3] = np.nan
    data[:] = values
    finite = values[[i for i in range(len(ds.dates)) if i != 21]]
    for name, stat in [("mean", np.nanmean), ("stdev", np.nanstd), ("minimum", np.nanmin), ("maximum", np.nanmax)]:
        root[name][:] = stat(finite, axis=(0, 2, 3))
    root.attrs["variables_metadata"] = {"t_850": {"param": "t_850", "computed": "forcing"}}
    return Dataset(path)


def test_roles_default_to_the_datasets_forcings_and_refuse_unknown_names(
    make_dataset: Callable[..., Dataset], training_config: Callable[..., TrainingConfig], tmp_path: Path
) -> None:
    ds = _masked_dataset(make_dataset, tmp_path / "m.zarr")
    assert default_forcings(ds) == ["t_850"]
    roles = roles_of(ds, training_config(tmp_path, variables={"diagnostic": ["tp"]}))
    assert roles.roles == ("prognostic", "prognostic", "forcing", "diagnostic")
    assert roles.loss_weights[2] == 0.0
    with pytest.raises(WxpipeError, match=r"variables\.forcing: \['sst'\]"):
        roles_of(ds, training_config(tmp_path, variables={"forcing": ["sst"]}))
    with pytest.raises(WxpipeError, match="both forcing and diagnostic"):
        roles_of(ds, training_config(tmp_path, variables={"forcing": ["tp"], "diagnostic": ["tp"]}))


def test_samples_reach_every_input_and_rollout_date(tiny_dataset: Dataset, training_config: Any) -> None:
    cfg = training_config(Path("/unused"), multistep_input=2, rollout={"start": 1, "max": 3})
    train, _ = samples(tiny_dataset, cfg)
    missing = tiny_dataset.index_of(tiny_dataset.missing_dates[0])
    last = tiny_dataset.index_of(cfg.train.end)
    assert cfg.offsets == (-1, 0, 1, 2, 3)
    assert not {missing + 1, missing, missing - 1, missing - 2, missing - 3} & set(train)
    assert train.min() == 1 and train.max() == last - 3
    batch = read_batch(tiny_dataset, train[:2], cfg.offsets)
    assert batch.fields.shape[1] == 5


def _periods(n_dates: int) -> dict[str, Any]:
    """The first 70 % of the dates for training, the rest for validation."""
    start, step = dt.datetime(2020, 1, 1), dt.timedelta(hours=6)
    cut = int(0.7 * n_dates)
    return {
        "train": {"start": start.isoformat(), "end": (start + (cut - 1) * step).isoformat()},
        "validation": {"start": (start + cut * step).isoformat(), "end": (start + (n_dates - 1) * step).isoformat()},
    }


def test_a_masked_field_trains_and_predict_feeds_the_forcings(
    make_dataset: Callable[..., Dataset], training_config: Callable[..., TrainingConfig], tmp_path: Path
) -> None:
    """NaN over land in t_500 (every sample holds some): training still learns; predict gives the model its
    forcing (t_850, from the dataset's records) at every valid time and writes every dataset variable."""
    from wxpipe.config import EvaluationConfig
    from wxpipe.model import load, read_metadata
    from wxpipe.predict import predict
    from wxpipe.train import train

    ds = _masked_dataset(make_dataset, tmp_path / "m.zarr")
    overrides = {"steps": 40, "multistep_input": 2, "rollout": {"start": 1, "max": 2, "every": 20}}
    cfg = training_config(tmp_path, **_periods(40), **overrides, variables={"diagnostic": ["tp"]})
    result = train(ds, cfg, tmp_path / "m.ckpt", "masked", {})
    m = result.metrics  # a train loss at all: the samples (each holding NaN) were trained on, not dropped
    assert np.isfinite(m["train_loss"]) and m["val_loss"] < 0.5 * m["val_loss_persistence"], m
    meta = read_metadata(result.checkpoint)
    assert (meta.inputs, meta.forcings, meta.outputs) == (["2t", "t_500", "t_850"], ["t_850"], ["2t", "t_500", "tp"])
    assert meta.input_steps == 2 and {v.normaliser for v in meta.variables if not v.computed} == {"mean-std"}
    period = {"start": ds.dates[30].item().isoformat(), "end": ds.dates[34].item().isoformat()}
    made = predict(
        ds, result.checkpoint, EvaluationConfig.model_validate({"period": period, "leads": [1, 3]}), tmp_path / "f.zarr"
    )
    assert made.header.variables == ds.variables
    t = ds.index_of(made.init_dates[0])
    np.testing.assert_array_equal(made.forecast[0, 1, 0, 2], ds.data[t + 3, 2, 0])  # the forcing as it was given
    assert np.isfinite(made.forecast[:]).all()
    model, window = load(result.checkpoint), read_batch(ds, [t], (-1, 0), drop_nan=False)
    states = window.fields[..., [0, 1, 2]].transpose(0, 1, 3, 2)[:, None]
    with pytest.raises(ValueError, match=r"needs its forcings \['t_850'\]"):
        model.predict(states, ds.dates[[t - 1, t]][None], [1])


def test_rollout_training_beats_one_step_training_at_24_hours(
    make_dataset: Callable[..., Dataset], training_config: Callable[..., TrainingConfig], tmp_path: Path
) -> None:
    """On travelling waves (the demo's kind of weather, learnable from the neighbours), the same budget of
    optimiser steps trained with a rollout growing to 4 steps forecasts +24 h (4 steps of 6 h) better than
    training on single steps, and both beat persistence (area-weighted RMSE in units of each variable's
    stdev, over the validation period)."""
    from wxpipe.grid import area_weights
    from wxpipe.model import load
    from wxpipe.samples import sample_starts
    from wxpipe.train import train

    n_dates = 120
    ds = make_dataset(
        tmp_path / "waves.zarr", variables=("2t", "msl", "t_850", "10u", "z_500"), n_dates=n_dates, missing=()
    )
    common = {**_periods(n_dates), "steps": 150, "batch_size": 4, "learning_rate": 3e-3, "hidden": 32, "neighbours": 7}
    truth = read_batch(ds, sample_starts(ds, training_config(tmp_path, **common).validation, (0, 4)), (0, 4))
    weights, stdev = area_weights(ds.latitudes), ds.statistics()["stdev"]

    def rmse(forecast: np.ndarray) -> float:
        return float(np.sqrt(((((forecast - truth.fields[:, 1]) / stdev) ** 2) * weights[None, :, None]).mean()))

    scores = {"persistence": rmse(truth.fields[:, 0])}
    for r in (1, 4):
        cfg = training_config(tmp_path, **common, rollout={"start": 1, "max": r, "every": 20})
        model = load(train(ds, cfg, tmp_path / f"r{r}.ckpt", f"rollout-{r}", {}).checkpoint)
        states = truth.fields[:, :1].transpose(0, 1, 3, 2)[:, None]
        out = model.predict(states, truth.dates[:, None].astype("datetime64[s]"), [4])
        scores[f"R={r}"] = rmse(out[:, 0, 0].transpose(0, 2, 1))
    assert scores["R=4"] < 0.85 * scores["R=1"] < 0.85 * scores["persistence"], scores
