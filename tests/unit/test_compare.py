"""The paired bootstrap, combining several runs' scores.nc and the comparison's files, checked with numbers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xarray as xr

from wxpipe.compare import combine, compare, open_scores, significance
from wxpipe.errors import WxpipeError
from wxpipe.scores import bootstrap
from wxpipe.scores.bootstrap import paired_bootstrap

REGIONS = {"global": (-90.0, 90.0, -180.0, 180.0), "tropics": (-20.0, 20.0, -180.0, 180.0)}
UNITS = {"2t": "K", "z_500": "m**2 s**-2", "msl": "Pa"}


def scores_dataset(
    run: str,
    *,
    dates: Any = None,
    leads: tuple[float, ...] = (6.0, 12.0, 24.0),
    variables: tuple[str, ...] = ("2t", "z_500"),
    baselines: tuple[str, ...] = ("persistence", "climatology"),
    uuid: str = "uuid-1",
    members: int = 1,
    seed: int = 0,
    maps: bool = True,
) -> xr.Dataset:
    """A scores.nc dataset exactly as the spec lays it out, with random per-date scores (model better)."""
    rng = np.random.default_rng(seed)
    init = np.asarray(dates if dates is not None else np.arange("2022-01-01", "2022-01-11", dtype="datetime64[D]"))
    forecasts = [run, *baselines]
    kinds = ["model", *baselines]
    shape = (len(forecasts), len(REGIONS), init.size, len(leads), len(variables))
    scale = np.arange(1, len(forecasts) + 1, dtype=np.float64)[:, None, None, None, None]
    mse = rng.gamma(4.0, 1.0, size=shape) * scale
    data: dict[str, Any] = {"date_mse": mse, "date_mae": np.sqrt(mse) * 0.8, "date_bias": rng.normal(size=shape)}
    data["date_acc"] = np.clip(0.9 - 0.05 * mse, -1, 1)
    ens = np.zeros(shape, dtype=bool)
    ens[0] = members > 1
    data["date_crps"] = np.where(ens, np.sqrt(mse) * 0.5, np.nan)
    data["date_variance"] = np.where(ens, mse * 0.9, np.nan)
    dims = ("forecast", "region", "init_date", "lead", "variable")
    agg_dims = ("forecast", "region", "lead", "variable")
    variables_ = {k: (dims, v) for k, v in data.items()}
    rmse = np.sqrt(np.nanmean(mse, axis=2))
    spread = np.sqrt(data["date_variance"].mean(axis=2))
    variables_.update(
        rmse=(agg_dims, rmse),
        mae=(agg_dims, data["date_mae"].mean(axis=2)),
        bias=(agg_dims, data["date_bias"].mean(axis=2)),
        acc=(agg_dims, data["date_acc"].mean(axis=2)),
        crps=(agg_dims, data["date_crps"].mean(axis=2)),
        spread=(agg_dims, spread),
        spread_skill=(agg_dims, np.sqrt((members + 1) / members) * spread / rmse),
        n_dates=(agg_dims, np.full(rmse.shape, init.size, dtype=np.int64)),
    )
    lat = np.repeat(np.linspace(-80, 80, 9), 12)
    lon = np.tile(np.arange(0.0, 360.0, 30.0), 9)
    map_leads, map_vars = ([leads[-1]], [variables[0]]) if maps else ([], [])
    map_shape = (len(map_leads), len(map_vars), lat.size)
    variables_["map_bias"] = (("map_lead", "map_variable", "values"), np.sin(np.radians(lon)) * np.ones(map_shape))
    variables_["map_rmse"] = (
        ("map_lead", "map_variable", "values"),
        (1.5 + np.cos(np.radians(lat))) * np.ones(map_shape),
    )
    coords: dict[str, Any] = {
        "forecast": forecasts,
        "kind": ("forecast", kinds),
        "region": list(REGIONS),
        "lead": np.asarray(leads, dtype=np.float64),
        "lead_steps": ("lead", (np.asarray(leads) // 6).astype(np.int64)),
        "variable": list(variables),
        "units": ("variable", [UNITS[v] for v in variables]),
        "init_date": init.astype("datetime64[ns]"),
        "latitude": ("values", lat),
        "longitude": ("values", lon),
        "map_lead": np.asarray(map_leads, dtype=np.float64),
        "map_variable": map_vars,
    }
    for i, side in enumerate(("south", "north", "west", "east")):
        coords[f"region_{side}"] = ("region", [box[i] for box in REGIONS.values()])
    ds = xr.Dataset(variables_, coords=coords)
    ds["map_bias"] = ds.map_bias.astype(np.float32)
    ds["map_rmse"] = ds.map_rmse.astype(np.float32)
    ds.attrs.update(
        format="wxpipe-scores", version=1, run=run, dataset_uuid=uuid, checkpoint=f"{run}.ckpt", members=members,
        period_start=str(init[0]), period_end=str(init[-1]), overlap="[]", baseline="persistence",
    )  # fmt: skip
    return ds


def write(ds: xr.Dataset, path: Path) -> Path:
    ds.to_netcdf(path, engine="h5netcdf")
    return path


def test_identical_forecasts_are_never_significant() -> None:
    mse = np.random.default_rng(0).gamma(2.0, size=(30, 4, 5))
    result = paired_bootstrap(mse, mse.copy(), resamples=300)
    assert np.array_equal(result.skill, np.zeros((4, 5)))
    assert not result.significant.any()


def test_a_clearly_biased_forecast_loses_everywhere() -> None:
    rng = np.random.default_rng(1)
    noise = rng.normal(size=(40, 200, 2, 3))
    good = (noise**2).mean(axis=1)
    biased = ((rng.normal(size=noise.shape) + 2.0) ** 2).mean(axis=1)
    better, worse = paired_bootstrap(good, biased, resamples=500), paired_bootstrap(biased, good, resamples=500)
    assert better.significant.all() and (better.low > 0).all()
    assert worse.significant.all() and (worse.high < 0).all()
    assert np.all(better.low <= better.skill) and np.all(better.skill <= better.high)


def test_skill_is_one_minus_the_rmse_ratio_on_shared_dates() -> None:
    rng = np.random.default_rng(2)
    cand, base = rng.gamma(2.0, size=(25, 3)), rng.gamma(3.0, size=(25, 3))
    cand[3, 0], base[7, 0] = np.nan, np.nan
    cand[:, 2] = np.nan
    result = paired_bootstrap(cand, base, resamples=50)
    ok = np.isfinite(cand[:, 0]) & np.isfinite(base[:, 0])
    assert result.skill[0] == pytest.approx(1 - np.sqrt(cand[ok, 0].mean()) / np.sqrt(base[ok, 0].mean()))
    assert result.skill[1] == pytest.approx(1 - np.sqrt(cand[:, 1].mean() / base[:, 1].mean()))
    assert np.isnan(result.skill[2]) and np.isnan(result.low[2]) and not result.significant[2]


def test_bootstrap_is_reproducible_and_blocked_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(3)
    cand, base = rng.gamma(2.0, size=(20, 7)), rng.gamma(2.2, size=(20, 7))
    first, again = (paired_bootstrap(cand, base, resamples=200, seed=5) for _ in range(2))
    other = paired_bootstrap(cand, base, resamples=200, seed=6)
    assert np.array_equal(first.low, again.low) and np.array_equal(first.high, again.high)
    assert not np.array_equal(first.low, other.low)
    monkeypatch.setattr(bootstrap, "BLOCK_BYTES", 8 * 200 * 2)
    blocked = paired_bootstrap(cand, base, resamples=200, seed=5)
    np.testing.assert_allclose(blocked.low, first.low, rtol=1e-12)


@pytest.fixture
def two_runs(tmp_path: Path) -> tuple[Path, Path]:
    days = np.arange("2022-01-01", "2022-01-11", dtype="datetime64[D]")
    a = scores_dataset("small", dates=days, seed=1)
    b = scores_dataset(
        "large", dates=days[3:] + np.timedelta64(0, "D"), leads=(6.0, 12.0), variables=("z_500", "2t"),
        baselines=("persistence",), members=4, seed=2,
    )  # fmt: skip
    return write(a, tmp_path / "a.nc"), write(b, tmp_path / "b.nc")


def test_combine_intersects_and_takes_baselines_once(two_runs: tuple[Path, Path]) -> None:
    ds = combine(two_runs)
    assert list(ds.forecast.values) == ["small", "persistence", "climatology", "large"]
    assert list(ds.kind.values) == ["model", "persistence", "climatology", "model"]
    assert list(ds.lead.values) == [6.0, 12.0] and list(ds.variable.values) == ["2t", "z_500"]
    first, second = (open_scores(p) for p in two_runs)
    np.testing.assert_array_equal(ds.init_date.values, second.init_date.values)
    expected = first.date_mse.sel(forecast="persistence", init_date=ds.init_date, lead=ds.lead)
    np.testing.assert_array_equal(ds.date_mse.sel(forecast="persistence").values, expected.values)
    assert list(ds.members.values) == [1, 1, 1, 4]


def test_aggregates_after_combine_equal_numpy(two_runs: tuple[Path, Path]) -> None:
    ds = combine(two_runs)
    src = open_scores(two_runs[0]).sel(init_date=ds.init_date, lead=ds.lead).transpose(*ds.date_mse.dims, ...)
    mse = src.date_mse.sel(forecast="small").values
    np.testing.assert_allclose(ds.rmse.sel(forecast="small").values, np.sqrt(mse.mean(axis=1)))
    np.testing.assert_allclose(
        ds.acc.sel(forecast="small").values, src.date_acc.sel(forecast="small").mean("init_date")
    )
    assert (ds.n_dates.values == 7).all()
    large = open_scores(two_runs[1]).sel(forecast="large", variable=ds.variable).transpose(*ds.date_mse.dims[1:], ...)
    rmse = np.sqrt(large.date_mse.values.mean(axis=1))
    spread = np.sqrt(large.date_variance.values.mean(axis=1))
    np.testing.assert_allclose(ds.rmse.sel(forecast="large").values, rmse)
    np.testing.assert_allclose(ds.spread_skill.sel(forecast="large").values, np.sqrt(5 / 4) * spread / rmse)
    np.testing.assert_allclose(ds.crps.sel(forecast="large").values, large.date_crps.values.mean(axis=1))
    assert np.isnan(ds.crps.sel(forecast="small").values).all()


def test_combine_refuses_duplicates_and_other_datasets(tmp_path: Path) -> None:
    a = write(scores_dataset("small"), tmp_path / "a.nc")
    again = write(scores_dataset("small", seed=4), tmp_path / "again.nc")
    with pytest.raises(WxpipeError, match=r"a\.nc and .*again\.nc.*'small'"):
        combine([a, again])
    other = write(scores_dataset("large", uuid="uuid-2"), tmp_path / "other.nc")
    with pytest.raises(WxpipeError, match=r"a\.nc \(dataset uuid-1\) and .*other\.nc \(dataset uuid-2\)"):
        combine([a, other])
    bad = scores_dataset("odd")
    bad.attrs["version"] = 99
    with pytest.raises(WxpipeError, match=r"bad\.nc: format"):
        open_scores(write(bad, tmp_path / "bad.nc"))


def test_significance_against_a_baseline(two_runs: tuple[Path, Path]) -> None:
    ds = combine(two_runs)
    sig = significance(ds, "persistence", resamples=200)
    assert sig.skill.dims == ("forecast", "region", "lead", "variable")
    assert (sig.skill.sel(forecast="persistence") == 0).all() and not sig.significant.sel(forecast="persistence").any()
    mse = ds.date_mse.sel(region="global", lead=6.0, variable="2t")
    hand = 1 - np.sqrt(mse.sel(forecast="small").mean() / mse.sel(forecast="persistence").mean())
    assert float(sig.skill.sel(forecast="small", region="global", lead=6.0, variable="2t")) == pytest.approx(
        float(hand)
    )
    with pytest.raises(WxpipeError, match=r"'ifs'.*\['small', 'persistence', 'climatology', 'large'\]"):
        significance(ds, "ifs", resamples=10)


def test_compare_writes_its_files(two_runs: tuple[Path, Path], tmp_path: Path) -> None:
    out = tmp_path / "comparison"
    record = compare(two_runs, out, baseline="persistence", resamples=100)
    assert sorted(p.name for p in out.iterdir()) == ["comparison.json", "comparison.nc", "leads.png", "scorecard.png"]
    assert json.loads((out / "comparison.json").read_text()) == record
    cell = record["scores"]["large"]["global"]["2t"]
    assert len(cell["rmse"]) == 2 and len(cell["significant"]) == 2 and cell["skill"][0] is not None
    with xr.open_dataset(out / "comparison.nc", engine="h5netcdf") as nc:
        assert set(nc.data_vars) >= {"rmse", "skill", "skill_low", "skill_high", "significant", "date_mse"}
        assert nc.attrs["runs"] == '["small", "large"]'
    with pytest.raises(WxpipeError, match="region 'europe'"):
        compare(two_runs, out, baseline="persistence", resamples=10, region="europe")
