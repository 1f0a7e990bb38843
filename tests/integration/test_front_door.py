"""The front door as a new user meets it: their own config in an empty folder, `--profile <site>` by name.

Dry runs only (real Snakemake, real DAG): what is planned, not what runs.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from wxpipe.profiles import SITES

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("XDG_CONFIG_HOME", "WXPIPE_ACCOUNT")}
    return {**env, "PATH": f"{BIN}:{env.get('PATH', '/usr/bin:/bin')}", **extra}


def planned_rules(output: str) -> dict[str, int]:
    """The "Job stats" table of a dry run: rule -> number of jobs."""
    table = output.split("Job stats:", 1)[1].split("total", 1)[0]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)\s*$", table, flags=re.M)}


@pytest.mark.parametrize("where", ["empty folder", "project folder"])
def test_own_config_plans_only_what_it_declares(tmp_path: Path, where: str) -> None:
    """From the project folder (where config/config.yaml, the demo, lies) too: nothing is merged in."""
    grib = tmp_path / "archive"
    subprocess.run(
        [BIN / "wxpipe", "demo", grib, "--start", "2021-05-01T00:00", "--end", "2021-05-02T18:00", "--seed", "3"],
        check=True,
        capture_output=True,
    )
    recipe = {
        "dates": {"start": "2021-05-01T00:00", "end": "2021-05-02T18:00", "frequency": "6h"},
        "input": {"join": [{"grib": {"path": f"{grib}/{{date:strftime(%Y%m%d%H)}}.grib2", "param": ["2t", "msl"]}}]},
    }
    (tmp_path / "mine.yaml").write_text(yaml.safe_dump(recipe))
    config = {"datasets": {"mine": {"recipe": str(tmp_path / "mine.yaml"), "parts": 3}}}
    (tmp_path / "my.yaml").write_text(yaml.safe_dump(config))
    res = subprocess.run(
        [BIN / "snakemake", "-s", REPO / "Snakefile", "--configfile", tmp_path / "my.yaml", "-n"],
        cwd=tmp_path if where == "empty folder" else REPO,
        capture_output=True,
        text=True,
        env=_env(HOME=str(tmp_path)),
        timeout=300,
    )
    assert res.returncode == 0, res.stdout + res.stderr
    jobs = planned_rules(res.stdout)
    assert jobs["load"] == 3 and jobs["init"] == 1 and jobs["finalise"] == 1, jobs
    assert "demo" not in jobs and "train_model" not in jobs and "rechunk_part" not in jobs, jobs
    assert "wildcards: dataset=demo" not in res.stdout
    assert "results/datasets/mine.zarr" in res.stdout and "results/datasets/demo.zarr" not in res.stdout


def test_profiles_install_links_every_site_and_keeps_a_users_own(tmp_path: Path) -> None:
    home = tmp_path / "config"
    own = home / "snakemake" / "jupiter"
    own.mkdir(parents=True)
    (own / "config.yaml").write_text("executor: local\n")
    res = subprocess.run(
        [BIN / "wxpipe", "profiles", "install", "profiles"],
        cwd=REPO,
        capture_output=True,
        text=True,
        env=_env(XDG_CONFIG_HOME=str(home)),
        check=True,
    )
    assert f"{own}: kept" in res.stdout
    assert (own / "config.yaml").read_text() == "executor: local\n" and not own.is_symlink()
    for site in SITES[:-1]:
        assert (home / "snakemake" / site).resolve() == REPO / "profiles" / site
    # a second install changes nothing; a link into a removed checkout is replaced
    stale = home / "snakemake" / "lumi"
    stale.unlink()
    stale.symlink_to(tmp_path / "gone" / "profiles" / "lumi")
    subprocess.run([BIN / "wxpipe", "profiles", "install"], cwd=REPO, env=_env(XDG_CONFIG_HOME=str(home)), check=True)
    assert stale.resolve() == REPO / "profiles" / "lumi"


@pytest.mark.parametrize("site", SITES)
def test_profile_by_name_from_the_project_folder(tmp_path: Path, site: str) -> None:
    env = _env(XDG_CONFIG_HOME=str(tmp_path), WXPIPE_ACCOUNT="project_0001")
    subprocess.run([BIN / "wxpipe", "profiles", "install"], cwd=REPO, env=env, check=True, capture_output=True)
    res = subprocess.run(
        [BIN / "snakemake", "--profile", site, "-n", "dataset"],
        cwd=REPO,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert res.returncode == 0, res.stdout + res.stderr
    profile = yaml.safe_load((REPO / "profiles" / site / "config.yaml").read_text())
    partition = profile["default-resources"]["slurm_partition"]
    assert f"Using profiles {site} " in res.stdout + res.stderr
    assert f"slurm_account=project_0001, slurm_partition={partition}" in res.stdout


def test_a_recipe_mistake_stops_snakemake_with_one_message(tmp_path: Path) -> None:
    (tmp_path / "mine.yaml").write_text(
        "dates: {start: 2021-05-01T00:00, end: 2021-05-01T18:00, frequency: 6h}\n"
        "input:\n  join:\n    - grib: {path: a.grib, param: [2t], levtyp: sfc}\n"
    )
    (tmp_path / "my.yaml").write_text("datasets:\n  mine: {recipe: mine.yaml}\n")
    res = subprocess.run(
        [BIN / "snakemake", "-s", REPO / "Snakefile", "--configfile", "my.yaml", "-n"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=_env(HOME=str(tmp_path)),
        timeout=300,
    )
    assert res.returncode == 1
    tail = res.stderr.strip().splitlines()[-2:]
    assert tail == [
        "wxpipe: datasets.mine.recipe: validation failed",
        "  mine.yaml:4: input.join.0.grib.levtyp: unknown key (misspelled?)",
    ], res.stderr
    assert "Traceback" not in res.stderr and 'File "' not in res.stderr


def planned_command(output: str, command: str) -> list[str]:
    """The words of the one planned shell command that starts with ``wxpipe <command>``."""
    (line,) = [ln for ln in output.splitlines() if ln.startswith(f"Shell command: wxpipe {command} ")]
    return shlex.split(line.removeprefix("Shell command: "))


def test_evaluation_reads_and_follows_the_copy_training_read(tmp_path: Path) -> None:
    """A run with a site: the model is scored on the site's copy it was trained on, and says so in its lineage."""
    shutil.copy(HERE / "small-config.yaml", tmp_path / "config.yaml")
    shutil.copy(HERE / "small-recipe.yaml", tmp_path / "small-recipe.yaml")
    res = subprocess.run(
        [BIN / "snakemake", "-s", REPO / "Snakefile", "--configfile", "config.yaml", "-n", "-p", "evaluate"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=_env(HOME=str(tmp_path)),
        timeout=300,
    )
    assert res.returncode == 0, res.stdout + res.stderr
    train, predict, evaluate = (planned_command(res.stdout, c) for c in ("train", "predict", "evaluate"))
    assert train[2] == predict[2] == evaluate[2] == "results/sites/scratch/small.zarr"
    copy = ["results/lineage/statistics/small.json", "results/lineage/transfer/scratch/small.json"]
    assert predict[predict.index("--upstream") + 1 : predict.index("2>")] == ["results/lineage/train/tiny.json", *copy]
    assert evaluate[evaluate.index("--upstream") + 1 : evaluate.index("2>")] == [
        "results/lineage/predict/tiny.json",
        *copy,
        "results/lineage/climatology/small.json",
    ]
