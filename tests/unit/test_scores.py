"""The scores core: regions' masks and the per-date metrics, checked by hand and against the ``scores`` library."""

from __future__ import annotations

import numpy as np
import pytest
import scores
import xarray as xr

from wxpipe._evaluation import RegionConfig
from wxpipe.errors import WxpipeError
from wxpipe.grid import area_weights
from wxpipe.scores import STANDARD, Region, aggregate, masks, per_date, regions

# a reduced grid of 3 latitude rows: 1, 3 and 2 points
LAT = np.array([60.0, 0.0, 0.0, 0.0, -60.0, -60.0])
LON = np.array([0.0, 0.0, 120.0, 240.0, 0.0, 180.0])
GLOBAL = Region("global", -90, 90)
EQUATOR = Region("equator", -1, 1)


def _score(
    forecast: np.ndarray, truth: np.ndarray, regions_: list[Region], clim: np.ndarray | None = None
) -> dict[str, np.ndarray]:
    """Every date of ``forecast`` (dates, members, values, variables) scored and averaged."""
    got = per_date(forecast, truth, area_weights(LAT), masks(regions_, LAT, LON), clim)
    return aggregate(got, forecast.shape[1])


def test_a_perfect_forecast_scores_zero_error_and_acc_one() -> None:
    rng = np.random.default_rng(0)
    truth = rng.normal(size=(4, 6, 2))
    clim = truth + rng.normal(size=truth.shape)
    got = _score(truth[:, None], truth, [GLOBAL, EQUATOR], clim)
    for key in ("rmse", "mae", "bias"):
        np.testing.assert_array_equal(got[key], 0.0)
    np.testing.assert_allclose(got["acc"], 1.0, rtol=1e-12)
    assert np.isnan(got["crps"]).all() and np.isnan(got["spread"]).all() and np.isnan(got["spread_skill"]).all()
    np.testing.assert_array_equal(got["n_dates"], 4)


@pytest.mark.parametrize("region", [GLOBAL, EQUATOR])
def test_persistence_equals_a_hand_computation(region: Region) -> None:
    series = np.arange(4 * 6 * 2, dtype=np.float64).reshape(4, 6, 2) ** 1.5 % 7.0  # (times, points, variables)
    forecast, truth = series[:-1], series[1:]
    got = _score(forecast[:, None], truth, [region])
    w = area_weights(LAT)
    inside = [p for p in range(6) if region.south <= LAT[p] <= region.north]
    for v in range(2):
        mse, mae, bias = [], [], []
        for t in range(3):
            total = sum(w[p] for p in inside)
            errors = [(forecast[t, p, v] - truth[t, p, v], w[p]) for p in inside]
            mse.append(sum(e * e * wp for e, wp in errors) / total)
            mae.append(sum(abs(e) * wp for e, wp in errors) / total)
            bias.append(sum(e * wp for e, wp in errors) / total)
        np.testing.assert_allclose(got["rmse"][0, v], np.sqrt(np.mean(mse)), rtol=1e-12)
        np.testing.assert_allclose(got["mae"][0, v], np.mean(mae), rtol=1e-12)
        np.testing.assert_allclose(got["bias"][0, v], np.mean(bias), rtol=1e-12, atol=1e-15)


def test_acc_of_noise_is_small_and_of_a_scaled_anomaly_is_one() -> None:
    rng = np.random.default_rng(1)
    lat = rng.uniform(-80, 80, size=500)
    truth, clim = rng.normal(size=(50, 500, 2)), rng.normal(size=(50, 500, 2))
    weights, region = area_weights(lat), np.ones((1, 500), dtype=bool)
    noise = per_date((clim + rng.normal(size=clim.shape))[:, None], truth, weights, region, clim)
    assert np.all(np.abs(aggregate(noise, 1)["acc"]) < 0.1)
    scaled = per_date((0.5 * (truth - clim) + clim)[:, None], truth, weights, region, clim)
    np.testing.assert_allclose(scaled["acc"], 1.0, rtol=1e-12)


def test_deterministic_scores_equal_the_scores_library() -> None:
    rng = np.random.default_rng(2)
    lat = rng.uniform(-90, 90, size=300)
    fc, obs, w = rng.normal(size=300), rng.normal(size=300), area_weights(lat)
    got = aggregate(per_date(fc[None, None, :, None], obs[None, :, None], w, np.ones((1, 300), dtype=bool)), 1)
    f, o, wx = (xr.DataArray(a, dims="point") for a in (fc, obs, w))
    assert abs(got["rmse"].item() - float(scores.continuous.rmse(f, o, weights=wx))) < 1e-12
    assert abs(got["mae"].item() - float(scores.continuous.mae(f, o, weights=wx))) < 1e-12
    assert abs(got["bias"].item() - float(scores.continuous.additive_bias(f, o, weights=wx))) < 1e-12


@pytest.mark.parametrize("members", [5, 2])
def test_fair_crps_and_variance_equal_the_scores_library_and_numpy(members: int) -> None:
    rng = np.random.default_rng(members)
    lat = rng.uniform(-90, 90, size=200)
    ens, obs, w = rng.normal(size=(3, members, 200, 2)), rng.normal(size=(3, 200, 2)), area_weights(lat)
    got = per_date(ens, obs, w, np.ones((1, 200), dtype=bool))
    dims = ("date", "member", "point", "variable")
    expected = scores.probability.crps_for_ensemble(
        xr.DataArray(ens, dims=dims),
        xr.DataArray(obs, dims=("date", "point", "variable")),
        "member",
        method="fair",
        reduce_dims=["point"],
        weights=xr.DataArray(w, dims="point"),
    ).transpose("date", "variable")
    np.testing.assert_allclose(got["crps"][:, 0], expected.values, rtol=0, atol=1e-10)
    variance = np.einsum("p,dpv->dv", w, ens.var(axis=1, ddof=1)) / w.sum()
    np.testing.assert_allclose(got["variance"][:, 0], variance, rtol=1e-12)
    mse = got["mse"][:, 0]
    agg = aggregate(got, members)
    np.testing.assert_allclose(agg["spread"][0], np.sqrt(variance.mean(axis=0)), rtol=1e-12)
    ratio = np.sqrt((members + 1) / members) * np.sqrt(variance.mean(axis=0) / mse.mean(axis=0))
    np.testing.assert_allclose(agg["spread_skill"][0], ratio, rtol=1e-12)


def test_a_nan_point_drops_out_of_its_date_and_variable_only() -> None:
    rng = np.random.default_rng(3)
    ens, truth, clim = rng.normal(size=(3, 4, 6, 2)), rng.normal(size=(3, 6, 2)), rng.normal(size=(3, 6, 2))
    w, region = area_weights(LAT), masks([GLOBAL], LAT, LON)
    clean = per_date(ens, truth, w, region, clim)
    holed_truth, holed_ens = truth.copy(), ens.copy()
    holed_truth[1, 2, 0] = np.nan
    holed_ens[2, 3, 4, 1] = np.nan
    holed = per_date(holed_ens, holed_truth, w, region, clim)
    for key, value in holed.items():
        changed = ~np.isclose(value, clean[key], rtol=0, atol=0)
        assert {(int(d), int(v)) for d, _, v in zip(*np.nonzero(changed), strict=True)} <= {(1, 0), (2, 1)}, key
        for (d, v), point in (((1, 0), 2), ((2, 1), 4)):
            keep = np.arange(6) != point
            alone = per_date(
                ens[d : d + 1, :, keep], truth[d : d + 1, keep], w[keep], region[:, keep], clim[d : d + 1, keep]
            )
            np.testing.assert_allclose(value[d, 0, v], alone[key][0, 0, v], rtol=1e-12)


def test_a_region_with_no_valid_date_is_nan_without_a_warning() -> None:
    truth = np.full((2, 6, 1), np.nan)
    with np.errstate(all="raise"):
        got = _score(np.zeros((2, 3, 6, 1)), truth, [GLOBAL], np.zeros_like(truth))
    assert all(np.isnan(got[k]).all() for k in ("rmse", "mae", "bias", "acc", "crps", "spread", "spread_skill"))
    np.testing.assert_array_equal(got["n_dates"], 0)


@pytest.mark.parametrize("lon", [[175.0, 185.0, 0.0, 160.0], [175.0, -175.0, 0.0, 160.0]])
def test_a_box_across_the_antimeridian_selects_both_sides(lon: list[float]) -> None:
    lat = np.zeros(4)
    box = Region("pacific", -10, 10, 170, -170)
    np.testing.assert_array_equal(masks([box], lat, np.array(lon))[0], [True, True, False, False])
    written_east = Region("pacific", -10, 10, 170, 190)
    np.testing.assert_array_equal(masks([written_east], lat, np.array(lon))[0], [True, True, False, False])
    np.testing.assert_array_equal(masks([GLOBAL], lat, np.array(lon))[0], True)


def test_an_empty_region_names_itself() -> None:
    with pytest.raises(WxpipeError, match="arctic"):
        masks([GLOBAL, Region("arctic", 80, 90)], LAT, LON)


def test_config_regions_follow_the_standard_ones_and_may_not_reuse_their_names() -> None:
    got = regions({"pacific": RegionConfig(lat=(-10, 10), lon=(170, -170))})
    assert got[: len(STANDARD)] == list(STANDARD)
    assert got[-1] == Region("pacific", -10, 10, 170, -170)
    with pytest.raises(WxpipeError, match="tropics"):
        regions({"tropics": RegionConfig(lat=(-10, 10))})
