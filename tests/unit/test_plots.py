"""The evaluation's pictures: each is a PNG of the expected size in pixels with something drawn on it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from matplotlib.image import imread
from test_compare import scores_dataset

from wxpipe.compare import significance
from wxpipe.plots import error_maps, lead_curves, loss_curve, scorecard

DPI = 120


def check_png(path: Path, inches: tuple[float, float]) -> None:
    image = imread(path)
    assert image.shape[:2] == (round(inches[1] * DPI), round(inches[0] * DPI))
    assert float(image[..., :3].var()) > 1e-3


@pytest.fixture
def scores() -> xr.Dataset:
    return scores_dataset("small", variables=("2t", "z_500", "msl"), members=3)


def test_scorecard(scores: xr.Dataset, tmp_path: Path) -> None:
    sig = significance(scores, "persistence", resamples=100)
    path = scorecard(scores, sig, tmp_path / "scorecard.png", region="tropics")
    columns = 3 * (3 + 1) - 1
    check_png(path, (2.8 + 0.62 * columns, 1.9 + 0.5 * 3))


def test_lead_curves_add_rows_for_acc_and_crps(scores: xr.Dataset, tmp_path: Path) -> None:
    check_png(lead_curves(scores, tmp_path / "leads.png"), (0.8 + 3.2 * 3, 0.9 + 2.5 * 3))
    deterministic = scores.assign(acc=scores.acc * np.nan, crps=scores.crps * np.nan)
    check_png(lead_curves(deterministic, tmp_path / "rmse.png"), (0.8 + 3.2 * 3, 0.9 + 2.5))


def test_error_maps(scores: xr.Dataset, tmp_path: Path) -> None:
    check_png(error_maps(scores, tmp_path / "maps.png") or Path("missing"), (10.0, 0.8 + 2.9))
    assert error_maps(scores_dataset("bare", maps=False), tmp_path / "none.png") is None
    assert not (tmp_path / "none.png").exists()


def test_loss_curve(tmp_path: Path) -> None:
    path = loss_curve([(1, 2.0), (2, 1.0)], [(2, 1.5)], tmp_path / "loss.png", persistence=1.8)
    check_png(path, (6.4, 4.0))
