"""Config and recipe validation: unknown keys and wrong types name the file, key and line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from wxpipe.config import Config, export_schemas, load_config
from wxpipe.errors import WxpipeError
from wxpipe.recipe import Recipe, load_recipe

REPO = Path(__file__).resolve().parents[2]


def _edited(tmp_path: Path, source: str, old: str, new: str) -> Path:
    """A copy of the project's ``source`` file (config or recipe) with ``old`` replaced by ``new``."""
    text = (REPO / source).read_text()
    assert old in text, old
    bad = tmp_path / Path(source).name
    bad.write_text(text.replace(old, new))
    return bad


def test_demo_config_and_recipe_are_valid() -> None:
    cfg = load_config(REPO / "config/config.yaml")
    assert "demo" in cfg.datasets
    recipe = load_recipe(REPO / cfg.datasets["demo"].recipe)
    assert len(recipe.dates.all()) >= 4 * 90


def test_unknown_key_names_file_key_and_line(tmp_path: Path) -> None:
    recipe = "    recipe: config/recipes/demo.yaml"
    bad = _edited(tmp_path, "config/config.yaml", recipe, f"{recipe}\n    prats: 3")
    line = bad.read_text().splitlines().index("    prats: 3") + 1
    with pytest.raises(WxpipeError) as err:
        load_config(bad)
    assert f"{bad}:{line}: datasets.demo.prats: unknown key" in str(err.value)


def test_wrong_type_is_an_error(tmp_path: Path) -> None:
    bad = _edited(tmp_path, "config/config.yaml", "steps: 300", "steps: many")
    with pytest.raises(WxpipeError, match=r"training\.demo\.steps"):
        load_config(bad)


def test_dangling_reference_is_an_error(tmp_path: Path) -> None:
    bad = _edited(tmp_path, "config/config.yaml", "{dataset: demo, site: scratch}", "{dataset: demo, site: nowhere}")
    with pytest.raises(WxpipeError, match="no site 'nowhere'"):
        load_config(bad)


def test_recipe_dates_off_frequency(tmp_path: Path) -> None:
    bad = _edited(tmp_path, "config/recipes/demo.yaml", "end: 2020-03-31T18:00", "end: 2020-03-31T19:00")
    with pytest.raises(WxpipeError, match="not on the 6:00:00 frequency"):
        load_recipe(bad)


def test_recipe_misspelled_source_key(tmp_path: Path) -> None:
    bad = _edited(tmp_path, "config/recipes/demo.yaml", "levelist: [500, 850]", "levelst: [500, 850]")
    line = bad.read_text().splitlines().index("        levelst: [500, 850]") + 1
    with pytest.raises(WxpipeError) as err:
        load_recipe(bad)
    assert f"{bad}:{line}: input.join.1.grib.levelst: unknown key" in str(err.value)


def test_default_statistics_period_is_first_80_percent() -> None:
    recipe = load_recipe(REPO / "config/recipes/demo.yaml")
    dates = recipe.dates.all()
    period = recipe.statistics_period()
    n = sum(1 for d in dates if str(d) <= period.end.isoformat())
    assert n == int(len(dates) * 0.8)


def test_schemas_in_sync(tmp_path: Path) -> None:
    """workflow/schemas/ must match the models; regenerate with `make schemas`."""
    for path in export_schemas(tmp_path):
        committed = REPO / "workflow/schemas" / path.name
        assert committed.exists(), f"{committed} missing: run `make schemas`"
        assert json.loads(committed.read_text()) == json.loads(path.read_text()), (
            f"{committed} is stale: run `make schemas`"
        )


def test_models_reject_extra_keys() -> None:
    with pytest.raises(ValueError):
        Config.model_validate({"datasets": {}, "extra": 1})
    with pytest.raises(ValueError):
        Recipe.model_validate({"dates": {"start": "2020-01-01", "end": "2020-01-02", "frequency": "6h"}, "input": {}})


def test_training_threads_are_the_jobs_not_a_setting(tmp_path: Path) -> None:
    """One thread count per training job: the rule's threads (``--cpus-per-rank``), never a config key."""
    bad = _edited(tmp_path, "config/config.yaml", "steps: 300", "steps: 300\n    threads: 4")
    with pytest.raises(WxpipeError, match=r"training\.demo\.threads: unknown key"):
        load_config(bad)
