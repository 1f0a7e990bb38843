"""Config and recipe validation: unknown keys and wrong types name the file, key and line."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import pytest

from wxpipe.config import Config, export_schemas, load_config
from wxpipe.errors import WxpipeError
from wxpipe.recipe import Recipe, load_recipe
from wxpipe.smk import settings

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


# The evaluation guards (wxpipe.guards): refused at config validation, before any job runs.
EVAL = "period: {start: 2020-03-11T00:00, end: 2020-03-31T18:00}"
STATS = (
    "      start: 2020-01-01T00:00\n"
    "      end: 2020-02-29T18:00 # the training period: the normaliser never sees validation or evaluation\n"
)


def _refusal(path: Path) -> str:
    with pytest.raises(WxpipeError) as err:
        load_config(path)
    assert "set evaluation.allow_overlap: true" in str(err.value)
    return str(err.value)


def test_demo_passes_its_own_guard(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)  # the recipe path is relative, as in Snakemake
    cfg = load_config("config/config.yaml")
    assert cfg.evaluation is not None and cfg.evaluation.overlap == []


@pytest.mark.parametrize(
    ("period", "named"),
    [
        (
            "period: {start: 2020-03-05T00:00, end: 2020-03-31}",
            "training.demo.validation 2020-03-01 .. 2020-03-10T18:00",
        ),
        ("period: {start: 2020-01-15T00:00, end: 2020-01-20}", "training.demo.train 2020-01-01 .. 2020-02-29T18:00"),
    ],
)
def test_evaluation_inside_a_training_period_is_refused(tmp_path: Path, period: str, named: str) -> None:
    message = _refusal(_edited(tmp_path, "config/config.yaml", EVAL, period))
    start = period.split("start: ")[1][:10]
    assert re.search(rf"evaluation\.period {start}\S* \.\. 2020-0[13]-\d\d overlaps {re.escape(named)}", message)


def test_statistics_including_the_evaluation_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the demo's statistics period, anemoi's default (the first 80 % of the dates) of a dataset that
    starts in 2020 reaches 2020-03-13."""
    monkeypatch.chdir(REPO)
    recipe = _edited(tmp_path, "config/recipes/demo.yaml", "  start: 2019-03-01T00:00\n", "  start: 2020-01-01T00:00\n")
    config = _edited(tmp_path, "config/config.yaml", STATS, "")
    config.write_text(config.read_text().replace("config/recipes/demo.yaml", str(recipe)))
    message = _refusal(config)
    assert (
        "evaluation.period 2020-03-11 .. 2020-03-31T18:00 overlaps the statistics period of datasets.demo "
        f"2020-01-01 .. 2020-03-13T12:00 (anemoi's default for {recipe}" in message
    )
    assert "the normaliser of training.demo, training.demo-narrow" in message
    later = _edited(tmp_path, "config/config.yaml", STATS, STATS.replace("02-29T18:00", "03-12T00:00"))
    message = _refusal(later)
    assert "datasets.demo 2020-01-01 .. 2020-03-12 (datasets.demo.statistics" in message


def test_a_climatology_that_sees_the_evaluation_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    clim = "period: {start: 2019-03-01T00:00, end: 2019-05-31T18:00}"
    with pytest.raises(WxpipeError, match=r"evaluation.climatology.period 2019-03-01 \.\. 2020-03-12 overlaps"):
        load_config(_edited(tmp_path, "config/config.yaml", clim, "period: {start: 2019-03-01, end: 2020-03-12}"))
    with pytest.raises(WxpipeError, match=r"evaluation.baseline: 'hres' is none of \['persistence', 'climatology'"):
        load_config(_edited(tmp_path, "config/config.yaml", "baseline: persistence", "baseline: hres"))


def test_allow_overlap_warns_and_hands_the_overlap_to_the_jobs(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    allowed = "period: {start: 2020-03-05T00:00, end: 2020-03-31}\n  allow_overlap: true"
    with caplog.at_level(logging.WARNING):
        cfg = load_config(_edited(tmp_path, "config/config.yaml", EVAL, allowed))
    overlap = (
        "evaluation.period 2020-03-05 .. 2020-03-31 overlaps training.demo.validation 2020-03-01 .. 2020-03-10T18:00"
    )
    both = [overlap, overlap.replace("training.demo.", "training.demo-narrow.")]
    assert cfg.evaluation is not None and cfg.evaluation.overlap == both
    assert f"{overlap}: scored anyway" in caplog.text
    assert json.loads(settings(cfg, "evaluation"))["overlap"] == both  # what the evaluate job reads


def test_other_datasets_name_training_runs(tmp_path: Path) -> None:
    other = "leads: [1, 2, 4]\n  other_datasets: {nowhere: d-1}"
    with pytest.raises(WxpipeError, match=r"evaluation\.other_datasets\.nowhere: no training run 'nowhere'"):
        load_config(_edited(tmp_path, "config/config.yaml", "leads: [1, 2, 4]", other))
