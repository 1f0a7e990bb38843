"""A tiny real dataset on disk (written through wxpipe.dataset), and one training run shared by tests.

Helpers reach tests as fixtures (``octahedral_grid``, ``make_dataset``, ``training_config``, ``anemoi_meta``) rather
than imports, so the tests work under any pytest import mode.

The fields are travelling waves on an octahedral reduced Gaussian grid, plus a diurnal cycle and a
little noise: persistence is a poor forecast of them and a model that sees its neighbours can beat
it, which is what the training and evaluation tests check.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zarr

from wxpipe.config import EvaluationConfig, TrainingConfig
from wxpipe.dataset import Dataset, Writer, finalise, init
from wxpipe.recipe import Recipe
from wxpipe.sources.demo import octahedral_grid as demo_grid
from wxpipe.train import TrainResult, train

START = dt.datetime(2020, 1, 1)
STEP = dt.timedelta(hours=6)

# name: (base, wave amplitude, zonal wavenumber, phase speed in degrees of longitude per hour, diurnal amplitude)
WAVES = {
    "2t": (280.0, 10.0, 3, 1.0, 4.0),
    "msl": (101000.0, 1200.0, 2, 1.5, 0.0),
    "t_850": (270.0, 8.0, 4, 0.8, 1.0),
    "10u": (0.0, 6.0, 3, 1.2, 0.0),
    "10v": (0.0, 5.0, 2, 0.9, 0.0),
    "t_500": (250.0, 6.0, 3, 1.1, 0.0),
    "tp": (0.002, 0.002, 5, 1.0, 0.001),
    "z_500": (55000.0, 800.0, 3, 1.3, 0.0),
    "z_850": (14000.0, 400.0, 2, 1.0, 0.0),
}


def _octahedral_grid(n: int) -> tuple[np.ndarray, np.ndarray]:
    """The O<n> grid's flattened latitudes and longitudes (the demo archive's grid)."""
    _, lat, lon = demo_grid(n)
    return lat, lon


def _make_dataset(
    path: Path,
    *,
    grid: int = 8,
    n_dates: int = 60,
    variables: Sequence[str] = ("2t", "msl", "t_850"),
    missing: Sequence[int] = (21,),
    noise: float = 0.01,
    seed: int = 0,
) -> Dataset:
    """Write a finalised dataset with statistics at ``path`` (init, a Writer, finalise, then zarr)."""
    dates = [START + i * STEP for i in range(n_dates)]
    surface = sorted({v for v in variables if "_" not in v})
    levels = sorted({int(v.split("_")[1]) for v in variables if "_" in v})
    join: list[dict[str, object]] = [
        {"grib": {"path": "unused/{date:strftime(%Y%m%d%H)}.grib", "param": surface or ["2t"]}}
    ]
    if levels:
        params = sorted({v.split("_")[0] for v in variables if "_" in v})
        join.append({"grib": {"path": "unused/pl.grib", "param": params, "levtype": "pl", "levelist": levels}})
    recipe = Recipe.model_validate(
        {
            "name": "tiny",
            "description": "travelling waves for unit tests",
            "dates": {
                "start": START.isoformat(),
                "end": dates[-1].isoformat(),
                "frequency": "6h",
                "missing": [dates[i].isoformat() for i in missing],
            },
            "input": {"join": join},
        }
    )
    lat, lon = _octahedral_grid(grid)
    init(path, recipe, list(variables), lat, lon, field_shape=[len(lat)], resolution=f"o{grid}")

    rng = np.random.default_rng(seed)
    phi, lam = np.deg2rad(lat), np.deg2rad(lon)
    fields = np.full((n_dates, len(variables), 1, len(lat)), np.nan, dtype=np.float32)
    for t in range(n_dates):
        hours = 6.0 * t
        for v, name in enumerate(variables):
            base, amp, m, speed, diurnal = WAVES[name]
            wave = amp * np.cos(phi) * np.sin(m * (lam - np.deg2rad(speed * hours)) + v)
            daily = diurnal * np.cos(phi) * np.cos(2 * np.pi * (hours + lon / 15.0) / 24.0)
            fields[t, v, 0] = base + wave + daily + noise * amp * rng.standard_normal(len(lat))
    present = [i for i in range(n_dates) if i not in set(missing)]
    writer = Writer(path)
    for i in present:
        writer.write(i, fields[i : i + 1])
    writer.close()
    finalise(path)

    root = zarr.open_group(str(path), mode="r+")
    values = fields[present][:, :, 0].transpose(1, 0, 2).reshape(len(variables), -1).astype(np.float64)
    for name, stat in [
        ("mean", values.mean(1)),
        ("stdev", values.std(1)),
        ("minimum", values.min(1)),
        ("maximum", values.max(1)),
    ]:
        root.create_array(name, data=stat)
    return Dataset(path)


def _anemoi_meta(
    names: Sequence[str],
    *,
    forcings: Sequence[str] = (),
    diagnostics: Sequence[str] = (),
    input_steps: int = 2,
    output_steps: int = 1,
) -> dict[str, Any]:
    """The parts of an anemoi inference checkpoint's ``anemoi.json`` that wxpipe reads, as anemoi-training 0.17
    writes them for a dataset of variables ``names`` (without ``supporting_arrays_paths``: where the arrays go
    depends on the archive's top folder)."""
    index = {n: i for i, n in enumerate(names)}
    roles = {
        "prognostic": [i for n, i in index.items() if n not in (*forcings, *diagnostics)],
        "forcing": [index[n] for n in forcings],
        "diagnostic": [index[n] for n in diagnostics],
        "target": [],
        "name_to_index": index,
    }
    inputs = [i for n, i in index.items() if n not in diagnostics]
    outputs = [i for n, i in index.items() if n not in forcings]
    steps = {
        "input_relative_date_indices": list(range(input_steps)),
        "output_relative_date_indices": list(range(input_steps, input_steps + output_steps)),
        "timestep": "6h",
    }
    normaliser = {"default": "mean-std", "std": list(diagnostics), "none": list(forcings)}
    return {
        "uuid": "3f1c0d7e-anemoi",
        "run_id": "run1",
        "data_indices": {"data": {"data": {"input": {**roles, "full": inputs}, "output": {**roles, "full": outputs}}}},
        "metadata_inference": {"data": {"timesteps": steps}},
        "config": {
            "data": {"datasets": {"data": {"processors": {"normalizer": {"config": normaliser}}}}},
            "training": {"precision": "32", "max_steps": 3},
        },
        "training": {"global_step": 3},
        "provenance_training": {"module_versions": {"anemoi.training": {"version": "0.17.1"}}},
    }


def _training_config(tmp: Path, **overrides: object) -> TrainingConfig:
    cfg: dict[str, object] = {
        "dataset": "tiny",
        "train": {"start": START.isoformat(), "end": (START + 39 * STEP).isoformat()},
        "validation": {"start": (START + 40 * STEP).isoformat(), "end": (START + 49 * STEP).isoformat()},
        "steps": 200,
        "batch_size": 4,
        "learning_rate": 3e-3,
        "hidden": 32,
        "neighbours": 7,
        "mlflow": {"tracking_uri": f"sqlite:///{tmp}/mlflow.db", "experiment": "unit"},
    }
    cfg.update(overrides)
    return TrainingConfig.model_validate(cfg)


@dataclass(frozen=True)
class Trained:
    dataset: Dataset
    cfg: TrainingConfig
    result: TrainResult
    tmp: Path


@pytest.fixture(scope="session")
def octahedral_grid() -> Callable[[int], tuple[np.ndarray, np.ndarray]]:
    return _octahedral_grid


@pytest.fixture(scope="session")
def make_dataset() -> Callable[..., Dataset]:
    return _make_dataset


@pytest.fixture(scope="session")
def anemoi_meta() -> Callable[..., dict[str, Any]]:
    return _anemoi_meta


@pytest.fixture(scope="session")
def training_config() -> Callable[..., TrainingConfig]:
    return _training_config


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory: pytest.TempPathFactory) -> Dataset:
    return _make_dataset(tmp_path_factory.mktemp("data") / "tiny.zarr")


@pytest.fixture(scope="session")
def trained(tiny_dataset: Dataset, tmp_path_factory: pytest.TempPathFactory) -> Trained:
    """One training run (the slow part: MLflow's sqlite set-up), shared by the train and evaluate tests."""
    tmp = tmp_path_factory.mktemp("train")
    cfg = _training_config(tmp)
    result = train(
        tiny_dataset, cfg, tmp / "model.ckpt", "unit-run", {"wxpipe.lineage": "abc123", "dataset": tiny_dataset.uuid}
    )
    return Trained(tiny_dataset, cfg, result, tmp)


@pytest.fixture(scope="session")
def evaluation_config(tmp_path_factory: pytest.TempPathFactory) -> EvaluationConfig:
    """Evaluation logs to a store of the session's own, never to ./results/mlflow.db where pytest runs."""
    store = tmp_path_factory.mktemp("evaluation-mlflow")
    return EvaluationConfig.model_validate(
        {
            "period": {"start": (START + 40 * STEP).isoformat(), "end": (START + 59 * STEP).isoformat()},
            "leads": [1, 2, 4],
            "mlflow": {"tracking_uri": f"sqlite:///{store}/mlflow.db", "experiment": "unit-evaluation"},
        }
    )


def _grib_message(sample: str, date: np.datetime64, values: np.ndarray, **keys: object) -> bytes:
    """One GRIB field from an ecCodes sample, valid at ``date``; ``keys`` are set before the values
    (``bitmapPresent=1, missingValue=9999.0`` turns the values equal to 9999 into missing points)."""
    import eccodes

    h = eccodes.codes_grib_new_from_samples(sample)
    try:
        d = date.astype("datetime64[h]").item()
        eccodes.codes_set(h, "dataDate", int(d.strftime("%Y%m%d")))
        eccodes.codes_set(h, "dataTime", d.hour * 100)
        for k, v in keys.items():
            eccodes.codes_set(h, k, v)
        eccodes.codes_set_values(h, values)
        return bytes(eccodes.codes_get_message(h))
    finally:
        eccodes.codes_release(h)


@pytest.fixture(scope="session")
def grib_message() -> Callable[..., bytes]:
    """``grib_message(sample, date, values, **keys)``: one real GRIB field, written by ecCodes."""
    return _grib_message
