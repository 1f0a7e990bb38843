"""WeatherBench2's per-date scores and their averages over initial dates, in float64 numpy.

:func:`per_date` reduces one batch of forecasts to area-weighted means per (date, region, variable);
:func:`aggregate` averages them over dates the WeatherBench2 way (RMSE is the root of the mean MSE, not the
mean of per-date RMSEs). A point where the forecast or the truth is NaN drops out of that date's means,
the weights renormalised over the points left; a date with no such point is NaN and left out of the average.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np


def per_date(
    forecast: np.ndarray,
    truth: np.ndarray,
    weights: np.ndarray,
    masks: np.ndarray,
    climatology: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Per-date scores ``mse``, ``mae``, ``bias``, ``acc``, ``crps`` and ``variance``, each (batch, regions,
    variables).

    ``forecast`` is (batch, members, values, variables), ``truth`` and ``climatology`` (batch, values,
    variables), ``weights`` (values,) and ``masks`` (regions, values). MSE, MAE, bias and ACC are of the
    ensemble mean; ``acc`` is NaN without a climatology, ``crps`` (fair) and ``variance`` (ddof=1) when there
    is one member.
    """
    x = np.asarray(forecast, dtype=np.float64)
    y = np.asarray(truth, dtype=np.float64)
    members = x.shape[1]
    ok = np.isfinite(y) & np.isfinite(x).all(axis=1)
    region_weights = masks.astype(np.float64) * np.asarray(weights, dtype=np.float64)
    mean = x.mean(axis=1)
    error = mean - y
    out = {
        "mse": _area_mean(region_weights, error**2, ok),
        "mae": _area_mean(region_weights, np.abs(error), ok),
        "bias": _area_mean(region_weights, error, ok),
    }
    shape = out["mse"].shape
    out["acc"] = np.full(shape, np.nan) if climatology is None else _acc(region_weights, mean, y, climatology, ok)
    if members == 1:
        out["crps"] = np.full(shape, np.nan)
        out["variance"] = np.full(shape, np.nan)
    else:
        out["crps"] = _area_mean(region_weights, _fair_crps(x, y), ok)
        out["variance"] = _area_mean(region_weights, x.var(axis=1, ddof=1), ok)
    return out


def aggregate(stats: Mapping[str, np.ndarray], members: int, axis: int = 0) -> dict[str, np.ndarray]:
    """The averages over initial dates (``axis`` of every array of ``stats``), NaN dates left out: ``rmse``,
    ``mae``, ``bias``, ``acc``, ``crps``, ``spread``, ``spread_skill`` (Fortin et al. 2014's corrected ratio of
    the spread to the ensemble mean's RMSE) and ``n_dates`` (dates with a finite MSE)."""
    rmse = np.sqrt(_nanmean(stats["mse"], axis))
    spread = np.sqrt(_nanmean(stats["variance"], axis))
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.sqrt((members + 1) / members) * spread / rmse
    return {
        "rmse": rmse,
        "mae": _nanmean(stats["mae"], axis),
        "bias": _nanmean(stats["bias"], axis),
        "acc": _nanmean(stats["acc"], axis),
        "crps": _nanmean(stats["crps"], axis),
        "spread": spread,
        "spread_skill": ratio,
        "n_dates": np.isfinite(stats["mse"]).sum(axis=axis).astype(np.int64),
    }


def _area_mean(region_weights: np.ndarray, field: np.ndarray, ok: np.ndarray) -> np.ndarray:
    """(batch, regions, variables) weighted means of ``field`` (batch, values, variables) over its ``ok`` points."""
    total = np.matmul(region_weights, np.where(ok, field, 0.0))
    norm = np.matmul(region_weights, ok.astype(np.float64))
    with np.errstate(invalid="ignore", divide="ignore"):
        mean: np.ndarray = np.where(norm > 0, total / norm, np.nan)
    return mean


def _acc(region_weights: np.ndarray, mean: np.ndarray, y: np.ndarray, clim: np.ndarray, ok: np.ndarray) -> np.ndarray:
    """The uncentred anomaly correlation: sum w f'o' / sqrt(sum w f'^2 sum w o'^2), anomalies from ``clim``."""
    c = np.asarray(clim, dtype=np.float64)
    ok = ok & np.isfinite(c)
    f, o = mean - c, y - c
    cross, ff, oo = (_area_mean(region_weights, a * b, ok) for a, b in ((f, o), (f, f), (o, o)))
    with np.errstate(invalid="ignore", divide="ignore"):
        acc: np.ndarray = cross / np.sqrt(ff * oo)
    return acc


def _fair_crps(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Fair CRPS per point (batch, values, variables) of ``x`` (batch, members, values, variables), its pair
    term from the sorted members (sum_{i<j} |x_i - x_j| = sum_i (2i - m + 1) x_(i)), never members^2 arrays."""
    m = x.shape[1]
    skill = np.abs(x - y[:, None]).mean(axis=1)
    coef = 2.0 * np.arange(m, dtype=np.float64) - (m - 1)
    pairs = np.tensordot(coef, np.sort(x, axis=1), axes=(0, 1))
    crps: np.ndarray = skill - pairs / (m * (m - 1))
    return crps


def _nanmean(a: np.ndarray, axis: int) -> np.ndarray:
    """``np.nanmean`` without its warning on all-NaN cells (which stay NaN)."""
    ok = np.isfinite(a)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean: np.ndarray = np.where(ok, a, 0.0).sum(axis=axis) / ok.sum(axis=axis)
    return mean
