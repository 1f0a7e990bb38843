"""What reruns after a recipe edit, in a finished project (real Snakemake metadata, dry runs after one build).

Rebuild on content, not file time: a comment or a touch reruns nothing, a change of meaning reruns the
dataset, and a broken or missing recipe stops Snakemake with one message naming it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
RECIPE = """\
dates:
  start: 2021-05-01T00:00
  end: 2021-05-01T18:00
  frequency: 6h
input:
  grib:
    path: archive/{date:strftime(%Y%m%d%H)}.grib2
    param: [2t]
"""


def snakemake(work: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": f"{BIN}:{os.environ.get('PATH', '/usr/bin:/bin')}", "HOME": str(work)}
    cmd = [BIN / "snakemake", "-s", REPO / "Snakefile", "--configfile", "my.yaml", *args]
    return subprocess.run(cmd, cwd=work, capture_output=True, text=True, env=env, timeout=600)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("reruns")
    demo = [BIN / "wxpipe", "demo", work / "archive", "--start", "2021-05-01T00:00", "--end", "2021-05-01T18:00"]
    subprocess.run(demo, check=True, capture_output=True)
    (work / "mine.yaml").write_text(RECIPE)
    (work / "my.yaml").write_text(yaml.safe_dump({"datasets": {"mine": {"recipe": "mine.yaml", "parts": 1}}}))
    res = snakemake(work, "--cores", "2", "dataset")
    assert res.returncode == 0, res.stderr[-3000:]
    return work


def planned(work: Path) -> str:
    res = snakemake(work, "-n", "dataset")
    assert res.returncode == 0, res.stderr[-3000:]
    return res.stdout + res.stderr


def test_a_comment_or_a_touch_reruns_nothing(project: Path) -> None:
    recipe = project / "mine.yaml"
    recipe.write_text("# my dataset, for the first experiment\n" + RECIPE.replace("  end:", "  end:  "))
    assert "Nothing to be done" in planned(project)
    os.utime(recipe)  # a touch, or a branch switch that rewrote the file as it was
    assert "Nothing to be done" in planned(project)


def test_a_change_of_meaning_rebuilds_the_dataset(project: Path) -> None:
    recipe = project / "mine.yaml"
    before = recipe.read_text()
    recipe.write_text(RECIPE.replace("param: [2t]", "param: [2t, msl]"))
    try:
        out = planned(project)
        assert "rule init:" in out and "rule load:" in out and "rule finalise:" in out, out
        assert "Params have changed since last execution" in out
    finally:
        recipe.write_text(before)
    assert "Nothing to be done" in planned(project)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("frequncy: 6h", "mine.yaml:4: dates.frequncy: unknown key (misspelled?)"),
        (None, "datasets.mine.recipe: mine.yaml: no such file"),
    ],
    ids=["misspelled", "missing"],
)
def test_a_broken_or_missing_recipe_stops_snakemake_even_when_the_dataset_exists(
    project: Path, change: str | None, message: str
) -> None:
    recipe = project / "mine.yaml"
    before = recipe.read_text()
    if change is None:
        recipe.unlink()
    else:
        recipe.write_text(RECIPE.replace("frequency: 6h", change))
    try:
        res = snakemake(project, "-n", "dataset")
        assert res.returncode == 1 and message in res.stderr and "Traceback" not in res.stderr, res.stderr
    finally:
        recipe.write_text(before)


def test_an_absent_input_file_is_named_not_skipped(project: Path) -> None:
    recipe = project / "mine.yaml"
    before = recipe.read_text()
    recipe.write_text(RECIPE.replace("18:00", "18:00\n  missing: []").replace("2021-05-01T18:00", "2021-05-02T00:00"))
    try:
        res = snakemake(project, "-n", "dataset")
        assert res.returncode == 1, res.stdout
        assert "input files archive/2021050200.grib2 do not exist" in res.stderr, res.stderr
    finally:
        recipe.write_text(before)
